//! The one place where errors become HTTP answers: RFC 9457 problem+json with a stable `code`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Every `code` an error answer may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidPhone,
    Unauthorized,
    Forbidden,
    NotFound,
    RateLimited,
    ReferralCodeNotFound,
    ReferralSelf,
    ReferralAlreadyRedeemed,
    ReferralCycle,
    OtpInvalid,
    OtpExpired,
    TooManyAttempts,
    RefreshTokenInvalid,
    RefreshTokenReused,
    TokenInvalid,
    EmailTaken,
    LastOwner,
    SlugTaken,
    RoleBuiltin,
    RoleExists,
    RoleNotFound,
    CannotChangeOwnRole,
    AlreadyMember,
    NotAMember,
    InvitePending,
    InviteNotFound,
    InvitePhoneMismatch,
    ServiceUnavailable,
    InternalError,
    NoMainCard,
    PaymentFailed,
    IdempotencyKeyReused,
    IdempotencyKeyInUse,
    CardNotFoundAtGateway,
    CardExists,
    CardNotFound,
    MainCardInUse,
    GatewayUnavailable,
    PlanLimitReached,
    MetricNotFound,
    BillingBusy,
    SsoProviderUnknown,
    RedirectUriNotAllowed,
    SsoStateInvalid,
    SsoProviderError,
    LoginCodeInvalid,
    MemberBlocked,
    StreamTicketInvalid,
    InsufficientSmsCredit,
    MethodNotAllowed,
    WebhookLimitReached,
}

impl ErrorCode {
    /// The code as it appears in answers (`otp_invalid`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidPhone => "invalid_phone",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::RateLimited => "rate_limited",
            Self::ReferralCodeNotFound => "referral_code_not_found",
            Self::ReferralSelf => "referral_self",
            Self::ReferralAlreadyRedeemed => "referral_already_redeemed",
            Self::ReferralCycle => "referral_cycle",
            Self::OtpInvalid => "otp_invalid",
            Self::OtpExpired => "otp_expired",
            Self::TooManyAttempts => "too_many_attempts",
            Self::RefreshTokenInvalid => "refresh_token_invalid",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::TokenInvalid => "token_invalid",
            Self::EmailTaken => "email_taken",
            Self::LastOwner => "last_owner",
            Self::SlugTaken => "slug_taken",
            Self::RoleBuiltin => "role_builtin",
            Self::RoleExists => "role_exists",
            Self::RoleNotFound => "role_not_found",
            Self::CannotChangeOwnRole => "cannot_change_own_role",
            Self::AlreadyMember => "already_member",
            Self::NotAMember => "not_a_member",
            Self::InvitePending => "invite_pending",
            Self::InviteNotFound => "invite_not_found",
            Self::InvitePhoneMismatch => "invite_phone_mismatch",
            Self::ServiceUnavailable => "service_unavailable",
            Self::InternalError => "internal_error",
            Self::NoMainCard => "no_main_card",
            Self::PaymentFailed => "payment_failed",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::IdempotencyKeyInUse => "idempotency_key_in_use",
            Self::CardNotFoundAtGateway => "card_not_found_at_gateway",
            Self::CardExists => "card_exists",
            Self::CardNotFound => "card_not_found",
            Self::MainCardInUse => "main_card_in_use",
            Self::GatewayUnavailable => "gateway_unavailable",
            Self::PlanLimitReached => "plan_limit_reached",
            Self::MetricNotFound => "metric_not_found",
            Self::BillingBusy => "billing_busy",
            Self::SsoProviderUnknown => "sso_provider_unknown",
            Self::RedirectUriNotAllowed => "redirect_uri_not_allowed",
            Self::SsoStateInvalid => "sso_state_invalid",
            Self::SsoProviderError => "sso_provider_error",
            Self::LoginCodeInvalid => "login_code_invalid",
            Self::MemberBlocked => "member_blocked",
            Self::StreamTicketInvalid => "stream_ticket_invalid",
            Self::InsufficientSmsCredit => "insufficient_sms_credit",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::WebhookLimitReached => "webhook_limit_reached",
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The body of every error answer (`application/problem+json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `code` says what happened.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub code: ErrorCode,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Wrong guesses left on the code (`otp_invalid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// Seconds to wait (`rate_limited`, `too_many_attempts`); also in `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Further fields some answers add (payments: `usage`).
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: std::collections::BTreeMap<&'static str, serde_json::Value>,
}

/// An error answer (boxed: handlers return it on every error path, and it is large).
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    problem: Problem,
    /// The cause of a 5xx, logged (on the access-log line) and never shown.
    cause: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            problem: Problem {
                kind: "about:blank",
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                code,
                detail: detail.into(),
                errors: None,
                attempts_left: None,
                retry_after: None,
                extra: std::collections::BTreeMap::new(),
            },
            cause: None,
        }))
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, detail)
    }

    /// A 400 naming the field at fault.
    pub fn invalid_field(code: ErrorCode, field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(StatusCode::BAD_REQUEST, code, format!("{field}: {message}"));
        e.0.problem.errors = Some(vec![FieldError { field: field.to_owned(), message }]);
        e
    }

    /// A 400 naming each field at fault.
    pub fn invalid_fields(code: ErrorCode, errors: Vec<FieldError>) -> Self {
        let detail =
            errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>();
        let mut e = Self::new(StatusCode::BAD_REQUEST, code, detail.join("; "));
        e.0.problem.errors = Some(errors);
        e
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "missing, invalid, expired or revoked access token",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, detail)
    }

    pub fn rate_limited(code: ErrorCode, retry_after: u64, detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, code, detail);
        e.0.problem.retry_after = Some(retry_after.max(1));
        e
    }

    pub fn unexpected(cause: anyhow::Error) -> Self {
        let mut e = if is_saturation(&cause) {
            let mut e = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ServiceUnavailable,
                "the service is busy: try again shortly",
            );
            e.0.problem.retry_after = Some(1);
            e
        } else {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                "an unexpected error occurred",
            )
        };
        e.0.cause = Some(cause);
        e
    }

    /// Keeps `cause` with an answer that is not a generic 500 (a 502 from a provider), for the
    /// access log to write once; the client never sees it.
    pub fn with_cause(mut self, cause: anyhow::Error) -> Self {
        self.0.cause = Some(cause);
        self
    }

    /// What went wrong behind a 5xx, if known: written once, on the request's access-log line.
    pub fn cause(&self) -> Option<&anyhow::Error> {
        self.0.cause.as_ref()
    }

    pub fn code(&self) -> ErrorCode {
        self.0.problem.code
    }

    /// The HTTP status of this answer.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The problem body as JSON (what the answer carries), to store for a replay.
    pub fn problem_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0.problem).unwrap_or_default()
    }

    /// Adds a field to the problem body (`usage` on `plan_limit_reached`).
    pub fn with_extra(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.0.problem.extra.insert(name, value);
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.problem.status,
            self.0.problem.code.as_str(),
            self.0.problem.detail
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.0.status);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if let Some(secs) = self.0.problem.retry_after {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.0.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.body(serde_json::to_vec(&self.0.problem).unwrap_or_default())
    }
}

