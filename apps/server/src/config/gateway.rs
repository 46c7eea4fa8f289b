//! The payment gateway: `PAYMENT_GATEWAY` and its `PORTONE_*`.

use anyhow::{Context, bail};
use onboard_gateway::PortOneConfig;
use secrecy::SecretString;

use super::{Env, Environment};

/// Which payment gateway serves billing.
#[derive(Debug, Clone)]
pub enum GatewaySettings {
    /// The in-process simulated gateway with test cards (`PAYMENT_GATEWAY=simulated`): the
    /// default outside production, refused in production.
    Simulated,
    /// PortOne v1 REST (`PAYMENT_GATEWAY=portone`, the default in production):
    /// `PORTONE_API_URL` (default `https://api.iamport.kr`), `PORTONE_IMP_KEY`,
    /// `PORTONE_IMP_SECRET`, `PORTONE_MERCHANT_ID` (required), `PORTONE_PG` (optional).
    PortOne(PortOneConfig),
}

impl GatewaySettings {
    pub(super) fn read(env: Environment, vars: &Env<'_>) -> anyhow::Result<Self> {
        let production = env == Environment::Production;
        let choice = vars.get("PAYMENT_GATEWAY").map(|v| v.to_ascii_lowercase());
        match choice.as_deref() {
            Some("simulated") if production => bail!(
                "PAYMENT_GATEWAY=simulated while ONBOARD_ENV=production: test cards would stand in for real payments (use portone)"
            ),
            Some("simulated") => Ok(Self::Simulated),
            None if !production => Ok(Self::Simulated),
            None | Some("portone") => {
                let required = |name: &str| {
                    vars.get(name).with_context(|| {
                        format!("{name} is required with the PortOne payment gateway (PAYMENT_GATEWAY=portone, the default in production)")
                    })
                };
                let api_url = vars
                    .get("PORTONE_API_URL")
                    .unwrap_or_else(|| PortOneConfig::DEFAULT_BASE_URL.to_owned());
                if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
                    bail!("PORTONE_API_URL must be an http(s) URL, not {api_url:?}");
                }
                let merchant_id = required("PORTONE_MERCHANT_ID")?;
                if !merchant_id.starts_with("imp") {
                    bail!(
                        "PORTONE_MERCHANT_ID is the merchant identification code (imp12345678), not {merchant_id:?}"
                    );
                }
                let mut config = PortOneConfig::new(
                    required("PORTONE_IMP_KEY")?,
                    SecretString::from(required("PORTONE_IMP_SECRET")?),
                    merchant_id,
                );
                config.base_url = api_url;
                config.pg = vars.get("PORTONE_PG");
                Ok(Self::PortOne(config))
            }
            Some(other) => bail!("PAYMENT_GATEWAY must be simulated or portone, not {other:?}"),
        }
    }
}
