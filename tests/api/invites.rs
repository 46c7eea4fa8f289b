//! Invites: `/api/v1/groups/{slug}/invites/...` (create, list, revoke; `invites.manage`) and
//! `/api/v1/invites/{code}/...` (preview without signing in, accept once).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{
    SignedIn, TestApp, Wiring, assert_problem, expect_status, first_error_field, keys, phone,
    spawn_app, spawn_app_with,
};

both_wirings!(
    an_invite_is_created_with_a_code_that_the_list_never_shows,
    a_bad_invite_is_refused_naming_the_field_and_leaves_nothing_behind,
    inviting_listing_and_revoking_need_invites_manage,
    a_custom_role_with_invites_manage_invites_but_grants_no_more_than_it_holds,
    only_an_owner_invites_an_owner,
    a_person_already_in_the_group_by_phone_or_email_is_not_invited,
    a_second_live_invite_for_the_same_person_is_a_conflict,
    invites_are_only_for_members_of_the_group_and_need_a_valid_token,
    anyone_previews_a_live_invite_without_signing_in,
    accepting_joins_the_group_with_the_invites_role_and_uses_the_code_up,
    a_phone_invite_is_accepted_only_by_the_member_with_that_phone,
    an_email_invite_is_accepted_by_anyone_signed_in,
    an_existing_member_accepting_stays_as_they_were,
    accepting_into_a_group_that_needs_approval_waits_for_approval,
    a_revoked_invite_stops_working_at_once,
    an_unknown_or_malformed_code_is_not_found,
    an_invite_to_a_deleted_group_is_not_found,
    an_invite_for_a_role_deleted_since_grants_member,
    an_invite_outlives_its_inviters_account_and_then_names_no_inviter,
    a_waiting_join_request_is_let_in_by_an_invite_unless_the_group_needs_approval,
    an_invite_past_its_ttl_is_expired_and_no_longer_blocks_a_new_one,
    the_invites_list_filters_by_status_and_pages_newest_first,
    eight_parallel_accepts_of_one_code_join_exactly_once,
    two_parallel_invites_of_one_person_end_in_one_invite_and_one_conflict,
    a_revoke_and_an_accept_at_once_settle_one_way,
);

/// The keys of an Invite object, sorted.
const INVITE_KEYS: [&str; 10] = [
    "created_at",
    "email",
    "expires_at",
    "group",
    "id",
    "invited_by",
    "name",
    "phone",
    "role",
    "status",
];

/// The keys of a Group object, sorted.
const GROUP_KEYS: [&str; 6] = ["approval_required", "created_at", "id", "my_role", "name", "slug"];

/// The default `INVITE_TTL`, seconds.
const DEFAULT_TTL: i64 = 259_200;

const GROUPS: &str = "/api/v1/groups";

/// `/api/v1/groups/{slug}{rest}`.
fn group_at(slug: &str, rest: &str) -> String {
    format!("{GROUPS}/{slug}{rest}")
}

/// `/api/v1/groups/{slug}/invites{rest}`.
fn invites_at(slug: &str, rest: &str) -> String {
    group_at(slug, &format!("/invites{rest}"))
}

/// `/api/v1/invites/{code}{rest}`.
fn code_at(code: &str, rest: &str) -> String {
    format!("/api/v1/invites/{code}{rest}")
}

/// A string field of a JSON object.
fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_else(|| panic!("{field} in {value}"))
}

/// A timestamp field of a JSON object.
fn time(value: &Value, field: &str) -> DateTime<Utc> {
    text(value, field).parse().unwrap_or_else(|e| panic!("{field} in {value}: {e}"))
}

/// The items of a page.
fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap_or_else(|| panic!("items in {page}"))
}

/// A field of every item of a page, in order.
fn field_of_items(page: &Value, field: &str) -> Vec<String> {
    items(page).iter().map(|item| text(item, field).to_owned()).collect()
}

/// A created invite without its code: what the list shows of it.
fn without_code(created: &Value) -> Value {
    let mut invite = created.clone();
    invite.as_object_mut().expect("an object").remove("code");
    invite
}

/// Asserts that a status is not a 5xx and returns it.
fn no_server_error(resp: &Response) -> StatusCode {
    let status = resp.status();
    assert!(!status.is_server_error(), "never a 5xx: {status}");
    status
}

/// A code of the right shape that no invite has.
fn unknown_code() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// Client calls of the invites API (and the few group calls its tests need).
impl TestApp {
    /// Creates the group `slug` (named after it) owned by `owner` (asserts 201).
    async fn open_group(&self, owner: &SignedIn, slug: &str, approval_required: bool) -> Value {
        let body = json!({ "name": slug.to_uppercase(), "slug": slug, "approval_required": approval_required });
        let resp = self.call(Method::POST, GROUPS, &owner.access, Some(&body)).await;
        expect_status(resp, StatusCode::CREATED).await
    }

    /// Signs `n` in and makes them an active member of the open group `slug` with `role`.
    async fn enrolled(&self, owner: &SignedIn, slug: &str, n: u32, role: &str) -> SignedIn {
        let who = self.sign_in(&phone(n)).await;
        let resp = self.call(Method::POST, &group_at(slug, "/join"), &who.access, None).await;
        assert_eq!(expect_status(resp, StatusCode::OK).await, json!({ "status": "active" }));
        if role != "member" {
            let path = group_at(slug, &format!("/members/{}", who.id()));
            let body = json!({ "role": role });
            let resp = self.call(Method::PUT, &path, &owner.access, Some(&body)).await;
            expect_status(resp, StatusCode::OK).await;
        }
        who
    }

    /// Adds the custom role `name` with `permissions` to the group (asserts 201).
    async fn add_role(&self, owner: &SignedIn, slug: &str, name: &str, permissions: &[&str]) {
        let body = json!({ "name": name, "permissions": permissions });
        let resp =
            self.call(Method::POST, &group_at(slug, "/roles"), &owner.access, Some(&body)).await;
        expect_status(resp, StatusCode::CREATED).await;
    }

    /// `GET /groups/{slug}/me`.
    async fn standing_in(&self, who: &SignedIn, slug: &str) -> Response {
        self.get_auth(&group_at(slug, "/me"), &who.access).await
    }

