//! Outgoing webhooks and the events API: a group's (`/api/v1/groups/{slug}/webhooks`,
//! `/api/v1/groups/{slug}/events`, holders of `webhooks.manage`) and the platform's
//! (`/api/v1/admin/webhooks`, `/api/v1/admin/events`, platform admins; in `admin.rs`). The
//! handlers of both parse and call the same functions here.

mod admin;
pub mod dto;
pub mod openapi;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use onboard_members::Principal;
use onboard_webhooks::{DeliveryId, EndpointId, Target};
use utoipa_actix_web::service_config::ServiceConfig;

use self::dto::{
    CreateEndpointRequest, DeliveryDto, EndpointDto, EndpointWithSecretDto, EndpointsDto,
    EventsPageDto, EventsQuery, PatchEndpointRequest, QueuedDto, ReplayRequest, TestDeliveryDto,
    cursor,
};
use super::{ListQuery, Page, path_slug};
use crate::error::{ApiError, Problem};
use crate::extract::{Auth, JsonBody};
use crate::state::AppState;

fn group(slug: &str) -> Result<Target, ApiError> {
    Ok(Target::Group(path_slug(slug)?))
}

fn endpoint_id(raw: &str) -> Result<EndpointId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("no such webhook endpoint"))
}

fn delivery_id(raw: &str) -> Result<DeliveryId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("no such delivery"))
}

async fn create(
    state: &AppState,
    caller: &Principal,
    target: Target,
    body: CreateEndpointRequest,
) -> Result<HttpResponse, ApiError> {
    let made = state.webhooks.create(&target, caller.member_id, body.into()).await?;
    Ok(HttpResponse::Created().json(EndpointWithSecretDto::from(made)))
}

async fn list(
    state: &AppState,
    caller: &Principal,
    target: Target,
) -> Result<EndpointsDto, ApiError> {
    let items = state.webhooks.list(&target, caller.member_id).await?;
    Ok(EndpointsDto { items: items.into_iter().map(Into::into).collect() })
}

async fn get_one(
    state: &AppState,
    caller: &Principal,
    target: Target,
    id: &str,
) -> Result<EndpointDto, ApiError> {
    Ok(state.webhooks.get(&target, caller.member_id, endpoint_id(id)?).await?.into())
}

async fn update(
    state: &AppState,
    caller: &Principal,
    target: Target,
    id: &str,
    body: PatchEndpointRequest,
) -> Result<EndpointDto, ApiError> {
    let id = endpoint_id(id)?;
    Ok(state.webhooks.update(&target, caller.member_id, id, body.into()).await?.into())
}

async fn remove(
    state: &AppState,
    caller: &Principal,
    target: Target,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    state.webhooks.delete(&target, caller.member_id, endpoint_id(id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn rotate(
    state: &AppState,
    caller: &Principal,
    target: Target,
    id: &str,
) -> Result<EndpointWithSecretDto, ApiError> {
    Ok(state.webhooks.rotate_secret(&target, caller.member_id, endpoint_id(id)?).await?.into())
}

async fn deliveries(
    state: &AppState,
    caller: &Principal,
    target: Target,
    id: &str,
    query: &ListQuery,
) -> Result<Page<DeliveryDto>, ApiError> {
    let limit = query.limit()?;
    let before = query.after(|c| c.parse::<DeliveryId>().ok())?;
    let items = state
        .webhooks
        .deliveries(&target, caller.member_id, endpoint_id(id)?, before, limit)
        .await?;
    let next_cursor = (items.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| items.last().map(|d| d.id.to_string()))
        .flatten();
    Ok(Page::of(items, next_cursor))
}

async fn retry(
    state: &AppState,
    caller: &Principal,
    target: Target,
    id: &str,
    delivery: &str,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery) = (endpoint_id(id)?, delivery_id(delivery)?);
    let retried = state.webhooks.retry(&target, caller.member_id, id, delivery).await?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(DeliveryDto::from(retried)))
}

async fn replay(
    state: &AppState,
    caller: &Principal,
    target: Target,
    id: &str,
    body: ReplayRequest,
) -> Result<HttpResponse, ApiError> {
    let id = endpoint_id(id)?;
    let queued = state.webhooks.replay(&target, caller.member_id, id, body.from, body.to).await?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(QueuedDto { queued }))
}

async fn send_test(
    state: &AppState,
    caller: &Principal,
    target: Target,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let delivery = state.webhooks.send_test(&target, caller.member_id, endpoint_id(id)?).await?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED)
        .json(TestDeliveryDto { delivery_id: delivery.as_uuid() }))
}

async fn events(
    state: &AppState,
    caller: &Principal,
    target: Target,
    query: &EventsQuery,
) -> Result<EventsPageDto, ApiError> {
    let (after, limit, types) = (query.after()?, query.limit()?, query.types());
    let page = state.webhooks.events(&target, caller.member_id, after, &types, limit).await?;
    Ok(EventsPageDto {
        items: page.events.into_iter().map(Into::into).collect(),
        next_cursor: cursor(page.next),
    })
}

/// Creates an endpoint of the group; the answer carries its signing secret, shown this once.
/// Needs `webhooks.manage`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug")),
    request_body = CreateEndpointRequest,
    responses(
        (status = 201, description = "Created", body = EndpointWithSecretDto),
        (status = 400, description = "`invalid_request` (url, event_types, description)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`webhook_limit_reached` (20 per group)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/webhooks")]
pub async fn create_group_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
    body: JsonBody<CreateEndpointRequest>,
) -> Result<HttpResponse, ApiError> {
    create(&state, &caller, group(&slug)?, body.into_inner()).await
}

