//! `/api/v1/admin/...`: platform administration. Every call answers 403 `forbidden` unless the
//! caller is a platform admin (granted with `onboard admin grant`, or listed in
//! `ADMIN_PHONES`), checked on each call.

use actix_web::{get, post, web};
use chrono::{DateTime, Utc};
use onboard_admin::{
    AdminGroup, AdminMember, AuditEntry, BlockReason, GroupSearch, IdCursor, MemberDetail,
    MemberSearch, Page as AdminPage, Stats,
};
use onboard_kernel::MemberId;
use onboard_members::Principal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ListQuery, MemberDto, Page};
use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::{Auth, JsonBody};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// A member as the admin search lists them.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminMemberDto {
    #[serde(flatten)]
    pub member: MemberDto,
    pub blocked: bool,
    /// Granted, or listed in `ADMIN_PHONES`.
    pub is_admin: bool,
}

impl From<AdminMember> for AdminMemberDto {
    fn from(m: AdminMember) -> Self {
        Self { member: m.member.into(), blocked: m.blocked, is_admin: m.is_admin }
    }
}

/// One group of a member.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminMemberGroupDto {
    pub slug: String,
    pub name: String,
    pub role: String,
    /// `active` or `pending`.
    pub status: String,
}

/// Everything an admin sees of one member.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminMemberDetailDto {
    #[serde(flatten)]
    pub member: MemberDto,
    /// The member's groups (active and pending), in join order; at most 100.
    pub groups: Vec<AdminMemberGroupDto>,
    /// Live sessions.
    pub sessions_active: u64,
    pub invitees_count: u64,
    pub blocked: bool,
    /// When the block began (null when not blocked).
    pub blocked_at: Option<DateTime<Utc>>,
    pub blocked_reason: Option<String>,
    pub is_admin: bool,
}

impl From<MemberDetail> for AdminMemberDetailDto {
    fn from(d: MemberDetail) -> Self {
        Self {
            member: d.member.into(),
            groups: d
                .groups
                .into_iter()
                .map(|g| AdminMemberGroupDto {
                    slug: g.slug,
                    name: g.name,
                    role: g.role,
                    status: g.status,
                })
                .collect(),
            sessions_active: d.sessions_active,
            invitees_count: d.invitees_count,
            blocked: d.block.is_some(),
            blocked_at: d.block.as_ref().map(|b| b.at),
            blocked_reason: d.block.and_then(|b| b.reason),
            is_admin: d.is_admin,
        }
    }
}

/// A group as the admin listing shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminGroupDto {
    pub id: Uuid,
    #[schema(example = "acme")]
    pub slug: String,
    pub name: String,
    pub approval_required: bool,
    /// Always null here: the caller is not looking as a member.
    pub my_role: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Active members.
    pub members_count: u64,
    /// The billing plan; `free` without a billing account.
    #[schema(example = "free")]
    pub plan: String,
}

impl From<AdminGroup> for AdminGroupDto {
    fn from(g: AdminGroup) -> Self {
        Self {
            id: g.group.id.as_uuid(),
            slug: g.group.slug.as_str().to_owned(),
            name: g.group.name.as_str().to_owned(),
            approval_required: g.group.approval_required,
            my_role: None,
            created_at: g.group.created_at,
            members_count: g.members_count,
            plan: g.plan,
        }
    }
}

/// The platform at a glance; `*_24h` cover the last 24 hours (OTP traffic to the hour).
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsDto {
    pub members: u64,
    pub groups: u64,
    /// Sessions opened (sign-ins) in the last 24 hours.
    pub sign_ins_24h: u64,
    /// One-time codes sent in the last 24 hours.
    pub otp_sends_24h: u64,
    /// Wrong one-time codes presented in the last 24 hours.
    pub otp_failures_24h: u64,
    /// Live members who redeemed a referral code.
    pub referrals_redeemed: u64,
}

