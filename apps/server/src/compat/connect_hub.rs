//! `/compat/connect-hub`: the Django connect-hub (register and log in by phone and code, a
//! profile with invite codes), over the members and referrals services.
//!
//! The seed's code serves its views under `/api/clients/...` while its README shows
//! `/api/...`: every call is served under both, with or without the trailing slash.

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use onboard_kernel::{MemberId, PhoneNumber, ReferralCode};
use onboard_members::{
    Member, RefreshError, RequestOtpError, SessionKind, SignIn, VerifyOtp, VerifyOtpError,
};
use onboard_referrals::RedeemError;
use serde_json::json;

use super::django::{DrfError, DrfTexts, Fields};
use super::{Routes, authenticate, otp_code, slash_optional};
use crate::extract::client_info;
use crate::state::AppState;

/// The routes, relative to the API's prefix.
pub fn routes<R: Routes>(cfg: &mut R) {
    for base in ["/api", "/api/clients"] {
        slash_optional(cfg, Method::POST, &format!("{base}/register"), register);
        slash_optional(cfg, Method::POST, &format!("{base}/login"), login);
        slash_optional(cfg, Method::GET, &format!("{base}/profile"), profile);
        slash_optional(cfg, Method::PATCH, &format!("{base}/profile"), update_profile);
        slash_optional(cfg, Method::POST, &format!("{base}/token/refresh"), refresh);
    }
}

/// The seed's language (`LANGUAGE_CODE = 'en-us'`).
const T: &DrfTexts = &DrfTexts::CONNECT_HUB;

/// simplejwt rotating without a blacklist, as the seed ran it.
const KIND: SessionKind = SessionKind::RotatingKeepsOld;

/// The seed's own texts (`clients/views.py`, `clients/models.py`), and Onboard's for what the
/// seed never refused.
const CODE_MISMATCH: &str = "The code does not match or is outdated";
const NO_USER: &str = "There is no user with this phone number";
const PHONE_TAKEN: &str = "client with this phone already exists.";
const NO_SUCH_CODE: &str = "The client with such an invitation code was not found";
const CYCLE: &str = "Clients cannot invite each other";
const OWN_CODE: &str = "You cannot activate your own invitation code";
const ALREADY_REDEEMED: &str = "You have already activated an invitation code";

/// What both steps of register and login send: the phone, and the code on the second step.
struct Step {
    phone: PhoneNumber,
    sms_code: Option<String>,
}

/// Which call reads the step: they refuse a missing or malformed phone differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// The serializer's field errors: `{"phone": ["..."]}`.
    Register,
    /// The seed looked the phone up as given: no user has it.
    Login,
}

fn read_step(
    state: &AppState,
    req: &HttpRequest,
    body: &web::Bytes,
    call: Call,
) -> Result<Step, DrfError> {
    let mut fields = Fields::read(req, body, T)?;
    let raw = fields.required_text("phone");
    let sms_code = fields.value("sms_code").cloned();
    if call == Call::Login && (raw.is_none() || fields.check().is_err()) {
        return Err(no_user());
    }
    fields.check()?;
    let phone = match raw.map(|raw| PhoneNumber::parse(&raw, state.compat_regions.connect_hub)) {
        Some(Ok(phone)) => phone,
        _ if call == Call::Login => return Err(no_user()),
        _ => return Err(DrfError::field("phone", T.phone)),
    };
    let sms_code = match sms_code {
        None => None,
        // Sent as a number or a string (the seed matched only a number); a value that cannot
        // be a code is a code that does not match.
        Some(v) => Some(otp_code(&v, state.members.config().otp_length).ok_or_else(mismatch)?),
    };
    Ok(Step { phone, sms_code })
}

fn mismatch() -> DrfError {
    DrfError::new(StatusCode::BAD_REQUEST, json!({ "sms_code": CODE_MISMATCH }))
}

fn no_user() -> DrfError {
    DrfError::new(StatusCode::BAD_REQUEST, json!({ "error_message": NO_USER }))
}

