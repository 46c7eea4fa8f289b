//! Groups: `/api/v1/groups/...`, the current group (`/api/v1/members/me/current-group` and the
//! `grp` claim), the personal workspace made at sign-up, and what sharing a group changes
//! elsewhere (seeing a member in full, deleting oneself).

use futures_util::future::join_all;
use onboard_groups::Permission;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{
    CARD_KEYS, MEMBER_KEYS, SignedIn, TestApp, Wiring, assert_problem, claims_of, expect_status,
    first_error_field, keys, phone, spawn_app, spawn_app_with,
};

both_wirings!(
    a_group_is_created_with_a_given_or_derived_slug_and_owned_by_its_creator,
    a_slug_belongs_to_one_group_only,
    a_bad_name_or_slug_is_refused_naming_the_field,
    my_groups_list_active_memberships_in_join_order_page_by_page,
    a_group_is_not_found_for_strangers_and_pending_members,
    patching_a_group_needs_group_manage,
    only_an_owner_deletes_a_group_and_it_stops_being_anyones_current_group,
    the_roles_are_the_builtins_then_the_custom_ones_by_name,
    me_answers_the_standing_of_an_active_or_a_pending_member,
    a_custom_role_is_created_once_never_as_a_builtin_nor_with_an_unknown_permission,
    a_custom_role_is_edited_but_a_builtin_or_unknown_one_is_not,
    deleting_a_role_moves_its_members_to_member,
    the_members_list_shows_active_members_and_pending_ones_only_to_managers,
    a_role_change_follows_the_owner_and_self_rules,
    removing_a_member_follows_the_owner_rules_and_leaving_needs_no_permission,
    being_removed_or_leaving_clears_that_current_group_only,
    joining_an_open_group_is_immediate_and_joining_twice_is_a_conflict,
    joining_a_group_that_needs_approval_waits_as_a_pending_request,
    a_pending_member_is_a_member_nowhere,
    a_join_request_is_approved_or_rejected_once,
    extra_permissions_serve_in_custom_roles_and_are_held_by_owners_and_admins,
    a_new_member_gets_a_personal_workspace_as_owner_and_current_group,
    no_personal_workspace_is_made_when_it_is_turned_off,
    the_current_group_is_one_of_my_active_groups_and_the_next_token_carries_it,
    a_fellow_group_member_is_seen_in_full_and_a_stranger_as_a_card,
    deleting_me_is_refused_while_i_am_the_sole_owner_of_a_group_with_others,
    deleting_me_is_allowed_once_no_group_depends_on_me_alone,
    every_group_call_needs_a_valid_token,
    two_owners_demoting_each_other_at_once_leave_an_owner,
    a_join_request_approved_and_rejected_at_once_is_decided_once,
);

/// The keys of a Group object, sorted.
const GROUP_KEYS: [&str; 6] = ["approval_required", "created_at", "id", "my_role", "name", "slug"];

/// The keys of a GroupMember object, sorted.
const GROUP_MEMBER_KEYS: [&str; 7] =
    ["first_name", "joined_at", "last_name", "member_id", "phone", "role", "status"];

/// The built-in permissions, sorted.
const BUILTIN_PERMISSIONS: [&str; 6] = [
    "billing.manage",
    "group.manage",
    "invites.manage",
    "members.manage",
    "messages.send",
    "webhooks.manage",
];

const GROUPS: &str = "/api/v1/groups";
const CURRENT_GROUP: &str = "/api/v1/members/me/current-group";

/// `/api/v1/groups/{slug}{rest}`.
fn at(slug: &str, rest: &str) -> String {
    format!("{GROUPS}/{slug}{rest}")
}

