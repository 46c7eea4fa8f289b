//! Messages a group sends (`shared/spec/messaging.md`, "Messages a group sends"): paid from
//! the group's SMS credit in the transaction that queues them, sent once by the outbox worker,
//! alimtalk checked later and failed over to SMS. The provider is a fake that records every
//! call; the credit is topped up directly with the SMS credit primitives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use onboard_kernel::GroupId;
use onboard_memory::MemoryStore;
use onboard_messaging::Message;
use onboard_messaging::ports::{Accepted, DeliveryStatus, MessageProvider, ProviderError};
use onboard_payments::sms_credit::CreditReason;
use onboard_server::Settings;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{
    SignedIn, TestApp, Wiring, assert_problem, expect_status, phone, spawn_app_beside,
    spawn_app_with,
};

both_wirings!(
    credit_pays_for_messages_and_the_balance_shows_it,
    without_credit_a_send_is_402_and_nothing_is_queued_or_sent,
    bad_numbers_are_each_named_and_a_plain_member_may_not_send,
    a_failing_alimtalk_is_resent_as_sms_once_and_the_ledger_shows_refund_and_new_charge,
    fifty_parallel_sends_against_credit_for_twenty_send_exactly_twenty,
    a_worker_killed_mid_send_leaves_the_rest_to_the_next_and_each_message_goes_once,
    two_instances_sending_from_one_outbox_send_each_message_once,
    an_aborted_worker_task_is_replaced_by_a_new_one_and_each_message_goes_once,
);

/// Every message a provider took: `(to, channel)`.
type Log = Arc<Mutex<Vec<(String, String)>>>;

/// A provider that records what it sends; alimtalk checks answer `alimtalk_result` (a failure
/// code) or delivered. With `stall_after`, every send past that many never returns: from the
/// storage's side, a worker killed during its provider call.
#[derive(Debug, Default)]
struct FakeProvider {
    log: Log,
    alimtalk_failure: Option<String>,
    stall_after: Option<usize>,
    /// Sends started (stalled ones included).
    started: Mutex<usize>,
}

impl FakeProvider {
    fn sent(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().clone()
    }
}

#[async_trait]
impl MessageProvider for FakeProvider {
    async fn send(&self, message: &Message) -> Result<Accepted, ProviderError> {
        let n = {
            let mut started = self.started.lock().unwrap();
            *started += 1;
            *started
        };
        if self.stall_after.is_some_and(|k| n > k) {
            std::future::pending::<()>().await;
        }
        self.log
            .lock()
            .unwrap()
            .push((message.to.as_e164().to_owned(), message.channel.as_str().to_owned()));
        Ok(Accepted { provider_message_id: Some(format!("fake-{}", message.id)) })
    }

    async fn alimtalk_status(&self, _: &str) -> Result<DeliveryStatus, ProviderError> {
        Ok(match &self.alimtalk_failure {
            Some(code) => DeliveryStatus::Failed { code: code.clone() },
            None => DeliveryStatus::Delivered,
        })
    }
}

/// Reads and tops up SMS credit behind the app's back.
enum Credit {
    Memory(Arc<MemoryStore>),
    Pg(onboard_postgres::PgPool),
}

impl Credit {
    async fn top_up(&self, group: GroupId, amount: i64) {
        let at = chrono::Utc::now();
        match self {
            Self::Memory(store) => {
                store.sms_credit_apply(group, amount, CreditReason::Purchase, None, at).unwrap();
            }
            Self::Pg(pool) => {
                let mut conn = pool.get().await.unwrap();
                onboard_postgres::sms_credit::apply(
                    &mut conn,
                    group,
                    amount,
                    CreditReason::Purchase,
                    None,
                    at,
                )
                .await
                .unwrap()
                .unwrap();
            }
        }
    }
}

/// An app with a fake provider, a group `acme` owned by `owner`, and its credit.
struct Setup {
    app: TestApp,
    owner: SignedIn,
    group: GroupId,
    credit: Credit,
    provider: Arc<FakeProvider>,
    store: Option<Arc<MemoryStore>>,
}

const MESSAGES: &str = "/api/v1/groups/acme/messages";

