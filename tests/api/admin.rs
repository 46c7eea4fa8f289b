//! Platform administration (`/api/v1/admin/...`, `onboard admin`): admins only, member and
//! group search, blocking (live tokens die at once, sign-in refused), stats, the audit trail.

use onboard_kernel::PhoneNumber;
use onboard_server::admin_cli::{self, AdminCommand};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{
    MEMBER_KEYS, SignedIn, TestApp, Wiring, assert_problem, expect_status, phone, spawn_app,
    spawn_app_with,
};

/// The phone listed in `ADMIN_PHONES` of [`admin_app`].
fn admin_phone() -> String {
    phone(9_000_001)
}

/// A server whose `ADMIN_PHONES` lists [`admin_phone`], with no resend interval (members
/// sign in twice in a row).
async fn admin_app(wiring: Wiring) -> TestApp {
    spawn_app_with(wiring, |s| {
        s.admin_phones = vec![PhoneNumber::parse(&admin_phone(), None).expect("a phone")];
        s.members.otp_limits.resend_interval_secs = 0;
    })
    .await
}

impl TestApp {
    async fn admin_get(&self, path: &str, token: &str) -> Response {
        self.get_auth(path, token).await
    }

    async fn admin_post(&self, path: &str, token: &str, body: Option<&Value>) -> Response {
        self.call(Method::POST, path, token, body).await
    }

    /// The member search with these query parameters (asserts 200).
    async fn search(&self, token: &str, query: &[(&str, &str)]) -> Value {
        let resp = self
            .client
            .get(self.url("/api/v1/admin/members"))
            .query(query)
            .bearer_auth(token)
            .send()
            .await
            .expect("the request is sent");
        expect_status(resp, StatusCode::OK).await
    }

    /// The ids of the members a search `q` finds.
    async fn found(&self, token: &str, q: &str) -> Vec<String> {
        ids(&self.search(token, &[("q", q)]).await)
    }
}

use reqwest::Response;

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["id"].as_str().expect("an id").to_owned())
        .collect()
}

async fn named(app: &TestApp, who: &SignedIn, first: &str, last: &str, email: &str) {
    let body = json!({ "first_name": first, "last_name": last, "email": email });
    expect_status(app.patch_me(&who.access, &body).await, StatusCode::OK).await;
}

both_wirings!(
    non_admins_get_403_on_every_admin_call,
    admins_find_members_by_phone_email_code_and_name,
    a_block_kills_live_tokens_within_one_request_and_refuses_sign_in,
    unblock_lets_the_member_sign_in_again,
    every_admin_action_is_in_the_audit_trail,
    member_detail_shows_groups_sessions_and_invitees_and_unknown_ids_are_404,
    groups_are_listed_with_member_counts_on_the_free_plan,
    stats_count_members_groups_sign_ins_and_code_traffic,
    member_pages_follow_the_cursor_without_repeats,
);

async fn non_admins_get_403_on_every_admin_call(wiring: Wiring) {
    let app = admin_app(wiring).await;
    let admin = app.sign_in(&admin_phone()).await;
    let someone = app.sign_in(&phone(1)).await;
    let target = format!("/api/v1/admin/members/{}", admin.id());
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/admin/members".into(), None),
        (Method::GET, "/api/v1/admin/members?q=%2B7917&limit=5".into(), None),
        (Method::GET, "/api/v1/admin/members?limit=0".into(), None),
        (Method::GET, "/api/v1/admin/members?cursor=junk".into(), None),
        (Method::GET, target.clone(), None),
        (Method::GET, format!("/api/v1/admin/members/{}", uuid::Uuid::now_v7()), None),
        (Method::POST, format!("{target}/block"), Some(json!({ "reason": "spam" }))),
        (Method::POST, format!("{target}/block"), Some(json!({ "reason": "" }))),
        (Method::POST, format!("{target}/unblock"), None),
        (Method::GET, "/api/v1/admin/groups".into(), None),
        (Method::GET, "/api/v1/admin/stats".into(), None),
        (Method::GET, "/api/v1/admin/audit".into(), None),
    ];
    for (method, path, body) in &calls {
        let resp = app.call(method.clone(), path, &someone.access, body.as_ref()).await;
        let problem = assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
        assert!(problem["detail"].is_string(), "{method} {path}");
        let anonymous = app.client.request(method.clone(), app.url(path)).send().await.unwrap();
        assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // The non-admin's attempts changed nothing: the admin is not blocked.
    expect_status(app.get_me(&admin.access).await, StatusCode::OK).await;
    // And the admin passes every one of them.
    expect_status(app.admin_get("/api/v1/admin/stats", &admin.access).await, StatusCode::OK).await;
}

