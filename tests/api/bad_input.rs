//! Malformed requests and forged tokens: always a 4xx problem, never a 5xx.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{
    TestApp, TestKey, Wiring, assert_problem, claims_of, expect_status, first_error_field,
    header_of, phone, spawn_app, spawn_app_with,
};

both_wirings!(
    malformed_json_is_an_invalid_request,
    a_wrong_type_is_an_invalid_request,
    a_missing_field_is_an_invalid_request,
    an_unknown_field_is_refused_by_name,
    a_body_over_the_limit_is_refused,
    a_body_that_is_not_json_by_content_type_is_refused,
    a_malformed_uuid_in_a_path_is_an_invalid_request,
    an_unknown_route_is_a_not_found_problem,
    forged_tokens_are_unauthorized,
);

const OTP: &str = "/api/v1/auth/otp";
const VERIFY: &str = "/api/v1/auth/otp/verify";

/// Sends `body` as-is with `content_type` (or none).
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    req.send().await.unwrap()
}

async fn malformed_json_is_an_invalid_request(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    for body in [
        &b"{\"phone\":"[..],
        b"{phone: +79170000001}",
        b"",
        b"null",
        b"\xff\xfe",
        b"{\"phone\":\"+79170000001\"} trailing",
    ] {
        for path in [OTP, VERIFY, "/api/v1/auth/token/refresh", "/api/v1/auth/token/verify"] {
            let resp = raw(&app, Method::POST, path, Some("application/json"), body.to_vec()).await;
            assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        }
        let resp = app
            .client
            .patch(app.url("/api/v1/members/me"))
            .bearer_auth(&me.access)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

async fn a_wrong_type_is_an_invalid_request(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let cases: [(&str, Value); 8] = [
        (OTP, json!({ "phone": 123 })),
        (OTP, json!({ "phone": ["+79170000001"] })),
        (OTP, json!([])),
        (OTP, json!("+79170000001")),
        (VERIFY, json!({ "phone": phone(1), "code": 123456 })),
        (VERIFY, json!({ "phone": phone(1), "code": "123456", "referral_code": 7 })),
        ("/api/v1/auth/token/refresh", json!({ "refresh_token": true })),
        ("/api/v1/auth/token/verify", json!({ "token": { "a": 1 } })),
    ];
    for (path, body) in cases {
        assert_problem(
            app.post_json(path, &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    for body in [json!({ "first_name": 5 }), json!({ "email": false }), json!([1, 2])] {
        assert_problem(
            app.patch_me(&me.access, &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
}

async fn a_missing_field_is_an_invalid_request(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let cases = [
        (OTP, json!({})),
        (VERIFY, json!({ "phone": phone(1) })),
        (VERIFY, json!({ "code": "123456" })),
        ("/api/v1/auth/token/refresh", json!({})),
        ("/api/v1/auth/token/verify", json!({})),
    ];
    for (path, body) in cases {
        assert_problem(
            app.post_json(path, &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    // An empty or absurd code is refused before it is checked, naming the field.
    for code in ["", &"1".repeat(100)] {
        let resp = app.post_json(VERIFY, &json!({ "phone": phone(1), "code": code })).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "code");
    }
}

async fn an_unknown_field_is_refused_by_name(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let cases = [
        (OTP, json!({ "phone": phone(2), "pin": 1 }), "pin"),
        (VERIFY, json!({ "phone": phone(2), "code": "123456", "extra": true }), "extra"),
        (
            "/api/v1/auth/token/refresh",
            json!({ "refresh_token": me.refresh, "device": "x" }),
            "device",
        ),
        ("/api/v1/auth/token/verify", json!({ "token": me.access, "aud": "x" }), "aud"),
    ];
    for (path, body, field) in cases {
        let problem = assert_problem(
            app.post_json(path, &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert_eq!(first_error_field(&problem), field, "{path}");
    }
    let resp = app.patch_me(&me.access, &json!({ "first_name": "Ann", "nickname": "annie" })).await;
    let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(first_error_field(&problem), "nickname");
    assert!(app.me(&me.access).await["first_name"].is_null(), "nothing changed");
    // The refused refresh did not use the token up.
    expect_status(app.refresh(&me.refresh).await, StatusCode::OK).await;
}

async fn a_body_over_the_limit_is_refused(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let big = json!({ "phone": "1".repeat(200 * 1024) });
    for path in [OTP, VERIFY, "/api/v1/auth/token/refresh"] {
        let resp = app.post_json(path, &big).await;
        let status = resp.status();
        assert!(
            status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::BAD_REQUEST,
            "413 or 400, not {status}"
        );
        assert_problem(resp, status, "invalid_request").await;
    }
    let resp = app.patch_me(&me.access, &json!({ "first_name": "a".repeat(200 * 1024) })).await;
    let status = resp.status();
    assert!(
        status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::BAD_REQUEST,
        "{status}"
    );
    assert_problem(resp, status, "invalid_request").await;
}

async fn a_body_that_is_not_json_by_content_type_is_refused(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let body = serde_json::to_vec(&json!({ "phone": phone(1) })).unwrap();
    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let resp = raw(&app, Method::POST, OTP, content_type, body.clone()).await;
        let status = resp.status();
        assert!(
            status == StatusCode::UNSUPPORTED_MEDIA_TYPE || status == StatusCode::BAD_REQUEST,
            "415 or 400 for {content_type:?}, not {status}"
        );
        assert_problem(resp, status, "invalid_request").await;
    }
    // A charset parameter is fine.
    let resp = raw(&app, Method::POST, OTP, Some("application/json; charset=utf-8"), body).await;
    expect_status(resp, StatusCode::ACCEPTED).await;
}

async fn a_malformed_uuid_in_a_path_is_an_invalid_request(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    for bad in ["x", "1234", "%00", "00000000-0000-0000-0000-00000000000g", "{id}"] {
        let resp = app.get_member(&me.access, bad).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        let resp = app.delete_auth(&format!("/api/v1/auth/sessions/{bad}"), &me.access).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

async fn an_unknown_route_is_a_not_found_problem(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    for path in [
        "/",
        "/nope",
        "/api/v1",
        "/api/v1/nope",
        "/api/v2/members/me",
        "/api/v1/members/me/extra",
        "/api/v1/auth/otp/verify/again",
    ] {
        assert_problem(app.get(path).await, StatusCode::NOT_FOUND, "not_found").await;
        let resp = app.post_json(path, &json!({})).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    }
    // A known path with another method is refused with a problem too.
    for (method, path) in [
        (Method::GET, OTP),
        (Method::PUT, "/api/v1/auth/token/refresh"),
        (Method::POST, "/health/live"),
    ] {
        let resp = app.client.request(method.clone(), app.url(path)).send().await.unwrap();
        let status = resp.status();
        let code = if status == StatusCode::METHOD_NOT_ALLOWED {
            "method_not_allowed"
        } else {
            "not_found"
        };
        assert!(
            status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::NOT_FOUND,
            "{method} {path}: 405 or 404, not {status}"
        );
        assert_problem(resp, status, code).await;
    }
}

/// `header.payload.signature` with the given parts, base64url-encoded.
fn assemble(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{}", enc(header), enc(claims), URL_SAFE_NO_PAD.encode(signature))
}

async fn forged_tokens_are_unauthorized(wiring: Wiring) {
    let key = TestKey::generate();
    let key_path = key.path().to_owned();
    let app = spawn_app_with(wiring, move |s| s.jwt_private_key_file = Some(key_path)).await;
    let me = app.sign_in(&phone(1)).await;
    let claims = claims_of(&me.access);
    let kid = header_of(&me.access)["kid"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();

    // Control: a token minted here with the server's key and the same claims is accepted, so the
    // refusals below are about the one thing each token gets wrong.
    let control = key.mint(&claims, Some(&kid));
    assert_eq!(app.me(&control).await["id"], me.id());
    let mut fresh_claims = claims.clone();
    fresh_claims["iat"] = json!(now);
    fresh_claims["exp"] = json!(now + 600);
    // Without a kid, too.
    let fresh = key.mint(&fresh_claims, None);
    expect_status(app.verify_token(&fresh).await, StatusCode::OK).await;

    let mut forged: Vec<(&str, String)> = Vec::new();

    // A valid token with one byte of its signature changed.
    let (signed, signature) = me.access.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[10] ^= 0x01;
    forged.push(("forged signature", format!("{signed}.{}", URL_SAFE_NO_PAD.encode(&sig))));
    // The claims changed under the original signature.
    let mut other = claims.clone();
    other["sub"] = json!(uuid::Uuid::now_v7());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
    let header_part = me.access.split('.').next().unwrap();
    forged.push(("claims swapped", format!("{header_part}.{payload}.{signature}")));
    // No signature at all.
    forged.push(("alg none", assemble(&json!({ "alg": "none", "typ": "JWT" }), &claims, b"")));
    forged.push((
        "alg none with a kid",
        assemble(&json!({ "alg": "none", "typ": "JWT", "kid": kid }), &claims, b""),
    ));
    forged.push((
        "alg none, signature dropped",
        format!("{}.", me.access.rsplit_once('.').unwrap().0),
    ));
    // HS256 keyed with the public key (the classic algorithm confusion).
    let jwks = expect_status(app.get("/.well-known/jwks.json").await, StatusCode::OK).await;
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let public_raw = URL_SAFE_NO_PAD.decode(&x).unwrap();
    let mut hs = Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(kid.clone());
    for (what, secret) in [
        ("HS256 keyed with the raw public key", public_raw.clone()),
        ("HS256 keyed with the JWK x", x.into_bytes()),
    ] {
        let token = jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        forged.push((what, token));
    }
    // Right key, wrong claims.
    let mut expired = claims.clone();
    expired["iat"] = json!(now - 1000);
    expired["exp"] = json!(now - 100);
    forged.push(("expired", key.mint(&expired, Some(&kid))));
    let mut just_expired = claims.clone();
    just_expired["exp"] = json!(now - 1);
    forged.push(("expired a second ago", key.mint(&just_expired, Some(&kid))));
    let mut audience = claims.clone();
    audience["aud"] = json!("someone-else");
    forged.push(("wrong audience", key.mint(&audience, Some(&kid))));
    let mut issuer = claims.clone();
    issuer["iss"] = json!("evil");
    forged.push(("wrong issuer", key.mint(&issuer, Some(&kid))));
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    forged.push(("no expiry", key.mint(&no_exp, Some(&kid))));
    let mut bad_sub = claims.clone();
    bad_sub["sub"] = json!("not-a-uuid");
    forged.push(("sub not a uuid", key.mint(&bad_sub, Some(&kid))));
    forged.push(("another kid", key.mint(&claims, Some("another-key"))));
    // Another key altogether.
    let stranger = TestKey::generate();
    forged.push(("another key", stranger.mint(&claims, Some(&kid))));
    // Junk.
    forged.push(("three dots", "a.b.c".to_owned()));
    forged.push(("huge", format!("{}.{}", me.access, "A".repeat(6000))));
    forged.push(("the refresh token", me.refresh.clone()));

    for (what, token) in &forged {
        let resp = app.get_me(token).await;
        assert!(!resp.status().is_server_error(), "{what}: {}", resp.status());
        let problem = assert_problem(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert!(problem["detail"].is_string(), "{what}");
        let resp = app.verify_token(token).await;
        assert_problem(resp, StatusCode::UNAUTHORIZED, "token_invalid").await;
    }
    // The genuine token still works after all that.
    assert_eq!(app.me(&me.access).await["id"], me.id());
}
