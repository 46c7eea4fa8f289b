//! Which seed APIs are served under `/compat/...` (`COMPAT_APIS`), and the region each reads
//! national phone numbers in (`COMPAT_DEFAULT_REGION`).

use anyhow::{Context, bail};
use onboard_kernel::Region;

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

/// The region each seed API reads national phone numbers in (`01012345678` in `KR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompatRegions {
    pub referral_api: Option<Region>,
    pub connect_hub: Option<Region>,
    pub member_invitation: Option<Region>,
}

impl CompatRegions {
    /// Reads `COMPAT_DEFAULT_REGION`: a comma list of `<api>=<region>` (`member-invitation=KR,
    /// connect-hub=RU`), or one region for all three. An API it does not name reads national
    /// numbers in `DEFAULT_REGION` (`fallback`), except member_invitation, whose clients send
    /// Korean national numbers: `KR` unless named (whatever `DEFAULT_REGION` says).
    pub fn parse(raw: Option<&str>, fallback: Option<Region>) -> anyhow::Result<Self> {
        let kr = Region::parse("KR").context("KR is a region")?;
        let mut regions =
            Self { referral_api: fallback, connect_hub: fallback, member_invitation: Some(kr) };
        let region = |r: &str| {
            Region::parse(r)
                .with_context(|| format!("COMPAT_DEFAULT_REGION: {r:?} is not an ISO region"))
        };
        for item in raw.unwrap_or_default().split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((api, r)) = item.split_once('=') else {
                let all = Some(region(item)?);
                regions = Self { referral_api: all, connect_hub: all, member_invitation: all };
                continue;
            };
            let r = Some(region(r.trim())?);
            match api.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "referral-api" => regions.referral_api = r,
                "connect-hub" => regions.connect_hub = r,
                "member-invitation" => regions.member_invitation = r,
                other => bail!(
                    "COMPAT_DEFAULT_REGION: unknown API {other:?} (known: referral-api, connect-hub, member-invitation)"
                ),
            }
        }
        Ok(regions)
    }
}