    /// The active members' ids, in join order (asserts 200).
    async fn member_ids(&self, who: &SignedIn, slug: &str) -> Vec<String> {
        let resp = self.get_auth(&group_at(slug, "/members?limit=100"), &who.access).await;
        field_of_items(&expect_status(resp, StatusCode::OK).await, "member_id")
    }

    async fn invite_to(&self, by: &SignedIn, slug: &str, body: &Value) -> Response {
        self.call(Method::POST, &invites_at(slug, ""), &by.access, Some(body)).await
    }

    /// Invites with `body` (asserts 201) and answers the invite with its code.
    async fn new_invite(&self, by: &SignedIn, slug: &str, body: &Value) -> Value {
        expect_status(self.invite_to(by, slug, body).await, StatusCode::CREATED).await
    }

    /// `query` is the query string without `?` (may be empty).
    async fn invites_of(&self, by: &SignedIn, slug: &str, query: &str) -> Response {
        self.get_auth(&invites_at(slug, &format!("?{query}")), &by.access).await
    }

    /// A page of the group's invites (asserts 200).
    async fn invites_page(&self, by: &SignedIn, slug: &str, query: &str) -> Value {
        expect_status(self.invites_of(by, slug, query).await, StatusCode::OK).await
    }

    async fn revoke_invite(&self, by: &SignedIn, slug: &str, id: &str) -> Response {
        self.delete_auth(&invites_at(slug, &format!("/{id}")), &by.access).await
    }

    async fn preview_invite(&self, code: &str) -> Response {
        self.get(&code_at(code, "")).await
    }

    async fn accept_invite(&self, who: &SignedIn, code: &str) -> Response {
        self.call(Method::POST, &code_at(code, "/accept"), &who.access, None).await
    }

    /// Asserts that the code neither previews nor accepts any more.
    async fn assert_code_dead(&self, code: &str, who: &SignedIn) {
        let resp = self.preview_invite(code).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "invite_not_found").await;
        let resp = self.accept_invite(who, code).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "invite_not_found").await;
    }
}

// ---------------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------------

async fn an_invite_is_created_with_a_code_that_the_list_never_shows(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;

    let body = json!({ "name": "  Ann Lee ", "phone": phone(2) });
    let by_phone = app.new_invite(&owner, "acme", &body).await;
    let mut expected_keys: Vec<&str> = INVITE_KEYS.to_vec();
    expected_keys.push("code");
    expected_keys.sort_unstable();
    assert_eq!(keys(&by_phone), expected_keys, "an Invite and its code");
    let id = text(&by_phone, "id");
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7, "ids are UUID v7");
    assert_eq!(by_phone["group"], "acme");
    assert_eq!(by_phone["name"], "Ann Lee", "the name is trimmed");
    assert_eq!(by_phone["phone"], phone(2));
    assert!(by_phone["email"].is_null());
    assert_eq!(by_phone["role"], "member", "member unless named");
    assert_eq!(by_phone["status"], "pending");
    assert_eq!(by_phone["invited_by"], owner.id());
    let lives = time(&by_phone, "expires_at") - time(&by_phone, "created_at");
    assert!(
        (lives.num_seconds() - DEFAULT_TTL).abs() <= 1,
        "an invite lives INVITE_TTL (72 h by default): {by_phone}"
    );
    let code = text(&by_phone, "code");
    assert_eq!(code.len(), 22, "128 bits in base64url: {code}");
    assert!(
        code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "base64url: {code}"
    );

    let body = json!({ "name": "Bob", "email": " Bob@Example.COM ", "role": "admin" });
    let by_email = app.new_invite(&owner, "acme", &body).await;
    assert!(by_email["phone"].is_null());
    assert_eq!(by_email["email"], "bob@example.com", "the e-mail is trimmed and lower-cased");
    assert_eq!(by_email["role"], "admin");
    let body = json!({ "name": "Cy", "phone": phone(3), "email": "cy@example.com" });
    let by_both = app.new_invite(&owner, "acme", &body).await;
    assert_eq!(by_both["phone"], phone(3));
    assert_eq!(by_both["email"], "cy@example.com");
    let codes = [code, text(&by_email, "code"), text(&by_both, "code")];
    assert!(codes[0] != codes[1] && codes[1] != codes[2] && codes[0] != codes[2], "{codes:?}");

    // The list shows each invite as created, newest first, and never a code.
    let page = app.invites_page(&owner, "acme", "").await;
    assert!(page["next_cursor"].is_null());
    for item in items(&page) {
        assert_eq!(keys(item), INVITE_KEYS, "no code in the list: {item}");
    }
    assert_eq!(
        *items(&page),
        vec![without_code(&by_both), without_code(&by_email), without_code(&by_phone)]
    );
}

async fn a_bad_invite_is_refused_naming_the_field_and_leaves_nothing_behind(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;

    // Neither a phone nor an e-mail.
    for body in [json!({ "name": "Ann" }), json!({ "name": "Ann", "phone": null, "email": null })] {
        let resp = app.invite_to(&owner, "acme", &body).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "phone", "{body}");
    }
    let long_name = "a".repeat(101);
    for name in ["", "   ", long_name.as_str(), "Ann\u{7}Lee"] {
        let body = json!({ "name": name, "phone": phone(2) });
        let resp = app.invite_to(&owner, "acme", &body).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "name", "for {name:?}");
    }
    for bad in ["12", "not a phone", "+1"] {
        let body = json!({ "name": "Ann", "phone": bad });
        let resp = app.invite_to(&owner, "acme", &body).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_phone").await;
        assert_eq!(first_error_field(&problem), "phone", "for {bad:?}");
    }
    for bad in ["", "ann", "ann@", "@example.com", "a b@example.com"] {
        let body = json!({ "name": "Ann", "email": bad });
        let resp = app.invite_to(&owner, "acme", &body).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "email", "for {bad:?}");
    }
    // A role the group does not have, or no role name at all.
    for role in ["ghost", "Not A Role", ""] {
        let body = json!({ "name": "Ann", "phone": phone(2), "role": role });
        let resp = app.invite_to(&owner, "acme", &body).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "role", "for {role:?}");
    }
    // Wrong shapes.
    for body in [
        json!({ "name": "Ann", "phone": phone(2), "extra": 1 }),
        json!({ "name": 5, "phone": phone(2) }),
        json!({ "phone": phone(2) }),
        json!([]),
    ] {
        let resp = app.invite_to(&owner, "acme", &body).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }

    // The bounds themselves are fine, and nothing refused was stored.
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(page, json!({ "items": [], "next_cursor": null }));
    let hundred = "é".repeat(100);
    let body = json!({ "name": hundred, "phone": phone(2) });
    let invite = app.new_invite(&owner, "acme", &body).await;
    assert_eq!(invite["name"], hundred.as_str());
}

