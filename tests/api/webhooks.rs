//! Outgoing webhooks (Standard Webhooks) and the events API, against a local receiver
//! (wiremock): signed deliveries of real events, retries with the same `webhook-id`, secret
//! rotation, refusals of private addresses, who may manage them, and the events feed.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use onboard_kernel::PhoneNumber;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::both_wirings;
use crate::helpers::{
    SignedIn, TestApp, Wiring, assert_problem, expect_status, phone, spawn_app_with,
};

both_wirings!(
    a_join_delivers_group_member_joined_signed,
    a_receiver_answering_500_then_200_gets_the_same_webhook_id_twice,
    a_rotated_secret_signs_beside_the_old_one,
    private_addresses_are_refused_unless_allowed,
    only_webhook_managers_and_platform_admins_reach_webhooks,
    the_events_api_pages_a_groups_events_by_cursor_and_type,
    a_failed_delivery_can_be_retried_and_a_range_replayed,
);

/// The phone of the platform admin of [`app`].
fn admin_phone() -> String {
    phone(7_700_001)
}

/// A server that may deliver to this machine (the receiver), polls often and retries fast.
async fn app(wiring: Wiring) -> TestApp {
    spawn_app_with(wiring, |s| {
        s.webhooks.config.urls.allow_private = true;
        s.webhooks.poll = Duration::from_millis(50);
        s.webhooks.config.retry_schedule = vec![Duration::from_millis(300); 7];
        s.admin_phones = vec![PhoneNumber::parse(&admin_phone(), None).expect("a phone")];
    })
    .await
}

