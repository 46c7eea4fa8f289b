//! Single sign-on (OpenID Connect) against a mock issuer run by each test: discovery, JWKS,
//! token and userinfo endpoints (wiremock), ID tokens signed with an Ed25519 key generated
//! here. The test plays the browser: it follows the start redirect's parameters, calls the
//! callback with the state, and exchanges the login code.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockGuard, MockServer, ResponseTemplate};

use crate::both_wirings;
use crate::helpers::{
    TestApp, Wiring, assert_problem, expect_status, phone, signed_in, spawn_app_with,
};

/// The app redirect URI the tests allow.
const APP: &str = "https://app.example.com/sso/done";
const CLIENT_ID: &str = "onboard-client";
const PROVIDER: &str = "mock";

/// A mock OpenID Connect issuer.
struct Issuer {
    server: MockServer,
    key: SigningKey,
    /// The JWK set's mock: replaced when the keys rotate.
    jwks: Option<MockGuard>,
}

impl Issuer {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let issuer = server.uri();
        Mock::given(method("GET"))
            .and(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "userinfo_endpoint": format!("{issuer}/userinfo"),
                "jwks_uri": format!("{issuer}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["EdDSA"],
                "code_challenge_methods_supported": ["S256"],
            })))
            .mount(&server)
            .await;
        let mut issuer =
            Self { server, key: SigningKey::generate(&mut rand_core::OsRng), jwks: None };
        issuer.publish_key().await;
        issuer
    }

    /// Serves the current key (alone) as the JWK set.
    async fn publish_key(&mut self) {
        self.jwks = None;
        let jwk = json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "alg": "EdDSA",
            "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes()),
        });
        let guard = Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "keys": [jwk] })))
            .mount_as_scoped(&self.server)
            .await;
        self.jwks = Some(guard);
    }

    /// Signs with a new key from now on, and publishes only that one.
    async fn rotate_keys(&mut self) {
        self.key = SigningKey::generate(&mut rand_core::OsRng);
        self.publish_key().await;
    }

    /// How many times the discovery document was fetched.
    async fn discoveries(&self) -> usize {
        let requests = self.server.received_requests().await.expect("requests are recorded");
        requests.iter().filter(|r| r.url.path() == "/.well-known/openid-configuration").count()
    }

    fn uri(&self) -> String {
        self.server.uri()
    }

    /// Claims of a valid ID token for `sub` with `nonce`, plus `extra`.
    fn claims(&self, sub: &str, nonce: &str, extra: &Value) -> Value {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": self.uri(),
            "aud": CLIENT_ID,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
        });
        for (k, v) in extra.as_object().expect("an object") {
            claims[k] = v.clone();
        }
        claims
    }

    /// `claims` signed by this issuer's key.
    fn sign(&self, claims: &Value) -> String {
        sign_with(&self.key, claims)
    }

    /// Answers the code exchange for `code` with `id_token`, and the userinfo call of its
    /// access token with `sub` alone.
    async fn answer(&self, code: &str, id_token: &str, sub: &str) {
        let access = format!("at-{code}");
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains(format!("code={code}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            })))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/userinfo"))
            .and(header("authorization", format!("Bearer {access}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "sub": sub })))
            .mount(&self.server)
            .await;
    }
}

fn sign_with(key: &SigningKey, claims: &Value) -> String {
    let der = key.to_pkcs8_der().expect("an Ed25519 key encodes as DER");
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes()))
        .expect("the claims are signed")
}

/// The app with the mock issuer configured as provider `mock`.
async fn spawn(wiring: Wiring, issuer: &Issuer) -> TestApp {
    spawn_for(wiring, issuer.uri()).await
}

