//! Profiles: `/api/v1/members/...`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{
    CARD_KEYS, MEMBER_KEYS, Wiring, assert_problem, expect_status, first_error_field, keys, phone,
    spawn_app, spawn_app_with,
};

both_wirings!(
    me_shows_the_member_and_an_empty_invitee_list,
    patching_me_trims_names_lowercases_the_email_and_keeps_absent_fields,
    a_name_is_one_to_a_hundred_characters,
    a_malformed_email_is_refused_naming_the_field,
    an_email_belongs_to_one_member_only,
    deleting_me_ends_every_session_and_frees_the_phone_and_email,
    a_member_sees_themself_in_full_and_a_stranger_as_a_card,
    an_unknown_member_is_not_found_and_a_malformed_id_is_a_bad_request,
    the_current_group_cannot_be_set_yet_and_clears_to_null,
    every_member_call_needs_a_valid_token,
);

async fn me_shows_the_member_and_an_empty_invitee_list(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let body = app.me(&me.access).await;
    let mut expected: Vec<&str> = MEMBER_KEYS.to_vec();
    expected.extend(["invitees", "invitees_count"]);
    expected.sort_unstable();
    assert_eq!(keys(&body), expected);
    assert_eq!(body["invitees"], json!([]));
    assert_eq!(body["invitees_count"], 0);
    for key in MEMBER_KEYS {
        assert_eq!(body[key], me.member[key], "{key} as at sign-in");
    }
}

async fn patching_me_trims_names_lowercases_the_email_and_keeps_absent_fields(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let patch = json!({ "first_name": "  Anna ", "last_name": "\tLee  ", "email": " Anna.Lee@Example.COM " });
    let body = expect_status(app.patch_me(&me.access, &patch).await, StatusCode::OK).await;
    assert_eq!(keys(&body), MEMBER_KEYS);
    assert_eq!(body["first_name"], "Anna");
    assert_eq!(body["last_name"], "Lee");
    assert_eq!(body["email"], "anna.lee@example.com");
    assert_eq!(body["phone"], phone(1));

    let body = expect_status(
        app.patch_me(&me.access, &json!({ "last_name": "Kim" })).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["first_name"], "Anna");
    assert_eq!(body["last_name"], "Kim");
    assert_eq!(body["email"], "anna.lee@example.com");

    let body = expect_status(app.patch_me(&me.access, &json!({})).await, StatusCode::OK).await;
    assert_eq!(body["last_name"], "Kim");

    let profile = app.me(&me.access).await;
    assert_eq!(profile["first_name"], "Anna");
    assert_eq!(profile["last_name"], "Kim");
    assert_eq!(profile["email"], "anna.lee@example.com");
}

async fn a_name_is_one_to_a_hundred_characters(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let long = "a".repeat(101);
    for (field, value) in [("first_name", long.as_str()), ("last_name", "   "), ("first_name", "")]
    {
        let resp = app.patch_me(&me.access, &json!({ field: value })).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), field, "for {value:?}");
    }
    // Characters, not bytes: a hundred two-byte letters fit.
    let hundred = "é".repeat(100);
    let body = expect_status(
        app.patch_me(&me.access, &json!({ "first_name": hundred })).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["first_name"], hundred.as_str());
    // A refused patch changed nothing.
    assert!(app.me(&me.access).await["last_name"].is_null());
}

async fn a_malformed_email_is_refused_naming_the_field(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    for bad in ["not-an-email", "a@b", "Anna <anna@example.com>", "@example.com", ""] {
        let resp = app.patch_me(&me.access, &json!({ "email": bad, "first_name": "Anna" })).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "email", "for {bad:?}");
    }
    let profile = app.me(&me.access).await;
    assert!(profile["email"].is_null() && profile["first_name"].is_null(), "nothing changed");
}

async fn an_email_belongs_to_one_member_only(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let ann = app.sign_in(&phone(1)).await;
    let bob = app.sign_in(&phone(2)).await;
    expect_status(
        app.patch_me(&ann.access, &json!({ "email": "Ann@Example.com" })).await,
        StatusCode::OK,
    )
    .await;

    let resp = app
        .patch_me(&bob.access, &json!({ "email": "ann@example.COM", "first_name": "Bob" }))
        .await;
    assert_problem(resp, StatusCode::CONFLICT, "email_taken").await;
    let profile = app.me(&bob.access).await;
    assert!(profile["email"].is_null());
    assert!(profile["first_name"].is_null(), "a refused patch changes nothing");

    // Setting one's own address again is fine.
    let body = expect_status(
        app.patch_me(&ann.access, &json!({ "email": "ANN@example.com" })).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["email"], "ann@example.com");
    // Once Ann moves on, the address is free.
    expect_status(
        app.patch_me(&ann.access, &json!({ "email": "ann@new.example" })).await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.patch_me(&bob.access, &json!({ "email": "ann@example.com" })).await,
        StatusCode::OK,
    )
    .await;
}