/// Fast checks and polls, a short lease.
fn quick(settings: &mut Settings, provider: Arc<FakeProvider>, store: Option<Arc<MemoryStore>>) {
    settings.messaging.check_delay = Duration::from_millis(50);
    settings.messaging.poll = Duration::from_millis(50);
    settings.messaging.lease = Duration::from_secs(1);
    settings.messaging_overrides.provider = Some(provider);
    settings.messaging_overrides.memory_store = store;
}

async fn setup(wiring: Wiring, provider: FakeProvider) -> Setup {
    let provider = Arc::new(provider);
    let store = (wiring == Wiring::Memory).then(|| Arc::new(MemoryStore::default()));
    let (p, s) = (provider.clone(), store.clone());
    let app = spawn_app_with(wiring, move |settings| quick(settings, p, s)).await;
    let credit = match &store {
        Some(store) => Credit::Memory(store.clone()),
        None => Credit::Pg(
            onboard_postgres::connect(app.database_url().expect("a database"), 2).await.unwrap(),
        ),
    };
    let owner = app.sign_in(&phone(1)).await;
    let body = json!({ "name": "Acme", "slug": "acme" });
    let resp = app.call(Method::POST, "/api/v1/groups", &owner.access, Some(&body)).await;
    let group = expect_status(resp, StatusCode::CREATED).await;
    let group = GroupId::from_uuid(group["id"].as_str().unwrap().parse().unwrap());
    Setup { app, owner, group, credit, provider, store }
}

fn korean(n: u32) -> String {
    format!("+8210{n:08}")
}

impl Setup {
    /// `(delta, reason)` of every ledger entry, oldest first, and the balance, as the group's
    /// ledger API pages them (newest first).
    async fn ledger(&self) -> (Vec<(i64, String)>, i64) {
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => {
                    format!("/api/v1/groups/acme/billing/sms-credit/ledger?limit=100&cursor={c}")
                }
                None => "/api/v1/groups/acme/billing/sms-credit/ledger?limit=100".to_owned(),
            };
            let page =
                expect_status(self.app.get_auth(&path, &self.owner.access).await, StatusCode::OK)
                    .await;
            for e in page["items"].as_array().unwrap() {
                let reason = e["reason"].as_str().unwrap().to_owned();
                entries.push((
                    e["delta"].as_i64().unwrap(),
                    e["balance"].as_i64().unwrap(),
                    reason,
                ));
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        entries.reverse();
        let balance = entries.last().map_or(0, |e| e.1);
        (entries.into_iter().map(|(d, _, r)| (d, r)).collect(), balance)
    }

    async fn send(&self, body: &Value) -> Response {
        self.app.call(Method::POST, MESSAGES, &self.owner.access, Some(body)).await
    }

    async fn message(&self, id: &str) -> Value {
        let resp = self.app.get_auth(&format!("{MESSAGES}/{id}"), &self.owner.access).await;
        expect_status(resp, StatusCode::OK).await
    }

