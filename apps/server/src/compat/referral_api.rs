//! `/compat/referral-api`: the Django referral-api (phone sign-in, simplejwt tokens, users
//! with invite codes), over the members and referrals services.

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use onboard_kernel::{Email, MemberId, PhoneNumber, ReferralCode};
use onboard_members::{
    Member, MemberFilter, MemberView, PersonName, ProfilePatch, RefreshError, RequestOtpError,
    SessionKind, VerifyOtp, VerifyOtpError,
};
use onboard_referrals::{ProfileUpdateError, RedeemError};
use serde_json::{Value, json};
use uuid::Uuid;

use super::django::{DrfError, DrfTexts, Fields};
use super::{Routes, authenticate, is_platform_admin, otp_code, slash_optional};
use crate::extract::client_info;
use crate::state::AppState;

/// The routes, relative to the API's prefix.
pub fn routes<R: Routes>(cfg: &mut R) {
    slash_optional(cfg, Method::POST, "/api/v1/auth/send_code", send_code);
    slash_optional(cfg, Method::POST, "/api/v1/auth/jwt/get_by_phone", get_by_phone);
    slash_optional(cfg, Method::POST, "/api/v1/auth/jwt/verify", verify);
    slash_optional(cfg, Method::POST, "/api/v1/auth/jwt/refresh", refresh);
    slash_optional(cfg, Method::GET, "/api/v1/users", list_users);
    // Before `{id}`, which would otherwise take `current_user` for an id.
    slash_optional(cfg, Method::GET, "/api/v1/users/current_user", current_user);
    slash_optional(cfg, Method::PATCH, "/api/v1/users/current_user", update_current_user);
    slash_optional(cfg, Method::GET, "/api/v1/users/{id}", get_user);
}

/// The seed's language (`LANGUAGE_CODE = 'ru'`).
const T: &DrfTexts = &DrfTexts::REFERRAL_API;

/// The seed's own texts (`api/v1/users/views.py`, `serializers.py`), and Onboard's for what the
/// seed never refused.
const WRONG_CODE: &str = "Неверный код.";
const CODE_EXPIRED: &str = "Время действия кода истекло.";
const UNKNOWN_CODE: &str = "Неверный реферальный код.";
const OWN_CODE: &str = "Нельзя использовать свой код.";
const NO_SUCH_CODE: &str = "Пользователь с таким кодом не найден.";
const ALREADY_REDEEMED: &str = "Вы уже использовали реферальный код.";
const CYCLE: &str = "Владелец этого кода приглашён вами, напрямую или через других.";
const NAME_TOO_LONG: &str = "Убедитесь, что в этом поле не больше 100 символов.";
const EMAIL_TAKEN: &str = "пользователь с таким email уже существует.";

/// Users per page when the client names no `limit` (the seed's `PAGE_SIZE`).
const PAGE_SIZE: u32 = 10;

fn phone_field(fields: &mut Fields, state: &AppState) -> Option<PhoneNumber> {
    let raw = fields.required_text("phone")?;
    match PhoneNumber::parse(&raw, state.compat_regions.referral_api) {
        Ok(phone) => Some(phone),
        Err(_) => {
            fields.error("phone", T.phone);
            None
        }
    }
}

fn request_otp_error(e: RequestOtpError) -> DrfError {
    match e {
        RequestOtpError::RateLimited { retry_after_secs } => {
            DrfError::throttled(T, retry_after_secs)
        }
        RequestOtpError::Unexpected(e) => DrfError::unexpected(e),
    }
}

