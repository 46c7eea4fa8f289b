//! Notifications.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode};

map_errors! {
    onboard_notifications::NotificationError {
        NotFound => ApiError::not_found("no such notification"),
    }
    onboard_notifications::OpenStreamError {
        TicketInvalid => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::StreamTicketInvalid,
            "the stream ticket is unknown, used or expired",
        ),
    }
}
