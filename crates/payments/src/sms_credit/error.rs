//! Why an SMS credit use case failed.

use onboard_groups::AuthorizeError;

use crate::error::IdempotencyError;

/// Reading or changing a group's SMS credit.
#[derive(Debug, thiserror::Error)]
pub enum SmsCreditError {
    /// 404: no such group for the caller.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: needs `billing.manage`.
    #[error("SMS credit needs the billing.manage permission")]
    Forbidden,
    /// 400 `invalid_request`: below [`MIN_PURCHASE`](super::MIN_PURCHASE) (or a negative threshold).
    #[error("{0}")]
    Invalid(&'static str),
    /// 409 `no_main_card`.
    #[error("the group has no main card")]
    NoMainCard,
    /// 402 `payment_failed`: declined; nothing was added.
    #[error("the payment failed: {0}")]
    PaymentFailed(String),
    /// 502 `gateway_unavailable`: the outcome is unknown; the purchase is settled later by
    /// reconciliation (credited if it was charged).
    #[error("the payment gateway is unavailable")]
    GatewayUnavailable,
    /// 409 / 422 as [`IdempotencyError`] says: the idempotency key refused the repeat.
    #[error(transparent)]
    Key(IdempotencyError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<IdempotencyError> for SmsCreditError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::Unexpected(e) => Self::Unexpected(e),
            refused => Self::Key(refused),
        }
    }
}

impl From<AuthorizeError> for SmsCreditError {
    fn from(e: AuthorizeError) -> Self {
        match e {
            AuthorizeError::NotFound => Self::NotFound,
            AuthorizeError::Forbidden(_) => Self::Forbidden,
            AuthorizeError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}