async fn admins_find_members_by_phone_email_code_and_name(wiring: Wiring) {
    let app = admin_app(wiring).await;
    let admin = app.sign_in(&admin_phone()).await;
    let ann = app.sign_in(&phone(1_000_001)).await;
    let bob = app.sign_in(&phone(1_000_002)).await;
    let kim = app.sign_in(&phone(2_000_003)).await;
    named(&app, &ann, "Anna", "Petrova", "anna.p@example.com").await;
    named(&app, &bob, "Bob", "Annenkov", "bob@example.org").await;
    named(&app, &kim, "Kim", "Lee", "kim_lee@example.net").await;
    let token = &admin.access;

    // Phone prefix, with or without the +, spaces ignored.
    let mut by_phone = app.found(token, "+7917100").await;
    by_phone.sort();
    let mut expected = vec![ann.id().to_owned(), bob.id().to_owned()];
    expected.sort();
    assert_eq!(by_phone, expected);
    assert_eq!(app.found(token, "7 917 200 0003").await, vec![kim.id()]);
    // E-mail (prefix, any case).
    assert_eq!(app.found(token, "ANNA.P@example.com").await, vec![ann.id()]);
    assert_eq!(app.found(token, "kim_").await, vec![kim.id()], "_ is no wildcard");
    // Referral code, any case.
    assert_eq!(app.found(token, &bob.referral_code().to_lowercase()).await, vec![bob.id()]);
    // Name prefix, first or last, any case: "ann" is Anna and Annenkov.
    let mut by_name = app.found(token, "ann").await;
    by_name.sort();
    assert_eq!(by_name, expected);
    assert_eq!(app.found(token, "LE").await, vec![kim.id()]);
    assert!(app.found(token, "nobody").await.is_empty());

    // Each item is a Member with `blocked` and `is_admin`.
    let page = app.search(token, &[("q", &admin_phone())]).await;
    let item = &page["items"][0];
    let mut keys: Vec<&str> = MEMBER_KEYS.to_vec();
    keys.extend(["blocked", "is_admin"]);
    keys.sort_unstable();
    assert_eq!(crate::helpers::keys(item), keys);
    assert_eq!(item["is_admin"], true, "listed in ADMIN_PHONES");
    assert_eq!(item["blocked"], false);
    assert_eq!(page["next_cursor"], Value::Null);
    let page = app.search(token, &[("q", "Kim")]).await;
    assert_eq!(page["items"][0]["is_admin"], false);
    assert_eq!(page["items"][0]["first_name"], "Kim");

    let too_long = "a".repeat(101);
    let resp = app
        .client
        .get(app.url("/api/v1/admin/members"))
        .query(&[("q", too_long.as_str())])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
}

