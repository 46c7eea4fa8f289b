//! Sign-in, sessions and profiles.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode};
use onboard_members::{
    AuthError, DeleteMemberError, NotFoundError, RefreshError, RequestOtpError, UpdateProfileError,
    VerifyOtpError,
};

impl From<RequestOtpError> for ApiError {
    fn from(e: RequestOtpError) -> Self {
        match e {
            RequestOtpError::RateLimited { retry_after_secs } => Self::rate_limited(
                ErrorCode::RateLimited,
                retry_after_secs,
                "too many code requests",
            ),
            RequestOtpError::Unexpected(e) => Self::unexpected(e),
        }
    }
}

impl From<VerifyOtpError> for ApiError {
    fn from(e: VerifyOtpError) -> Self {
        match e {
            VerifyOtpError::ReferralCodeNotFound => Self::invalid_field(
                ErrorCode::ReferralCodeNotFound,
                "referral_code",
                "no member has this referral code",
            ),
            VerifyOtpError::InvalidCode { attempts_left } => {
                let mut e =
                    Self::new(StatusCode::UNAUTHORIZED, ErrorCode::OtpInvalid, "wrong code");
                e.0.problem.attempts_left = Some(attempts_left);
                e
            }
            VerifyOtpError::Expired => Self::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::OtpExpired,
                "no live code for this phone: request a new one",
            ),
            VerifyOtpError::TooManyAttempts { retry_after_secs: None } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TooManyAttempts,
                "too many wrong guesses: the code is burned, request a new one",
            ),
            VerifyOtpError::TooManyAttempts { retry_after_secs: Some(s) } => Self::rate_limited(
                ErrorCode::TooManyAttempts,
                s,
                "too many failed verifications for this phone in the last hour",
            ),
            VerifyOtpError::RateLimited { retry_after_secs } => Self::rate_limited(
                ErrorCode::RateLimited,
                retry_after_secs,
                "too many verifications from this client",
            ),
            VerifyOtpError::Unexpected(e) => Self::unexpected(e),
            VerifyOtpError::Blocked => member_blocked(),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Invalid => Self::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::RefreshTokenInvalid,
                "unknown, expired or revoked refresh token",
            ),
            RefreshError::Reused => Self::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::RefreshTokenReused,
                "this refresh token was already used: the session is revoked",
            ),
            RefreshError::Unexpected(e) => Self::unexpected(e),
            RefreshError::Blocked => member_blocked(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => Self::unauthorized(),
            AuthError::Unexpected(e) => Self::unexpected(e),
        }
    }
}

impl From<NotFoundError> for ApiError {
    fn from(e: NotFoundError) -> Self {
        match e {
            NotFoundError::NotFound => Self::not_found("no such resource"),
            NotFoundError::Unexpected(e) => Self::unexpected(e),
        }
    }
}

impl From<UpdateProfileError> for ApiError {
    fn from(e: UpdateProfileError) -> Self {
        match e {
            UpdateProfileError::EmailTaken => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::EmailTaken,
                "another member has this e-mail",
            ),
            UpdateProfileError::NotFound => Self::unauthorized(),
            UpdateProfileError::Unexpected(e) => Self::unexpected(e),
        }
    }
}

impl From<DeleteMemberError> for ApiError {
    fn from(e: DeleteMemberError) -> Self {
        match e {
            DeleteMemberError::LastOwner => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::LastOwner,
                "you are the sole owner of a group with other members: hand it over first",
            ),
            DeleteMemberError::NotFound => Self::unauthorized(),
            DeleteMemberError::Unexpected(e) => Self::unexpected(e),
        }
    }
}

/// 403 `member_blocked`: a platform admin blocked the member; sign-in is refused.
pub(super) fn member_blocked() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::MemberBlocked,
        "this member is blocked: sign-in is refused",
    )
}
