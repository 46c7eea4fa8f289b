//! HTTP handlers, one module per domain, and the DTOs they share.

pub mod admin;
pub mod auth;
pub mod billing;
pub mod groups;
pub mod health;
pub mod invites;
pub mod members;
pub mod messages;
pub mod notifications;
pub mod referrals;
pub mod sim;
pub mod sms_credit;
pub mod sso;
pub mod webhooks;

use chrono::{DateTime, Utc};
use onboard_members::{Member, MemberCard, TokenPair};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

/// Registers every `/api/v1` route, domain by domain (the app mounts them under the scope).
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.configure(auth::configure)
        .configure(members::configure)
        .configure(referrals::configure)
        .configure(groups::configure)
        .configure(invites::configure)
        .configure(billing::configure)
        .configure(sms_credit::configure)
        .configure(sso::configure)
        .configure(admin::configure)
        .configure(notifications::configure)
        .configure(messages::configure)
        .configure(webhooks::configure);
}

/// A member, as its owner (or a fellow group member) sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberDto {
    pub id: Uuid,
    #[schema(example = "+79174445566")]
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    #[schema(example = "K49FJ5")]
    pub referral_code: String,
    /// The referral code this member redeemed.
    pub referred_by: Option<String>,
    /// Slug of the current group.
    pub current_group: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Member> for MemberDto {
    fn from(m: Member) -> Self {
        Self {
            id: m.id.as_uuid(),
            phone: m.phone.map(|p| p.as_e164().to_owned()),
            first_name: m.first_name,
            last_name: m.last_name,
            email: m.email.map(|e| e.as_str().to_owned()),
            referral_code: m.referral_code.as_str().to_owned(),
            referred_by: m.referred_by.map(|c| c.as_str().to_owned()),
            current_group: m.current_group,
            created_at: m.created_at,
        }
    }
}

/// What anyone signed in may see of a member. Nothing else: its schema refuses other fields,
/// so a full member (which has more) never validates as a card.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberCardDto {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[schema(example = "+7******4435")]
    pub phone_masked: Option<String>,
}

impl From<MemberCard> for MemberCardDto {
    fn from(c: MemberCard) -> Self {
        Self {
            id: c.id.as_uuid(),
            first_name: c.first_name,
            last_name: c.last_name,
            phone_masked: c.phone_masked,
        }
    }
}

/// A group slug in a path names no group unless it parses: 404.
pub fn path_slug(raw: &str) -> Result<onboard_groups::Slug, ApiError> {
    onboard_groups::Slug::parse(raw).map_err(|_| ApiError::not_found(format!("no group {raw:?}")))
}

/// One page of a list: `next_cursor` is null on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    /// A page of DTOs made from a domain page's items.
    pub fn of<S: Into<T>>(items: Vec<S>, next_cursor: Option<String>) -> Self {
        Self { items: items.into_iter().map(Into::into).collect(), next_cursor }
    }
}

/// An access token and a refresh token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPairDto {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl From<TokenPair> for TokenPairDto {
    fn from(t: TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            refresh_token: t.refresh_token.expose().to_owned(),
            token_type: "Bearer",
            expires_in: t.expires_in,
        }
    }
}

/// `?limit=` (1–100, default 20) and `?cursor=` of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The cursor, read by `decode` (each list has its own kind); 400 when it is not one.
    pub fn after<C>(&self, decode: impl FnOnce(&str) -> Option<C>) -> Result<Option<C>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                decode(c).ok_or_else(|| {
                    ApiError::invalid_field(
                        ErrorCode::InvalidRequest,
                        "cursor",
                        "not a cursor of this list",
                    )
                })
            })
            .transpose()
    }

    /// The page size, 400 outside 1..=100.
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(20),
            Some(n @ 1..=100) => Ok(n),
            Some(_) => Err(ApiError::invalid_field(
                ErrorCode::InvalidRequest,
                "limit",
                "between 1 and 100",
            )),
        }
    }
}