/// A JSON array of strings, sorted.
fn sorted_strings(value: &Value) -> Vec<String> {
    let mut items: Vec<String> = value
        .as_array()
        .unwrap_or_else(|| panic!("an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("a string: {v}")).to_owned())
        .collect();
    items.sort();
    items
}

/// A field of every item of a page, in order.
fn field_of_items(page: &Value, field: &str) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {page}"))
        .iter()
        .map(|item| item[field].as_str().unwrap_or_else(|| panic!("{field} in {item}")).to_owned())
        .collect()
}

/// Asserts that a status is not a 5xx and returns it.
fn no_server_error(resp: &Response) -> StatusCode {
    let status = resp.status();
    assert!(!status.is_server_error(), "never a 5xx: {status}");
    status
}

/// Client calls of the groups API.
impl TestApp {
    async fn post_auth(&self, path: &str, token: &str, body: &Value) -> Response {
        self.call(Method::POST, path, token, Some(body)).await
    }

    async fn put_auth(&self, path: &str, token: &str, body: &Value) -> Response {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    async fn create_group(&self, token: &str, body: &Value) -> Response {
        self.post_auth(GROUPS, token, body).await
    }

    /// Creates the group `slug` (named after it) owned by `owner` (asserts 201).
    async fn new_group(&self, owner: &SignedIn, slug: &str, approval_required: bool) -> Value {
        let body = json!({ "name": slug.to_uppercase(), "slug": slug, "approval_required": approval_required });
        expect_status(self.create_group(&owner.access, &body).await, StatusCode::CREATED).await
    }

    async fn join_group(&self, who: &SignedIn, slug: &str) -> Response {
        self.post_auth(&at(slug, "/join"), &who.access, &json!({})).await
    }

    /// Signs `n` in and makes them an active member of the open group `slug` with `role`.
    async fn member_of(&self, owner: &SignedIn, slug: &str, n: u32, role: &str) -> SignedIn {
        let who = self.sign_in(&phone(n)).await;
        let body = expect_status(self.join_group(&who, slug).await, StatusCode::OK).await;
        assert_eq!(body, json!({ "status": "active" }));
        if role != "member" {
            expect_status(self.change_role(owner, slug, who.id(), role).await, StatusCode::OK)
                .await;
        }
        who
    }

    async fn standing(&self, who: &SignedIn, slug: &str) -> Response {
        self.get_auth(&at(slug, "/me"), &who.access).await
    }

    /// The caller's role in the group (asserts 200 on `GET .../me`).
    async fn role_in(&self, who: &SignedIn, slug: &str) -> String {
        let body = expect_status(self.standing(who, slug).await, StatusCode::OK).await;
        body["role"].as_str().expect("a role").to_owned()
    }

    async fn change_role(&self, by: &SignedIn, slug: &str, target: &str, role: &str) -> Response {
        self.put_auth(
            &at(slug, &format!("/members/{target}")),
            &by.access,
            &json!({ "role": role }),
        )
        .await
    }

    async fn remove_member(&self, by: &SignedIn, slug: &str, target: &str) -> Response {
        self.delete_auth(&at(slug, &format!("/members/{target}")), &by.access).await
    }

    /// `query` is the query string without `?` (may be empty).
    async fn group_members(&self, who: &SignedIn, slug: &str, query: &str) -> Response {
        self.get_auth(&at(slug, &format!("/members?{query}")), &who.access).await
    }

    async fn decide(&self, by: &SignedIn, slug: &str, target: &str, decision: &str) -> Response {
        let path = at(slug, &format!("/join-requests/{target}/{decision}"));
        self.post_auth(&path, &by.access, &json!({})).await
    }

    async fn set_current_group(&self, token: &str, slug: &str) -> Response {
        self.put_auth(CURRENT_GROUP, token, &json!({ "slug": slug })).await
    }

    /// A fresh access token for the session of `refresh` and its successor refresh token.
    async fn refreshed(&self, refresh: &str) -> (String, String) {
        let body = expect_status(self.refresh(refresh).await, StatusCode::OK).await;
        (
            body["access_token"].as_str().expect("access_token").to_owned(),
            body["refresh_token"].as_str().expect("refresh_token").to_owned(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------------

async fn a_group_is_created_with_a_given_or_derived_slug_and_owned_by_its_creator(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;

    let resp = app.create_group(&me.access, &json!({ "name": "  Acme  ", "slug": "acme" })).await;
    let acme = expect_status(resp, StatusCode::CREATED).await;
    assert_eq!(keys(&acme), GROUP_KEYS);
    assert_eq!(acme["slug"], "acme");
    assert_eq!(acme["name"], "Acme", "the name is trimmed");
    assert_eq!(acme["approval_required"], false, "open by default");
    assert_eq!(acme["my_role"], "owner");
    let id = acme["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7, "ids are UUID v7");
    acme["created_at"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();

    let resp = app
        .create_group(
            &me.access,
            &json!({ "name": "Acme Corp. (Seoul)", "approval_required": true }),
        )
        .await;
    let derived = expect_status(resp, StatusCode::CREATED).await;
    let slug = derived["slug"].as_str().unwrap();
    let suffix = slug.strip_prefix("acme-corp-seoul-").unwrap_or_else(|| panic!("derived: {slug}"));
    assert!(
        suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "six random characters end a derived slug: {slug}"
    );
    assert_eq!(derived["approval_required"], true);

    // A name of no ASCII letter still gets a slug; the same name twice gets two.
    let first = app.create_group(&me.access, &json!({ "name": "Команда" })).await;
    let first = expect_status(first, StatusCode::CREATED).await;
    assert!(first["slug"].as_str().unwrap().starts_with("group-"), "{first}");
    let second = app.create_group(&me.access, &json!({ "name": "Команда" })).await;
    let second = expect_status(second, StatusCode::CREATED).await;
    assert_ne!(first["slug"], second["slug"]);

    let body = expect_status(app.get_auth(&at("acme", ""), &me.access).await, StatusCode::OK).await;
    assert_eq!(body, acme, "the group reads back as it was created");
    let body = expect_status(app.standing(&me, slug).await, StatusCode::OK).await;
    assert_eq!(body["role"], "owner");
    assert_eq!(body["status"], "active");
}

async fn a_slug_belongs_to_one_group_only(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let ann = app.sign_in(&phone(1)).await;
    let bob = app.sign_in(&phone(2)).await;
    app.new_group(&ann, "acme", false).await;

    for who in [&bob, &ann] {
        let resp = app.create_group(&who.access, &json!({ "name": "Other", "slug": "acme" })).await;
        assert_problem(resp, StatusCode::CONFLICT, "slug_taken").await;
    }
    // Nothing of the refused create remains: Bob is in no group but his own workspace.
    let mine = expect_status(app.get_auth(GROUPS, &bob.access).await, StatusCode::OK).await;
    assert!(!field_of_items(&mine, "slug").contains(&"acme".to_owned()));
    let acme =
        expect_status(app.get_auth(&at("acme", ""), &ann.access).await, StatusCode::OK).await;
    assert_eq!(acme["name"], "ACME");
}

async fn a_bad_name_or_slug_is_refused_naming_the_field(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let long_name = "a".repeat(101);
    for name in ["", "   ", long_name.as_str(), "Acme\u{7}Corp"] {
        let resp = app.create_group(&me.access, &json!({ "name": name, "slug": "acme" })).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "name", "for {name:?}");
    }
    let long_slug = "a".repeat(41);
    for slug in ["ab", "-acme", "acme-", "Acme", "ac_me", "ac me", " acme", long_slug.as_str(), ""]
    {
        let resp = app.create_group(&me.access, &json!({ "name": "Acme", "slug": slug })).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "slug", "for {slug:?}");
    }
    // The bounds themselves are fine.
    let hundred = "é".repeat(100);
    let forty = "a".repeat(40);
    for (name, slug) in [(hundred.as_str(), "abc"), ("A", forty.as_str()), ("A", "a-1")] {
        let resp = app.create_group(&me.access, &json!({ "name": name, "slug": slug })).await;
        let body = expect_status(resp, StatusCode::CREATED).await;
        assert_eq!(body["name"], name);
    }
}

async fn my_groups_list_active_memberships_in_join_order_page_by_page(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let other = app.sign_in(&phone(2)).await;
    let workspace = me.member["current_group"].as_str().unwrap().to_owned();
    for slug in ["g-one", "g-two", "g-three", "g-four"] {
        app.new_group(&me, slug, false).await;
    }
    app.new_group(&other, "closed", true).await;
    app.new_group(&other, "open", false).await;
    expect_status(app.join_group(&me, "closed").await, StatusCode::ACCEPTED).await;
    expect_status(app.join_group(&me, "open").await, StatusCode::OK).await;
    let expected = [workspace.as_str(), "g-one", "g-two", "g-three", "g-four", "open"];

    let all = expect_status(app.get_auth(GROUPS, &me.access).await, StatusCode::OK).await;
    assert_eq!(field_of_items(&all, "slug"), expected, "pending memberships are not listed");
    assert!(all["next_cursor"].is_null());
    for group in all["items"].as_array().unwrap() {
        assert_eq!(keys(group), GROUP_KEYS);
    }
    let roles = field_of_items(&all, "my_role");
    assert_eq!(roles, ["owner", "owner", "owner", "owner", "owner", "member"]);

    let mut slugs = Vec::new();
    let mut path = format!("{GROUPS}?limit=4");
    let mut pages = 0;
    loop {
        let page = expect_status(app.get_auth(&path, &me.access).await, StatusCode::OK).await;
        pages += 1;
        slugs.extend(field_of_items(&page, "slug"));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{GROUPS}?limit=4&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(slugs, expected);

    // A page exactly as long as the list has no next page.
    let page =
        expect_status(app.get_auth(&format!("{GROUPS}?limit=6"), &me.access).await, StatusCode::OK)
            .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 6);
    assert!(page["next_cursor"].is_null());

    for query in ["limit=0", "limit=101", "cursor=not-a-cursor"] {
        let resp = app.get_auth(&format!("{GROUPS}?{query}"), &me.access).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), query.split('=').next().unwrap(), "{query}");
    }
}

async fn a_group_is_not_found_for_strangers_and_pending_members(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    let stranger = app.sign_in(&phone(2)).await;
    let pending = app.sign_in(&phone(3)).await;
    app.new_group(&owner, "acme", true).await;
    expect_status(app.join_group(&pending, "acme").await, StatusCode::ACCEPTED).await;

    for who in [&stranger, &pending] {
        for path in [at("acme", ""), at("acme", "/roles"), at("acme", "/members")] {
            assert_problem(
                app.get_auth(&path, &who.access).await,
                StatusCode::NOT_FOUND,
                "not_found",
            )
            .await;
        }
        let resp = app.patch_auth(&at("acme", ""), &who.access, &json!({ "name": "Mine" })).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_problem(app.standing(&stranger, "acme").await, StatusCode::NOT_FOUND, "not_found").await;
    // An unknown group and a path that is no slug name no group either.
    for slug in ["nope", "NO", "x"] {
        let resp = app.get_auth(&at(slug, ""), &owner.access).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
        assert_problem(app.standing(&owner, slug).await, StatusCode::NOT_FOUND, "not_found").await;
    }
}

async fn patching_a_group_needs_group_manage(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let admin = app.member_of(&owner, "acme", 2, "admin").await;
    let plain = app.member_of(&owner, "acme", 3, "member").await;

    let resp = app.patch_auth(&at("acme", ""), &plain.access, &json!({ "name": "Mine" })).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;

    let resp =
        app.patch_auth(&at("acme", ""), &owner.access, &json!({ "name": " Acme Ltd " })).await;
    let body = expect_status(resp, StatusCode::OK).await;
    assert_eq!(keys(&body), GROUP_KEYS);
    assert_eq!(body["name"], "Acme Ltd");
    assert_eq!(body["approval_required"], false, "an absent field stays as it is");
    assert_eq!(body["slug"], "acme");

    let resp =
        app.patch_auth(&at("acme", ""), &admin.access, &json!({ "approval_required": true })).await;
    let body = expect_status(resp, StatusCode::OK).await;
    assert_eq!(body["approval_required"], true);
    assert_eq!(body["name"], "Acme Ltd");
    assert_eq!(body["my_role"], "admin");

    let body = expect_status(
        app.patch_auth(&at("acme", ""), &admin.access, &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["name"], "Acme Ltd");

    for name in ["", "  ", &"x".repeat(101)] {
        let resp = app.patch_auth(&at("acme", ""), &owner.access, &json!({ "name": name })).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "name");
    }
    let body =
        expect_status(app.get_auth(&at("acme", ""), &plain.access).await, StatusCode::OK).await;
    assert_eq!(body["name"], "Acme Ltd");
    assert_eq!(body["approval_required"], true);
    assert_eq!(body["my_role"], "member");
}

async fn only_an_owner_deletes_a_group_and_it_stops_being_anyones_current_group(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let admin = app.member_of(&owner, "acme", 2, "admin").await;
    let plain = app.member_of(&owner, "acme", 3, "member").await;
    expect_status(app.set_current_group(&plain.access, "acme").await, StatusCode::OK).await;

    for who in [&admin, &plain] {
        let resp = app.delete_auth(&at("acme", ""), &who.access).await;
        assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let resp = app.delete_auth(&at("acme", ""), &owner.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    for who in [&owner, &admin, &plain] {
        let resp = app.get_auth(&at("acme", ""), &who.access).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
        let mine = expect_status(app.get_auth(GROUPS, &who.access).await, StatusCode::OK).await;
        assert!(!field_of_items(&mine, "slug").contains(&"acme".to_owned()));
    }
    assert!(app.me(&plain.access).await["current_group"].is_null());
    let resp = app.delete_auth(&at("acme", ""), &owner.access).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    // The slug is free again.
    app.new_group(&plain, "acme", false).await;
}

// ---------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------

async fn the_roles_are_the_builtins_then_the_custom_ones_by_name(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let plain = app.member_of(&owner, "acme", 2, "member").await;
    for (name, permissions) in [
        ("support", json!(["messages.send"])),
        ("auditor", json!([])),
        ("hr", json!(["members.manage", "invites.manage"])),
    ] {
        let body = json!({ "name": name, "permissions": permissions });
        expect_status(
            app.post_auth(&at("acme", "/roles"), &owner.access, &body).await,
            StatusCode::CREATED,
        )
        .await;
    }

    // Any active member reads them.
    let body =
        expect_status(app.get_auth(&at("acme", "/roles"), &plain.access).await, StatusCode::OK)
            .await;
    assert_eq!(keys(&body), ["items"]);
    let roles = body["items"].as_array().unwrap();
    let names: Vec<&str> = roles.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["owner", "admin", "member", "auditor", "hr", "support"]);
    for role in roles {
        assert_eq!(keys(role), ["builtin", "name", "permissions"]);
        assert_eq!(
            role["builtin"],
            ["owner", "admin", "member"].contains(&role["name"].as_str().unwrap())
        );
    }
    assert_eq!(sorted_strings(&roles[0]["permissions"]), BUILTIN_PERMISSIONS);
    assert_eq!(sorted_strings(&roles[1]["permissions"]), BUILTIN_PERMISSIONS);
    assert_eq!(roles[2]["permissions"], json!([]));
    assert_eq!(roles[3]["permissions"], json!([]));
    assert_eq!(sorted_strings(&roles[4]["permissions"]), ["invites.manage", "members.manage"]);
    assert_eq!(sorted_strings(&roles[5]["permissions"]), ["messages.send"]);
}

async fn me_answers_the_standing_of_an_active_or_a_pending_member(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let admin = app.member_of(&owner, "acme", 2, "admin").await;
    let plain = app.member_of(&owner, "acme", 3, "member").await;
    let body = json!({ "name": "support", "permissions": ["messages.send", "invites.manage"] });
    expect_status(
        app.post_auth(&at("acme", "/roles"), &owner.access, &body).await,
        StatusCode::CREATED,
    )
    .await;
    let support = app.member_of(&owner, "acme", 4, "support").await;

    for (who, role, permissions) in [
        (&owner, "owner", BUILTIN_PERMISSIONS.to_vec()),
        (&admin, "admin", BUILTIN_PERMISSIONS.to_vec()),
        (&plain, "member", vec![]),
        (&support, "support", vec!["invites.manage", "messages.send"]),
    ] {
        let body = expect_status(app.standing(who, "acme").await, StatusCode::OK).await;
        assert_eq!(keys(&body), ["permissions", "role", "status"]);
        assert_eq!(body["role"], role);
        assert_eq!(body["status"], "active");
        assert_eq!(sorted_strings(&body["permissions"]), permissions, "{role}");
    }

    app.new_group(&owner, "closed", true).await;
    expect_status(app.join_group(&plain, "closed").await, StatusCode::ACCEPTED).await;
    let body = expect_status(app.standing(&plain, "closed").await, StatusCode::OK).await;
    assert_eq!(body, json!({ "role": "member", "permissions": [], "status": "pending" }));
}

async fn a_custom_role_is_created_once_never_as_a_builtin_nor_with_an_unknown_permission(
    wiring: Wiring,
) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let admin = app.member_of(&owner, "acme", 2, "admin").await;
    let plain = app.member_of(&owner, "acme", 3, "member").await;
    let roles = at("acme", "/roles");

    let body = json!({ "name": "support", "permissions": ["messages.send", "invites.manage", "messages.send"] });
    let role =
        expect_status(app.post_auth(&roles, &owner.access, &body).await, StatusCode::CREATED).await;
    assert_eq!(keys(&role), ["builtin", "name", "permissions"]);
    assert_eq!(role["name"], "support");
    assert_eq!(role["builtin"], false);
    assert_eq!(sorted_strings(&role["permissions"]), ["invites.manage", "messages.send"]);

    for who in [&owner, &admin] {
        let resp = app
            .post_auth(&roles, &who.access, &json!({ "name": "support", "permissions": [] }))
            .await;
        assert_problem(resp, StatusCode::CONFLICT, "role_exists").await;
    }
    for name in ["owner", "admin", "member"] {
        let resp =
            app.post_auth(&roles, &owner.access, &json!({ "name": name, "permissions": [] })).await;
        assert_problem(resp, StatusCode::CONFLICT, "role_builtin").await;
    }
    let body = json!({ "name": "ops", "permissions": ["messages.send", "orders.read"] });
    let problem = assert_problem(
        app.post_auth(&roles, &owner.access, &body).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_eq!(first_error_field(&problem), "permissions");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("orders.read"), "{problem}");
    let long = "r".repeat(41);
    for name in ["", "Ops", "o p", long.as_str()] {
        let body = json!({ "name": name, "permissions": [] });
        let resp = app.post_auth(&roles, &owner.access, &body).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "name", "for {name:?}");
    }
    let resp =
        app.post_auth(&roles, &plain.access, &json!({ "name": "mine", "permissions": [] })).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;

    // An admin holds group.manage too; nothing refused was written.
    let body = json!({ "name": "ops_2", "permissions": ["billing.manage"] });
    expect_status(app.post_auth(&roles, &admin.access, &body).await, StatusCode::CREATED).await;
    let list = expect_status(app.get_auth(&roles, &plain.access).await, StatusCode::OK).await;
    let names: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["owner", "admin", "member", "ops_2", "support"]);
}

async fn a_custom_role_is_edited_but_a_builtin_or_unknown_one_is_not(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let plain = app.member_of(&owner, "acme", 2, "member").await;
    let body = json!({ "name": "support", "permissions": ["messages.send"] });
    expect_status(
        app.post_auth(&at("acme", "/roles"), &owner.access, &body).await,
        StatusCode::CREATED,
    )
    .await;
    let support = app.member_of(&owner, "acme", 3, "support").await;

    let edit = json!({ "permissions": ["invites.manage", "members.manage"] });
    let resp = app.put_auth(&at("acme", "/roles/support"), &owner.access, &edit).await;
    let role = expect_status(resp, StatusCode::OK).await;
    assert_eq!(role["name"], "support");
    assert_eq!(role["builtin"], false);
    assert_eq!(sorted_strings(&role["permissions"]), ["invites.manage", "members.manage"]);
    // The holders of the role hold the new permissions at once.
    let body = expect_status(app.standing(&support, "acme").await, StatusCode::OK).await;
    assert_eq!(sorted_strings(&body["permissions"]), ["invites.manage", "members.manage"]);

    for name in ["owner", "admin", "member"] {
        let resp = app.put_auth(&at("acme", &format!("/roles/{name}")), &owner.access, &edit).await;
        assert_problem(resp, StatusCode::CONFLICT, "role_builtin").await;
    }
    for name in ["ghost", "NOT_A_ROLE"] {
        let resp = app.put_auth(&at("acme", &format!("/roles/{name}")), &owner.access, &edit).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "role_not_found").await;
    }
    let resp = app.put_auth(&at("acme", "/roles/support"), &plain.access, &edit).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let bad = json!({ "permissions": ["members.manage", "launch.rockets"] });
    let resp = app.put_auth(&at("acme", "/roles/support"), &owner.access, &bad).await;
    let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(first_error_field(&problem), "permissions");

    let role = expect_status(
        app.put_auth(&at("acme", "/roles/support"), &owner.access, &json!({ "permissions": [] }))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(role["permissions"], json!([]));
    let body = expect_status(app.standing(&support, "acme").await, StatusCode::OK).await;
    assert_eq!(body["permissions"], json!([]));
}

async fn deleting_a_role_moves_its_members_to_member(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let plain = app.member_of(&owner, "acme", 2, "member").await;
    let body = json!({ "name": "manager", "permissions": ["members.manage"] });
    expect_status(
        app.post_auth(&at("acme", "/roles"), &owner.access, &body).await,
        StatusCode::CREATED,
    )
    .await;
    let first = app.member_of(&owner, "acme", 3, "manager").await;
    let second = app.member_of(&owner, "acme", 4, "manager").await;
    // A manager lists join requests; a plain member does not.
    expect_status(app.get_auth(&at("acme", "/join-requests"), &first.access).await, StatusCode::OK)
        .await;

    let resp = app.delete_auth(&at("acme", "/roles/manager"), &plain.access).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    for name in ["owner", "admin", "member"] {
        let resp = app.delete_auth(&at("acme", &format!("/roles/{name}")), &owner.access).await;
        assert_problem(resp, StatusCode::CONFLICT, "role_builtin").await;
    }

    let resp = app.delete_auth(&at("acme", "/roles/manager"), &owner.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for who in [&first, &second] {
        let body = expect_status(app.standing(who, "acme").await, StatusCode::OK).await;
        assert_eq!(body, json!({ "role": "member", "permissions": [], "status": "active" }));
        let resp = app.get_auth(&at("acme", "/join-requests"), &who.access).await;
        assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let list = expect_status(app.group_members(&owner, "acme", "").await, StatusCode::OK).await;
    let roles = field_of_items(&list, "role");
    assert_eq!(roles, ["owner", "member", "member", "member"]);
    let body =
        expect_status(app.get_auth(&at("acme", "/roles"), &owner.access).await, StatusCode::OK)
            .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 3, "only the built-ins are left: {body}");

    let resp = app.delete_auth(&at("acme", "/roles/manager"), &owner.access).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "role_not_found").await;
    // The name is free again.
    let body = json!({ "name": "manager", "permissions": [] });
    expect_status(
        app.post_auth(&at("acme", "/roles"), &owner.access, &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(app.role_in(&first, "acme").await, "member", "a new role of the name is not theirs");
}

// ---------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------

async fn the_members_list_shows_active_members_and_pending_ones_only_to_managers(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    let patch = json!({ "first_name": "Olga", "last_name": "Owner" });
    expect_status(app.patch_me(&owner.access, &patch).await, StatusCode::OK).await;
    app.new_group(&owner, "acme", false).await;
    let plain = app.member_of(&owner, "acme", 2, "member").await;
    let admin = app.member_of(&owner, "acme", 3, "admin").await;
    let patch = json!({ "approval_required": true });
    expect_status(app.patch_auth(&at("acme", ""), &owner.access, &patch).await, StatusCode::OK)
        .await;
    let waiting = app.sign_in(&phone(4)).await;
    expect_status(app.join_group(&waiting, "acme").await, StatusCode::ACCEPTED).await;

    let list = expect_status(app.group_members(&plain, "acme", "").await, StatusCode::OK).await;
    assert!(list["next_cursor"].is_null());
    let items = list["items"].as_array().unwrap();
    for item in items {
        assert_eq!(keys(item), GROUP_MEMBER_KEYS);
        assert_eq!(item["status"], "active");
        item["joined_at"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    }
    assert_eq!(
        field_of_items(&list, "member_id"),
        [owner.id(), plain.id(), admin.id()],
        "join order"
    );
    assert_eq!(field_of_items(&list, "phone"), [phone(1), phone(2), phone(3)]);
    assert_eq!(field_of_items(&list, "role"), ["owner", "member", "admin"]);
    assert_eq!(items[0]["first_name"], "Olga");
    assert_eq!(items[0]["last_name"], "Owner");
    assert!(items[1]["first_name"].is_null());

    // `status=active` is the default.
    let explicit =
        expect_status(app.group_members(&plain, "acme", "status=active").await, StatusCode::OK)
            .await;
    assert_eq!(explicit, list);

    let mut ids = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page =
            expect_status(app.group_members(&owner, "acme", &query).await, StatusCode::OK).await;
        ids.extend(field_of_items(&page, "member_id"));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(ids, [owner.id(), plain.id(), admin.id()]);

    for who in [&owner, &admin] {
        let pending =
            expect_status(app.group_members(who, "acme", "status=pending").await, StatusCode::OK)
                .await;
        assert_eq!(field_of_items(&pending, "member_id"), [waiting.id()]);
        assert_eq!(pending["items"][0]["status"], "pending");
        assert_eq!(pending["items"][0]["role"], "member");
        assert_eq!(pending["items"][0]["phone"], phone(4));
    }
    let resp = app.group_members(&plain, "acme", "status=pending").await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;

    for query in ["status=banned", "limit=0", "limit=101", "cursor=bogus"] {
        let resp = app.group_members(&owner, "acme", query).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), query.split('=').next().unwrap(), "{query}");
    }
}

async fn a_role_change_follows_the_owner_and_self_rules(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let admin = app.member_of(&owner, "acme", 2, "admin").await;
    let plain = app.member_of(&owner, "acme", 3, "member").await;
    let other = app.member_of(&owner, "acme", 4, "member").await;
    let stranger = app.sign_in(&phone(5)).await;

    // An owner gives any role; the answer is the member.
    let resp = app.change_role(&owner, "acme", other.id(), "admin").await;
    let body = expect_status(resp, StatusCode::OK).await;
    assert_eq!(keys(&body), GROUP_MEMBER_KEYS);
    assert_eq!(body["member_id"], other.id());
    assert_eq!(body["role"], "admin");
    assert_eq!(body["status"], "active");
    assert_eq!(body["phone"], phone(4));
    assert_eq!(app.role_in(&other, "acme").await, "admin");

    // Nobody changes their own role, owners included.
    for (who, role) in [(&owner, "admin"), (&admin, "member"), (&owner, "owner")] {
        let resp = app.change_role(who, "acme", who.id(), role).await;
        assert_problem(resp, StatusCode::CONFLICT, "cannot_change_own_role").await;
    }
    // A plain member changes nobody's role.
    let resp = app.change_role(&plain, "acme", other.id(), "member").await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    // An admin neither grants `owner` nor touches an owner.
    let resp = app.change_role(&admin, "acme", plain.id(), "owner").await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = app.change_role(&admin, "acme", owner.id(), "member").await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    // But changes the others.
    let body =
        expect_status(app.change_role(&admin, "acme", other.id(), "member").await, StatusCode::OK)
            .await;
    assert_eq!(body["role"], "member");

    // Only active members of the group have a role here.
    let ghost = uuid::Uuid::now_v7().to_string();
    for target in [ghost.as_str(), stranger.id()] {
        let resp = app.change_role(&owner, "acme", target, "admin").await;
        assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    }
    expect_status(
        app.patch_auth(&at("acme", ""), &owner.access, &json!({ "approval_required": true })).await,
        StatusCode::OK,
    )
    .await;
    expect_status(app.join_group(&stranger, "acme").await, StatusCode::ACCEPTED).await;
    let resp = app.change_role(&owner, "acme", stranger.id(), "admin").await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;

    // An unknown role, or no role name at all, names the field.
    for role in ["ghost", "Not A Role", ""] {
        let resp = app.change_role(&owner, "acme", plain.id(), role).await;
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(first_error_field(&problem), "role", "for {role:?}");
    }
    assert_eq!(app.role_in(&plain, "acme").await, "member", "nothing refused was written");

    // An owner makes another owner, who then may demote the first.
    expect_status(app.change_role(&owner, "acme", admin.id(), "owner").await, StatusCode::OK).await;
    let body =
        expect_status(app.change_role(&admin, "acme", owner.id(), "admin").await, StatusCode::OK)
            .await;
    assert_eq!(body["role"], "admin");
    // Now the sole owner, the new one is the last owner: an admin cannot touch them, and
    // they cannot leave (see the removal test) nor change their own role.
    let resp = app.change_role(&owner, "acme", admin.id(), "admin").await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = app.change_role(&admin, "acme", admin.id(), "admin").await;
    assert_problem(resp, StatusCode::CONFLICT, "cannot_change_own_role").await;
    assert_eq!(app.role_in(&admin, "acme").await, "owner");
}

async fn removing_a_member_follows_the_owner_rules_and_leaving_needs_no_permission(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let co_owner = app.member_of(&owner, "acme", 2, "owner").await;
    let admin = app.member_of(&owner, "acme", 3, "admin").await;
    let plain = app.member_of(&owner, "acme", 4, "member").await;
    let other = app.member_of(&owner, "acme", 5, "member").await;
    let leaver = app.member_of(&owner, "acme", 6, "member").await;

    // A plain member removes nobody; an admin removes no owner.
    let resp = app.remove_member(&plain, "acme", other.id()).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = app.remove_member(&admin, "acme", owner.id()).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;

    // An admin removes a member; an owner removes another owner.
    let resp = app.remove_member(&admin, "acme", other.id()).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_auth(&at("acme", ""), &other.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let resp = app.remove_member(&owner, "acme", other.id()).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app.remove_member(&owner, "acme", &uuid::Uuid::now_v7().to_string()).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;

    // Anyone leaves.
    let resp = app.remove_member(&leaver, "acme", leaver.id()).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_problem(app.standing(&leaver, "acme").await, StatusCode::NOT_FOUND, "not_found").await;

    let resp = app.remove_member(&owner, "acme", co_owner.id()).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // The last owner cannot leave; once someone else owns the group, they can.
    let resp = app.remove_member(&owner, "acme", owner.id()).await;
    assert_problem(resp, StatusCode::CONFLICT, "last_owner").await;
    assert_eq!(app.role_in(&owner, "acme").await, "owner");
    expect_status(app.change_role(&owner, "acme", admin.id(), "owner").await, StatusCode::OK).await;
    let resp = app.remove_member(&owner, "acme", owner.id()).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app.remove_member(&admin, "acme", admin.id()).await;
    assert_problem(resp, StatusCode::CONFLICT, "last_owner").await;

    let list = expect_status(app.group_members(&plain, "acme", "").await, StatusCode::OK).await;
    assert_eq!(field_of_items(&list, "member_id"), [admin.id(), plain.id()]);
    // Those who left may come back, as members.
    expect_status(app.join_group(&owner, "acme").await, StatusCode::OK).await;
    assert_eq!(app.role_in(&owner, "acme").await, "member");
}

async fn being_removed_or_leaving_clears_that_current_group_only(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    app.new_group(&owner, "other", false).await;
    let removed = app.member_of(&owner, "acme", 2, "member").await;
    let leaver = app.member_of(&owner, "acme", 3, "member").await;
    let elsewhere = app.member_of(&owner, "acme", 4, "member").await;
    expect_status(app.join_group(&elsewhere, "other").await, StatusCode::OK).await;
    for who in [&removed, &leaver] {
        expect_status(app.set_current_group(&who.access, "acme").await, StatusCode::OK).await;
    }
    expect_status(app.set_current_group(&elsewhere.access, "other").await, StatusCode::OK).await;

    assert_eq!(
        app.remove_member(&owner, "acme", removed.id()).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.remove_member(&leaver, "acme", leaver.id()).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.remove_member(&owner, "acme", elsewhere.id()).await.status(),
        StatusCode::NO_CONTENT
    );

    for who in [&removed, &leaver] {
        assert!(app.me(&who.access).await["current_group"].is_null(), "cleared");
        let (access, _) = app.refreshed(&who.refresh).await;
        assert!(claims_of(&access).get("grp").is_none(), "and gone from the next token");
    }
    assert_eq!(app.me(&elsewhere.access).await["current_group"], "other", "another group stays");
}

// ---------------------------------------------------------------------------------------------
// Joining
// ---------------------------------------------------------------------------------------------

async fn joining_an_open_group_is_immediate_and_joining_twice_is_a_conflict(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    let joiner = app.sign_in(&phone(2)).await;
    app.new_group(&owner, "acme", false).await;

    let body = expect_status(app.join_group(&joiner, "acme").await, StatusCode::OK).await;
    assert_eq!(body, json!({ "status": "active" }));
    let group =
        expect_status(app.get_auth(&at("acme", ""), &joiner.access).await, StatusCode::OK).await;
    assert_eq!(group["my_role"], "member");
    let body = expect_status(app.standing(&joiner, "acme").await, StatusCode::OK).await;
    assert_eq!(body, json!({ "role": "member", "permissions": [], "status": "active" }));

    for who in [&joiner, &owner] {
        assert_problem(app.join_group(who, "acme").await, StatusCode::CONFLICT, "already_member")
            .await;
    }
    assert_eq!(app.role_in(&owner, "acme").await, "owner", "a refused join changes nothing");
    for slug in ["nope", "NOPE"] {
        assert_problem(app.join_group(&joiner, slug).await, StatusCode::NOT_FOUND, "not_found")
            .await;
    }
}

async fn joining_a_group_that_needs_approval_waits_as_a_pending_request(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let plain = app.member_of(&owner, "acme", 2, "member").await;
    let admin = app.member_of(&owner, "acme", 3, "admin").await;
    expect_status(
        app.patch_auth(&at("acme", ""), &owner.access, &json!({ "approval_required": true })).await,
        StatusCode::OK,
    )
    .await;
    let first = app.sign_in(&phone(4)).await;
    let second = app.sign_in(&phone(5)).await;

    for who in [&first, &second, &first] {
        let resp = app.join_group(who, "acme").await;
        let body = expect_status(resp, StatusCode::ACCEPTED).await;
        assert_eq!(body, json!({ "status": "pending" }), "asking again changes nothing");
    }
    assert_problem(app.join_group(&plain, "acme").await, StatusCode::CONFLICT, "already_member")
        .await;

    for who in [&owner, &admin] {
        let resp = app.get_auth(&at("acme", "/join-requests"), &who.access).await;
        let list = expect_status(resp, StatusCode::OK).await;
        assert_eq!(field_of_items(&list, "member_id"), [first.id(), second.id()], "oldest first");
        for item in list["items"].as_array().unwrap() {
            assert_eq!(keys(item), GROUP_MEMBER_KEYS);
            assert_eq!(item["status"], "pending");
        }
        assert!(list["next_cursor"].is_null());
    }
    let page = expect_status(
        app.get_auth(&at("acme", "/join-requests?limit=1"), &owner.access).await,
        StatusCode::OK,
    )
    .await;
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let path = at("acme", &format!("/join-requests?limit=1&cursor={cursor}"));
    let next = expect_status(app.get_auth(&path, &owner.access).await, StatusCode::OK).await;
    assert_eq!(field_of_items(&next, "member_id"), [second.id()]);

    let resp = app.get_auth(&at("acme", "/join-requests"), &plain.access).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = app.get_auth(&at("acme", "/join-requests"), &first.access).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;

    // The requests are not members.
    let list = expect_status(app.group_members(&plain, "acme", "").await, StatusCode::OK).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
}

async fn a_pending_member_is_a_member_nowhere(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", true).await;
    let pending = app.sign_in(&phone(2)).await;
    expect_status(app.join_group(&pending, "acme").await, StatusCode::ACCEPTED).await;

    assert_problem(
        app.get_auth(&at("acme", ""), &pending.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let mine = expect_status(app.get_auth(GROUPS, &pending.access).await, StatusCode::OK).await;
    assert!(!field_of_items(&mine, "slug").contains(&"acme".to_owned()));
    let resp = app.set_current_group(&pending.access, "acme").await;
    assert_problem(resp, StatusCode::FORBIDDEN, "not_a_member").await;
    let resp = app.remove_member(&pending, "acme", pending.id()).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app.remove_member(&owner, "acme", pending.id()).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    // Nor does waiting make strangers fellow members.
    let card =
        expect_status(app.get_member(&owner.access, pending.id()).await, StatusCode::OK).await;
    assert_eq!(keys(&card), CARD_KEYS);
    let card =
        expect_status(app.get_member(&pending.access, owner.id()).await, StatusCode::OK).await;
    assert_eq!(keys(&card), CARD_KEYS);
}

async fn a_join_request_is_approved_or_rejected_once(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let plain = app.member_of(&owner, "acme", 2, "member").await;
    expect_status(
        app.patch_auth(&at("acme", ""), &owner.access, &json!({ "approval_required": true })).await,
        StatusCode::OK,
    )
    .await;
    let approved = app.sign_in(&phone(3)).await;
    let rejected = app.sign_in(&phone(4)).await;
    let stranger = app.sign_in(&phone(5)).await;
    for who in [&approved, &rejected] {
        expect_status(app.join_group(who, "acme").await, StatusCode::ACCEPTED).await;
    }

    for decision in ["approve", "reject"] {
        let resp = app.decide(&plain, "acme", approved.id(), decision).await;
        assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    }

    let body =
        expect_status(app.decide(&owner, "acme", approved.id(), "approve").await, StatusCode::OK)
            .await;
    assert_eq!(keys(&body), GROUP_MEMBER_KEYS);
    assert_eq!(body["member_id"], approved.id());
    assert_eq!(body["role"], "member");
    assert_eq!(body["status"], "active");
    assert_eq!(body["phone"], phone(3));
    let group =
        expect_status(app.get_auth(&at("acme", ""), &approved.access).await, StatusCode::OK).await;
    assert_eq!(group["my_role"], "member");

    let resp = app.decide(&owner, "acme", rejected.id(), "reject").await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_problem(app.standing(&rejected, "acme").await, StatusCode::NOT_FOUND, "not_found").await;

    // No pending request: decided already, an active member, a stranger, nobody.
    let ghost = uuid::Uuid::now_v7().to_string();
    for target in [approved.id(), rejected.id(), plain.id(), stranger.id(), ghost.as_str()] {
        for decision in ["approve", "reject"] {
            let resp = app.decide(&owner, "acme", target, decision).await;
            assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
    assert_eq!(app.role_in(&plain, "acme").await, "member", "an active member stays as they are");
    let list = expect_status(
        app.get_auth(&at("acme", "/join-requests"), &owner.access).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["items"], json!([]));

    // A rejected member may ask again.
    expect_status(app.join_group(&rejected, "acme").await, StatusCode::ACCEPTED).await;
}

// ---------------------------------------------------------------------------------------------
// Deployment permissions, personal workspace, current group
// ---------------------------------------------------------------------------------------------

async fn extra_permissions_serve_in_custom_roles_and_are_held_by_owners_and_admins(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.groups.extra_permissions =
            Permission::parse_list("orders.read,orders.write").expect("valid permissions");
    })
    .await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let admin = app.member_of(&owner, "acme", 2, "admin").await;
    let mut all: Vec<&str> = BUILTIN_PERMISSIONS.to_vec();
    all.extend(["orders.read", "orders.write"]);
    all.sort_unstable();

    for who in [&owner, &admin] {
        let body = expect_status(app.standing(who, "acme").await, StatusCode::OK).await;
        assert_eq!(sorted_strings(&body["permissions"]), all);
    }
    let roles =
        expect_status(app.get_auth(&at("acme", "/roles"), &owner.access).await, StatusCode::OK)
            .await;
    assert_eq!(sorted_strings(&roles["items"][0]["permissions"]), all, "owner");
    assert_eq!(sorted_strings(&roles["items"][1]["permissions"]), all, "admin");

    let body = json!({ "name": "clerk", "permissions": ["orders.read"] });
    let role = expect_status(
        app.post_auth(&at("acme", "/roles"), &admin.access, &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(role["permissions"], json!(["orders.read"]));
    let clerk = app.member_of(&owner, "acme", 3, "clerk").await;
    let body = expect_status(app.standing(&clerk, "acme").await, StatusCode::OK).await;
    assert_eq!(
        body,
        json!({ "role": "clerk", "permissions": ["orders.read"], "status": "active" })
    );

    let edit = json!({ "permissions": ["orders.read", "orders.write", "messages.send"] });
    let role = expect_status(
        app.put_auth(&at("acme", "/roles/clerk"), &owner.access, &edit).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        sorted_strings(&role["permissions"]),
        ["messages.send", "orders.read", "orders.write"]
    );

    let body = json!({ "name": "boss", "permissions": ["orders.delete"] });
    let resp = app.post_auth(&at("acme", "/roles"), &owner.access, &body).await;
    let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(first_error_field(&problem), "permissions");
}

async fn a_new_member_gets_a_personal_workspace_as_owner_and_current_group(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_limits.resend_interval_secs = 0).await;
    let me = app.sign_in(&phone(1)).await;
    let slug = me.member["current_group"].as_str().expect("a current group at sign-up").to_owned();
    let random = slug.strip_prefix("ws-").unwrap_or_else(|| panic!("a workspace slug: {slug}"));
    assert!(
        random.len() == 10 && random.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "ws- and ten of a-z0-9: {slug}"
    );
    assert_eq!(claims_of(&me.access)["grp"], slug.as_str(), "the token names it");
    assert_eq!(app.me(&me.access).await["current_group"], slug.as_str());

    let mine = expect_status(app.get_auth(GROUPS, &me.access).await, StatusCode::OK).await;
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{mine}");
    assert_eq!(items[0]["slug"], slug.as_str());
    assert_eq!(items[0]["my_role"], "owner");
    assert_eq!(items[0]["approval_required"], false);
    assert!(!items[0]["name"].as_str().unwrap().is_empty());
    let body = expect_status(app.standing(&me, &slug).await, StatusCode::OK).await;
    assert_eq!(body["role"], "owner");
    assert_eq!(sorted_strings(&body["permissions"]), BUILTIN_PERMISSIONS);

    // Signing in again makes none, and another member gets another.
    let again = app.sign_in(&phone(1)).await;
    assert_eq!(again.member["current_group"], slug.as_str());
    assert_eq!(claims_of(&again.access)["grp"], slug.as_str());
    let mine = expect_status(app.get_auth(GROUPS, &again.access).await, StatusCode::OK).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let other = app.sign_in(&phone(2)).await;
    assert_ne!(other.member["current_group"], slug.as_str());
    assert_problem(
        app.get_auth(&at(&slug, ""), &other.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn no_personal_workspace_is_made_when_it_is_turned_off(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.personal_workspace = false).await;
    let me = app.sign_in(&phone(1)).await;
    assert!(me.member["current_group"].is_null());
    assert!(claims_of(&me.access).get("grp").is_none());
    assert!(app.me(&me.access).await["current_group"].is_null());
    let mine = expect_status(app.get_auth(GROUPS, &me.access).await, StatusCode::OK).await;
    assert_eq!(mine, json!({ "items": [], "next_cursor": null }));
    // Nothing is made on refresh either.
    let (access, _) = app.refreshed(&me.refresh).await;
    assert!(claims_of(&access).get("grp").is_none());
}

async fn the_current_group_is_one_of_my_active_groups_and_the_next_token_carries_it(
    wiring: Wiring,
) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let other = app.sign_in(&phone(2)).await;
    let workspace = me.member["current_group"].as_str().unwrap().to_owned();
    app.new_group(&me, "acme", false).await;
    app.new_group(&other, "theirs", false).await;

    let body = expect_status(app.set_current_group(&me.access, "acme").await, StatusCode::OK).await;
    assert_eq!(keys(&body), MEMBER_KEYS);
    assert_eq!(body["id"], me.id());
    assert_eq!(body["current_group"], "acme");
    assert_eq!(app.me(&me.access).await["current_group"], "acme");
    // The token in hand keeps its claim; the next one carries the new group.
    assert_eq!(claims_of(&me.access)["grp"], workspace.as_str());
    let (access, refresh) = app.refreshed(&me.refresh).await;
    assert_eq!(claims_of(&access)["grp"], "acme");

    let resp = app.set_current_group(&access, "theirs").await;
    assert_problem(resp, StatusCode::FORBIDDEN, "not_a_member").await;
    for slug in ["nope", "NOT A SLUG"] {
        let resp = app.set_current_group(&access, slug).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(app.me(&access).await["current_group"], "acme", "a refused change changes nothing");

    let resp = app.delete_auth(CURRENT_GROUP, &access).await;
    let body = expect_status(resp, StatusCode::OK).await;
    assert_eq!(keys(&body), MEMBER_KEYS);
    assert!(body["current_group"].is_null());
    let (access, refresh) = app.refreshed(&refresh).await;
    assert!(claims_of(&access).get("grp").is_none(), "no current group, no grp claim");
    // Clearing twice is fine.
    let body = expect_status(app.delete_auth(CURRENT_GROUP, &access).await, StatusCode::OK).await;
    assert!(body["current_group"].is_null());

    // A group joined later may be chosen too.
    expect_status(app.join_group(&me, "theirs").await, StatusCode::OK).await;
    let body = expect_status(app.set_current_group(&access, "theirs").await, StatusCode::OK).await;
    assert_eq!(body["current_group"], "theirs");
    let (access, _) = app.refreshed(&refresh).await;
    assert_eq!(claims_of(&access)["grp"], "theirs");
}

async fn a_fellow_group_member_is_seen_in_full_and_a_stranger_as_a_card(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    app.new_group(&me, "acme", false).await;
    let fellow = app.member_of(&me, "acme", 2, "member").await;
    let stranger = app.sign_in(&phone(3)).await;
    let patch = json!({ "first_name": "Fay", "email": "fay@example.com" });
    expect_status(app.patch_me(&fellow.access, &patch).await, StatusCode::OK).await;

    for (viewer, seen) in [(&me, &fellow), (&fellow, &me)] {
        let body =
            expect_status(app.get_member(&viewer.access, seen.id()).await, StatusCode::OK).await;
        assert_eq!(keys(&body), MEMBER_KEYS, "a fellow member in full");
        let profile = app.me(&seen.access).await;
        for key in MEMBER_KEYS {
            assert_eq!(body[key], profile[key], "{key}");
        }
    }
    let body = expect_status(app.get_member(&me.access, fellow.id()).await, StatusCode::OK).await;
    assert_eq!(body["phone"], phone(2));
    assert_eq!(body["email"], "fay@example.com");

    for (viewer, seen) in [(&me, &stranger), (&stranger, &fellow)] {
        let card =
            expect_status(app.get_member(&viewer.access, seen.id()).await, StatusCode::OK).await;
        assert_eq!(keys(&card), CARD_KEYS, "a stranger as a card");
    }

    // Once they share no group, they are strangers.
    assert_eq!(
        app.remove_member(&fellow, "acme", fellow.id()).await.status(),
        StatusCode::NO_CONTENT
    );
    let card = expect_status(app.get_member(&me.access, fellow.id()).await, StatusCode::OK).await;
    assert_eq!(keys(&card), CARD_KEYS);
}

async fn deleting_me_is_refused_while_i_am_the_sole_owner_of_a_group_with_others(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let other = app.member_of(&owner, "acme", 2, "admin").await;

    let resp = app.delete_auth("/api/v1/members/me", &owner.access).await;
    assert_problem(resp, StatusCode::CONFLICT, "last_owner").await;
    // A refused deletion changes nothing: the member, their tokens and their groups stay.
    assert_eq!(app.me(&owner.access).await["id"], owner.id(), "still signed in");
    assert_eq!(app.role_in(&owner, "acme").await, "owner");
    let (access, _) = app.refreshed(&owner.refresh).await;
    assert_eq!(app.me(&access).await["id"], owner.id());
    let card = expect_status(app.get_member(&other.access, owner.id()).await, StatusCode::OK).await;
    assert_eq!(card["phone"], phone(1), "still a fellow member, phone and all");
}

async fn deleting_me_is_allowed_once_no_group_depends_on_me_alone(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(1)).await;
    app.new_group(&owner, "acme", false).await;
    let other = app.member_of(&owner, "acme", 2, "owner").await;

    // With a second owner, the first may go; the group stays with the other.
    let resp = app.delete_auth("/api/v1/members/me", &owner.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let group =
        expect_status(app.get_auth(&at("acme", ""), &other.access).await, StatusCode::OK).await;
    assert_eq!(group["my_role"], "owner");
    let list = expect_status(app.group_members(&other, "acme", "").await, StatusCode::OK).await;
    assert_eq!(field_of_items(&list, "member_id"), [other.id()], "the deleted member left it");

    // The sole member of groups of one's own (the personal workspace too) may go.
    let alone = app.sign_in(&phone(3)).await;
    app.new_group(&alone, "solo", false).await;
    let resp = app.delete_auth("/api/v1/members/me", &alone.access).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

async fn every_group_call_needs_a_valid_token(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let someone = uuid::Uuid::now_v7().to_string();
    let role = json!({ "name": "x", "permissions": [] });
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, GROUPS.into(), Some(json!({ "name": "Acme" }))),
        (Method::GET, GROUPS.into(), None),
        (Method::GET, at("acme", ""), None),
        (Method::PATCH, at("acme", ""), Some(json!({ "name": "X" }))),
        (Method::DELETE, at("acme", ""), None),
        (Method::GET, at("acme", "/roles"), None),
        (Method::POST, at("acme", "/roles"), Some(role)),
        (Method::PUT, at("acme", "/roles/x"), Some(json!({ "permissions": [] }))),
        (Method::DELETE, at("acme", "/roles/x"), None),
        (Method::GET, at("acme", "/me"), None),
        (Method::GET, at("acme", "/members"), None),
        (Method::PUT, at("acme", &format!("/members/{someone}")), Some(json!({ "role": "admin" }))),
        (Method::DELETE, at("acme", &format!("/members/{someone}")), None),
        (Method::POST, at("acme", "/join"), None),
        (Method::GET, at("acme", "/join-requests"), None),
        (Method::POST, at("acme", &format!("/join-requests/{someone}/approve")), None),
        (Method::POST, at("acme", &format!("/join-requests/{someone}/reject")), None),
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
}

// ---------------------------------------------------------------------------------------------
// Races
// ---------------------------------------------------------------------------------------------

async fn two_owners_demoting_each_other_at_once_leave_an_owner(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let ann = app.sign_in(&phone(1)).await;
    let bob = app.sign_in(&phone(2)).await;
    for round in 0..10 {
        let slug = format!("race-{round}");
        app.new_group(&ann, &slug, false).await;
        expect_status(app.join_group(&bob, &slug).await, StatusCode::OK).await;
        expect_status(app.change_role(&ann, &slug, bob.id(), "owner").await, StatusCode::OK).await;

        let (by_ann, by_bob) = tokio::join!(
            app.change_role(&ann, &slug, bob.id(), "admin"),
            app.change_role(&bob, &slug, ann.id(), "admin"),
        );
        let mut winners = 0;
        for resp in [by_ann, by_bob] {
            let status = no_server_error(&resp);
            if status == StatusCode::OK {
                winners += 1;
                let body = resp.json::<Value>().await.unwrap();
                assert_eq!(body["role"], "admin", "round {round}");
            } else {
                // The loser either found itself demoted (no longer allowed to touch an owner)
                // or the other the last owner.
                let body: Value = resp.json().await.unwrap();
                let code = body["code"].as_str().unwrap_or_default();
                assert!(
                    (status == StatusCode::CONFLICT && code == "last_owner")
                        || (status == StatusCode::FORBIDDEN && code == "forbidden"),
                    "round {round}: {status} {body}"
                );
            }
        }
        let list = expect_status(app.group_members(&ann, &slug, "").await, StatusCode::OK).await;
        let owners = field_of_items(&list, "role").iter().filter(|r| *r == "owner").count();
        assert!(owners >= 1, "round {round}: an owner remains: {list}");
        assert_eq!(winners, 1, "round {round}: exactly one demotion wins: {list}");
        assert_eq!(owners, 1, "round {round}: {list}");
    }
}

async fn a_join_request_approved_and_rejected_at_once_is_decided_once(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(100)).await;
    let admin = app.sign_in(&phone(101)).await;
    app.new_group(&owner, "acme", false).await;
    expect_status(app.join_group(&admin, "acme").await, StatusCode::OK).await;
    expect_status(app.change_role(&owner, "acme", admin.id(), "admin").await, StatusCode::OK).await;
    expect_status(
        app.patch_auth(&at("acme", ""), &owner.access, &json!({ "approval_required": true })).await,
        StatusCode::OK,
    )
    .await;
    let phones: Vec<String> = (0..8).map(phone).collect();
    let joiners = app.sign_in_all(&phones).await;
    let answers = join_all(joiners.iter().map(|j| app.join_group(j, "acme"))).await;
    for resp in answers {
        expect_status(resp, StatusCode::ACCEPTED).await;
    }

    for (round, joiner) in joiners.iter().enumerate() {
        // Alternate who approves, so either call may come first.
        let (approver, rejecter) = if round % 2 == 0 { (&owner, &admin) } else { (&admin, &owner) };
        let (approve, reject) = tokio::join!(
            app.decide(approver, "acme", joiner.id(), "approve"),
            app.decide(rejecter, "acme", joiner.id(), "reject"),
        );
        let (approve_status, reject_status) = (no_server_error(&approve), no_server_error(&reject));
        let approved = match (approve_status, reject_status) {
            (StatusCode::OK, StatusCode::NOT_FOUND) => {
                let body = approve.json::<Value>().await.unwrap();
                assert_eq!(body["status"], "active");
                assert_problem(reject, StatusCode::NOT_FOUND, "not_found").await;
                true
            }
            (StatusCode::NOT_FOUND, StatusCode::NO_CONTENT) => {
                assert_problem(approve, StatusCode::NOT_FOUND, "not_found").await;
                false
            }
            other => panic!("round {round}: exactly one decision wins, not {other:?}"),
        };
        let standing = app.standing(joiner, "acme").await;
        if approved {
            let body = expect_status(standing, StatusCode::OK).await;
            assert_eq!(body["status"], "active", "round {round}");
            expect_status(app.get_auth(&at("acme", ""), &joiner.access).await, StatusCode::OK)
                .await;
        } else {
            assert_problem(standing, StatusCode::NOT_FOUND, "not_found").await;
            let resp = app.get_auth(&at("acme", ""), &joiner.access).await;
            assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
        }
        let pending = expect_status(
            app.get_auth(&at("acme", "/join-requests?limit=100"), &owner.access).await,
            StatusCode::OK,
        )
        .await;
        assert!(
            !field_of_items(&pending, "member_id").contains(&joiner.id().to_owned()),
            "round {round}: the request is gone"
        );
    }
}
