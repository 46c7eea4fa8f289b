//! The notifications outbox worker (notify): publishes committed notifications for live
//! delivery, and purges expired ones.
//!
//! Every instance runs one. Claims are exclusive (a lease in storage), so instances share the
//! work without sending one notification twice in the normal case; a worker that dies between
//! its claim and marking the batch published leaves it to be claimed again after the lease
//! (at least once: a stream may then see an id twice, which `Last-Event-ID` clients ignore).

use std::time::Duration;

use onboard_notifications::NotificationsService;

/// How often the outbox is polled: the most a committed notification waits before it is
/// published (well inside the 1 s the contract allows).
pub const POLL_INTERVAL: Duration = Duration::from_millis(150);

/// How often expired notifications are purged.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(300);

/// Starts the worker on the current Tokio runtime; it runs as long as the runtime does.
pub fn spawn(service: NotificationsService) {
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purge = tokio::time::interval(PURGE_INTERVAL);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = poll.tick() => {
                    // Drain: a full batch means more may be waiting.
                    loop {
                        match service.publish_pending().await {
                            Ok(n) if n >= 100 => {}
                            Ok(_) => break,
                            Err(e) => {
                                tracing::warn!(error = format!("{e:#}"), "publishing notifications failed");
                                break;
                            }
                        }
                    }
                }
                _ = purge.tick() => {
                    match service.purge_expired().await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(purged = n, "expired notifications purged"),
                        Err(e) => tracing::warn!(error = format!("{e:#}"), "purging notifications failed"),
                    }
                }
            }
        }
    });
}
