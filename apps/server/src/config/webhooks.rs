//! Outgoing webhooks.

use std::time::Duration;

use anyhow::{Context, bail};
use onboard_webhooks::{UrlPolicy, WebhooksConfig};

use super::{Env, Environment};

/// How outgoing webhooks are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhooksSettings {
    /// The domain's settings: the retry schedule (`WEBHOOKS_RETRY_SCHEDULE`), the claim lease
    /// (`WEBHOOKS_LEASE`), the URL policy (`https` only when `ONBOARD_ENV=production`;
    /// `WEBHOOKS_ALLOW_PRIVATE`).
    pub config: WebhooksConfig,
    /// How often each instance's worker looks for events and due deliveries
    /// (`WEBHOOKS_POLL`, 250 ms).
    pub poll: Duration,
    /// The most an attempt may take (10 s).
    pub timeout: Duration,
    /// Start no webhooks worker (a test hook, never read from the environment).
    pub no_worker: bool,
}

/// `250ms`, `2s`, or a bare number of seconds; above zero.
fn duration(name: &str, raw: &str) -> anyhow::Result<Duration> {
    let raw = raw.trim();
    let number = |s: &str| -> anyhow::Result<u64> {
        s.trim().parse().with_context(|| format!("{name} must be like 5s or 250ms, not {raw:?}"))
    };
    let d = if let Some(ms) = raw.strip_suffix("ms") {
        Duration::from_millis(number(ms)?)
    } else if let Some(s) = raw.strip_suffix('s') {
        Duration::from_secs(number(s)?)
    } else {
        Duration::from_secs(number(raw)?)
    };
    if d.is_zero() {
        bail!("{name} must be above 0");
    }
    Ok(d)
}

impl WebhooksSettings {
    /// `WEBHOOKS_ALLOW_PRIVATE` (false), `WEBHOOKS_RETRY_SCHEDULE` (comma-separated waits, each
    /// `5s`, `250ms` or bare seconds; the Standard Webhooks schedule by default),
    /// `WEBHOOKS_LEASE` (60 s), `WEBHOOKS_POLL` (250 ms).
    pub(super) fn read(env: &Env<'_>, environment: Environment) -> anyhow::Result<Self> {
        let mut config = WebhooksConfig {
            urls: UrlPolicy {
                https_only: environment == Environment::Production,
                allow_private: env.flag("WEBHOOKS_ALLOW_PRIVATE", false)?,
            },
            ..WebhooksConfig::default()
        };
        if let Some(raw) = env.get("WEBHOOKS_RETRY_SCHEDULE") {
            config.retry_schedule = raw
                .split(',')
                .map(|w| duration("WEBHOOKS_RETRY_SCHEDULE", w))
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(raw) = env.get("WEBHOOKS_LEASE") {
            config.lease = duration("WEBHOOKS_LEASE", &raw)?;
        }
        let poll = match env.get("WEBHOOKS_POLL") {
            Some(raw) => duration("WEBHOOKS_POLL", &raw)?,
            None => Duration::from_millis(250),
        };
        Ok(Self { config, poll, timeout: Duration::from_secs(10), no_worker: false })
    }
}
