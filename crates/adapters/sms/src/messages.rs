//! The messaging domain's provider port ([`MessageProvider`]) over SENS, Twilio and the log.
//!
//! - [`SensClient`]: SMS/LMS by the message's channel, alimtalk from its template (SENS's own
//!   SMS failover off: Onboard decides after the delivery check), and delivery checks.
//! - [`TwilioSmsSender`]: SMS and LMS (Twilio splits long texts); no alimtalk
//!   (`not_configured`, which a message with `failover` resends as SMS/LMS).
//! - [`LogMessageProvider`]: logs every message; an alimtalk reads "delivered" after a
//!   simulated delay, or fails with a configured code (demos of the failover).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use onboard_messaging::ports::{
    Accepted, DeliveryStatus, MessageProvider, ProviderError as MessagingError,
};
use onboard_messaging::{Channel, Message};

use crate::error::ProviderError;
use crate::sens::{AlimtalkStatus, SensClient};
use crate::text::TextKind;
use crate::twilio::TwilioSmsSender;

impl From<ProviderError> for MessagingError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Unavailable(why) => Self::Unavailable(why),
            ProviderError::Rejected { code, message } => Self::Rejected { code, message },
            ProviderError::TooLong(too_long) => {
                Self::Rejected { code: "too_long".to_owned(), message: too_long.to_string() }
            }
            ProviderError::NotConfigured(what) => Self::NotConfigured(what.to_owned()),
        }
    }
}

#[async_trait]
impl MessageProvider for SensClient {
    async fn send(&self, message: &Message) -> Result<Accepted, MessagingError> {
        let kind = match message.channel {
            Channel::Sms => TextKind::Sms,
            Channel::Lms => TextKind::Lms,
            Channel::Alimtalk => {
                let template = message.template_code.as_deref().unwrap_or_default();
                let accepted = self.send_alimtalk(&message.to, template, &message.text).await?;
                return Ok(Accepted { provider_message_id: Some(accepted.message_id) });
            }
        };
        let accepted = self.send_text_as(&message.to, &message.text, kind).await?;
        Ok(Accepted { provider_message_id: Some(accepted.request_id) })
    }

    async fn alimtalk_status(
        &self,
        provider_message_id: &str,
    ) -> Result<DeliveryStatus, MessagingError> {
        Ok(match SensClient::alimtalk_status(self, provider_message_id).await? {
            AlimtalkStatus::Pending => DeliveryStatus::Pending,
            AlimtalkStatus::Delivered => DeliveryStatus::Delivered,
            AlimtalkStatus::Failed { code, .. } => DeliveryStatus::Failed { code },
        })
    }
}

#[async_trait]
impl MessageProvider for TwilioSmsSender {
    async fn send(&self, message: &Message) -> Result<Accepted, MessagingError> {
        if message.channel == Channel::Alimtalk {
            return Err(MessagingError::NotConfigured("alimtalk (Twilio sends none)".to_owned()));
        }
        let accepted = self.send_text(&message.to, &message.text).await?;
        Ok(Accepted { provider_message_id: Some(accepted.sid) })
    }

    async fn alimtalk_status(&self, _: &str) -> Result<DeliveryStatus, MessagingError> {
        Err(MessagingError::NotConfigured("alimtalk (Twilio sends none)".to_owned()))
    }
}

/// Logs every message (target `onboard::sms`) and simulates alimtalk delivery: an alimtalk
/// reads `Pending` for `delivery_delay` after its send, then `Delivered`, or `Failed` with
/// `alimtalk_failure` when one is set. For development and the embedded mode.
#[derive(Debug, Default)]
pub struct LogMessageProvider {
    delivery_delay: Duration,
    alimtalk_failure: Option<String>,
    sent: Mutex<HashMap<String, Instant>>,
}

impl LogMessageProvider {
    /// A log provider whose alimtalk is delivered `delivery_delay` after its send, or fails
    /// then with the code `alimtalk_failure` (say `3018`).
    pub fn new(delivery_delay: Duration, alimtalk_failure: Option<String>) -> Self {
        Self { delivery_delay, alimtalk_failure, sent: Mutex::default() }
    }
}

#[async_trait]
impl MessageProvider for LogMessageProvider {
    async fn send(&self, message: &Message) -> Result<Accepted, MessagingError> {
        let id = format!("log-{}", message.id);
        tracing::info!(target: "onboard::sms", to = %message.to, channel = message.channel.as_str(),
            text = message.text, "message sent");
        if message.channel == Channel::Alimtalk {
            self.sent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id.clone(), Instant::now());
        }
        Ok(Accepted { provider_message_id: Some(id) })
    }

    async fn alimtalk_status(
        &self,
        provider_message_id: &str,
    ) -> Result<DeliveryStatus, MessagingError> {
        let sent = self
            .sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(provider_message_id)
            .copied();
        Ok(match sent {
            // Sent by another instance (or before a restart): as good as delivered.
            None => DeliveryStatus::Delivered,
            Some(at) if at.elapsed() < self.delivery_delay => DeliveryStatus::Pending,
            Some(_) => match &self.alimtalk_failure {
                Some(code) => DeliveryStatus::Failed { code: code.clone() },
                None => DeliveryStatus::Delivered,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Utc;
    use onboard_kernel::{GroupId, PhoneNumber};
    use onboard_messaging::{MessageId, NewMessage};

    use super::*;

    fn alimtalk() -> Message {
        NewMessage {
            id: MessageId::new(),
            group: GroupId::new(),
            to: PhoneNumber::parse("+821012345678", None).unwrap(),
            channel: Channel::Alimtalk,
            text: "hi".into(),
            template_code: Some("T1".into()),
            failover: true,
            price: 10,
            failover_of: None,
        }
        .into_message(Utc::now())
    }

    #[tokio::test]
    async fn the_log_provider_reports_a_configured_alimtalk_failure_after_its_delay() {
        let provider = LogMessageProvider::new(Duration::ZERO, Some("3018".into()));
        let id = provider.send(&alimtalk()).await.unwrap().provider_message_id.unwrap();
        assert_eq!(
            provider.alimtalk_status(&id).await.unwrap(),
            DeliveryStatus::Failed { code: "3018".into() }
        );
    }

    #[tokio::test]
    async fn the_log_provider_keeps_an_alimtalk_pending_during_its_delay() {
        let provider = LogMessageProvider::new(Duration::from_secs(3600), None);
        let id = provider.send(&alimtalk()).await.unwrap().provider_message_id.unwrap();
        assert_eq!(provider.alimtalk_status(&id).await.unwrap(), DeliveryStatus::Pending);
    }

    #[test]
    fn provider_errors_keep_their_codes() {
        let e: MessagingError =
            ProviderError::Rejected { code: "3018".into(), message: "blocked".into() }.into();
        assert_eq!(e.code(), "3018");
        let e: MessagingError = ProviderError::NotConfigured("SENS alimtalk").into();
        assert_eq!(e.code(), "not_configured");
    }
}
