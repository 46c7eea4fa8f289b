//! Wiring: the adapters the settings choose (`adapters`, the one place where memory or
//! PostgreSQL + Redis is picked), the services built on them (`services`), and the HTTP server.

mod adapters;
mod methods;
mod services;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::SwaggerUi;

pub use services::{PaymentsWebhookSink, build_state};

use crate::compat;
use crate::config::Settings;
use crate::error;
use crate::openapi::ApiDoc;
use crate::routes::health;
use crate::telemetry;

/// Request bodies above this size are refused.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A built server, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Application {
    /// Builds the adapters and binds the listener (`ONBOARD_ADDR`; port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        telemetry::init_metrics();
        let state = build_state(&settings).await?;
        let listener = TcpListener::bind(&settings.addr)
            .with_context(|| format!("cannot listen on {}", settings.addr))?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(state);
        let compat_apis = settings.compat_apis;
        let mut server = HttpServer::new(move || {
            let (app, api) = App::new()
                .into_utoipa_app()
                .openapi(ApiDoc::openapi())
                // Before the `/api/v1` scope, which would otherwise answer this path with a 404.
                .map(|app| app.route(OPENAPI_PATH, web::get().to(openapi_json)))
                .service(scope::scope("/api/v1").configure(crate::routes::configure))
                .configure(health::configure)
                // The seed APIs under `/compat/...` (documented in compat.md).
                .map(|app| app.configure(|cfg| compat::configure(cfg, compat_apis)))
                .split_for_parts();
            let mut api = api;
            crate::openapi::complete(&mut api);
            // The routes of the document just collected (built once per worker).
            let methods = web::Data::new(methods::MethodTable::build(&api, compat_apis));
            app.app_data(state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(BODY_LIMIT)
                        .error_handler(|e, _| error::json_error(e).into()),
                )
                .app_data(
                    web::PathConfig::default().error_handler(|e, _| error::path_error(e).into()),
                )
                .app_data(
                    web::QueryConfig::default().error_handler(|e, _| error::query_error(e).into()),
                )
                .app_data(web::PayloadConfig::new(BODY_LIMIT))
                .app_data(web::Data::new(api))
                .service(
                    SwaggerUi::new("/docs/{_:.*}")
                        .config(utoipa_swagger_ui::Config::from(OPENAPI_PATH)),
                )
                .service(web::redirect("/docs", "/docs/"))
                // The simulated gateway's test calls, only with it
                .configure(|cfg| {
                    if let Some(sim) = state.sim_gateway.clone() {
                        crate::routes::sim::configure(cfg, sim);
                    }
                })
                .app_data(methods)
                .default_service(web::to(methods::fallback))
                .wrap(from_fn(telemetry::observe))
                .wrap(TracingLogger::<telemetry::RequestSpan>::new())
        })
        .listen(listener)?
        .shutdown_timeout(5);
        if let Some(workers) = settings.workers {
            server = server.workers(workers.max(1));
        }
        Ok(Self { port, server: server.run() })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Where the OpenAPI document is served.
const OPENAPI_PATH: &str = "/api/v1/openapi.json";

async fn openapi_json(doc: web::Data<utoipa::openapi::OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}
