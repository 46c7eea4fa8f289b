//! `/compat/connect-hub`: the Django connect-hub's calls and error shapes
//! (`shared/spec/compat.md`).

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{TestApp, Wiring, expect_status, keys, phone, spawn_app, spawn_app_with};

both_wirings!(
    a_seed_client_registers_logs_in_redeems_and_refreshes,
    both_path_styles_are_served_with_or_without_the_slash,
    register_and_login_errors_have_the_seeds_shapes,
    redeeming_is_refused_with_409_and_an_error_message,
    the_profile_needs_a_valid_token,
    a_four_digit_code_sent_as_a_number_with_its_zero_lost_registers,
);

const BASE: &str = "/compat/connect-hub";

fn at(path: &str) -> String {
    format!("{BASE}{path}")
}

/// Asserts a status and a plain JSON body (not problem+json); returns the body.
async fn seed_answer(resp: Response, status: StatusCode) -> Value {
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = expect_status(resp, status).await;
    assert!(content_type.starts_with("application/json"), "{content_type}: {body}");
    body
}

const PROFILE_KEYS: [&str; 5] =
    ["connections_invited_clients", "id", "invitation_code", "phone", "someone_invitation_code"];

impl TestApp {
    /// Step one of register or login: the echoed code.
    async fn hub_code(&self, call: &str, phone: &str) -> String {
        let resp = self.post_json(&at(call), &json!({ "phone": phone })).await;
        let body = seed_answer(resp, StatusCode::OK).await;
        assert_eq!(keys(&body), ["phone", "sms_code"]);
        assert_eq!(body["phone"], phone);
        // A number, as the seed answered it.
        body["sms_code"].as_u64().unwrap().to_string()
    }

    /// Registers `phone` (both steps); answers the second step's body.
    async fn hub_register(&self, phone: &str) -> Value {
        let code = self.hub_code("/api/register/", phone).await;
        let resp = self
            .post_json(&at("/api/register/"), &json!({ "phone": phone, "sms_code": code }))
            .await;
        seed_answer(resp, StatusCode::CREATED).await
    }

    async fn hub_profile(&self, token: &str) -> Value {
        seed_answer(self.get_auth(&at("/api/clients/profile/"), token).await, StatusCode::OK).await
    }
}

fn token(body: &Value) -> &str {
    body["access_token"].as_str().unwrap_or_else(|| panic!("access_token in {body}"))
}

async fn a_seed_client_registers_logs_in_redeems_and_refreshes(wiring: Wiring) {
    // Register then log in at once: no wait between the two codes.
    let app = spawn_app_with(wiring, |s| s.members.otp_limits.resend_interval_secs = 0).await;
    let ann = app.hub_register(&phone(1)).await;
    assert_eq!(
        keys(&ann),
        ["access", "access_token", "id", "invitation_code", "phone", "refresh", "user_id"]
    );
    assert_eq!(ann["id"], ann["user_id"]);
    assert_eq!(ann["access"], ann["access_token"]);
    assert_eq!(ann["phone"], phone(1));
    let ann_code = ann["invitation_code"].as_str().unwrap();

    // Bob registers, then logs in again (the code sent as a number this time).
    app.hub_register(&phone(2)).await;
    let code = app.hub_code("/api/login/", &phone(2)).await;
    let number: u64 = code.parse().unwrap();
    let resp =
        app.post_json(&at("/api/login/"), &json!({ "phone": phone(2), "sms_code": number })).await;
    let bob = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(keys(&bob), ["access", "access_token", "id", "phone", "refresh"]);

    let profile = app.hub_profile(token(&bob)).await;
    assert_eq!(keys(&profile), PROFILE_KEYS);
    assert_eq!(profile["someone_invitation_code"], Value::Null);
    assert_eq!(profile["connections_invited_clients"], json!([]));
    assert_eq!(profile["id"], bob["id"]);

    // The README's body (`invitation_code`) redeems, as does `someone_invitation_code`.
    let resp = app
        .patch_auth(
            &at("/api/clients/profile/"),
            token(&bob),
            &json!({ "invitation_code": ann_code }),
        )
        .await;
    let profile = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(profile["someone_invitation_code"], ann_code);
    let ann_profile = app.hub_profile(token(&ann)).await;
    assert_eq!(ann_profile["connections_invited_clients"], json!(["+7******0002"]));

    // Refresh: always rotated; the new access token works.
    let resp =
        app.post_json(&at("/api/token/refresh/"), &json!({ "refresh": bob["refresh"] })).await;
    let rotated = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(keys(&rotated), ["access", "refresh"]);
    assert_ne!(rotated["refresh"], bob["refresh"]);
    let again = app.hub_profile(rotated["access"].as_str().unwrap()).await;
    assert_eq!(again["someone_invitation_code"], ann_code);
}

