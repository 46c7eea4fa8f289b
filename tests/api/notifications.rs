//! In-app notifications (`shared/spec/messaging.md`, "Notifications"): made with the groups
//! changes they report, listed, read, snoozed, deleted, and streamed live (Server-Sent Events),
//! across instances too.

use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{
    SignedIn, TestApp, TestKey, Wiring, assert_problem, expect_status, phone, spawn_app,
    spawn_app_beside, spawn_app_with,
};

both_wirings!(
    a_join_request_notifies_the_approvers_and_not_plain_members,
    approving_or_rejecting_a_request_notifies_the_requester,
    another_members_notifications_cannot_be_read_marked_or_deleted,
    a_stream_ticket_works_once,
    a_stream_delivers_live_and_a_reconnect_replays_exactly_what_was_missed,
    a_snoozed_notification_comes_back_unread_after_its_time,
    marking_read_takes_ids_or_all_and_the_list_pages_newest_first,
    an_accepted_invite_notifies_the_inviter,
);

mod across_instances {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_redis() {
        super::a_client_on_server_b_receives_within_a_second_what_happens_on_server_a().await;
    }
}

const LIST: &str = "/api/v1/notifications";

impl TestApp {
    async fn post_as(&self, token: &str, path: &str, body: &Value) -> Response {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Creates the group `slug` owned by `owner` (asserts 201).
    async fn group(&self, owner: &SignedIn, slug: &str, approval_required: bool) {
        let body = json!({ "name": slug.to_uppercase(), "slug": slug, "approval_required": approval_required });
        let resp = self.post_as(&owner.access, "/api/v1/groups", &body).await;
        expect_status(resp, StatusCode::CREATED).await;
    }

    async fn join(&self, who: &SignedIn, slug: &str) -> StatusCode {
        let path = format!("/api/v1/groups/{slug}/join");
        self.post_as(&who.access, &path, &json!({})).await.status()
    }

    async fn set_role(&self, by: &SignedIn, slug: &str, target: &SignedIn, role: &str) {
        let path = format!("/api/v1/groups/{slug}/members/{}", target.id());
        let resp = self.call(Method::PUT, &path, &by.access, Some(&json!({ "role": role }))).await;
        expect_status(resp, StatusCode::OK).await;
    }

    async fn require_approval(&self, owner: &SignedIn, slug: &str) {
        let path = format!("/api/v1/groups/{slug}");
        let resp =
            self.patch_auth(&path, &owner.access, &json!({ "approval_required": true })).await;
        expect_status(resp, StatusCode::OK).await;
    }

    async fn decide_request(&self, by: &SignedIn, slug: &str, target: &SignedIn, decision: &str) {
        let path = format!("/api/v1/groups/{slug}/join-requests/{}/{decision}", target.id());
        let resp = self.post_as(&by.access, &path, &json!({})).await;
        assert!(resp.status().is_success(), "{decision}: {}", resp.status());
    }

    /// A page of the caller's notifications with this query (asserts 200).
    async fn notifications(&self, who: &SignedIn, query: &str) -> Value {
        let resp = self.get_auth(&format!("{LIST}{query}"), &who.access).await;
        expect_status(resp, StatusCode::OK).await
    }

    /// Polls until the caller has `n` unread notifications (2 s at most); answers the page.
    async fn wait_unread(&self, who: &SignedIn, n: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let page = self.notifications(who, "?unread=true").await;
            // The page's items and its count are two reads: a notification the consumer
            // stores between them shows in one only, so both must say `n`.
            let listed = page["items"].as_array().map_or(0, Vec::len) as u64;
            if (page["unread_count"] == n && listed == n) || Instant::now() > deadline {
                assert_eq!(page["unread_count"], n, "{page}");
                return page;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ticket(&self, who: &SignedIn) -> String {
        let resp = self.post_as(&who.access, &format!("{LIST}/stream-ticket"), &json!({})).await;
        let body = expect_status(resp, StatusCode::CREATED).await;
        body["ticket"].as_str().expect("a ticket").to_owned()
    }

    async fn open_stream(&self, ticket: &str, last_event_id: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(&format!("{LIST}/stream?ticket={ticket}")));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        req.send().await.expect("the request is sent")
    }

    /// A stream of `who`'s notifications (asserts it opens).
    async fn stream(&self, who: &SignedIn, last_event_id: Option<&str>) -> Sse {
        let ticket = self.ticket(who).await;
        let resp = self.open_stream(&ticket, last_event_id).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        let mut sse = Sse { resp, buf: String::new() };
        // The greeting shows the stream is subscribed.
        sse.frame(Duration::from_secs(5)).await.expect("the greeting");
        sse
    }
}

/// One event of a stream.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    id: String,
    event: String,
    data: Value,
}

/// A Server-Sent Events client over a streaming response.
struct Sse {
    resp: Response,
    buf: String,
}

impl Sse {
    /// The next frame (an event or a comment), within `timeout`.
    async fn frame(&mut self, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame = self.buf[..end].to_owned();
                self.buf.drain(..end + 2);
                return Some(frame);
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await.ok()?;
            let chunk = chunk.expect("the stream reads")?;
            self.buf.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next event, skipping comments, within `timeout`.
    async fn event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self.frame(left).await?;
            let mut event = Event { id: String::new(), event: String::new(), data: Value::Null };
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    event.id = v.to_owned();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event.event = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    event.data = serde_json::from_str(v).expect("JSON data");
                }
            }
            if !event.id.is_empty() {
                return Some(event);
            }
        }
    }
}

