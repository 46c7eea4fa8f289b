//! Settings of the notifications domain.

use std::time::Duration;

/// Tunables of the notifications domain. [`NotificationsConfig::default`] gives the documented
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationsConfig {
    /// How long a notification is kept (`NOTIFICATION_TTL`, 14 days).
    pub ttl: Duration,
    /// How long a stream ticket stays usable (30 s).
    pub ticket_ttl: Duration,
    /// How long one snoozed "minute" lasts: a minute, except in tests that cannot wait.
    pub snooze_minute: Duration,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(14 * 24 * 3600),
            ticket_ttl: Duration::from_secs(30),
            snooze_minute: Duration::from_secs(60),
        }
    }
}
