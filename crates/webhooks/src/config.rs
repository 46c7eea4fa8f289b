//! The webhooks domain's settings.

use std::time::Duration;

use crate::model::UrlPolicy;

/// How deliveries are retried and endpoints judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhooksConfig {
    /// The wait before each retry: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; a delivery that
    /// failed them all is `failed` (8 attempts).
    pub retry_schedule: Vec<Duration>,
    /// An endpoint whose attempts have all failed for this long is disabled (5 days).
    pub disable_after: Duration,
    /// How long a rotated-out secret keeps signing (24 h).
    pub previous_secret_ttl: Duration,
    /// How long a worker's claim on a delivery holds (60 s; more than the 10 s an attempt may
    /// take).
    pub lease: Duration,
    /// What endpoint URLs may be.
    pub urls: UrlPolicy,
    /// Endpoints per group, and for the platform (20).
    pub max_endpoints: usize,
    /// Deliveries one worker round claims (and sends at once).
    pub batch: u32,
    /// The stored part of an answer (4 KiB).
    pub response_limit: usize,
    /// The most events one replay queues (10,000).
    pub max_replay: u32,
}

/// The retry waits of the Standard Webhooks schedule.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            retry_schedule: RETRY_SCHEDULE.to_vec(),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            previous_secret_ttl: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(60),
            urls: UrlPolicy::default(),
            max_endpoints: 20,
            batch: 64,
            response_limit: 4096,
            max_replay: 10_000,
        }
    }
}
