//! `/compat/member-invitation`: the Spring member_invitation (invite a person to a group,
//! accept by code, look a member up), over the groups, invites and members services.
//!
//! Deviations (`compat.md`): inviting needs a bearer token with `invites.manage` in the group,
//! and accepting needs the invitee's own bearer token; accepting joins the one member.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use onboard_groups::Slug;
use onboard_invites::{
    AcceptInviteError, CreateInvite, CreateInviteError, InviteCode, InviteeName,
};
use onboard_kernel::{Email, MemberId, PhoneNumber};
use onboard_members::{MemberView, NotFoundError, Principal};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{AuthFailure, BodyError, authenticate, read_object, text};
use crate::state::AppState;

/// The routes, relative to the API's prefix.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/invite", web::post().to(invite))
        .route("/accept/{code}", web::get().to(accept))
        .route("/member/{id}", web::get().to(member));
}

/// An error answer in the seed's shape: `{"errorCode", "errorMessage"}`.
#[derive(Debug)]
pub struct SpringError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The cause of a 500, logged and never shown.
    cause: Option<anyhow::Error>,
}

impl SpringError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), cause: None }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    fn unexpected(cause: anyhow::Error) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            "an unexpected error occurred",
        );
        e.cause = Some(cause);
        e
    }
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
        HttpResponse::build(self.status)
            .json(json!({ "errorCode": self.code, "errorMessage": self.message }))
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
            AuthFailure::Missing | AuthFailure::Invalid => Self::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "a valid bearer access token is required",
            ),
            AuthFailure::Unexpected(e) => Self::unexpected(e),
        }
    }
}

impl From<CreateInviteError> for SpringError {
    fn from(e: CreateInviteError) -> Self {
        match e {
            CreateInviteError::NotFound => {
                Self::bad_request("no such group (or you are not one of its active members)")
            }
            CreateInviteError::Forbidden => Self::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "inviting needs the invites.manage permission in this group",
            ),
            CreateInviteError::ContactRequired => {
                Self::bad_request("an invite needs a phone number or an e-mail")
            }
            CreateInviteError::UnknownRole => Self::bad_request("the group has no such role"),
            CreateInviteError::AlreadyMember => Self::new(
                StatusCode::BAD_REQUEST,
                "ACCOUNT_ALREADY_REGISTERED",
                "this person is already a member of the group",
            ),
            CreateInviteError::InvitePending => Self::new(
                StatusCode::BAD_REQUEST,
                "ACCOUNT_ALREADY_REGISTERED",
                "this person already has a pending invite to the group",
            ),
            CreateInviteError::InsufficientSmsCredit => Self::new(
                StatusCode::PAYMENT_REQUIRED,
                "INSUFFICIENT_SMS_CREDIT",
                "the group's SMS credit does not cover the invite SMS",
            ),
            CreateInviteError::Unexpected(e) => Self::unexpected(e),
        }
    }
}

fn code_not_found() -> SpringError {
    SpringError::new(
        StatusCode::NOT_FOUND,
        "CODE_NOT_FOUND",
        "no live invite has this code (unknown, used, revoked or expired)",
    )
}

impl From<AcceptInviteError> for SpringError {
    fn from(e: AcceptInviteError) -> Self {
        match e {
            AcceptInviteError::NotFound => code_not_found(),
            AcceptInviteError::PhoneMismatch => Self::new(
                StatusCode::FORBIDDEN,
                "PHONE_NUMBER_MISMATCH",
                "this invite is for another phone number",
            ),
            AcceptInviteError::Unexpected(e) => Self::unexpected(e),
        }
    }
}

/// The group `inviteGroupId` names: a slug, or the id of one of the caller's groups.
async fn group_slug(state: &AppState, caller: &Principal, raw: &str) -> Result<Slug, SpringError> {
    let unknown =
        || SpringError::bad_request("no such group (or you are not one of its active members)");
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
        BodyError::Malformed(why) => SpringError::bad_request(format!("malformed JSON: {why}")),
        BodyError::NotAnObject(_) => SpringError::bad_request("the body must be a JSON object"),
    })?;
    let field = |name: &str| -> Result<Option<String>, SpringError> {
        text(fields.get(name))
            .map(|v| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
            .map_err(|_| SpringError::bad_request(format!("{name} must be a string")))
    };
    let group = field("inviteGroupId")?
        .ok_or_else(|| SpringError::bad_request("inviteGroupId is required"))?;
    let name = InviteeName::parse(&field("inviteMemberName")?.unwrap_or_default())
        .map_err(|e| SpringError::bad_request(format!("inviteMemberName: {e}")))?;
    let phone = field("inviteMemberPhoneNumber")?
        .map(|p| PhoneNumber::parse(&p, state.default_region))
        .transpose()
        .map_err(|e| SpringError::bad_request(format!("inviteMemberPhoneNumber: {e}")))?;
    let email = field("inviteMemberEmail")?
        .map(|e| Email::parse(&e))
        .transpose()
        .map_err(|e| SpringError::bad_request(format!("inviteMemberEmail: {e}")))?;
    let slug = group_slug(&state, &caller, &group).await?;
    let created = state
        .invites
        .create(&slug, caller.member_id, CreateInvite { name, phone, email, role: None })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "inviteCode": created.code.as_str() })))
}

/// `GET /accept/{code}`: the caller (the invitee, signed in) joins the group.
async fn accept(
    state: web::Data<AppState>,
    req: HttpRequest,
    code: web::Path<String>,
) -> Result<HttpResponse, SpringError> {
    let caller = authenticate(&req, &state).await?;
    let code = InviteCode::parse(&code).map_err(|_| code_not_found())?;
    state.invites.accept(&code, caller.member_id).await?;
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
    let caller = authenticate(&req, &state).await?;
    let not_found =
        || SpringError::new(StatusCode::NOT_FOUND, "ACCOUNT_NOT_FOUND", "no member has this id");
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let view =
        state.members.get_member(&caller, MemberId::from_uuid(id)).await.map_err(|e| match e {
            NotFoundError::NotFound => not_found(),
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
