//! Which seed APIs are served under `/compat/...` (`COMPAT_APIS`).

use anyhow::bail;

/// The seed APIs served under `/compat/...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompatApis {
    /// `/compat/referral-api`.
    pub referral_api: bool,
    /// `/compat/connect-hub`.
    pub connect_hub: bool,
    /// `/compat/member-invitation`.
    pub member_invitation: bool,
}

impl CompatApis {
    /// Every seed API (the default).
    pub const ALL: Self = Self { referral_api: true, connect_hub: true, member_invitation: true };
    /// No seed API.
    pub const NONE: Self =
        Self { referral_api: false, connect_hub: false, member_invitation: false };

    /// Reads `COMPAT_APIS`: unset is every API, an empty list none; names are
    /// `referral-api`, `connect-hub` and `member-invitation`.
    pub fn parse(raw: Option<&str>) -> anyhow::Result<Self> {
        let Some(raw) = raw else { return Ok(Self::ALL) };
        let mut apis = Self::NONE;
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().replace('_', "-").as_str() {
                "referral-api" => apis.referral_api = true,
                "connect-hub" => apis.connect_hub = true,
                "member-invitation" => apis.member_invitation = true,
                _ => bail!(
                    "COMPAT_APIS: unknown API {name:?} (known: referral-api, connect-hub, member-invitation)"
                ),
            }
        }
        Ok(apis)
    }
}
