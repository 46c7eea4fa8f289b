//! Health, metrics, the OpenAPI document, the API docs page and request ids.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{Wiring, assert_problem, expect_status, phone, spawn_app};

both_wirings!(
    the_process_is_live_and_ready,
    another_method_on_a_literal_route_beside_an_id_route_is_a_405_naming_the_literal_one,
    a_null_body_is_a_400_where_the_body_is_an_object,
);

async fn another_method_on_a_literal_route_beside_an_id_route_is_a_405_naming_the_literal_one(
    wiring: Wiring,
) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(93)).await;
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/api/v1/notifications/read", "POST"),
        (reqwest::Method::DELETE, "/api/v1/notifications/stream-ticket", "POST"),
        (reqwest::Method::OPTIONS, "/api/v1/notifications/read", "POST"),
        (reqwest::Method::DELETE, "/api/v1/groups/some-group/billing/cards/prepare", "POST"),
    ] {
        let resp = app.call(method.clone(), path, &me.access, None).await;
        assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
        assert_problem(resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    }
    // An id no route pattern reads, on a route of that very method: nothing there.
    let resp =
        app.call(reqwest::Method::DELETE, "/api/v1/notifications/abc", &me.access, None).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
}

async fn a_null_body_is_a_400_where_the_body_is_an_object(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let resp = app.post_json("/api/v1/auth/otp", &Value::Null).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
}

