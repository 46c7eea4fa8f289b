//! Tokens and sessions: refresh, token verification, logout, the sessions list, the JWK set.

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_wirings;
use crate::helpers::{
    Wiring, assert_problem, expect_status, header_of, keys, phone, spawn_app, spawn_app_with,
};

both_wirings!(
    a_refresh_rotates_the_pair,
    a_rotated_token_presented_again_within_the_grace_gets_the_same_new_pair,
    a_rotated_token_presented_after_the_grace_revokes_the_session,
    a_garbage_refresh_token_is_invalid,
    token_verify_tells_who_a_valid_token_belongs_to,
    token_verify_refuses_garbage_and_logged_out_tokens,
    logout_ends_the_session_at_once,
    the_sessions_list_marks_the_current_one_and_keeps_the_user_agent,
    a_member_revokes_another_of_their_sessions,
    another_members_session_cannot_be_revoked,
    a_session_id_must_be_a_uuid,
    the_jwk_set_holds_the_ed25519_key_that_verifies_access_tokens,
);

async fn a_refresh_rotates_the_pair(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let body = expect_status(app.refresh(&me.refresh).await, StatusCode::OK).await;
    assert_eq!(keys(&body), ["access_token", "expires_in", "refresh_token", "token_type"]);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let refresh = body["refresh_token"].as_str().unwrap();
    assert_ne!(refresh, me.refresh);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(app.me(access).await["id"], me.id());
    // The new refresh token rotates again.
    let next = expect_status(app.refresh(refresh).await, StatusCode::OK).await;
    assert_ne!(next["refresh_token"], refresh);
}

async fn a_rotated_token_presented_again_within_the_grace_gets_the_same_new_pair(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let first = expect_status(app.refresh(&me.refresh).await, StatusCode::OK).await;
    let again = expect_status(app.refresh(&me.refresh).await, StatusCode::OK).await;
    assert_eq!(first["refresh_token"], again["refresh_token"]);
    for body in [&first, &again] {
        assert_eq!(app.me(body["access_token"].as_str().unwrap()).await["id"], me.id());
    }
    // The session is alive: the new token rotates on.
    expect_status(app.refresh(first["refresh_token"].as_str().unwrap()).await, StatusCode::OK)
        .await;
}

