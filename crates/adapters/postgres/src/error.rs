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

/// The constraint a foreign-key violation broke, if `error` is one.
pub(crate) fn violated_foreign_key(error: &Error) -> Option<&str> {
    match error {
        Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
            info.constraint_name()
        }
        _ => None,
    }
}