/// The app with the issuer at `issuer_uri` configured as provider `mock`.
async fn spawn_for(wiring: Wiring, issuer_uri: String) -> TestApp {
    let vars: HashMap<&str, String> = HashMap::from([
        ("SSO_PROVIDERS", PROVIDER.to_owned()),
        ("SSO_MOCK_ISSUER", issuer_uri),
        ("SSO_MOCK_CLIENT_ID", CLIENT_ID.to_owned()),
        ("SSO_MOCK_CLIENT_SECRET", "s3cret".to_owned()),
        ("SSO_REDIRECT_URIS", format!("{APP}, myapp://sso")),
        ("PUBLIC_URL", "http://onboard.test".to_owned()),
    ]);
    let sso = onboard_server::config::SsoSettings::from_lookup(&|k| vars.get(k).cloned())
        .expect("valid SSO settings");
    spawn_app_with(wiring, |s| s.sso = sso).await
}

/// The query parameters of a redirect's `Location`.
fn location_params(resp: &Response) -> (String, HashMap<String, String>) {
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned();
    let url = reqwest::Url::parse(&location).expect("an absolute URL");
    let params = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    (location, params)
}

/// A started login: the `state` and `nonce` the provider was sent.
struct Started {
    state: String,
    nonce: String,
}

async fn start(app: &TestApp) -> Started {
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/auth/sso/{PROVIDER}/start")))
        .query(&[("redirect_uri", APP)])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let (location, params) = location_params(&resp);
    assert!(location.contains("/authorize?"), "{location}");
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(
        params["redirect_uri"],
        format!("http://onboard.test/api/v1/auth/sso/{PROVIDER}/callback")
    );
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43);
    assert!(params["scope"].split(' ').any(|s| s == "openid"), "{location}");
    Started { state: params["state"].clone(), nonce: params["nonce"].clone() }
}

async fn callback(app: &TestApp, code: &str, state: &str) -> Response {
    app.client
        .get(app.url(&format!("/api/v1/auth/sso/{PROVIDER}/callback")))
        .query(&[("code", code), ("state", state)])
        .send()
        .await
        .expect("sent")
}

async fn exchange(app: &TestApp, login_code: &str) -> Response {
    app.post_json("/api/v1/auth/sso/exchange", &json!({ "login_code": login_code })).await
}

/// The login code of a callback answer (asserts the redirect to the app).
fn login_code(resp: &Response) -> String {
    assert_eq!(resp.status(), StatusCode::FOUND, "a redirect to the app");
    let (location, params) = location_params(resp);
    assert!(location.starts_with(&format!("{APP}?login_code=")), "{location}");
    params["login_code"].clone()
}

/// Start → the provider answers with an ID token for `sub` with `extra` claims → callback:
/// the login code.
async fn login_code_for(app: &TestApp, issuer: &Issuer, sub: &str, extra: &Value) -> String {
    let started = start(app).await;
    let code = format!("c-{}", uuid::Uuid::now_v7().simple());
    issuer.answer(&code, &issuer.sign(&issuer.claims(sub, &started.nonce, extra)), sub).await;
    login_code(&callback(app, &code, &started.state).await)
}

/// A whole login; the exchange's answer (asserts 200).
async fn sso_login(app: &TestApp, issuer: &Issuer, sub: &str, extra: &Value) -> Value {
    let code = login_code_for(app, issuer, sub, extra).await;
    expect_status(exchange(app, &code).await, StatusCode::OK).await
}

/// A login whose ID token is `id_token` (made from the started nonce): the callback answer.
async fn callback_with(
    app: &TestApp,
    issuer: &Issuer,
    sub: &str,
    id_token: impl FnOnce(&Started) -> String,
) -> Response {
    let started = start(app).await;
    let code = format!("c-{}", uuid::Uuid::now_v7().simple());
    issuer.answer(&code, &id_token(&started), sub).await;
    callback(app, &code, &started.state).await
}