async fn the_process_is_live_and_ready(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    assert_eq!(
        expect_status(app.get("/health/live").await, StatusCode::OK).await,
        json!({ "status": "ok" })
    );
    assert_eq!(
        expect_status(app.get("/health/ready").await, StatusCode::OK).await,
        json!({ "status": "ok" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_codes_sent() {
    let app = spawn_app(Wiring::Memory).await;
    expect_status(app.get("/health/live").await, StatusCode::OK).await;
    app.request_code(&phone(1)).await;

    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = resp.text().await.unwrap();
    let has = |name: &str, label: &str| {
        text.lines().any(|l| l.starts_with(name) && l.contains(label) && !l.starts_with('#'))
    };
    assert!(has("http_requests_total{", r#"route="/health/live""#), "{text}");
    assert!(has("http_requests_total{", r#"route="/api/v1/auth/otp""#), "{text}");
    assert!(has("http_requests_total{", r#"status="202""#), "{text}");
    assert!(text.lines().any(|l| l.starts_with("onboard_otp_sent_total")), "{text}");
    assert!(text.contains("http_request_duration_seconds"), "{text}");
}

/// Every error code the tests of this suite expect somewhere.
const ERROR_CODES: [&str; 13] = [
    "invalid_request",
    "invalid_phone",
    "unauthorized",
    "not_found",
    "rate_limited",
    "referral_code_not_found",
    "otp_invalid",
    "otp_expired",
    "too_many_attempts",
    "refresh_token_invalid",
    "refresh_token_reused",
    "token_invalid",
    "email_taken",
];

/// Every string anywhere inside `value`.
fn strings(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_auth_and_member_call_and_every_error_code() {
    let app = spawn_app(Wiring::Memory).await;
    let doc = expect_status(app.get("/api/v1/openapi.json").await, StatusCode::OK).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "an OpenAPI 3 document");
    let paths = &doc["paths"];
    let expected = [
        ("/api/v1/auth/otp", "post"),
        ("/api/v1/auth/otp/verify", "post"),
        ("/api/v1/auth/token/refresh", "post"),
        ("/api/v1/auth/token/verify", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/sessions", "get"),
        ("/api/v1/auth/sessions/{id}", "delete"),
        ("/api/v1/members/me", "get"),
        ("/api/v1/members/me", "patch"),
        ("/api/v1/members/me", "delete"),
        ("/api/v1/members/{id}", "get"),
        ("/api/v1/members/me/current-group", "put"),
        ("/api/v1/members/me/current-group", "delete"),
    ];
    for (path, method) in expected {
        assert!(paths[path][method].is_object(), "{method} {path} is documented");
    }
    let schema = &doc["components"]["schemas"]["ErrorCode"];
    assert!(schema.is_object(), "an ErrorCode schema");
    let mut codes = BTreeSet::new();
    strings(schema, &mut codes);
    for code in ERROR_CODES {
        assert!(codes.contains(code), "ErrorCode lists {code}: {codes:?}");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object(), "a Problem schema");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object(), "the bearer scheme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_swagger_ui_served_without_external_urls() {
    let app = spawn_app(Wiring::Memory).await;
    let resp = app.get("/docs").await;
    assert!(resp.status().is_redirection(), "/docs redirects to /docs/: {}", resp.status());

    let resp = app.get("/docs/").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = resp.text().await.unwrap();
    assert!(html.to_lowercase().contains("swagger"), "Swagger UI: {html}");
    let lower = html.to_lowercase();
    for external in ["http://", "https://", "//cdn", "unpkg", "jsdelivr", "cdnjs"] {
        assert!(!lower.contains(external), "the page references {external}: {html}");
    }
    // Its scripts and styles are served here, and so is the initializer naming our document.
    for asset in ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-initializer.js"] {
        let resp = app.get(&format!("/docs/{asset}")).await;
        assert_eq!(resp.status(), StatusCode::OK, "{asset}");
        if asset == "swagger-initializer.js" {
            let js = resp.text().await.unwrap();
            assert!(js.contains("/api/v1/openapi.json"), "{js}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id() {
    let app = spawn_app(Wiring::Memory).await;
    let mut ids = BTreeSet::new();
    let answers = [
        app.get("/health/live").await,
        app.get("/nope").await,
        app.request_otp("garbage").await,
        app.get("/api/v1/members/me").await,
    ];
    for resp in answers {
        let id =
            resp.headers().get("x-request-id").expect("x-request-id").to_str().unwrap().to_owned();
        uuid::Uuid::parse_str(&id).expect("a UUID");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 4, "a new id per request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_live_under_the_configured_prefix_with_the_phone_as_hash_tag() {
    let app = spawn_app(Wiring::PostgresRedis).await;
    let me = app.sign_in(&phone(1)).await;
    expect_status(app.logout(&me.access).await, StatusCode::NO_CONTENT).await;
    let redis = app.redis().expect("a Redis prefix");
    let keys = redis.keys().unwrap();
    let prefix = &redis.prefix;
    let phone = phone(1);
    for expected in
        [format!("{prefix}otp:{{{phone}}}:sends"), format!("{prefix}otp:{{{phone}}}:next")]
    {
        assert!(keys.contains(&expected), "{expected} in {keys:?}");
    }
    let member = me.id();
    assert!(
        keys.iter().any(|k| k.starts_with(&format!("{prefix}rev:{{{member}}}:s:"))),
        "the logout's revocation: {keys:?}"
    );
    assert!(keys.iter().all(|k| k.starts_with(prefix.as_str())), "{keys:?}");
}

/// Every operation of the served document, as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch", "head"].contains(&method.as_str()) {
                ops.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_documents_the_answers_its_extractors_give() {
    let app = spawn_app(Wiring::Memory).await;
    let doc = expect_status(app.get("/api/v1/openapi.json").await, StatusCode::OK).await;
    let ops = operations(&doc);
    assert!(ops.len() > 70, "the whole API is documented: {}", ops.len());
    let mut missing = Vec::new();
    for (method, path, op) in &ops {
        let documents = |status: &str| op["responses"][status].is_object();
        let mut expect = |status: &str, why: &str| {
            if !documents(status) {
                missing.push(format!("{method} {path}: {status} ({why})"));
            }
        };
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            expect("401", "a bearer token is required");
        }
        if op["requestBody"].is_object() {
            expect("400", "a JSON body");
            expect("413", "a JSON body");
            expect("415", "a JSON body");
            assert_eq!(
                op["requestBody"]["required"],
                json!(true),
                "{method} {path}: body required"
            );
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        if params.iter().any(|p| p["in"] == "query") {
            expect("400", "a query string");
        }
        if params.iter().any(|p| p["in"] == "path") {
            expect("404", "a path parameter");
        }
        if path.starts_with("/api/v1/") {
            expect("503", "saturated backends");
        }
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let content = response["content"].as_object().map(|c| c.keys().collect::<Vec<_>>());
                if path.starts_with("/api/v1/") {
                    assert_eq!(
                        content,
                        Some(vec![&"application/problem+json".to_owned()]),
                        "{method} {path} {status} is problem+json"
                    );
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented answers:\n{}", missing.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_states_the_limits_the_server_enforces() {
    let app = spawn_app(Wiring::Memory).await;
    let doc = expect_status(app.get("/api/v1/openapi.json").await, StatusCode::OK).await;
    let mut lists = 0;
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().cloned().unwrap_or_default() {
            if p["in"] == "query" && p["name"] == "limit" {
                lists += 1;
                assert_eq!(p["schema"]["minimum"], json!(1), "{method} {path}: limit ≥ 1");
                assert_eq!(p["schema"]["maximum"], json!(100), "{method} {path}: limit ≤ 100");
            }
        }
    }
    assert!(lists >= 10, "every list takes a bounded limit: {lists}");
    let schemas = &doc["components"]["schemas"];
    for (schema, field, min, max) in [
        ("PatchMe", "first_name", 1, 100),
        ("CreateGroupRequest", "name", 1, 100),
        ("CreateGroupRequest", "slug", 3, 40),
        ("CreateRoleRequest", "name", 1, 40),
        ("CreateInviteRequest", "name", 1, 100),
    ] {
        let prop = &schemas[schema]["properties"][field];
        assert_eq!(prop["minLength"], json!(min), "{schema}.{field}: {prop}");
        assert_eq!(prop["maxLength"], json!(max), "{schema}.{field}: {prop}");
        assert!(prop["pattern"].is_string(), "{schema}.{field} has a pattern: {prop}");
    }
    assert_eq!(schemas["SnoozeRequest"]["properties"]["minutes"]["maximum"], json!(10_080));
    assert_eq!(schemas["UsageRequest"]["properties"]["delta"]["minimum"], json!(1));
}

/// The `oneOf` of `GET /members/{id}`: a full member must match the member schema and not the
/// card, a card the card and not the member (checked here on what the server answers, for the
/// two schemas' `required` and `additionalProperties`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_answer_matches_exactly_one_member_schema() {
    let app = spawn_app(Wiring::Memory).await;
    let doc = expect_status(app.get("/api/v1/openapi.json").await, StatusCode::OK).await;
    let schemas = &doc["components"]["schemas"];
    let one_of = schemas["MemberOrCard"]["oneOf"].as_array().unwrap();
    assert_eq!(one_of.len(), 2, "member or card: {one_of:?}");
    let me = app.sign_in(&phone(91)).await;
    let stranger = app.sign_in(&phone(92)).await;
    let full = expect_status(app.get_member(&me.access, me.id()).await, StatusCode::OK).await;
    let card = expect_status(app.get_member(&me.access, stranger.id()).await, StatusCode::OK).await;
    // The shallow check of an object schema: required fields present, no unknown field when
    // `additionalProperties` is false.
    let matches = |schema: &Value, value: &Value| {
        let object = value.as_object().unwrap();
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        let props = schema["properties"].as_object().unwrap();
        required.iter().all(|r| object.contains_key(r.as_str().unwrap()))
            && (schema["additionalProperties"] != json!(false)
                || object.keys().all(|k| props.contains_key(k)))
    };
    let (member_schema, card_schema) = (&schemas["MemberDto"], &schemas["MemberCardDto"]);
    assert!(matches(member_schema, &full) && !matches(card_schema, &full), "full: {full}");
    assert!(matches(card_schema, &card) && !matches(member_schema, &card), "card: {card}");
}
