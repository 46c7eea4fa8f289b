//! The seeds' clients keep working (issue 19): refresh as simplejwt ran it on each seed, the
//! seeds' access-token lifetimes, verify of a refresh token, member_invitation's accept and
//! national phones, the seeds' error shapes and texts, and 405 with `Allow` on every API.
//! Each expectation is the original service's behaviour (`shared/spec/compat.md`).

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{
    TestApp, Wiring, assert_problem, claims_of, expect_status, keys, phone, spawn_app,
    spawn_app_with,
};

both_wirings!(
    a_referral_api_client_refreshes_three_times_past_the_grace_with_its_first_refresh_token,
    a_referral_api_refresh_token_still_dies_at_logout,
    a_connect_hub_client_refreshes_with_a_token_rotation_already_used,
    a_seed_token_refreshes_only_on_its_own_api,
    access_tokens_live_as_long_as_on_the_seed_and_the_lifetime_is_configurable,
    referral_api_verify_takes_a_live_refresh_token,
    a_member_invitation_invite_to_a_national_number_accepted_then_read_back,
    member_invitation_refuses_text_that_is_no_dialable_number,
    member_invitation_errors_carry_status_and_the_seeds_korean_texts,
    connect_hub_answers_the_seeds_shapes_and_strings,
    referral_api_answers_in_russian,
    a_wrong_method_answers_405_with_allow_on_every_api,
);

/// A short reuse grace, so that "more than the grace later" is a second away (the seeds'
/// clients refresh 10 s apart and more; the default grace is 10 s).
const GRACE_SECS: u64 = 1;

async fn grace_passes() {
    tokio::time::sleep(Duration::from_millis(GRACE_SECS * 1000 + 300)).await;
}

/// Asserts a status and a JSON body (not problem+json); returns the body.
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

const REF: &str = "/compat/referral-api";
const HUB: &str = "/compat/connect-hub";
const MI: &str = "/compat/member-invitation";

impl TestApp {
    /// Signs in on referral-api: `(access, refresh)`.
    async fn ref_client_sign_in(&self, phone: &str) -> (String, String) {
        let resp = self
            .post_json(&format!("{REF}/api/v1/auth/send_code/"), &json!({ "phone": phone }))
            .await;
        let code = seed_answer(resp, StatusCode::OK).await["code"].clone();
        let resp = self
            .post_json(
                &format!("{REF}/api/v1/auth/jwt/get_by_phone/"),
                &json!({ "phone": phone, "code": code }),
            )
            .await;
        let body = seed_answer(resp, StatusCode::OK).await;
        (body["access"].as_str().unwrap().to_owned(), body["refresh"].as_str().unwrap().to_owned())
    }

    async fn ref_refresh_token(&self, refresh: &str) -> Response {
        self.post_json(&format!("{REF}/api/v1/auth/jwt/refresh/"), &json!({ "refresh": refresh }))
            .await
    }

    /// Registers on connect-hub: the 201 body.
    async fn hub_sign_up(&self, phone: &str) -> Value {
        let resp =
            self.post_json(&format!("{HUB}/api/register/"), &json!({ "phone": phone })).await;
        let sent = seed_answer(resp, StatusCode::OK).await;
        assert!(sent["sms_code"].is_u64(), "the code is a number, as the seed's: {sent}");
        let resp = self
            .post_json(
                &format!("{HUB}/api/register/"),
                &json!({ "phone": phone, "sms_code": sent["sms_code"] }),
            )
            .await;
        seed_answer(resp, StatusCode::CREATED).await
    }

    async fn hub_refresh_token(&self, refresh: &str) -> Response {
        self.post_json(&format!("{HUB}/api/token/refresh/"), &json!({ "refresh": refresh })).await
    }
}