/// A 502 with no redirect, then a good login of the same subject creates its member: the
/// failed one created nothing.
async fn assert_refused_and_nothing_created(
    app: &TestApp,
    issuer: &Issuer,
    resp: Response,
    sub: &str,
) {
    assert!(resp.headers().get(reqwest::header::LOCATION).is_none(), "no login code handed out");
    assert_problem(resp, StatusCode::BAD_GATEWAY, "sso_provider_error").await;
    let body = sso_login(
        app,
        issuer,
        sub,
        &json!({ "phone_number": phone(7001), "phone_number_verified": true }),
    )
    .await;
    assert_eq!(body["created"], true, "the refused login created no member: {body}");
}

both_wirings!(
    a_provider_login_signs_in_with_tokens_that_work,
    a_replayed_state_is_refused,
    an_id_token_with_another_nonce_creates_nothing,
    an_expired_id_token_creates_nothing,
    a_wrongly_signed_id_token_creates_nothing,
    a_verified_phone_links_the_login_to_the_existing_member,
    a_verified_email_links_the_login_to_the_existing_member,
    an_unverified_email_never_links,
    an_unknown_provider_is_not_found,
    a_redirect_uri_that_is_not_allowed_is_refused,
    a_login_code_works_once,
    two_first_logins_of_one_subject_make_one_member,
    discovery_is_cached_and_read_again_when_the_keys_rotate,
    a_provider_without_discovery_answers_bad_gateway,
    a_deleted_members_identity_signs_up_anew,
    an_id_token_for_another_audience_or_issuer_creates_nothing,
    a_blocked_member_cannot_sign_in_through_a_provider,
);

async fn a_provider_login_signs_in_with_tokens_that_work(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let extra = json!({
        "email": "Ann@Example.com",
        "email_verified": true,
        "given_name": "Ann",
        "family_name": "Lee",
    });
    let body = sso_login(&app, &issuer, "subject-1", &extra).await;
    assert_eq!(body["created"], true);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0));
    let first = signed_in(body);
    assert_eq!(first.member["phone"], Value::Null, "no verified phone: none");
    assert_eq!(first.member["email"], "ann@example.com");
    assert_eq!(first.member["first_name"], "Ann");

    let me = app.me(&first.access).await;
    assert_eq!(me["id"], first.member["id"]);
    assert!(me["current_group"].is_string(), "a personal workspace, as with a code sign-up");
    let refreshed = expect_status(app.refresh(&first.refresh).await, StatusCode::OK).await;
    assert!(refreshed["access_token"].is_string());

    // The same subject again: the same member, a second session.
    let again = sso_login(&app, &issuer, "subject-1", &json!({})).await;
    assert_eq!(again["created"], false);
    assert_eq!(again["member"]["id"], first.member["id"]);
    assert_eq!(app.sessions(&first.access).await.len(), 2);
}

async fn a_replayed_state_is_refused(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let started = start(&app).await;
    let sub = "subject-replay";
    issuer.answer("c-1", &issuer.sign(&issuer.claims(sub, &started.nonce, &json!({}))), sub).await;
    let first = callback(&app, "c-1", &started.state).await;
    login_code(&first);
    let replayed = callback(&app, "c-1", &started.state).await;
    assert_problem(replayed, StatusCode::UNAUTHORIZED, "sso_state_invalid").await;
    let forged = callback(&app, "c-1", "a-state-never-issued").await;
    assert_problem(forged, StatusCode::UNAUTHORIZED, "sso_state_invalid").await;
    let missing = app.get(&format!("/api/v1/auth/sso/{PROVIDER}/callback?code=c-1")).await;
    assert_problem(missing, StatusCode::UNAUTHORIZED, "sso_state_invalid").await;
}

async fn an_id_token_with_another_nonce_creates_nothing(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let sub = "subject-nonce";
    let resp = callback_with(&app, &issuer, sub, |_| {
        issuer.sign(&issuer.claims(sub, "not-the-nonce", &json!({})))
    })
    .await;
    assert_refused_and_nothing_created(&app, &issuer, resp, sub).await;
}

