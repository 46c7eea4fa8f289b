//! Group messages: how they are sent and checked.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use super::Env;

/// How group messages are sent and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingSettings {
    /// `ALIMTALK_CHECK_DELAY`: the first alimtalk delivery check runs this long after the send
    /// (`2s`, `2000ms`, or a bare number of seconds; 2 s).
    pub check_delay: Duration,
    /// How long a worker's claim on a message holds before another worker may take it over
    /// (60 s; longer than a provider call may take).
    pub lease: Duration,
    /// How often each instance's messaging worker looks for due messages (250 ms).
    pub poll: Duration,
    /// `SMS_LOG_ALIMTALK_FAILURE`: with `SMS_PROVIDER=log`, every alimtalk fails its delivery
    /// check with this code (`3018`, say), to demonstrate the SMS failover. Unset: delivered.
    pub log_alimtalk_failure: Option<String>,
}

impl Default for MessagingSettings {
    fn default() -> Self {
        Self {
            check_delay: Duration::from_secs(2),
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(250),
            log_alimtalk_failure: None,
        }
    }
}

/// What tests may put in place of the messaging provider and the embedded store.
#[derive(Clone, Default)]
pub struct MessagingOverrides {
    /// The provider every message goes through.
    pub provider: Option<Arc<dyn onboard_messaging::ports::MessageProvider>>,
    /// The embedded wiring's store (to share it between two apps, or to top up SMS credit).
    pub memory_store: Option<Arc<onboard_memory::MemoryStore>>,
    /// Start no messaging worker (a test drives it).
    pub no_worker: bool,
}

impl std::fmt::Debug for MessagingOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagingOverrides")
            .field("provider", &self.provider.is_some())
            .field("memory_store", &self.memory_store.is_some())
            .field("no_worker", &self.no_worker)
            .finish()
    }
}

/// `ALIMTALK_CHECK_DELAY`: `250ms`, `2s`, or a bare number of seconds.
fn parse_check_delay(raw: Option<&str>) -> anyhow::Result<Duration> {
    let Some(raw) = raw else { return Ok(MessagingSettings::default().check_delay) };
    let number = |s: &str| -> anyhow::Result<u64> {
        s.trim().parse().with_context(|| {
            format!("ALIMTALK_CHECK_DELAY must be like 2s, 2000ms or 2, not {raw:?}")
        })
    };
    let delay = if let Some(ms) = raw.strip_suffix("ms") {
        Duration::from_millis(number(ms)?)
    } else if let Some(s) = raw.strip_suffix('s') {
        Duration::from_secs(number(s)?)
    } else {
        Duration::from_secs(number(raw)?)
    };
    if delay.is_zero() {
        bail!("ALIMTALK_CHECK_DELAY must be above 0");
    }
    Ok(delay)
}

impl MessagingSettings {
    /// `ALIMTALK_CHECK_DELAY`, `SMS_LOG_ALIMTALK_FAILURE`.
    pub(super) fn read(env: &Env<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            check_delay: parse_check_delay(env.get("ALIMTALK_CHECK_DELAY").as_deref())?,
            log_alimtalk_failure: env.get("SMS_LOG_ALIMTALK_FAILURE"),
            ..Self::default()
        })
    }
}