async fn a_referral_api_client_refreshes_three_times_past_the_grace_with_its_first_refresh_token(
    wiring: Wiring,
) {
    let app = spawn_app_with(wiring, |s| s.members.refresh_grace_secs = GRACE_SECS).await;
    let (_, refresh) = app.ref_client_sign_in(&phone(1)).await;

    // The seed's client keeps the sign-in refresh token and reuses it, well apart.
    for round in 0..3 {
        grace_passes().await;
        let resp = app.ref_refresh_token(&refresh).await;
        let body = seed_answer(resp, StatusCode::OK).await;
        assert_eq!(keys(&body), ["access"], "round {round}: only an access token, as the seed");
        let access = body["access"].as_str().unwrap();
        let resp = app.get_auth(&format!("{REF}/api/v1/users/current_user/"), access).await;
        assert_eq!(seed_answer(resp, StatusCode::OK).await["phone"], phone(1), "round {round}");
    }
}

async fn a_referral_api_refresh_token_still_dies_at_logout(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let (access, refresh) = app.ref_client_sign_in(&phone(1)).await;
    let resp = app.ref_refresh_token(&refresh).await;
    let fresh = seed_answer(resp, StatusCode::OK).await["access"].as_str().unwrap().to_owned();

    expect_status(app.logout(&access).await, StatusCode::NO_CONTENT).await;

    let resp = app.ref_refresh_token(&refresh).await;
    assert_eq!(
        seed_answer(resp, StatusCode::UNAUTHORIZED).await,
        json!({ "detail": "Токен недействителен или просрочен", "code": "token_not_valid" })
    );
    // Every access token of the session dies too, the refreshed one included.
    let resp = app.get_auth(&format!("{REF}/api/v1/users/current_user/"), &fresh).await;
    assert_eq!(seed_answer(resp, StatusCode::UNAUTHORIZED).await["code"], "token_not_valid");
}

async fn a_connect_hub_client_refreshes_with_a_token_rotation_already_used(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.refresh_grace_secs = GRACE_SECS).await;
    let signed = app.hub_sign_up(&phone(1)).await;
    let first = signed["refresh"].as_str().unwrap().to_owned();

    let resp = app.hub_refresh_token(&first).await;
    let rotated = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(keys(&rotated), ["access", "refresh"]);
    assert_ne!(rotated["refresh"], signed["refresh"], "rotated, as the seed's simplejwt");

    // The seed never blacklisted: the first token still works, well past any grace.
    grace_passes().await;
    let resp = app.hub_refresh_token(&first).await;
    let again = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(again["refresh"], rotated["refresh"]);
    let resp = app.hub_refresh_token(rotated["refresh"].as_str().unwrap()).await;
    let next = seed_answer(resp, StatusCode::OK).await;
    let resp = app
        .get_auth(&format!("{HUB}/api/clients/profile/"), next["access"].as_str().unwrap())
        .await;
    assert_eq!(seed_answer(resp, StatusCode::OK).await["phone"], phone(1));

    // Logout ends the session: every token of it, old or new, at once.
    let access = next["access"].as_str().unwrap();
    expect_status(app.logout(access).await, StatusCode::NO_CONTENT).await;
    for token in [&first, rotated["refresh"].as_str().unwrap(), next["refresh"].as_str().unwrap()] {
        let resp = app.hub_refresh_token(token).await;
        assert_eq!(
            seed_answer(resp, StatusCode::UNAUTHORIZED).await,
            json!({ "detail": "Token is invalid or expired", "code": "token_not_valid" })
        );
    }
}

