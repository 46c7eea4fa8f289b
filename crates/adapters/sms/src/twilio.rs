//! Twilio Programmable Messaging: SMS.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use onboard_kernel::PhoneNumber;
use onboard_members::ports::SmsSender;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::ProviderError;

/// Twilio's public API address.
pub const TWILIO_API_URL: &str = "https://api.twilio.com";

/// How to reach Twilio.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// Scheme and host: [`TWILIO_API_URL`] in production.
    pub api_url: String,
    /// `AC…`
    pub account_sid: String,
    pub auth_token: SecretString,
    /// The sender: an E.164 number, or a messaging service sid (`MG…`).
    pub from: String,
    /// Per request, connect included.
    pub timeout: Duration,
}

/// Twilio took a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioAccepted {
    /// The message sid, `SM…`.
    pub sid: String,
    /// Twilio's status word (`queued`, `accepted`, …).
    pub status: String,
}

/// Sends SMS through Twilio. Cheap to clone.
#[derive(Clone)]
pub struct TwilioSmsSender {
    http: reqwest::Client,
    settings: std::sync::Arc<TwilioSettings>,
}

impl fmt::Debug for TwilioSmsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSmsSender")
            .field("api_url", &self.settings.api_url)
            .field("account_sid", &self.settings.account_sid)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Created {
    sid: String,
    status: String,
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}`.
#[derive(Deserialize)]
struct Refusal {
    code: Option<i64>,
    message: Option<String>,
}

impl TwilioSmsSender {
    /// A sender for `settings`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new(settings: TwilioSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(Self { http, settings: std::sync::Arc::new(settings) })
    }

    /// Sends `text` to `to` (`POST /2010-04-01/Accounts/{sid}/Messages.json`, a form body).
    ///
    /// # Errors
    /// [`ProviderError::Rejected`] with Twilio's error code (say `21211`, an invalid `To`);
    /// [`ProviderError::Unavailable`] on network failure, 5xx or 429. Never retried here.
    pub async fn send_text(
        &self,
        to: &PhoneNumber,
        text: &str,
    ) -> Result<TwilioAccepted, ProviderError> {
        let s = &self.settings;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            s.api_url.trim_end_matches('/'),
            s.account_sid
        );
        let sender = if s.from.starts_with("MG") { "MessagingServiceSid" } else { "From" };
        let form = [("To", to.as_e164()), (sender, s.from.as_str()), ("Body", text)];
        let answer = crate::traced(self.http.post(url))
            .basic_auth(&s.account_sid, Some(s.auth_token.expose_secret()))
            .form(&form)
            .send()
            .await
            .map_err(ProviderError::unreachable)?;
        let status = answer.status().as_u16();
        let body = answer.bytes().await.map_err(ProviderError::unreachable)?;
        if (200..300).contains(&status) {
            let created: Created = serde_json::from_slice(&body).map_err(|e| {
                ProviderError::Unavailable(format!("unexpected answer from Twilio: {e}"))
            })?;
            return Ok(TwilioAccepted { sid: created.sid, status: created.status });
        }
        if status < 500
            && status != 429
            && let Ok(refusal) = serde_json::from_slice::<Refusal>(&body)
        {
            return Err(ProviderError::Rejected {
                code: refusal.code.map_or_else(|| format!("http_{status}"), |c| c.to_string()),
                message: refusal.message.unwrap_or_default(),
            });
        }
        Err(ProviderError::from_status(status, &body))
    }
}

#[async_trait]
impl SmsSender for TwilioSmsSender {
    async fn send(&self, to: &PhoneNumber, text: &str) -> anyhow::Result<()> {
        self.send_text(to, text).await?;
        Ok(())
    }
}