    /// Polls message `id` until its status is `status` (10 s at most).
    async fn until_status(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let message = self.message(id).await;
            if message["status"] == status {
                return message;
            }
            assert!(Instant::now() < deadline, "message {id} stayed {}", message["status"]);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn ids(queued: &Value) -> Vec<String> {
    queued["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn credit_pays_for_messages_and_the_balance_shows_it(wiring: Wiring) {
    let s = setup(wiring, FakeProvider::default()).await;
    s.credit.top_up(s.group, 100).await;

    let to = [korean(1), korean(2)];
    let resp = s.send(&json!({ "to": to, "channel": "sms", "text": "Hello" })).await;
    let queued = expect_status(resp, StatusCode::ACCEPTED).await;
    let items = queued["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["status"] == "queued" && i["channel"] == "sms"));
    assert_eq!(items[0]["to"], korean(1));
    // A text over 90 bytes goes as an LMS, priced as one.
    let long = "가".repeat(46);
    let resp = s.send(&json!({ "to": [korean(3)], "channel": "sms", "text": long })).await;
    let lms = expect_status(resp, StatusCode::ACCEPTED).await;
    assert_eq!(lms["items"][0]["channel"], "lms");

    for id in ids(&queued).iter().chain(ids(&lms).iter()) {
        let sent = s.until_status(id, "sent").await;
        assert!(sent["result_code"].is_null());
    }
    let mut sent = s.provider.sent();
    sent.sort();
    assert_eq!(
        sent,
        [(korean(1), "sms".into()), (korean(2), "sms".into()), (korean(3), "lms".into())]
    );
    let (ledger, balance) = s.ledger().await;
    assert_eq!(balance, 100 - 11 - 11 - 37);
    let reasons: Vec<(i64, &str)> = ledger.iter().map(|(d, r)| (*d, r.as_str())).collect();
    assert_eq!(reasons, [(100, "purchase"), (-11, "message"), (-11, "message"), (-37, "message")]);

    let page = expect_status(s.app.get_auth(MESSAGES, &s.owner.access).await, StatusCode::OK).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert_eq!(page["items"][0]["channel"], "lms", "newest first");
}

async fn without_credit_a_send_is_402_and_nothing_is_queued_or_sent(wiring: Wiring) {
    let s = setup(wiring, FakeProvider::default()).await;
    let resp = s.send(&json!({ "to": [korean(1)], "channel": "sms", "text": "Hello" })).await;
    assert_problem(resp, StatusCode::PAYMENT_REQUIRED, "insufficient_sms_credit").await;

    // 20 KRW covers one SMS, not two: the batch is refused whole.
    s.credit.top_up(s.group, 20).await;
    let resp =
        s.send(&json!({ "to": [korean(1), korean(2)], "channel": "sms", "text": "Hi" })).await;
    assert_problem(resp, StatusCode::PAYMENT_REQUIRED, "insufficient_sms_credit").await;

    let page = expect_status(s.app.get_auth(MESSAGES, &s.owner.access).await, StatusCode::OK).await;
    assert_eq!(page["items"], json!([]));
    assert!(s.provider.sent().is_empty());
    let (ledger, balance) = s.ledger().await;
    assert_eq!((ledger.len(), balance), (1, 20));
}

async fn bad_numbers_are_each_named_and_a_plain_member_may_not_send(wiring: Wiring) {
    let s = setup(wiring, FakeProvider::default()).await;
    s.credit.top_up(s.group, 100).await;
    let body = json!({ "to": [korean(1), "nope", "+82"], "channel": "sms", "text": "Hi" });
    let problem =
        assert_problem(s.send(&body).await, StatusCode::BAD_REQUEST, "invalid_phone").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["to[1]", "to[2]"]);

    let body = json!({ "to": [korean(1)], "channel": "alimtalk", "text": "Hi" });
    assert_problem(s.send(&body).await, StatusCode::BAD_REQUEST, "invalid_request").await;

    let member = s.app.sign_in(&phone(2)).await;
    let resp = s
        .app
        .call(Method::POST, "/api/v1/groups/acme/join", &member.access, Some(&json!({})))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let body = json!({ "to": [korean(1)], "channel": "sms", "text": "Hi" });
    let resp = s.app.call(Method::POST, MESSAGES, &member.access, Some(&body)).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(s.provider.sent().is_empty());
    assert_eq!(s.ledger().await.1, 100);
}

async fn a_failing_alimtalk_is_resent_as_sms_once_and_the_ledger_shows_refund_and_new_charge(
    wiring: Wiring,
) {
    let provider =
        FakeProvider { alimtalk_failure: Some("3018".into()), ..FakeProvider::default() };
    let s = setup(wiring, provider).await;
    s.credit.top_up(s.group, 100).await;
    let body = json!({
        "to": [korean(1)], "channel": "alimtalk", "text": "Your order shipped",
        "template_code": "ORDER_SHIPPED", "failover": true,
    });
    let queued = expect_status(s.send(&body).await, StatusCode::ACCEPTED).await;
    let id = &ids(&queued)[0];

    let alimtalk = s.until_status(id, "failed_over").await;
    assert_eq!(alimtalk["result_code"], "3018");
    let resend_id = alimtalk["failover_id"].as_str().unwrap();
    let resend = s.until_status(resend_id, "sent").await;
    assert_eq!(resend["channel"], "sms");
    assert_eq!(resend["failover_of"], id.as_str());

    assert_eq!(s.provider.sent(), [(korean(1), "alimtalk".into()), (korean(1), "sms".into())]);
    let (ledger, balance) = s.ledger().await;
    let reasons: Vec<(i64, &str)> = ledger.iter().map(|(d, r)| (*d, r.as_str())).collect();
    assert_eq!(reasons, [(100, "purchase"), (-10, "message"), (10, "refund"), (-11, "message")]);
    assert_eq!(balance, 89);
    // Nothing more happens to either.
    assert_eq!(s.message(id).await["status"], "failed_over");
    assert_eq!(s.provider.sent().len(), 2);
}

async fn fifty_parallel_sends_against_credit_for_twenty_send_exactly_twenty(wiring: Wiring) {
    let s = setup(wiring, FakeProvider::default()).await;
    s.credit.top_up(s.group, 20 * 11).await;
    // Warm the connection pools first: on a busy machine, opening eight Redis connections at
    // once inside the burst can outlast the client's connect timeout (a 500 unrelated to this).
    let warm = (0..8).map(|_| s.app.get_auth(MESSAGES, &s.owner.access));
    for resp in futures_util::future::join_all(warm).await {
        let _ = resp.status();
    }
    let sends = (0..50).map(|n| {
        let body = json!({ "to": [korean(n)], "channel": "sms", "text": "Hi" });
        let (app, token) = (&s.app, s.owner.access.clone());
        async move { app.call(Method::POST, MESSAGES, &token, Some(&body)).await }
    });
    let answers = futures_util::future::join_all(sends).await;
    let mut queued = Vec::new();
    let mut refused = 0;
    for resp in answers {
        match resp.status() {
            StatusCode::ACCEPTED => queued.extend(ids(&resp.json::<Value>().await.unwrap())),
            StatusCode::PAYMENT_REQUIRED => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((queued.len(), refused), (20, 30));
    for id in &queued {
        s.until_status(id, "sent").await;
    }
    assert_eq!(s.provider.sent().len(), 20);
    let (ledger, balance) = s.ledger().await;
    assert_eq!(balance, 0);
    assert_eq!(ledger.len(), 21);
}

async fn a_worker_killed_mid_send_leaves_the_rest_to_the_next_and_each_message_goes_once(
    wiring: Wiring,
) {
    // The first instance's provider takes three messages, then hangs in its fourth call for
    // ever: its worker never records anything again, as if killed there.
    let first = FakeProvider { stall_after: Some(3), ..FakeProvider::default() };
    let log = first.log.clone();
    let s = setup(wiring, first).await;
    s.credit.top_up(s.group, 1_000).await;
    let to: Vec<String> = (0..10).map(korean).collect();
    let queued = expect_status(
        s.send(&json!({ "to": to, "channel": "sms", "text": "Hi" })).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while *s.provider.started.lock().unwrap() < 4 {
        assert!(Instant::now() < deadline, "the first worker never reached its fourth send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A second instance (same storage) with a working provider writing to the same log.
    let second = Arc::new(FakeProvider { log: log.clone(), ..FakeProvider::default() });
    let (p, store) = (second.clone(), s.store.clone());
    let configure = move |settings: &mut Settings| quick(settings, p, store);
    let b = match wiring {
        Wiring::Memory => spawn_app_with(Wiring::Memory, configure).await,
        Wiring::PostgresRedis => spawn_app_beside(&s.app, configure).await,
    };
    for id in ids(&queued) {
        s.until_status(&id, "sent").await;
    }
    let mut per_phone: HashMap<String, usize> = HashMap::new();
    for (to, _) in log.lock().unwrap().iter() {
        *per_phone.entry(to.clone()).or_default() += 1;
    }
    assert_eq!(per_phone.len(), 10, "every message was sent");
    assert!(per_phone.values().all(|n| *n == 1), "none twice: {per_phone:?}");
    assert_eq!(*second.started.lock().unwrap(), 7, "the second worker sent the other seven");
    assert_eq!(s.ledger().await.1, 1_000 - 10 * 11);
    drop(b);
}

async fn two_instances_sending_from_one_outbox_send_each_message_once(wiring: Wiring) {
    let s = setup(wiring, FakeProvider::default()).await;
    let other = Arc::new(FakeProvider { log: s.provider.log.clone(), ..FakeProvider::default() });
    let (p, store) = (other.clone(), s.store.clone());
    let configure = move |settings: &mut Settings| quick(settings, p, store);
    let b = match wiring {
        Wiring::Memory => spawn_app_with(Wiring::Memory, configure).await,
        Wiring::PostgresRedis => spawn_app_beside(&s.app, configure).await,
    };
    s.credit.top_up(s.group, 10_000).await;
    let mut queued = Vec::new();
    for batch in 0..4 {
        let to: Vec<String> = (0..30).map(|n| korean(batch * 100 + n)).collect();
        let body = json!({ "to": to, "channel": "sms", "text": "Hi" });
        queued.extend(ids(&expect_status(s.send(&body).await, StatusCode::ACCEPTED).await));
    }
    for id in &queued {
        s.until_status(id, "sent").await;
    }
    let sent = s.provider.sent();
    let distinct: std::collections::HashSet<&String> = sent.iter().map(|(to, _)| to).collect();
    assert_eq!((sent.len(), distinct.len()), (120, 120), "each of the 120 sent once");
    assert_eq!(s.ledger().await.1, 10_000 - 120 * 11);
    drop(b);
}

/// The worker's steps need no gate.
struct NoGate;

#[async_trait]
impl onboard_messaging::ports::SenderGate for NoGate {
    async fn sender_group(
        &self,
        _: &onboard_groups::Slug,
        _: onboard_kernel::MemberId,
    ) -> Result<GroupId, onboard_messaging::GateError> {
        Err(onboard_messaging::GateError::Forbidden)
    }
}

async fn an_aborted_worker_task_is_replaced_by_a_new_one_and_each_message_goes_once(
    wiring: Wiring,
) {
    // The app queues (its own worker is off); the test runs the workers on the same storage.
    let provider = Arc::new(FakeProvider::default());
    let store = (wiring == Wiring::Memory).then(|| Arc::new(MemoryStore::default()));
    let (p, st) = (provider.clone(), store.clone());
    let app = spawn_app_with(wiring, move |settings| {
        quick(settings, p, st);
        settings.messaging_overrides.no_worker = true;
    })
    .await;
    let repo: Arc<dyn onboard_messaging::ports::MessageRepository> = match &store {
        Some(store) => store.clone(),
        None => Arc::new(onboard_postgres::PgMessageRepository::new(
            onboard_postgres::connect(app.database_url().expect("a database"), 2).await.unwrap(),
        )),
    };
    let credit = match &store {
        Some(store) => Credit::Memory(store.clone()),
        None => Credit::Pg(
            onboard_postgres::connect(app.database_url().expect("a database"), 2).await.unwrap(),
        ),
    };
    let owner = app.sign_in(&phone(1)).await;
    let body = json!({ "name": "Acme", "slug": "acme" });
    let resp = app.call(Method::POST, "/api/v1/groups", &owner.access, Some(&body)).await;
    let group = expect_status(resp, StatusCode::CREATED).await;
    let group = GroupId::from_uuid(group["id"].as_str().unwrap().parse().unwrap());
    credit.top_up(group, 1_000).await;
    let to: Vec<String> = (0..8).map(korean).collect();
    let body = json!({ "to": to, "channel": "sms", "text": "Hi" });
    let resp = app.call(Method::POST, MESSAGES, &owner.access, Some(&body)).await;
    let queued = ids(&expect_status(resp, StatusCode::ACCEPTED).await);

    let worker = |provider: Arc<FakeProvider>| {
        let service = onboard_messaging::MessagingService::new(
            onboard_messaging::MessagingPorts {
                repo: repo.clone(),
                provider,
                gate: Arc::new(NoGate),
                clock: Arc::new(onboard_kernel::SystemClock),
            },
            onboard_messaging::MessagingConfig {
                lease: Duration::from_millis(500),
                ..onboard_messaging::MessagingConfig::default()
            },
        );
        onboard_server::messaging_worker::spawn(service, Duration::from_millis(20))
    };
    // The first worker takes two messages and is aborted inside its third provider call.
    let first = Arc::new(FakeProvider {
        log: provider.log.clone(),
        stall_after: Some(2),
        ..FakeProvider::default()
    });
    let task = worker(first.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while *first.started.lock().unwrap() < 3 {
        assert!(Instant::now() < deadline, "the first worker never reached its third send");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    let second = Arc::new(FakeProvider { log: provider.log.clone(), ..FakeProvider::default() });
    let task = worker(second.clone());
    let s = Setup { app, owner, group, credit, provider, store };
    for id in &queued {
        s.until_status(id, "sent").await;
    }
    task.abort();
    let sent = s.provider.sent();
    let distinct: std::collections::HashSet<&String> = sent.iter().map(|(to, _)| to).collect();
    assert_eq!((sent.len(), distinct.len()), (8, 8), "each of the eight sent once: {sent:?}");
    assert_eq!(*second.started.lock().unwrap(), 6);
}