fn types(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_owned())
        .collect()
}

/// An approval-required group `acme` with an owner, an admin, a plain member and a custom
/// role without `members.manage`.
async fn acme(app: &TestApp, base: u32) -> (SignedIn, SignedIn, SignedIn) {
    let owner = app.sign_in(&phone(base)).await;
    let admin = app.sign_in(&phone(base + 1)).await;
    let plain = app.sign_in(&phone(base + 2)).await;
    app.group(&owner, "acme", false).await;
    for who in [&admin, &plain] {
        assert_eq!(app.join(who, "acme").await, StatusCode::OK);
    }
    app.set_role(&owner, "acme", &admin, "admin").await;
    app.require_approval(&owner, "acme").await;
    // The admin is told of their new role (by the notifications consumer, shortly after the
    // change commits); read it away.
    app.wait_unread(&admin, 1).await;
    let resp = app.post_as(&admin.access, &format!("{LIST}/read"), &json!({ "all": true })).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    (owner, admin, plain)
}

async fn a_join_request_notifies_the_approvers_and_not_plain_members(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let (owner, admin, plain) = acme(&app, 100).await;
    let requester = app.sign_in(&phone(110)).await;
    assert_eq!(app.join(&requester, "acme").await, StatusCode::ACCEPTED);

    for approver in [&owner, &admin] {
        let page = app.wait_unread(approver, 1).await;
        let n = &page["items"][0];
        assert_eq!(n["type"], "join_request.created", "{page}");
        assert_eq!(n["group"], "acme");
        assert_eq!(n["read"], false);
        assert_eq!(n["link"], "/groups/acme/join-requests");
        let mut keys: Vec<_> = n.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["body", "created_at", "expires_at", "group", "id", "link", "read", "title", "type"]
        );
        let created: chrono::DateTime<chrono::Utc> =
            n["created_at"].as_str().unwrap().parse().unwrap();
        let expires: chrono::DateTime<chrono::Utc> =
            n["expires_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(expires - created, chrono::Duration::days(14));
        let id = uuid::Uuid::parse_str(n["id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
    }
    for bystander in [&plain, &requester] {
        assert_eq!(app.notifications(bystander, "").await["unread_count"], 0);
    }
}

async fn approving_or_rejecting_a_request_notifies_the_requester(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(200)).await;
    app.group(&owner, "acme", true).await;
    let (yes, no) = (app.sign_in(&phone(201)).await, app.sign_in(&phone(202)).await);
    for who in [&yes, &no] {
        assert_eq!(app.join(who, "acme").await, StatusCode::ACCEPTED);
    }
    app.decide_request(&owner, "acme", &yes, "approve").await;
    app.decide_request(&owner, "acme", &no, "reject").await;
    assert_eq!(types(&app.wait_unread(&yes, 1).await), ["join_request.approved"]);
    assert_eq!(types(&app.wait_unread(&no, 1).await), ["join_request.rejected"]);
    // And a removal tells the removed member.
    let path = format!("/api/v1/groups/acme/members/{}", yes.id());
    assert_eq!(app.delete_auth(&path, &owner.access).await.status(), StatusCode::NO_CONTENT);
    let page = app.wait_unread(&yes, 2).await;
    assert_eq!(types(&page), ["member.removed", "join_request.approved"], "newest first");
}

async fn another_members_notifications_cannot_be_read_marked_or_deleted(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(300)).await;
    app.group(&owner, "acme", true).await;
    let requester = app.sign_in(&phone(301)).await;
    assert_eq!(app.join(&requester, "acme").await, StatusCode::ACCEPTED);
    let page = app.wait_unread(&owner, 1).await;
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();

    let other = &requester;
    assert!(app.notifications(other, "").await["items"].as_array().unwrap().is_empty());
    let read = app.post_as(&other.access, &format!("{LIST}/read"), &json!({ "ids": [id] })).await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT, "others' ids are ignored");
    let all = app.post_as(&other.access, &format!("{LIST}/read"), &json!({ "all": true })).await;
    assert_eq!(all.status(), StatusCode::NO_CONTENT);
    let snooze =
        app.post_as(&other.access, &format!("{LIST}/{id}/snooze"), &json!({ "minutes": 5 })).await;
    assert_problem(snooze, StatusCode::NOT_FOUND, "not_found").await;
    let delete = app.delete_auth(&format!("{LIST}/{id}"), &other.access).await;
    assert_problem(delete, StatusCode::NOT_FOUND, "not_found").await;
    // Still the owner's, unread.
    let page = app.wait_unread(&owner, 1).await;
    assert_eq!(page["items"][0]["id"], id.as_str());

    // The owner deletes it; then it is gone.
    let delete = app.delete_auth(&format!("{LIST}/{id}"), &owner.access).await;
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    let again = app.delete_auth(&format!("{LIST}/{id}"), &owner.access).await;
    assert_problem(again, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.notifications(&owner, "").await["items"], json!([]));
    let nonsense = app.delete_auth(&format!("{LIST}/not-an-id"), &owner.access).await;
    assert_problem(nonsense, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.get(LIST).await.status(), StatusCode::UNAUTHORIZED);
}

