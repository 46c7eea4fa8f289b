//! The messaging settings.

use std::time::Duration;

use onboard_payments::sms_credit::SmsPrices;

/// How messages are priced, sent and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingConfig {
    /// Unit prices (`SMS_PRICE_*`).
    pub prices: SmsPrices,
    /// The first alimtalk delivery check runs this long after the send
    /// (`ALIMTALK_CHECK_DELAY`, 2 s).
    pub check_delay: Duration,
    /// While the provider says "not known yet", the wait doubles up to this (5 min).
    pub check_backoff_cap: Duration,
    /// After this many checks without an answer the alimtalk is `failed` with the code
    /// [`crate::service::CHECK_GAVE_UP`], not refunded nor resent (it may have arrived): 12.
    pub max_checks: u32,
    /// How long a claim holds a message before another worker may take it over (60 s). Longer
    /// than a provider call may take (the provider timeout), so a live worker keeps its claims.
    pub lease: Duration,
    /// How many messages one claim takes (20).
    pub batch: u32,
    /// The most recipients one send may name (1,000).
    pub max_recipients: usize,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        Self {
            prices: SmsPrices::default(),
            check_delay: Duration::from_secs(2),
            check_backoff_cap: Duration::from_secs(300),
            max_checks: 12,
            lease: Duration::from_secs(60),
            batch: 20,
            max_recipients: 1_000,
        }
    }
}
