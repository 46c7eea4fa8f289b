//! Naver Cloud SENS: SMS/LMS and KakaoTalk alimtalk, with signed requests.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use onboard_kernel::PhoneNumber;
use onboard_members::ports::SmsSender;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use crate::error::ProviderError;
use crate::text::TextKind;

/// SENS's public API address.
pub const SENS_API_URL: &str = "https://sens.apigw.ntruss.com";

/// The KakaoTalk channel and the SENS project that send alimtalk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlimtalkSettings {
    /// The Biz Message service id (`ncp:kkobizmsg:kr:…`).
    pub service_id: String,
    /// The KakaoTalk channel id (formerly "plus friend id"), such as `@onboard`.
    pub plus_friend_id: String,
}

/// How to reach SENS.
#[derive(Debug, Clone)]
pub struct SensSettings {
    /// Scheme and host, no path: [`SENS_API_URL`] in production.
    pub api_url: String,
    /// The access key id of the (sub) account.
    pub access_key: String,
    /// The secret key paired with `access_key`; signs every request.
    pub secret_key: SecretString,
    /// The SMS service id (`ncp:sms:kr:…`).
    pub sms_service_id: String,
    /// The registered caller number, digits only (`0212345678`).
    pub from: String,
    /// Alimtalk, when the deployment sends it.
    pub alimtalk: Option<AlimtalkSettings>,
    /// Per request, connect included.
    pub timeout: Duration,
}

/// SENS took a text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextAccepted {
    pub request_id: String,
    pub kind: TextKind,
}

/// SENS took an alimtalk message; its delivery is known later ([`SensClient::alimtalk_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlimtalkAccepted {
    pub request_id: String,
    pub message_id: String,
}

/// Where an alimtalk message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlimtalkStatus {
    /// Not known yet: ask again later.
    Pending,
    /// It reached the recipient's KakaoTalk (`0000`).
    Delivered,
    /// It will not be delivered; `code` is SENS's (`3018`: the recipient cannot receive it,
    /// blocked or without KakaoTalk).
    Failed { code: String, description: String },
}

/// A client of SENS. Cheap to clone.
#[derive(Clone)]
pub struct SensClient {
    http: reqwest::Client,
    settings: std::sync::Arc<SensSettings>,
}

impl fmt::Debug for SensClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SensClient")
            .field("api_url", &self.settings.api_url)
            .field("sms_service_id", &self.settings.sms_service_id)
            .finish_non_exhaustive()
    }
}

