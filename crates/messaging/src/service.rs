//! The use cases: send (authorize, validate, price, queue in one repository call), read, and
//! the worker's steps (send a claimed message, check a sent alimtalk's delivery).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use onboard_groups::Slug;
use onboard_kernel::events::Event;
use onboard_kernel::{Clock, MemberId};

use crate::config::MessagingConfig;
use crate::error::{GetMessageError, SendError};
use crate::events::MessageEvent;
use crate::failover::{self, Decision};
use crate::model::{
    Channel, Claim, FailOverEvents, FailOverOutcome, Message, MessageId, MessageStatus, NewMessage,
    SendRequest,
};
use crate::ports::{DeliveryStatus, MessageProvider, MessageRepository, ProviderError, SenderGate};
use crate::pricing;

/// The result code of an alimtalk whose delivery was still unknown after the last check.
pub const CHECK_GAVE_UP: &str = "check_timeout";

/// The adapters the service works with.
#[derive(Clone)]
pub struct MessagingPorts {
    /// Messages, their outbox and the credit they are paid from.
    pub repo: Arc<dyn MessageRepository>,
    /// The SMS/LMS/alimtalk provider.
    pub provider: Arc<dyn MessageProvider>,
    /// Who may send in a group.
    pub gate: Arc<dyn SenderGate>,
    /// The time of queueing, sending and checks.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MessagingPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagingPorts").finish_non_exhaustive()
    }
}

/// Group messages: sending, reading, and the outbox worker's steps.
#[derive(Clone)]
pub struct MessagingService {
    ports: MessagingPorts,
    config: MessagingConfig,
}

impl std::fmt::Debug for MessagingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagingService").field("config", &self.config).finish_non_exhaustive()
    }
}