async fn a_seed_token_refreshes_only_on_its_own_api(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let (_, referral) = app.ref_client_sign_in(&phone(1)).await;
    let hub = app.hub_sign_up(&phone(2)).await;
    let v1 = app.sign_in(&phone(3)).await;

    // A token never crosses into a laxer (or stricter) refresh rule.
    assert_problem(app.refresh(&referral).await, StatusCode::UNAUTHORIZED, "refresh_token_invalid")
        .await;
    let resp = app.hub_refresh_token(&referral).await;
    assert_eq!(seed_answer(resp, StatusCode::UNAUTHORIZED).await["code"], "token_not_valid");
    let resp = app.ref_refresh_token(hub["refresh"].as_str().unwrap()).await;
    assert_eq!(seed_answer(resp, StatusCode::UNAUTHORIZED).await["code"], "token_not_valid");
    let resp = app.ref_refresh_token(&v1.refresh).await;
    assert_eq!(seed_answer(resp, StatusCode::UNAUTHORIZED).await["code"], "token_not_valid");
    // And refused tries change nothing: each still refreshes where it belongs.
    seed_answer(app.ref_refresh_token(&referral).await, StatusCode::OK).await;
    seed_answer(app.hub_refresh_token(hub["refresh"].as_str().unwrap()).await, StatusCode::OK)
        .await;
    expect_status(app.refresh(&v1.refresh).await, StatusCode::OK).await;
}

fn lifetime(access: &str) -> i64 {
    let claims = claims_of(access);
    claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()
}

async fn access_tokens_live_as_long_as_on_the_seed_and_the_lifetime_is_configurable(
    wiring: Wiring,
) {
    let app = spawn_app(wiring).await;
    let (access, refresh) = app.ref_client_sign_in(&phone(1)).await;
    assert_eq!(lifetime(&access), 600 * 60, "referral-api's example settings: 600 minutes");
    let resp = app.ref_refresh_token(&refresh).await;
    let refreshed = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(lifetime(refreshed["access"].as_str().unwrap()), 600 * 60);
    let hub = app.hub_sign_up(&phone(2)).await;
    assert_eq!(lifetime(hub["access"].as_str().unwrap()), 60 * 60, "connect-hub: 60 minutes");
    let v1 = app.sign_in(&phone(3)).await;
    assert_eq!(lifetime(&v1.access), 900, "/api/v1 keeps its own");
    drop(app);

    let app = spawn_app_with(wiring, |s| {
        s.members.fixed_access_ttl_secs = 120;
        s.members.keeps_old_access_ttl_secs = 240;
    })
    .await;
    assert_eq!(lifetime(&app.ref_client_sign_in(&phone(1)).await.0), 120);
    assert_eq!(lifetime(app.hub_sign_up(&phone(2)).await["access"].as_str().unwrap()), 240);
}

async fn referral_api_verify_takes_a_live_refresh_token(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let (access, refresh) = app.ref_client_sign_in(&phone(1)).await;
    let verify = |token: String| {
        let app = &app;
        async move {
            app.post_json(&format!("{REF}/api/v1/auth/jwt/verify/"), &json!({ "token": token }))
                .await
        }
    };
    assert_eq!(seed_answer(verify(refresh.clone()).await, StatusCode::OK).await, json!({}));
    assert_eq!(seed_answer(verify(access.clone()).await, StatusCode::OK).await, json!({}));

    expect_status(app.logout(&access).await, StatusCode::NO_CONTENT).await;
    for token in [refresh, access, "nope".to_owned()] {
        assert_eq!(
            seed_answer(verify(token).await, StatusCode::UNAUTHORIZED).await,
            json!({ "detail": "Токен недействителен или просрочен", "code": "token_not_valid" })
        );
    }
}

/// Creates a group owned by `token` through `/api/v1`; answers its id.
async fn group(app: &TestApp, token: &str, slug: &str) -> String {
    let body = json!({ "name": slug.to_uppercase(), "slug": slug });
    let resp = app.call(Method::POST, "/api/v1/groups", token, Some(&body)).await;
    expect_status(resp, StatusCode::CREATED).await["id"].as_str().unwrap().to_owned()
}

async fn mi_invite(app: &TestApp, token: &str, body: &Value) -> Response {
    app.call(Method::POST, &format!("{MI}/invite"), token, Some(body)).await
}