async fn a_stream_ticket_works_once(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(400)).await;
    let ticket = app.ticket(&me).await;
    assert_eq!(ticket.len(), 64);
    let first = app.open_stream(&ticket, None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = app.open_stream(&ticket, None).await;
    assert_problem(second, StatusCode::UNAUTHORIZED, "stream_ticket_invalid").await;
    let unknown = app.open_stream(&"0".repeat(64), None).await;
    assert_problem(unknown, StatusCode::UNAUTHORIZED, "stream_ticket_invalid").await;
    let garbage = app.open_stream("nope", None).await;
    assert_problem(garbage, StatusCode::UNAUTHORIZED, "stream_ticket_invalid").await;
    let anonymous = app.post_json(&format!("{LIST}/stream-ticket"), &json!({})).await;
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn a_stream_delivers_live_and_a_reconnect_replays_exactly_what_was_missed(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(500)).await;
    app.group(&owner, "acme", true).await;
    let requesters = app.sign_in_all(&(501..505).map(phone).collect::<Vec<_>>()).await;

    let mut stream = app.stream(&owner, None).await;
    assert_eq!(app.join(&requesters[0], "acme").await, StatusCode::ACCEPTED);
    let first = stream.event(Duration::from_secs(5)).await.expect("a live event");
    assert_eq!(first.event, "join_request.created");
    assert_eq!(first.data["id"], first.id.as_str());
    assert_eq!(first.data["type"], "join_request.created");
    drop(stream);

    // Missed while away, in this order.
    for who in &requesters[1..3] {
        assert_eq!(app.join(who, "acme").await, StatusCode::ACCEPTED);
    }
    let page = app.wait_unread(&owner, 3).await;
    let mut missed: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    missed.reverse();
    assert_eq!(missed[0], first.id);

    let mut again = app.stream(&owner, Some(&first.id)).await;
    let replayed = [
        again.event(Duration::from_secs(5)).await.expect("a replayed event").id,
        again.event(Duration::from_secs(5)).await.expect("a replayed event").id,
    ];
    assert_eq!(replayed, missed[1..3], "exactly what was missed, oldest first");
    // Then live again, with nothing repeated (the outbox has published the missed ones too).
    assert_eq!(app.join(&requesters[3], "acme").await, StatusCode::ACCEPTED);
    let live = again.event(Duration::from_secs(5)).await.expect("a live event");
    assert!(!missed.contains(&live.id), "not a repeat: {live:?}");
    assert!(again.event(Duration::from_millis(500)).await.is_none(), "nothing more");
}