async fn deleting_me_ends_every_session_and_frees_the_phone_and_email(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_limits.resend_interval_secs = 0).await;
    let me = app.sign_in(&phone(1)).await;
    let elsewhere = app.sign_in(&phone(1)).await;
    expect_status(
        app.patch_me(&me.access, &json!({ "email": "gone@example.com" })).await,
        StatusCode::OK,
    )
    .await;
    let stranger = app.sign_in(&phone(2)).await;

    let resp = app.delete_auth("/api/v1/members/me", &me.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    for session in [&me, &elsewhere] {
        assert_problem(app.get_me(&session.access).await, StatusCode::UNAUTHORIZED, "unauthorized")
            .await;
        assert_problem(
            app.verify_token(&session.access).await,
            StatusCode::UNAUTHORIZED,
            "token_invalid",
        )
        .await;
        assert_problem(
            app.refresh(&session.refresh).await,
            StatusCode::UNAUTHORIZED,
            "refresh_token_invalid",
        )
        .await;
    }

    // The phone signs up again, as a new member.
    let code = app.request_code(&phone(1)).await;
    let body = expect_status(app.verify(&phone(1), &code).await, StatusCode::OK).await;
    assert_eq!(body["created"], true);
    assert_ne!(body["member"]["id"], me.id());
    assert!(body["member"]["email"].is_null());
    let again = body["access_token"].as_str().unwrap();
    assert_eq!(app.me(again).await["id"], body["member"]["id"]);
    assert_eq!(app.sessions(again).await.len(), 1);
    // And the e-mail is free again.
    expect_status(
        app.patch_me(&stranger.access, &json!({ "email": "gone@example.com" })).await,
        StatusCode::OK,
    )
    .await;
}

async fn a_member_sees_themself_in_full_and_a_stranger_as_a_card(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let stranger_phone = "+79174444435";
    let stranger = app.sign_in(stranger_phone).await;
    let patch = json!({ "first_name": "Ivan", "last_name": "Petrov", "email": "ivan@example.com" });
    expect_status(app.patch_me(&stranger.access, &patch).await, StatusCode::OK).await;

    let body = expect_status(app.get_member(&me.access, me.id()).await, StatusCode::OK).await;
    assert_eq!(keys(&body), MEMBER_KEYS);
    let profile = app.me(&me.access).await;
    for key in MEMBER_KEYS {
        assert_eq!(body[key], profile[key], "{key}");
    }

    let card = expect_status(app.get_member(&me.access, stranger.id()).await, StatusCode::OK).await;
    assert_eq!(keys(&card), CARD_KEYS, "a card, without phone or e-mail");
    assert_eq!(card["id"], stranger.id());
    assert_eq!(card["first_name"], "Ivan");
    assert_eq!(card["last_name"], "Petrov");
    assert_eq!(card["phone_masked"], "+7******4435");
}

async fn an_unknown_member_is_not_found_and_a_malformed_id_is_a_bad_request(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_problem(app.get_member(&me.access, &unknown).await, StatusCode::NOT_FOUND, "not_found")
        .await;
    for bad in ["not-a-uuid", "42", "0196c0c4-ffff-7fff-bfff-zzzzzzzzzzzz"] {
        assert_problem(
            app.get_member(&me.access, bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
}

async fn the_current_group_cannot_be_set_yet_and_clears_to_null(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let resp = app
        .call(
            Method::PUT,
            "/api/v1/members/me/current-group",
            &me.access,
            Some(&json!({ "slug": "acme" })),
        )
        .await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;

    let resp = app.delete_auth("/api/v1/members/me/current-group", &me.access).await;
    let body = expect_status(resp, StatusCode::OK).await;
    assert_eq!(keys(&body), MEMBER_KEYS);
    assert_eq!(body["id"], me.id());
    assert!(body["current_group"].is_null());
}

async fn every_member_call_needs_a_valid_token(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let someone = uuid::Uuid::now_v7().to_string();
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/members/me".into(), None),
        (Method::PATCH, "/api/v1/members/me".into(), Some(json!({ "first_name": "X" }))),
        (Method::DELETE, "/api/v1/members/me".into(), None),
        (Method::GET, format!("/api/v1/members/{someone}"), None),
        (Method::PUT, "/api/v1/members/me/current-group".into(), Some(json!({ "slug": "acme" }))),
        (Method::DELETE, "/api/v1/members/me/current-group".into(), None),
        (Method::POST, "/api/v1/auth/logout".into(), Some(json!({}))),
        (Method::GET, "/api/v1/auth/sessions".into(), None),
        (Method::DELETE, format!("/api/v1/auth/sessions/{someone}"), None),
    ];
    for (method, path, body) in calls {
        for authorization in
            [None, Some("Bearer"), Some("Bearer not.a.jwt"), Some("Basic dXNlcjpwYXNz")]
        {
            let mut req = app.client.request(method.clone(), app.url(&path));
            if let Some(value) = authorization {
                req = req.header(reqwest::header::AUTHORIZATION, value);
            }
            if let Some(body) = &body {
                req = req.json(body);
            }
            let resp = req.send().await.unwrap();
            let www = resp.headers().get(reqwest::header::WWW_AUTHENTICATE).cloned();
            assert_problem(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
            assert_eq!(www.unwrap().to_str().unwrap(), "Bearer", "{method} {path}");
        }
    }
}
