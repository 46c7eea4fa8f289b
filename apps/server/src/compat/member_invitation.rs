//! `/compat/member-invitation`: the Spring member_invitation (invite a person to a group,
//! accept by code, look a member up), over the groups, invites and members services.
//!
//! Deviations (`compat.md`): inviting needs a bearer token with `invites.manage` in the group,
//! and accepting needs the invitee's own bearer token; accepting joins the one member.

use std::fmt;

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use onboard_groups::Slug;
use onboard_invites::{
    AcceptInviteError, CreateInvite, CreateInviteError, InviteCode, InviteeName,
};
use onboard_kernel::{Email, MemberId, PhoneNumber};
use onboard_members::{MemberView, NotFoundError, PersonName, Principal, UpdateProfileError};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{AuthFailure, BodyError, Routes, authenticate, read_object, text};
use crate::state::AppState;

/// The routes, relative to the API's prefix.
pub fn routes<R: Routes>(cfg: &mut R) {
    cfg.add(Method::POST, "/invite", invite);
    cfg.add(Method::GET, "/accept/{code}", accept);
    cfg.add(Method::GET, "/member/{id}", member);
}

/// The seed's `ErrCode` texts (Korean, as its clients display them), and Onboard's for the codes
/// the seed did not have. The seed answers one text per code, whatever went wrong.
const CODE_NOT_FOUND: &str = "코드를 찾을 수 없습니다.";
const ACCOUNT_ALREADY_REGISTERED: &str = "이미 등록된 아이디입니다!";
const ACCOUNT_NOT_FOUND: &str = "사용자를 찾을 수 없습니다.";
const INTERNAL_SERVER_ERROR: &str = "서버 내부에 문제가 생겼습니다.";
const BAD_REQUEST: &str = "잘못된 요청입니다.";
const UNAUTHORIZED: &str = "유효한 액세스 토큰이 필요합니다.";
const FORBIDDEN: &str = "이 그룹에 초대할 권한이 없습니다.";
const PHONE_NUMBER_MISMATCH: &str = "다른 전화번호로 보낸 초대입니다.";
const INSUFFICIENT_SMS_CREDIT: &str = "그룹의 SMS 충전금이 부족합니다.";
const METHOD_NOT_ALLOWED: &str = "허용되지 않는 메서드입니다.";

/// An error answer in the seed's shape (its `ErrorResponse`): `{"status", "errorCode",
/// "errorMessage"}`, `status` being Spring's `HttpStatus` name (`"NOT_FOUND"`).
#[derive(Debug)]
pub struct SpringError {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    /// `Allow` of a 405.
    allow: Option<String>,
    /// The cause of a 500, logged and never shown.
    cause: Option<anyhow::Error>,
}

impl SpringError {
    fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Self { status, code, message, allow: None, cause: None }
    }

    fn bad_request() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", BAD_REQUEST)
    }

    fn account_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ACCOUNT_NOT_FOUND", ACCOUNT_NOT_FOUND)
    }

    fn unexpected(cause: anyhow::Error) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            INTERNAL_SERVER_ERROR,
        );
        e.cause = Some(cause);
        e
    }

    /// 405 for a method the route does not take; `Allow` names those it takes.
    pub fn method_not_allowed(allow: String) -> Self {
        let mut e =
            Self::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", METHOD_NOT_ALLOWED);
        e.allow = Some(allow);
        e
    }
}

/// Spring's `HttpStatus` name of a status: `BAD_REQUEST`, `NOT_FOUND`, ...
fn http_status_name(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("UNKNOWN").to_ascii_uppercase().replace([' ', '-'], "_")
}

impl SpringError {
    /// The answer's `errorCode`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The cause of a 500 (the access log writes it once).
    pub fn cause(&self) -> Option<&anyhow::Error> {
        self.cause.as_ref()
    }
}