async fn a_snoozed_notification_comes_back_unread_after_its_time(wiring: Wiring) {
    // One snoozed "minute" lasts a second here.
    let app = spawn_app_with(wiring, |s| {
        s.notifications.snooze_minute = Duration::from_secs(1);
    })
    .await;
    let owner = app.sign_in(&phone(600)).await;
    app.group(&owner, "acme", true).await;
    let requester = app.sign_in(&phone(601)).await;
    assert_eq!(app.join(&requester, "acme").await, StatusCode::ACCEPTED);
    let page = app.wait_unread(&owner, 1).await;
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let read = app.post_as(&owner.access, &format!("{LIST}/read"), &json!({ "ids": [id] })).await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);

    let path = format!("{LIST}/{id}/snooze");
    for bad in
        [json!({ "minutes": 0 }), json!({ "minutes": 10081 }), json!({ "minutes": "5" }), json!({})]
    {
        let resp = app.post_as(&owner.access, &path, &bad).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let resp = app.post_as(&owner.access, &path, &json!({ "minutes": 2 })).await;
    let snoozed = expect_status(resp, StatusCode::OK).await;
    assert_eq!(snoozed["id"], id.as_str());
    let hidden = app.notifications(&owner, "").await;
    assert_eq!(hidden["items"], json!([]), "hidden while snoozed");
    assert_eq!(hidden["unread_count"], 0);

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = app.notifications(&owner, "?unread=true").await;
        if page["unread_count"] == 1 {
            assert_eq!(page["items"][0]["id"], id.as_str());
            assert_eq!(page["items"][0]["read"], false, "back unread");
            break;
        }
        assert!(Instant::now() < deadline, "the snoozed notification never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn marking_read_takes_ids_or_all_and_the_list_pages_newest_first(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(700)).await;
    app.group(&owner, "acme", true).await;
    let requesters = app.sign_in_all(&(701..706).map(phone).collect::<Vec<_>>()).await;
    for who in &requesters {
        assert_eq!(app.join(who, "acme").await, StatusCode::ACCEPTED);
    }
    app.wait_unread(&owner, 5).await;
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.notifications(&owner, &format!("?limit=2{cursor}")).await;
        assert_eq!(page["unread_count"], 5);
        ids.extend(
            page["items"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(ids, sorted, "newest first, no gap, no repeat");
    assert_eq!(ids.len(), 5);

    let read = app
        .post_as(&owner.access, &format!("{LIST}/read"), &json!({ "ids": [ids[0], ids[1]] }))
        .await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    let unread = app.notifications(&owner, "?unread=true").await;
    assert_eq!(unread["unread_count"], 3);
    assert_eq!(unread["items"].as_array().unwrap().len(), 3);
    for bad in [
        json!({}),
        json!({ "ids": ["x"] }),
        json!({ "all": false }),
        json!({ "ids": [], "all": true }),
    ] {
        let resp = app.post_as(&owner.access, &format!("{LIST}/read"), &bad).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    for bad in ["?limit=0", "?limit=101", "?cursor=nope", "?unread=maybe"] {
        let resp = app.get_auth(&format!("{LIST}{bad}"), &owner.access).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let all = app.post_as(&owner.access, &format!("{LIST}/read"), &json!({ "all": true })).await;
    assert_eq!(all.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.notifications(&owner, "").await["unread_count"], 0);
}

async fn a_client_on_server_b_receives_within_a_second_what_happens_on_server_a() {
    let key = TestKey::generate();
    let path = key.path().to_owned();
    let a = spawn_app_with(Wiring::PostgresRedis, |s| s.jwt_private_key_file = Some(path.clone()))
        .await;
    let b = spawn_app_beside(&a, |s| s.jwt_private_key_file = Some(path.clone())).await;
    let owner = a.sign_in(&phone(800)).await;
    a.group(&owner, "acme", true).await;
    let requester = a.sign_in(&phone(801)).await;

    // The owner listens on B.
    let mut stream = b.stream(&owner, None).await;
    // Timed from A's answer: the join request (and its notification) committed before it.
    assert_eq!(a.join(&requester, "acme").await, StatusCode::ACCEPTED);
    let started = Instant::now();
    let event = stream.event(Duration::from_secs(5)).await.expect("the event reaches B");
    let elapsed = started.elapsed();
    assert_eq!(event.event, "join_request.created");
    assert!(elapsed < Duration::from_secs(1), "delivered across instances in {elapsed:?}");
    // Published once, though both instances run the outbox worker.
    assert!(stream.event(Duration::from_millis(700)).await.is_none(), "no duplicate");
    drop(stream);
    drop(b);
}

async fn an_accepted_invite_notifies_the_inviter(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let owner = app.sign_in(&phone(900)).await;
    app.group(&owner, "acme", false).await;
    let body = json!({ "name": "Ann", "phone": phone(901) });
    let resp = app.post_as(&owner.access, "/api/v1/groups/acme/invites", &body).await;
    let invite = expect_status(resp, StatusCode::CREATED).await;
    let code = invite["code"].as_str().unwrap();
    let invitee = app.sign_in(&phone(901)).await;
    let names = json!({ "first_name": "Ann", "last_name": "Lee" });
    let patch = app.patch_me(&invitee.access, &names).await;
    expect_status(patch, StatusCode::OK).await;
    let resp =
        app.post_as(&invitee.access, &format!("/api/v1/invites/{code}/accept"), &json!({})).await;
    expect_status(resp, StatusCode::OK).await;
    let page = app.wait_unread(&owner, 1).await;
    let n = &page["items"][0];
    assert_eq!(n["type"], "invite.accepted");
    assert_eq!(n["body"], "Ann Lee accepted your invite to ACME");
    assert_eq!(n["group"], "acme");
    assert_eq!(app.notifications(&invitee, "").await["unread_count"], 0);

    // Accepted into a group that requires approval: a join request too, for its deciders.
    app.group(&owner, "beta", true).await;
    let body = json!({ "name": "Bo", "phone": phone(902) });
    let resp = app.post_as(&owner.access, "/api/v1/groups/beta/invites", &body).await;
    let invite = expect_status(resp, StatusCode::CREATED).await;
    let code = invite["code"].as_str().unwrap();
    let invitee = app.sign_in(&phone(902)).await;
    let resp =
        app.post_as(&invitee.access, &format!("/api/v1/invites/{code}/accept"), &json!({})).await;
    assert_eq!(expect_status(resp, StatusCode::OK).await["status"], "pending_approval");
    let page = app.wait_unread(&owner, 3).await;
    let mut newest = types(&page)[..2].to_vec();
    newest.sort();
    assert_eq!(newest, ["invite.accepted", "join_request.created"]);
}