async fn inviting_listing_and_revoking_need_invites_manage(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    let admin = app.enrolled(&owner, "acme", 2, "admin").await;
    let plain = app.enrolled(&owner, "acme", 3, "member").await;
    app.add_role(&owner, "acme", "support", &["messages.send"]).await;
    let support = app.enrolled(&owner, "acme", 4, "support").await;
    let invite = app.new_invite(&owner, "acme", &json!({ "name": "Ann", "phone": phone(9) })).await;
    let id = text(&invite, "id");

    for who in [&plain, &support] {
        let body = json!({ "name": "Bob", "phone": phone(10) });
        let resp = app.invite_to(who, "acme", &body).await;
        assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
        // The permission is checked before the body is.
        let resp = app.invite_to(who, "acme", &json!({ "name": "Bob" })).await;
        assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
        let resp = app.invites_of(who, "acme", "").await;
        assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
        let resp = app.revoke_invite(who, "acme", id).await;
        assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // Nothing refused was done: the invite is still the only one, and pending.
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&page, "id"), [id]);
    assert_eq!(field_of_items(&page, "status"), ["pending"]);
    expect_status(app.preview_invite(text(&invite, "code")).await, StatusCode::OK).await;

    // An admin holds invites.manage.
    let body = json!({ "name": "Bob", "phone": phone(10) });
    let by_admin = app.new_invite(&admin, "acme", &body).await;
    assert_eq!(by_admin["invited_by"], admin.id());
    let page = app.invites_page(&admin, "acme", "").await;
    assert_eq!(field_of_items(&page, "id"), [text(&by_admin, "id"), id]);
    let resp = app.revoke_invite(&admin, "acme", id).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

async fn a_custom_role_with_invites_manage_invites_but_grants_no_more_than_it_holds(
    wiring: Wiring,
) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    app.add_role(&owner, "acme", "recruiter", &["invites.manage"]).await;
    app.add_role(&owner, "acme", "support", &["messages.send"]).await;
    let recruiter = app.enrolled(&owner, "acme", 2, "recruiter").await;

    for (n, role) in [(10, None), (11, Some("member")), (12, Some("recruiter"))] {
        let mut body = json!({ "name": "Ann", "phone": phone(n) });
        if let Some(role) = role {
            body["role"] = json!(role);
        }
        let invite = app.new_invite(&recruiter, "acme", &body).await;
        assert_eq!(invite["invited_by"], recruiter.id());
        assert_eq!(invite["role"], role.unwrap_or("member"));
    }
    // Roles holding a permission the recruiter lacks are not theirs to give.
    for role in ["admin", "owner", "support"] {
        let body = json!({ "name": "Bob", "phone": phone(20), "role": role });
        let resp = app.invite_to(&recruiter, "acme", &body).await;
        assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let page = app.invites_page(&recruiter, "acme", "").await;
    assert_eq!(items(&page).len(), 3);
    let id = items(&page)[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.revoke_invite(&recruiter, "acme", &id).await.status(), StatusCode::NO_CONTENT);

    // Once the role loses the permission, so does its holder.
    let path = group_at("acme", "/roles/recruiter");
    let edit = json!({ "permissions": [] });
    expect_status(app.call(Method::PUT, &path, &owner.access, Some(&edit)).await, StatusCode::OK)
        .await;
    let resp =
        app.invite_to(&recruiter, "acme", &json!({ "name": "Bob", "phone": phone(20) })).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
}

async fn only_an_owner_invites_an_owner(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    let admin = app.enrolled(&owner, "acme", 2, "admin").await;

    let body = json!({ "name": "Ann", "phone": phone(3), "role": "owner" });
    let resp = app.invite_to(&admin, "acme", &body).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(items(&app.invites_page(&admin, "acme", "").await).is_empty());
    // An admin may invite an admin.
    let admin_body = json!({ "name": "Bob", "phone": phone(4), "role": "admin" });
    app.new_invite(&admin, "acme", &admin_body).await;

    let invite = app.new_invite(&owner, "acme", &body).await;
    assert_eq!(invite["role"], "owner");
    let ann = app.sign_in(&phone(3)).await;
    let accepted =
        expect_status(app.accept_invite(&ann, text(&invite, "code")).await, StatusCode::OK).await;
    assert_eq!(accepted["status"], "joined");
    assert_eq!(accepted["group"]["my_role"], "owner");
    let standing = expect_status(app.standing_in(&ann, "acme").await, StatusCode::OK).await;
    assert_eq!(standing["role"], "owner");
}

