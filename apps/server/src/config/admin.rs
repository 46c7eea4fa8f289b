//! Platform administration.

use onboard_kernel::{PhoneNumber, Region};

/// `ADMIN_PHONES`: a comma-separated list of phones (E.164, or national with `DEFAULT_REGION`).
pub(super) fn parse_admin_phones(
    raw: Option<&str>,
    region: Option<Region>,
) -> anyhow::Result<Vec<PhoneNumber>> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            PhoneNumber::parse(p, region)
                .map_err(|e| anyhow::anyhow!("ADMIN_PHONES: {p:?} is not a phone number: {e}"))
        })
        .collect()
}
