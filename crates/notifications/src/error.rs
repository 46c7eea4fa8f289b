//! One error per use case.

/// A notification that is not the caller's, or that does not exist (or has expired).
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("no such notification")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Opening a stream.
#[derive(Debug, thiserror::Error)]
pub enum OpenStreamError {
    /// The ticket is unknown, used or expired.
    #[error("the stream ticket is unknown, used or expired")]
    TicketInvalid,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