async fn an_expired_id_token_creates_nothing(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let sub = "subject-expired";
    let resp = callback_with(&app, &issuer, sub, |started| {
        let now = chrono::Utc::now().timestamp();
        let expired = json!({ "iat": now - 7200, "exp": now - 3600 });
        issuer.sign(&issuer.claims(sub, &started.nonce, &expired))
    })
    .await;
    assert_refused_and_nothing_created(&app, &issuer, resp, sub).await;
}

async fn a_wrongly_signed_id_token_creates_nothing(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let sub = "subject-forged";
    let forger = SigningKey::generate(&mut rand_core::OsRng);
    let resp = callback_with(&app, &issuer, sub, |started| {
        sign_with(&forger, &issuer.claims(sub, &started.nonce, &json!({})))
    })
    .await;
    assert_refused_and_nothing_created(&app, &issuer, resp, sub).await;
}

async fn a_verified_phone_links_the_login_to_the_existing_member(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let member = app.sign_in(&phone(7101)).await;
    // An unverified phone does not link.
    let unverified = json!({ "phone_number": phone(7101), "phone_number_verified": false });
    let other = sso_login(&app, &issuer, "subject-phone-0", &unverified).await;
    assert_eq!(other["created"], true);
    assert_ne!(other["member"]["id"], member.member["id"]);
    assert_eq!(other["member"]["phone"], Value::Null);

    let verified = json!({ "phone_number": phone(7101), "phone_number_verified": true });
    let body = sso_login(&app, &issuer, "subject-phone-1", &verified).await;
    assert_eq!(body["created"], false);
    assert_eq!(body["member"]["id"], member.member["id"]);
    assert_eq!(body["member"]["phone"], phone(7101));
    // The link holds from now on, whatever the provider says of the phone.
    let again = sso_login(&app, &issuer, "subject-phone-1", &json!({})).await;
    assert_eq!(again["member"]["id"], member.member["id"]);
}

async fn a_verified_email_links_the_login_to_the_existing_member(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let member = app.sign_in(&phone(7201)).await;
    let patched = app.patch_me(&member.access, &json!({ "email": "bo@example.com" })).await;
    expect_status(patched, StatusCode::OK).await;
    let verified = json!({ "email": "BO@example.com", "email_verified": true });
    let body = sso_login(&app, &issuer, "subject-email-1", &verified).await;
    assert_eq!(body["created"], false);
    assert_eq!(body["member"]["id"], member.member["id"]);
    let tokens = signed_in(body);
    assert_eq!(app.me(&tokens.access).await["phone"], phone(7201));
}

async fn an_unverified_email_never_links(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let member = app.sign_in(&phone(7301)).await;
    let patched = app.patch_me(&member.access, &json!({ "email": "cy@example.com" })).await;
    expect_status(patched, StatusCode::OK).await;
    for (sub, extra) in [
        ("subject-unverified-1", json!({ "email": "cy@example.com", "email_verified": false })),
        ("subject-unverified-2", json!({ "email": "cy@example.com" })),
    ] {
        let body = sso_login(&app, &issuer, sub, &extra).await;
        assert_eq!(body["created"], true, "a new member instead: {body}");
        assert_ne!(body["member"]["id"], member.member["id"]);
        assert_eq!(body["member"]["email"], Value::Null, "an unverified e-mail is not kept");
    }
}

async fn an_unknown_provider_is_not_found(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let start = app.get(&format!("/api/v1/auth/sso/github/start?redirect_uri={APP}")).await;
    assert_problem(start, StatusCode::NOT_FOUND, "sso_provider_unknown").await;
    let callback = app.get("/api/v1/auth/sso/github/callback?code=c&state=s").await;
    assert_problem(callback, StatusCode::NOT_FOUND, "sso_provider_unknown").await;
    let odd = app.get("/api/v1/auth/sso/%20x/start").await;
    assert_problem(odd, StatusCode::NOT_FOUND, "sso_provider_unknown").await;
}

