//! Logs, traces, metrics and request ids.

mod access;
mod logs;
mod otel;

pub use access::{RequestSpan, record_member};
pub use logs::{LogFormat, StartupSummary, init_tracing};
pub use otel::{exporting as exporting_traces, shutdown as shutdown_traces};

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use onboard_members::{SignIn, VerifyOtpError};
use tracing_actix_web::RequestId;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once (several apps in one test process share
/// it) and keeps its upkeep running.
pub fn init_metrics() {
    PROMETHEUS.get_or_init(|| {
        let buckets =
            [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
        let recorder = PrometheusBuilder::new()
            .set_buckets(&buckets)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .ok();
        describe();
        handle
    });
}

fn describe() {
    metrics::describe_counter!("http_requests_total", "HTTP requests by method, route and status");
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by method, route and status"
    );
    metrics::describe_counter!("onboard_otp_sent_total", "One-time codes sent");
    metrics::describe_counter!("onboard_otp_verified_total", "Successful code verifications");
    metrics::describe_counter!("onboard_otp_failed_total", "Failed code verifications by reason");
}

/// The Prometheus text of every metric.
pub fn render() -> String {
    PROMETHEUS.get().map(PrometheusHandle::render).unwrap_or_default()
}

pub fn otp_sent() {
    metrics::counter!("onboard_otp_sent_total").increment(1);
}

pub fn otp_verified(result: &Result<SignIn, VerifyOtpError>) {
    let reason = match result {
        Ok(_) => {
            metrics::counter!("onboard_otp_verified_total").increment(1);
            return;
        }
        Err(VerifyOtpError::InvalidCode { .. }) => "invalid",
        Err(VerifyOtpError::Expired) => "expired",
        Err(VerifyOtpError::TooManyAttempts { .. }) => "too_many_attempts",
        Err(VerifyOtpError::RateLimited { .. }) => "rate_limited",
        Err(VerifyOtpError::ReferralCodeNotFound) => "referral_code_not_found",
        Err(VerifyOtpError::Unexpected(_)) => "error",
        Err(VerifyOtpError::Blocked) => "member_blocked",
    };
    metrics::counter!("onboard_otp_failed_total", "reason" => reason).increment(1);
}

/// Counts, times and logs every request by its route pattern (one access-log line), and
/// answers the request id in `x-request-id`.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let request_id = req.extensions().get::<RequestId>().copied();
    let result = next.call(req).await;
    let latency = started.elapsed();
    let (status, error, member) = match &result {
        Ok(res) => (res.status(), res.response().error(), access::member_of(res.request())),
        Err(e) => (e.as_response_error().status_code(), Some(e), None),
    };
    access::log_request(&access::Outcome {
        method: &method,
        route: &route,
        status,
        latency,
        request_id,
        member,
        error,
    });
    let status = status.as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(latency.as_secs_f64());
    let mut res = result?;
    if let Some(id) = request_id
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        res.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}
