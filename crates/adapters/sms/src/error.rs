//! What can go wrong when a provider is asked to send.

use crate::text::TextTooLong;

/// A message was not taken by the provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Network failure, timeout, HTTP 5xx or 429, or an answer that does not parse: the message
    /// may or may not have been taken.
    #[error("SMS provider unavailable: {0}")]
    Unavailable(String),
    /// The provider answered and refused (its code and message).
    #[error("SMS provider refused the message ({code}): {message}")]
    Rejected { code: String, message: String },
    /// The text is too long for any message kind; nothing was sent.
    #[error(transparent)]
    TooLong(#[from] TextTooLong),
    /// The deployment did not configure this channel.
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
}

impl ProviderError {
    pub(crate) fn unreachable(error: reqwest::Error) -> Self {
        // Without the URL: it may carry account ids.
        Self::Unavailable(error.without_url().to_string())
    }

    /// A non-2xx answer: 5xx and 429 are unavailability, the rest refusals.
    pub(crate) fn from_status(status: u16, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        if status >= 500 || status == 429 {
            Self::Unavailable(format!("HTTP {status}: {text}"))
        } else {
            Self::Rejected { code: format!("http_{status}"), message: text }
        }
    }
}
