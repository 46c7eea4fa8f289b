//! `/api/v1/groups/...`: workspaces, roles, members, join requests.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use onboard_groups::{
    CreateGroup, GroupMember, GroupName, GroupPatch, MemberCursor, MembershipStatus, MyGroup, Role,
    RoleName, Slug,
};
use onboard_groups::{GroupCursor, Page as GroupsPage};
use onboard_kernel::MemberId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ListQuery, Page, path_slug};
use crate::error::{ApiError, ErrorCode, Problem, role_not_found};
use crate::extract::{Auth, JsonBody};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// A group as the caller sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDto {
    pub id: Uuid,
    #[schema(example = "acme")]
    pub slug: String,
    pub name: String,
    pub approval_required: bool,
    /// The caller's role in it.
    #[schema(example = "owner")]
    pub my_role: String,
    pub created_at: DateTime<Utc>,
}

impl From<MyGroup> for GroupDto {
    fn from(g: MyGroup) -> Self {
        Self {
            id: g.group.id.as_uuid(),
            slug: g.group.slug.as_str().to_owned(),
            name: g.group.name.as_str().to_owned(),
            approval_required: g.group.approval_required,
            my_role: g.my_role.as_str().to_owned(),
            created_at: g.group.created_at,
        }
    }
}

/// A role template.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleDto {
    #[schema(example = "manager")]
    pub name: String,
    pub permissions: Vec<String>,
    pub builtin: bool,
}

