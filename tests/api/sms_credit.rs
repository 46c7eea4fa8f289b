//! SMS credit (`shared/spec/payments.md`, "SMS credit") end to end: purchases charged to the
//! main card at once (idempotent by `Idempotency-Key`), the ledger, the auto top-up run by the
//! periodic job once per crossing, and `BILL_INVITE_SMS` (402 `insufficient_sms_credit`,
//! nothing created, nothing sent). A fake gateway stands in for PortOne and a stand-in Twilio
//! (wiremock) shows which SMS left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use onboard_payments::gateway::{
    BillingKey, ChargeRequest, GatewayError, Payment, PaymentGateway, PaymentStatus,
    ScheduleRequest, Unscheduled,
};
use onboard_server::config::SmsSettings;
use onboard_sms::TwilioSettings;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::both_wirings;
use crate::helpers::{
    SignedIn, TestApp, Wiring, assert_problem, expect_status, phone, spawn_app_with,
};

both_wirings!(
    a_purchase_adds_to_the_balance_with_a_ledger_entry_and_a_receipt,
    a_purchase_repeated_with_its_idempotency_key_answers_the_same_and_charges_once,
    a_declined_card_answers_402_and_adds_nothing,
    purchases_need_billing_manage_a_main_card_and_at_least_100_krw,
    an_auto_top_up_runs_once_after_the_balance_crosses_its_threshold,
    a_purchase_charged_while_its_answer_was_lost_is_credited_by_reconciliation,
    a_billed_invite_without_credit_is_refused_and_no_sms_leaves,
    a_billed_invite_with_credit_is_debited_and_created,
    a_null_body_turns_the_auto_top_up_off_as_the_document_says,
);

// ---------------------------------------------------------------------------------------------
// A fake gateway and a stand-in SMS provider
// ---------------------------------------------------------------------------------------------

/// Charges billing keys at once (a number ending in 0002 declines) and remembers them.
#[derive(Debug, Default)]
struct FakeGateway {
    /// customer_uid → declines
    keys: Mutex<HashMap<String, bool>>,
    charges: Mutex<Vec<Payment>>,
    /// The next charge is made but its answer is lost (a timeout after the gateway acted).
    lose_next_answer: Mutex<bool>,
}

impl FakeGateway {
    fn register_card(&self, customer_uid: &str, number: &str) {
        self.keys.lock().unwrap().insert(customer_uid.to_owned(), number.ends_with("0002"));
    }

    fn charges(&self) -> Vec<Payment> {
        self.charges.lock().unwrap().clone()
    }
}

#[async_trait]
impl PaymentGateway for FakeGateway {
    async fn billing_key(&self, customer_uid: &str) -> Result<Option<BillingKey>, GatewayError> {
        Ok(self.keys.lock().unwrap().get(customer_uid).map(|_| BillingKey {
            customer_uid: customer_uid.to_owned(),
            card_name: "Test Card".to_owned(),
            number_masked: "424242******4242".to_owned(),
        }))
    }

