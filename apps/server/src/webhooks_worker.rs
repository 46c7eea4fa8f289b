//! The webhooks worker: fans new domain events out to the endpoints that want them (the
//! [`WebhooksConsumer`], exactly once across instances), then delivers due attempts
//! ([`WebhooksService::deliver_due`]: claims under a lease, so instances share the work and
//! each delivery goes to one of them at a time), and keeps the metrics
//! `onboard_webhook_deliveries_total{outcome}` and `onboard_webhook_queue_age_seconds`.
//! Finished deliveries are purged after the events' retention.

use std::time::Duration;

use onboard_webhooks::WebhooksService;
use onboard_webhooks::consumer::WebhooksConsumer;

/// How many events one fan-out step handles.
const EVENT_BATCH: u32 = 500;

/// How often the queue's age is measured.
const QUEUE_AGE_INTERVAL: Duration = Duration::from_secs(10);

/// How often finished deliveries past the retention are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(300);

/// Starts the worker on the current Tokio runtime; it runs as long as the runtime does.
pub fn spawn(service: WebhooksService, consumer: WebhooksConsumer, poll: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut age = tokio::time::interval(QUEUE_AGE_INTERVAL);
        age.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purge = tokio::time::interval(PURGE_INTERVAL);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    fan_out(&consumer).await;
                    deliver(&service).await;
                }
                _ = age.tick() => match service.queue_age().await {
                    Ok(age) => metrics::gauge!("onboard_webhook_queue_age_seconds").set(age.as_secs_f64()),
                    Err(e) => tracing::warn!(error = format!("{e:#}"), "measuring the webhook queue failed"),
                },
                _ = purge.tick() => {
                    match service.purge(crate::notify_worker::EVENT_RETENTION).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(purged = n, "old webhook deliveries purged"),
                        Err(e) => tracing::warn!(error = format!("{e:#}"), "purging webhook deliveries failed"),
                    }
                }
            }
        }
    });
}

/// Turns every waiting event into deliveries (a full batch means more may wait).
async fn fan_out(consumer: &WebhooksConsumer) {
    loop {
        match consumer.run_once(EVENT_BATCH).await {
            Ok(n) if n >= EVENT_BATCH as usize => {}
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "fanning events out to webhooks failed");
                break;
            }
        }
    }
}

/// Delivers what is due, round after round while rounds come back full.
async fn deliver(service: &WebhooksService) {
    loop {
        match service.deliver_due().await {
            Ok(round) => {
                for (outcome, n) in [
                    ("succeeded", round.succeeded),
                    ("retrying", round.retrying),
                    ("failed", round.failed),
                    ("lost_lease", round.lost),
                ] {
                    if n > 0 {
                        metrics::counter!("onboard_webhook_deliveries_total", "outcome" => outcome)
                            .increment(n as u64);
                    }
                }
                if round.disabled > 0 {
                    tracing::warn!(
                        endpoints = round.disabled,
                        "webhook endpoints disabled after failing for days"
                    );
                }
                if round.attempted < service.config().batch as usize {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "delivering webhooks failed");
                break;
            }
        }
    }
}
