//! The one place where errors become HTTP answers: RFC 9457 problem+json with a stable `code`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use onboard_members::{
    AuthError, DeleteMemberError, NotFoundError, RefreshError, RequestOtpError, UpdateProfileError,
    VerifyOtpError,
};
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
}

impl ErrorCode {
    fn as_str(self) -> &'static str {
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
    /// The cause of a 5xx, logged and never shown.
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
        if let Some(cause) = &self.0.cause {
            tracing::error!(error = ?cause, "unexpected error");
        }
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

impl From<onboard_referrals::RedeemError> for ApiError {
    fn from(e: onboard_referrals::RedeemError) -> Self {
        use onboard_referrals::RedeemError as E;
        match e {
            E::NotFound => Self::new(
                StatusCode::NOT_FOUND,
                ErrorCode::ReferralCodeNotFound,
                "no member has this referral code",
            ),
            E::OwnCode => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::ReferralSelf,
                "you cannot redeem your own referral code",
            ),
            E::AlreadyRedeemed => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::ReferralAlreadyRedeemed,
                "you have already redeemed a referral code",
            ),
            E::Cycle => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::ReferralCycle,
                "this code's owner was referred, directly or not, by you",
            ),
            E::Unexpected(e) => Self::unexpected(e),
        }
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

fn last_owner() -> ApiError {
    conflict(
        ErrorCode::LastOwner,
        "the last owner can be neither demoted nor removed, and cannot leave",
    )
}

/// 404 `role_not_found`.
pub fn role_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::RoleNotFound,
        "the group has no role by this name",
    )
}

fn role_builtin() -> ApiError {
    conflict(ErrorCode::RoleBuiltin, "owner, admin and member are built-in roles")
}

fn unknown_permission(name: &str) -> ApiError {
    ApiError::invalid_field(
        ErrorCode::InvalidRequest,
        "permissions",
        format!("unknown permission {name:?}"),
    )
}

use onboard_groups as g;

map_errors! {
    g::CreateGroupError { SlugTaken => conflict(ErrorCode::SlugTaken, "another group has this slug") }
    g::ViewGroupError { NotFound => group_not_found() }
    g::UpdateGroupError {
        NotFound => group_not_found(),
        Forbidden => forbidden("changing the group needs the group.manage permission"),
    }
    g::DeleteGroupError {
        NotFound => group_not_found(),
        Forbidden => forbidden("only an owner may delete the group"),
    }
    g::CreateRoleError {
        NotFound => group_not_found(),
        Forbidden => forbidden("creating this role needs group.manage and every permission it holds"),
        RoleBuiltin => role_builtin(),
        RoleExists => conflict(ErrorCode::RoleExists, "the group already has a role by this name"),
        UnknownPermission(name) => unknown_permission(&name),
    }
    g::UpdateRoleError {
        NotFound => group_not_found(),
        Forbidden => forbidden("changing this role needs group.manage and every permission it holds"),
        RoleBuiltin => role_builtin(),
        RoleNotFound => role_not_found(),
        UnknownPermission(name) => unknown_permission(&name),
    }
    g::DeleteRoleError {
        NotFound => group_not_found(),
        Forbidden => forbidden("deleting this role needs group.manage and every permission it holds"),
        RoleBuiltin => role_builtin(),
        RoleNotFound => role_not_found(),
    }
    g::ListMembersError {
        NotFound => group_not_found(),
        Forbidden => forbidden("listing join requests needs the members.manage permission"),
    }
    g::ChangeRoleError {
        NotFound => group_not_found(),
        MemberNotFound => ApiError::not_found("no such active member in this group"),
        Forbidden => forbidden("you may not give this member this role"),
        CannotChangeOwnRole => conflict(ErrorCode::CannotChangeOwnRole, "nobody changes their own role"),
        LastOwner => last_owner(),
        UnknownRole => ApiError::invalid_field(ErrorCode::InvalidRequest, "role", "the group has no such role"),
    }
    g::RemoveMemberError {
        NotFound => group_not_found(),
        MemberNotFound => ApiError::not_found("no such active member in this group"),
        Forbidden => forbidden("you may not remove this member"),
        LastOwner => last_owner(),
    }
    g::JoinError {
        NotFound => group_not_found(),
        AlreadyMember => conflict(ErrorCode::AlreadyMember, "already a member of this group"),
    }
    g::DecideRequestError {
        NotFound => group_not_found(),
        Forbidden => forbidden("deciding join requests needs the members.manage permission"),
        RequestNotFound => ApiError::not_found("no pending join request from this member"),
    }
    g::SetCurrentGroupError {
        NotFound => group_not_found(),
        NotAMember => forbidden_code(ErrorCode::NotAMember, "not an active member of this group"),
    }
}