async fn a_member_invitation_invite_to_a_national_number_accepted_then_read_back(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    let group_id = group(&app, &owner.access, "team").await;

    // The seed's client sends the Korean national form.
    let body = json!({
        "inviteGroupId": group_id,
        "inviteMemberName": "soon",
        "inviteMemberPhoneNumber": "010-1234-5678",
        "inviteMemberEmail": "soon@example.com",
    });
    let created = seed_answer(mi_invite(&app, &owner.access, &body).await, StatusCode::OK).await;
    let code = created["inviteCode"].as_str().unwrap();

    // The invitee signs in with the number in full and accepts.
    let invitee = app.sign_in("+821012345678").await;
    let resp = app.get_auth(&format!("{MI}/accept/{code}"), &invitee.access).await;
    assert_eq!(
        seed_answer(resp, StatusCode::OK).await,
        json!({ "msg": "초대가 성공적으로 완료되었습니다." })
    );

    // Read back: the member the invite described.
    let resp = app.get_auth(&format!("{MI}/member/{}", invitee.id()), &owner.access).await;
    assert_eq!(
        seed_answer(resp, StatusCode::OK).await,
        json!({
            "id": invitee.id(),
            "name": "soon",
            "phoneNumber": "+821012345678",
            "email": "soon@example.com",
        })
    );
}

async fn member_invitation_refuses_text_that_is_no_dialable_number(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    group(&app, &owner.access, "team").await;
    for raw in ["135135", "fd1234", "+123456789"] {
        let body = json!({
            "inviteGroupId": "team",
            "inviteMemberName": "soon",
            "inviteMemberPhoneNumber": raw,
        });
        let resp = mi_invite(&app, &owner.access, &body).await;
        assert_eq!(
            seed_answer(resp, StatusCode::BAD_REQUEST).await,
            json!({ "status": "BAD_REQUEST", "errorCode": "BAD_REQUEST", "errorMessage": "잘못된 요청입니다." }),
            "{raw}"
        );
    }
}

async fn member_invitation_errors_carry_status_and_the_seeds_korean_texts(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    group(&app, &owner.access, "team").await;
    let error = |status: &str, code: &str, message: &str| json!({ "status": status, "errorCode": code, "errorMessage": message });

    let resp = app.get_auth(&format!("{MI}/member/0"), &owner.access).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        error("BAD_REQUEST", "BAD_REQUEST", "잘못된 요청입니다.")
    );
    for id in ["7", &uuid::Uuid::now_v7().to_string()] {
        let resp = app.get_auth(&format!("{MI}/member/{id}"), &owner.access).await;
        assert_eq!(
            seed_answer(resp, StatusCode::NOT_FOUND).await,
            error("NOT_FOUND", "ACCOUNT_NOT_FOUND", "사용자를 찾을 수 없습니다.")
        );
    }
    let resp = app.get(&format!("{MI}/member/{}", owner.id())).await;
    assert_eq!(seed_answer(resp, StatusCode::UNAUTHORIZED).await["status"], "UNAUTHORIZED");

    let resp = app.get_auth(&format!("{MI}/accept/nope"), &owner.access).await;
    assert_eq!(
        seed_answer(resp, StatusCode::NOT_FOUND).await,
        error("NOT_FOUND", "CODE_NOT_FOUND", "코드를 찾을 수 없습니다.")
    );

    let body = json!({ "inviteGroupId": "team", "inviteMemberName": "soon", "inviteMemberPhoneNumber": phone(2) });
    seed_answer(mi_invite(&app, &owner.access, &body).await, StatusCode::OK).await;
    assert_eq!(
        seed_answer(mi_invite(&app, &owner.access, &body).await, StatusCode::BAD_REQUEST).await,
        error("BAD_REQUEST", "ACCOUNT_ALREADY_REGISTERED", "이미 등록된 아이디입니다!")
    );
}