    async fn delete_billing_key(&self, customer_uid: &str) -> Result<(), GatewayError> {
        self.keys.lock().unwrap().remove(customer_uid);
        Ok(())
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<Payment, GatewayError> {
        let declines = self.keys.lock().unwrap().get(&request.customer_uid).is_none_or(|d| *d);
        let mut charges = self.charges.lock().unwrap();
        let payment = Payment {
            imp_uid: format!("imp_{}", charges.len() + 1),
            merchant_uid: request.merchant_uid.clone(),
            customer_uid: Some(request.customer_uid.clone()),
            amount: request.amount,
            status: if declines { PaymentStatus::Failed } else { PaymentStatus::Paid },
            failure_reason: declines.then(|| "card declined".to_owned()),
            paid_at: (!declines).then(Utc::now),
        };
        charges.push(payment.clone());
        if std::mem::take(&mut *self.lose_next_answer.lock().unwrap()) {
            return Err(GatewayError::Unavailable("timed out".to_owned()));
        }
        Ok(payment)
    }

    async fn schedule(&self, _request: &ScheduleRequest) -> Result<(), GatewayError> {
        Ok(())
    }

    async fn unschedule(&self, _: &str, _: &str) -> Result<Unscheduled, GatewayError> {
        Ok(Unscheduled::NothingToCancel)
    }

    async fn payment(&self, imp_uid: &str) -> Result<Option<Payment>, GatewayError> {
        Ok(self.charges.lock().unwrap().iter().find(|p| p.imp_uid == imp_uid).cloned())
    }

    async fn payment_by_merchant_uid(
        &self,
        merchant_uid: &str,
    ) -> Result<Option<Payment>, GatewayError> {
        Ok(self.charges.lock().unwrap().iter().find(|p| p.merchant_uid == merchant_uid).cloned())
    }

    fn client_config(&self) -> Value {
        json!({"merchant_id": "imp00000000", "pg": "fake"})
    }
}

const PAYS: &str = "4242424242424242";
const DECLINES: &str = "4000000000000002";

/// A clock the test moves (the payments domain's; the job runner keeps the wall clock).
#[derive(Debug)]
struct TestClock(Mutex<chrono::DateTime<Utc>>);

impl onboard_kernel::Clock for TestClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct Credit {
    clock: Arc<TestClock>,
    app: TestApp,
    gateway: Arc<FakeGateway>,
    sms: MockServer,
    owner: SignedIn,
    slug: String,
}

async fn credit(wiring: Wiring, bill_invite_sms: bool) -> Credit {
    let gateway = Arc::new(FakeGateway::default());
    let sms = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC1/Messages.json"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})),
        )
        .mount(&sms)
        .await;
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let (g, uri, cl) = (gateway.clone(), sms.uri(), clock.clone());
    let app = spawn_app_with(wiring, move |s| {
        s.payments_overrides.gateway = Some(g);
        s.payments_overrides.clock = Some(cl);
        s.billing_tick = Duration::from_millis(50);
        s.bill_invite_sms = bill_invite_sms;
        s.sms = SmsSettings::Twilio(TwilioSettings {
            api_url: uri,
            account_sid: "AC1".to_owned(),
            auth_token: "t".to_owned().into(),
            from: "+15005550006".to_owned(),
            timeout: Duration::from_secs(2),
        });
    })
    .await;
    let owner = app.sign_in(&phone(1)).await;
    let body = json!({"name": "Acme", "slug": "acme"});
    let group = expect_status(
        app.call(Method::POST, "/api/v1/groups", &owner.access, Some(&body)).await,
        StatusCode::CREATED,
    )
    .await;
    let slug = group["slug"].as_str().unwrap().to_owned();
    Credit { clock, app, gateway, sms, owner, slug }
}

impl Credit {
    fn path(&self, rest: &str) -> String {
        format!("/api/v1/groups/{}{rest}", self.slug)
    }

    async fn call(&self, method: Method, rest: &str, body: Option<&Value>) -> Response {
        self.app.call(method, &self.path(rest), &self.owner.access, body).await
    }

    async fn add_card(&self, number: &str) {
        let prepared = expect_status(
            self.call(Method::POST, "/billing/cards/prepare", None).await,
            StatusCode::CREATED,
        )
        .await;
        let uid = prepared["customer_uid"].as_str().unwrap();
        self.gateway.register_card(uid, number);
        let body = json!({"customer_uid": uid});
        expect_status(
            self.call(Method::POST, "/billing/cards", Some(&body)).await,
            StatusCode::CREATED,
        )
        .await;
    }

    async fn buy(&self, amount: i64, key: Option<&str>) -> Response {
        let mut req = self
            .app
            .client
            .post(self.app.url(&self.path("/billing/sms-credit")))
            .bearer_auth(&self.owner.access)
            .json(&json!({"amount": amount}));
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        req.send().await.unwrap()
    }

    async fn credit(&self) -> Value {
        expect_status(self.call(Method::GET, "/billing/sms-credit", None).await, StatusCode::OK)
            .await
    }

    async fn balance(&self) -> i64 {
        self.credit().await["balance"].as_i64().unwrap()
    }

    async fn ledger(&self) -> Vec<Value> {
        let body = expect_status(
            self.call(Method::GET, "/billing/sms-credit/ledger?limit=100", None).await,
            StatusCode::OK,
        )
        .await;
        body["items"].as_array().unwrap().clone()
    }

    async fn invite(&self, n: u32) -> Response {
        let body = json!({"name": "Ann Lee", "phone": phone(n)});
        self.call(Method::POST, "/invites", Some(&body)).await
    }

    async fn invites(&self) -> Vec<Value> {
        let body =
            expect_status(self.call(Method::GET, "/invites", None).await, StatusCode::OK).await;
        body["items"].as_array().unwrap().clone()
    }

    /// The invite SMS the provider received (sign-in codes left out).
    async fn invite_sms(&self) -> Vec<String> {
        self.sms
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .map(|r| String::from_utf8(r.body).unwrap())
            .filter(|form| form.contains("invited"))
            .collect()
    }