/// Sends a code: `{"phone", "sms_code"}` (the code only with `OTP_ECHO`).
async fn send_code(
    state: &AppState,
    req: &HttpRequest,
    phone: PhoneNumber,
) -> Result<HttpResponse, DrfError> {
    let issued =
        state.members.request_otp(phone, &client_info(req, state)).await.map_err(|e| match e {
            RequestOtpError::RateLimited { retry_after_secs } => {
                DrfError::throttled(T, retry_after_secs)
            }
            RequestOtpError::Unexpected(e) => DrfError::unexpected(e),
        })?;
    crate::telemetry::otp_sent();
    let mut body = json!({ "phone": issued.phone.as_e164() });
    // The seed answers the code as a number (`randint(1000, 9999)`): leading zeros are lost,
    // and a client sends it back as a number or a string alike.
    if let Some(code) = issued.dev_code.and_then(|c| c.parse::<u64>().ok()) {
        body["sms_code"] = json!(code);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// Checks the code and signs in (creating the member when the phone is new).
async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    phone: PhoneNumber,
    code: String,
) -> Result<SignIn, DrfError> {
    let result = state
        .members
        .verify_otp_as(
            VerifyOtp { phone, code, referral_code: None },
            &client_info(req, state),
            KIND,
        )
        .await;
    crate::telemetry::otp_verified(&result);
    result.map_err(|e| match e {
        VerifyOtpError::InvalidCode { .. }
        | VerifyOtpError::Expired
        | VerifyOtpError::TooManyAttempts { retry_after_secs: None }
        // No referral code is sent here, so this cannot happen.
        | VerifyOtpError::ReferralCodeNotFound => mismatch(),
        VerifyOtpError::TooManyAttempts { retry_after_secs: Some(s) }
        | VerifyOtpError::RateLimited { retry_after_secs: s } => DrfError::throttled(T, s),
        VerifyOtpError::Blocked => DrfError::blocked(T),
        VerifyOtpError::Unexpected(e) => DrfError::unexpected(e),
    })
}

/// `POST /api/register/`: `{"phone"}` sends a code to a new phone; `{"phone", "sms_code"}`
/// creates the member: 201 `{"id", "user_id", "phone", "invitation_code", "access",
/// "access_token", "refresh"}` (`refresh` is an addition: the seed's refresh endpoint needs one).
async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DrfError> {
    let step = read_step(&state, &req, &body, Call::Register)?;
    if state.members.find_by_phone(&step.phone).await?.is_some() {
        return Err(DrfError::field("phone", PHONE_TAKEN));
    }
    let Some(code) = step.sms_code else {
        return send_code(&state, &req, step.phone).await;
    };
    let signed = sign_in(&state, &req, step.phone, code).await?;
    let m = &signed.member;
    Ok(HttpResponse::Created().json(json!({
        "id": m.id.as_uuid(),
        "user_id": m.id.as_uuid(),
        "phone": m.phone.as_ref().map(PhoneNumber::as_e164),
        "invitation_code": m.referral_code.as_str(),
        "access": signed.tokens.access_token,
        "access_token": signed.tokens.access_token,
        "refresh": signed.tokens.refresh_token.expose(),
    })))
}

/// `POST /api/login/`: `{"phone"}` sends a code to a registered phone; `{"phone", "sms_code"}`
/// signs in: `{"id", "phone", "access", "access_token", "refresh"}`.
async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DrfError> {
    let step = read_step(&state, &req, &body, Call::Login)?;
    if state.members.find_by_phone(&step.phone).await?.is_none() {
        return Err(no_user());
    }
    let Some(code) = step.sms_code else {
        return send_code(&state, &req, step.phone).await;
    };
    let signed = sign_in(&state, &req, step.phone, code).await?;
    let m = &signed.member;
    Ok(HttpResponse::Ok().json(json!({
        "id": m.id.as_uuid(),
        "phone": m.phone.as_ref().map(PhoneNumber::as_e164),
        "access": signed.tokens.access_token,
        "access_token": signed.tokens.access_token,
        "refresh": signed.tokens.refresh_token.expose(),
    })))
}

/// The profile of `member`: own code, redeemed code, and the (masked) phones of the members
/// who redeemed theirs, newest first (one page of the referrals service: at most 100).
async fn profile_body(state: &AppState, member: &Member) -> Result<HttpResponse, DrfError> {
    let invitees = state
        .referrals
        .invitees(member.id, None, onboard_referrals::ReferralsService::MAX_PAGE)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "id": member.id.as_uuid(),
        "phone": member.phone.as_ref().map(PhoneNumber::as_e164),
        "invitation_code": member.referral_code.as_str(),
        "someone_invitation_code": member.referred_by.as_ref().map(ReferralCode::as_str),
        "connections_invited_clients":
            invitees.items.into_iter().map(|c| c.phone_masked).collect::<Vec<_>>(),
    })))
}