async fn a_rotated_token_presented_after_the_grace_revokes_the_session(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.members.refresh_grace_secs = 0;
        s.members.otp_limits.resend_interval_secs = 0;
    })
    .await;
    let me = app.sign_in(&phone(1)).await;
    let other_session = app.sign_in(&phone(1)).await;
    let rotated = expect_status(app.refresh(&me.refresh).await, StatusCode::OK).await;
    let new_access = rotated["access_token"].as_str().unwrap();
    let new_refresh = rotated["refresh_token"].as_str().unwrap();

    assert_problem(
        app.refresh(&me.refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;
    // The whole session is gone: its access tokens, old and new, and its newest refresh token.
    assert_problem(app.get_me(new_access).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_problem(app.get_me(&me.access).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_problem(
        app.refresh(new_refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_invalid",
    )
    .await;
    // The member's other session is untouched.
    assert_eq!(app.me(&other_session.access).await["id"], me.id());
    assert_eq!(app.sessions(&other_session.access).await.len(), 1);
    expect_status(app.refresh(&other_session.refresh).await, StatusCode::OK).await;
}

async fn a_garbage_refresh_token_is_invalid(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let long = "x".repeat(5000);
    for garbage in ["garbage", "", long.as_str(), me.access.as_str()] {
        assert_problem(
            app.refresh(garbage).await,
            StatusCode::UNAUTHORIZED,
            "refresh_token_invalid",
        )
        .await;
    }
}

async fn token_verify_tells_who_a_valid_token_belongs_to(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let body = expect_status(app.verify_token(&me.access).await, StatusCode::OK).await;
    assert_eq!(keys(&body), ["expires_at", "member_id", "session_id", "valid"]);
    assert_eq!(body["valid"], true);
    assert_eq!(body["member_id"], me.id());
    let sessions = app.sessions(&me.access).await;
    assert_eq!(body["session_id"], sessions[0]["id"]);
    let expires_at: DateTime<Utc> = body["expires_at"].as_str().unwrap().parse().unwrap();
    let left = (expires_at - Utc::now()).num_seconds();
    assert!((880..=901).contains(&left), "expires in about 900 s: {left}");
}

async fn token_verify_refuses_garbage_and_logged_out_tokens(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    for garbage in ["garbage", "", "a.b.c", me.refresh.as_str()] {
        assert_problem(app.verify_token(garbage).await, StatusCode::UNAUTHORIZED, "token_invalid")
            .await;
    }
    expect_status(app.logout(&me.access).await, StatusCode::NO_CONTENT).await;
    assert_problem(app.verify_token(&me.access).await, StatusCode::UNAUTHORIZED, "token_invalid")
        .await;
}

async fn logout_ends_the_session_at_once(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_limits.resend_interval_secs = 0).await;
    let me = app.sign_in(&phone(1)).await;
    let elsewhere = app.sign_in(&phone(1)).await;

    let resp = app.logout(&me.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.text().await.unwrap().is_empty());

    assert_problem(app.get_me(&me.access).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_problem(app.logout(&me.access).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_problem(
        app.refresh(&me.refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_invalid",
    )
    .await;
    // Only that session ended.
    let sessions = app.sessions(&elsewhere.access).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["current"], true);
    expect_status(app.refresh(&elsewhere.refresh).await, StatusCode::OK).await;
}

async fn the_sessions_list_marks_the_current_one_and_keeps_the_user_agent(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_limits.resend_interval_secs = 0).await;
    let phone_app = app.sign_in_as(&phone(1), Some("phone-app/1.0")).await;
    let web = app.sign_in_as(&phone(1), Some("web/2.0")).await;

    let from_web = app.sessions(&web.access).await;
    assert_eq!(from_web.len(), 2);
    for item in &from_web {
        assert_eq!(keys(item), ["created_at", "current", "id", "last_used_at", "user_agent"]);
    }
    // Newest first.
    assert_eq!(from_web[0]["user_agent"], "web/2.0");
    assert_eq!(from_web[0]["current"], true);
    assert_eq!(from_web[1]["user_agent"], "phone-app/1.0");
    assert_eq!(from_web[1]["current"], false);
    let created = |s: &Value| s["created_at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    assert!(created(&from_web[0]) >= created(&from_web[1]));

    let from_phone = app.sessions(&phone_app.access).await;
    let current: Vec<_> = from_phone.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "phone-app/1.0");
    assert_eq!(current[0]["id"], from_web[1]["id"]);

    // Another member sees only their own.
    let stranger = app.sign_in(&phone(2)).await;
    let theirs = app.sessions(&stranger.access).await;
    assert_eq!(theirs.len(), 1);
    assert!(theirs[0]["user_agent"].is_null(), "no user agent was sent");
}

async fn a_member_revokes_another_of_their_sessions(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_limits.resend_interval_secs = 0).await;
    let old = app.sign_in(&phone(1)).await;
    let new = app.sign_in(&phone(1)).await;
    let sessions = app.sessions(&new.access).await;
    let old_id =
        sessions.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();

    let resp = app.delete_auth(&format!("/api/v1/auth/sessions/{old_id}"), &new.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    assert_problem(app.get_me(&old.access).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_problem(
        app.refresh(&old.refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_invalid",
    )
    .await;
    let left = app.sessions(&new.access).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["current"], true);

    // Revoking one's own current session works like a logout.
    let own = left[0]["id"].as_str().unwrap();
    let resp = app.delete_auth(&format!("/api/v1/auth/sessions/{own}"), &new.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_problem(app.get_me(&new.access).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn another_members_session_cannot_be_revoked(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let victim = app.sign_in(&phone(1)).await;
    let attacker = app.sign_in(&phone(2)).await;
    let victim_session = app.sessions(&victim.access).await[0]["id"].as_str().unwrap().to_owned();

    let resp =
        app.delete_auth(&format!("/api/v1/auth/sessions/{victim_session}"), &attacker.access).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    let unknown = uuid::Uuid::now_v7();
    let resp = app.delete_auth(&format!("/api/v1/auth/sessions/{unknown}"), &attacker.access).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;

    assert_eq!(app.me(&victim.access).await["id"], victim.id());
    expect_status(app.refresh(&victim.refresh).await, StatusCode::OK).await;
}

async fn a_session_id_must_be_a_uuid(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    for bad in ["not-a-uuid", "123", "0196c0c4-ffff-7fff-bfff-zzzzzzzzzzzz"] {
        let resp = app.delete_auth(&format!("/api/v1/auth/sessions/{bad}"), &me.access).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    assert_eq!(app.sessions(&me.access).await.len(), 1);
}

async fn the_jwk_set_holds_the_ed25519_key_that_verifies_access_tokens(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let body = expect_status(app.get("/.well-known/jwks.json").await, StatusCode::OK).await;
    let key = &body["keys"][0];
    assert_eq!(body["keys"].as_array().unwrap().len(), 1);
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    let kid = key["kid"].as_str().expect("a kid");
    assert!(!kid.is_empty());
    assert!(key.get("d").is_none(), "never the private part");

    let header = header_of(&me.access);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], kid);

    let set: JwkSet = serde_json::from_value(body.clone()).unwrap();
    let jwk = set.find(kid).expect("the token's key is in the set");
    let decoding = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["onboard"]);
    validation.set_audience(&["onboard-api"]);
    let data = jsonwebtoken::decode::<Value>(&me.access, &decoding, &validation)
        .expect("the token verifies");
    let claims = data.claims;
    assert_eq!(claims["sub"], me.id());
    for claim in ["sid", "iat", "exp", "jti"] {
        assert!(!claims[claim].is_null(), "claim {claim}");
    }
    let workspace = me.member["current_group"].clone();
    assert!(workspace.is_string(), "the personal workspace is current");
    assert_eq!(claims["grp"], workspace, "grp names the current group");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
}