async fn a_person_already_in_the_group_by_phone_or_email_is_not_invited(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    let fellow = app.enrolled(&owner, "acme", 2, "member").await;
    let patch = json!({ "email": "fay@example.com" });
    expect_status(app.patch_me(&fellow.access, &patch).await, StatusCode::OK).await;

    for body in [
        json!({ "name": "Fay", "phone": phone(2) }),
        json!({ "name": "Fay", "email": "FAY@example.com" }),
        // Either contact is enough to recognise them.
        json!({ "name": "Fay", "phone": phone(2), "email": "other@example.com" }),
        json!({ "name": "Fay", "phone": phone(50), "email": "fay@example.com" }),
        // The inviter too.
        json!({ "name": "Me", "phone": phone(1) }),
    ] {
        let resp = app.invite_to(&owner, "acme", &body).await;
        assert_problem(resp, StatusCode::CONFLICT, "already_member").await;
    }
    assert!(items(&app.invites_page(&owner, "acme", "").await).is_empty(), "nothing stored");

    // Someone who merely signed up, or is a member elsewhere, may be invited.
    let stranger = app.sign_in(&phone(3)).await;
    app.open_group(&stranger, "other", false).await;
    app.new_invite(&owner, "acme", &json!({ "name": "Sam", "phone": phone(3) })).await;
    // And once a member has left, they may be invited back.
    let path = group_at("acme", &format!("/members/{}", fellow.id()));
    let resp = app.delete_auth(&path, &fellow.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    app.new_invite(&owner, "acme", &json!({ "name": "Fay", "phone": phone(2) })).await;
}

async fn a_second_live_invite_for_the_same_person_is_a_conflict(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    app.open_group(&owner, "other", false).await;
    let first = app
        .new_invite(
            &owner,
            "acme",
            &json!({ "name": "Ann", "phone": phone(2), "email": "ann@example.com" }),
        )
        .await;

    for body in [
        json!({ "name": "Ann again", "phone": phone(2) }),
        json!({ "name": "Ann again", "email": "ANN@example.com" }),
        json!({ "name": "Ann again", "phone": phone(2), "role": "admin" }),
        json!({ "name": "Ann again", "phone": phone(3), "email": "ann@example.com" }),
        json!({ "name": "Ann again", "phone": phone(2), "email": "new@example.com" }),
    ] {
        let resp = app.invite_to(&owner, "acme", &body).await;
        assert_problem(resp, StatusCode::CONFLICT, "invite_pending").await;
    }
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&page, "id"), [text(&first, "id")], "only the first is stored");

    // Another group may invite the same person.
    app.new_invite(&owner, "other", &json!({ "name": "Ann", "phone": phone(2) })).await;

    // Once revoked, the invite no longer blocks a new one.
    let resp = app.revoke_invite(&owner, "acme", text(&first, "id")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let second = app.new_invite(&owner, "acme", &json!({ "name": "Ann", "phone": phone(2) })).await;
    // Once accepted, the person is a member and a new invite is refused as such.
    let ann = app.sign_in(&phone(2)).await;
    expect_status(app.accept_invite(&ann, text(&second, "code")).await, StatusCode::OK).await;
    let resp = app.invite_to(&owner, "acme", &json!({ "name": "Ann", "phone": phone(2) })).await;
    assert_problem(resp, StatusCode::CONFLICT, "already_member").await;
}

async fn invites_are_only_for_members_of_the_group_and_need_a_valid_token(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    let stranger = app.sign_in(&phone(2)).await;
    let waiting = app.sign_in(&phone(3)).await;
    app.open_group(&owner, "acme", true).await;
    let resp = app.call(Method::POST, &group_at("acme", "/join"), &waiting.access, None).await;
    expect_status(resp, StatusCode::ACCEPTED).await;
    let invite = app.new_invite(&owner, "acme", &json!({ "name": "Ann", "phone": phone(9) })).await;
    let id = text(&invite, "id");

    // A stranger or a pending member learns nothing of the group; unknown groups are not found.
    for (who, slug) in
        [(&stranger, "acme"), (&waiting, "acme"), (&owner, "nope"), (&owner, "NOT A SLUG")]
    {
        let body = json!({ "name": "Bob", "phone": phone(10) });
        let resp = app.invite_to(who, slug, &body).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
        assert_problem(app.invites_of(who, slug, "").await, StatusCode::NOT_FOUND, "not_found")
            .await;
        let resp = app.revoke_invite(who, slug, id).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    }

    let code = text(&invite, "code");
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, invites_at("acme", ""), Some(json!({ "name": "Bob", "phone": phone(10) }))),
        (Method::GET, invites_at("acme", ""), None),
        (Method::DELETE, invites_at("acme", &format!("/{id}")), None),
        (Method::POST, code_at(code, "/accept"), None),
    ];
    for (method, path, body) in calls {
        for authorization in [None, Some("Bearer not.a.jwt")] {
            let mut req = app.client.request(method.clone(), app.url(&path));
            if let Some(value) = authorization {
                req = req.header(reqwest::header::AUTHORIZATION, value);
            }
            if let Some(body) = &body {
                req = req.json(body);
            }
            let resp = req.send().await.unwrap();
            let problem = assert_problem(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
            assert_eq!(problem["status"], 401, "{method} {path}");
        }
    }
    // Nothing refused was done.
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&page, "status"), ["pending"]);
}

// ---------------------------------------------------------------------------------------------
// Preview and accept
// ---------------------------------------------------------------------------------------------

async fn anyone_previews_a_live_invite_without_signing_in(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    let patch = json!({ "first_name": "Olga", "last_name": "Owner" });
    expect_status(app.patch_me(&owner.access, &patch).await, StatusCode::OK).await;
    app.open_group(&owner, "acme", false).await;
    let invite =
        app.new_invite(&owner, "acme", &json!({ "name": "Dear Ann", "phone": phone(2) })).await;

    let preview =
        expect_status(app.preview_invite(text(&invite, "code")).await, StatusCode::OK).await;
    assert_eq!(
        preview,
        json!({
            "group": { "slug": "acme", "name": "ACME" },
            "invited_by": { "first_name": "Olga" },
            "name": "Dear Ann",
            "expires_at": invite["expires_at"],
        })
    );
    // Previewing uses nothing up.
    let again =
        expect_status(app.preview_invite(text(&invite, "code")).await, StatusCode::OK).await;
    assert_eq!(again, preview);

    // An inviter without a first name shows as null.
    let admin = app.enrolled(&owner, "acme", 3, "admin").await;
    let invite = app.new_invite(&admin, "acme", &json!({ "name": "Bob", "email": "b@x.io" })).await;
    let preview =
        expect_status(app.preview_invite(text(&invite, "code")).await, StatusCode::OK).await;
    assert_eq!(preview["invited_by"], json!({ "first_name": null }));
    assert_eq!(time(&preview, "expires_at"), time(&invite, "expires_at"));
}

