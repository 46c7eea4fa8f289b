//! `/api/v1/auth/...`: codes, tokens, sessions.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use onboard_kernel::{PhoneNumber, ReferralCode, Region, SessionId};
use onboard_members::VerifyOtp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{MemberDto, TokenPairDto};
use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::{Auth, JsonBody, client_info};
use crate::state::AppState;
use crate::telemetry;
use utoipa_actix_web::service_config::ServiceConfig;

/// Parses a phone at the edge: 400 `invalid_phone` naming the field.
pub fn parse_phone(raw: &str, region: Option<Region>) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw, region)
        .map_err(|e| ApiError::invalid_field(ErrorCode::InvalidPhone, "phone", e.to_string()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpRequest {
    /// E.164, or national format when the deployment sets `DEFAULT_REGION`.
    #[schema(example = "+79174445566")]
    pub phone: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OtpResponse {
    pub phone: String,
    /// Seconds the code stays valid.
    pub expires_in: u64,
    /// Seconds before another code may be requested.
    pub resend_in: u64,
    /// The code, only when the server runs with `OTP_ECHO`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_code: Option<String>,
}

/// Sends a one-time code by SMS. The answer is the same whether or not the phone is registered.
#[utoipa::path(
    tag = "auth",
    request_body = OtpRequest,
    responses(
        (status = 202, description = "Code sent", body = OtpResponse),
        (status = 400, description = "`invalid_phone`, `invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (per phone or per IP), with `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/otp")]
pub async fn request_otp(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<OtpRequest>,
) -> Result<HttpResponse, ApiError> {
    let phone = parse_phone(&body.phone, state.default_region)?;
    let issued = state.members.request_otp(phone, &client_info(&req, &state)).await?;
    telemetry::otp_sent();
    Ok(HttpResponse::Accepted().json(OtpResponse {
        phone: issued.phone.as_e164().to_owned(),
        expires_in: issued.expires_in,
        resend_in: issued.resend_in,
        dev_code: issued.dev_code,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    #[schema(example = "+79174445566")]
    pub phone: String,
    #[schema(example = "123456")]
    pub code: String,
    /// A referral code to redeem when this verification creates the member.
    #[schema(example = "K49FJ5")]
    pub referral_code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignInResponse {
    #[serde(flatten)]
    pub tokens: TokenPairDto,
    pub member: MemberDto,
    /// Whether this verification created the member.
    pub created: bool,
}

/// Checks a code and signs in, creating the member when the phone is new.
#[utoipa::path(
    tag = "auth",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Signed in", body = SignInResponse),
        (status = 400, description = "`invalid_phone`, `invalid_request`, `referral_code_not_found` (the code stays valid, no attempt counted)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`otp_invalid` with `attempts_left`; `otp_expired` (no live code)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`member_blocked`: a platform admin blocked the member", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts` (the code is burned, or too many failures this hour); `rate_limited` (per IP)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/otp/verify")]
pub async fn verify_otp(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let phone = parse_phone(&body.phone, state.default_region)?;
    if body.code.is_empty() || body.code.len() > 16 {
        return Err(ApiError::invalid_field(
            ErrorCode::InvalidRequest,
            "code",
            "a code is 4 to 8 digits",
        ));
    }
    let referral_code = match body.referral_code.as_deref().map(str::trim).filter(|c| !c.is_empty())
    {
        None => None,
        Some(raw) => Some(ReferralCode::parse(raw).map_err(|_| {
            ApiError::invalid_field(
                ErrorCode::ReferralCodeNotFound,
                "referral_code",
                "no member has this referral code",
            )
        })?),
    };
    let result = state
        .members
        .verify_otp(VerifyOtp { phone, code: body.code, referral_code }, &client_info(&req, &state))
        .await;
    telemetry::otp_verified(&result);
    let sign_in = result?;
    Ok(HttpResponse::Ok().json(SignInResponse {
        tokens: sign_in.tokens.into(),
        member: sign_in.member.into(),
        created: sign_in.created,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Rotates a refresh token. A used token presented again revokes the session (after a 10 s
/// grace for concurrent requests, which get the same new pair).
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair", body = TokenPairDto),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`refresh_token_invalid`; `refresh_token_reused` (the session is revoked)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`member_blocked`: a platform admin blocked the member", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/token/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: JsonBody<RefreshRequest>,
) -> Result<web::Json<TokenPairDto>, ApiError> {
    Ok(web::Json(state.members.refresh(&body.refresh_token).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyTokenRequest {
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyTokenResponse {
    pub valid: bool,
    pub member_id: Uuid,
    pub session_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Tells another service whether an access token is valid (signature, expiry, revocation).
#[utoipa::path(
    tag = "auth",
    request_body = VerifyTokenRequest,
    responses(
        (status = 200, description = "Valid", body = VerifyTokenResponse),
        (status = 401, description = "`token_invalid`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/token/verify")]
pub async fn verify_token(
    state: web::Data<AppState>,
    body: JsonBody<VerifyTokenRequest>,
) -> Result<web::Json<VerifyTokenResponse>, ApiError> {
    let info = state.members.verify_token(&body.token).await.map_err(|e| match e {
        onboard_members::AuthError::Unauthorized => ApiError::new(
            actix_web::http::StatusCode::UNAUTHORIZED,
            ErrorCode::TokenInvalid,
            "invalid, expired or revoked token",
        ),
        other => other.into(),
    })?;
    Ok(web::Json(VerifyTokenResponse {
        valid: true,
        member_id: info.member_id.as_uuid(),
        session_id: info.session_id.as_uuid(),
        expires_at: info.expires_at,
    }))
}

/// Ends the caller's session: its access and refresh tokens stop working at once.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/logout")]
pub async fn logout(state: web::Data<AppState>, Auth(me): Auth) -> Result<HttpResponse, ApiError> {
    state.members.logout(&me).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDto {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    /// Whether this is the session of the calling token.
    pub current: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionDto>,
}

/// The caller's live sessions, newest first.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions", body = SessionList),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/auth/sessions")]
pub async fn list_sessions(
    state: web::Data<AppState>,
    Auth(me): Auth,
) -> Result<web::Json<SessionList>, ApiError> {
    let items = state
        .members
        .list_sessions(&me)
        .await?
        .into_iter()
        .map(|s| SessionDto {
            id: s.session.id.as_uuid(),
            created_at: s.session.created_at,
            last_used_at: s.session.last_used_at,
            user_agent: s.session.user_agent,
            current: s.current,
        })
        .collect();
    Ok(web::Json(SessionList { items }))
}

/// Revokes one of the caller's sessions.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "`invalid_request` (malformed id)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/auth/sessions/{id}")]
pub async fn revoke_session(
    state: web::Data<AppState>,
    Auth(me): Auth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.members.revoke_session(&me, SessionId::from_uuid(id.into_inner())).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the one-time codes, tokens and sessions routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(request_otp)
        .service(verify_otp)
        .service(refresh)
        .service(verify_token)
        .service(logout)
        .service(list_sessions)
        .service(revoke_session);
}
