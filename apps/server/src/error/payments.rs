//! Plans, billing, cards, usage and the gateway.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode, conflict, forbidden, group_not_found};

use onboard_payments as pay;

fn gateway_unavailable() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        ErrorCode::GatewayUnavailable,
        "the payment gateway is unavailable; nothing changed",
    )
}

fn billing_busy(detail: &str) -> ApiError {
    conflict(ErrorCode::BillingBusy, detail)
}

impl From<pay::PlanRefusal> for ApiError {
    fn from(e: pay::PlanRefusal) -> Self {
        use pay::PlanRefusal as R;
        match e {
            R::UnknownPlan => {
                ApiError::invalid_field(ErrorCode::InvalidRequest, "plan", "no such plan")
            }
            R::UnknownAddon(a) => ApiError::invalid_field(
                ErrorCode::InvalidRequest,
                "addons",
                format!("the plan offers no add-on {a}"),
            ),
            R::IntervalRequired => ApiError::invalid_field(
                ErrorCode::InvalidRequest,
                "interval",
                "a paid plan needs month or year",
            ),
            R::NoMainCard => {
                conflict(ErrorCode::NoMainCard, "the group has no main card: add a card first")
            }
            R::Busy => billing_busy("another plan change is being charged; try again"),
        }
    }
}

impl From<onboard_gateway::RegisterCardError> for ApiError {
    fn from(e: onboard_gateway::RegisterCardError) -> Self {
        use onboard_gateway::RegisterCardError as E;
        match e {
            E::Invalid { field, message } => {
                Self::invalid_field(ErrorCode::InvalidRequest, field, message)
            }
            E::Declined => Self::invalid_field(
                ErrorCode::InvalidRequest,
                "card_number",
                E::Declined.to_string(),
            ),
        }
    }
}

map_errors! {
    pay::ViewBillingError { NotFound => group_not_found() }
    pay::ChangePlanError {
        NotFound => group_not_found(),
        Forbidden => forbidden("changing billing needs the billing.manage permission"),
        Refused(r) => r.into(),
        PaymentFailed(reason) => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            ErrorCode::PaymentFailed,
            format!("the payment failed ({reason}); nothing changed"),
        ),
        Busy => billing_busy("the billing account changed meanwhile; nothing changed, try again"),
        GatewayUnavailable => gateway_unavailable(),
        Key(e) => e.into(),
    }
    pay::IdempotencyError {
        Reused => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with another request body",
        ),
        InUse => conflict(
            ErrorCode::IdempotencyKeyInUse,
            "a request with this Idempotency-Key is still running",
        ),
    }
    pay::CardError {
        NotFound => group_not_found(),
        CardNotFound => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::CardNotFound, "no such card in this group"),
        Forbidden => forbidden("managing cards needs the billing.manage permission"),
        NotAtGateway => ApiError::invalid_field(
            ErrorCode::CardNotFoundAtGateway,
            "customer_uid",
            "no card is registered at the gateway under this customer_uid for this group",
        ),
        Exists => conflict(ErrorCode::CardExists, "this card is already registered"),
        InUse => conflict(
            ErrorCode::MainCardInUse,
            "a charge is scheduled on this card: make another card main first",
        ),
        Busy => billing_busy("another main-card change is under way; try again"),
        GatewayUnavailable => gateway_unavailable(),
    }
    pay::UsageError {
        NotFound => group_not_found(),
        Forbidden => forbidden("recording usage needs the billing.manage permission or a service token"),
        UnknownMetric(m) => ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::MetricNotFound,
            format!("no plan limits a metric {m:?}"),
        ),
        LimitReached(u) => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            ErrorCode::PlanLimitReached,
            format!(
                "the plan allows {} {} in this period; {} used; nothing counted",
                u.limit.unwrap_or_default(), u.metric, u.used
            ),
        ).with_extra("usage", crate::dto::UsageDto::from(u).to_json()),
    }
    pay::WebhookError { GatewayUnavailable => gateway_unavailable() }
}

impl From<onboard_gateway::ExecuteError> for ApiError {
    fn from(e: onboard_gateway::ExecuteError) -> Self {
        match e {
            onboard_gateway::ExecuteError::NotScheduled => Self::not_found(
                "no charge is scheduled under this merchant_uid (never, cancelled, or already run)",
            ),
        }
    }
}
