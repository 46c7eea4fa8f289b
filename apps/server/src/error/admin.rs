//! Platform administration.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode};

fn not_a_platform_admin() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, "platform admins only")
}

impl From<onboard_admin::AdminError> for ApiError {
    fn from(e: onboard_admin::AdminError) -> Self {
        match e {
            onboard_admin::AdminError::Forbidden => not_a_platform_admin(),
            onboard_admin::AdminError::Unexpected(e) => Self::unexpected(e),
        }
    }
}

impl From<onboard_admin::AdminMemberError> for ApiError {
    fn from(e: onboard_admin::AdminMemberError) -> Self {
        match e {
            onboard_admin::AdminMemberError::Forbidden => not_a_platform_admin(),
            onboard_admin::AdminMemberError::NotFound => Self::not_found("no such member"),
            onboard_admin::AdminMemberError::OwnAccount => {
                Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, "you cannot block yourself")
            }
            onboard_admin::AdminMemberError::Unexpected(e) => Self::unexpected(e),
        }
    }
}
