//! SMS senders for Onboard.
//!
//! - [`LogSmsSender`] writes each message to the log (target `onboard::sms`), optionally after a
//!   simulated delivery delay: the sender for development and the embedded mode.
//! - [`QueuedSmsSender`] puts any sender behind a bounded queue, so that a request never waits
//!   for the provider.

mod log;
mod queued;

pub use log::LogSmsSender;
pub use queued::QueuedSmsSender;