/// The `x-ncp-apigw-signature-v2` header value: base64 of HMAC-SHA256, keyed by the secret key,
/// over `"{method} {path}\n{timestamp}\n{access_key}"`, where `path` includes any query string
/// and `timestamp` is the `x-ncp-apigw-timestamp` header (milliseconds since the epoch).
pub fn signature(
    secret_key: &str,
    method: &str,
    path: &str,
    timestamp_ms: &str,
    access_key: &str,
) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{method} {path}\n{timestamp_ms}\n{access_key}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The recipient as SENS wants it: country code apart, and Korean numbers in domestic form
/// with the leading zero (`+821012345678` → `82`, `01012345678`).
fn recipient(to: &PhoneNumber) -> (&str, String) {
    let cc = to.country_code();
    let number = if cc == "82" {
        format!("0{}", to.national_number())
    } else {
        to.national_number().to_owned()
    };
    (cc, number)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendAnswer {
    request_id: String,
    status_code: String,
    #[serde(default)]
    status_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlimtalkSendAnswer {
    request_id: String,
    #[serde(default)]
    messages: Vec<AlimtalkSent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlimtalkSent {
    message_id: String,
    request_status_code: String,
    #[serde(default)]
    request_status_desc: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlimtalkResult {
    request_status_code: String,
    #[serde(default)]
    request_status_desc: String,
    message_status_code: Option<String>,
    message_status_name: Option<String>,
    #[serde(default)]
    message_status_desc: Option<String>,
}

impl SensClient {
    /// A client for `settings`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new(settings: SensSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(Self { http, settings: std::sync::Arc::new(settings) })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ProviderError> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
            .to_string();
        let s = &self.settings;
        let sig = signature(
            s.secret_key.expose_secret(),
            method.as_str(),
            path,
            &timestamp,
            &s.access_key,
        );
        let url = format!("{}{}", s.api_url.trim_end_matches('/'), path);
        let mut request = crate::traced(self.http.request(method, url))
            .header("x-ncp-apigw-timestamp", &timestamp)
            .header("x-ncp-iam-access-key", &s.access_key)
            .header("x-ncp-apigw-signature-v2", sig);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
                .body(body.to_string());
        }
        let answer = request.send().await.map_err(ProviderError::unreachable)?;
        let status = answer.status();
        let bytes = answer.bytes().await.map_err(ProviderError::unreachable)?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| {
                ProviderError::Unavailable(format!("unexpected answer from SENS: {e}"))
            })
        } else {
            Err(ProviderError::from_status(status.as_u16(), &bytes))
        }
    }

    /// Sends `text` as an SMS (up to 90 bytes) or an LMS (up to 2,000).
    ///
    /// # Errors
    /// [`ProviderError::TooLong`] past 2,000 bytes (nothing sent); the provider's refusal or
    /// unavailability otherwise. Never retried here: a retry could deliver twice.
    pub async fn send_text(
        &self,
        to: &PhoneNumber,
        text: &str,
    ) -> Result<TextAccepted, ProviderError> {
        let kind = TextKind::of(text)?;
        self.send_text_as(to, text, kind).await
    }

    /// Sends `text` as `kind`: an LMS even when the text would fit an SMS (what the group asked
    /// and paid for); an SMS text over 90 bytes goes as an LMS all the same.
    ///
    /// # Errors
    /// As [`Self::send_text`].
    pub async fn send_text_as(
        &self,
        to: &PhoneNumber,
        text: &str,
        kind: TextKind,
    ) -> Result<TextAccepted, ProviderError> {
        let kind = match (TextKind::of(text)?, kind) {
            (TextKind::Lms, _) | (_, TextKind::Lms) => TextKind::Lms,
            (TextKind::Sms, TextKind::Sms) => TextKind::Sms,
        };
        let (country_code, number) = recipient(to);
        let mut body = json!({
            "type": match kind { TextKind::Sms => "SMS", TextKind::Lms => "LMS" },
            "contentType": "COMM",
            "countryCode": country_code,
            "from": self.settings.from,
            "content": text,
            "messages": [{ "to": number }],
        });
        if kind == TextKind::Lms {
            body["subject"] = json!("");
        }
        let path = format!("/sms/v2/services/{}/messages", self.settings.sms_service_id);
        let answer: SendAnswer = self.call(reqwest::Method::POST, &path, Some(body)).await?;
        if answer.status_code != "202" {
            return Err(ProviderError::Rejected {
                code: answer.status_code,
                message: answer.status_name,
            });
        }
        Ok(TextAccepted { request_id: answer.request_id, kind })
    }

    fn alimtalk_settings(&self) -> Result<&AlimtalkSettings, ProviderError> {
        self.settings.alimtalk.as_ref().ok_or(ProviderError::NotConfigured("SENS alimtalk"))
    }

    /// Sends an alimtalk message built from the approved template `template_code`.
    /// SENS's own SMS failover is off: Onboard decides failover after the status check.
    ///
    /// # Errors
    /// [`ProviderError::Rejected`] when SENS refuses the request or the message (its
    /// `requestStatusCode` is not `A000`); [`ProviderError::NotConfigured`] without alimtalk
    /// settings.
    pub async fn send_alimtalk(
        &self,
        to: &PhoneNumber,
        template_code: &str,
        content: &str,
    ) -> Result<AlimtalkAccepted, ProviderError> {
        let alimtalk = self.alimtalk_settings()?;
        let (country_code, number) = recipient(to);
        let body = json!({
            "plusFriendId": alimtalk.plus_friend_id,
            "templateCode": template_code,
            "messages": [{
                "countryCode": country_code,
                "to": number,
                "content": content,
                "useSmsFailover": false,
            }],
        });
        let path = format!("/alimtalk/v2/services/{}/messages", alimtalk.service_id);
        let answer: AlimtalkSendAnswer =
            self.call(reqwest::Method::POST, &path, Some(body)).await?;
        let sent = answer.messages.into_iter().next().ok_or_else(|| ProviderError::Rejected {
            code: "no_message".to_owned(),
            message: "SENS answered without the message".to_owned(),
        })?;
        if sent.request_status_code != "A000" {
            return Err(ProviderError::Rejected {
                code: sent.request_status_code,
                message: sent.request_status_desc,
            });
        }
        Ok(AlimtalkAccepted { request_id: answer.request_id, message_id: sent.message_id })
    }

    /// Asks where the alimtalk message `message_id` stands.
    ///
    /// # Errors
    /// The provider's refusal or unavailability (reads are safe to retry by the caller).
    pub async fn alimtalk_status(&self, message_id: &str) -> Result<AlimtalkStatus, ProviderError> {
        let alimtalk = self.alimtalk_settings()?;
        let path = format!("/alimtalk/v2/services/{}/messages/{message_id}", alimtalk.service_id);
        let result: AlimtalkResult = self.call(reqwest::Method::GET, &path, None).await?;
        if result.request_status_code != "A000" {
            return Ok(AlimtalkStatus::Failed {
                code: result.request_status_code,
                description: result.request_status_desc,
            });
        }
        Ok(match (result.message_status_code.as_deref(), result.message_status_name.as_deref()) {
            (Some("0000"), _) => AlimtalkStatus::Delivered,
            (None | Some(""), _) | (_, Some("processing" | "ready" | "reserved")) => {
                AlimtalkStatus::Pending
            }
            (Some(code), _) => AlimtalkStatus::Failed {
                code: code.to_owned(),
                description: result.message_status_desc.unwrap_or_default(),
            },
        })
    }
}

#[async_trait]
impl SmsSender for SensClient {
    async fn send(&self, to: &PhoneNumber, text: &str) -> anyhow::Result<()> {
        self.send_text(to, text).await?;
        Ok(())
    }
}
