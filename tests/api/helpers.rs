//! The test server and a small client for it (zero2prod's `spawn_app`).
//!
//! Every [`TestApp`] is a real server on a free port of `127.0.0.1`. With
//! [`Wiring::PostgresRedis`] it gets a database of its own (a [`TestDatabase`]) and a Redis
//! key prefix of its own (`t-<uuid>:`), both removed when the app is dropped, so tests run in
//! parallel and leave nothing behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Once, OnceLock};

use deadpool_redis::redis;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use onboard_postgres::testing::TestDatabase;
use onboard_server::{Application, Settings};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// Which adapters the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wiring {
    /// The embedded mode: everything in process memory.
    Memory,
    /// PostgreSQL and Redis (a fresh database and key prefix per app).
    PostgresRedis,
}

/// Turns each `async fn name(wiring: Wiring)` into a module `name` with two tests, `memory`
/// and `postgres_redis`, each running the server in the test's own multi-thread runtime.
#[macro_export]
macro_rules! both_wirings {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() {
                    super::$name($crate::helpers::Wiring::Memory).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres_redis() {
                    super::$name($crate::helpers::Wiring::PostgresRedis).await;
                }
            }
        )+
    };
}

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A valid Russian mobile number, distinct for each `n` below ten million.
pub fn phone(n: u32) -> String {
    format!("+7917{n:07}")
}

/// Starts structured logs once per process, only when `TEST_LOG` is set.
fn init_logs() {
    static LOGS: Once = Once::new();
    LOGS.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            onboard_server::telemetry::init_tracing();
        }
    });
}

/// The `onboard` binary, built once per test process by the cargo that runs the tests (`CARGO`,
/// else `cargo` on the `PATH`) into the target directory these tests were built in
/// (`CARGO_TARGET_DIR`, `--target-dir`, the configured one or the workspace's `target/`); cargo
/// names the executable it built. Only the server's own test targets get
/// `CARGO_BIN_EXE_onboard`; when the binary is fresh this is a quick no-op build.
pub fn onboard_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate sits in the workspace root");
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the tests' scratch directory sits in the target directory");
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace)
            // The features of this test build (as `make run`), so nothing is compiled twice.
            .args(["build", "--workspace", "--all-features", "--bin", "onboard", "--target-dir"])
            .arg(target_dir)
            .arg("--message-format=json-render-diagnostics")
            .stdin(Stdio::null());
        // What cargo set for this test process describes this package; build scripts that watch
        // such variables (`rerun-if-env-changed`) would take them for a change and rebuild.
        for (name, _) in std::env::vars_os() {
            if let Some(name) = name.to_str()
                && (name.starts_with("CARGO_PKG_")
                    || name.starts_with("CARGO_MANIFEST_")
                    || [
                        "CARGO_CRATE_NAME",
                        "CARGO_BIN_NAME",
                        "CARGO_PRIMARY_PACKAGE",
                        "CARGO_TARGET_TMPDIR",
                        "CARGO_RUSTC_CURRENT_DIR",
                        "OUT_DIR",
                    ]
                    .contains(&name))
            {
                build.env_remove(name);
            }
        }
        let output = build.output().expect("cargo starts");
        assert!(
            output.status.success(),
            "`cargo build --workspace --all-features --bin onboard` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|message| {
                message["reason"] == "compiler-artifact" && message["target"]["name"] == "onboard"
            })
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the `onboard` executable it built")
    })
}

/// A Redis key prefix of one's own; its keys are deleted when it is dropped (best effort).
#[derive(Debug)]
pub struct RedisPrefix {
    pub url: String,
    pub prefix: String,
}

impl RedisPrefix {
    pub fn new() -> Self {
        Self { url: redis_url(), prefix: format!("t-{}:", uuid::Uuid::now_v7()) }
    }

    /// Every key under this prefix (a blocking call: fine for a test's last steps).
    pub fn keys(&self) -> redis::RedisResult<Vec<String>> {
        let client = redis::Client::open(self.url.as_str())?;
        let mut conn = client.get_connection()?;
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query(&mut conn)?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(keys)
    }

    fn delete_keys(&self) -> redis::RedisResult<()> {
        let keys = self.keys()?;
        if keys.is_empty() {
            return Ok(());
        }
        let client = redis::Client::open(self.url.as_str())?;
        let mut conn = client.get_connection()?;
        redis::cmd("DEL").arg(&keys).query::<()>(&mut conn)
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        if let Err(e) = self.delete_keys() {
            eprintln!("could not delete the Redis keys under {}: {e}", self.prefix);
        }
    }
}