/// `POST /api/v1/auth/send_code/`: `{"phone"}` → `{"code": <int>}` with `OTP_ECHO`, else `{}`.
async fn send_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DrfError> {
    let mut fields = Fields::read(&req, &body, T)?;
    let phone = phone_field(&mut fields, &state);
    fields.check()?;
    let Some(phone) = phone else {
        return Err(DrfError::field("phone", T.phone));
    };
    let issued = state
        .members
        .request_otp(phone, &client_info(&req, &state))
        .await
        .map_err(request_otp_error)?;
    crate::telemetry::otp_sent();
    // The seed answers the code as an integer: leading zeros are lost, as they were there.
    let body = match issued.dev_code.and_then(|c| c.parse::<u64>().ok()) {
        Some(code) => json!({ "code": code }),
        None => json!({}),
    };
    Ok(HttpResponse::Ok().json(body))
}

fn invited_by_refused(message: &str) -> DrfError {
    DrfError::new(StatusCode::FORBIDDEN, json!({ "invited_by_code": message }))
}

/// `POST /api/v1/auth/jwt/get_by_phone/`: `{"phone", "code", "invited_by_code"?}` →
/// `{"access", "refresh"}`, creating the member when the phone is new.
///
/// `invited_by_code` is redeemed when this sign-in creates the member (as `/api/v1`'s
/// `referral_code`); for a member who exists already it is only checked (unknown or their own
/// code: 403) and otherwise ignored.
async fn get_by_phone(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DrfError> {
    let mut fields = Fields::read(&req, &body, T)?;
    let phone = phone_field(&mut fields, &state);
    let code = match fields.value("code") {
        None => {
            fields.error("code", T.required);
            None
        }
        Some(v) => {
            let code = otp_code(v, state.members.config().otp_length);
            if code.is_none() {
                fields.error("code", T.integer);
            }
            code
        }
    };
    let invited_by = fields.text("invited_by_code");
    fields.check()?;
    let (Some(phone), Some(code)) = (phone, code) else {
        return Err(DrfError::field("code", T.required));
    };

    let referral_code = match invited_by {
        None => None,
        Some(raw) => {
            let code = ReferralCode::parse(&raw).map_err(|_| invited_by_refused(UNKNOWN_CODE))?;
            if let Some(member) = state.members.find_by_phone(&phone).await? {
                match state.referrals.check_redeem(member.id, code.as_str()).await {
                    Err(RedeemError::NotFound) => return Err(invited_by_refused(UNKNOWN_CODE)),
                    Err(RedeemError::OwnCode) => return Err(invited_by_refused(OWN_CODE)),
                    Err(RedeemError::Unexpected(e)) => return Err(DrfError::unexpected(e)),
                    // Applied only at sign-up: an existing member's referrer stays as it is.
                    Ok(()) | Err(RedeemError::AlreadyRedeemed | RedeemError::Cycle) => {}
                }
            }
            Some(code)
        }
    };

    // simplejwt as the seed ran it: the refresh token is never rotated.
    let sign_in = state
        .members
        .verify_otp_as(
            VerifyOtp { phone, code, referral_code },
            &client_info(&req, &state),
            SessionKind::Fixed,
        )
        .await;
    crate::telemetry::otp_verified(&sign_in);
    let sign_in = sign_in.map_err(|e| match e {
        VerifyOtpError::ReferralCodeNotFound => invited_by_refused(UNKNOWN_CODE),
        VerifyOtpError::InvalidCode { .. }
        | VerifyOtpError::TooManyAttempts { retry_after_secs: None } => {
            DrfError::new(StatusCode::FORBIDDEN, json!({ "code": WRONG_CODE }))
        }
        VerifyOtpError::Expired => {
            DrfError::new(StatusCode::FORBIDDEN, json!({ "code": CODE_EXPIRED }))
        }
        VerifyOtpError::TooManyAttempts { retry_after_secs: Some(s) }
        | VerifyOtpError::RateLimited { retry_after_secs: s } => DrfError::throttled(T, s),
        VerifyOtpError::Blocked => DrfError::blocked(T),
        VerifyOtpError::Unexpected(e) => DrfError::unexpected(e),
    })?;
    Ok(HttpResponse::Ok().json(json!({
        "access": sign_in.tokens.access_token,
        "refresh": sign_in.tokens.refresh_token.expose(),
    })))
}

/// `POST /api/v1/auth/jwt/verify/`: `{"token"}` → `{}` for a live token, access or refresh
/// (simplejwt's verify takes either).
async fn verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DrfError> {
    let mut fields = Fields::read(&req, &body, T)?;
    let token = fields.required_text("token");
    fields.check()?;
    let token = token.unwrap_or_default();
    match state.members.verify_any_token(&token).await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({}))),
        Err(onboard_members::AuthError::Unauthorized) => Err(DrfError::token_not_valid(T)),
        Err(onboard_members::AuthError::Unexpected(e)) => Err(DrfError::unexpected(e)),
    }
}