async fn accepting_joins_the_group_with_the_invites_role_and_uses_the_code_up(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    let group = app.open_group(&owner, "acme", false).await;
    let body = json!({ "name": "Ann", "phone": phone(2), "role": "admin" });
    let invite = app.new_invite(&owner, "acme", &body).await;
    let code = text(&invite, "code");
    let ann = app.sign_in(&phone(2)).await;
    assert_problem(app.standing_in(&ann, "acme").await, StatusCode::NOT_FOUND, "not_found").await;

    let answer = expect_status(app.accept_invite(&ann, code).await, StatusCode::OK).await;
    assert_eq!(keys(&answer), ["group", "status"]);
    assert_eq!(answer["status"], "joined");
    assert_eq!(keys(&answer["group"]), GROUP_KEYS);
    let mut expected = group.clone();
    expected["my_role"] = json!("admin");
    assert_eq!(answer["group"], expected, "the group as the new member sees it");

    let standing = expect_status(app.standing_in(&ann, "acme").await, StatusCode::OK).await;
    assert_eq!(standing["role"], "admin");
    assert_eq!(standing["status"], "active");
    assert_eq!(app.member_ids(&owner, "acme").await, [owner.id(), ann.id()]);
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&page, "status"), ["accepted"]);
    let mine = expect_status(app.get_auth(GROUPS, &ann.access).await, StatusCode::OK).await;
    assert!(field_of_items(&mine, "slug").contains(&"acme".to_owned()));

    // The code works once.
    app.assert_code_dead(code, &ann).await;
    let other = app.sign_in(&phone(3)).await;
    let resp = app.accept_invite(&other, code).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "invite_not_found").await;
    assert_eq!(app.member_ids(&owner, "acme").await, [owner.id(), ann.id()]);
}

async fn a_phone_invite_is_accepted_only_by_the_member_with_that_phone(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    let body = json!({ "name": "Ann", "phone": phone(2), "email": "ann@example.com" });
    let invite = app.new_invite(&owner, "acme", &body).await;
    let code = text(&invite, "code");
    // Someone else, even with the invite's e-mail, or a member of the group, is refused.
    let other = app.sign_in(&phone(3)).await;
    let patch = json!({ "email": "ann@example.com" });
    expect_status(app.patch_me(&other.access, &patch).await, StatusCode::OK).await;
    let admin = app.enrolled(&owner, "acme", 4, "admin").await;

    for who in [&other, &admin, &owner, &other] {
        let resp = app.accept_invite(who, code).await;
        assert_problem(resp, StatusCode::FORBIDDEN, "invite_phone_mismatch").await;
    }
    assert_problem(app.standing_in(&other, "acme").await, StatusCode::NOT_FOUND, "not_found").await;
    // The code is still good for the right member.
    expect_status(app.preview_invite(code).await, StatusCode::OK).await;
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&page, "status"), ["pending"]);
    let ann = app.sign_in(&phone(2)).await;
    let answer = expect_status(app.accept_invite(&ann, code).await, StatusCode::OK).await;
    assert_eq!(answer["status"], "joined");
    assert_eq!(answer["group"]["my_role"], "member");
    // Once used, the code is simply gone, for everyone.
    let resp = app.accept_invite(&other, code).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "invite_not_found").await;
}

async fn an_email_invite_is_accepted_by_anyone_signed_in(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    app.add_role(&owner, "acme", "support", &["messages.send"]).await;
    let body = json!({ "name": "Ann", "email": "ann@example.com", "role": "support" });
    let invite = app.new_invite(&owner, "acme", &body).await;

    // The member who accepts has no e-mail at all, let alone the invite's.
    let someone = app.sign_in(&phone(5)).await;
    assert!(someone.member["email"].is_null());
    let answer =
        expect_status(app.accept_invite(&someone, text(&invite, "code")).await, StatusCode::OK)
            .await;
    assert_eq!(answer["status"], "joined");
    assert_eq!(answer["group"]["my_role"], "support");
    let standing = expect_status(app.standing_in(&someone, "acme").await, StatusCode::OK).await;
    assert_eq!(standing["role"], "support");
    assert_eq!(standing["permissions"], json!(["messages.send"]));
    app.assert_code_dead(text(&invite, "code"), &someone).await;
}

async fn an_existing_member_accepting_stays_as_they_were(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    let admin = app.enrolled(&owner, "acme", 2, "admin").await;
    let body = json!({ "name": "Someone", "email": "someone@example.com", "role": "member" });
    let invite = app.new_invite(&owner, "acme", &body).await;

    let answer =
        expect_status(app.accept_invite(&admin, text(&invite, "code")).await, StatusCode::OK).await;
    assert_eq!(answer["status"], "already_member");
    assert_eq!(answer["group"]["slug"], "acme");
    assert_eq!(answer["group"]["my_role"], "admin", "the member keeps their role");
    let standing = expect_status(app.standing_in(&admin, "acme").await, StatusCode::OK).await;
    assert_eq!(standing["role"], "admin");
    assert_eq!(app.member_ids(&owner, "acme").await, [owner.id(), admin.id()]);
    // The code is used up all the same.
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&page, "status"), ["accepted"]);
    app.assert_code_dead(text(&invite, "code"), &admin).await;

    // A phone invitee who joined by themselves meanwhile is already a member too.
    let invite = app.new_invite(&owner, "acme", &json!({ "name": "Bo", "phone": phone(3) })).await;
    let bo = app.sign_in(&phone(3)).await;
    let resp = app.call(Method::POST, &group_at("acme", "/join"), &bo.access, None).await;
    expect_status(resp, StatusCode::OK).await;
    let answer =
        expect_status(app.accept_invite(&bo, text(&invite, "code")).await, StatusCode::OK).await;
    assert_eq!(answer["status"], "already_member");
    assert_eq!(answer["group"]["my_role"], "member");
}

