//! The notifications worker: turns new domain events into notifications (the
//! [`NotificationsConsumer`]), publishes committed notifications for live delivery, and purges
//! expired notifications and events past their retention.
//!
//! Events become notifications exactly once across instances (the consumer stores them with
//! its feed position, conditionally).
//! Every instance runs one. Claims are exclusive (a lease in storage), so instances share the
//! work without sending one notification twice in the normal case; a worker that dies between
//! its claim and marking the batch published leaves it to be claimed again after the lease
//! (at least once: a stream may then see an id twice, which `Last-Event-ID` clients ignore).

use std::time::Duration;

use std::sync::Arc;

use onboard_kernel::events::EventFeed;
use onboard_notifications::{NotificationsConsumer, NotificationsService};

/// How often the outbox is polled: the most a committed notification waits before it is
/// published (well inside the 1 s the contract allows).
pub const POLL_INTERVAL: Duration = Duration::from_millis(150);

/// How often expired notifications are purged.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(300);

/// How long domain events are kept in the outbox (`EVENT_RETENTION`: 30 days).
pub const EVENT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// How many events one consumer step handles.
const EVENT_BATCH: u32 = 200;

/// Starts the worker on the current Tokio runtime; it runs as long as the runtime does.
pub fn spawn(
    service: NotificationsService,
    consumer: NotificationsConsumer,
    feed: Arc<dyn EventFeed>,
) {
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purge = tokio::time::interval(PURGE_INTERVAL);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = poll.tick() => {
                    // First the events that happened since the last tick.
                    loop {
                        match consumer.run_once(EVENT_BATCH).await {
                            Ok(n) if n >= EVENT_BATCH as usize => {}
                            Ok(_) => break,
                            Err(e) => {
                                tracing::warn!(error = format!("{e:#}"), "turning events into notifications failed");
                                break;
                            }
                        }
                    }
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
                    let horizon = chrono::Utc::now()
                        - chrono::TimeDelta::from_std(EVENT_RETENTION).unwrap_or(chrono::TimeDelta::MAX);
                    if let Err(e) = feed.purge(horizon).await {
                        tracing::warn!(error = format!("{e:#}"), "purging old events failed");
                    }
                }
            }
        }
    });
}