impl fmt::Display for SpringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl ResponseError for SpringError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(allow) = &self.allow {
            response.insert_header((actix_web::http::header::ALLOW, allow.clone()));
        }
        response.json(json!({
            "status": http_status_name(self.status),
            "errorCode": self.code,
            "errorMessage": self.message,
        }))
    }
}

impl From<anyhow::Error> for SpringError {
    fn from(e: anyhow::Error) -> Self {
        Self::unexpected(e)
    }
}

impl From<AuthFailure> for SpringError {
    fn from(e: AuthFailure) -> Self {
        match e {
            AuthFailure::Missing | AuthFailure::Invalid => {
                Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", UNAUTHORIZED)
            }
            AuthFailure::Unexpected(e) => Self::unexpected(e),
        }
    }
}

impl From<CreateInviteError> for SpringError {
    fn from(e: CreateInviteError) -> Self {
        match e {
            CreateInviteError::NotFound
            | CreateInviteError::ContactRequired
            | CreateInviteError::UnknownRole => Self::bad_request(),
            CreateInviteError::Forbidden => {
                Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", FORBIDDEN)
            }
            CreateInviteError::AlreadyMember | CreateInviteError::InvitePending => Self::new(
                StatusCode::BAD_REQUEST,
                "ACCOUNT_ALREADY_REGISTERED",
                ACCOUNT_ALREADY_REGISTERED,
            ),
            CreateInviteError::InsufficientSmsCredit => Self::new(
                StatusCode::PAYMENT_REQUIRED,
                "INSUFFICIENT_SMS_CREDIT",
                INSUFFICIENT_SMS_CREDIT,
            ),
            CreateInviteError::Unexpected(e) => Self::unexpected(e),
        }
    }
}

fn code_not_found() -> SpringError {
    SpringError::new(StatusCode::NOT_FOUND, "CODE_NOT_FOUND", CODE_NOT_FOUND)
}

impl From<AcceptInviteError> for SpringError {
    fn from(e: AcceptInviteError) -> Self {
        match e {
            AcceptInviteError::NotFound => code_not_found(),
            AcceptInviteError::PhoneMismatch => {
                Self::new(StatusCode::FORBIDDEN, "PHONE_NUMBER_MISMATCH", PHONE_NUMBER_MISMATCH)
            }
            AcceptInviteError::Unexpected(e) => Self::unexpected(e),
        }
    }
}

/// The group `inviteGroupId` names: a slug, or the id of one of the caller's groups.
async fn group_slug(state: &AppState, caller: &Principal, raw: &str) -> Result<Slug, SpringError> {
    let unknown = SpringError::bad_request;
    let Ok(id) = Uuid::parse_str(raw) else {
        return Slug::parse(raw).map_err(|_| unknown());
    };
    // Only an active member may invite, so the caller's own groups are the ones to look in.
    let mut after = None;
    loop {
        let page = state
            .groups
            .my_groups(caller.member_id, after, onboard_groups::GroupsService::MAX_PAGE)
            .await?;
        if let Some(mine) = page.items.iter().find(|g| g.group.id.as_uuid() == id) {
            return Ok(mine.group.slug.clone());
        }
        match page.next_cursor.as_deref().and_then(onboard_groups::GroupCursor::decode) {
            Some(next) => after = Some(next),
            None => return Err(unknown()),
        }
    }
}

