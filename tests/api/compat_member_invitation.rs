//! `/compat/member-invitation`: the Spring member_invitation's calls and error shapes
//! (`shared/spec/compat.md`).

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{SignedIn, TestApp, Wiring, expect_status, keys, phone, spawn_app};

both_wirings!(
    an_invite_made_and_accepted_through_the_seed_api_joins_the_one_member,
    inviting_errors_have_the_seeds_shape,
    accepting_errors_have_the_seeds_shape,
    a_member_is_looked_up_by_id_as_the_caller_may_see_them,
);

const BASE: &str = "/compat/member-invitation";

fn at(path: &str) -> String {
    format!("{BASE}{path}")
}

/// Asserts a status and a plain JSON body; returns the body.
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

/// Asserts a Spring error answer with this status and `errorCode`.
async fn spring_error(resp: Response, status: StatusCode, code: &str) {
    let body = seed_answer(resp, status).await;
    assert_eq!(keys(&body), ["errorCode", "errorMessage", "status"], "{body}");
    assert_eq!(body["errorCode"], code, "{body}");
    assert!(body["errorMessage"].is_string());
}

impl TestApp {
    /// Creates the group `slug` owned by `owner` through `/api/v1`; answers its id.
    async fn mi_group(&self, owner: &SignedIn, slug: &str) -> String {
        let body = json!({ "name": slug.to_uppercase(), "slug": slug });
        let resp = self.call(Method::POST, "/api/v1/groups", &owner.access, Some(&body)).await;
        expect_status(resp, StatusCode::CREATED).await["id"].as_str().unwrap().to_owned()
    }

    async fn mi_invite(&self, token: &str, body: &Value) -> Response {
        self.call(Method::POST, &at("/invite"), token, Some(body)).await
    }

    async fn mi_accept(&self, token: &str, code: &str) -> Response {
        self.get_auth(&at(&format!("/accept/{code}")), token).await
    }
}

fn invite_body(group: &str, n: u32) -> Value {
    json!({
        "inviteGroupId": group,
        "inviteMemberName": "soon",
        "inviteMemberPhoneNumber": phone(n),
        "inviteMemberEmail": format!("m{n}@example.com"),
    })
}

async fn an_invite_made_and_accepted_through_the_seed_api_joins_the_one_member(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    let group_id = app.mi_group(&owner, "team").await;

    // By the group's id, and by its slug.
    let resp = app.mi_invite(&owner.access, &invite_body(&group_id, 2)).await;
    let created = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(keys(&created), ["inviteCode"]);
    let code = created["inviteCode"].as_str().unwrap();
    let resp = app.mi_invite(&owner.access, &invite_body("team", 3)).await;
    seed_answer(resp, StatusCode::OK).await;

    // The invitee signs in (a member of their own) and accepts with their token.
    let invitee = app.sign_in(&phone(2)).await;
    let resp = app.mi_accept(&invitee.access, code).await;
    assert_eq!(
        seed_answer(resp, StatusCode::OK).await,
        json!({ "msg": "초대가 성공적으로 완료되었습니다." })
    );
    // One member, now in the group; the code is used up.
    let resp = app.get_auth("/api/v1/groups/team", &invitee.access).await;
    assert_eq!(expect_status(resp, StatusCode::OK).await["my_role"], "member");
    spring_error(
        app.mi_accept(&invitee.access, code).await,
        StatusCode::NOT_FOUND,
        "CODE_NOT_FOUND",
    )
    .await;

    // Fellow group members see each other whole: the invitee as the invite described them.
    let resp = app.get_auth(&at(&format!("/member/{}", invitee.id())), &owner.access).await;
    let seen = seed_answer(resp, StatusCode::OK).await;
    assert_eq!(
        seen,
        json!({
            "id": invitee.id(),
            "name": "soon",
            "phoneNumber": phone(2),
            "email": "m2@example.com",
        })
    );
}