async fn accepting_into_a_group_that_needs_approval_waits_for_approval(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    let group = app.open_group(&owner, "acme", true).await;
    let invite = app.new_invite(&owner, "acme", &json!({ "name": "Ann", "phone": phone(2) })).await;
    let ann = app.sign_in(&phone(2)).await;

    let answer =
        expect_status(app.accept_invite(&ann, text(&invite, "code")).await, StatusCode::OK).await;
    assert_eq!(answer["status"], "pending_approval");
    assert_eq!(answer["group"]["slug"], "acme");
    assert_eq!(answer["group"]["id"], group["id"]);
    assert_eq!(keys(&answer["group"]), GROUP_KEYS);
    let standing = expect_status(app.standing_in(&ann, "acme").await, StatusCode::OK).await;
    assert_eq!(standing["status"], "pending");
    assert_eq!(app.member_ids(&owner, "acme").await, [owner.id()], "not active yet");
    let requests = app.get_auth(&group_at("acme", "/join-requests"), &owner.access).await;
    let requests = expect_status(requests, StatusCode::OK).await;
    assert_eq!(field_of_items(&requests, "member_id"), [ann.id()]);
    // The invite is used up; the request waits for a decision.
    app.assert_code_dead(text(&invite, "code"), &ann).await;
    let path = group_at("acme", &format!("/join-requests/{}/approve", ann.id()));
    expect_status(app.call(Method::POST, &path, &owner.access, None).await, StatusCode::OK).await;
    let standing = expect_status(app.standing_in(&ann, "acme").await, StatusCode::OK).await;
    assert_eq!(standing["status"], "active");
}

async fn a_revoked_invite_stops_working_at_once(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    app.open_group(&owner, "other", false).await;
    let invite = app.new_invite(&owner, "acme", &json!({ "name": "Ann", "phone": phone(2) })).await;
    let (id, code) = (text(&invite, "id"), text(&invite, "code"));
    let ann = app.sign_in(&phone(2)).await;
    expect_status(app.preview_invite(code).await, StatusCode::OK).await;

    // Another group's slug, an unknown id, or no id at all name no invite of the group.
    let resp = app.revoke_invite(&owner, "other", id).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app.revoke_invite(&owner, "acme", &uuid::Uuid::now_v7().to_string()).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app.revoke_invite(&owner, "acme", "not-a-uuid").await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    expect_status(app.preview_invite(code).await, StatusCode::OK).await;

    assert_eq!(app.revoke_invite(&owner, "acme", id).await.status(), StatusCode::NO_CONTENT);
    app.assert_code_dead(code, &ann).await;
    assert_problem(app.standing_in(&ann, "acme").await, StatusCode::NOT_FOUND, "not_found").await;
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&page, "status"), ["revoked"]);
    // Revoking again changes nothing.
    assert_eq!(app.revoke_invite(&owner, "acme", id).await.status(), StatusCode::NO_CONTENT);
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&page, "status"), ["revoked"]);

    // Revoking an accepted invite leaves it accepted and the member in.
    let invite = app.new_invite(&owner, "acme", &json!({ "name": "Bo", "phone": phone(3) })).await;
    let bo = app.sign_in(&phone(3)).await;
    expect_status(app.accept_invite(&bo, text(&invite, "code")).await, StatusCode::OK).await;
    let resp = app.revoke_invite(&owner, "acme", text(&invite, "id")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&page, "status"), ["accepted", "revoked"]);
    expect_status(app.standing_in(&bo, "acme").await, StatusCode::OK).await;
}

async fn an_unknown_or_malformed_code_is_not_found(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let unknown = unknown_code();
    let long = "a".repeat(65);
    let bad_alphabet = format!("{}!", &unknown[..21]);
    for code in [
        unknown.as_str(),
        "short",
        "a".repeat(15).as_str(),
        long.as_str(),
        bad_alphabet.as_str(),
        "abcdefgh%2Fijklmnop",
        "abcdefgh.ijklmnopq",
    ] {
        let resp = app.preview_invite(code).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "invite_not_found").await;
        let resp = app.accept_invite(&me, code).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "invite_not_found").await;
    }
    // The shape's bounds are parsed, and simply name no invite.
    for code in ["a".repeat(16), "a".repeat(64)] {
        let resp = app.preview_invite(&code).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "invite_not_found").await;
    }
}