impl From<Role> for RoleDto {
    fn from(r: Role) -> Self {
        Self {
            name: r.name.as_str().to_owned(),
            permissions: r.permissions.iter().map(|p| p.as_str().to_owned()).collect(),
            builtin: r.builtin,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleList {
    pub items: Vec<RoleDto>,
}

/// A member of a group, active or pending.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMemberDto {
    pub member_id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub role: String,
    /// `active` or `pending`.
    #[schema(example = "active")]
    pub status: String,
    pub joined_at: DateTime<Utc>,
}

impl From<GroupMember> for GroupMemberDto {
    fn from(m: GroupMember) -> Self {
        Self {
            member_id: m.member_id.as_uuid(),
            first_name: m.first_name,
            last_name: m.last_name,
            phone: m.phone.map(|p| p.as_e164().to_owned()),
            role: m.role.as_str().to_owned(),
            status: m.status.as_str().to_owned(),
            joined_at: m.joined_at,
        }
    }
}

/// The caller's standing in a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct StandingDto {
    pub role: String,
    pub permissions: Vec<String>,
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JoinStatus {
    /// `active` or `pending`.
    pub status: String,
}

fn path_role(raw: &str) -> Result<RoleName, ApiError> {
    RoleName::parse(raw).map_err(|_| role_not_found())
}

fn page<T, D: From<T> + ToSchema>(p: GroupsPage<T>) -> Page<D> {
    Page::of(p.items, p.next_cursor)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupRequest {
    /// 1 to 100 characters after trimming, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// `[a-z0-9-]`, 3 to 40, no `-` at either end; derived from the name when absent.
    #[schema(min_length = 3, max_length = 40, pattern = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")]
    pub slug: Option<String>,
    #[serde(default)]
    pub approval_required: bool,
}

/// Creates a group; the caller becomes its owner.
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    request_body = CreateGroupRequest,
    responses(
        (status = 201, description = "Created", body = GroupDto),
        (status = 400, description = "`invalid_request` with `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`slug_taken`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups")]
pub async fn create_group(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    body: JsonBody<CreateGroupRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = GroupName::parse(&body.name)
        .map_err(|e| ApiError::invalid_field(ErrorCode::InvalidRequest, "name", e.to_string()))?;
    let slug =
        body.slug.map(|s| Slug::parse(&s)).transpose().map_err(|e| {
            ApiError::invalid_field(ErrorCode::InvalidRequest, "slug", e.to_string())
        })?;
    let group = state
        .groups
        .create_group(
            caller.member_id,
            CreateGroup { name, slug, approval_required: body.approval_required },
        )
        .await?;
    Ok(HttpResponse::Created().json(GroupDto::from(group)))
}

/// The caller's groups (active memberships), oldest membership first.
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of Group", body = Page<GroupDto>),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups")]
pub async fn my_groups(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    query: web::Query<ListQuery>,
) -> Result<web::Json<Page<GroupDto>>, ApiError> {
    let limit = query.limit()?;
    let after = query.after(GroupCursor::decode)?;
    Ok(web::Json(page(state.groups.my_groups(caller.member_id, after, limit).await?)))
}

/// A group of the caller's.
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The group", body = GroupDto),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found` (also for non-members)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}")]
pub async fn get_group(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
) -> Result<web::Json<GroupDto>, ApiError> {
    Ok(web::Json(state.groups.group(&path_slug(&slug)?, caller.member_id).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchGroupRequest {
    /// 1 to 100 characters after trimming, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    pub approval_required: Option<bool>,
}

/// Renames a group or changes whether joining needs approval (`group.manage`).
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    request_body = PatchGroupRequest,
    responses(
        (status = 200, description = "The group", body = GroupDto),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/groups/{slug}")]
pub async fn update_group(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
    body: JsonBody<PatchGroupRequest>,
) -> Result<web::Json<GroupDto>, ApiError> {
    let slug = path_slug(&slug)?;
    let body = body.into_inner();
    let name =
        body.name.map(|n| GroupName::parse(&n)).transpose().map_err(|e| {
            ApiError::invalid_field(ErrorCode::InvalidRequest, "name", e.to_string())
        })?;
    let patch = GroupPatch { name, approval_required: body.approval_required };
    Ok(web::Json(state.groups.update_group(&slug, caller.member_id, &patch).await?.into()))
}

/// Deletes a group (owners only).
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/groups/{slug}")]
pub async fn delete_group(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.groups.delete_group(&path_slug(&slug)?, caller.member_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The group's role templates: the built-ins, then its own.
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "Roles", body = RoleList),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/roles")]
pub async fn roles(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
) -> Result<web::Json<RoleList>, ApiError> {
    let roles = state.groups.roles(&path_slug(&slug)?, caller.member_id).await?;
    Ok(web::Json(RoleList { items: roles.into_iter().map(Into::into).collect() }))
}

/// The caller's role, permissions and status in the group.
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "Standing", body = StandingDto),
        (status = 404, description = "`not_found` for non-members", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/me")]
pub async fn standing(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
) -> Result<web::Json<StandingDto>, ApiError> {
    let s = state.groups.standing(&path_slug(&slug)?, caller.member_id).await?;
    Ok(web::Json(StandingDto {
        role: s.role.as_str().to_owned(),
        permissions: s.permissions.iter().map(|p| p.as_str().to_owned()).collect(),
        status: s.status.as_str().to_owned(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleRequest {
    /// `[a-z0-9_-]`, 1 to 40; not owner, admin or member.
    #[schema(min_length = 1, max_length = 40, pattern = r"^[a-z0-9_-]+$")]
    pub name: String,
    pub permissions: Vec<String>,
}

/// Adds a role template (`group.manage`).
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    request_body = CreateRoleRequest,
    responses(
        (status = 201, description = "Created", body = RoleDto),
        (status = 400, description = "`invalid_request` (unknown permission, bad name)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`role_exists`; `role_builtin`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/roles")]
pub async fn create_role(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
    body: JsonBody<CreateRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let slug = path_slug(&slug)?;
    let body = body.into_inner();
    let name = RoleName::parse(&body.name)
        .map_err(|e| ApiError::invalid_field(ErrorCode::InvalidRequest, "name", e.to_string()))?;
    let role = state.groups.create_role(&slug, caller.member_id, &name, body.permissions).await?;
    Ok(HttpResponse::Created().json(RoleDto::from(role)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoleRequest {
    pub permissions: Vec<String>,
}

/// Replaces a custom role's permissions (`group.manage`).
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("name" = String, Path)),
    request_body = UpdateRoleRequest,
    responses(
        (status = 200, description = "The role", body = RoleDto),
        (status = 400, description = "`invalid_request` (unknown permission)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`; `role_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`role_builtin`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/groups/{slug}/roles/{name}")]
pub async fn update_role(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: JsonBody<UpdateRoleRequest>,
) -> Result<web::Json<RoleDto>, ApiError> {
    let (slug, name) = path.into_inner();
    let (slug, name) = (path_slug(&slug)?, path_role(&name)?);
    let role = state
        .groups
        .update_role(&slug, caller.member_id, &name, body.into_inner().permissions)
        .await?;
    Ok(web::Json(role.into()))
}

/// Deletes a custom role; its members fall back to `member` (`group.manage`).
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("name" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`; `role_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`role_builtin`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/groups/{slug}/roles/{name}")]
pub async fn delete_role(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, name) = path.into_inner();
    state.groups.delete_role(&path_slug(&slug)?, caller.member_id, &path_role(&name)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// `active` (default) or `pending` (needs `members.manage`).
    #[param(pattern = "^(active|pending)$")]
    pub status: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The group's members, oldest membership first.
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path), MembersQuery),
    responses(
        (status = 200, description = "A page of GroupMember", body = Page<GroupMemberDto>),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden` (pending without members.manage)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/members")]
pub async fn members(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
    query: web::Query<MembersQuery>,
) -> Result<web::Json<Page<GroupMemberDto>>, ApiError> {
    let slug = path_slug(&slug)?;
    let query = query.into_inner();
    let status = match query.status.as_deref() {
        None => MembershipStatus::Active,
        Some(s) => MembershipStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(ErrorCode::InvalidRequest, "status", "active or pending")
        })?,
    };
    let list = ListQuery { limit: query.limit, cursor: query.cursor };
    let (limit, after) = (list.limit()?, list.after(MemberCursor::decode)?);
    Ok(web::Json(page(state.groups.members(&slug, caller.member_id, status, after, limit).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    /// A role name: `[a-z0-9_-]`, 1 to 40.
    #[schema(min_length = 1, max_length = 40, pattern = r"^[a-z0-9_-]+$")]
    pub role: String,
}

/// Changes a member's role (`members.manage`; granting or taking `owner` needs an owner).
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("member_id" = Uuid, Path)),
    request_body = ChangeRoleRequest,
    responses(
        (status = 200, description = "The member", body = GroupMemberDto),
        (status = 400, description = "`invalid_request` (unknown role)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`cannot_change_own_role`; `last_owner`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/groups/{slug}/members/{member_id}")]
pub async fn change_role(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, Uuid)>,
    body: JsonBody<ChangeRoleRequest>,
) -> Result<web::Json<GroupMemberDto>, ApiError> {
    let (slug, target) = path.into_inner();
    let slug = path_slug(&slug)?;
    let role = RoleName::parse(&body.role)
        .map_err(|e| ApiError::invalid_field(ErrorCode::InvalidRequest, "role", e.to_string()))?;
    let member = state
        .groups
        .change_role(&slug, caller.member_id, MemberId::from_uuid(target), &role)
        .await?;
    Ok(web::Json(member.into()))
}

/// Removes a member (`members.manage`; an owner only by an owner), or leaves when it is the caller.
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("member_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`last_owner`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/groups/{slug}/members/{member_id}")]
pub async fn remove_member(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, target) = path.into_inner();
    state
        .groups
        .remove_member(&path_slug(&slug)?, caller.member_id, MemberId::from_uuid(target))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Joins a group: at once, or as a pending request when it requires approval.
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "`{\"status\": \"active\"}`", body = JoinStatus),
        (status = 202, description = "`{\"status\": \"pending\"}`", body = JoinStatus),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_member`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/join")]
pub async fn join(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let status = state.groups.join(&path_slug(&slug)?, caller.member_id).await?;
    let body = JoinStatus { status: status.as_str().to_owned() };
    Ok(match status {
        MembershipStatus::Active => HttpResponse::Ok().json(body),
        MembershipStatus::Pending => HttpResponse::Accepted().json(body),
    })
}

/// Pending join requests (`members.manage`).
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path), ListQuery),
    responses(
        (status = 200, description = "A page of pending GroupMember", body = Page<GroupMemberDto>),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/join-requests")]
pub async fn join_requests(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<web::Json<Page<GroupMemberDto>>, ApiError> {
    let slug = path_slug(&slug)?;
    let (limit, after) = (query.limit()?, query.after(MemberCursor::decode)?);
    Ok(web::Json(page(state.groups.join_requests(&slug, caller.member_id, after, limit).await?)))
}

/// Approves a join request (`members.manage`).
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("member_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The new member", body = GroupMemberDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/join-requests/{member_id}/approve")]
pub async fn approve(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, Uuid)>,
) -> Result<web::Json<GroupMemberDto>, ApiError> {
    let (slug, target) = path.into_inner();
    let member = state
        .groups
        .approve(&path_slug(&slug)?, caller.member_id, MemberId::from_uuid(target))
        .await?;
    Ok(web::Json(member.into()))
}

/// Rejects a join request (`members.manage`).
#[utoipa::path(
    tag = "groups",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("member_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Rejected"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/join-requests/{member_id}/reject")]
pub async fn reject(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, target) = path.into_inner();
    state.groups.reject(&path_slug(&slug)?, caller.member_id, MemberId::from_uuid(target)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the groups, roles, members and join requests routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(create_group)
        .service(my_groups)
        .service(get_group)
        .service(update_group)
        .service(delete_group)
        .service(roles)
        .service(standing)
        .service(create_role)
        .service(update_role)
        .service(delete_role)
        .service(members)
        .service(change_role)
        .service(remove_member)
        .service(join)
        .service(join_requests)
        .service(approve)
        .service(reject);
}
