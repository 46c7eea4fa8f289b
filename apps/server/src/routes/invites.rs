//! Invitations: `/api/v1/groups/{slug}/invites/...` and `/api/v1/invites/{code}/...`.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use onboard_invites::{
    AcceptOutcome, CreateInvite, Invite, InviteCode, InviteCursor, InviteId, InviteStatus,
    InviteeName,
};
use onboard_kernel::Email;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::parse_phone;
use super::groups::GroupDto;
use super::{ListQuery, Page, path_slug};
use crate::error::{ApiError, ErrorCode, Problem, invite_not_found};
use crate::extract::{Auth, JsonBody};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// An invitation to a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteDto {
    pub id: Uuid,
    /// The group's slug.
    pub group: String,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub role: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: String,
    /// The inviting member's id.
    pub invited_by: Uuid,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<Invite> for InviteDto {
    fn from(i: Invite) -> Self {
        Self {
            id: i.id.as_uuid(),
            group: i.group_slug.as_str().to_owned(),
            name: i.name.as_str().to_owned(),
            phone: i.phone.map(|p| p.as_e164().to_owned()),
            email: i.email.map(|e| e.as_str().to_owned()),
            role: i.role.as_str().to_owned(),
            status: i.status.as_str().to_owned(),
            invited_by: i.invited_by.as_uuid(),
            expires_at: i.expires_at,
            created_at: i.created_at,
        }
    }
}

/// A new invite, with its code (shown only here).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInviteDto {
    #[serde(flatten)]
    pub invite: InviteDto,
    /// The single-use code to hand to the invitee.
    pub code: String,
}

fn path_code(raw: &str) -> Result<InviteCode, ApiError> {
    InviteCode::parse(raw).map_err(|_| invite_not_found())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// How to address the invitee, 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// At least one of phone and e-mail.
    pub phone: Option<String>,
    pub email: Option<String>,
    /// `member` unless named.
    pub role: Option<String>,
}

/// Invites a person by phone and/or e-mail (`invites.manage`); a phone invite gets an SMS with the code.
#[utoipa::path(
    tag = "invites",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    request_body = CreateInviteRequest,
    responses(
        (status = 201, description = "Invite and its code", body = CreatedInviteDto),
        (status = 400, description = "`invalid_request` (phone or e-mail needed, bad fields, unknown role); `invalid_phone`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_member`; `invite_pending`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/invites")]
pub async fn create_invite(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
    body: JsonBody<CreateInviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let slug = path_slug(&slug)?;
    let body = body.into_inner();
    let name = InviteeName::parse(&body.name)
        .map_err(|e| ApiError::invalid_field(ErrorCode::InvalidRequest, "name", e.to_string()))?;
    let phone = body.phone.as_deref().map(|p| parse_phone(p, state.default_region)).transpose()?;
    let email =
        body.email.as_deref().map(Email::parse).transpose().map_err(|e| {
            ApiError::invalid_field(ErrorCode::InvalidRequest, "email", e.to_string())
        })?;
    let role =
        body.role.as_deref().map(onboard_groups::RoleName::parse).transpose().map_err(|e| {
            ApiError::invalid_field(ErrorCode::InvalidRequest, "role", e.to_string())
        })?;
    let created = state
        .invites
        .create(&slug, caller.member_id, CreateInvite { name, phone, email, role })
        .await?;
    Ok(HttpResponse::Created().json(CreatedInviteDto {
        invite: created.invite.into(),
        code: created.code.as_str().to_owned(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InvitesQuery {
    /// `pending`, `accepted`, `revoked` or `expired`.
    #[param(pattern = "^(pending|accepted|revoked|expired)$")]
    pub status: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The group's invites, newest first (`invites.manage`).
#[utoipa::path(
    tag = "invites",
    security(("bearer" = [])),
    params(("slug" = String, Path), InvitesQuery),
    responses(
        (status = 200, description = "A page of Invite", body = Page<InviteDto>),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/invites")]
pub async fn list_invites(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
    query: web::Query<InvitesQuery>,
) -> Result<web::Json<Page<InviteDto>>, ApiError> {
    let slug = path_slug(&slug)?;
    let query = query.into_inner();
    let status = query
        .status
        .as_deref()
        .map(|s| {
            InviteStatus::parse(s).ok_or_else(|| {
                ApiError::invalid_field(
                    ErrorCode::InvalidRequest,
                    "status",
                    "pending, accepted, revoked or expired",
                )
            })
        })
        .transpose()?;
    let list = ListQuery { limit: query.limit, cursor: query.cursor };
    let limit = list.limit()?;
    let after = list.after(InviteCursor::decode)?;
    let page = state.invites.list(&slug, caller.member_id, status, after, limit).await?;
    Ok(web::Json(Page::of(page.items, page.next_cursor)))
}

/// Revokes an invite: its code stops working at once (`invites.manage`).
#[utoipa::path(
    tag = "invites",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/groups/{slug}/invites/{id}")]
pub async fn revoke_invite(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    state.invites.revoke(&path_slug(&slug)?, caller.member_id, InviteId::from_uuid(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewGroup {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewInviter {
    pub first_name: Option<String>,
}

/// What anyone holding a live code may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitePreviewDto {
    pub group: PreviewGroup,
    pub invited_by: PreviewInviter,
    pub name: String,
    pub expires_at: DateTime<Utc>,
}

/// Previews an invite by its code (no sign-in needed).
#[utoipa::path(
    tag = "invites",
    params(("code" = String, Path)),
    responses(
        (status = 200, description = "The invite", body = InvitePreviewDto),
        (status = 404, description = "`invite_not_found` (unknown, used, revoked or expired)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/invites/{code}")]
pub async fn preview_invite(
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<web::Json<InvitePreviewDto>, ApiError> {
    let p = state.invites.preview(&path_code(&code)?).await?;
    Ok(web::Json(InvitePreviewDto {
        group: PreviewGroup {
            slug: p.group_slug.as_str().to_owned(),
            name: p.group_name.as_str().to_owned(),
        },
        invited_by: PreviewInviter { first_name: p.inviter_first_name },
        name: p.name.as_str().to_owned(),
        expires_at: p.expires_at,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptDto {
    /// `joined`, `already_member` or `pending_approval`.
    pub status: String,
    pub group: GroupDto,
}

/// Accepts an invite: single use; a phone invite only by the member with that phone.
#[utoipa::path(
    tag = "invites",
    security(("bearer" = [])),
    params(("code" = String, Path)),
    responses(
        (status = 200, description = "Outcome and group", body = AcceptDto),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`invite_phone_mismatch`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`invite_not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/invites/{code}/accept")]
pub async fn accept_invite(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    code: web::Path<String>,
) -> Result<web::Json<AcceptDto>, ApiError> {
    let record = state.invites.accept(&path_code(&code)?, caller.member_id).await?;
    let status = match record.outcome {
        AcceptOutcome::Joined => "joined",
        AcceptOutcome::AlreadyMember => "already_member",
        AcceptOutcome::PendingApproval => "pending_approval",
    };
    Ok(web::Json(AcceptDto { status: status.to_owned(), group: record.group.into() }))
}

/// Registers the invitations routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(create_invite)
        .service(list_invites)
        .service(revoke_invite)
        .service(preview_invite)
        .service(accept_invite);
}