async fn an_invite_to_a_deleted_group_is_not_found(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    let by_phone =
        app.new_invite(&owner, "acme", &json!({ "name": "Ann", "phone": phone(2) })).await;
    let by_email =
        app.new_invite(&owner, "acme", &json!({ "name": "Bo", "email": "bo@example.com" })).await;
    let ann = app.sign_in(&phone(2)).await;

    let resp = app.delete_auth(&group_at("acme", ""), &owner.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for invite in [&by_phone, &by_email] {
        app.assert_code_dead(text(invite, "code"), &ann).await;
    }
    // A new group of the slug knows nothing of them.
    app.open_group(&owner, "acme", false).await;
    assert!(items(&app.invites_page(&owner, "acme", "").await).is_empty());
    app.assert_code_dead(text(&by_phone, "code"), &ann).await;
    assert_eq!(app.member_ids(&owner, "acme").await, [owner.id()]);
}

async fn an_invite_for_a_role_deleted_since_grants_member(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    app.add_role(&owner, "acme", "support", &["messages.send"]).await;
    let body = json!({ "name": "Ann", "phone": phone(2), "role": "support" });
    let invite = app.new_invite(&owner, "acme", &body).await;
    let resp = app.delete_auth(&group_at("acme", "/roles/support"), &owner.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let ann = app.sign_in(&phone(2)).await;
    let answer =
        expect_status(app.accept_invite(&ann, text(&invite, "code")).await, StatusCode::OK).await;
    assert_eq!(answer["status"], "joined");
    assert_eq!(answer["group"]["my_role"], "member");
    let standing = expect_status(app.standing_in(&ann, "acme").await, StatusCode::OK).await;
    assert_eq!(standing, json!({ "role": "member", "permissions": [], "status": "active" }));
}

async fn an_invite_outlives_its_inviters_account_and_then_names_no_inviter(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    let admin = app.enrolled(&owner, "acme", 2, "admin").await;
    expect_status(
        app.patch_me(&admin.access, &json!({ "first_name": "Ada" })).await,
        StatusCode::OK,
    )
    .await;
    let invite = app.new_invite(&admin, "acme", &json!({ "name": "Ann", "phone": phone(3) })).await;
    let code = text(&invite, "code");
    let preview = expect_status(app.preview_invite(code).await, StatusCode::OK).await;
    assert_eq!(preview["invited_by"], json!({ "first_name": "Ada" }));

    let resp = app.delete_auth("/api/v1/members/me", &admin.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let preview = expect_status(app.preview_invite(code).await, StatusCode::OK).await;
    assert_eq!(preview["invited_by"], json!({ "first_name": null }));
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&page, "invited_by"), [admin.id()]);
    let ann = app.sign_in(&phone(3)).await;
    let answer = expect_status(app.accept_invite(&ann, code).await, StatusCode::OK).await;
    assert_eq!(answer["status"], "joined");
}

async fn a_waiting_join_request_is_let_in_by_an_invite_unless_the_group_needs_approval(
    wiring: Wiring,
) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "closed", true).await;
    app.open_group(&owner, "opened", true).await;
    let ann = app.sign_in(&phone(2)).await;
    for slug in ["closed", "opened"] {
        let resp = app.call(Method::POST, &group_at(slug, "/join"), &ann.access, None).await;
        expect_status(resp, StatusCode::ACCEPTED).await;
    }
    // A waiting request is no membership yet: the person may be invited.
    let body = json!({ "name": "Ann", "phone": phone(2), "role": "admin" });
    let to_closed = app.new_invite(&owner, "closed", &body).await;
    let to_opened = app.new_invite(&owner, "opened", &body).await;
    let patch = json!({ "approval_required": false });
    let resp = app.patch_auth(&group_at("opened", ""), &owner.access, &patch).await;
    expect_status(resp, StatusCode::OK).await;

    // Where approval is needed, the request keeps waiting (once).
    let answer =
        expect_status(app.accept_invite(&ann, text(&to_closed, "code")).await, StatusCode::OK)
            .await;
    assert_eq!(answer["status"], "pending_approval");
    let standing = expect_status(app.standing_in(&ann, "closed").await, StatusCode::OK).await;
    assert_eq!(standing["status"], "pending");
    let resp = app.get_auth(&group_at("closed", "/join-requests"), &owner.access).await;
    let requests = expect_status(resp, StatusCode::OK).await;
    assert_eq!(field_of_items(&requests, "member_id"), [ann.id()]);

    // Where it is not, the request becomes a membership with the invite's role.
    let answer =
        expect_status(app.accept_invite(&ann, text(&to_opened, "code")).await, StatusCode::OK)
            .await;
    assert_eq!(answer["status"], "joined");
    assert_eq!(answer["group"]["my_role"], "admin");
    let standing = expect_status(app.standing_in(&ann, "opened").await, StatusCode::OK).await;
    assert_eq!(standing["status"], "active");
    assert_eq!(standing["role"], "admin");
    let resp = app.get_auth(&group_at("opened", "/join-requests"), &owner.access).await;
    assert!(items(&expect_status(resp, StatusCode::OK).await).is_empty());
    assert_eq!(app.member_ids(&owner, "opened").await, [owner.id(), ann.id()]);
}

async fn an_invite_past_its_ttl_is_expired_and_no_longer_blocks_a_new_one(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.invites.ttl_secs = 1).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    let by_phone =
        app.new_invite(&owner, "acme", &json!({ "name": "Ann", "phone": phone(2) })).await;
    let by_email =
        app.new_invite(&owner, "acme", &json!({ "name": "Bo", "email": "bo@example.com" })).await;
    let lives = time(&by_phone, "expires_at") - time(&by_phone, "created_at");
    assert_eq!(lives.num_seconds(), 1, "INVITE_TTL applies: {by_phone}");
    let ann = app.sign_in(&phone(2)).await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    for invite in [&by_phone, &by_email] {
        app.assert_code_dead(text(invite, "code"), &ann).await;
    }
    assert_problem(app.standing_in(&ann, "acme").await, StatusCode::NOT_FOUND, "not_found").await;
    let ids = [text(&by_email, "id"), text(&by_phone, "id")];
    let page = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&page, "id"), ids);
    assert_eq!(field_of_items(&page, "status"), ["expired", "expired"]);
    let page = app.invites_page(&owner, "acme", "status=expired").await;
    assert_eq!(field_of_items(&page, "id"), ids);
    let page = app.invites_page(&owner, "acme", "status=pending").await;
    assert!(items(&page).is_empty(), "an expired invite is not pending: {page}");

    // The same person may be invited again.
    let again = app.new_invite(&owner, "acme", &json!({ "name": "Ann", "phone": phone(2) })).await;
    app.new_invite(&owner, "acme", &json!({ "name": "Bo", "email": "bo@example.com" })).await;
    let page = app.invites_page(&owner, "acme", "status=expired&limit=100").await;
    let expired = field_of_items(&page, "id");
    assert!(ids.iter().all(|id| expired.contains(&(*id).to_owned())), "{page}");
    // Revoking an expired invite is allowed and the new one is unaffected by the old.
    let resp = app.revoke_invite(&owner, "acme", text(&by_phone, "id")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let page = app.invites_page(&owner, "acme", "status=revoked").await;
    assert_eq!(field_of_items(&page, "id"), [text(&by_phone, "id")]);
    assert_ne!(again["id"], by_phone["id"]);
}