impl TestApp {
    async fn wh_post(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// An open group `slug` owned by `owner`.
    async fn wh_group(&self, owner: &SignedIn, slug: &str) {
        let body = json!({ "name": slug.to_uppercase(), "slug": slug });
        let resp = self.wh_post(&owner.access, "/api/v1/groups", &body).await;
        expect_status(resp, StatusCode::CREATED).await;
    }

    /// Creates an endpoint of `slug` (asserts 201); answers its body with the secret.
    async fn webhook(&self, owner: &SignedIn, slug: &str, url: &str, types: &[&str]) -> Value {
        let body = json!({ "url": url, "description": "CRM", "event_types": types });
        let resp =
            self.wh_post(&owner.access, &format!("/api/v1/groups/{slug}/webhooks"), &body).await;
        expect_status(resp, StatusCode::CREATED).await
    }

    /// The endpoint's deliveries (asserts 200).
    async fn deliveries(&self, who: &SignedIn, slug: &str, id: &str) -> Vec<Value> {
        let resp = self
            .get_auth(&format!("/api/v1/groups/{slug}/webhooks/{id}/deliveries"), &who.access)
            .await;
        expect_status(resp, StatusCode::OK).await["items"].as_array().expect("items").clone()
    }

    /// Polls the deliveries until `done` holds of them (10 s at most).
    async fn wait_deliveries(
        &self,
        who: &SignedIn,
        slug: &str,
        id: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let items = self.deliveries(who, slug, id).await;
            if done(&items) {
                return items;
            }
            assert!(tokio::time::Instant::now() < deadline, "deliveries never settled: {items:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The receiver's requests, once at least `n` arrived (10 s at most).
async fn received(server: &MockServer, n: usize) -> Vec<Request> {
    received_where(server, n, |_| true).await
}

/// The body of a request.
fn body_of(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

/// Whether a request delivers a join by `join` (not the owner's own, by creating the group:
/// the endpoint is made just after, so that one may or may not reach it).
fn a_join(request: &Request) -> bool {
    body_of(request)["data"]["via"] == "join"
}

/// The receiver's requests that pass `keep`, once at least `n` arrived (10 s at most).
async fn received_where(server: &MockServer, n: usize, keep: fn(&Request) -> bool) -> Vec<Request> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut requests = server.received_requests().await.unwrap_or_default();
        requests.retain(keep);
        if requests.len() >= n {
            return requests;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} requests arrived",
            requests.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn header<'a>(request: &'a Request, name: &str) -> &'a str {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("{name}"))
}

/// Whether `request` carries a signature by `secret`, computed here with the `hmac` crate
/// alone (none of Onboard's code), as the Standard Webhooks spec says.
fn signed_by(request: &Request, secret: &str) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_")).expect("base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("a key");
    let signed = format!(
        "{}.{}.{}",
        header(request, "webhook-id"),
        header(request, "webhook-timestamp"),
        String::from_utf8_lossy(&request.body)
    );
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header(request, "webhook-signature").split(' ').any(|s| s == expected)
}

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

async fn a_join_delivers_group_member_joined_signed(wiring: Wiring) {
    let app = app(wiring).await;
    let server = receiver(204).await;
    let owner = app.sign_in(&phone(7_701_001)).await;
    let joiner = app.sign_in(&phone(7_701_002)).await;
    app.wh_group(&owner, "acme").await;
    let hook = app
        .webhook(&owner, "acme", &format!("{}/hook", server.uri()), &["group.member_joined"])
        .await;
    let secret = hook["secret"].as_str().expect("the secret is shown at creation");
    assert!(secret.starts_with("whsec_"));

    let resp = app.wh_post(&joiner.access, "/api/v1/groups/acme/join", &json!({})).await;
    expect_status(resp, StatusCode::OK).await;

    let requests = received_where(&server, 1, a_join).await;
    let request = &requests[0];
    assert!(signed_by(request, secret), "the signature verifies");
    assert!(header(request, "webhook-id").starts_with("msg_"));
    let sent_at: i64 = header(request, "webhook-timestamp").parse().expect("seconds");
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 60);
    let body: Value = serde_json::from_slice(&request.body).expect("JSON");
    assert_eq!(body["type"], "group.member_joined");
    assert_eq!(body["data"]["member_id"], joiner.id());
    assert_eq!(body["data"]["role"], "member");
    assert!(body["timestamp"].is_string());
    let id = hook["id"].as_str().expect("an id");
    let webhook_id = header(request, "webhook-id").to_owned();
    let items = app
        .wait_deliveries(&owner, "acme", id, |d| {
            d.iter().any(|d| d["webhook_id"] == webhook_id && d["status"] == "succeeded")
        })
        .await;
    assert!(items.iter().all(|d| d["event_type"] == "group.member_joined"), "the filter holds");
    let item = items.iter().find(|d| d["webhook_id"] == webhook_id).expect("the delivery");
    assert_eq!(item["last_attempt"]["response_status"], 204);
    let listed = expect_status(
        app.get_auth("/api/v1/groups/acme/webhooks", &owner.access).await,
        StatusCode::OK,
    )
    .await;
    assert!(listed["items"][0].get("secret").is_none(), "the secret is never listed");
}

async fn a_receiver_answering_500_then_200_gets_the_same_webhook_id_twice(wiring: Wiring) {
    let app = app(wiring).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "data": { "via": "join" } })))
        .respond_with(ResponseTemplate::new(500).set_body_string("down for a moment"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let owner = app.sign_in(&phone(7_702_001)).await;
    let joiner = app.sign_in(&phone(7_702_002)).await;
    app.wh_group(&owner, "acme").await;
    let hook = app.webhook(&owner, "acme", &server.uri(), &["group.member_joined"]).await;
    let secret = hook["secret"].as_str().expect("a secret");

    let resp = app.wh_post(&joiner.access, "/api/v1/groups/acme/join", &json!({})).await;
    expect_status(resp, StatusCode::OK).await;

    let requests = received_where(&server, 2, a_join).await;
    assert_eq!(header(&requests[0], "webhook-id"), header(&requests[1], "webhook-id"));
    assert_eq!(requests[0].body, requests[1].body, "the same body");
    assert!(requests.iter().all(|r| signed_by(r, secret)));
    let id = hook["id"].as_str().expect("an id");
    let webhook_id = header(&requests[0], "webhook-id").to_owned();
    let items = app
        .wait_deliveries(&owner, "acme", id, |d| {
            d.iter().any(|d| d["webhook_id"] == webhook_id && d["status"] == "succeeded")
        })
        .await;
    let item = items.iter().find(|d| d["webhook_id"] == webhook_id).expect("the delivery");
    assert_eq!(item["attempts"], 2);
    assert_eq!(item["last_attempt"]["response_status"], 200);
    // Three retry waits later, still two: a success ends the schedule.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(received_where(&server, 0, a_join).await.len(), 2, "no third attempt");
}

async fn a_rotated_secret_signs_beside_the_old_one(wiring: Wiring) {
    let app = app(wiring).await;
    let server = receiver(200).await;
    let owner = app.sign_in(&phone(7_703_001)).await;
    app.wh_group(&owner, "acme").await;
    let hook =
        app.webhook(&owner, "acme", &format!("{}/hook", server.uri()), &["webhook.test"]).await;
    let (id, old) = (hook["id"].as_str().expect("id"), hook["secret"].as_str().expect("secret"));

    let resp = app
        .wh_post(
            &owner.access,
            &format!("/api/v1/groups/acme/webhooks/{id}/rotate-secret"),
            &json!({}),
        )
        .await;
    let rotated = expect_status(resp, StatusCode::OK).await;
    let new = rotated["secret"].as_str().expect("the new secret is shown");
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].is_string());
    let resp = app
        .wh_post(&owner.access, &format!("/api/v1/groups/acme/webhooks/{id}/test"), &json!({}))
        .await;
    expect_status(resp, StatusCode::ACCEPTED).await;

    let requests = received(&server, 1).await;
    let test = &requests[0];
    assert_eq!(header(test, "webhook-signature").split(' ').count(), 2, "both signatures");
    assert!(signed_by(test, new) && signed_by(test, old));
    let body: Value = serde_json::from_slice(&test.body).expect("JSON");
    assert_eq!(body["type"], "webhook.test");
}