/// The group's endpoints, oldest first. Needs `webhooks.manage`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug")),
    responses(
        (status = 200, description = "The endpoints", body = EndpointsDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/webhooks")]
pub async fn list_group_webhooks(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
) -> Result<web::Json<EndpointsDto>, ApiError> {
    list(&state, &caller, group(&slug)?).await.map(web::Json)
}

/// One of the group's endpoints. Needs `webhooks.manage`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug"), ("id" = Uuid, Path, description = "The endpoint")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/webhooks/{id}")]
pub async fn get_group_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<web::Json<EndpointDto>, ApiError> {
    let (slug, id) = path.into_inner();
    get_one(&state, &caller, group(&slug)?, &id).await.map(web::Json)
}

/// Changes an endpoint of the group. Needs `webhooks.manage`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug"), ("id" = Uuid, Path, description = "The endpoint")),
    request_body = PatchEndpointRequest,
    responses(
        (status = 200, description = "Changed", body = EndpointDto),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/groups/{slug}/webhooks/{id}")]
pub async fn update_group_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: JsonBody<PatchEndpointRequest>,
) -> Result<web::Json<EndpointDto>, ApiError> {
    let (slug, id) = path.into_inner();
    update(&state, &caller, group(&slug)?, &id, body.into_inner()).await.map(web::Json)
}

/// Deletes an endpoint of the group and its deliveries. Needs `webhooks.manage`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug"), ("id" = Uuid, Path, description = "The endpoint")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/groups/{slug}/webhooks/{id}")]
pub async fn delete_group_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    remove(&state, &caller, group(&slug)?, &id).await
}

/// Gives the endpoint a new secret (in the answer, shown once); the old one keeps signing
/// beside it for 24 hours. Needs `webhooks.manage`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug"), ("id" = Uuid, Path, description = "The endpoint")),
    responses(
        (status = 200, description = "Rotated", body = EndpointWithSecretDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/webhooks/{id}/rotate-secret")]
pub async fn rotate_group_webhook_secret(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<web::Json<EndpointWithSecretDto>, ApiError> {
    let (slug, id) = path.into_inner();
    rotate(&state, &caller, group(&slug)?, &id).await.map(web::Json)
}

/// The endpoint's deliveries, newest first, with their last attempt (keyset pages). Needs
/// `webhooks.manage`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug"), ("id" = Uuid, Path, description = "The endpoint"), ListQuery),
    responses(
        (status = 200, description = "A page", body = Page<DeliveryDto>),
        (status = 400, description = "`invalid_request` (limit, cursor)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/webhooks/{id}/deliveries")]
pub async fn list_group_webhook_deliveries(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    query: web::Query<ListQuery>,
) -> Result<web::Json<Page<DeliveryDto>>, ApiError> {
    let (slug, id) = path.into_inner();
    deliveries(&state, &caller, group(&slug)?, &id, &query).await.map(web::Json)
}

/// Puts one delivery back for one more attempt now, with the same `webhook-id`. Needs
/// `webhooks.manage`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug"), ("id" = Uuid, Path, description = "The endpoint"), ("delivery_id" = Uuid, Path, description = "The delivery")),
    responses(
        (status = 202, description = "Queued", body = DeliveryDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/webhooks/{id}/deliveries/{delivery_id}/retry")]
pub async fn retry_group_webhook_delivery(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id, delivery) = path.into_inner();
    retry(&state, &caller, group(&slug)?, &id, &delivery).await
}

/// Delivers again every event of the group that the endpoint wants and that occurred in
/// `[from, to)` (at most 10,000; events are kept 30 days), with a fresh retry schedule.
/// Needs `webhooks.manage`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug"), ("id" = Uuid, Path, description = "The endpoint")),
    request_body = ReplayRequest,
    responses(
        (status = 202, description = "Queued", body = QueuedDto),
        (status = 400, description = "`invalid_request` (from must be before to)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/webhooks/{id}/replay")]
pub async fn replay_group_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
    body: JsonBody<ReplayRequest>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    replay(&state, &caller, group(&slug)?, &id, body.into_inner()).await
}

/// Sends the endpoint a `webhook.test` event. Needs `webhooks.manage`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug"), ("id" = Uuid, Path, description = "The endpoint")),
    responses(
        (status = 202, description = "Queued", body = TestDeliveryDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/webhooks/{id}/test")]
pub async fn test_group_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    send_test(&state, &caller, group(&slug)?, &id).await
}

/// The group's events, oldest first, as webhooks carry them (kept 30 days). Poll with the
/// page's `next_cursor` as `after`: no event is skipped, even one whose change committed late.
/// Needs `webhooks.manage`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The group's slug"), EventsQuery),
    responses(
        (status = 200, description = "A page", body = EventsPageDto),
        (status = 400, description = "`invalid_request` (after, types, limit)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/events")]
pub async fn group_events(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    slug: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> Result<web::Json<EventsPageDto>, ApiError> {
    events(&state, &caller, group(&slug)?, &query).await.map(web::Json)
}

/// Registers the webhooks and events routes, the group's and the platform's.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(create_group_webhook)
        .service(list_group_webhooks)
        .service(get_group_webhook)
        .service(update_group_webhook)
        .service(delete_group_webhook)
        .service(rotate_group_webhook_secret)
        .service(list_group_webhook_deliveries)
        .service(retry_group_webhook_delivery)
        .service(replay_group_webhook)
        .service(test_group_webhook)
        .service(group_events)
        .configure(admin::configure);
}
