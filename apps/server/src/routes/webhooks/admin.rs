//! The platform's webhooks (every event) and events API: `/api/v1/admin/webhooks`,
//! `/api/v1/admin/events`. Platform admins only (403 `forbidden` for anyone else).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use onboard_webhooks::Target;
use utoipa_actix_web::service_config::ServiceConfig;

use super::dto::{
    CreateEndpointRequest, DeliveryDto, EndpointDto, EndpointWithSecretDto, EndpointsDto,
    EventsPageDto, EventsQuery, PatchEndpointRequest, QueuedDto, ReplayRequest, TestDeliveryDto,
};
use crate::error::{ApiError, Problem};
use crate::extract::{Auth, JsonBody};
use crate::routes::{ListQuery, Page};
use crate::state::AppState;

/// Creates a platform endpoint (it hears every event); the answer carries its secret, shown
/// this once.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = CreateEndpointRequest,
    responses(
        (status = 201, description = "Created", body = EndpointWithSecretDto),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`webhook_limit_reached`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/admin/webhooks")]
pub async fn create_platform_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    body: JsonBody<CreateEndpointRequest>,
) -> Result<HttpResponse, ApiError> {
    super::create(&state, &caller, Target::Platform, body.into_inner()).await
}

/// The platform endpoints.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoints", body = EndpointsDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/admin/webhooks")]
pub async fn list_platform_webhooks(
    state: web::Data<AppState>,
    Auth(caller): Auth,
) -> Result<web::Json<EndpointsDto>, ApiError> {
    super::list(&state, &caller, Target::Platform).await.map(web::Json)
}

/// One platform endpoint.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/admin/webhooks/{id}")]
pub async fn get_platform_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<web::Json<EndpointDto>, ApiError> {
    super::get_one(&state, &caller, Target::Platform, &id).await.map(web::Json)
}

/// Changes a platform endpoint.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint")),
    request_body = PatchEndpointRequest,
    responses(
        (status = 200, description = "Changed", body = EndpointDto),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/admin/webhooks/{id}")]
pub async fn update_platform_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: JsonBody<PatchEndpointRequest>,
) -> Result<web::Json<EndpointDto>, ApiError> {
    super::update(&state, &caller, Target::Platform, &id, body.into_inner()).await.map(web::Json)
}

/// Deletes a platform endpoint and its deliveries.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/admin/webhooks/{id}")]
pub async fn delete_platform_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    super::remove(&state, &caller, Target::Platform, &id).await
}

/// Gives a platform endpoint a new secret; the old one keeps signing for 24 hours.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint")),
    responses(
        (status = 200, description = "Rotated", body = EndpointWithSecretDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/admin/webhooks/{id}/rotate-secret")]
pub async fn rotate_platform_webhook_secret(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<web::Json<EndpointWithSecretDto>, ApiError> {
    super::rotate(&state, &caller, Target::Platform, &id).await.map(web::Json)
}

/// A platform endpoint's deliveries, newest first (keyset pages).
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint"), ListQuery),
    responses(
        (status = 200, description = "A page", body = Page<DeliveryDto>),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/admin/webhooks/{id}/deliveries")]
pub async fn list_platform_webhook_deliveries(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<web::Json<Page<DeliveryDto>>, ApiError> {
    super::deliveries(&state, &caller, Target::Platform, &id, &query).await.map(web::Json)
}

/// Puts one delivery of a platform endpoint back for one more attempt now.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint"), ("delivery_id" = Uuid, Path, description = "The delivery")),
    responses(
        (status = 202, description = "Queued", body = DeliveryDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/admin/webhooks/{id}/deliveries/{delivery_id}/retry")]
pub async fn retry_platform_webhook_delivery(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery) = path.into_inner();
    super::retry(&state, &caller, Target::Platform, &id, &delivery).await
}

/// Delivers again to a platform endpoint the events it wants that occurred in `[from, to)`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint")),
    request_body = ReplayRequest,
    responses(
        (status = 202, description = "Queued", body = QueuedDto),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/admin/webhooks/{id}/replay")]
pub async fn replay_platform_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: JsonBody<ReplayRequest>,
) -> Result<HttpResponse, ApiError> {
    super::replay(&state, &caller, Target::Platform, &id, body.into_inner()).await
}

/// Sends a platform endpoint a `webhook.test` event.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The endpoint")),
    responses(
        (status = 202, description = "Queued", body = TestDeliveryDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/admin/webhooks/{id}/test")]
pub async fn test_platform_webhook(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    super::send_test(&state, &caller, Target::Platform, &id).await
}

/// Every event, oldest first (kept 30 days); poll with `next_cursor` as `after`.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = [])),
    params(EventsQuery),
    responses(
        (status = 200, description = "A page", body = EventsPageDto),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/admin/events")]
pub async fn platform_events(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    query: web::Query<EventsQuery>,
) -> Result<web::Json<EventsPageDto>, ApiError> {
    super::events(&state, &caller, Target::Platform, &query).await.map(web::Json)
}

/// Registers the platform's webhooks and events routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(create_platform_webhook)
        .service(list_platform_webhooks)
        .service(get_platform_webhook)
        .service(update_platform_webhook)
        .service(delete_platform_webhook)
        .service(rotate_platform_webhook_secret)
        .service(list_platform_webhook_deliveries)
        .service(retry_platform_webhook_delivery)
        .service(replay_platform_webhook)
        .service(test_platform_webhook)
        .service(platform_events);
}