/// `POST /api/v1/auth/jwt/refresh/`: `{"refresh"}` → `{"access"}`. As simplejwt without
/// `ROTATE_REFRESH_TOKENS` (the seed's settings): the refresh token is not rotated and stays
/// valid for its lifetime, so reusing it is normal, never theft; logout, revocation and blocks
/// still end it at once.
async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DrfError> {
    let mut fields = Fields::read(&req, &body, T)?;
    let token = fields.required_text("refresh");
    fields.check()?;
    let pair =
        state.members.refresh_as(&token.unwrap_or_default(), SessionKind::Fixed).await.map_err(
            |e| match e {
                RefreshError::Invalid | RefreshError::Reused => DrfError::token_not_valid(T),
                RefreshError::Blocked => DrfError::user_inactive(T),
                RefreshError::Unexpected(e) => DrfError::unexpected(e),
            },
        )?;
    Ok(HttpResponse::Ok().json(json!({ "access": pair.access_token })))
}

/// A member as the seed's `User`. `masked` hides the phone (and everything a stranger may not
/// see is null).
fn user(member: &Member, is_staff: bool) -> serde_json::Map<String, Value> {
    let value = json!({
        "id": member.id.as_uuid(),
        "phone": member.phone.as_ref().map(PhoneNumber::as_e164),
        "invite_code": member.referral_code.as_str(),
        "invited_by_code": member.referred_by.as_ref().map(ReferralCode::as_str),
        "email": member.email.as_ref().map(Email::as_str),
        "first_name": member.first_name,
        "last_name": member.last_name,
        "is_staff": is_staff,
        "is_active": true,
        "date_joined": member.created_at,
        "last_login": null,
    });
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// The members `member` referred, newest first (one page of the referrals service: at most
/// 100), as `[{"id", "phone"}]` with masked phones.
async fn invited(state: &AppState, member: MemberId) -> Result<Value, DrfError> {
    let page = state
        .referrals
        .invitees(member, None, onboard_referrals::ReferralsService::MAX_PAGE)
        .await?;
    Ok(Value::Array(
        page.items
            .into_iter()
            .map(|card| json!({ "id": card.id.as_uuid(), "phone": card.phone_masked }))
            .collect(),
    ))
}

/// A member with their `"invited"` list.
async fn user_with_invited(
    state: &AppState,
    member: &Member,
    is_staff: bool,
) -> Result<HttpResponse, DrfError> {
    let mut body = user(member, is_staff);
    body.insert("invited".to_owned(), invited(state, member.id).await?);
    Ok(HttpResponse::Ok().json(Value::Object(body)))
}

/// `GET /api/v1/users/current_user/`.
async fn current_user(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, DrfError> {
    let caller = authenticate(&req, &state).await.map_err(|e| DrfError::auth(T, e))?;
    let profile = state.members.me(&caller).await.map_err(|e| match e {
        onboard_members::AuthError::Unauthorized => DrfError::bad_access_token(T),
        onboard_members::AuthError::Unexpected(e) => DrfError::unexpected(e),
    })?;
    let staff = is_platform_admin(&state, &caller).await?;
    user_with_invited(&state, &profile.member, staff).await
}

fn redeem_field_error(e: RedeemError) -> DrfError {
    let message = match e {
        RedeemError::NotFound => NO_SUCH_CODE,
        RedeemError::OwnCode => OWN_CODE,
        RedeemError::AlreadyRedeemed => ALREADY_REDEEMED,
        RedeemError::Cycle => CYCLE,
        RedeemError::Unexpected(e) => return DrfError::unexpected(e),
    };
    DrfError::field("invited_by_code", message)
}

/// `PATCH /api/v1/users/current_user/`: `{"first_name"?, "last_name"?, "email"?,
/// "invited_by_code"?}`. Every field is checked, and the code's redeem too, before anything
/// changes (as `PATCH /api/v1/members/me`).
async fn update_current_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, DrfError> {
    let caller = authenticate(&req, &state).await.map_err(|e| DrfError::auth(T, e))?;
    let mut fields = Fields::read(&req, &body, T)?;
    let mut patch = ProfilePatch::default();
    for name in ["first_name", "last_name"] {
        if let Some(raw) = fields.text(name) {
            match PersonName::parse(&raw) {
                Ok(n) if name == "first_name" => patch.first_name = Some(n),
                Ok(n) => patch.last_name = Some(n),
                Err(_) => fields.error(name, NAME_TOO_LONG),
            }
        }
    }
    if let Some(raw) = fields.text("email") {
        match Email::parse(&raw) {
            Ok(e) => patch.email = Some(e),
            Err(_) => fields.error("email", T.email),
        }
    }
    let code = fields.text("invited_by_code");
    fields.check()?;

    let member = state
        .referrals
        .update_profile(&state.members, &caller, &patch, code.as_deref())
        .await
        .map_err(|e| match e {
            ProfileUpdateError::EmailTaken => DrfError::field("email", EMAIL_TAKEN),
            ProfileUpdateError::NotFound => DrfError::bad_access_token(T),
            ProfileUpdateError::Redeem(e) => redeem_field_error(e),
            ProfileUpdateError::Unexpected(e) => DrfError::unexpected(e),
        })?;
    let staff = is_platform_admin(&state, &caller).await?;
    user_with_invited(&state, &member, staff).await
}

/// `GET /api/v1/users/{id}/`: the member as the caller may see them (`/api/v1/members/{id}`'s
/// rule; platform admins see everyone whole). Someone who shares no group with them sees the
/// phone masked, and no e-mail, codes, dates or invitees (deviation: the seed shows every user
/// whole to everyone).
async fn get_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, DrfError> {
    let caller = authenticate(&req, &state).await.map_err(|e| DrfError::auth(T, e))?;
    let id = Uuid::parse_str(&id).map_err(|_| DrfError::not_found(T))?;
    let id = MemberId::from_uuid(id);
    if id != caller.member_id && is_platform_admin(&state, &caller).await? {
        // A platform admin sees every user whole, as the admin API shows them.
        let detail = state.admin.member(&caller, id).await.map_err(|e| match e {
            onboard_admin::AdminMemberError::NotFound => DrfError::not_found(T),
            onboard_admin::AdminMemberError::Forbidden
            | onboard_admin::AdminMemberError::OwnAccount => DrfError::permission_denied(T),
            onboard_admin::AdminMemberError::Unexpected(e) => DrfError::unexpected(e),
        })?;
        let mut body = user(&detail.member, detail.is_admin);
        body.insert("is_active".to_owned(), json!(detail.block.is_none()));
        body.insert("invited".to_owned(), invited(&state, id).await?);
        return Ok(HttpResponse::Ok().json(Value::Object(body)));
    }
    let view = state.members.get_member(&caller, id).await.map_err(|e| match e {
        onboard_members::NotFoundError::NotFound => DrfError::not_found(T),
        onboard_members::NotFoundError::Unexpected(e) => DrfError::unexpected(e),
    })?;
    match view {
        MemberView::Full(member) if member.id == caller.member_id => {
            let staff = is_platform_admin(&state, &caller).await?;
            user_with_invited(&state, &member, staff).await
        }
        MemberView::Full(member) => {
            let mut body = user(&member, false);
            body.insert("invited".to_owned(), json!([]));
            Ok(HttpResponse::Ok().json(Value::Object(body)))
        }
        MemberView::Card(card) => Ok(HttpResponse::Ok().json(json!({
            "id": card.id.as_uuid(),
            "phone": card.phone_masked,
            "invite_code": null,
            "invited_by_code": null,
            "email": null,
            "first_name": card.first_name,
            "last_name": card.last_name,
            "is_staff": false,
            "is_active": true,
            "date_joined": null,
            "last_login": null,
            "invited": [],
        }))),
    }
}

/// An exact-match filter: `Some(None)` when not given, `None` when given but unparsable (so
/// nothing can match it).
fn exact<T, E>(raw: Option<&str>, parse: impl FnOnce(&str) -> Result<T, E>) -> Option<Option<T>> {
    match raw {
        None => Some(None),
        Some(raw) => parse(raw).ok().map(Some),
    }
}

/// `GET /api/v1/users/?limit=&offset=&<filters>&search=`: platform admins only (deviation:
/// the seed lists every phone to every member). Offset pages of 10 by default (`limit` at most
/// 100), oldest member first, with `count` and the URLs of the `next` and `previous` pages.
async fn list_users(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, DrfError> {
    let caller = authenticate(&req, &state).await.map_err(|e| DrfError::auth(T, e))?;
    let query = query.into_inner();
    let param = |name: &str| {
        query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    };
    // DRF reads a bad limit or offset as the default.
    let limit = param("limit")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|l| *l > 0)
        .map_or(PAGE_SIZE, |l| l.min(onboard_members::MembersService::MAX_LIST_PAGE));
    let offset = param("offset").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);

    // A filter value that cannot match anything (a malformed phone, say) matches nothing.
    let filter = (|| {
        Some(MemberFilter {
            email: exact(param("email"), Email::parse)?,
            first_name: param("first_name").map(str::to_owned),
            last_name: param("last_name").map(str::to_owned),
            phone: exact(param("phone"), |p| {
                PhoneNumber::parse(p, state.compat_regions.referral_api)
            })?,
            referral_code: exact(param("invite_code"), ReferralCode::parse)?,
            referred_by: exact(param("invited_by_code"), ReferralCode::parse)?,
            search: param("search").map(str::to_owned),
        })
    })();
    let list = state
        .admin
        .list_members(&caller, &state.members, filter.as_ref(), offset, limit)
        .await
        .map_err(|e| match e {
            onboard_admin::AdminError::Forbidden => DrfError::permission_denied(T),
            onboard_admin::AdminError::Unexpected(e) => DrfError::unexpected(e),
        })?;

    let page_url = |offset: Option<u64>| {
        let mut pairs: Vec<(String, String)> =
            query.iter().filter(|(k, _)| k != "limit" && k != "offset").cloned().collect();
        pairs.push(("limit".to_owned(), limit.to_string()));
        if let Some(offset) = offset {
            pairs.push(("offset".to_owned(), offset.to_string()));
        }
        let info = req.connection_info();
        let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{}://{}{}?{qs}", info.scheme(), info.host(), req.path())
    };
    let end = offset.saturating_add(u64::from(limit));
    let next = (end < list.count).then(|| page_url(Some(end)));
    let previous = (offset > 0).then(|| {
        let back = offset.saturating_sub(u64::from(limit));
        page_url((back > 0).then_some(back))
    });
    let results: Vec<Value> = list.items.iter().map(|m| Value::Object(user(m, false))).collect();
    Ok(HttpResponse::Ok().json(json!({
        "count": list.count,
        "next": next,
        "previous": previous,
        "results": results,
    })))
}
