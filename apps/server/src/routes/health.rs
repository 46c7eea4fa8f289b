//! Health, metrics and the public keys.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;
use crate::telemetry;
use utoipa_actix_web::service_config::ServiceConfig;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
#[get("/health/live")]
pub async fn live() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// Postgres and Redis answer (always ready in the embedded mode).
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "A backend does not answer", body = Health),
    )
)]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.backends.ready().await {
        HttpResponse::Ok().json(Health { status: "ok" })
    } else {
        HttpResponse::ServiceUnavailable().json(Health { status: "unavailable" })
    }
}

/// Prometheus metrics: requests and latency by route and status; codes sent, verified, failed.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(telemetry::render())
}

/// The public keys that verify access tokens (Ed25519, with `kid`).
#[utoipa::path(tag = "auth", responses((status = 200, description = "JWK set", body = Object)))]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().insert_header(("cache-control", "public, max-age=300")).json(&state.jwks)
}

/// Registers the health, metrics and the JWK set routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(live).service(ready).service(metrics).service(jwks);
}
