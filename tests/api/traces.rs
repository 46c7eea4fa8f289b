//! Traces leave over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: a span per request
//! (joining the caller's `traceparent`), per use case, per SQL statement (no values) and per
//! Redis script, and outbound provider calls carry `traceparent`. The collector is a local
//! HTTP server (wiremock) whose protobuf exports the test decodes.

use std::time::{Duration, Instant};

use onboard_postgres::testing::TestDatabase;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::RedisPrefix;
use crate::process::ServerProcess;

const SIGN_IN_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const VERIFY_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            AnyValue::BoolValue(b) => Some(b.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

/// Every span the collector received so far.
async fn exported(collector: &MockServer) -> Vec<Span> {
    let mut spans = Vec::new();
    for request in collector.received_requests().await.unwrap_or_default() {
        if request.url.path() != "/v1/traces" {
            continue;
        }
        let export = ExportTraceServiceRequest::decode(&request.body[..]).expect("OTLP protobuf");
        for resource in export.resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    spans
}

/// Waits (up to 20 s) until the collector has spans for which `done` holds.
async fn wait_for_spans(collector: &MockServer, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans = exported(collector).await;
        if done(&spans) {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "not exported in time; got: {:?}",
            spans.iter().map(|s| (&s.name, hex(&s.trace_id))).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `span` descends from `ancestor` within `spans`.
fn descends_from(spans: &[Span], span: &Span, ancestor: &Span) -> bool {
    let mut parent = span.parent_span_id.clone();
    for _ in 0..32 {
        if parent == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|s| s.span_id == parent) {
            Some(p) => parent = p.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_use_cases_sql_statements_and_scripts_are_exported_as_one_trace() {
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    let sens = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("^/sms/v2/services/.*/messages$"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "requestId": "r1", "requestTime": "2026-11-27T09:00:00.000",
            "statusCode": "202", "statusName": "success",
        })))
        .mount(&sens)
        .await;
    let db = TestDatabase::new().await;
    let redis = RedisPrefix::new();
    let (collector_uri, sens_uri) = (collector.uri(), sens.uri());
    let server = ServerProcess::start(&[
        ("DATABASE_URL", db.url()),
        ("REDIS_URL", &redis.url),
        ("REDIS_KEY_PREFIX", &redis.prefix),
        ("MIGRATE_ON_START", "false"),
        ("OTP_ECHO", "true"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector_uri),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("SMS_PROVIDER", "sens"),
        ("SENS_API_URL", &sens_uri),
        ("SENS_ACCESS_KEY", "ak"),
        ("SENS_SECRET_KEY", "sk"),
        ("SENS_SERVICE_ID", "ncp:sms:kr:1:onboard"),
        ("SENS_FROM", "0212345678"),
    ])
    .await;
    let client = reqwest::Client::new();
    let phone = "+821012345678";
    let traceparent = |trace: &str| format!("00-{trace}-{CALLER_SPAN}-01");

    let sent: Value = client
        .post(server.url("/api/v1/auth/otp"))
        .header("traceparent", traceparent(SIGN_IN_TRACE))
        .json(&json!({ "phone": phone }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = sent["dev_code"].as_str().expect("OTP_ECHO").to_owned();
    let verified = client
        .post(server.url("/api/v1/auth/otp/verify"))
        .header("traceparent", traceparent(VERIFY_TRACE))
        .json(&json!({ "phone": phone, "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), reqwest::StatusCode::OK);

    let spans = wait_for_spans(&collector, |spans| {
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        ["POST /api/v1/auth/otp", "POST /api/v1/auth/otp/verify", "members.verify_otp", "INSERT"]
            .iter()
            .all(|n| names.contains(n))
            && names.contains(&"EVALSHA otp.issue")
    })
    .await;

    // The request span continues the caller's trace, as a server span with its route.
    let request = spans.iter().find(|s| s.name == "POST /api/v1/auth/otp/verify").unwrap();
    assert_eq!(hex(&request.trace_id), VERIFY_TRACE);
    assert_eq!(hex(&request.parent_span_id), CALLER_SPAN);
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(attribute(request, "http.route").as_deref(), Some("/api/v1/auth/otp/verify"));
    assert_eq!(attribute(request, "http.response.status_code").as_deref(), Some("200"));

    // The use case, a child of the request; each SQL statement a client span below it, with
    // its text and none of its values.
    let use_case = spans.iter().find(|s| s.name == "members.verify_otp").unwrap();
    assert!(descends_from(&spans, use_case, request));
    let statements: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == VERIFY_TRACE)
        .filter(|s| attribute(s, "db.system.name").as_deref() == Some("postgresql"))
        .collect();
    assert!(!statements.is_empty());
    for statement in &statements {
        assert!(descends_from(&spans, statement, use_case), "{}", statement.name);
        assert_eq!(statement.kind, SpanKind::Client as i32);
        let sql = attribute(statement, "db.query.text").expect("the statement's text");
        assert!(!sql.contains("1012345678"), "no values in {sql}");
        assert!(!sql.contains("binds"), "{sql}");
    }
    assert!(
        statements.iter().any(|s| attribute(s, "db.query.text").is_some_and(|q| q.contains("$1"))),
        "statements keep their placeholders"
    );

    // The code request: its Redis script, and the SMS provider call carrying the trace.
    let script = spans.iter().find(|s| s.name == "EVALSHA otp.issue").unwrap();
    assert_eq!(hex(&script.trace_id), SIGN_IN_TRACE);
    let sms = sens.received_requests().await.unwrap();
    let outbound = sms[0].headers.get("traceparent").expect("traceparent to SENS");
    let outbound = outbound.to_str().unwrap();
    assert!(outbound.starts_with(&format!("00-{SIGN_IN_TRACE}-")), "{outbound}");
    assert!(!outbound.contains(CALLER_SPAN), "the delivery's own span: {outbound}");

    // Every span is named by the service.
    let exports = collector.received_requests().await.unwrap();
    let export = ExportTraceServiceRequest::decode(&exports[0].body[..]).unwrap();
    let resource = export.resource_spans[0].resource.as_ref().unwrap();
    assert!(resource.attributes.iter().any(|kv| kv.key == "service.name"
        && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()),
            Some(AnyValue::StringValue(s)) if s == "onboard")));
}