async fn both_path_styles_are_served_with_or_without_the_slash(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let code = app.hub_code("/api/clients/register", &phone(1)).await;
    let resp = app
        .post_json(&at("/api/clients/register"), &json!({ "phone": phone(1), "sms_code": code }))
        .await;
    let ann = seed_answer(resp, StatusCode::CREATED).await;
    for path in ["/api/clients/profile", "/api/profile/", "/api/profile"] {
        let resp = app.get_auth(&at(path), token(&ann)).await;
        assert_eq!(seed_answer(resp, StatusCode::OK).await["id"], ann["id"], "{path}");
    }
    let resp = app.post_json(&at("/api/clients/login"), &json!({ "phone": phone(1) })).await;
    // The code of the registration was just sent: the resend interval holds.
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let resp = app
        .post_json(&at("/api/clients/token/refresh"), &json!({ "refresh": ann["refresh"] }))
        .await;
    seed_answer(resp, StatusCode::OK).await;
}

async fn register_and_login_errors_have_the_seeds_shapes(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let resp = app.post_json(&at("/api/register/"), &json!({ "phone": "12345" })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "phone": ["Please enter a valid phone number that starts with \"+\""] })
    );
    let resp = app.post_json(&at("/api/register/"), &json!({})).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "phone": ["This field is required."] })
    );
    let resp = app.post_json(&at("/api/register/"), &json!("+79170000001")).await;
    let body = seed_answer(resp, StatusCode::BAD_REQUEST).await;
    assert_eq!(keys(&body), ["non_field_errors"]);

    // A wrong code (a number, a string, or not a code at all).
    let code = app.hub_code("/api/register/", &phone(1)).await;
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    for bad in [json!(wrong), json!(wrong.parse::<u32>().unwrap()), json!({ "x": 1 }), json!("abc")]
    {
        let resp = app
            .post_json(&at("/api/register/"), &json!({ "phone": phone(1), "sms_code": bad }))
            .await;
        assert_eq!(
            seed_answer(resp, StatusCode::BAD_REQUEST).await,
            json!({ "sms_code": "The code does not match or is outdated" }),
            "{bad}"
        );
    }
    // Sending codes too often: 429 {"detail"}.
    let resp = app.post_json(&at("/api/register/"), &json!({ "phone": phone(1) })).await;
    assert_eq!(keys(&seed_answer(resp, StatusCode::TOO_MANY_REQUESTS).await), ["detail"]);
    // The right code still registers (two wrong guesses counted, of five).
    let resp =
        app.post_json(&at("/api/register/"), &json!({ "phone": phone(1), "sms_code": code })).await;
    seed_answer(resp, StatusCode::CREATED).await;

    // Registered already: 400 {"phone": [...]}, with or without a code.
    for body in [json!({ "phone": phone(1) }), json!({ "phone": phone(1), "sms_code": code })] {
        let resp = app.post_json(&at("/api/register/"), &body).await;
        let body = seed_answer(resp, StatusCode::BAD_REQUEST).await;
        assert_eq!(keys(&body), ["phone"]);
        assert_eq!(body["phone"][0], "client with this phone already exists.");
    }
    // Logging in with an unknown phone: 400 {"error_message": ...}, with or without a code.
    for body in [json!({ "phone": phone(2) }), json!({ "phone": phone(2), "sms_code": "123456" })] {
        let resp = app.post_json(&at("/api/login/"), &body).await;
        assert_eq!(
            seed_answer(resp, StatusCode::BAD_REQUEST).await,
            json!({ "error_message": "There is no user with this phone number" })
        );
    }
    // Logging in with a wrong code.
    let resp =
        app.post_json(&at("/api/login/"), &json!({ "phone": phone(1), "sms_code": 1 })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "sms_code": "The code does not match or is outdated" })
    );
    // The password login of the seed (`/api/token/`) is not served.
    let resp =
        app.post_json(&at("/api/token/"), &json!({ "phone": phone(1), "password": "x" })).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