async fn connect_hub_answers_the_seeds_shapes_and_strings(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_limits.resend_interval_secs = 0).await;
    let no_user = json!({ "error_message": "There is no user with this phone number" });
    for body in [json!({}), json!({ "phone": "fd1234" }), json!({ "phone": "+79990000000" })] {
        let resp = app.post_json(&format!("{HUB}/api/login/"), &body).await;
        assert_eq!(seed_answer(resp, StatusCode::BAD_REQUEST).await, no_user, "{body}");
    }
    let resp = app.post_json(&format!("{HUB}/api/register/"), &json!({ "phone": "fd1234" })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "phone": ["Please enter a valid phone number that starts with \"+\""] })
    );

    let ann = app.hub_sign_up(&phone(1)).await;
    let resp = app.post_json(&format!("{HUB}/api/register/"), &json!({ "phone": phone(1) })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "phone": ["client with this phone already exists."] })
    );
    let resp = app.post_json(&format!("{HUB}/api/login/"), &json!({ "phone": phone(1) })).await;
    assert!(seed_answer(resp, StatusCode::OK).await["sms_code"].is_u64(), "a number");

    let access = ann["access"].as_str().unwrap();
    let resp = app
        .patch_auth(
            &format!("{HUB}/api/clients/profile/"),
            access,
            &json!({ "someone_invitation_code": "zzzzzz" }),
        )
        .await;
    assert_eq!(
        seed_answer(resp, StatusCode::CONFLICT).await,
        json!({ "error_message": "The client with such an invitation code was not found" })
    );
    // Two clients cannot invite each other.
    let bob = app.hub_sign_up(&phone(2)).await;
    let bob_access = bob["access"].as_str().unwrap();
    let resp = app
        .patch_auth(
            &format!("{HUB}/api/clients/profile/"),
            bob_access,
            &json!({ "someone_invitation_code": ann["invitation_code"] }),
        )
        .await;
    seed_answer(resp, StatusCode::OK).await;
    let resp = app
        .patch_auth(
            &format!("{HUB}/api/clients/profile/"),
            access,
            &json!({ "someone_invitation_code": bob["invitation_code"] }),
        )
        .await;
    assert_eq!(
        seed_answer(resp, StatusCode::CONFLICT).await,
        json!({ "error_message": "Clients cannot invite each other" })
    );
}