async fn a_redirect_uri_that_is_not_allowed_is_refused(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    for uri in ["https://evil.example.com/sso/done", "https://app.example.com/sso/done/", ""] {
        let resp = app
            .client
            .get(app.url(&format!("/api/v1/auth/sso/{PROVIDER}/start")))
            .query(&[("redirect_uri", uri)])
            .send()
            .await
            .expect("sent");
        assert_problem(resp, StatusCode::BAD_REQUEST, "redirect_uri_not_allowed").await;
    }
    let none = app.get(&format!("/api/v1/auth/sso/{PROVIDER}/start")).await;
    assert_problem(none, StatusCode::BAD_REQUEST, "redirect_uri_not_allowed").await;
    // Another allowed URI works.
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/auth/sso/{PROVIDER}/start")))
        .query(&[("redirect_uri", "myapp://sso")])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::FOUND);
}

async fn a_login_code_works_once(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let code = login_code_for(&app, &issuer, "subject-once", &json!({})).await;
    expect_status(exchange(&app, &code).await, StatusCode::OK).await;
    assert_problem(exchange(&app, &code).await, StatusCode::UNAUTHORIZED, "login_code_invalid")
        .await;
    assert_problem(
        exchange(&app, "never-issued").await,
        StatusCode::UNAUTHORIZED,
        "login_code_invalid",
    )
    .await;
    assert_problem(exchange(&app, "").await, StatusCode::UNAUTHORIZED, "login_code_invalid").await;
    let unknown_field = app.post_json("/api/v1/auth/sso/exchange", &json!({ "code": code })).await;
    assert_problem(unknown_field, StatusCode::BAD_REQUEST, "invalid_request").await;
}

async fn two_first_logins_of_one_subject_make_one_member(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let extra = json!({ "phone_number": phone(7401), "phone_number_verified": true });
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(login_code_for(&app, &issuer, "subject-race", &extra).await);
    }
    let answers = futures_util::future::join_all(codes.iter().map(|c| exchange(&app, c))).await;
    let mut bodies = Vec::new();
    for resp in answers {
        bodies.push(expect_status(resp, StatusCode::OK).await);
    }
    let ids: std::collections::BTreeSet<String> =
        bodies.iter().map(|b| b["member"]["id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(ids.len(), 1, "one member: {bodies:?}");
    assert_eq!(bodies.iter().filter(|b| b["created"] == true).count(), 1);
}

async fn discovery_is_cached_and_read_again_when_the_keys_rotate(wiring: Wiring) {
    let mut issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    sso_login(&app, &issuer, "subject-keys", &json!({})).await;
    sso_login(&app, &issuer, "subject-keys", &json!({})).await;
    assert_eq!(issuer.discoveries().await, 1, "the discovery document is cached");

    issuer.rotate_keys().await;
    let body = sso_login(&app, &issuer, "subject-keys", &json!({})).await;
    assert_eq!(body["created"], false);
    assert_eq!(issuer.discoveries().await, 2, "an unknown signature reads the keys again");
}

async fn a_provider_without_discovery_answers_bad_gateway(wiring: Wiring) {
    // An issuer that serves no discovery document at all.
    let silent = MockServer::start().await;
    let app = spawn_for(wiring, silent.uri()).await;
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/auth/sso/{PROVIDER}/start")))
        .query(&[("redirect_uri", APP)])
        .send()
        .await
        .expect("sent");
    assert_problem(resp, StatusCode::BAD_GATEWAY, "sso_provider_error").await;

    let doc = expect_status(app.get("/api/v1/openapi.json").await, StatusCode::OK).await;
    for path in [
        "/api/v1/auth/sso/{provider}/start",
        "/api/v1/auth/sso/{provider}/callback",
        "/api/v1/auth/sso/exchange",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is in the OpenAPI document");
    }
}

async fn a_deleted_members_identity_signs_up_anew(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let extra = json!({ "email": "di@example.com", "email_verified": true });
    let first = signed_in(sso_login(&app, &issuer, "subject-deleted", &extra).await);
    let deleted = app.delete_auth("/api/v1/members/me", &first.access).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get_me(&first.access).await.status(), StatusCode::UNAUTHORIZED);

    let again = sso_login(&app, &issuer, "subject-deleted", &extra).await;
    assert_eq!(again["created"], true, "a new member: {again}");
    assert_ne!(again["member"]["id"], first.member["id"]);
    assert_eq!(again["member"]["email"], "di@example.com", "the e-mail was freed");
    // The link moved to the new member.
    let third = sso_login(&app, &issuer, "subject-deleted", &json!({})).await;
    assert_eq!(third["member"]["id"], again["member"]["id"]);
}