async fn me(state: &AppState, req: &HttpRequest) -> Result<(MemberId, Member), DrfError> {
    let caller = authenticate(req, state).await.map_err(|e| DrfError::auth(T, e))?;
    let profile = state.members.me(&caller).await.map_err(|e| match e {
        onboard_members::AuthError::Unauthorized => DrfError::bad_access_token(T),
        onboard_members::AuthError::Unexpected(e) => DrfError::unexpected(e),
    })?;
    Ok((caller.member_id, profile.member))
}

/// `GET /api/clients/profile/`.
async fn profile(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, DrfError> {
    let (_, member) = me(&state, &req).await?;
    profile_body(&state, &member).await
}

/// `PATCH /api/clients/profile/`: `{"someone_invitation_code"}` (or `"invitation_code"`, as
/// the seed's README sends it) redeems another member's code: once, never one's own, never
/// closing a cycle.
async fn update_profile(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DrfError> {
    let (id, _) = me(&state, &req).await?;
    let mut fields = Fields::read(&req, &body, T)?;
    let code = fields.text("someone_invitation_code").or_else(|| fields.text("invitation_code"));
    fields.check()?;
    let conflict =
        |message: &str| DrfError::new(StatusCode::CONFLICT, json!({ "error_message": message }));
    // The seed looked a missing code up as any other: no client has it.
    let Some(code) = code else { return Err(conflict(NO_SUCH_CODE)) };
    let member = state.referrals.redeem(id, &code).await.map_err(|e| match e {
        RedeemError::NotFound => conflict(NO_SUCH_CODE),
        RedeemError::OwnCode => conflict(OWN_CODE),
        RedeemError::AlreadyRedeemed => conflict(ALREADY_REDEEMED),
        RedeemError::Cycle => conflict(CYCLE),
        RedeemError::Unexpected(e) => DrfError::unexpected(e),
    })?;
    profile_body(&state, &member).await
}

/// `POST /api/token/refresh/`: `{"refresh"}` → `{"access", "refresh"}`. Rotated, as the seed
/// ran simplejwt, which never blacklisted: an earlier refresh token of the session keeps
/// working (answering the pair it was rotated to), so reuse is never taken for theft; logout,
/// revocation and blocks still end the session at once.
async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DrfError> {
    let mut fields = Fields::read(&req, &body, T)?;
    let token = fields.required_text("refresh");
    fields.check()?;
    let pair =
        state.members.refresh_as(&token.unwrap_or_default(), KIND).await.map_err(|e| match e {
            RefreshError::Invalid | RefreshError::Reused => DrfError::token_not_valid(T),
            RefreshError::Blocked => DrfError::user_inactive(T),
            RefreshError::Unexpected(e) => DrfError::unexpected(e),
        })?;
    Ok(HttpResponse::Ok().json(json!({
        "access": pair.access_token,
        "refresh": pair.refresh_token.expose(),
    })))
}