/// An Ed25519 signing key written to a PEM file (removed on drop), so a test can both start a
/// server with it (`JWT_PRIVATE_KEY_FILE`) and mint tokens of its own with it.
#[derive(Debug)]
pub struct TestKey {
    key: SigningKey,
    path: PathBuf,
}

impl TestKey {
    pub fn generate() -> Self {
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("an Ed25519 key encodes as PEM");
        let path =
            std::env::temp_dir().join(format!("onboard-test-key-{}.pem", uuid::Uuid::now_v7()));
        std::fs::write(&path, pem.as_bytes()).expect("the key file is written");
        Self { key, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Signs `claims` as an EdDSA JWT with this key, and `kid` in the header when given.
    pub fn mint(&self, claims: &Value, kid: Option<&str>) -> String {
        let der = self.key.to_pkcs8_der().expect("an Ed25519 key encodes as DER");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes()))
            .expect("the claims are signed")
    }
}

impl Drop for TestKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A running server and a client for it.
pub struct TestApp {
    pub address: String,
    pub wiring: Wiring,
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    /// The Redis keys go before the database does.
    redis: Option<RedisPrefix>,
    /// Dropped last: the database outlives everything that uses it.
    _db: Option<TestDatabase>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("address", &self.address)
            .field("wiring", &self.wiring)
            .finish()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A signed-in member as the verify call answered.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub access: String,
    pub refresh: String,
    pub member: Value,
}

impl SignedIn {
    pub fn id(&self) -> &str {
        self.member["id"].as_str().expect("a member has an id")
    }

    /// The member's own referral code.
    pub fn referral_code(&self) -> &str {
        self.member["referral_code"].as_str().expect("a member has a referral code")
    }
}

/// The server with the test defaults: a free port, one worker, codes echoed.
pub async fn spawn_app(wiring: Wiring) -> TestApp {
    spawn_app_with(wiring, |_| {}).await
}