async fn the_invites_list_filters_by_status_and_pages_newest_first(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    app.open_group(&owner, "other", false).await;
    app.new_invite(&owner, "other", &json!({ "name": "Elsewhere", "phone": phone(10) })).await;
    let mut created = Vec::new();
    for n in 10..15 {
        let body = json!({ "name": format!("Guest {n}"), "phone": phone(n) });
        created.push(app.new_invite(&owner, "acme", &body).await);
    }
    let newest_first: Vec<String> =
        created.iter().rev().map(|i| text(i, "id").to_owned()).collect();
    // One accepted, one revoked.
    let guest = app.sign_in(&phone(11)).await;
    expect_status(app.accept_invite(&guest, text(&created[1], "code")).await, StatusCode::OK).await;
    let resp = app.revoke_invite(&owner, "acme", text(&created[3], "id")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let all = app.invites_page(&owner, "acme", "").await;
    assert_eq!(field_of_items(&all, "id"), newest_first, "the group's own, newest first");
    assert_eq!(
        field_of_items(&all, "status"),
        ["pending", "revoked", "pending", "accepted", "pending"]
    );

    // Page by page, with and without a filter.
    for (query, expected) in [
        ("", newest_first.clone()),
        (
            "status=pending&",
            vec![newest_first[0].clone(), newest_first[2].clone(), newest_first[4].clone()],
        ),
    ] {
        let mut ids = Vec::new();
        let mut path = format!("{query}limit=2");
        let mut pages = 0;
        loop {
            let page = app.invites_page(&owner, "acme", &path).await;
            pages += 1;
            assert!(items(&page).len() <= 2);
            ids.extend(field_of_items(&page, "id"));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("{query}limit=2&cursor={cursor}"),
                None => break,
            }
            assert!(pages < 10, "the pages end");
        }
        assert_eq!(ids, expected, "{query}");
        assert_eq!(pages, expected.len().div_ceil(2), "{query}");
    }
    // A page exactly as long as the list has no next page.
    let page = app.invites_page(&owner, "acme", "limit=5").await;
    assert_eq!(items(&page).len(), 5);
    assert!(page["next_cursor"].is_null());

    for (status, expected) in [
        ("accepted", vec![newest_first[3].clone()]),
        ("revoked", vec![newest_first[1].clone()]),
        ("expired", vec![]),
    ] {
        let page = app.invites_page(&owner, "acme", &format!("status={status}")).await;
        assert_eq!(field_of_items(&page, "id"), expected, "{status}");
        assert!(field_of_items(&page, "status").iter().all(|s| s == status));
    }

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("status=bogus", "status"),
    ] {
        let resp = app.invites_of(&owner, "acme", query).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), field, "{query}");
    }
    for query in ["limit=x", "unknown=1"] {
        let resp = app.invites_of(&owner, "acme", query).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

// ---------------------------------------------------------------------------------------------
// Races
// ---------------------------------------------------------------------------------------------

async fn eight_parallel_accepts_of_one_code_join_exactly_once(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    let phones: Vec<String> = (100..108).map(phone).collect();
    let racers = app.sign_in_all(&phones).await;

    for round in 0..3 {
        let slug = format!("race-{round}");
        app.open_group(&owner, &slug, false).await;
        let body = json!({ "name": "Whoever", "email": format!("r{round}@example.com") });
        let invite = app.new_invite(&owner, &slug, &body).await;
        let code = text(&invite, "code");

        let answers = join_all(racers.iter().map(|r| app.accept_invite(r, code))).await;
        let mut winners = Vec::new();
        for (racer, resp) in racers.iter().zip(answers) {
            if no_server_error(&resp) == StatusCode::OK {
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["status"], "joined", "round {round}: {body}");
                winners.push(racer.id().to_owned());
            } else {
                assert_problem(resp, StatusCode::NOT_FOUND, "invite_not_found").await;
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one accept wins");
        let members = app.member_ids(&owner, &slug).await;
        assert_eq!(members, [owner.id().to_owned(), winners[0].clone()], "round {round}");
        let page = app.invites_page(&owner, &slug, "").await;
        assert_eq!(field_of_items(&page, "status"), ["accepted"], "round {round}");
        app.assert_code_dead(code, &racers[0]).await;
    }
}

async fn two_parallel_invites_of_one_person_end_in_one_invite_and_one_conflict(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    let admin = app.enrolled(&owner, "acme", 2, "admin").await;

    for round in 0..6 {
        let (first, second) = if round % 2 == 0 {
            (
                json!({ "name": "A", "phone": phone(200 + round) }),
                json!({ "name": "B", "phone": phone(200 + round) }),
            )
        } else {
            let email = format!("p{round}@example.com");
            (
                json!({ "name": "A", "email": email }),
                json!({ "name": "B", "email": email.to_uppercase() }),
            )
        };
        let (a, b) = tokio::join!(
            app.invite_to(&owner, "acme", &first),
            app.invite_to(&admin, "acme", &second)
        );
        let statuses = (no_server_error(&a), no_server_error(&b));
        let (created, refused) = match statuses {
            (StatusCode::CREATED, StatusCode::CONFLICT) => (a, b),
            (StatusCode::CONFLICT, StatusCode::CREATED) => (b, a),
            other => panic!("round {round}: one invite and one conflict, not {other:?}"),
        };
        let created = expect_status(created, StatusCode::CREATED).await;
        assert_problem(refused, StatusCode::CONFLICT, "invite_pending").await;
        let page = app.invites_page(&owner, "acme", "status=pending&limit=100").await;
        let ids = field_of_items(&page, "id");
        assert_eq!(ids.len(), usize::try_from(round).unwrap() + 1, "round {round}: {page}");
        assert_eq!(ids[0], text(&created, "id"), "round {round}");
        expect_status(app.preview_invite(text(&created, "code")).await, StatusCode::OK).await;
    }
}

async fn a_revoke_and_an_accept_at_once_settle_one_way(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.open_group(&owner, "acme", false).await;
    let phones: Vec<String> = (300..308).map(phone).collect();
    let guests = app.sign_in_all(&phones).await;

    for (round, guest) in guests.iter().enumerate() {
        let body = json!({ "name": "Guest", "phone": phones[round] });
        let invite = app.new_invite(&owner, "acme", &body).await;
        let (id, code) = (text(&invite, "id"), text(&invite, "code"));
        let (revoke, accept) =
            tokio::join!(app.revoke_invite(&owner, "acme", id), app.accept_invite(guest, code));
        no_server_error(&revoke);
        assert_eq!(
            revoke.status(),
            StatusCode::NO_CONTENT,
            "round {round}: revoking always answers 204"
        );
        let joined = if no_server_error(&accept) == StatusCode::OK {
            let body: Value = accept.json().await.unwrap();
            assert_eq!(body["status"], "joined", "round {round}");
            true
        } else {
            assert_problem(accept, StatusCode::NOT_FOUND, "invite_not_found").await;
            false
        };
        let page = app.invites_page(&owner, "acme", "limit=1").await;
        assert_eq!(field_of_items(&page, "id"), [id], "round {round}");
        let status = if joined { "accepted" } else { "revoked" };
        assert_eq!(field_of_items(&page, "status"), [status], "round {round}");
        let standing = app.standing_in(guest, "acme").await;
        if joined {
            expect_status(standing, StatusCode::OK).await;
        } else {
            assert_problem(standing, StatusCode::NOT_FOUND, "not_found").await;
        }
        app.assert_code_dead(code, guest).await;
    }
}
