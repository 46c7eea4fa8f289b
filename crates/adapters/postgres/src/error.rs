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