use onboard_invites as inv;

/// 404 `invite_not_found`: unknown, used, revoked or expired alike.
pub fn invite_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::InviteNotFound,
        "no live invite has this code (unknown, used, revoked or expired)",
    )
}

map_errors! {
    inv::CreateInviteError {
        NotFound => group_not_found(),
        Forbidden => forbidden("inviting needs invites.manage, and owner invites need an owner"),
        ContactRequired => ApiError::invalid_field(ErrorCode::InvalidRequest, "phone", "an invite needs a phone or an e-mail"),
        UnknownRole => ApiError::invalid_field(ErrorCode::InvalidRequest, "role", "the group has no such role"),
        AlreadyMember => conflict(ErrorCode::AlreadyMember, "this person is already a member of the group"),
        InvitePending => conflict(ErrorCode::InvitePending, "this person already has a pending invite to the group"),
        InsufficientSmsCredit => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            ErrorCode::InsufficientSmsCredit,
            "the group's SMS credit does not cover the invite SMS; nothing was created or sent",
        ),
    }
    inv::ListInvitesError {
        NotFound => group_not_found(),
        Forbidden => forbidden("listing invites needs invites.manage"),
    }
    inv::RevokeInviteError {
        NotFound => group_not_found(),
        Forbidden => forbidden("revoking invites needs invites.manage"),
        InviteNotFound => ApiError::not_found("no such invite in this group"),
    }
    inv::PreviewInviteError { NotFound => invite_not_found() }
    inv::AcceptInviteError {
        NotFound => invite_not_found(),
        PhoneMismatch => forbidden_code(ErrorCode::InvitePhoneMismatch, "this invite is for another phone number"),
    }
}

fn forbidden_code(code: ErrorCode, detail: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, detail)
}

/// actix's own extractor errors (JSON, path, query) as 4xx problems.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidRequest,
            format!("request body over {limit} bytes"),
        ),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidRequest,
            "the body must be application/json",
        ),
        E::Deserialize(e) => {
            let field = unknown_field(&e.to_string());
            let mut api = ApiError::bad_request(format!("invalid JSON body: {e}"));
            if let Some(field) = field {
                api.0.problem.errors =
                    Some(vec![FieldError { field, message: "unknown field".to_owned() }]);
            }
            api
        }
        other => ApiError::bad_request(format!("invalid JSON body: {other}")),
    }
}

/// serde names an unknown field as "unknown field `x`, expected ...".
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

pub fn path_error(err: actix_web::error::PathError) -> ApiError {
    ApiError::bad_request(format!("invalid path parameter: {err}"))
}

pub fn query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::bad_request(format!("invalid query string: {err}"))
}

pub fn payload_error(err: actix_web::error::PayloadError) -> ApiError {
    match err {
        actix_web::error::PayloadError::Overflow => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidRequest,
            "request body too large",
        ),
        other => ApiError::bad_request(format!("invalid body: {other}")),
    }
}

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
        ).with_extra("usage", crate::routes::billing::UsageDto::from(u).to_json()),
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

use onboard_sso as sso;

fn sso_provider_unknown() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::SsoProviderUnknown,
        "no SSO provider by this name",
    )
}

/// 502 `sso_provider_error`; the cause is logged (a warning: the provider's fault, or an
/// attacker's forged callback), never shown.
fn sso_provider_error(cause: &anyhow::Error) -> ApiError {
    tracing::warn!(error = ?cause, "SSO provider failure");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        ErrorCode::SsoProviderError,
        "the identity provider's answer could not be used (code exchange, signature or claims)",
    )
}

/// 401 `login_code_invalid`.
pub fn login_code_invalid() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::LoginCodeInvalid,
        "unknown, used or expired login code",
    )
}

map_errors! {
    sso::StartError {
        UnknownProvider => sso_provider_unknown(),
        RedirectUriNotAllowed => ApiError::invalid_field(
            ErrorCode::RedirectUriNotAllowed,
            "redirect_uri",
            "not one of the allowed redirect URIs (SSO_REDIRECT_URIS, exact match)",
        ),
        Provider(cause) => sso_provider_error(&cause),
    }
    sso::CallbackError {
        UnknownProvider => sso_provider_unknown(),
        StateInvalid => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::SsoStateInvalid,
            "unknown, used or expired state: start the login again",
        ),
        Provider(cause) => sso_provider_error(&cause),
    }
    sso::ExchangeError { LoginCodeInvalid => login_code_invalid(), Blocked => member_blocked() }
}

/// 403 `member_blocked`: a platform admin blocked the member; sign-in is refused.
fn member_blocked() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::MemberBlocked,
        "this member is blocked: sign-in is refused",
    )
}

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
    }
}
