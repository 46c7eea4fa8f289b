//! One error enum per use case; each variant's doc names the HTTP answer it becomes.

use crate::model::{PlanCode, Usage};
use crate::plan_change::PlanRefusal;

/// Reading a group's billing, cards, receipts or usage (membership needed).
#[derive(Debug, thiserror::Error)]
pub enum ViewBillingError {
    /// 404: no such group for the caller.
    #[error("group not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::PaymentsService::preview`] and [`crate::PaymentsService::change_plan_as`].
#[derive(Debug, thiserror::Error)]
pub enum ChangePlanError {
    /// 404.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: needs `billing.manage`.
    #[error("changing billing needs the billing.manage permission")]
    Forbidden,
    /// 400 / 409 as [`PlanRefusal`] says.
    #[error(transparent)]
    Refused(#[from] PlanRefusal),
    /// 402 `payment_failed`: the charge made at once was declined; nothing changed.
    #[error("the payment failed: {0}")]
    PaymentFailed(String),
    /// 409 `billing_busy`: the account changed while this change was carried out; nothing
    /// changed.
    #[error("the billing account changed meanwhile; try again")]
    Busy,
    /// 502 `gateway_unavailable`: nothing changed.
    #[error("the payment gateway is unavailable")]
    GatewayUnavailable,
    /// 409 / 422 as [`IdempotencyError`] says: the idempotency key refused the repeat.
    #[error(transparent)]
    Key(IdempotencyError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<IdempotencyError> for ChangePlanError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::Unexpected(e) => Self::Unexpected(e),
            refused => Self::Key(refused),
        }
    }
}

/// Claiming an `Idempotency-Key`.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// 422 `idempotency_key_reused`: the key was used with another body.
    #[error("this Idempotency-Key was used with another request body")]
    Reused,
    /// 409 `idempotency_key_in_use`: the first request with the key still runs.
    #[error("a request with this Idempotency-Key is still running")]
    InUse,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Managing cards: prepare, add, delete.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// 404: no such group for the caller.
    #[error("group not found")]
    NotFound,
    /// 404 `card_not_found`.
    #[error("card not found")]
    CardNotFound,
    /// 403 `forbidden`.
    #[error("managing cards needs the billing.manage permission")]
    Forbidden,
    /// 400 `card_not_found_at_gateway`: no billing key under this customer_uid for this group.
    #[error("no card is registered at the gateway under this customer_uid")]
    NotAtGateway,
    /// 409 `card_exists`.
    #[error("this card is already registered")]
    Exists,
    /// 409 `main_card_in_use`: a charge is scheduled on the card.
    #[error("a charge is scheduled on this card; make another card main first")]
    InUse,
    /// 409 `billing_busy`: another main-card change is under way.
    #[error("another main-card change is under way")]
    Busy,
    /// 502 `gateway_unavailable`: nothing changed.
    #[error("the payment gateway is unavailable")]
    GatewayUnavailable,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::PaymentsService::record_usage_as`].
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// 404.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`.
    #[error("recording usage needs the billing.manage permission or a service token")]
    Forbidden,
    /// 404 `metric_not_found`.
    #[error("no plan limits the metric {0}")]
    UnknownMetric(String),
    /// 402 `plan_limit_reached`: nothing counted.
    #[error("the plan's limit is reached")]
    LimitReached(Usage),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::PaymentsService::handle_webhook`].
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 502 `gateway_unavailable`: the payment could not be re-read; the gateway should retry.
    #[error("the payment gateway is unavailable")]
    GatewayUnavailable,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ChangePlanError {
    /// The add-on a refusal names, if any.
    pub fn addon(&self) -> Option<&PlanCode> {
        match self {
            Self::Refused(PlanRefusal::UnknownAddon(a)) => Some(a),
            _ => None,
        }
    }
}