async fn an_id_token_for_another_audience_or_issuer_creates_nothing(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let app = spawn(wiring, &issuer).await;
    let sub = "subject-claims";
    let resp = callback_with(&app, &issuer, sub, |started| {
        issuer.sign(&issuer.claims(sub, &started.nonce, &json!({ "aud": "another-client" })))
    })
    .await;
    assert!(resp.headers().get(reqwest::header::LOCATION).is_none());
    assert_problem(resp, StatusCode::BAD_GATEWAY, "sso_provider_error").await;
    let resp = callback_with(&app, &issuer, sub, |started| {
        let claims = json!({ "iss": "https://impostor.example.com" });
        issuer.sign(&issuer.claims(sub, &started.nonce, &claims))
    })
    .await;
    assert_refused_and_nothing_created(&app, &issuer, resp, sub).await;
}

async fn a_blocked_member_cannot_sign_in_through_a_provider(wiring: Wiring) {
    let issuer = Issuer::start().await;
    let vars: HashMap<&str, String> = HashMap::from([
        ("SSO_PROVIDERS", PROVIDER.to_owned()),
        ("SSO_MOCK_ISSUER", issuer.uri()),
        ("SSO_MOCK_CLIENT_ID", CLIENT_ID.to_owned()),
        ("SSO_REDIRECT_URIS", APP.to_owned()),
        ("PUBLIC_URL", "http://onboard.test".to_owned()),
    ]);
    let sso = onboard_server::config::SsoSettings::from_lookup(&|k| vars.get(k).cloned())
        .expect("valid SSO settings");
    let admin_phone = phone(7901);
    let admins = vec![onboard_kernel::PhoneNumber::parse(&admin_phone, None).expect("a phone")];
    let app = spawn_app_with(wiring, move |s| {
        s.sso = sso;
        s.admin_phones = admins;
    })
    .await;
    let admin = app.sign_in(&admin_phone).await;
    let member = app.sign_in(&phone(7902)).await;
    let verified = json!({ "phone_number": phone(7902), "phone_number_verified": true });
    // Linked while the member is in good standing.
    let linked = sso_login(&app, &issuer, "subject-blocked", &verified).await;
    assert_eq!(linked["member"]["id"], member.member["id"]);

    let block = format!("/api/v1/admin/members/{}/block", member.id());
    let reason = json!({"reason": "x"});
    let resp = app.call(reqwest::Method::POST, &block, &admin.access, Some(&reason)).await;
    expect_status(resp, StatusCode::OK).await;

    for subject in ["subject-blocked", "subject-blocked-by-phone"] {
        let code = login_code_for(&app, &issuer, subject, &verified).await;
        assert_problem(exchange(&app, &code).await, StatusCode::FORBIDDEN, "member_blocked").await;
    }
    // Nothing was linked for the refused subject: once unblocked, it links to the member.
    let unblock = format!("/api/v1/admin/members/{}/unblock", member.id());
    let resp = app.call(reqwest::Method::POST, &unblock, &admin.access, None);
    expect_status(resp.await, StatusCode::OK).await;
    let again = sso_login(&app, &issuer, "subject-blocked-by-phone", &verified).await;
    assert_eq!(again["member"]["id"], member.member["id"]);
    assert_eq!(again["created"], false);
}