/// The server with the test defaults, then `configure` applied to its settings.
pub async fn spawn_app_with(wiring: Wiring, configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_logs();
    let mut env: HashMap<&str, String> = HashMap::from([
        ("ONBOARD_ADDR", "127.0.0.1:0".to_owned()),
        ("OTP_ECHO", "true".to_owned()),
        ("ONBOARD_WORKERS", "1".to_owned()),
        ("DATABASE_POOL_SIZE", "8".to_owned()),
        ("REDIS_POOL_SIZE", "8".to_owned()),
    ]);
    let (db, redis) = match wiring {
        Wiring::Memory => (None, None),
        Wiring::PostgresRedis => {
            let db = TestDatabase::new().await;
            let redis = RedisPrefix::new();
            env.insert("DATABASE_URL", db.url().to_owned());
            env.insert("REDIS_URL", redis.url.clone());
            env.insert("REDIS_KEY_PREFIX", redis.prefix.clone());
            // The test database is migrated already.
            env.insert("MIGRATE_ON_START", "false".to_owned());
            (Some(db), Some(redis))
        }
    };
    let mut settings =
        Settings::from_lookup(|name| env.get(name).cloned()).expect("the test settings are valid");
    configure(&mut settings);
    let app = Application::build(settings).await.expect("the server starts");
    let port = app.port();
    let server = tokio::spawn(async move {
        let _ = app.run_until_stopped().await;
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    TestApp { address: format!("http://127.0.0.1:{port}"), wiring, client, server, redis, _db: db }
}

impl TestApp {
    /// This app's Redis key prefix (`PostgresRedis` only).
    pub fn redis(&self) -> Option<&RedisPrefix> {
        self.redis.as_ref()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("the request is sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.expect("the request is sent")
    }

    /// A request with a bearer token and, unless `None`, a JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await.expect("the request is sent")
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn delete_auth(&self, path: &str, token: &str) -> Response {
        self.call(reqwest::Method::DELETE, path, token, None).await
    }

    pub async fn patch_auth(&self, path: &str, token: &str, body: &Value) -> Response {
        self.call(reqwest::Method::PATCH, path, token, Some(body)).await
    }

    // --- Auth ---

    pub async fn request_otp(&self, phone: &str) -> Response {
        self.post_json("/api/v1/auth/otp", &json!({ "phone": phone })).await
    }

    /// Requests a code from the given client IP (`X-Forwarded-For`).
    pub async fn request_otp_from(&self, phone: &str, forwarded_for: &str) -> Response {
        self.client
            .post(self.url("/api/v1/auth/otp"))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({ "phone": phone }))
            .send()
            .await
            .expect("the request is sent")
    }

    /// Requests a code and returns it (the server echoes it in the tests).
    pub async fn request_code(&self, phone: &str) -> String {
        let resp = self.request_otp(phone).await;
        let body = expect_status(resp, StatusCode::ACCEPTED).await;
        body["dev_code"].as_str().expect("the code is echoed").to_owned()
    }

    pub async fn verify(&self, phone: &str, code: &str) -> Response {
        self.post_json("/api/v1/auth/otp/verify", &json!({ "phone": phone, "code": code })).await
    }

    pub async fn verify_with_referral(&self, phone: &str, code: &str, referral: &str) -> Response {
        self.post_json(
            "/api/v1/auth/otp/verify",
            &json!({ "phone": phone, "code": code, "referral_code": referral }),
        )
        .await
    }

    /// Signs in (or up) with a fresh code.
    pub async fn sign_in(&self, phone: &str) -> SignedIn {
        self.sign_in_as(phone, None).await
    }

    /// Signs in with a fresh code, sending `user_agent` if given.
    pub async fn sign_in_as(&self, phone: &str, user_agent: Option<&str>) -> SignedIn {
        let code = self.request_code(phone).await;
        let mut req = self
            .client
            .post(self.url("/api/v1/auth/otp/verify"))
            .json(&json!({ "phone": phone, "code": code }));
        if let Some(ua) = user_agent {
            req = req.header(reqwest::header::USER_AGENT, ua);
        }
        let resp = req.send().await.expect("the request is sent");
        signed_in(expect_status(resp, StatusCode::OK).await)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json("/api/v1/auth/token/refresh", &json!({ "refresh_token": refresh_token }))
            .await
    }

    pub async fn verify_token(&self, token: &str) -> Response {
        self.post_json("/api/v1/auth/token/verify", &json!({ "token": token })).await
    }

    pub async fn logout(&self, token: &str) -> Response {
        self.call(reqwest::Method::POST, "/api/v1/auth/logout", token, Some(&json!({}))).await
    }

    /// The caller's sessions (asserts 200).
    pub async fn sessions(&self, token: &str) -> Vec<Value> {
        let resp = self.get_auth("/api/v1/auth/sessions", token).await;
        let body = expect_status(resp, StatusCode::OK).await;
        body["items"].as_array().expect("items").clone()
    }

    // --- Members ---

    pub async fn get_me(&self, token: &str) -> Response {
        self.get_auth("/api/v1/members/me", token).await
    }

    /// The caller's profile (asserts 200).
    pub async fn me(&self, token: &str) -> Value {
        expect_status(self.get_me(token).await, StatusCode::OK).await
    }

    pub async fn patch_me(&self, token: &str, body: &Value) -> Response {
        self.patch_auth("/api/v1/members/me", token, body).await
    }

    pub async fn get_member(&self, token: &str, id: &str) -> Response {
        self.get_auth(&format!("/api/v1/members/{id}"), token).await
    }

    // --- Referrals ---

    /// The caller's referral standing (asserts 200).
    pub async fn referrals_me(&self, token: &str) -> Value {
        let resp = self.get_auth("/api/v1/referrals/me", token).await;
        expect_status(resp, StatusCode::OK).await
    }

    /// A page of the caller's invitees, with these query parameters (URL-encoded here).
    pub async fn get_invitees(&self, token: &str, query: &[(&str, &str)]) -> Response {
        self.client
            .get(self.url("/api/v1/referrals/me/invitees"))
            .query(query)
            .bearer_auth(token)
            .send()
            .await
            .expect("the request is sent")
    }

    pub async fn redeem(&self, token: &str, code: &str) -> Response {
        let body = json!({ "code": code });
        self.call(reqwest::Method::POST, "/api/v1/referrals/redeem", token, Some(&body)).await
    }

    /// Signs in (or up) every phone at once, answering in the order of `phones`.
    pub async fn sign_in_all(&self, phones: &[String]) -> Vec<SignedIn> {
        futures_util::future::join_all(phones.iter().map(|p| self.sign_in(p))).await
    }
}

/// Reads a sign-in answer.
pub fn signed_in(body: Value) -> SignedIn {
    SignedIn {
        access: body["access_token"].as_str().expect("access_token").to_owned(),
        refresh: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
        member: body["member"].clone(),
    }
}

/// Asserts the status and returns the JSON body.
pub async fn expect_status(resp: Response, status: StatusCode) -> Value {
    let actual = resp.status();
    let text = resp.text().await.expect("a body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("a JSON body") }
}

/// Asserts an RFC 9457 problem answer with this status and `code`; returns the headers and
/// body.
pub async fn assert_problem_with_headers(
    resp: Response,
    status: StatusCode,
    code: &str,
) -> (HeaderMap, Value) {
    let actual = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("a body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(
        content_type.starts_with("application/problem+json"),
        "a problem is application/problem+json, not {content_type:?}; body: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("a JSON problem");
    assert_eq!(body["code"], code, "unexpected code; body: {text}");
    assert_eq!(body["status"], status.as_u16(), "status in the body; body: {text}");
    assert_eq!(body["type"], "about:blank", "body: {text}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "title and detail; body: {text}"
    );
    if status == StatusCode::TOO_MANY_REQUESTS && code == "rate_limited" {
        let header: u64 = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("a 429 rate_limited carries Retry-After in seconds");
        assert!(header >= 1, "Retry-After is at least a second");
        assert_eq!(body["retry_after"], header, "retry_after matches Retry-After; body: {text}");
    }
    (headers, body)
}

/// Asserts an RFC 9457 problem answer with this status and `code`; returns the body.
pub async fn assert_problem(resp: Response, status: StatusCode, code: &str) -> Value {
    assert_problem_with_headers(resp, status, code).await.1
}

/// The field named first in a problem's `errors`.
pub fn first_error_field(problem: &Value) -> &str {
    problem["errors"][0]["field"].as_str().unwrap_or_else(|| panic!("errors[0].field in {problem}"))
}

/// The sorted keys of a JSON object.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> =
        value.as_object().unwrap_or_else(|| panic!("an object: {value}")).keys().cloned().collect();
    keys.sort();
    keys
}

/// The keys of a Member object, sorted.
pub const MEMBER_KEYS: [&str; 9] = [
    "created_at",
    "current_group",
    "email",
    "first_name",
    "id",
    "last_name",
    "phone",
    "referral_code",
    "referred_by",
];

/// The keys of a MemberCard object, sorted.
pub const CARD_KEYS: [&str; 4] = ["first_name", "id", "last_name", "phone_masked"];

/// The claims of a JWT, read without checking anything.
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The header of a JWT, read without checking anything.
pub fn header_of(token: &str) -> Value {
    use base64::Engine;
    let header = token.split('.').next().expect("a JWT has a header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64url");
    serde_json::from_slice(&bytes).expect("a JSON header")
}

impl TestApp {
    /// This app's database URL (`PostgresRedis` only).
    pub fn database_url(&self) -> Option<&str> {
        self._db.as_ref().map(TestDatabase::url)
    }
}

// A second instance of one deployment.

/// A second server beside `first` (`PostgresRedis` only): the same database and Redis key
/// prefix, its own port, process state and workers, then `configure` applied. `first` keeps
/// ownership of the database and keys, so drop this one first.
pub async fn spawn_app_beside(first: &TestApp, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = first._db.as_ref().expect("a PostgresRedis app has a database");
    let redis = first.redis.as_ref().expect("a PostgresRedis app has a Redis prefix");
    let env: HashMap<&str, String> = HashMap::from([
        ("ONBOARD_ADDR", "127.0.0.1:0".to_owned()),
        ("OTP_ECHO", "true".to_owned()),
        ("ONBOARD_WORKERS", "1".to_owned()),
        ("DATABASE_POOL_SIZE", "8".to_owned()),
        ("REDIS_POOL_SIZE", "8".to_owned()),
        ("DATABASE_URL", db.url().to_owned()),
        ("REDIS_URL", redis.url.clone()),
        ("REDIS_KEY_PREFIX", redis.prefix.clone()),
        ("MIGRATE_ON_START", "false".to_owned()),
    ]);
    let mut settings =
        Settings::from_lookup(|name| env.get(name).cloned()).expect("the test settings are valid");
    configure(&mut settings);
    let app = Application::build(settings).await.expect("the server starts");
    let port = app.port();
    let server = tokio::spawn(async move {
        let _ = app.run_until_stopped().await;
    });
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        wiring: first.wiring,
        client: first.client.clone(),
        server,
        redis: None,
        _db: None,
    }
}
