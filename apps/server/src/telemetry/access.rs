//! One span and one access-log line per request.
//!
//! The span (`request`, made by [`RequestSpan`] for `tracing-actix-web`'s `TracingLogger`)
//! carries the request id and, once known, the member id, so every event during the request
//! names them; for the trace exporter it also carries the HTTP attributes and joins the caller's
//! trace (W3C `traceparent`). The access-log line ([`log_request`]) is written when the answer
//! is ready: info for 1xx–4xx (with the problem `code` of a 4xx), error for 5xx with the cause
//! chain, debug for probes and metrics scrapes.

use std::time::Duration;

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{Error, HttpMessage, HttpRequest};
use onboard_kernel::MemberId;
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use crate::compat::django::DrfError;
use crate::compat::member_invitation::SpringError;
use crate::error::ApiError;

/// The member a request was made by, once its token was checked.
#[derive(Debug, Clone, Copy)]
struct Member(MemberId);

/// Notes the authenticated member of `req`: on its span now, on its access-log line later.
pub fn record_member(req: &HttpRequest, member: MemberId) {
    req.extensions_mut().insert(Member(member));
    Span::current().record("member_id", tracing::field::display(member));
}

/// The member noted by [`record_member`], if any.
pub(super) fn member_of(req: &HttpRequest) -> Option<MemberId> {
    req.extensions().get::<Member>().map(|m| m.0)
}

/// The root span of every request.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let method = request.method().as_str();
        let route = request.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        let request_id = request.extensions().get::<RequestId>().map(ToString::to_string);
        let span = tracing::info_span!(
            "request",
            otel.name = %format_args!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = %method,
            http.route = %route,
            url.path = %request.path(),
            http.response.status_code = Empty,
            request_id = request_id.as_deref().unwrap_or_default(),
            member_id = Empty,
        );
        super::otel::join_remote_trace(&span, request.headers());
        span
    }

    fn on_request_end<B>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("http.response.status_code", status.as_u16());
        // OpenTelemetry's rule for server spans: only a 5xx is an error of this service.
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
}

/// What the access-log line says about an answer.
#[derive(Debug)]
pub(super) struct Outcome<'a> {
    pub method: &'a str,
    pub route: &'a str,
    pub status: StatusCode,
    pub latency: Duration,
    pub request_id: Option<RequestId>,
    pub member: Option<MemberId>,
    pub error: Option<&'a Error>,
}

/// Writes the request's one access-log line.
pub(super) fn log_request(outcome: &Outcome<'_>) {
    let Outcome { method, route, status, latency, request_id, member, error } = *outcome;
    let request_id = request_id.map(|id| id.to_string());
    let request_id = request_id.as_deref();
    let member = member.map(|m| m.to_string());
    let member_id = member.as_deref();
    let (code, cause) = error.map(problem).unwrap_or_default();
    let latency_ms = (latency.as_secs_f64() * 10_000.0).round() / 10.0;
    let status = status.as_u16();
    // Written outside the request's span (`parent: None`): the line names what it needs.
    if status >= 500 {
        tracing::error!(target: "access", parent: None, method, route, status, latency_ms,
            request_id, member_id, code, error = cause.as_deref());
    } else if matches!(route, "/health/live" | "/health/ready" | "/metrics") {
        tracing::debug!(target: "access", parent: None, method, route, status, latency_ms,
            request_id);
    } else {
        tracing::info!(target: "access", parent: None, method, route, status, latency_ms,
            request_id, member_id, code);
    }
}

/// The problem `code` of an error answer and the cause chain behind a 5xx, from whichever of
/// the API's error types made it.
fn problem(error: &Error) -> (Option<&'static str>, Option<String>) {
    let chain = |cause: Option<&anyhow::Error>| cause.map(|c| format!("{c:#}"));
    if let Some(e) = error.as_error::<ApiError>() {
        (Some(e.code().as_str()), chain(e.cause()))
    } else if let Some(e) = error.as_error::<DrfError>() {
        (None, chain(e.cause()))
    } else if let Some(e) = error.as_error::<SpringError>() {
        (Some(e.code()), chain(e.cause()))
    } else {
        (None, Some(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use anyhow::Context as _;

    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn a_5xx_line_carries_the_whole_cause_chain_and_a_4xx_line_only_its_code() {
        let cause: anyhow::Result<()> = Err(anyhow::anyhow!("connection refused"));
        let cause = cause.context("loading the member").expect_err("an error");
        let error = Error::from(ApiError::unexpected(cause));
        assert_eq!(
            problem(&error),
            (Some("internal_error"), Some("loading the member: connection refused".to_owned()))
        );

        let refused = ApiError::new(StatusCode::CONFLICT, ErrorCode::SlugTaken, "taken");
        assert_eq!(problem(&Error::from(refused)), (Some("slug_taken"), None));
    }
}