async fn redeeming_is_refused_with_409_and_an_error_message(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let ann = app.hub_register(&phone(1)).await;
    let bob = app.hub_register(&phone(2)).await;
    let cat = app.hub_register(&phone(3)).await;
    let patch = |who: &Value, code: Value| {
        let token = token(who).to_owned();
        let app = &app;
        async move {
            app.patch_auth(
                &at("/api/clients/profile/"),
                &token,
                &json!({ "someone_invitation_code": code }),
            )
            .await
        }
    };
    let refused = |body: Value| {
        assert_eq!(keys(&body), ["error_message"], "{body}");
        assert!(body["error_message"].is_string());
    };
    refused(seed_answer(patch(&ann, json!("ZZZZZZ")).await, StatusCode::CONFLICT).await);
    refused(
        seed_answer(patch(&ann, ann["invitation_code"].clone()).await, StatusCode::CONFLICT).await,
    );
    // Bob takes Ann's code; then a second code, and Ann taking Bob's (a cycle), are refused.
    seed_answer(patch(&bob, ann["invitation_code"].clone()).await, StatusCode::OK).await;
    refused(
        seed_answer(patch(&bob, cat["invitation_code"].clone()).await, StatusCode::CONFLICT).await,
    );
    refused(
        seed_answer(patch(&ann, bob["invitation_code"].clone()).await, StatusCode::CONFLICT).await,
    );
    // No code at all: as the seed, no client has it.
    let resp = app.patch_auth(&at("/api/clients/profile/"), token(&cat), &json!({})).await;
    assert_eq!(
        seed_answer(resp, StatusCode::CONFLICT).await,
        json!({ "error_message": "The client with such an invitation code was not found" })
    );
}

async fn the_profile_needs_a_valid_token(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let resp = app.get(&at("/api/clients/profile/")).await;
    assert_eq!(
        seed_answer(resp, StatusCode::UNAUTHORIZED).await,
        json!({ "detail": "Authentication credentials were not provided." })
    );
    let resp = app.get_auth(&at("/api/clients/profile/"), "garbage").await;
    let body = seed_answer(resp, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["code"], "token_not_valid");
    let resp = app
        .patch_auth(
            &at("/api/clients/profile/"),
            "garbage",
            &json!({ "invitation_code": "AAAAAA" }),
        )
        .await;
    assert_eq!(seed_answer(resp, StatusCode::UNAUTHORIZED).await["code"], "token_not_valid");
    let resp = app.post_json(&at("/api/token/refresh/"), &json!({ "refresh": "nope" })).await;
    let body = seed_answer(resp, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["code"], "token_not_valid");
    assert!(body["detail"].is_string());
}

async fn a_four_digit_code_sent_as_a_number_with_its_zero_lost_registers(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.members.otp_length = 4;
        s.members.max_sends_per_ip_hour = 10_000;
    })
    .await;
    for n in 0..300 {
        let phone = phone(100 + n);
        // Echoed as a number, as the seed did: a code with a leading zero arrives shorter.
        let code = app.hub_code("/api/register/", &phone).await;
        assert!(code.len() <= 4, "{code}");
        if code.len() == 4 {
            continue;
        }
        let number: u64 = code.parse().unwrap();
        let resp = app
            .post_json(&at("/api/register/"), &json!({ "phone": phone, "sms_code": number }))
            .await;
        seed_answer(resp, StatusCode::CREATED).await;
        return;
    }
    panic!("no code with a leading zero in 300 codes");
}