/// `POST /invite`: `{"inviteGroupId", "inviteMemberName", "inviteMemberPhoneNumber",
/// "inviteMemberEmail"}` → `{"inviteCode"}`; the invitee gets an SMS with the code.
async fn invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, SpringError> {
    let caller = authenticate(&req, &state).await?;
    let fields = read_object(req.headers(), &body).map_err(|e| match e {
        BodyError::Malformed(_) | BodyError::NotAnObject(_) => SpringError::bad_request(),
    })?;
    let field = |name: &str| -> Result<Option<String>, SpringError> {
        text(fields.get(name))
            .map(|v| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
            .map_err(|_| SpringError::bad_request())
    };
    let group = field("inviteGroupId")?.ok_or_else(SpringError::bad_request)?;
    let name = InviteeName::parse(&field("inviteMemberName")?.unwrap_or_default())
        .map_err(|_| SpringError::bad_request())?;
    // The seed's clients send Korean national numbers (`01012345678`).
    let phone = field("inviteMemberPhoneNumber")?
        .map(|p| PhoneNumber::parse(&p, state.compat_regions.member_invitation))
        .transpose()
        .map_err(|_| SpringError::bad_request())?;
    let email = field("inviteMemberEmail")?
        .map(|e| Email::parse(&e))
        .transpose()
        .map_err(|_| SpringError::bad_request())?;
    let slug = group_slug(&state, &caller, &group).await?;
    let created = state
        .invites
        .create(&slug, caller.member_id, CreateInvite { name, phone, email, role: None })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "inviteCode": created.code.as_str() })))
}

/// `GET /accept/{code}`: the caller (the invitee, signed in) joins the group, and becomes the
/// member the invite described: its name and e-mail where the member has none (the seed wrote
/// them into the member it activated).
async fn accept(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
) -> Result<HttpResponse, SpringError> {
    let caller = authenticate(&req, &state).await?;
    let code = InviteCode::parse(&code).map_err(|_| code_not_found())?;
    let (_, invite) = state.invites.accept_described(&code, caller.member_id).await?;
    // An invitee name that is no person name (none is: both are 1 to 100 characters) is
    // simply not used.
    let name = PersonName::parse(invite.name.as_str()).ok();
    match state.members.fill_blank_profile(&caller, name, invite.email).await {
        // Accepted either way: the member may have gone meanwhile, and an e-mail another
        // member holds is left out already.
        Ok(_) | Err(UpdateProfileError::NotFound | UpdateProfileError::EmailTaken) => {}
        Err(UpdateProfileError::Unexpected(e)) => return Err(SpringError::unexpected(e)),
    }
    Ok(HttpResponse::Ok().json(json!({ "msg": "초대가 성공적으로 완료되었습니다." })))
}

/// `GET /member/{id}`: `{"id", "name", "phoneNumber", "email"}`, as the caller may see the
/// member (`/api/v1/members/{id}`'s rule: whole to themself and to fellow group members; to
/// anyone else the phone masked and no e-mail).
async fn member(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, SpringError> {
    // As the seed's `@PathVariable Long id` and its `id < 1` check: a number below 1 (or no
    // id at all) is a bad request, and no member has a numeric id. Checked before the caller,
    // as Spring converts the path before the handler runs.
    let id = match Uuid::parse_str(&id) {
        Ok(id) => id,
        Err(_) => match id.trim().parse::<i64>() {
            Ok(n) if n >= 1 => return Err(SpringError::account_not_found()),
            _ => return Err(SpringError::bad_request()),
        },
    };
    let caller = authenticate(&req, &state).await?;
    let view =
        state.members.get_member(&caller, MemberId::from_uuid(id)).await.map_err(|e| match e {
            NotFoundError::NotFound => SpringError::account_not_found(),
            NotFoundError::Unexpected(e) => SpringError::unexpected(e),
        })?;
    let name = |first: Option<String>, last: Option<String>| -> Value {
        let full = [first, last].into_iter().flatten().collect::<Vec<_>>().join(" ");
        if full.is_empty() { Value::Null } else { Value::String(full) }
    };
    let body = match view {
        MemberView::Full(m) => json!({
            "id": m.id.as_uuid(),
            "name": name(m.first_name, m.last_name),
            "phoneNumber": m.phone.as_ref().map(PhoneNumber::as_e164),
            "email": m.email.as_ref().map(Email::as_str),
        }),
        MemberView::Card(c) => json!({
            "id": c.id.as_uuid(),
            "name": name(c.first_name, c.last_name),
            "phoneNumber": c.phone_masked,
            "email": null,
        }),
    };
    Ok(HttpResponse::Ok().json(body))
}