async fn private_addresses_are_refused_unless_allowed(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.webhooks.poll = Duration::from_millis(50)).await;
    let server = receiver(200).await;
    let owner = app.sign_in(&phone(7_704_001)).await;
    app.wh_group(&owner, "acme").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let body = json!({ "url": url });
        let resp = app.wh_post(&owner.access, "/api/v1/groups/acme/webhooks", &body).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}");
    }
    // A name is checked when it is resolved, at delivery.
    let port = server.address().port();
    let hook = app.webhook(&owner, "acme", &format!("http://localhost:{port}/hook"), &[]).await;
    let id = hook["id"].as_str().expect("an id");
    let resp = app
        .wh_post(&owner.access, &format!("/api/v1/groups/acme/webhooks/{id}/test"), &json!({}))
        .await;
    expect_status(resp, StatusCode::ACCEPTED).await;

    let items = app
        .wait_deliveries(&owner, "acme", id, |d| {
            d.first().is_some_and(|d| !d["last_attempt"].is_null())
        })
        .await;
    let attempt = &items[0]["last_attempt"];
    assert!(attempt["response_status"].is_null());
    assert!(attempt["response"].as_str().expect("why").contains("refused"), "{attempt}");
    assert!(server.received_requests().await.unwrap_or_default().is_empty());
}

