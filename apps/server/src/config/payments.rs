//! Billing: the payments domain's settings, the periodic work's tick, the service tokens that
//! record usage, and the test hooks.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use onboard_kernel::Clock;
use onboard_payments::PaymentsConfig;
use onboard_payments::gateway::PaymentGateway;
use onboard_payments::period::BillingClock;
use secrecy::SecretString;

use super::Env;

/// `TRIAL_DAYS`, `BILLING_PAY_HOUR`, `BILLING_TZ`.
pub(super) fn read(env: &Env<'_>) -> anyhow::Result<PaymentsConfig> {
    let defaults = PaymentsConfig::default();
    let pay_hour = env.small("BILLING_PAY_HOUR", defaults.pay_hour)?;
    if pay_hour > 23 {
        bail!("BILLING_PAY_HOUR must be between 0 and 23, not {pay_hour}");
    }
    Ok(PaymentsConfig {
        trial_days: i64::from(env.small("TRIAL_DAYS", 14)?),
        pay_hour,
        clock: match env.get("BILLING_TZ") {
            Some(tz) => BillingClock { tz: parse_billing_tz(&tz)? },
            None => defaults.clock,
        },
        ..defaults
    })
}

/// `BILLING_TICK_MS` (60 s, at least 10 ms).
pub(super) fn billing_tick(env: &Env<'_>) -> anyhow::Result<Duration> {
    Ok(Duration::from_millis(env.num("BILLING_TICK_MS", 60_000)?.max(10)))
}

/// `SERVICE_TOKENS`: comma-separated, at least 32 characters each.
pub(super) fn service_tokens(env: &Env<'_>) -> anyhow::Result<Vec<SecretString>> {
    let tokens: Vec<String> = env
        .get("SERVICE_TOKENS")
        .unwrap_or_default()
        .split(',')
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.iter().any(|t| t.len() < 32) {
        bail!("SERVICE_TOKENS: each token must be at least 32 characters");
    }
    Ok(tokens.into_iter().map(SecretString::from).collect())
}

/// What tests may put in place of the payments domain's clock and gateway.
#[derive(Clone, Default)]
pub struct PaymentsOverrides {
    /// The payments domain's clock (trial ends, periods, retries); the rest of the app keeps
    /// the system clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// The payment gateway.
    pub gateway: Option<Arc<dyn PaymentGateway>>,
}

impl std::fmt::Debug for PaymentsOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentsOverrides")
            .field("clock", &self.clock.is_some())
            .field("gateway", &self.gateway.is_some())
            .finish()
    }
}

/// `BILLING_TZ`: `Asia/Seoul` (or `KST`), `UTC`, or a fixed offset such as `+09:00`.
fn parse_billing_tz(raw: &str) -> anyhow::Result<chrono::FixedOffset> {
    let hours = |h: i32| chrono::FixedOffset::east_opt(h * 3600);
    let offset = match raw {
        "Asia/Seoul" | "KST" => hours(9),
        "UTC" | "Etc/UTC" => hours(0),
        other => other.parse::<chrono::FixedOffset>().ok(),
    };
    offset.with_context(|| {
        format!("BILLING_TZ must be Asia/Seoul, UTC or an offset such as +09:00, not {raw:?}")
    })
}
