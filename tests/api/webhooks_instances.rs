//! Webhooks across instances: two instances fan out and deliver each event once; a worker
//! killed in the middle of an attempt leaves the delivery to another instance after its lease,
//! with the same `webhook-id`.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use onboard_memory::MemoryStore;
use onboard_server::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::both_wirings;
use crate::helpers::{
    SignedIn, TestApp, Wiring, expect_status, onboard_bin, phone, spawn_app_beside, spawn_app_with,
};

both_wirings!(two_instances_fan_out_and_deliver_each_event_once);

fn quick(s: &mut Settings, store: Option<Arc<MemoryStore>>) {
    s.webhooks.config.urls.allow_private = true;
    s.webhooks.poll = Duration::from_millis(50);
    s.webhooks.config.batch = 4;
    s.messaging_overrides.memory_store = store;
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> Value {
    let resp = app.call(Method::POST, path, token, Some(body)).await;
    let status = resp.status();
    assert!(status.is_success(), "{path}: {status}");
    resp.json().await.unwrap_or(Value::Null)
}

/// The requests of the receiver, once `n` arrived (20 s at most).
async fn received(server: &MockServer, n: usize) -> Vec<Request> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let requests = server.received_requests().await.unwrap_or_default();
        if requests.len() >= n {
            return requests;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} of {n} arrived", requests.len());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn webhook_id(request: &Request) -> String {
    request.headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// An owner, their open group `acme` and an endpoint of it for `types` at `url`.
async fn group_with_endpoint(
    app: &TestApp,
    base: u32,
    url: &str,
    types: &[&str],
) -> (SignedIn, String) {
    let owner = app.sign_in(&phone(base)).await;
    post(app, &owner.access, "/api/v1/groups", &json!({ "name": "Acme", "slug": "acme" })).await;
    let body = json!({ "url": url, "event_types": types });
    let hook = post(app, &owner.access, "/api/v1/groups/acme/webhooks", &body).await;
    (owner, hook["id"].as_str().expect("an id").to_owned())
}

async fn two_instances_fan_out_and_deliver_each_event_once(wiring: Wiring) {
    let store = (wiring == Wiring::Memory).then(|| Arc::new(MemoryStore::new()));
    let shared = store.clone();
    let a = spawn_app_with(wiring, move |s| quick(s, shared)).await;
    let shared = store.clone();
    let b = match wiring {
        Wiring::Memory => spawn_app_with(wiring, move |s| quick(s, shared)).await,
        Wiring::PostgresRedis => spawn_app_beside(&a, move |s| quick(s, None)).await,
    };
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let (owner, id) =
        group_with_endpoint(&a, 7_710_000, &server.uri(), &["group.member_joined", "webhook.test"])
            .await;
    let joiners: Vec<String> = (1..=10).map(|n| phone(7_710_000 + n)).collect();
    let joiners = a.sign_in_all(&joiners).await;

    // Every call goes to A (tokens are signed by its key); both instances' workers fan out
    // and deliver from the shared storage.
    for joiner in &joiners {
        post(&a, &joiner.access, "/api/v1/groups/acme/join", &json!({})).await;
        let test = format!("/api/v1/groups/acme/webhooks/{id}/test");
        post(&a, &owner.access, &test, &json!({})).await;
    }

    let requests = received(&server, 20).await;
    // The workers of both instances had time to send anything twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = server.received_requests().await.unwrap_or(requests);
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &requests {
        let body: Value = serde_json::from_slice(&r.body).expect("JSON");
        // The owner's own join (creating the group) may or may not reach the endpoint.
        if body["data"]["via"] != "created" {
            *per_id.entry(webhook_id(r)).or_default() += 1;
        }
    }
    assert_eq!(per_id.len(), 20, "10 joins and 10 tests");
    assert!(per_id.values().all(|n| *n == 1), "each once: {per_id:?}");
    drop(b);
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_delivery_leaves_it_to_another_instance_with_the_same_webhook_id() {
    // The API instance delivers nothing itself.
    let app = spawn_app_with(Wiring::PostgresRedis, |s| {
        s.webhooks.config.urls.allow_private = true;
        s.webhooks.no_worker = true;
    })
    .await;
    let server = MockServer::start().await;
    // The first attempt hangs (its worker is killed meanwhile); the next is answered.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let (owner, id) = group_with_endpoint(&app, 7_720_000, &server.uri(), &["webhook.test"]).await;
    // A real `onboard serve` process with a short lease, killed in its attempt.
    let redis = app.redis().expect("a Redis prefix");
    let log = std::env::temp_dir().join(format!("onboard-test-wh-{}.log", uuid::Uuid::now_v7()));
    let out = std::fs::File::create(&log).expect("a log file");
    let mut worker = Command::new(onboard_bin())
        .arg("serve")
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", app.database_url().expect("a database"))
        .env("REDIS_URL", &redis.url)
        .env("REDIS_KEY_PREFIX", &redis.prefix)
        .env("ONBOARD_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("MIGRATE_ON_START", "false")
        .env("ONBOARD_WORKERS", "1")
        .env("WEBHOOKS_ALLOW_PRIVATE", "true")
        .env("WEBHOOKS_LEASE", "1s")
        .env("WEBHOOKS_POLL", "50ms")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("a log file"))
        .stderr(out)
        .spawn()
        .expect("the server binary starts");
    post(&app, &owner.access, &format!("/api/v1/groups/acme/webhooks/{id}/test"), &json!({})).await;

    let first = received(&server, 1).await;
    worker.kill().expect("killed");
    let _ = worker.wait();
    let _ = std::fs::remove_file(&log);
    let b = spawn_app_beside(&app, |s| {
        s.webhooks.config.urls.allow_private = true;
        s.webhooks.poll = Duration::from_millis(50);
    })
    .await;

    let requests = received(&server, 2).await;
    assert_eq!(webhook_id(&requests[1]), webhook_id(&first[0]), "the same webhook-id");
    assert_eq!(requests[1].body, first[0].body);
    let path = format!("/api/v1/groups/acme/webhooks/{id}/deliveries");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = expect_status(app.get_auth(&path, &owner.access).await, StatusCode::OK).await;
        if page["items"][0]["status"] == "succeeded" {
            assert_eq!(page["items"][0]["attempts"], 1, "the killed attempt never recorded");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never delivered: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(b);
}