async fn only_webhook_managers_and_platform_admins_reach_webhooks(wiring: Wiring) {
    let app = app(wiring).await;
    let owner = app.sign_in(&phone(7_705_001)).await;
    let plain = app.sign_in(&phone(7_705_002)).await;
    let admin = app.sign_in(&admin_phone()).await;
    app.wh_group(&owner, "acme").await;
    expect_status(
        app.wh_post(&plain.access, "/api/v1/groups/acme/join", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let hook = app.webhook(&owner, "acme", "https://crm.example.com/in", &["group.*"]).await;
    assert_eq!(hook["event_types"], json!(["group.*"]));

    let resp = app.get_auth("/api/v1/groups/acme/webhooks", &plain.access).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = app.get_auth("/api/v1/groups/acme/events", &plain.access).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = app.get_auth("/api/v1/admin/webhooks", &owner.access).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = app
        .wh_post(
            &owner.access,
            "/api/v1/groups/acme/webhooks",
            &json!({ "url": "https://a.example.com", "event_types": ["group.nope"] }),
        )
        .await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;

    let body = json!({ "url": "https://warehouse.example.com/in" });
    let made = expect_status(
        app.wh_post(&admin.access, "/api/v1/admin/webhooks", &body).await,
        StatusCode::CREATED,
    )
    .await;
    let listed =
        expect_status(app.get_auth("/api/v1/admin/webhooks", &admin.access).await, StatusCode::OK)
            .await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    let id = made["id"].as_str().expect("an id");
    let resp = app.get_auth(&format!("/api/v1/groups/acme/webhooks/{id}"), &owner.access).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app
        .patch_auth(
            &format!("/api/v1/admin/webhooks/{id}"),
            &admin.access,
            &json!({ "enabled": false }),
        )
        .await;
    assert_eq!(expect_status(resp, StatusCode::OK).await["enabled"], false);
    let resp = app.delete_auth(&format!("/api/v1/admin/webhooks/{id}"), &admin.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

async fn the_events_api_pages_a_groups_events_by_cursor_and_type(wiring: Wiring) {
    let app = app(wiring).await;
    let owner = app.sign_in(&phone(7_706_001)).await;
    let joiner = app.sign_in(&phone(7_706_002)).await;
    app.wh_group(&owner, "acme").await;
    app.wh_group(&owner, "other").await;
    expect_status(
        app.wh_post(&joiner.access, "/api/v1/groups/acme/join", &json!({})).await,
        StatusCode::OK,
    )
    .await;

    let all = expect_status(
        app.get_auth("/api/v1/groups/acme/events", &owner.access).await,
        StatusCode::OK,
    )
    .await;
    let types: Vec<_> =
        all["items"].as_array().expect("items").iter().map(|e| e["type"].clone()).collect();
    assert_eq!(
        types,
        [json!("group.created"), json!("group.member_joined"), json!("group.member_joined")]
    );
    assert!(all["items"][0]["id"].is_string() && all["items"][0]["data"]["slug"] == "acme");

    let first = expect_status(
        app.get_auth("/api/v1/groups/acme/events?limit=1&types=group.member_joined", &owner.access)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1));
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let rest = app
        .get_auth(
            &format!("/api/v1/groups/acme/events?after={cursor}&types=group.*"),
            &owner.access,
        )
        .await;
    let rest = expect_status(rest, StatusCode::OK).await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["items"][0]["data"]["member_id"], joiner.id());
    let end = rest["next_cursor"].as_str().expect("a cursor");
    let none =
        app.get_auth(&format!("/api/v1/groups/acme/events?after={end}"), &owner.access).await;
    let none = expect_status(none, StatusCode::OK).await;
    assert_eq!(none["items"], json!([]));
    assert_eq!(none["next_cursor"], end, "a poller keeps its place");
    let resp = app.get_auth("/api/v1/groups/acme/events?after=nonsense", &owner.access).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
}

async fn a_failed_delivery_can_be_retried_and_a_range_replayed(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.webhooks.config.urls.allow_private = true;
        s.webhooks.poll = Duration::from_millis(50);
        s.webhooks.config.retry_schedule = vec![];
    })
    .await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let owner = app.sign_in(&phone(7_707_001)).await;
    app.wh_group(&owner, "acme").await;
    let hook = app.webhook(&owner, "acme", &server.uri(), &["webhook.test"]).await;
    let id = hook["id"].as_str().expect("an id");
    let test = app
        .wh_post(&owner.access, &format!("/api/v1/groups/acme/webhooks/{id}/test"), &json!({}))
        .await;
    expect_status(test, StatusCode::ACCEPTED).await;
    let items = app
        .wait_deliveries(&owner, "acme", id, |d| d.first().is_some_and(|d| d["status"] == "failed"))
        .await;
    let delivery = items[0]["id"].as_str().expect("an id");

    let retry = format!("/api/v1/groups/acme/webhooks/{id}/deliveries/{delivery}/retry");
    expect_status(app.wh_post(&owner.access, &retry, &json!({})).await, StatusCode::ACCEPTED).await;

    let items = app
        .wait_deliveries(&owner, "acme", id, |d| {
            d.first().is_some_and(|d| d["status"] == "succeeded")
        })
        .await;
    assert_eq!(items[0]["attempts"], 2);
    let requests = received(&server, 2).await;
    assert_eq!(header(&requests[0], "webhook-id"), header(&requests[1], "webhook-id"));

    // A replay of the last hour: the group's events the endpoint now wants (its creation).
    let types = json!({ "event_types": ["webhook.test", "group.created"] });
    let resp =
        app.patch_auth(&format!("/api/v1/groups/acme/webhooks/{id}"), &owner.access, &types).await;
    expect_status(resp, StatusCode::OK).await;
    let now = chrono::Utc::now();
    let range = json!({ "from": now - chrono::TimeDelta::hours(1), "to": now + chrono::TimeDelta::minutes(1) });
    let replay = app
        .wh_post(&owner.access, &format!("/api/v1/groups/acme/webhooks/{id}/replay"), &range)
        .await;
    assert_eq!(expect_status(replay, StatusCode::ACCEPTED).await["queued"], 1);
    let created = received_where(&server, 1, |r| body_of(r)["type"] == "group.created").await;
    assert_eq!(body_of(&created[0])["data"]["slug"], "acme");
    let backwards = json!({ "from": now, "to": now - chrono::TimeDelta::hours(1) });
    let replay = app
        .wh_post(&owner.access, &format!("/api/v1/groups/acme/webhooks/{id}/replay"), &backwards)
        .await;
    assert_problem(replay, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_event_type_with_its_payload_in_webhooks() {
    let app = crate::helpers::spawn_app(Wiring::Memory).await;

    let doc = expect_status(app.get("/api/v1/openapi.json").await, StatusCode::OK).await;

    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));
    let webhooks = doc["webhooks"].as_object().expect("a webhooks section");
    for name in
        ["group.member_joined", "invite.accepted", "billing.payment_failed", "member.signed_up"]
    {
        assert!(webhooks.contains_key(name), "{name}");
    }
    let joined = &doc["webhooks"]["group.member_joined"]["post"];
    let body = &joined["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["properties"]["type"]["enum"], json!(["group.member_joined"]));
    let data = &body["properties"]["data"];
    assert_eq!(data["required"], json!(["group_id", "member_id", "role", "via"]));
    let headers: Vec<_> = joined["parameters"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(
        headers,
        [json!("webhook-id"), json!("webhook-timestamp"), json!("webhook-signature")]
    );
    assert!(doc["paths"]["/api/v1/groups/{slug}/webhooks"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/admin/events"]["get"].is_object());
}
