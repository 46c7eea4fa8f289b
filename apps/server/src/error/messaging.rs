//! Group messages.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode, forbidden, group_not_found};

impl From<onboard_messaging::SendError> for ApiError {
    fn from(e: onboard_messaging::SendError) -> Self {
        use onboard_messaging::SendError as E;
        match e {
            E::NotFound => group_not_found(),
            E::Forbidden => forbidden("sending messages needs messages.send or group.manage"),
            E::Recipients { .. } => {
                Self::invalid_field(ErrorCode::InvalidRequest, "to", e.to_string())
            }
            E::EmptyText => Self::invalid_field(ErrorCode::InvalidRequest, "text", "empty"),
            E::TextTooLong(t) => {
                Self::invalid_field(ErrorCode::InvalidRequest, "text", t.to_string())
            }
            E::TemplateRequired => Self::invalid_field(
                ErrorCode::InvalidRequest,
                "template_code",
                "an alimtalk needs its template_code",
            ),
            E::InsufficientCredit => Self::new(
                StatusCode::PAYMENT_REQUIRED,
                ErrorCode::InsufficientSmsCredit,
                "the group's SMS credit does not cover these messages; nothing was queued",
            ),
            E::Unexpected(e) => Self::unexpected(e),
        }
    }
}

impl From<onboard_messaging::GetMessageError> for ApiError {
    fn from(e: onboard_messaging::GetMessageError) -> Self {
        use onboard_messaging::GetMessageError as E;
        match e {
            E::NotFound => Self::not_found("no such group or message"),
            E::Forbidden => forbidden("reading messages needs messages.send or group.manage"),
            E::Unexpected(e) => Self::unexpected(e),
        }
    }
}
