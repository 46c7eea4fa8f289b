//! Delivering due attempts: claim, sign, send, judge, record.

use std::time::Duration;

use chrono::{DateTime, Utc};
use onboard_kernel::events::Event;

use super::{WebhooksService, delta};
use crate::events::WebhookEvent;
use crate::model::{
    Attempt, AttemptRecord, Claim, DeliveryStatus, EndpointHealth, truncate, webhook_id,
};
use crate::ports::{OutgoingRequest, SendError};
use crate::signing::signature_header;

/// What one round of [`WebhooksService::deliver_due`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryRound {
    /// Claimed and attempted.
    pub attempted: usize,
    pub succeeded: usize,
    /// Failed, another attempt scheduled.
    pub retrying: usize,
    /// Failed for the last time.
    pub failed: usize,
    /// Attempts whose lease was lost before they were recorded (another worker, or a manual
    /// retry, took the delivery over).
    pub lost: usize,
    /// Endpoints this round disabled.
    pub disabled: usize,
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Answered { status: u16, body: String, latency: Duration },
    NoAnswer { error: SendError, latency: Duration },
}

impl WebhooksService {
    /// Claims the deliveries due now (up to [`crate::WebhooksConfig::batch`]), sends them all
    /// at once, and records each outcome: a 2xx succeeds; anything else schedules the next
    /// attempt by the retry schedule, or fails the delivery when the schedule is spent. An
    /// endpoint whose attempts have all failed for
    /// [`crate::WebhooksConfig::disable_after`] is disabled (`webhook.endpoint_disabled`).
    pub async fn deliver_due(&self) -> anyhow::Result<DeliveryRound> {
        let now = self.ports.clock.now();
        let claims = self
            .ports
            .deliveries
            .claim(now, now + delta(self.config.lease), self.config.batch)
            .await?;
        let results = futures_util::future::join_all(claims.iter().map(|c| self.attempt(c))).await;
        let mut round = DeliveryRound { attempted: claims.len(), ..DeliveryRound::default() };
        for result in results {
            let (record, stored) = result?;
            if !stored {
                round.lost += 1;
                continue;
            }
            match record.status {
                DeliveryStatus::Succeeded => round.succeeded += 1,
                DeliveryStatus::Pending => round.retrying += 1,
                _ => round.failed += 1,
            }
            if matches!(record.health, EndpointHealth::Disable(_)) {
                round.disabled += 1;
            }
        }
        Ok(round)
    }

    /// How long the oldest due delivery has waited (the queue's age, for metrics).
    pub async fn queue_age(&self) -> anyhow::Result<Duration> {
        self.ports.deliveries.queue_age(self.ports.clock.now()).await
    }

    /// Deletes finished deliveries older than `retention`; answers how many.
    pub async fn purge(&self, retention: Duration) -> anyhow::Result<u64> {
        self.ports.deliveries.purge(self.ports.clock.now() - delta(retention)).await
    }

    /// One attempt of a claimed delivery, recorded.
    async fn attempt(&self, claim: &Claim) -> anyhow::Result<(AttemptRecord, bool)> {
        let at = self.ports.clock.now();
        let id = webhook_id(claim.event_id);
        let timestamp = at.timestamp();
        let secrets = claim.endpoint.signing_secrets(at);
        let request = OutgoingRequest {
            url: claim.endpoint.url.clone(),
            signature: signature_header(&secrets, &id, timestamp, &claim.body),
            id,
            timestamp,
            body: claim.body.clone(),
        };
        let outcome = match self.ports.sender.send(&request).await {
            Ok(answer) => Outcome::Answered {
                status: answer.status,
                body: answer.body,
                latency: answer.latency,
            },
            Err((error, latency)) => Outcome::NoAnswer { error, latency },
        };
        let record = self.judge(claim, &outcome, at);
        let events = match record.health {
            EndpointHealth::Disable(_) => vec![Event::record(
                &WebhookEvent::EndpointDisabled {
                    endpoint_id: claim.endpoint.id,
                    group_id: claim.endpoint.scope.group(),
                    url: claim.endpoint.url.as_str().to_owned(),
                },
                at,
            )],
            _ => Vec::new(),
        };
        let stored = self.ports.deliveries.record(claim.id, claim.lease, &record, &events).await?;
        Ok((record, stored))
    }

    /// The record of an attempt made at `at`: the delivery's new status and next attempt, and
    /// the endpoint's health.
    fn judge(&self, claim: &Claim, outcome: &Outcome, at: DateTime<Utc>) -> AttemptRecord {
        let attempts = claim.attempts + 1;
        let (ok, status, response, latency) = match outcome {
            Outcome::Answered { status, body, latency } => {
                ((200..300).contains(status), Some(*status), body.clone(), *latency)
            }
            Outcome::NoAnswer { error, latency } => (false, None, error.to_string(), *latency),
        };
        let attempt = Attempt {
            at,
            response_status: status,
            latency_ms: u32::try_from(latency.as_millis()).unwrap_or(u32::MAX),
            response: truncate(response, self.config.response_limit),
        };
        if ok {
            return AttemptRecord {
                status: DeliveryStatus::Succeeded,
                attempts,
                next_attempt_at: None,
                attempt,
                health: EndpointHealth::Healthy,
            };
        }
        let wait = usize::try_from(attempts - 1)
            .ok()
            .and_then(|i| self.config.retry_schedule.get(i).copied());
        let since = claim.endpoint.failing_since.unwrap_or(at);
        let health = if at - since >= delta(self.config.disable_after) {
            EndpointHealth::Disable(since)
        } else {
            EndpointHealth::Failing(since)
        };
        AttemptRecord {
            status: if wait.is_some() { DeliveryStatus::Pending } else { DeliveryStatus::Failed },
            attempts,
            next_attempt_at: wait.map(|w| at + delta(w)),
            attempt,
            health,
        }
    }
}