impl From<Stats> for StatsDto {
    fn from(s: Stats) -> Self {
        Self {
            members: s.members,
            groups: s.groups,
            sign_ins_24h: s.sign_ins_24h,
            otp_sends_24h: s.otp_sends_24h,
            otp_failures_24h: s.otp_failures_24h,
            referrals_redeemed: s.referrals_redeemed,
        }
    }
}

/// One admin action.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryDto {
    pub id: Uuid,
    /// `member` (an admin through the API) or `cli` (`onboard admin`).
    #[schema(example = "member")]
    pub actor: &'static str,
    /// The acting admin, when `actor` is `member`.
    pub actor_member_id: Option<Uuid>,
    /// `grant`, `revoke`, `block` or `unblock`.
    #[schema(example = "block")]
    pub action: &'static str,
    pub target_member_id: Uuid,
    /// The block reason, if any.
    pub details: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditEntryDto {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            actor: e.actor.kind(),
            actor_member_id: e.actor.member_id().map(|m| m.as_uuid()),
            action: e.action.as_str(),
            target_member_id: e.target.as_uuid(),
            details: e.details,
            created_at: e.at,
        }
    }
}

/// `?q=`, `?limit=` (1–100, default 20) and `?cursor=` of the admin searches.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Members: a phone prefix (`+7917…`), an e-mail (prefix), a referral code, or a name
    /// prefix. Groups: a slug or name prefix. Case-insensitive; empty for everything.
    pub q: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl SearchQuery {
    fn list(&self) -> ListQuery {
        ListQuery { limit: self.limit, cursor: self.cursor.clone() }
    }
}

/// A parsed search: `(what, after, limit)`.
type Parsed<S> = (S, Option<IdCursor>, u32);

fn parse_search<S, E: std::fmt::Display>(
    query: &SearchQuery,
    parse: impl FnOnce(Option<&str>) -> Result<S, E>,
) -> Result<Parsed<S>, ApiError> {
    let search = parse(query.q.as_deref())
        .map_err(|e| ApiError::invalid_field(ErrorCode::InvalidRequest, "q", e.to_string()))?;
    let list = query.list();
    Ok((search, list.after(IdCursor::decode)?, list.limit()?))
}

/// A request the caller got wrong, answered as such only to a platform admin: anyone else
/// gets 403 whatever they sent.
async fn admins_only<T>(
    state: &AppState,
    me: &Principal,
    parsed: Result<T, ApiError>,
) -> Result<T, ApiError> {
    if parsed.is_err() {
        state.admin.require_admin(me).await?;
    }
    parsed
}

fn page<T, D: ToSchema + From<T>>(page: AdminPage<T>) -> Page<D> {
    Page::of(page.items, page.next_cursor)
}

const FORBIDDEN: &str = "`forbidden`: platform admins only";

/// Members by phone prefix, e-mail, referral code or name prefix, newest first.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of Member + `blocked`, `is_admin`", body = Page<AdminMemberDto>),
        (status = 400, description = "`invalid_request` (q, limit, cursor)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = FORBIDDEN, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/admin/members")]
pub async fn search_members(
    state: web::Data<AppState>,
    Auth(me): Auth,
    query: web::Query<SearchQuery>,
) -> Result<web::Json<Page<AdminMemberDto>>, ApiError> {
    let (search, after, limit) =
        admins_only(&state, &me, parse_search(&query, MemberSearch::parse)).await?;
    let found = state.admin.search_members(&me, &search, after, limit).await?;
    Ok(web::Json(page(found)))
}

