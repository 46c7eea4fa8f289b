//! `/api/v1/referrals/...`: your code, who referred you, whom you referred.

use actix_web::{get, post, web};
use onboard_referrals::Cursor;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ListQuery, MemberCardDto, MemberDto, Page};
use crate::error::{ApiError, Problem};
use crate::extract::{Auth, JsonBody};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

#[derive(Debug, Serialize, ToSchema)]
pub struct ReferrerDto {
    pub code: String,
    pub member_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralsMe {
    /// The caller's own code.
    #[schema(example = "K49FJ5")]
    pub code: String,
    pub referred_by: Option<ReferrerDto>,
    pub invitees_count: u64,
}

/// The caller's code, who referred them, and how many they referred.
#[utoipa::path(
    tag = "referrals",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Referral standing", body = ReferralsMe),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/referrals/me")]
pub async fn referrals_me(
    state: web::Data<AppState>,
    Auth(me): Auth,
) -> Result<web::Json<ReferralsMe>, ApiError> {
    let summary =
        state.referrals.summary(me.member_id).await?.ok_or_else(ApiError::unauthorized)?;
    Ok(web::Json(ReferralsMe {
        code: summary.code.as_str().to_owned(),
        referred_by: summary.referred_by.map(|r| ReferrerDto {
            code: r.code.as_str().to_owned(),
            member_id: r.member_id.as_uuid(),
        }),
        invitees_count: summary.invitees_count,
    }))
}

/// The members the caller referred, newest first.
#[utoipa::path(
    tag = "referrals",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of MemberCard", body = Page<MemberCardDto>),
        (status = 400, description = "`invalid_request` (limit, cursor)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/referrals/me/invitees")]
pub async fn invitees(
    state: web::Data<AppState>,
    Auth(me): Auth,
    query: web::Query<ListQuery>,
) -> Result<web::Json<Page<MemberCardDto>>, ApiError> {
    let limit = query.limit()?;
    let after = query.after(Cursor::decode)?;
    let page = state.referrals.invitees(me.member_id, after, limit).await?;
    Ok(web::Json(Page::of(page.items, page.next_cursor)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// Case-insensitive; surrounding spaces are ignored.
    #[schema(example = "K49FJ5")]
    pub code: String,
}

/// Redeems another member's referral code: once ever, never your own, never closing a cycle.
#[utoipa::path(
    tag = "referrals",
    security(("bearer" = [])),
    request_body = RedeemRequest,
    responses(
        (status = 200, description = "The caller, now referred", body = MemberDto),
        (status = 400, description = "`referral_self`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`referral_code_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`referral_already_redeemed`; `referral_cycle`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/referrals/redeem")]
pub async fn redeem(
    state: web::Data<AppState>,
    Auth(me): Auth,
    body: JsonBody<RedeemRequest>,
) -> Result<web::Json<MemberDto>, ApiError> {
    Ok(web::Json(state.referrals.redeem(me.member_id, &body.code).await?.into()))
}

/// Registers the referral codes and invitees routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(referrals_me).service(invitees).service(redeem);
}