    /// Polls until the provider received `n` invite SMS.
    async fn wait_for_invite_sms(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sent = self.invite_sms().await;
            if sent.len() >= n {
                return sent;
            }
            assert!(Instant::now() < deadline, "{} invite SMS instead of {n}", sent.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls the balance until it is `balance` (the periodic job runs every 50 ms).
    async fn wait_for_balance(&self, balance: i64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.balance().await;
            if now == balance {
                return;
            }
            assert!(Instant::now() < deadline, "the balance is {now}, not {balance}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Purchases
// ---------------------------------------------------------------------------------------------

async fn a_purchase_adds_to_the_balance_with_a_ledger_entry_and_a_receipt(wiring: Wiring) {
    let c = credit(wiring, false).await;
    let empty = c.credit().await;
    assert_eq!(empty["balance"], 0);
    assert_eq!(empty["auto_topup"], Value::Null);
    assert_eq!(empty["prices"], json!({"sms": 11, "lms": 37, "alimtalk": 10}));
    c.add_card(PAYS).await;

    let bought = expect_status(c.buy(10_000, None).await, StatusCode::CREATED).await;
    assert_eq!(bought["balance"], 10_000);
    assert_eq!(bought["receipt"]["kind"], "sms_credit");
    assert_eq!(bought["receipt"]["amount"], 10_000);
    assert_eq!(bought["receipt"]["status"], "paid");
    let again = expect_status(c.buy(500, None).await, StatusCode::CREATED).await;
    assert_eq!(again["balance"], 10_500);

    assert_eq!(c.balance().await, 10_500);
    let ledger = c.ledger().await;
    let seen: Vec<(i64, i64, &str)> = ledger
        .iter()
        .map(|e| {
            (
                e["delta"].as_i64().unwrap(),
                e["balance"].as_i64().unwrap(),
                e["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(500, 10_500, "purchase"), (10_000, 10_000, "purchase")]);
    let page = expect_status(
        c.call(Method::GET, "/billing/sms-credit/ledger?limit=1", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let rest = expect_status(
        c.call(Method::GET, &format!("/billing/sms-credit/ledger?limit=1&cursor={cursor}"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rest["items"][0]["delta"], 10_000);
    assert_eq!(rest["next_cursor"], Value::Null);

    let receipts =
        expect_status(c.call(Method::GET, "/billing/receipts", None).await, StatusCode::OK).await;
    let kinds: Vec<&str> =
        receipts["items"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["sms_credit", "sms_credit"]);
}

async fn a_purchase_repeated_with_its_idempotency_key_answers_the_same_and_charges_once(
    wiring: Wiring,
) {
    let c = credit(wiring, false).await;
    c.add_card(PAYS).await;
    let first = expect_status(c.buy(3_000, Some("buy-1")).await, StatusCode::CREATED).await;
    let second = expect_status(c.buy(3_000, Some("buy-1")).await, StatusCode::CREATED).await;
    assert_eq!(first, second);
    assert_eq!(c.gateway.charges().len(), 1);
    assert_eq!(c.balance().await, 3_000);
    assert_problem(
        c.buy(4_000, Some("buy-1")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(c.balance().await, 3_000);
}

async fn a_declined_card_answers_402_and_adds_nothing(wiring: Wiring) {
    let c = credit(wiring, false).await;
    c.add_card(DECLINES).await;
    let problem =
        assert_problem(c.buy(5_000, None).await, StatusCode::PAYMENT_REQUIRED, "payment_failed")
            .await;
    assert!(problem["detail"].as_str().unwrap().contains("card declined"), "{problem}");
    assert_eq!(c.gateway.charges().len(), 1);
    assert_eq!(c.balance().await, 0);
    assert!(c.ledger().await.is_empty());
}

async fn purchases_need_billing_manage_a_main_card_and_at_least_100_krw(wiring: Wiring) {
    let c = credit(wiring, false).await;
    assert_problem(c.buy(1_000, None).await, StatusCode::CONFLICT, "no_main_card").await;
    c.add_card(PAYS).await;
    assert_problem(c.buy(99, None).await, StatusCode::BAD_REQUEST, "invalid_request").await;
    let stranger = c.app.sign_in(&phone(77)).await;
    let resp = c
        .app
        .call(
            Method::POST,
            &c.path("/billing/sms-credit"),
            &stranger.access,
            Some(&json!({"amount": 1_000})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(c.gateway.charges().is_empty());
    let off = json!({"below": 1_000, "amount": 50});
    assert_problem(
        c.call(Method::PUT, "/billing/sms-credit/auto-topup", Some(&off)).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

async fn a_purchase_charged_while_its_answer_was_lost_is_credited_by_reconciliation(
    wiring: Wiring,
) {
    let c = credit(wiring, false).await;
    c.add_card(PAYS).await;
    *c.gateway.lose_next_answer.lock().unwrap() = true;
    assert_problem(
        c.buy(7_000, Some("lost")).await,
        StatusCode::BAD_GATEWAY,
        "gateway_unavailable",
    )
    .await;
    assert_eq!(c.balance().await, 0, "nothing credited while the outcome is unknown");
    // A repeat with the key does not charge again.
    assert_problem(
        c.buy(7_000, Some("lost")).await,
        StatusCode::BAD_GATEWAY,
        "gateway_unavailable",
    )
    .await;
    assert_eq!(c.gateway.charges().len(), 1);

    // Past the reconciliation delay the payment is read back and credited, once.
    {
        let mut now = c.clock.0.lock().unwrap();
        *now += chrono::Duration::minutes(11);
    }
    c.wait_for_balance(7_000).await;
    let ledger = c.ledger().await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["reason"], "purchase");
    assert_eq!(c.gateway.charges().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Auto top-up and billed invite SMS
// ---------------------------------------------------------------------------------------------

async fn an_auto_top_up_runs_once_after_the_balance_crosses_its_threshold(wiring: Wiring) {
    let c = credit(wiring, true).await;
    c.add_card(PAYS).await;
    expect_status(c.buy(1_000, None).await, StatusCode::CREATED).await;
    let on = json!({"below": 995, "amount": 5_000});
    let after = expect_status(
        c.call(Method::PUT, "/billing/sms-credit/auto-topup", Some(&on)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(after["auto_topup"], on);

    // 1,000 → 989: below 995, once.
    expect_status(c.invite(2).await, StatusCode::CREATED).await;
    c.wait_for_balance(5_989).await;
    // 989 + 5,000 → 5,978: no new crossing, no new top-up.
    expect_status(c.invite(3).await, StatusCode::CREATED).await;
    assert_eq!(c.balance().await, 5_978);

    let charged: Vec<i64> = c.gateway.charges().iter().map(|p| p.amount).collect();
    assert_eq!(charged, [1_000, 5_000]);
    let reasons: Vec<String> =
        c.ledger().await.iter().map(|e| e["reason"].as_str().unwrap().to_owned()).collect();
    assert_eq!(reasons, ["invite_sms", "auto_topup", "invite_sms", "purchase"]);

    let off = expect_status(
        c.call(Method::DELETE, "/billing/sms-credit/auto-topup", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(off["auto_topup"], Value::Null);
}

async fn a_null_body_turns_the_auto_top_up_off_as_the_document_says(wiring: Wiring) {
    let c = credit(wiring, false).await;
    c.add_card(PAYS).await;
    let on = json!({"below": 1_000, "amount": 5_000});
    let after = expect_status(
        c.call(Method::PUT, "/billing/sms-credit/auto-topup", Some(&on)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(after["auto_topup"], on);
    let off = expect_status(
        c.call(Method::PUT, "/billing/sms-credit/auto-topup", Some(&Value::Null)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(off["auto_topup"], Value::Null);
}

async fn a_billed_invite_without_credit_is_refused_and_no_sms_leaves(wiring: Wiring) {
    let c = credit(wiring, true).await;
    assert_problem(c.invite(2).await, StatusCode::PAYMENT_REQUIRED, "insufficient_sms_credit")
        .await;
    assert!(c.invites().await.is_empty(), "no invite was created");
    assert!(c.ledger().await.is_empty());

    // With credit, the next invite goes out; it is the only invite SMS the provider ever got.
    c.add_card(PAYS).await;
    expect_status(c.buy(100, None).await, StatusCode::CREATED).await;
    expect_status(c.invite(3).await, StatusCode::CREATED).await;
    let sent = c.wait_for_invite_sms(1).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains(&phone(3).replace('+', "%2B")), "{}", sent[0]);
}

async fn a_billed_invite_with_credit_is_debited_and_created(wiring: Wiring) {
    let c = credit(wiring, true).await;
    c.add_card(PAYS).await;
    expect_status(c.buy(100, None).await, StatusCode::CREATED).await;
    let invite = expect_status(c.invite(2).await, StatusCode::CREATED).await;
    assert_eq!(c.balance().await, 89);
    let ledger = c.ledger().await;
    assert_eq!(ledger[0]["delta"], -11);
    assert_eq!(ledger[0]["reason"], "invite_sms");
    let invites = c.invites().await;
    assert_eq!(invites.len(), 1);
    assert_eq!(invites[0]["id"], invite["id"]);
    // An invite by e-mail alone sends no SMS and costs nothing.
    let by_mail = json!({"name": "Bo Kim", "email": "bo@example.com"});
    expect_status(c.call(Method::POST, "/invites", Some(&by_mail)).await, StatusCode::CREATED)
        .await;
    assert_eq!(c.balance().await, 89);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_the_sms_credit_calls() {
    let app = crate::helpers::spawn_app(Wiring::Memory).await;
    let doc = expect_status(app.get("/api/v1/openapi.json").await, StatusCode::OK).await;
    for path in [
        "/api/v1/groups/{slug}/billing/sms-credit",
        "/api/v1/groups/{slug}/billing/sms-credit/auto-topup",
        "/api/v1/groups/{slug}/billing/sms-credit/ledger",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"].to_string();
    assert!(codes.contains("insufficient_sms_credit"), "{codes}");
}
