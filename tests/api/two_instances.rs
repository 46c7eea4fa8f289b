//! Two real server processes (the built `onboard serve`) sharing one database and one Redis
//! prefix: the limits and the sessions hold across instances.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use onboard_postgres::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    RedisPrefix, TestKey, assert_problem, expect_status, onboard_bin, phone, signed_in,
};

/// One `onboard serve` process, killed on drop.
struct Instance {
    name: &'static str,
    address: String,
    child: Child,
    log: PathBuf,
}

impl Instance {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

/// Two instances of one deployment; the instances go first, then the Redis keys, then the
/// database.
struct Deployment {
    a: Instance,
    b: Instance,
    client: reqwest::Client,
    _redis: RedisPrefix,
    _key: TestKey,
    _db: TestDatabase,
}

async fn deploy(extra: &[(&str, &str)]) -> Deployment {
    let db = TestDatabase::new().await;
    let redis = RedisPrefix::new();
    let key = TestKey::generate();
    let start = |name: &'static str| {
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("onboard-test-{name}-{}.log", uuid::Uuid::now_v7()));
        let out = std::fs::File::create(&log).expect("a log file");
        let err = out.try_clone().expect("a log file");
        let mut cmd = Command::new(onboard_bin());
        cmd.arg("serve")
            .env_clear()
            // Away from any `.env` file.
            .current_dir(std::env::temp_dir())
            .env("DATABASE_URL", db.url())
            .env("REDIS_URL", &redis.url)
            .env("REDIS_KEY_PREFIX", &redis.prefix)
            .env("ONBOARD_ADDR", format!("127.0.0.1:{port}"))
            .env("OTP_ECHO", "true")
            .env("JWT_PRIVATE_KEY_FILE", key.path())
            .env("MIGRATE_ON_START", "true")
            .env("ONBOARD_WORKERS", "1")
            .env("DATABASE_POOL_SIZE", "4")
            .env("REDIS_POOL_SIZE", "4")
            .env("RUST_LOG", "warn")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().expect("the server binary starts");
        Instance { name, address: format!("http://127.0.0.1:{port}"), child, log }
    };
    let mut a = start("a");
    let mut b = start("b");
    let client = reqwest::Client::new();
    for instance in [&mut a, &mut b] {
        wait_until_ready(&client, instance).await;
    }
    Deployment { a, b, client, _redis: redis, _key: key, _db: db }
}