async fn referral_api_answers_in_russian(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let post = |path: &'static str, body: Value| {
        let app = &app;
        async move { app.post_json(&format!("{REF}{path}"), &body).await }
    };
    let resp = post("/api/v1/auth/send_code/", json!({})).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "phone": ["Обязательное поле."] })
    );
    let resp = post("/api/v1/auth/send_code/", json!({ "phone": "" })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "phone": ["Это поле не может быть пустым."] })
    );
    let resp =
        post("/api/v1/auth/jwt/get_by_phone/", json!({ "phone": "135135", "code": "x" })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({
            "phone": ["Введите корректный номер телефона."],
            "code": ["Требуется целочисленное значение."],
        })
    );
    let resp = post("/api/v1/auth/send_code/", json!([1])).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "non_field_errors": ["Недопустимые данные. Ожидался dictionary, но был получен list."] })
    );

    // The seed's own texts.
    let resp = post("/api/v1/auth/send_code/", json!({ "phone": phone(1) })).await;
    let code = seed_answer(resp, StatusCode::OK).await["code"].as_u64().unwrap();
    let wrong = (code + 1) % 1_000_000;
    let resp =
        post("/api/v1/auth/jwt/get_by_phone/", json!({ "phone": phone(1), "code": wrong })).await;
    assert_eq!(seed_answer(resp, StatusCode::FORBIDDEN).await, json!({ "code": "Неверный код." }));
    let resp = post(
        "/api/v1/auth/jwt/get_by_phone/",
        json!({ "phone": phone(1), "code": code, "invited_by_code": "ZZZZZZ" }),
    )
    .await;
    assert_eq!(
        seed_answer(resp, StatusCode::FORBIDDEN).await,
        json!({ "invited_by_code": "Неверный реферальный код." })
    );
    let (access, _) = app.ref_client_sign_in(&phone(2)).await;
    let me = format!("{REF}/api/v1/users/current_user/");
    let own = app.get_auth(&me, &access).await;
    let own = seed_answer(own, StatusCode::OK).await["invite_code"].clone();
    let resp = app.patch_auth(&me, &access, &json!({ "invited_by_code": own })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "invited_by_code": ["Нельзя использовать свой код."] })
    );
    let resp = app.patch_auth(&me, &access, &json!({ "invited_by_code": "ZZZZZZ" })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "invited_by_code": ["Пользователь с таким кодом не найден."] })
    );
    let resp = app.patch_auth(&me, &access, &json!({ "email": "nope" })).await;
    assert_eq!(
        seed_answer(resp, StatusCode::BAD_REQUEST).await,
        json!({ "email": ["Введите правильный адрес электронной почты."] })
    );

    // DRF's and simplejwt's.
    let resp = app.get(&me).await;
    assert_eq!(
        seed_answer(resp, StatusCode::UNAUTHORIZED).await,
        json!({ "detail": "Учетные данные не были предоставлены." })
    );
    let resp = app.get_auth(&me, "nope").await;
    assert_eq!(
        seed_answer(resp, StatusCode::UNAUTHORIZED).await,
        json!({ "detail": "Данный токен недействителен для любого типа токена", "code": "token_not_valid" })
    );
    let resp = app.get_auth(&format!("{REF}/api/v1/users/"), &access).await;
    assert_eq!(
        seed_answer(resp, StatusCode::FORBIDDEN).await,
        json!({ "detail": "У вас нет прав для выполнения этой операции." })
    );
    let resp = app.get_auth(&format!("{REF}/api/v1/users/nope/"), &access).await;
    assert_eq!(seed_answer(resp, StatusCode::NOT_FOUND).await, json!({ "detail": "Не найдено." }));
}

/// The `Allow` header of an answer, its methods sorted.
fn allow(resp: &Response) -> Vec<String> {
    let raw = resp.headers().get(reqwest::header::ALLOW).and_then(|v| v.to_str().ok());
    let mut methods: Vec<String> = raw
        .unwrap_or_default()
        .split(',')
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    methods.sort();
    methods
}

async fn a_wrong_method_answers_405_with_allow_on_every_api(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let send = |method: Method, path: &str| app.client.request(method, app.url(path)).send();

    let resp = send(Method::PUT, "/api/v1/auth/otp").await.unwrap();
    assert_eq!(allow(&resp), ["POST"]);
    assert_problem(resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    let resp = send(Method::POST, &format!("{REF}/api/v1/users/")).await.unwrap();
    assert_eq!(allow(&resp), ["GET"]);
    assert_eq!(
        seed_answer(resp, StatusCode::METHOD_NOT_ALLOWED).await,
        json!({ "detail": "Метод \"POST\" не разрешен." })
    );
    let resp = send(Method::DELETE, &format!("{REF}/api/v1/users/current_user")).await.unwrap();
    assert_eq!(allow(&resp), ["GET", "PATCH"]);

    let resp = send(Method::GET, &format!("{HUB}/api/login/")).await.unwrap();
    assert_eq!(allow(&resp), ["POST"]);
    assert_eq!(
        seed_answer(resp, StatusCode::METHOD_NOT_ALLOWED).await,
        json!({ "detail": "Method \"GET\" not allowed." })
    );

    let resp = send(Method::GET, &format!("{MI}/invite")).await.unwrap();
    assert_eq!(allow(&resp), ["POST"]);
    let body = seed_answer(resp, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(
        (&body["status"], &body["errorCode"]),
        (&json!("METHOD_NOT_ALLOWED"), &json!("METHOD_NOT_ALLOWED"))
    );

    // A path no API has is still a 404.
    let resp = send(Method::GET, "/api/v1/nothing-here").await.unwrap();
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
}
