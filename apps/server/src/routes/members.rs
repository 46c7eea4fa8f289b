//! `/api/v1/members/...`: profiles.

use actix_web::{HttpResponse, delete, get, patch, put, web};
use onboard_kernel::{Email, MemberId};
use onboard_members::{MemberView, PersonName, ProfilePatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{MemberCardDto, MemberDto};
use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::{Auth, JsonBody};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// The caller's member with their newest invitees.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    #[serde(flatten)]
    pub member: MemberDto,
    /// The newest 20 members this member referred.
    pub invitees: Vec<MemberCardDto>,
    pub invitees_count: u64,
}

/// The caller's profile.
#[utoipa::path(
    tag = "members",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = MeResponse),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/members/me")]
pub async fn me(
    state: web::Data<AppState>,
    Auth(caller): Auth,
) -> Result<web::Json<MeResponse>, ApiError> {
    let profile = state.members.me(&caller).await?;
    Ok(web::Json(MeResponse {
        member: profile.member.into(),
        invitees: profile.invitees.into_iter().map(Into::into).collect(),
        invitees_count: profile.invitees_count,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMe {
    /// 1 to 100 characters after trimming, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub first_name: Option<String>,
    /// 1 to 100 characters after trimming, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// A referral code to redeem (once ever; errors as `POST /referrals/redeem`).
    pub referred_by: Option<String>,
}

impl PatchMe {
    fn into_domain(self) -> Result<ProfilePatch, ApiError> {
        let name = |field: &str, raw: Option<String>| {
            raw.map(|n| PersonName::parse(&n)).transpose().map_err(|e| {
                ApiError::invalid_field(ErrorCode::InvalidRequest, field, e.to_string())
            })
        };
        Ok(ProfilePatch {
            first_name: name("first_name", self.first_name)?,
            last_name: name("last_name", self.last_name)?,
            email: self.email.map(|e| Email::parse(&e)).transpose().map_err(|e| {
                ApiError::invalid_field(ErrorCode::InvalidRequest, "email", e.to_string())
            })?,
        })
    }
}

/// Changes the caller's names or e-mail; absent fields stay as they are.
#[utoipa::path(
    tag = "members",
    security(("bearer" = [])),
    request_body = PatchMe,
    responses(
        (status = 200, description = "The updated member", body = MemberDto),
        (status = 400, description = "`invalid_request` with `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`referral_code_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken`; `referral_already_redeemed`; `referral_cycle`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/members/me")]
pub async fn update_me(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    body: JsonBody<PatchMe>,
) -> Result<web::Json<MemberDto>, ApiError> {
    let mut body = body.into_inner();
    let referred_by = body.referred_by.take();
    // Every field is checked at the edge; the use case judges the redeem before the profile
    // changes, so a refused redeem leaves the profile as it was.
    let patch = body.into_domain()?;
    let member = state
        .referrals
        .update_profile(&state.members, &caller, &patch, referred_by.as_deref())
        .await?;
    Ok(web::Json(member.into()))
}

/// Deletes the caller: every session ends at once and the phone may sign up again.
#[utoipa::path(
    tag = "members",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`last_owner`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/members/me")]
pub async fn delete_me(
    state: web::Data<AppState>,
    Auth(caller): Auth,
) -> Result<HttpResponse, ApiError> {
    state.members.delete_me(&caller).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A member: all of it when it is the caller or a fellow group member, the card otherwise.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum MemberOrCard {
    Member(MemberDto),
    Card(MemberCardDto),
}

/// A member by id.
#[utoipa::path(
    tag = "members",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Member id")),
    responses(
        (status = 200, description = "Member, or MemberCard for a stranger", body = MemberOrCard),
        (status = 400, description = "`invalid_request` (malformed id)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/members/{id}")]
pub async fn get_member(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<Uuid>,
) -> Result<web::Json<MemberOrCard>, ApiError> {
    Ok(web::Json(
        match state.members.get_member(&caller, MemberId::from_uuid(id.into_inner())).await? {
            MemberView::Full(m) => MemberOrCard::Member(m.into()),
            MemberView::Card(c) => MemberOrCard::Card(c.into()),
        },
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrentGroupRequest {
    pub slug: String,
}

/// Chooses the caller's current group.
#[utoipa::path(
    tag = "members",
    security(("bearer" = [])),
    request_body = CurrentGroupRequest,
    responses(
        (status = 200, description = "The member", body = MemberDto),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_a_member`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/members/me/current-group")]
pub async fn set_current_group(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    body: JsonBody<CurrentGroupRequest>,
) -> Result<web::Json<MemberDto>, ApiError> {
    let slug = super::path_slug(&body.slug)?;
    state.groups.set_current_group(caller.member_id, &slug).await?;
    Ok(web::Json(state.members.me(&caller).await?.member.into()))
}

/// Clears the caller's current group.
#[utoipa::path(
    tag = "members",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The member", body = MemberDto),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/members/me/current-group")]
pub async fn clear_current_group(
    state: web::Data<AppState>,
    Auth(caller): Auth,
) -> Result<web::Json<MemberDto>, ApiError> {
    state.groups.clear_current_group(caller.member_id).await?;
    Ok(web::Json(state.members.me(&caller).await?.member.into()))
}

/// Registers the profiles and the current group routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(me)
        .service(update_me)
        .service(delete_me)
        .service(set_current_group)
        .service(clear_current_group)
        .service(get_member);
}
