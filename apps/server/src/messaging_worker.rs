//! The messaging outbox worker: sends queued messages and checks alimtalk delivery.
//!
//! Every instance runs one. A message is claimed by one worker at a time under a lease (see
//! `onboard_messaging::ports::MessageRepository`), sent, and its outcome recorded right after
//! the provider call in a transaction of its own, with the outcome's events
//! (`onboard_messaging::events::MessageEvent`). A worker that dies leaves its unsent claims
//! to be claimed again once the lease runs out. The one case that may send twice: a worker
//! killed after the provider took a message and before the outcome committed (the provider
//! call and the database cannot be one transaction); the next worker sends it again after the
//! lease.
//!
//! The worker polls every `poll` (250 ms by default), which is also the finest resolution of
//! the alimtalk checks' schedule (`ALIMTALK_CHECK_DELAY`): the checks are due times on the
//! message rows, claimed like sends.

use std::time::Duration;

use onboard_messaging::MessagingService;

/// Starts the worker on the current Tokio runtime; it runs as long as the runtime does (or
/// until the handle is aborted).
pub fn spawn(service: MessagingService, poll: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let batch = usize::try_from(service.config().batch).unwrap_or(usize::MAX);
        let mut interval = tokio::time::interval(poll);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            // Drain: a full batch means more may be due.
            loop {
                match service.process_due().await {
                    Ok(n) if n >= batch => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "the messaging worker could not claim"
                        );
                        break;
                    }
                }
            }
        }
    })
}