async fn inviting_errors_have_the_seeds_shape(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.mi_group(&owner, "team").await;
    let outsider = app.sign_in(&phone(9)).await;

    // No token, a bad token: 401.
    let resp = app.post_json(&at("/invite"), &invite_body("team", 2)).await;
    spring_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let resp = app.mi_invite("garbage", &invite_body("team", 2)).await;
    spring_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // Not a member of the group, or an unknown group: 400; a member without invites.manage: 403.
    let resp = app.mi_invite(&outsider.access, &invite_body("team", 2)).await;
    spring_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    let resp =
        app.mi_invite(&owner.access, &invite_body(&uuid::Uuid::now_v7().to_string(), 2)).await;
    spring_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    let resp = app.call(Method::POST, "/api/v1/groups/team/join", &outsider.access, None).await;
    expect_status(resp, StatusCode::OK).await;
    let resp = app.mi_invite(&outsider.access, &invite_body("team", 2)).await;
    spring_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    // Bad fields and bodies: 400 BAD_REQUEST, never a 500.
    for body in [
        json!({ "inviteGroupId": "team", "inviteMemberName": "soon" }),
        json!({ "inviteGroupId": "team", "inviteMemberPhoneNumber": phone(2) }),
        json!({ "inviteGroupId": "team", "inviteMemberName": "soon", "inviteMemberPhoneNumber": "0" }),
        json!({ "inviteGroupId": "team", "inviteMemberName": "soon", "inviteMemberEmail": "x" }),
        json!({ "inviteGroupId": ["team"], "inviteMemberName": "soon", "inviteMemberEmail": "a@b.co" }),
        json!({ "inviteMemberName": "soon", "inviteMemberEmail": "a@b.co" }),
        json!({ "inviteGroupId": 0, "inviteMemberName": "soon", "inviteMemberEmail": "a@b.co" }),
        json!([1, 2]),
    ] {
        let resp = app.mi_invite(&owner.access, &body).await;
        spring_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
    }
    let resp = app
        .client
        .post(app.url(&at("/invite")))
        .bearer_auth(&owner.access)
        .header("content-type", "application/json")
        .body("{\"inviteGroupId\": ")
        .send()
        .await
        .unwrap();
    spring_error(resp, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;

    // Invited already (pending), or a member already: ACCOUNT_ALREADY_REGISTERED.
    let resp = app.mi_invite(&owner.access, &invite_body("team", 2)).await;
    seed_answer(resp, StatusCode::OK).await;
    let resp = app.mi_invite(&owner.access, &invite_body("team", 2)).await;
    spring_error(resp, StatusCode::BAD_REQUEST, "ACCOUNT_ALREADY_REGISTERED").await;
    let resp = app.mi_invite(&owner.access, &invite_body("team", 9)).await;
    spring_error(resp, StatusCode::BAD_REQUEST, "ACCOUNT_ALREADY_REGISTERED").await;
}

async fn accepting_errors_have_the_seeds_shape(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.mi_group(&owner, "team").await;
    let resp = app.mi_invite(&owner.access, &invite_body("team", 2)).await;
    let code = seed_answer(resp, StatusCode::OK).await["inviteCode"].as_str().unwrap().to_owned();

    // Without a token: 401 (deviation: the seed let anyone holding the code accept).
    let resp = app.get(&at(&format!("/accept/{code}"))).await;
    spring_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // Someone else's phone: 403, and the code stays usable.
    let other = app.sign_in(&phone(3)).await;
    spring_error(
        app.mi_accept(&other.access, &code).await,
        StatusCode::FORBIDDEN,
        "PHONE_NUMBER_MISMATCH",
    )
    .await;
    // Unknown and malformed codes: 404 CODE_NOT_FOUND.
    for bad in ["0", "AAAAAAAAAAAAAAAAAAAAAA", "not%20a%20code"] {
        spring_error(
            app.mi_accept(&other.access, bad).await,
            StatusCode::NOT_FOUND,
            "CODE_NOT_FOUND",
        )
        .await;
    }
    let invitee = app.sign_in(&phone(2)).await;
    seed_answer(app.mi_accept(&invitee.access, &code).await, StatusCode::OK).await;
}

async fn a_member_is_looked_up_by_id_as_the_caller_may_see_them(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let ann = app.sign_in(&phone(1)).await;
    let resp = app
        .patch_me(
            &ann.access,
            &json!({ "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com" }),
        )
        .await;
    expect_status(resp, StatusCode::OK).await;
    let bob = app.sign_in(&phone(2)).await;

    let resp = app.get_auth(&at(&format!("/member/{}", ann.id())), &ann.access).await;
    assert_eq!(
        seed_answer(resp, StatusCode::OK).await,
        json!({ "id": ann.id(), "name": "Ann Lee", "phoneNumber": phone(1), "email": "ann@example.com" })
    );
    // A stranger: the phone masked, no e-mail.
    let resp = app.get_auth(&at(&format!("/member/{}", ann.id())), &bob.access).await;
    assert_eq!(
        seed_answer(resp, StatusCode::OK).await,
        json!({ "id": ann.id(), "name": "Ann Lee", "phoneNumber": "+7******0001", "email": null })
    );
    let unknown = uuid::Uuid::now_v7();
    for id in [unknown.to_string(), "1".to_owned()] {
        let resp = app.get_auth(&at(&format!("/member/{id}")), &bob.access).await;
        spring_error(resp, StatusCode::NOT_FOUND, "ACCOUNT_NOT_FOUND").await;
    }
    let resp = app.get(&at(&format!("/member/{}", ann.id()))).await;
    spring_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}
