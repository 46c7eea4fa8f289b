//! SMS senders for Onboard.
//!
//! - [`LogSmsSender`] writes each message to the log (target `onboard::sms`), optionally after a
//!   simulated delivery delay: the sender for development and the embedded mode.
//! - [`QueuedSmsSender`] puts any sender behind a bounded queue, so that a request never waits
//!   for the provider.
//! - [`SensClient`] sends SMS/LMS and KakaoTalk alimtalk through Naver Cloud SENS (signed
//!   requests), and checks alimtalk delivery.
//! - [`TwilioSmsSender`] sends SMS through Twilio.
//!
//! - Each of them (the log one as [`LogMessageProvider`]) is also the messaging domain's
//!   `MessageProvider` (group messages: SMS, LMS, alimtalk and its delivery check).
//!
//! [`TextKind::of`] decides SMS or LMS by the text's EUC-KR length (90 and 2,000 bytes).

mod error;
mod log;
mod messages;
mod queued;
pub mod sens;
mod text;
mod twilio;

pub use error::ProviderError;

/// `request` with the current trace context (`traceparent`), when the application exports
/// traces.
fn traced(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    onboard_kernel::trace_context::outbound_headers()
        .into_iter()
        .fold(request, |request, (name, value)| request.header(name, value))
}
pub use log::LogSmsSender;
pub use messages::LogMessageProvider;
pub use queued::QueuedSmsSender;
pub use sens::{AlimtalkSettings, SensClient, SensSettings};
pub use text::{LMS_MAX_BYTES, SMS_MAX_BYTES, TextKind, TextTooLong, euc_kr_len};
pub use twilio::{TWILIO_API_URL, TwilioSettings, TwilioSmsSender};