async fn a_block_kills_live_tokens_within_one_request_and_refuses_sign_in(wiring: Wiring) {
    let app = admin_app(wiring).await;
    let admin = app.sign_in(&admin_phone()).await;
    let target_phone = phone(3);
    let laptop = app.sign_in(&target_phone).await;
    let phone_app = app.sign_in(&target_phone).await;
    expect_status(app.get_me(&laptop.access).await, StatusCode::OK).await;
    expect_status(app.get_me(&phone_app.access).await, StatusCode::OK).await;

    let path = format!("/api/v1/admin/members/{}/block", laptop.id());
    let resp = app.admin_post(&path, &admin.access, Some(&json!({ "reason": " spam " }))).await;
    let blocked = expect_status(resp, StatusCode::OK).await;
    assert_eq!(blocked["blocked"], true);
    assert_eq!(blocked["blocked_reason"], "spam");
    assert_eq!(blocked["sessions_active"], 0);

    // The very next request with either live token is refused.
    assert_problem(app.get_me(&laptop.access).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    assert_problem(app.get_me(&phone_app.access).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    assert_problem(app.refresh(&laptop.refresh).await, StatusCode::FORBIDDEN, "member_blocked")
        .await;
    // Sign-in with a right code: 403 member_blocked, and no tokens.
    let code = app.request_code(&target_phone).await;
    let resp = app.verify(&target_phone, &code).await;
    let problem = assert_problem(resp, StatusCode::FORBIDDEN, "member_blocked").await;
    assert!(problem.get("access_token").is_none());
    // The admin and everyone else are untouched.
    expect_status(app.get_me(&admin.access).await, StatusCode::OK).await;

    // Blocking again keeps the member blocked; an unknown member is 404.
    let again = app.admin_post(&path, &admin.access, Some(&json!({}))).await;
    assert_eq!(expect_status(again, StatusCode::OK).await["blocked"], true);
    let unknown = format!("/api/v1/admin/members/{}/block", uuid::Uuid::now_v7());
    let resp = app.admin_post(&unknown, &admin.access, Some(&json!({ "reason": "x" }))).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app.admin_post(&path, &admin.access, Some(&json!({ "reason": "" }))).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    // An admin cannot lock themself out.
    let own = format!("/api/v1/admin/members/{}/block", admin.id());
    let resp = app.admin_post(&own, &admin.access, Some(&json!({}))).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    expect_status(app.get_me(&admin.access).await, StatusCode::OK).await;
}

async fn unblock_lets_the_member_sign_in_again(wiring: Wiring) {
    let app = admin_app(wiring).await;
    let admin = app.sign_in(&admin_phone()).await;
    let target = app.sign_in(&phone(4)).await;
    let base = format!("/api/v1/admin/members/{}", target.id());
    let block = app.admin_post(&format!("{base}/block"), &admin.access, Some(&json!({}))).await;
    expect_status(block, StatusCode::OK).await;
    let code = app.request_code(&phone(4)).await;
    assert_problem(app.verify(&phone(4), &code).await, StatusCode::FORBIDDEN, "member_blocked")
        .await;

    let resp = app.admin_post(&format!("{base}/unblock"), &admin.access, None).await;
    let unblocked = expect_status(resp, StatusCode::OK).await;
    assert_eq!(unblocked["blocked"], false);
    assert_eq!(unblocked["blocked_at"], Value::Null);

    let again = app.sign_in(&phone(4)).await;
    assert_eq!(again.id(), target.id(), "the same member");
    expect_status(app.get_me(&again.access).await, StatusCode::OK).await;
    // Tokens from before the block stay dead.
    assert_problem(app.get_me(&target.access).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    let unknown = format!("/api/v1/admin/members/{}/unblock", uuid::Uuid::now_v7());
    assert_problem(
        app.admin_post(&unknown, &admin.access, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn every_admin_action_is_in_the_audit_trail(wiring: Wiring) {
    let app = admin_app(wiring).await;
    let admin = app.sign_in(&admin_phone()).await;
    let target = app.sign_in(&phone(5)).await;
    let base = format!("/api/v1/admin/members/{}", target.id());
    let body = json!({ "reason": "chargebacks" });
    expect_status(
        app.admin_post(&format!("{base}/block"), &admin.access, Some(&body)).await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.admin_post(&format!("{base}/unblock"), &admin.access, None).await,
        StatusCode::OK,
    )
    .await;

    let trail =
        expect_status(app.admin_get("/api/v1/admin/audit", &admin.access).await, StatusCode::OK)
            .await;
    let items = trail["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{trail}");
    assert_eq!(items[0]["action"], "unblock", "newest first");
    assert_eq!(items[1]["action"], "block");
    assert_eq!(items[1]["details"], "chargebacks");
    for item in items {
        assert_eq!(item["actor"], "member");
        assert_eq!(item["actor_member_id"], admin.id());
        assert_eq!(item["target_member_id"], target.id());
        assert!(item["created_at"].is_string());
    }
    let first = app.admin_get("/api/v1/admin/audit?limit=1", &admin.access).await;
    let first = expect_status(first, StatusCode::OK).await;
    assert_eq!(first["items"][0]["action"], "unblock");
    let cursor = first["next_cursor"].as_str().expect("more follow");
    let rest =
        app.admin_get(&format!("/api/v1/admin/audit?limit=1&cursor={cursor}"), &admin.access).await;
    let rest = expect_status(rest, StatusCode::OK).await;
    assert_eq!(rest["items"][0]["action"], "block");
    assert_eq!(rest["next_cursor"], Value::Null);
}

async fn member_detail_shows_groups_sessions_and_invitees_and_unknown_ids_are_404(wiring: Wiring) {
    let app = admin_app(wiring).await;
    let admin = app.sign_in(&admin_phone()).await;
    let target = app.sign_in(&phone(6)).await;
    app.sign_in(&phone(6)).await;
    let invitee = app.sign_in(&phone(7)).await;
    expect_status(app.redeem(&invitee.access, target.referral_code()).await, StatusCode::OK).await;
    let body = json!({ "name": "Acme", "slug": "acme-admin-test" });
    let created = app.call(Method::POST, "/api/v1/groups", &target.access, Some(&body)).await;
    expect_status(created, StatusCode::CREATED).await;

    let path = format!("/api/v1/admin/members/{}", target.id());
    let detail = expect_status(app.admin_get(&path, &admin.access).await, StatusCode::OK).await;
    assert_eq!(detail["id"], target.id());
    assert_eq!(detail["phone"], phone(6));
    assert_eq!(detail["sessions_active"], 2);
    assert_eq!(detail["invitees_count"], 1);
    assert_eq!(detail["blocked"], false);
    assert_eq!(detail["is_admin"], false);
    let groups = detail["groups"].as_array().expect("groups");
    let acme = groups.iter().find(|g| g["slug"] == "acme-admin-test").expect("acme is listed");
    assert_eq!(acme["role"], "owner");
    assert_eq!(acme["status"], "active");
    assert_eq!(acme["name"], "Acme");

    let unknown = format!("/api/v1/admin/members/{}", uuid::Uuid::now_v7());
    assert_problem(
        app.admin_get(&unknown, &admin.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn groups_are_listed_with_member_counts_on_the_free_plan(wiring: Wiring) {
    let app = admin_app(wiring).await;
    let admin = app.sign_in(&admin_phone()).await;
    let owner = app.sign_in(&phone(8)).await;
    let joiner = app.sign_in(&phone(9)).await;
    let body = json!({ "name": "Zebra Club", "slug": "zebra-club" });
    expect_status(
        app.call(Method::POST, "/api/v1/groups", &owner.access, Some(&body)).await,
        StatusCode::CREATED,
    )
    .await;
    let join = app.call(Method::POST, "/api/v1/groups/zebra-club/join", &joiner.access, None).await;
    expect_status(join, StatusCode::OK).await;

    for q in ["zebra", "ZEBRA-c", "zebra club"] {
        let resp = app
            .client
            .get(app.url("/api/v1/admin/groups"))
            .query(&[("q", q)])
            .bearer_auth(&admin.access)
            .send()
            .await
            .unwrap();
        let page = expect_status(resp, StatusCode::OK).await;
        let items = page["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "q={q}: {page}");
        assert_eq!(items[0]["slug"], "zebra-club");
        assert_eq!(items[0]["name"], "Zebra Club");
        assert_eq!(items[0]["members_count"], 2);
        assert_eq!(items[0]["plan"], "free");
        assert!(items[0]["id"].is_string() && items[0]["created_at"].is_string());
    }
    // Without q: every group (three personal workspaces and the club), newest first, paged.
    let first = app.admin_get("/api/v1/admin/groups?limit=3", &admin.access).await;
    let first = expect_status(first, StatusCode::OK).await;
    assert_eq!(first["items"][0]["slug"], "zebra-club");
    let cursor = first["next_cursor"].as_str().expect("more follow");
    let rest = app
        .admin_get(&format!("/api/v1/admin/groups?limit=3&cursor={cursor}"), &admin.access)
        .await;
    let rest = expect_status(rest, StatusCode::OK).await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["next_cursor"], Value::Null);
}

async fn stats_count_members_groups_sign_ins_and_code_traffic(wiring: Wiring) {
    let app = admin_app(wiring).await;
    let admin = app.sign_in(&admin_phone()).await;
    let a = app.sign_in(&phone(10)).await;
    let b = app.sign_in(&phone(11)).await;
    expect_status(app.redeem(&b.access, a.referral_code()).await, StatusCode::OK).await;
    app.request_code(&phone(12)).await;
    let wrong = app.verify(&phone(12), "000000").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // The code traffic is counted in the background (Redis): wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let stats = loop {
        let stats = expect_status(
            app.admin_get("/api/v1/admin/stats", &admin.access).await,
            StatusCode::OK,
        )
        .await;
        let counted = stats["otp_sends_24h"] == 4 && stats["otp_failures_24h"] == 1;
        if counted || std::time::Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(stats["members"], 3, "{stats}");
    assert_eq!(stats["groups"], 3, "personal workspaces: {stats}");
    assert_eq!(stats["sign_ins_24h"], 3, "{stats}");
    assert_eq!(stats["otp_sends_24h"], 4, "{stats}");
    assert_eq!(stats["otp_failures_24h"], 1, "{stats}");
    assert_eq!(stats["referrals_redeemed"], 1, "{stats}");
}

async fn member_pages_follow_the_cursor_without_repeats(wiring: Wiring) {
    let app = admin_app(wiring).await;
    let admin = app.sign_in(&admin_phone()).await;
    for n in 20..25 {
        app.sign_in(&phone(n)).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("q", "+791700000"), ("limit", "2")];
        if let Some(c) = cursor.as_deref() {
            query.push(("cursor", c));
        }
        let page = app.search(&admin.access, &query).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5);
    let mut newest_first = seen.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, newest_first, "uuid v7 ids, newest first");
}

/// `onboard admin grant|revoke` against the app's own database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_grants_and_revokes_platform_admin_against_a_real_database() {
    let app = spawn_app(Wiring::PostgresRedis).await;
    let url = app.database_url().expect("a database").to_owned();
    let member = app.sign_in(&phone(30)).await;
    let stats = "/api/v1/admin/stats";
    assert_problem(app.admin_get(stats, &member.access).await, StatusCode::FORBIDDEN, "forbidden")
        .await;

    let id = admin_cli::run(Some(&url), None, AdminCommand::Grant, &phone(30)).await.unwrap();
    assert_eq!(id.to_string(), member.id());
    expect_status(app.admin_get(stats, &member.access).await, StatusCode::OK).await;
    let found = app.search(&member.access, &[("q", &phone(30))]).await;
    assert_eq!(found["items"][0]["is_admin"], true);

    admin_cli::run(Some(&url), None, AdminCommand::Revoke, &phone(30)).await.unwrap();
    assert_problem(app.admin_get(stats, &member.access).await, StatusCode::FORBIDDEN, "forbidden")
        .await;

    // Audited with the actor `cli` (read back as an admin again).
    admin_cli::run(Some(&url), None, AdminCommand::Grant, &phone(30)).await.unwrap();
    let trail =
        expect_status(app.admin_get("/api/v1/admin/audit", &member.access).await, StatusCode::OK)
            .await;
    let actions: Vec<&str> =
        trail["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["grant", "revoke", "grant"]);
    assert!(trail["items"].as_array().unwrap().iter().all(|e| e["actor"] == "cli"
        && e["actor_member_id"].is_null()
        && e["target_member_id"] == member.id()));

    // Clear errors: an unknown member, a bad phone, no database.
    let err = admin_cli::run(Some(&url), None, AdminCommand::Grant, &phone(31)).await.unwrap_err();
    assert!(err.to_string().contains("no member has the phone"), "{err}");
    let err =
        admin_cli::run(Some(&url), None, AdminCommand::Grant, "not-a-phone").await.unwrap_err();
    assert!(err.to_string().contains("not a phone number"), "{err}");
    let err = admin_cli::run(None, None, AdminCommand::Grant, &phone(30)).await.unwrap_err();
    assert!(err.to_string().contains("DATABASE_URL"), "{err}");
}
