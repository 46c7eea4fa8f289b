//! Messages a group sends (`shared/spec/messaging.md`, "Messages a group sends"):
//! `/api/v1/groups/{slug}/messages`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use onboard_messaging::{Channel, Message, MessageId, SendRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ListQuery, Page, path_slug};
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::extract::{Auth, JsonBody};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// What to send, to whom.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessagesRequest {
    /// The recipients (E.164, or national with `DEFAULT_REGION`): one message each, 1 to 1,000.
    #[schema(example = json!(["+821012345678"]), min_items = 1, max_items = 1000)]
    pub to: Vec<String>,
    /// `sms`, `lms` or `alimtalk`. An `sms` text over 90 bytes (EUC-KR) goes, and is priced, as
    /// an LMS.
    #[schema(example = "alimtalk", pattern = "^(sms|lms|alimtalk)$")]
    pub channel: String,
    /// Up to 2,000 bytes (EUC-KR count).
    pub text: String,
    /// The approved alimtalk template (required for `alimtalk`).
    pub template_code: Option<String>,
    /// Resend an alimtalk that is not delivered as SMS/LMS (false by default).
    #[serde(default)]
    pub failover: bool,
}

/// A queued message.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedMessageDto {
    pub id: Uuid,
    #[schema(example = "+821012345678")]
    pub to: String,
    /// The channel it goes by (`lms` for a long `sms`).
    #[schema(example = "sms")]
    pub channel: &'static str,
    #[schema(example = "queued")]
    pub status: &'static str,
}

/// The messages a send queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedMessagesDto {
    pub items: Vec<QueuedMessageDto>,
}

/// A message and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageDto {
    pub id: Uuid,
    #[schema(example = "+821012345678")]
    pub to: String,
    #[schema(example = "alimtalk", pattern = "^(sms|lms|alimtalk)$")]
    pub channel: &'static str,
    pub text: String,
    pub template_code: Option<String>,
    pub failover: bool,
    /// `queued`, `sent`, `delivered`, `failed` or `failed_over`.
    #[schema(example = "failed_over")]
    pub status: &'static str,
    /// The provider's result code (`0000` delivered, `3018` not deliverable, …).
    #[schema(example = "3018")]
    pub result_code: Option<String>,
    /// KRW debited (refunded when it failed or failed over).
    pub price: i64,
    /// The alimtalk this message resends.
    pub failover_of: Option<Uuid>,
    /// The SMS/LMS that resent this alimtalk.
    pub failover_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Message> for MessageDto {
    fn from(m: Message) -> Self {
        Self {
            id: m.id.as_uuid(),
            to: m.to.as_e164().to_owned(),
            channel: m.channel.as_str(),
            text: m.text,
            template_code: m.template_code,
            failover: m.failover,
            status: m.status.as_str(),
            result_code: m.result_code,
            price: m.price,
            failover_of: m.failover_of.map(|id| id.as_uuid()),
            failover_id: m.failover_id.map(|id| id.as_uuid()),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl SendMessagesRequest {
    /// The domain request; 400 naming every bad number (`to[i]`) or the channel.
    fn try_into_domain(
        self,
        region: Option<onboard_kernel::Region>,
    ) -> Result<SendRequest, ApiError> {
        let channel = Channel::parse(&self.channel).ok_or_else(|| {
            ApiError::invalid_field(
                ErrorCode::InvalidRequest,
                "channel",
                "one of sms, lms, alimtalk",
            )
        })?;
        let mut to = Vec::with_capacity(self.to.len());
        let mut bad = Vec::new();
        for (i, raw) in self.to.iter().enumerate() {
            match onboard_kernel::PhoneNumber::parse(raw, region) {
                Ok(phone) => to.push(phone),
                Err(e) => bad.push(FieldError {
                    field: format!("to[{i}]"),
                    message: format!("{raw:?}: {e}"),
                }),
            }
        }
        if !bad.is_empty() {
            return Err(ApiError::invalid_fields(ErrorCode::InvalidPhone, bad));
        }
        Ok(SendRequest {
            to,
            channel,
            text: self.text,
            template_code: self.template_code,
            failover: self.failover,
        })
    }
}

/// Queues one message per recipient, debited from the group's SMS credit in the same
/// transaction; a worker sends them. Needs `messages.send` or `group.manage`.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug")),
    request_body = SendMessagesRequest,
    responses(
        (status = 202, description = "Queued", body = QueuedMessagesDto),
        (status = 400, description = "`invalid_phone` (each bad number named in `errors`), `invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "`insufficient_sms_credit`: nothing queued", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/messages")]
pub async fn send_messages(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
    body: JsonBody<SendMessagesRequest>,
) -> Result<HttpResponse, ApiError> {
    let slug = path_slug(&slug)?;
    let request = body.into_inner().try_into_domain(state.default_region)?;
    let queued = state.messaging.send(&slug, caller.member_id, request).await?;
    let items = queued
        .into_iter()
        .map(|m| QueuedMessageDto {
            id: m.id.as_uuid(),
            to: m.to.as_e164().to_owned(),
            channel: m.channel.as_str(),
            status: m.status.as_str(),
        })
        .collect();
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(QueuedMessagesDto { items }))
}

/// One of the group's messages, with its status and the provider's result code.
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("slug" = String, Path, description = "The group's slug"),
        ("id" = Uuid, Path, description = "The message id"),
    ),
    responses(
        (status = 200, description = "The message", body = MessageDto),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/messages/{id}")]
pub async fn get_message(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<web::Json<MessageDto>, ApiError> {
    let (slug, id) = path.into_inner();
    let slug = path_slug(&slug)?;
    let id: MessageId = id.parse().map_err(|_| ApiError::not_found("no such message"))?;
    let message = state.messaging.get(&slug, caller.member_id, id).await?;
    Ok(web::Json(message.into()))
}

/// The group's messages, newest first (keyset pages).
#[utoipa::path(
    tag = "messages",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug"), ListQuery),
    responses(
        (status = 200, description = "A page", body = Page<MessageDto>),
        (status = 400, description = "`invalid_request` (limit, cursor)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/messages")]
pub async fn list_messages(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<web::Json<Page<MessageDto>>, ApiError> {
    let slug = path_slug(&slug)?;
    let limit = query.limit()?;
    let before = query.after(|c| c.parse::<MessageId>().ok())?;
    let items = state.messaging.list(&slug, caller.member_id, before, limit).await?;
    let next_cursor = (items.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| items.last().map(|m| m.id.to_string()))
        .flatten();
    Ok(web::Json(Page::of(items, next_cursor)))
}

/// Registers the group messages routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(send_messages).service(list_messages).service(get_message);
}
