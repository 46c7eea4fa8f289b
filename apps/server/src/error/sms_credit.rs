//! SMS credit.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode, conflict, forbidden, group_not_found};
use onboard_payments as pay;

map_errors! {
    pay::sms_credit::SmsCreditError {
        NotFound => group_not_found(),
        Forbidden => forbidden("SMS credit needs the billing.manage permission"),
        Invalid(message) => {
            let (field, message) = message.split_once(": ").unwrap_or(("amount", message));
            ApiError::invalid_field(ErrorCode::InvalidRequest, field, message)
        },
        NoMainCard => conflict(ErrorCode::NoMainCard, "the group has no main card: add a card first"),
        PaymentFailed(reason) => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            ErrorCode::PaymentFailed,
            format!("the payment failed ({reason}); nothing was added"),
        ),
        GatewayUnavailable => ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::GatewayUnavailable,
            "the payment gateway is unavailable; if the card was charged, the credit is added once the payment is confirmed",
        ),
        Key(e) => e.into(),
    }
}