/// Polls `/health/ready` until 200, failing with the instance's log after 30 s or if it exits.
async fn wait_until_ready(client: &reqwest::Client, instance: &mut Instance) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = instance.child.try_wait() {
            panic!("instance {} exited with {status}:\n{}", instance.name, instance.log());
        }
        let ready = client
            .get(instance.url("/health/ready"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK);
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "instance {} not ready within 30 s:\n{}",
            instance.name,
            instance.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Deployment {
    async fn post(&self, on: &Instance, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(on.url(path)).json(body).send().await.expect("the request is sent")
    }

    async fn request_otp(&self, on: &Instance, phone: &str) -> reqwest::Response {
        self.post(on, "/api/v1/auth/otp", &json!({ "phone": phone })).await
    }

    async fn request_otp_from(&self, on: &Instance, phone: &str, ip: &str) -> reqwest::Response {
        self.client
            .post(on.url("/api/v1/auth/otp"))
            .header("x-forwarded-for", ip)
            .json(&json!({ "phone": phone }))
            .send()
            .await
            .expect("the request is sent")
    }

    async fn verify(&self, on: &Instance, phone: &str, code: &str) -> reqwest::Response {
        self.post(on, "/api/v1/auth/otp/verify", &json!({ "phone": phone, "code": code })).await
    }

    async fn get_me(&self, on: &Instance, token: &str) -> reqwest::Response {
        self.client.get(on.url("/api/v1/members/me")).bearer_auth(token).send().await.expect("sent")
    }

    async fn code(&self, on: &Instance, phone: &str) -> String {
        let body = expect_status(self.request_otp(on, phone).await, StatusCode::ACCEPTED).await;
        body["dev_code"].as_str().expect("the code is echoed").to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_requested_on_one_instance_verifies_on_the_other_and_the_resend_interval_holds_on_both()
 {
    let d = deploy(&[]).await;
    let phone = phone(1);
    let code = d.code(&d.a, &phone).await;
    assert_problem(
        d.request_otp(&d.b, &phone).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    let body = expect_status(d.verify(&d.b, &phone, &code).await, StatusCode::OK).await;
    assert_eq!(body["created"], true);
    // Used on B, gone on A.
    assert_problem(d.verify(&d.a, &phone, &code).await, StatusCode::UNAUTHORIZED, "otp_expired")
        .await;
    // A wrong guess on A counts on B.
    let other = crate::helpers::phone(2);
    let code = d.code(&d.b, &other).await;
    let wrong = crate::auth::wrong(&code);
    let p = assert_problem(
        d.verify(&d.a, &other, &wrong).await,
        StatusCode::UNAUTHORIZED,
        "otp_invalid",
    )
    .await;
    assert_eq!(p["attempts_left"], 4);
    let p = assert_problem(
        d.verify(&d.b, &other, &wrong).await,
        StatusCode::UNAUTHORIZED,
        "otp_invalid",
    )
    .await;
    assert_eq!(p["attempts_left"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_phone_and_per_ip_send_caps_count_across_instances() {
    let d = deploy(&[
        ("OTP_RESEND_INTERVAL", "0"),
        ("OTP_MAX_SENDS_PER_HOUR", "3"),
        ("OTP_MAX_SENDS_PER_IP_HOUR", "3"),
        ("TRUST_PROXY", "true"),
    ])
    .await;
    // Per phone: each from its own client address, so only the phone's cap applies.
    let phone = phone(1);
    for (on, ip) in [(&d.a, "192.0.2.1"), (&d.b, "192.0.2.2"), (&d.a, "192.0.2.3")] {
        expect_status(d.request_otp_from(on, &phone, ip).await, StatusCode::ACCEPTED).await;
    }
    for (on, ip) in [(&d.b, "192.0.2.4"), (&d.a, "192.0.2.5")] {
        let resp = d.request_otp_from(on, &phone, ip).await;
        assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    // Per client address: two on A and one on B, then the fourth is refused on either.
    let ip = "203.0.113.9";
    for (n, on) in [(10, &d.a), (11, &d.a), (12, &d.b)] {
        expect_status(
            d.request_otp_from(on, &crate::helpers::phone(n), ip).await,
            StatusCode::ACCEPTED,
        )
        .await;
    }
    for (n, on) in [(13, &d.a), (14, &d.b)] {
        let resp = d.request_otp_from(on, &crate::helpers::phone(n), ip).await;
        assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_one_instance_works_and_ends_on_the_other() {
    let d = deploy(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let code = d.code(&d.a, &phone(1)).await;
    let me = signed_in(expect_status(d.verify(&d.a, &phone(1), &code).await, StatusCode::OK).await);

    // An access token from A is accepted by B, and a logout on A ends it on B at once.
    let body = expect_status(d.get_me(&d.b, &me.access).await, StatusCode::OK).await;
    assert_eq!(body["id"], me.id());
    let resp = d
        .client
        .post(d.a.url("/api/v1/auth/logout"))
        .bearer_auth(&me.access)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_problem(d.get_me(&d.b, &me.access).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    assert_problem(d.get_me(&d.a, &me.access).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;

    // A refresh token rotated on A and presented again on B (no grace) revokes the session.
    let code = d.code(&d.b, &phone(2)).await;
    let second =
        signed_in(expect_status(d.verify(&d.b, &phone(2), &code).await, StatusCode::OK).await);
    let refresh = |on: &Instance, token: &str| {
        d.client
            .post(on.url("/api/v1/auth/token/refresh"))
            .json(&json!({ "refresh_token": token }))
            .send()
    };
    let rotated =
        expect_status(refresh(&d.a, &second.refresh).await.unwrap(), StatusCode::OK).await;
    let resp = refresh(&d.b, &second.refresh).await.unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let new_access = rotated["access_token"].as_str().unwrap();
    assert_problem(d.get_me(&d.a, new_access).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    assert_problem(d.get_me(&d.b, &second.access).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    let newer = rotated["refresh_token"].as_str().unwrap();
    let resp = refresh(&d.a, newer).await.unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "refresh_token_invalid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_instances_serve_the_same_signing_key() {
    let d = deploy(&[]).await;
    let a = expect_status(
        d.client.get(d.a.url("/.well-known/jwks.json")).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let b = expect_status(
        d.client.get(d.b.url("/.well-known/jwks.json")).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(a, b);
}
