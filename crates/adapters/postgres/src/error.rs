//! Reading PostgreSQL errors.

use diesel::result::{DatabaseErrorKind, Error};

/// The constraint a unique violation broke, if `error` is one.
pub(crate) fn violated_unique(error: &Error) -> Option<&str> {
    match error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => info.constraint_name(),
        _ => None,
    }
}

/// Why a transaction was rolled back: the database failed, or the use case refused.
#[derive(Debug)]
pub(crate) enum TxError<E> {
    Db(Error),
    Refused(E),
}

impl<E> From<Error> for TxError<E> {
    fn from(error: Error) -> Self {
        Self::Db(error)
    }
}

/// Whether the database aborted the transaction only to settle a conflict (a deadlock or a
/// serialization failure), so that running it again may succeed. PostgreSQL reports a deadlock
/// (40P01) with no kind of its own through diesel; its message is matched (the server's
/// messages are in English unless `lc_messages` says otherwise).
pub(crate) fn is_transient(error: &Error) -> bool {
    match error {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// How many times a transaction starts over after the database aborted it to settle a
/// conflict ([`is_transient`]).
pub(crate) const TX_ATTEMPTS: usize = 3;

/// Runs `$attempt` (an expression giving a `Result<_, TxError<E>>` future) until it commits,
/// is refused, or fails for a reason other than a deadlock or serialization failure (then at
/// most [`TX_ATTEMPTS`] times); a database failure becomes the refusal type's unexpected
/// error with `$what` as its context.
macro_rules! retrying {
    ($what:literal, $attempt:expr) => {{
        let mut attempt = 1;
        loop {
            match $attempt.await {
                Ok(done) => break Ok(done),
                Err($crate::error::TxError::Refused(refusal)) => break Err(refusal),
                Err($crate::error::TxError::Db(e))
                    if $crate::error::is_transient(&e) && attempt < $crate::error::TX_ATTEMPTS =>
                {
                    attempt += 1;
                    tracing::debug!(error = %e, what = $what, "transaction aborted; starting over");
                }
                Err($crate::error::TxError::Db(e)) => {
                    break Err(anyhow::Error::new(e).context($what).into());
                }
            }
        }
    }};
}
pub(crate) use retrying;

/// The constraint a foreign-key violation broke, if `error` is one.
pub(crate) fn violated_foreign_key(error: &Error) -> Option<&str> {
    match error {
        Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
            info.constraint_name()
        }
        _ => None,
    }
}