/// `d` as a time delta (saturating).
fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl MessagingService {
    /// The largest page a list answers.
    pub const MAX_PAGE: u32 = 100;

    /// The service over `ports`, configured by `config`.
    pub fn new(ports: MessagingPorts, config: MessagingConfig) -> Self {
        Self { ports, config }
    }

    /// Its configuration.
    pub fn config(&self) -> &MessagingConfig {
        &self.config
    }

    fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now().trunc_subsecs(6)
    }

    /// Queues one message per recipient, paid from the group's SMS credit, in one step: all
    /// are queued and debited, or (credit short) none.
    ///
    /// # Errors
    /// [`SendError`]: the gate's refusal, an invalid request, or the credit short.
    #[tracing::instrument(level = "debug", name = "messaging.send", skip_all)]
    pub async fn send(
        &self,
        slug: &Slug,
        caller: MemberId,
        request: SendRequest,
    ) -> Result<Vec<Message>, SendError> {
        let group = self.ports.gate.sender_group(slug, caller).await?;
        let max = self.config.max_recipients;
        if request.to.is_empty() || request.to.len() > max {
            return Err(SendError::Recipients { given: request.to.len(), max });
        }
        if request.text.trim().is_empty() {
            return Err(SendError::EmptyText);
        }
        let template_code = request.template_code.filter(|t| !t.trim().is_empty());
        if request.channel == Channel::Alimtalk && template_code.is_none() {
            return Err(SendError::TemplateRequired);
        }
        let (channel, price) = pricing::price(request.channel, &request.text, &self.config.prices)?;
        let batch: Vec<NewMessage> = request
            .to
            .into_iter()
            .map(|to| NewMessage {
                id: MessageId::new(),
                group,
                to,
                channel,
                text: request.text.clone(),
                template_code: template_code.clone().filter(|_| channel == Channel::Alimtalk),
                failover: request.failover && channel == Channel::Alimtalk,
                price,
                failover_of: None,
            })
            .collect();
        let now = self.now();
        let queued = MessageEvent::Queued {
            group_id: group,
            channel: channel.as_str().to_owned(),
            count: u32::try_from(batch.len()).unwrap_or(u32::MAX),
            total_price: batch.iter().map(|m| m.price).sum(),
            by: caller,
        };
        self.ports.repo.queue_batch(&batch, &[Event::record(&queued, now)], now).await?;
        Ok(batch.into_iter().map(|m| m.into_message(now)).collect())
    }

    /// The group's message `id`.
    ///
    /// # Errors
    /// [`GetMessageError::NotFound`] for another group's or an unknown id.
    #[tracing::instrument(level = "debug", name = "messaging.get", skip_all)]
    pub async fn get(
        &self,
        slug: &Slug,
        caller: MemberId,
        id: MessageId,
    ) -> Result<Message, GetMessageError> {
        let group = self.ports.gate.sender_group(slug, caller).await?;
        self.ports.repo.get(group, id).await?.ok_or(GetMessageError::NotFound)
    }

    /// A page of the group's messages, newest first, before `before`.
    ///
    /// # Errors
    /// The gate's refusal.
    #[tracing::instrument(level = "debug", name = "messaging.list", skip_all)]
    pub async fn list(
        &self,
        slug: &Slug,
        caller: MemberId,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, GetMessageError> {
        let group = self.ports.gate.sender_group(slug, caller).await?;
        let limit = limit.clamp(1, Self::MAX_PAGE);
        Ok(self.ports.repo.list(group, before, limit).await?)
    }

    // -----------------------------------------------------------------------------------------
    // The worker
    // -----------------------------------------------------------------------------------------

    /// Claims the messages whose step is due and runs each step, recording each outcome right
    /// after its provider call; answers how many were claimed (a full batch: call again).
    ///
    /// # Errors
    /// When the claim fails; a failing step is logged and left to be claimed again after the
    /// lease.
    #[tracing::instrument(level = "debug", name = "messaging.process_due", skip_all)]
    pub async fn process_due(&self) -> anyhow::Result<usize> {
        let now = self.now();
        let claims =
            self.ports.repo.claim(now, now + delta(self.config.lease), self.config.batch).await?;
        let n = claims.len();
        for claim in claims {
            if let Err(e) = self.step(&claim).await {
                tracing::warn!(message = %claim.message.id, error = format!("{e:#}"),
                    "a message step failed; it is retried after its lease");
            }
        }
        Ok(n)
    }

    /// Runs the claimed message's due step.
    ///
    /// # Errors
    /// When storage fails.
    #[tracing::instrument(level = "debug", name = "messaging.step", skip_all)]
    pub async fn step(&self, claim: &Claim) -> anyhow::Result<()> {
        match (claim.message.status, claim.message.channel) {
            (MessageStatus::Queued, _) => self.deliver(claim).await,
            (MessageStatus::Sent, Channel::Alimtalk) => self.check(claim).await,
            (status, _) => {
                tracing::warn!(message = %claim.message.id, status = status.as_str(),
                    "a claimed message has no due step");
                Ok(())
            }
        }
    }

    async fn deliver(&self, claim: &Claim) -> anyhow::Result<()> {
        let message = &claim.message;
        let outcome = self.ports.provider.send(message).await;
        let now = self.now();
        let recorded = match outcome {
            Ok(accepted) => {
                let check_at = (message.channel == Channel::Alimtalk
                    && accepted.provider_message_id.is_some())
                .then(|| now + delta(self.config.check_delay));
                let sent = MessageEvent::Sent {
                    message_id: message.id,
                    group_id: message.group,
                    channel: message.channel.as_str().to_owned(),
                };
                self.ports
                    .repo
                    .mark_sent(
                        claim,
                        accepted.provider_message_id,
                        check_at,
                        &[Event::record(&sent, now)],
                        now,
                    )
                    .await?
            }
            // The provider may have taken it: no resend; the charge goes back.
            Err(e @ ProviderError::Unavailable(_)) => {
                tracing::warn!(message = %message.id, error = %e, "the provider is unavailable");
                self.fail(claim, e.code(), true, now).await?
            }
            Err(e) if message.channel == Channel::Alimtalk => {
                self.after_alimtalk(claim, e.code(), now).await?
            }
            Err(e) => self.fail(claim, e.code(), true, now).await?,
        };
        if !recorded {
            tracing::warn!(message = %message.id, "the claim ran out before the outcome was recorded");
        }
        Ok(())
    }

    /// An alimtalk that did not arrive (`code`): resent, or failed (refunded when it surely did
    /// not arrive).
    async fn after_alimtalk(
        &self,
        claim: &Claim,
        code: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let message = &claim.message;
        match failover::decide(code, message.failover, &message.text) {
            Decision::Delivered => self.delivered(claim, now).await,
            Decision::Fail => {
                let refund = failover::is_non_delivery(code);
                self.fail(claim, code, refund, now).await
            }
            Decision::Resend(channel) => {
                let resend = NewMessage {
                    id: MessageId::new(),
                    group: message.group,
                    to: message.to.clone(),
                    channel,
                    text: message.text.clone(),
                    template_code: None,
                    failover: false,
                    price: pricing::unit_price(channel, &self.config.prices),
                    failover_of: Some(message.id),
                };
                let resent = MessageEvent::FailedOver {
                    message_id: message.id,
                    group_id: message.group,
                    code: code.to_owned(),
                    resend_id: resend.id,
                    channel: channel.as_str().to_owned(),
                };
                let events = FailOverEvents {
                    resent: vec![Event::record(&resent, now)],
                    no_credit: vec![Event::record(&failed(message, code, true), now)],
                };
                let outcome = self.ports.repo.fail_over(claim, code, &resend, &events, now).await?;
                if outcome == FailOverOutcome::NoCredit {
                    tracing::info!(message = %message.id, "no SMS credit for the failover resend");
                }
                Ok(outcome != FailOverOutcome::LeaseLost)
            }
        }
    }

    async fn check(&self, claim: &Claim) -> anyhow::Result<()> {
        let now = self.now();
        let Some(provider_id) = claim.message.provider_message_id.as_deref() else {
            self.fail(claim, CHECK_GAVE_UP, false, now).await?;
            return Ok(());
        };
        let status = self.ports.provider.alimtalk_status(provider_id).await;
        let now = self.now();
        match status {
            Ok(DeliveryStatus::Delivered) => {
                self.delivered(claim, now).await?;
            }
            Ok(DeliveryStatus::Failed { code }) => {
                self.after_alimtalk(claim, &code, now).await?;
            }
            Ok(DeliveryStatus::Pending) | Err(_) => {
                if let Err(e) = &status {
                    tracing::info!(message = %claim.message.id, error = %e, "alimtalk check failed");
                }
                let checks = claim.checks.saturating_add(1);
                if checks >= self.config.max_checks {
                    self.fail(claim, CHECK_GAVE_UP, false, now).await?;
                } else {
                    let at = now + self.backoff(checks);
                    self.ports.repo.reschedule_check(claim, at, &[], now).await?;
                }
            }
        }
        Ok(())
    }

    /// Records the claimed message `failed` with `code` (refunded or not), and its event.
    async fn fail(
        &self,
        claim: &Claim,
        code: &str,
        refund: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let events = [Event::record(&failed(&claim.message, code, refund), now)];
        self.ports.repo.mark_failed(claim, code, refund, &events, now).await
    }

    /// Records the claimed alimtalk `delivered`, and its event.
    async fn delivered(&self, claim: &Claim, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let delivered =
            MessageEvent::Delivered { message_id: claim.message.id, group_id: claim.message.group };
        self.ports.repo.mark_delivered(claim, &[Event::record(&delivered, now)], now).await
    }

    /// The wait before check number `checks + 1`: the check delay doubled per check made,
    /// up to the cap.
    #[must_use]
    pub fn backoff(&self, checks: u32) -> TimeDelta {
        let factor = 1_u32.checked_shl(checks.min(20)).unwrap_or(u32::MAX);
        let wait = self.config.check_delay.saturating_mul(factor);
        delta(wait.min(self.config.check_backoff_cap))
    }
}

/// The event of `message` failing with `code`, its price refunded when `refund` (a free
/// message has nothing to refund).
fn failed(message: &Message, code: &str, refund: bool) -> MessageEvent {
    MessageEvent::Failed {
        message_id: message.id,
        group_id: message.group,
        code: code.to_owned(),
        refunded: refund && message.price > 0,
    }
}

#[cfg(test)]
mod tests;
