//! Traces over OpenTelemetry (OTLP/HTTP, protobuf), only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. The exporter reads the standard `OTEL_*`
//! variables: `OTEL_SERVICE_NAME` (default `onboard`), `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_BSP_*`.
//!
//! Spans: one per request (a child of the caller's W3C `traceparent`), one per use case, one
//! per SQL statement (its text, never its values), one per Redis script; outbound calls to SMS
//! providers and the payment gateway carry `traceparent`.

use std::sync::OnceLock;

use actix_web::http::header::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Level, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether traces are exported (an endpoint is configured and the exporter started).
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}

fn endpoint_configured() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// The exporting layer, or `None` when no endpoint is configured. It sees the spans of
/// Onboard's crates down to debug level (use cases, SQL statements, Redis scripts), and info
/// for everything else, whatever `RUST_LOG` says.
pub(super) fn layer<S>() -> Result<Option<impl Layer<S>>, String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if !endpoint_configured() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| format!("the OTLP/HTTP exporter could not be built: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("onboard");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("onboard");
    let _ = PROVIDER.set(provider);
    onboard_kernel::trace_context::set_outbound_headers(outbound_headers);
    onboard_postgres::trace_sql_statements();
    let filter = Targets::new().with_default(Level::INFO).with_target("onboard", Level::DEBUG);
    Ok(Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false)
            .with_filter(filter),
    ))
}

/// Sends the spans not yet exported and stops the exporter (at the end of `serve`).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        tracing::warn!(error = %e, "exporting the last traces failed");
    }
}

/// Makes `span` a child of the caller's trace (W3C `traceparent`), when traces are exported.
pub(super) fn join_remote_trace(span: &Span, headers: &HeaderMap) {
    if !exporting() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&RequestHeaders(headers));
    let _ = span.set_parent(parent);
}

/// `traceparent` (and `tracestate`) of the current span, for an outbound call.
fn outbound_headers() -> Vec<(&'static str, String)> {
    let mut headers = OutboundHeaders(Vec::new());
    TraceContextPropagator::new().inject_context(&Span::current().context(), &mut headers);
    headers.0
}

struct RequestHeaders<'a>(&'a HeaderMap);

impl Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct OutboundHeaders(Vec<(&'static str, String)>);

impl Injector for OutboundHeaders {
    fn set(&mut self, key: &str, value: String) {
        let name = match key {
            "traceparent" => "traceparent",
            "tracestate" => "tracestate",
            _ => return,
        };
        self.0.push((name, value));
    }
}
