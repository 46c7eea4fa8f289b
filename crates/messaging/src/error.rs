//! One error per use case.

use crate::pricing::TextTooLong;

/// The caller may not send in the group.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// No such group for the caller (unknown, or not an active member).
    #[error("group not found")]
    NotFound,
    /// An active member holding neither `messages.send` nor `group.manage`.
    #[error("sending messages needs messages.send or group.manage")]
    Forbidden,
    /// Storage (or another adapter) failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Storing a batch of messages.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The group's SMS credit does not cover the batch: nothing was stored or debited.
    #[error("the SMS credit does not cover these messages")]
    InsufficientCredit,
    /// Storage (or another adapter) failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Sending messages.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No such group for the caller.
    #[error("group not found")]
    NotFound,
    /// The caller holds neither `messages.send` nor `group.manage`.
    #[error("sending messages needs messages.send or group.manage")]
    Forbidden,
    /// No recipients, or more than the limit.
    #[error("between 1 and {max} recipients, not {given}")]
    Recipients {
        /// How many the request named.
        given: usize,
        /// The most a send may name.
        max: usize,
    },
    /// An empty text.
    #[error("the text is empty")]
    EmptyText,
    /// A text longer than 2,000 bytes.
    #[error(transparent)]
    TextTooLong(#[from] TextTooLong),
    /// An alimtalk without a template code.
    #[error("an alimtalk needs its template_code")]
    TemplateRequired,
    /// The group's SMS credit does not cover the messages: nothing was queued.
    #[error("the SMS credit does not cover these messages")]
    InsufficientCredit,
    /// Storage (or another adapter) failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Reading messages.
#[derive(Debug, thiserror::Error)]
pub enum GetMessageError {
    /// No such group for the caller, or no such message in it.
    #[error("not found")]
    NotFound,
    /// The caller holds neither `messages.send` nor `group.manage`.
    #[error("reading messages needs messages.send or group.manage")]
    Forbidden,
    /// Storage (or another adapter) failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<GateError> for SendError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::NotFound => Self::NotFound,
            GateError::Forbidden => Self::Forbidden,
            GateError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<GateError> for GetMessageError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::NotFound => Self::NotFound,
            GateError::Forbidden => Self::Forbidden,
            GateError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<QueueError> for SendError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::InsufficientCredit => Self::InsufficientCredit,
            QueueError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}