/// One member with their groups, live sessions, invitee count and block.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Member id")),
    responses(
        (status = 200, description = "Member + `groups`, `sessions_active`, `invitees_count`, `blocked`", body = AdminMemberDetailDto),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = FORBIDDEN, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/admin/members/{id}")]
pub async fn member(
    state: web::Data<AppState>,
    Auth(me): Auth,
    id: web::Path<Uuid>,
) -> Result<web::Json<AdminMemberDetailDto>, ApiError> {
    let detail = state.admin.member(&me, MemberId::from_uuid(id.into_inner())).await?;
    Ok(web::Json(detail.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// Why (1–500 characters; optional), kept with the block and in the audit trail.
    #[schema(example = "spam")]
    pub reason: Option<String>,
}

/// Blocks a member: every session of theirs is revoked at once (their access tokens stop
/// working on the next request) and sign-in answers 403 `member_blocked`.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Member id")),
    request_body = BlockRequest,
    responses(
        (status = 200, description = "The member, blocked", body = AdminMemberDetailDto),
        (status = 400, description = "`invalid_request` (reason)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: platform admins only, and not on themselves", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/admin/members/{id}/block")]
pub async fn block(
    state: web::Data<AppState>,
    Auth(me): Auth,
    id: web::Path<Uuid>,
    body: JsonBody<BlockRequest>,
) -> Result<web::Json<AdminMemberDetailDto>, ApiError> {
    let id = MemberId::from_uuid(id.into_inner());
    let reason =
        body.reason.as_deref().map(BlockReason::parse).transpose().map_err(|e| {
            ApiError::invalid_field(ErrorCode::InvalidRequest, "reason", e.to_string())
        });
    let reason = admins_only(&state, &me, reason).await?;
    state.admin.block(&me, id, reason).await?;
    Ok(web::Json(state.admin.member(&me, id).await?.into()))
}

/// Lifts a member's block: they may sign in again.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Member id")),
    responses(
        (status = 200, description = "The member, not blocked", body = AdminMemberDetailDto),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = FORBIDDEN, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/admin/members/{id}/unblock")]
pub async fn unblock(
    state: web::Data<AppState>,
    Auth(me): Auth,
    id: web::Path<Uuid>,
) -> Result<web::Json<AdminMemberDetailDto>, ApiError> {
    let id = MemberId::from_uuid(id.into_inner());
    state.admin.unblock(&me, id).await?;
    Ok(web::Json(state.admin.member(&me, id).await?.into()))
}

/// Groups by slug or name prefix, newest first, with member counts and plans.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of Group + `members_count`, `plan`", body = Page<AdminGroupDto>),
        (status = 400, description = "`invalid_request` (q, limit, cursor)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = FORBIDDEN, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/admin/groups")]
pub async fn groups(
    state: web::Data<AppState>,
    Auth(me): Auth,
    query: web::Query<SearchQuery>,
) -> Result<web::Json<Page<AdminGroupDto>>, ApiError> {
    let (search, after, limit) =
        admins_only(&state, &me, parse_search(&query, GroupSearch::parse)).await?;
    let found = state.admin.groups(&me, &search, after, limit).await?;
    Ok(web::Json(page(found)))
}

/// Counts: members, groups, sign-ins and OTP sends/failures in the last 24 hours, referrals
/// redeemed.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Platform counts", body = StatsDto),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = FORBIDDEN, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/admin/stats")]
pub async fn stats(
    state: web::Data<AppState>,
    Auth(me): Auth,
) -> Result<web::Json<StatsDto>, ApiError> {
    Ok(web::Json(state.admin.stats(&me).await?.into()))
}

/// The audit trail of admin actions (grant, revoke, block, unblock), newest first.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of audit entries", body = Page<AuditEntryDto>),
        (status = 400, description = "`invalid_request` (limit, cursor)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = FORBIDDEN, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/admin/audit")]
pub async fn audit(
    state: web::Data<AppState>,
    Auth(me): Auth,
    query: web::Query<ListQuery>,
) -> Result<web::Json<Page<AuditEntryDto>>, ApiError> {
    let parsed = query.after(IdCursor::decode).and_then(|after| Ok((after, query.limit()?)));
    let (after, limit) = admins_only(&state, &me, parsed).await?;
    Ok(web::Json(page(state.admin.audit(&me, after, limit).await?)))
}

/// Registers the platform administration routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(search_members)
        .service(member)
        .service(block)
        .service(unblock)
        .service(groups)
        .service(stats)
        .service(audit);
}