/// Whether a fault is the backends being saturated: no pooled Redis or PostgreSQL connection
/// came within the pool's wait. That is answered 503 `service_unavailable` with `Retry-After`, not 500: the
/// request was fine and may simply be tried again.
fn is_saturation(cause: &anyhow::Error) -> bool {
    use diesel_async::pooled_connection::deadpool::PoolError as PgPoolError;
    cause.chain().any(|e| {
        matches!(
            e.downcast_ref::<deadpool_redis::PoolError>(),
            Some(deadpool_redis::PoolError::Timeout(_))
        ) || matches!(e.downcast_ref::<PgPoolError>(), Some(PgPoolError::Timeout(_)))
    })
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::unexpected(e)
    }
}

/// Maps every variant of a use-case error to an answer; `Unexpected` is always a logged 500.
macro_rules! map_errors {
    ($($ty:ty { $($variant:ident $(($bind:pat))? => $answer:expr),* $(,)? })*) => {$(
        impl From<$ty> for ApiError {
            fn from(e: $ty) -> Self {
                type E = $ty;
                match e {
                    $(E::$variant $(($bind))? => $answer,)*
                    E::Unexpected(e) => Self::unexpected(e),
                }
            }
        }
    )*};
}

fn group_not_found() -> ApiError {
    ApiError::not_found("no such group (or you are not one of its members)")
}

fn forbidden(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, detail)
}

fn conflict(code: ErrorCode, detail: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, detail)
}

fn forbidden_code(code: ErrorCode, detail: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, detail)
}

mod admin;
mod extractors;
mod groups;
mod invites;
mod members;
mod messaging;
mod notifications;
mod payments;
mod referrals;
mod sms_credit;
mod sso;
mod webhooks;

pub use extractors::{json_error, path_error, payload_error, query_error};
pub use groups::role_not_found;
pub use invites::invite_not_found;
pub use sso::login_code_invalid;

#[cfg(test)]
mod saturation_tests {
    use actix_web::ResponseError;
    use anyhow::Context;

    use super::*;

    #[test]
    fn no_pooled_connection_in_time_is_a_503_to_retry_not_a_500() {
        let waited: Result<(), _> =
            Err(deadpool_redis::PoolError::Timeout(deadpool_redis::TimeoutType::Wait));
        let error = ApiError::from(waited.context("no Redis connection").expect_err("a timeout"));
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code(), ErrorCode::ServiceUnavailable);
        let response = error.error_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).expect("Retry-After"), "1");
    }

    #[test]
    fn other_faults_stay_internal_errors() {
        let error = ApiError::from(anyhow::anyhow!("the disk is on fire"));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.code(), ErrorCode::InternalError);
    }
}
