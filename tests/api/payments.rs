//! Payments (`shared/spec/payments.md`) end to end: plans, trials, charges, webhooks, retries,
//! main-card changes, idempotency keys and usage limits, with a settable clock and a fake
//! gateway standing in for PortOne (it runs scheduled charges when a test says so and the test
//! delivers the webhook, as PortOne would).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use futures_util::future::join_all;
use onboard_kernel::Clock;
use onboard_payments::gateway::{
    BillingKey, ChargeRequest, GatewayError, Payment, PaymentGateway, PaymentStatus,
    ScheduleRequest, Unscheduled,
};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{
    SignedIn, TestApp, Wiring, assert_problem, expect_status, phone, spawn_app_with,
};

both_wirings!(
    the_plans_say_their_prices_exclude_vat_and_give_them_with_it,
    the_plan_catalogue_is_public,
    a_trial_ends_in_a_first_charge_and_then_renews,
    free_to_paid_after_a_used_trial_charges_at_once_and_a_decline_changes_nothing,
    a_paid_plan_cancelled_stays_until_the_period_end_then_falls_to_free,
    a_failed_renewal_is_retried_three_times_then_falls_back_to_free,
    a_late_paid_retry_reactivates,
    a_duplicated_webhook_changes_nothing,
    a_forged_webhook_changes_nothing,
    a_main_card_change_fails_whole_at_each_step_and_then_succeeds,
    ten_parallel_plan_changes_with_one_idempotency_key_have_one_effect,
    twenty_parallel_usage_increments_at_the_limit_edge_never_go_over,
    card_rules_and_permissions_hold,
    a_lost_webhook_is_caught_by_reconciliation,
    a_charge_with_an_unknown_outcome_holds_changes_until_reconciled,
    a_service_token_records_usage_in_any_group,
    the_simulated_gateway_serves_a_trial_through_its_test_calls,
    the_admin_group_list_shows_each_groups_plan,
);

// ---------------------------------------------------------------------------------------------
// A settable clock and a fake gateway
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(Utc::now().trunc_subsecs(6))))
    }
    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }
    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Schedule,
    Unschedule,
    Charge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ScheduleState {
    Scheduled,
    Cancelled,
    Executed,
}

#[derive(Debug, Default)]
struct FakeState {
    /// customer_uid → (masked number, declines)
    keys: HashMap<String, (String, bool)>,
    schedules: HashMap<String, (ScheduleRequest, ScheduleState)>,
    schedule_calls: usize,
    payments: HashMap<String, Payment>,
    fail_next: Vec<Op>,
    counter: u64,
}

/// PortOne as the tests need it: test cards (a number ending in 0002 declines), schedules run on
/// demand, injected faults.
#[derive(Debug, Default)]
struct FakeGateway(Mutex<FakeState>);

impl FakeGateway {
    fn register_card(&self, customer_uid: &str, number: &str) {
        let masked = format!("{}******{}", &number[..6], &number[number.len() - 4..]);
        self.0
            .lock()
            .unwrap()
            .keys
            .insert(customer_uid.to_owned(), (masked, number.ends_with("0002")));
    }

    fn fail_next(&self, op: Op) {
        self.0.lock().unwrap().fail_next.push(op);
    }

    fn take_fault(&self, op: Op) -> Result<(), GatewayError> {
        let mut s = self.0.lock().unwrap();
        if let Some(i) = s.fail_next.iter().position(|o| *o == op) {
            s.fail_next.remove(i);
            return Err(GatewayError::Unavailable(format!("injected {op:?} failure")));
        }
        Ok(())
    }

    /// How many billing keys the gateway holds (leftovers).
    fn key_count(&self) -> usize {
        self.0.lock().unwrap().keys.len()
    }

    fn schedule_state(&self, merchant_uid: &str) -> Option<ScheduleState> {
        self.0.lock().unwrap().schedules.get(merchant_uid).map(|(_, s)| s.clone())
    }

    fn active_schedules(&self) -> Vec<ScheduleRequest> {
        let s = self.0.lock().unwrap();
        s.schedules
            .values()
            .filter(|(_, st)| *st == ScheduleState::Scheduled)
            .map(|(r, _)| r.clone())
            .collect()
    }

    fn schedule_calls(&self) -> usize {
        self.0.lock().unwrap().schedule_calls
    }

    /// Runs a scheduled charge now with this outcome; answers the payment's imp_uid.
    fn execute(&self, merchant_uid: &str, paid: bool) -> String {
        let mut s = self.0.lock().unwrap();
        let (request, state) = s.schedules.get_mut(merchant_uid).expect("a scheduled charge");
        assert_eq!(*state, ScheduleState::Scheduled, "{merchant_uid} is scheduled");
        *state = ScheduleState::Executed;
        let request = request.clone();
        s.counter += 1;
        let imp_uid = format!("imp_{}", s.counter);
        s.payments.insert(
            imp_uid.clone(),
            Payment {
                imp_uid: imp_uid.clone(),
                merchant_uid: merchant_uid.to_owned(),
                customer_uid: Some(request.customer_uid),
                amount: request.amount,
                status: if paid { PaymentStatus::Paid } else { PaymentStatus::Failed },
                failure_reason: (!paid).then(|| "card declined (insufficient funds)".to_owned()),
                paid_at: paid.then(Utc::now),
            },
        );
        imp_uid
    }

    /// A payment the gateway knows, made up by the test.
    fn insert_payment(&self, payment: Payment) {
        self.0.lock().unwrap().payments.insert(payment.imp_uid.clone(), payment);
    }
}

#[async_trait]
impl PaymentGateway for FakeGateway {
    async fn billing_key(&self, customer_uid: &str) -> Result<Option<BillingKey>, GatewayError> {
        Ok(self.0.lock().unwrap().keys.get(customer_uid).map(|(masked, _)| BillingKey {
            customer_uid: customer_uid.to_owned(),
            card_name: "Test Card".to_owned(),
            number_masked: masked.clone(),
        }))
    }

    async fn delete_billing_key(&self, customer_uid: &str) -> Result<(), GatewayError> {
        self.0.lock().unwrap().keys.remove(customer_uid);
        Ok(())
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<Payment, GatewayError> {
        self.take_fault(Op::Charge)?;
        let mut s = self.0.lock().unwrap();
        let declines = s.keys.get(&request.customer_uid).is_none_or(|(_, d)| *d);
        s.counter += 1;
        let payment = Payment {
            imp_uid: format!("imp_{}", s.counter),
            merchant_uid: request.merchant_uid.clone(),
            customer_uid: Some(request.customer_uid.clone()),
            amount: request.amount,
            status: if declines { PaymentStatus::Failed } else { PaymentStatus::Paid },
            failure_reason: declines.then(|| "card declined".to_owned()),
            paid_at: (!declines).then(Utc::now),
        };
        s.payments.insert(payment.imp_uid.clone(), payment.clone());
        Ok(payment)
    }

    async fn schedule(&self, request: &ScheduleRequest) -> Result<(), GatewayError> {
        self.take_fault(Op::Schedule)?;
        let mut s = self.0.lock().unwrap();
        if s.schedules
            .get(&request.merchant_uid)
            .is_some_and(|(_, st)| *st != ScheduleState::Cancelled)
        {
            return Err(GatewayError::Rejected {
                code: 1,
                message: "merchant_uid already scheduled".into(),
            });
        }
        s.schedule_calls += 1;
        s.schedules
            .insert(request.merchant_uid.clone(), (request.clone(), ScheduleState::Scheduled));
        Ok(())
    }

    async fn unschedule(
        &self,
        _customer_uid: &str,
        merchant_uid: &str,
    ) -> Result<Unscheduled, GatewayError> {
        self.take_fault(Op::Unschedule)?;
        let mut s = self.0.lock().unwrap();
        match s.schedules.get_mut(merchant_uid) {
            Some((_, st)) if *st == ScheduleState::Scheduled => {
                *st = ScheduleState::Cancelled;
                Ok(Unscheduled::Cancelled)
            }
            _ => Ok(Unscheduled::NothingToCancel),
        }
    }

    async fn payment(&self, imp_uid: &str) -> Result<Option<Payment>, GatewayError> {
        Ok(self.0.lock().unwrap().payments.get(imp_uid).cloned())
    }

    async fn payment_by_merchant_uid(
        &self,
        merchant_uid: &str,
    ) -> Result<Option<Payment>, GatewayError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .payments
            .values()
            .find(|p| p.merchant_uid == merchant_uid)
            .cloned())
    }

    fn client_config(&self) -> Value {
        json!({"merchant_id": "imp00000000", "pg": "fake"})
    }
}

const SERVICE_TOKEN: &str = "svc-0123456789abcdef0123456789abcdef";
const PAYS: &str = "4242424242424242";
const DECLINES: &str = "4000000000000002";

// ---------------------------------------------------------------------------------------------
// A billing test app
// ---------------------------------------------------------------------------------------------

struct Billed {
    app: TestApp,
    clock: Arc<TestClock>,
    gateway: Arc<FakeGateway>,
    owner: SignedIn,
    slug: String,
}

async fn billed(wiring: Wiring) -> Billed {
    let clock = TestClock::new();
    let gateway = Arc::new(FakeGateway::default());
    let (c, g) = (clock.clone(), gateway.clone());
    let app = spawn_app_with(wiring, move |s| {
        s.payments_overrides.clock = Some(c);
        s.payments_overrides.gateway = Some(g);
        s.billing_tick = StdDuration::from_millis(50);
        s.service_tokens = vec![SERVICE_TOKEN.to_owned().into()];
        s.admin_phones = vec![onboard_kernel::PhoneNumber::parse(&phone(9_000_009), None).unwrap()];
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
    Billed { app, clock, gateway, owner, slug }
}

impl Billed {
    fn path(&self, rest: &str) -> String {
        format!("/api/v1/groups/{}{rest}", self.slug)
    }

    async fn call(&self, method: Method, rest: &str, body: Option<&Value>) -> Response {
        self.app.call(method, &self.path(rest), &self.owner.access, body).await
    }

    async fn billing(&self) -> Value {
        expect_status(self.call(Method::GET, "/billing", None).await, StatusCode::OK).await
    }

    async fn receipts(&self) -> Vec<Value> {
        let body =
            expect_status(self.call(Method::GET, "/billing/receipts", None).await, StatusCode::OK)
                .await;
        body["items"].as_array().unwrap().clone()
    }

    /// Prepares, registers at the gateway and adds a card; answers it.
    async fn add_card(&self, number: &str) -> Value {
        let prepared = expect_status(
            self.call(Method::POST, "/billing/cards/prepare", None).await,
            StatusCode::CREATED,
        )
        .await;
        let uid = prepared["customer_uid"].as_str().unwrap();
        assert!(prepared["gateway"].is_object());
        self.gateway.register_card(uid, number);
        let body = json!({"customer_uid": uid});
        expect_status(
            self.call(Method::POST, "/billing/cards", Some(&body)).await,
            StatusCode::CREATED,
        )
        .await
    }

    async fn change_plan(&self, body: &Value) -> Response {
        self.call(Method::PUT, "/billing/plan", Some(body)).await
    }

    async fn change_plan_ok(&self, body: &Value) -> Value {
        expect_status(self.change_plan(body).await, StatusCode::OK).await
    }

    /// Runs the pending charge at the gateway and delivers its webhook; answers the handler's
    /// answer.
    async fn run_next_charge(&self, paid: bool) -> Value {
        let billing = self.billing().await;
        let uid =
            billing["next_charge"]["merchant_uid"].as_str().expect("a pending charge").to_owned();
        let at: DateTime<Utc> = billing["next_charge"]["at"].as_str().unwrap().parse().unwrap();
        self.clock.set(at + Duration::minutes(1));
        let imp_uid = self.gateway.execute(&uid, paid);
        self.webhook(&imp_uid, &uid, if paid { "paid" } else { "failed" }).await
    }

    async fn webhook(&self, imp_uid: &str, merchant_uid: &str, status: &str) -> Value {
        let body = json!({"imp_uid": imp_uid, "merchant_uid": merchant_uid, "status": status});
        expect_status(
            self.app.post_json("/api/v1/billing/webhooks/portone", &body).await,
            StatusCode::OK,
        )
        .await
    }

    /// Polls the billing status until it is `status` (the periodic work runs every 50 ms).
    async fn wait_for_status(&self, status: &str) -> Value {
        let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
        loop {
            let billing = self.billing().await;
            if billing["status"] == status {
                return billing;
            }
            assert!(std::time::Instant::now() < deadline, "still {billing} instead of {status}");
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    }
}

fn pro_month() -> Value {
    json!({"plan": "pro", "interval": "month"})
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("a time: {v}")).parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

async fn the_plan_catalogue_is_public(wiring: Wiring) {
    let b = billed(wiring).await;
    let plans = expect_status(b.app.get("/api/v1/plans").await, StatusCode::OK).await;
    let items = plans["items"].as_array().unwrap();
    let codes: Vec<&str> = items.iter().map(|p| p["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["free", "starter", "pro", "team", "company"]);
    assert_eq!(items[2]["monthly_price"], 75_800);
    assert_eq!(items[2]["yearly_price"], 68_000);
    assert_eq!(items[2]["currency"], "KRW");
    assert_eq!(items[0]["limits"]["consultations"], 3);
    assert_eq!(items[1]["limits"]["forms"], Value::Null);
    // A group that never chose a plan is on Free.
    let billing = b.billing().await;
    assert_eq!(billing["plan"], "free");
    assert_eq!(billing["status"], "free");
    assert_eq!(billing["next_charge"], Value::Null);
    assert_eq!(billing["trial_used"], false);
}

async fn the_plans_say_their_prices_exclude_vat_and_give_them_with_it(wiring: Wiring) {
    let b = billed(wiring).await;
    let plans = expect_status(b.app.get("/api/v1/plans").await, StatusCode::OK).await;
    assert_eq!(plans["prices_include_vat"], false);
    assert_eq!(plans["vat_rate_percent"], 10);
    let pro = &plans["items"][2];
    // The net prices stay as they were; the figures with VAT are what a card is charged.
    assert_eq!(pro["monthly_price"], 75_800);
    assert_eq!(pro["vat_included"], json!({ "monthly_price": 83_380, "yearly_price": 74_800 }));
    let addon = &pro["addons"][0];
    assert_eq!(addon["monthly_price"], 60_700);
    assert_eq!(addon["vat_included"], json!({ "monthly_price": 66_770, "yearly_price": 59_400 }));
    // The OpenAPI document says so too.
    let doc = expect_status(b.app.get("/api/v1/openapi.json").await, StatusCode::OK).await;
    let schema = &doc["components"]["schemas"]["PlanList"];
    assert!(schema["properties"]["prices_include_vat"].is_object(), "{schema}");
    let plan = &doc["components"]["schemas"]["PlanDto"];
    assert!(plan["description"].as_str().unwrap().contains("without"), "{plan}");
    assert!(plan["properties"]["vat_included"].is_object(), "{plan}");
}

async fn a_trial_ends_in_a_first_charge_and_then_renews(wiring: Wiring) {
    let b = billed(wiring).await;
    assert_problem(b.change_plan(&pro_month()).await, StatusCode::CONFLICT, "no_main_card").await;
    let card = b.add_card(PAYS).await;
    assert_eq!(card["main"], true, "the first card is main");
    assert_eq!(card["number_masked"], "424242******4242");

    let preview = expect_status(
        b.call(Method::POST, "/billing/plan/preview", Some(&pro_month())).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(preview["status_after"], "trialing");
    assert_eq!(preview["charge_now"], 0);
    let billing = b.change_plan_ok(&pro_month()).await;
    assert_eq!(billing["status"], "trialing");
    assert_eq!(billing["plan"], "pro");
    assert_eq!(billing["trial_used"], true);
    let trial_end = time(&billing["trial_ends_at"]);
    assert_eq!(billing["next_charge"]["at"], billing["trial_ends_at"]);
    assert_eq!(billing["next_charge"]["amount"], 83_380, "75,800 + 10 % VAT");
    assert_eq!(preview["next_charge"]["at"], billing["next_charge"]["at"], "preview = change");
    assert_eq!(preview["next_charge"]["amount"], billing["next_charge"]["amount"]);
    assert_eq!(billing["next_charge"]["card_id"], card["id"]);
    let days = (trial_end - Utc::now()).num_days();
    assert!((13..=14).contains(&days), "a 14-day trial, not {days}");
    assert_eq!(b.gateway.active_schedules().len(), 1);

    // Trial end: the first charge.
    let first_uid = billing["next_charge"]["merchant_uid"].clone();
    assert_eq!(b.run_next_charge(true).await["outcome"], "applied");
    let billing = b.billing().await;
    assert_eq!(billing["status"], "active");
    assert_eq!(time(&billing["current_period_start"]), trial_end);
    let period_end = time(&billing["current_period_end"]);
    assert!((period_end - trial_end).num_days() >= 28);
    assert_eq!(time(&billing["next_charge"]["at"]), period_end);
    assert_ne!(billing["next_charge"]["merchant_uid"], first_uid);
    let receipts = b.receipts().await;
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["status"], "paid");
    assert_eq!(receipts[0]["amount"], 83_380);
    assert_eq!(receipts[0]["vat"], 7_580);
    assert_eq!(receipts[0]["kind"], "subscription");

    // Renewal.
    b.run_next_charge(true).await;
    let renewed = b.billing().await;
    assert_eq!(renewed["status"], "active");
    assert_eq!(time(&renewed["current_period_start"]), period_end);
    assert_eq!(b.receipts().await.len(), 2);
    assert_eq!(b.gateway.active_schedules().len(), 1, "one pending charge at a time");
}

async fn free_to_paid_after_a_used_trial_charges_at_once_and_a_decline_changes_nothing(
    wiring: Wiring,
) {
    let b = billed(wiring).await;
    let declining = b.add_card(DECLINES).await;
    b.change_plan_ok(&pro_month()).await;
    let back = b.change_plan_ok(&json!({"plan": "free"})).await;
    assert_eq!(back["status"], "free");
    assert_eq!(back["trial_used"], true);
    assert!(b.gateway.active_schedules().is_empty(), "the trial's charge is cancelled");

    // The main card declines: 402, nothing changed.
    assert_eq!(declining["main"], true);
    let preview = expect_status(
        b.call(Method::POST, "/billing/plan/preview", Some(&pro_month())).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(preview["charge_now"], 83_380);
    assert_eq!(preview["status_after"], "active");
    assert_problem(
        b.change_plan(&pro_month()).await,
        StatusCode::PAYMENT_REQUIRED,
        "payment_failed",
    )
    .await;
    let billing = b.billing().await;
    assert_eq!(billing["status"], "free");
    assert_eq!(billing["plan"], "free");
    assert_eq!(billing["next_charge"], Value::Null);
    assert!(b.gateway.active_schedules().is_empty());

    // A paying card made main: charged at once, active, next charge at the period end.
    let paying = b.add_card(PAYS).await;
    expect_status(
        b.call(
            Method::PUT,
            &format!("/billing/cards/{}/main", paying["id"].as_str().unwrap()),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let billing = b.change_plan_ok(&pro_month()).await;
    assert_eq!(billing["status"], "active");
    assert_eq!(billing["next_charge"]["at"], billing["current_period_end"]);
    assert_eq!(billing["next_charge"]["card_id"], paying["id"]);
    let receipts = b.receipts().await;
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["status"], "paid");
    assert_eq!(receipts[0]["amount"], 83_380);
    assert_eq!(b.gateway.active_schedules().len(), 1);
}

async fn a_paid_plan_cancelled_stays_until_the_period_end_then_falls_to_free(wiring: Wiring) {
    let b = billed(wiring).await;
    b.add_card(PAYS).await;
    b.change_plan_ok(&pro_month()).await;
    b.run_next_charge(true).await;
    let canceling = b.change_plan_ok(&json!({"plan": "free"})).await;
    assert_eq!(canceling["status"], "canceling");
    assert_eq!(canceling["cancel_at_period_end"], true);
    assert_eq!(canceling["plan"], "pro", "paid until the period end");
    assert_eq!(canceling["next_charge"], Value::Null);
    assert!(b.gateway.active_schedules().is_empty());

    // Withdrawn and cancelled again.
    let again = b.change_plan_ok(&pro_month()).await;
    assert_eq!(again["status"], "active");
    assert_eq!(b.gateway.active_schedules().len(), 1);
    b.change_plan_ok(&json!({"plan": "free"})).await;

    b.clock.set(time(&canceling["current_period_end"]) + Duration::minutes(1));
    let free = b.wait_for_status("free").await;
    assert_eq!(free["plan"], "free");
    assert_eq!(free["trial_used"], true);
}

async fn a_failed_renewal_is_retried_three_times_then_falls_back_to_free(wiring: Wiring) {
    let b = billed(wiring).await;
    b.add_card(PAYS).await;
    b.change_plan_ok(&pro_month()).await;
    let due = time(&b.billing().await["next_charge"]["at"]);
    let mut uids = vec![b.billing().await["next_charge"]["merchant_uid"].clone()];
    for (attempt, days) in [1, 3, 7].into_iter().enumerate() {
        assert_eq!(b.run_next_charge(false).await["outcome"], "applied");
        let billing = b.billing().await;
        assert_eq!(billing["status"], "past_due", "after failure {}", attempt + 1);
        assert_eq!(time(&billing["next_charge"]["at"]), due + Duration::days(days));
        assert!(
            !uids.contains(&billing["next_charge"]["merchant_uid"]),
            "a new merchant_uid each time"
        );
        uids.push(billing["next_charge"]["merchant_uid"].clone());
    }
    b.run_next_charge(false).await;
    let billing = b.billing().await;
    assert_eq!(billing["status"], "free");
    assert_eq!(billing["plan"], "free");
    assert_eq!(billing["next_charge"], Value::Null);
    let receipts = b.receipts().await;
    assert_eq!(receipts.len(), 4);
    assert!(receipts.iter().all(|r| r["status"] == "failed"));
    assert!(receipts[0]["failure_reason"].as_str().unwrap().contains("declined"));
    assert!(b.gateway.active_schedules().is_empty());
}

async fn a_late_paid_retry_reactivates(wiring: Wiring) {
    let b = billed(wiring).await;
    b.add_card(PAYS).await;
    b.change_plan_ok(&pro_month()).await;
    b.run_next_charge(false).await;
    assert_eq!(b.billing().await["status"], "past_due");
    b.run_next_charge(true).await;
    let billing = b.billing().await;
    assert_eq!(billing["status"], "active");
    assert_eq!(billing["plan"], "pro");
    assert_eq!(b.gateway.active_schedules().len(), 1);
}

async fn a_duplicated_webhook_changes_nothing(wiring: Wiring) {
    let b = billed(wiring).await;
    b.add_card(PAYS).await;
    let billing = b.change_plan_ok(&pro_month()).await;
    let uid = billing["next_charge"]["merchant_uid"].as_str().unwrap().to_owned();
    b.clock.set(time(&billing["next_charge"]["at"]) + Duration::minutes(1));
    let imp_uid = b.gateway.execute(&uid, true);
    let answers = join_all((0..4).map(|_| b.webhook(&imp_uid, &uid, "paid"))).await;
    let applied = answers.iter().filter(|a| a["outcome"] == "applied").count();
    assert_eq!(applied, 1, "{answers:?}");
    let after = b.billing().await;
    assert_eq!(b.webhook(&imp_uid, &uid, "paid").await["outcome"], "duplicate");
    assert_eq!(b.billing().await, after);
    assert_eq!(b.receipts().await.len(), 1);
    assert_eq!(b.gateway.active_schedules().len(), 1);
}

async fn a_forged_webhook_changes_nothing(wiring: Wiring) {
    let b = billed(wiring).await;
    b.add_card(PAYS).await;
    let before = b.change_plan_ok(&pro_month()).await;
    let uid = before["next_charge"]["merchant_uid"].as_str().unwrap().to_owned();
    // Unknown to the gateway.
    assert_eq!(b.webhook("imp_forged", &uid, "paid").await["outcome"], "ignored");
    // The gateway says failed, and for another merchant_uid.
    b.gateway.insert_payment(Payment {
        imp_uid: "imp_other".into(),
        merchant_uid: "ob_someone_else".into(),
        customer_uid: None,
        amount: 83_380,
        status: PaymentStatus::Failed,
        failure_reason: Some("declined".into()),
        paid_at: None,
    });
    assert_eq!(b.webhook("imp_other", &uid, "paid").await["outcome"], "ignored");
    // The right merchant_uid with the wrong amount.
    b.gateway.insert_payment(Payment {
        imp_uid: "imp_cheap".into(),
        merchant_uid: uid.clone(),
        customer_uid: None,
        amount: 100,
        status: PaymentStatus::Paid,
        failure_reason: None,
        paid_at: Some(Utc::now()),
    });
    assert_eq!(b.webhook("imp_cheap", &uid, "paid").await["outcome"], "ignored");
    // Malformed.
    let resp = b.app.post_json("/api/v1/billing/webhooks/portone", &json!({"imp_uid": 1})).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(b.billing().await, before);
    assert!(b.receipts().await.is_empty());
}

async fn a_main_card_change_fails_whole_at_each_step_and_then_succeeds(wiring: Wiring) {
    let b = billed(wiring).await;
    let first = b.add_card(PAYS).await;
    let second = b.add_card(PAYS).await;
    assert_eq!(second["main"], false);
    let before = b.change_plan_ok(&pro_month()).await;
    let old_uid = before["next_charge"]["merchant_uid"].as_str().unwrap().to_owned();
    let path = format!("/billing/cards/{}/main", second["id"].as_str().unwrap());

    for op in [Op::Unschedule, Op::Schedule] {
        b.gateway.fail_next(op);
        assert_problem(
            b.call(Method::PUT, &path, None).await,
            StatusCode::BAD_GATEWAY,
            "gateway_unavailable",
        )
        .await;
        let cards =
            expect_status(b.call(Method::GET, "/billing/cards", None).await, StatusCode::OK).await;
        let main: Vec<&Value> =
            cards["items"].as_array().unwrap().iter().filter(|c| c["main"] == true).collect();
        assert_eq!(main.len(), 1, "one main card after a {op:?} failure");
        assert_eq!(main[0]["id"], first["id"], "the old card stays main after a {op:?} failure");
        let billing = b.billing().await;
        assert_eq!(
            billing["next_charge"], before["next_charge"],
            "the schedule is intact after a {op:?} failure"
        );
        assert_eq!(b.gateway.schedule_state(&old_uid), Some(ScheduleState::Scheduled));
        assert_eq!(b.gateway.active_schedules().len(), 1);
    }

    let after = expect_status(b.call(Method::PUT, &path, None).await, StatusCode::OK).await;
    assert_eq!(after["next_charge"]["card_id"], second["id"]);
    assert_ne!(after["next_charge"]["merchant_uid"], before["next_charge"]["merchant_uid"]);
    assert_eq!(after["next_charge"]["at"], before["next_charge"]["at"]);
    assert_eq!(after["next_charge"]["amount"], before["next_charge"]["amount"]);
    assert_eq!(b.gateway.schedule_state(&old_uid), Some(ScheduleState::Cancelled));
    let active = b.gateway.active_schedules();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].merchant_uid, after["next_charge"]["merchant_uid"].as_str().unwrap());
    // The old card is free to go now; the new main card is not.
    let old = format!("/billing/cards/{}", first["id"].as_str().unwrap());
    let new = format!("/billing/cards/{}", second["id"].as_str().unwrap());
    assert_problem(
        b.call(Method::DELETE, &new, None).await,
        StatusCode::CONFLICT,
        "main_card_in_use",
    )
    .await;
    assert_eq!(b.call(Method::DELETE, &old, None).await.status(), StatusCode::NO_CONTENT);
}

async fn ten_parallel_plan_changes_with_one_idempotency_key_have_one_effect(wiring: Wiring) {
    let b = billed(wiring).await;
    b.add_card(PAYS).await;
    let send = |body: Value, key: &'static str| {
        let req = b
            .app
            .client
            .put(b.app.url(&b.path("/billing/plan")))
            .bearer_auth(&b.owner.access)
            .header("Idempotency-Key", key)
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    let answers = join_all((0..10).map(|_| send(pro_month(), "key-1"))).await;
    let mut bodies = Vec::new();
    for resp in answers {
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        match status {
            StatusCode::OK => bodies.push(body),
            StatusCode::CONFLICT => assert_eq!(body["code"], "idempotency_key_in_use", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!bodies.is_empty());
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one answer for all: {bodies:?}");
    assert_eq!(b.gateway.schedule_calls(), 1, "one effect");
    // Later repeats replay the first answer; another body is refused.
    let replay: Value = send(pro_month(), "key-1").await.json().await.unwrap();
    assert_eq!(replay, bodies[0]);
    let other = send(json!({"plan": "team", "interval": "month"}), "key-1").await;
    assert_problem(other, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused").await;
    assert_eq!(b.billing().await["plan"], "pro");
}

async fn twenty_parallel_usage_increments_at_the_limit_edge_never_go_over(wiring: Wiring) {
    let b = billed(wiring).await;
    let path = "/usage/consultations";
    // A service token, so that the burst measures the counting, not 20 Redis connections
    // opened at once for the access tokens' revocation checks (which time out on a loaded
    // machine).
    let url = b.app.url(&b.path(path));
    let send =
        || b.app.client.post(&url).bearer_auth(SERVICE_TOKEN).json(&json!({"delta": 1})).send();
    let answers: Vec<Response> =
        join_all((0..20).map(|_| send())).await.into_iter().map(Result::unwrap).collect();
    let mut ok = 0;
    for resp in answers {
        match resp.status() {
            StatusCode::OK => ok += 1,
            StatusCode::PAYMENT_REQUIRED => {
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["code"], "plan_limit_reached");
                assert_eq!(body["usage"]["limit"], 3);
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 3, "Free allows 3 consultations a month");
    let usage = expect_status(b.call(Method::GET, "/usage", None).await, StatusCode::OK).await;
    let consultations = usage["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["metric"] == "consultations")
        .unwrap()
        .clone();
    assert_eq!(consultations["used"], 3);
    assert_eq!(consultations["limit"], 3);
    assert!(time(&consultations["period_end"]) > Utc::now());
    assert_problem(
        b.call(Method::POST, "/usage/bananas", Some(&json!({"delta": 1}))).await,
        StatusCode::NOT_FOUND,
        "metric_not_found",
    )
    .await;
    assert_problem(
        b.call(Method::POST, path, Some(&json!({"delta": 0}))).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    // A paid plan's limits apply from the trial on.
    b.add_card(PAYS).await;
    b.change_plan_ok(&pro_month()).await;
    let counted = expect_status(
        b.call(Method::POST, path, Some(&json!({"delta": 10}))).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(counted["limit"], 100);
    assert_eq!(counted["used"], 10, "a new period with the trial");
}

async fn card_rules_and_permissions_hold(wiring: Wiring) {
    let b = billed(wiring).await;
    // Unknown at the gateway, or issued to nobody.
    let prepared = expect_status(
        b.call(Method::POST, "/billing/cards/prepare", None).await,
        StatusCode::CREATED,
    )
    .await;
    let uid = prepared["customer_uid"].as_str().unwrap();
    let body = json!({"customer_uid": uid});
    assert_problem(
        b.call(Method::POST, "/billing/cards", Some(&body)).await,
        StatusCode::BAD_REQUEST,
        "card_not_found_at_gateway",
    )
    .await;
    b.gateway.register_card(uid, PAYS);
    expect_status(b.call(Method::POST, "/billing/cards", Some(&body)).await, StatusCode::CREATED)
        .await;
    assert_problem(
        b.call(Method::POST, "/billing/cards", Some(&body)).await,
        StatusCode::CONFLICT,
        "card_exists",
    )
    .await;
    let forged = json!({"customer_uid": "cu_00000000000000000000000000000000"});
    b.gateway.register_card("cu_00000000000000000000000000000000", PAYS);
    assert_problem(
        b.call(Method::POST, "/billing/cards", Some(&forged)).await,
        StatusCode::BAD_REQUEST,
        "card_not_found_at_gateway",
    )
    .await;

    // Strangers see nothing; plain members read but do not change.
    let stranger = b.app.sign_in(&phone(2)).await;
    let resp = b.app.get_auth(&b.path("/billing"), &stranger.access).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    expect_status(
        b.app.call(Method::POST, &b.path("/join"), &stranger.access, None).await,
        StatusCode::OK,
    )
    .await;
    expect_status(b.app.get_auth(&b.path("/billing"), &stranger.access).await, StatusCode::OK)
        .await;
    expect_status(
        b.app.get_auth(&b.path("/billing/cards"), &stranger.access).await,
        StatusCode::OK,
    )
    .await;
    let resp = b
        .app
        .call(Method::PUT, &b.path("/billing/plan"), &stranger.access, Some(&pro_month()))
        .await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp =
        b.app.call(Method::POST, &b.path("/billing/cards/prepare"), &stranger.access, None).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = b
        .app
        .call(Method::POST, &b.path("/usage/forms"), &stranger.access, Some(&json!({"delta": 1})))
        .await;
    assert_problem(resp, StatusCode::FORBIDDEN, "forbidden").await;
    // Bad plan requests.
    for bad in [
        json!({"plan": "gold", "interval": "month"}),
        json!({"plan": "pro"}),
        json!({"plan": "pro", "interval": "week"}),
        json!({"plan": "starter", "interval": "month", "addons": ["white_label"]}),
    ] {
        assert_problem(b.change_plan(&bad).await, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

async fn a_lost_webhook_is_caught_by_reconciliation(wiring: Wiring) {
    let b = billed(wiring).await;
    b.add_card(PAYS).await;
    let billing = b.change_plan_ok(&pro_month()).await;
    let uid = billing["next_charge"]["merchant_uid"].as_str().unwrap().to_owned();
    b.gateway.execute(&uid, true);
    // No webhook; ten minutes after the charge time, reconciliation reads it back.
    b.clock.set(time(&billing["next_charge"]["at"]) + Duration::minutes(11));
    let active = b.wait_for_status("active").await;
    assert_ne!(active["next_charge"]["merchant_uid"], uid.as_str());
    assert_eq!(b.receipts().await.len(), 1);
    b.clock.advance(Duration::minutes(1));
}

async fn a_charge_with_an_unknown_outcome_holds_changes_until_reconciled(wiring: Wiring) {
    let b = billed(wiring).await;
    b.add_card(PAYS).await;
    b.change_plan_ok(&pro_month()).await;
    b.change_plan_ok(&json!({"plan": "free"})).await;
    b.gateway.fail_next(Op::Charge);
    assert_problem(
        b.change_plan(&pro_month()).await,
        StatusCode::BAD_GATEWAY,
        "gateway_unavailable",
    )
    .await;
    let billing = b.billing().await;
    assert_eq!(billing["status"], "free");
    assert_eq!(billing["next_charge"], Value::Null);
    // Until the outcome is known, no other change runs.
    assert_problem(b.change_plan(&pro_month()).await, StatusCode::CONFLICT, "billing_busy").await;
    // Reconciliation finds no payment at the gateway and lets changes run again.
    b.clock.advance(Duration::minutes(11));
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        let resp = b.call(Method::POST, "/billing/plan/preview", Some(&pro_month())).await;
        if resp.status() == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still busy");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert_eq!(b.change_plan_ok(&pro_month()).await["status"], "active");
    assert_eq!(b.receipts().await.len(), 1);
}

async fn a_service_token_records_usage_in_any_group(wiring: Wiring) {
    let b = billed(wiring).await;
    let path = b.app.url(&b.path("/usage/customers"));
    let send =
        |token: &str| b.app.client.post(&path).bearer_auth(token).json(&json!({"delta": 4})).send();
    let counted: Value = expect_status(send(SERVICE_TOKEN).await.unwrap(), StatusCode::OK).await;
    assert_eq!((counted["used"].clone(), counted["limit"].clone()), (json!(4), json!(10)));
    let resp = send("svc-not-a-service-token-not-a-service-token").await.unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = b
        .app
        .client
        .post(b.app.url("/api/v1/groups/nope/usage/customers"))
        .bearer_auth(SERVICE_TOKEN)
        .json(&json!({"delta": 1}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
}

// ---------------------------------------------------------------------------------------------
// With the simulated gateway (the default outside production) and its /sim/portone test calls
// ---------------------------------------------------------------------------------------------

const CARD_NUMBER: &str = "4242 4242 4242 4242";
const BIRTH: &str = "870615";

/// Registers a test card under a prepared customer_uid as the client SDK would (through the
/// simulated gateway's stand-in for PortOne's billing-key call), adds it, and answers it.
async fn sim_card(client: &reqwest::Client, base: &str, token: &str, slug: &str) -> Value {
    let url = |p: &str| format!("{base}/api/v1/groups/{slug}{p}");
    let prepared: Value = expect_status(
        client.post(url("/billing/cards/prepare")).bearer_auth(token).send().await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let uid = prepared["customer_uid"].as_str().unwrap();
    assert_eq!(prepared["gateway"]["pg"], "simulated");
    let card = json!({"card_number": CARD_NUMBER, "expiry": "2030-12", "birth": BIRTH, "pwd_2digit": "12"});
    let registered: Value = expect_status(
        client
            .post(format!("{base}/sim/portone/subscribe/customers/{uid}"))
            .json(&card)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(registered["code"], 0);
    expect_status(
        client
            .post(url("/billing/cards"))
            .bearer_auth(token)
            .json(&json!({"customer_uid": uid}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await
}

async fn the_simulated_gateway_serves_a_trial_through_its_test_calls(wiring: Wiring) {
    let clock = TestClock::new();
    let c = clock.clone();
    let app = spawn_app_with(wiring, move |s| {
        s.payments_overrides.clock = Some(c);
        s.billing_tick = StdDuration::from_millis(50);
    })
    .await;
    let owner = app.sign_in(&phone(1)).await;
    let body = json!({"name": "Acme", "slug": "acme"});
    expect_status(
        app.call(Method::POST, "/api/v1/groups", &owner.access, Some(&body)).await,
        StatusCode::CREATED,
    )
    .await;
    let card = sim_card(&app.client, &app.address, &owner.access, "acme").await;
    assert_eq!(card["number_masked"], "424242******4242");
    assert_eq!(card["main"], true);
    let billing = expect_status(
        app.call(
            Method::PUT,
            "/api/v1/groups/acme/billing/plan",
            &owner.access,
            Some(&pro_month()),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(billing["status"], "trialing");
    let uid = billing["next_charge"]["merchant_uid"].as_str().unwrap();

    // A schedule fault makes a main-card change answer 502 and change nothing.
    let second = sim_card(&app.client, &app.address, &owner.access, "acme").await;
    let faults = json!({"fail_next": "schedule"});
    app.post_json("/sim/portone/faults", &faults).await;
    let path = format!("/api/v1/groups/acme/billing/cards/{}/main", second["id"].as_str().unwrap());
    assert_problem(
        app.call(Method::PUT, &path, &owner.access, None).await,
        StatusCode::BAD_GATEWAY,
        "gateway_unavailable",
    )
    .await;
    let same = expect_status(
        app.get_auth("/api/v1/groups/acme/billing", &owner.access).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(same["next_charge"], billing["next_charge"]);

    // The simulated gateway runs the charge and delivers the webhook itself.
    let executed = app
        .post_json(&format!("/sim/portone/schedules/{uid}/execute"), &json!({"outcome": "paid"}))
        .await;
    expect_status(executed, StatusCode::OK).await;
    let active = expect_status(
        app.get_auth("/api/v1/groups/acme/billing", &owner.access).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(active["status"], "active");
    assert_ne!(active["next_charge"]["merchant_uid"], uid);
    let receipts = expect_status(
        app.get_auth("/api/v1/groups/acme/billing/receipts", &owner.access).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(receipts["items"].as_array().unwrap().len(), 1);

    // Its executor runs the renewal when it is due (by the same clock).
    clock.set(time(&active["next_charge"]["at"]) + Duration::minutes(1));
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        let receipts = expect_status(
            app.get_auth("/api/v1/groups/acme/billing/receipts", &owner.access).await,
            StatusCode::OK,
        )
        .await;
        if receipts["items"].as_array().unwrap().len() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the renewal did not run: {receipts}");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

/// The `onboard` binary on Postgres + Redis with every log on: the card number, expiry, birth
/// date and PIN digits go through it (the simulated gateway's billing-key call) and must show
/// up neither in its logs nor in a dump of its database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_number_or_birth_date_is_stored_or_logged() {
    use std::process::{Command, Stdio};

    let db = onboard_postgres::testing::TestDatabase::new().await;
    let redis = crate::helpers::RedisPrefix::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::env::temp_dir().join(format!("onboard-pan-{}.log", uuid::Uuid::now_v7()));
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(crate::helpers::onboard_bin())
        .arg("serve")
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", db.url())
        .env("REDIS_URL", &redis.url)
        .env("REDIS_KEY_PREFIX", &redis.prefix)
        .env("ONBOARD_ADDR", format!("127.0.0.1:{port}"))
        .env("OTP_ECHO", "true")
        .env("MIGRATE_ON_START", "true")
        .env("ONBOARD_WORKERS", "1")
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + StdDuration::from_secs(60);
    while !client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "not ready:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }

    let phone = phone(1);
    let sent: Value = client
        .post(format!("{base}/api/v1/auth/otp"))
        .json(&json!({"phone": phone}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verified: Value = client
        .post(format!("{base}/api/v1/auth/otp/verify"))
        .json(&json!({"phone": phone, "code": sent["dev_code"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = verified["access_token"].as_str().unwrap().to_owned();
    let group = json!({"name": "Acme", "slug": "acme"});
    client
        .post(format!("{base}/api/v1/groups"))
        .bearer_auth(&token)
        .json(&group)
        .send()
        .await
        .unwrap();
    sim_card(&client, &base, &token, "acme").await;
    let plan = client
        .put(format!("{base}/api/v1/groups/acme/billing/plan"))
        .bearer_auth(&token)
        .json(&pro_month())
        .send()
        .await
        .unwrap();
    let billing = expect_status(plan, StatusCode::OK).await;
    let uid = billing["next_charge"]["merchant_uid"].as_str().unwrap();
    let executed = client
        .post(format!("{base}/sim/portone/schedules/{uid}/execute"))
        .json(&json!({"outcome": "paid"}))
        .send()
        .await
        .unwrap();
    expect_status(executed, StatusCode::OK).await;

    let _ = child.kill();
    let _ = child.wait();
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let dump =
        Command::new("pg_dump").arg("--data-only").arg(db.url()).output().expect("pg_dump runs");
    assert!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(dump.contains("acme"), "the dump holds the data");
    assert!(logs.contains("TRACE") && logs.contains("simulated"), "the log is the trace-level run");
    for secret in [CARD_NUMBER, &CARD_NUMBER.replace(' ', ""), BIRTH, "2030-12"] {
        assert!(!logs.contains(secret), "{secret:?} is in the logs");
        assert!(!dump.contains(secret), "{secret:?} is in the database");
    }
}

async fn the_admin_group_list_shows_each_groups_plan(wiring: Wiring) {
    let b = billed(wiring).await;
    let admin = b.app.sign_in(&phone(9_000_009)).await;
    let plans = || async {
        let list = expect_status(
            b.app.get_auth("/api/v1/admin/groups?q=acme", &admin.access).await,
            StatusCode::OK,
        )
        .await;
        let items = list["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{list}");
        items[0]["plan"].as_str().unwrap().to_owned()
    };
    assert_eq!(plans().await, "free");
    b.add_card(PAYS).await;
    b.change_plan_ok(&pro_month()).await;
    assert_eq!(plans().await, "pro");
}

// ---------------------------------------------------------------------------------------------
// Billing notifications (messaging.md, "Notifications")
// ---------------------------------------------------------------------------------------------

both_wirings!(
    a_trial_start_notifies_the_billing_managers_and_not_plain_members,
    a_failing_charge_notifies_payment_failed,
    a_trial_ending_notice_comes_once_seven_days_before_however_often_the_job_runs,
    usage_notifies_the_billing_managers_at_fifty_and_eighty_percent_once,
);

impl Billed {
    /// A member who joins the group (active, role `member`).
    async fn plain_member(&self, n: u32) -> SignedIn {
        let who = self.app.sign_in(&phone(n)).await;
        let joined =
            self.app.call(Method::POST, &self.path("/join"), &who.access, Some(&json!({}))).await;
        assert!(joined.status().is_success(), "joins: {}", joined.status());
        who
    }

    /// A member who joins the group and is made admin (admins hold `billing.manage`).
    async fn admin_member(&self, n: u32) -> SignedIn {
        let who = self.plain_member(n).await;
        let path = self.path(&format!("/members/{}", who.id()));
        let body = json!({"role": "admin"});
        let made = self.app.call(Method::PUT, &path, &self.owner.access, Some(&body)).await;
        expect_status(made, StatusCode::OK).await;
        who
    }

    /// Starts the trial of group `slug` (owned by the owner) on a new paying card; answers the
    /// account.
    async fn start_trial_of(&self, slug: &str) -> Value {
        let path = |rest: &str| format!("/api/v1/groups/{slug}{rest}");
        let token = &self.owner.access;
        let prepare = path("/billing/cards/prepare");
        let prepared = self.app.call(Method::POST, &prepare, token, None).await;
        let prepared = expect_status(prepared, StatusCode::CREATED).await;
        let uid = prepared["customer_uid"].as_str().unwrap();
        self.gateway.register_card(uid, PAYS);
        let body = json!({"customer_uid": uid});
        let cards = path("/billing/cards");
        let added = self.app.call(Method::POST, &cards, token, Some(&body)).await;
        expect_status(added, StatusCode::CREATED).await;
        let plan = path("/billing/plan");
        let changed = self.app.call(Method::PUT, &plan, token, Some(&pro_month())).await;
        expect_status(changed, StatusCode::OK).await
    }

    /// `who`'s notifications of type `kind` about group `slug`, newest first.
    async fn notices(&self, who: &SignedIn, kind: &str, slug: &str) -> Vec<Value> {
        let resp = self.app.get_auth("/api/v1/notifications?limit=100", &who.access).await;
        let page = expect_status(resp, StatusCode::OK).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == kind && n["group"] == slug)
            .cloned()
            .collect()
    }

    /// Polls (the periodic work runs every 50 ms, the notifications consumer every 150 ms)
    /// until `who` has a notification of type `kind` about group `slug`; answers them all.
    async fn wait_for_notice(&self, who: &SignedIn, kind: &str, slug: &str) -> Vec<Value> {
        self.wait_for_notices(who, kind, slug, 1).await
    }

    /// Polls until `who` has at least `count` notifications of type `kind` about group
    /// `slug`; answers them all.
    async fn wait_for_notices(
        &self,
        who: &SignedIn,
        kind: &str,
        slug: &str,
        count: usize,
    ) -> Vec<Value> {
        let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
        loop {
            let found = self.notices(who, kind, slug).await;
            if found.len() >= count {
                return found;
            }
            assert!(std::time::Instant::now() < deadline, "no {count} {kind} about {slug}");
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    }
}

async fn a_trial_start_notifies_the_billing_managers_and_not_plain_members(wiring: Wiring) {
    let b = billed(wiring).await;
    let plain = b.plain_member(2).await;
    let admin = b.admin_member(3).await;
    let billing = b.start_trial_of(&b.slug).await;
    assert_eq!(billing["status"], "trialing");
    for who in [&b.owner, &admin] {
        let started = b.wait_for_notice(who, "billing.trial_started", &b.slug).await;
        assert_eq!(started.len(), 1, "made once, from the change's event");
        assert_eq!(started[0]["title"], "Trial started");
        let body = started[0]["body"].as_str().unwrap();
        assert!(body.starts_with("Acme is trying Pro until "), "{body}");
        assert_eq!(started[0]["link"], "/groups/acme/billing");
        assert_eq!(started[0]["read"], false);
    }
    assert!(b.notices(&plain, "billing.trial_started", &b.slug).await.is_empty());
}

async fn a_failing_charge_notifies_payment_failed(wiring: Wiring) {
    let b = billed(wiring).await;
    let plain = b.plain_member(2).await;
    b.start_trial_of(&b.slug).await;
    assert_eq!(b.run_next_charge(false).await["outcome"], "applied");
    assert_eq!(b.billing().await["status"], "past_due");
    let failed = b.wait_for_notice(&b.owner, "billing.payment_failed", &b.slug).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["title"], "Payment failed");
    let body = failed[0]["body"].as_str().unwrap();
    assert!(
        body.starts_with("A charge of 83,380 KRW for Pro of Acme failed: card declined"),
        "{body}"
    );
    assert!(body.contains("it is tried again on"), "{body}");
    assert!(b.notices(&plain, "billing.payment_failed", &b.slug).await.is_empty());
    // The retry pays: a payment_succeeded follows.
    assert_eq!(b.run_next_charge(true).await["outcome"], "applied");
    let paid = b.wait_for_notice(&b.owner, "billing.payment_succeeded", &b.slug).await;
    assert_eq!(paid.len(), 1);
}

async fn a_trial_ending_notice_comes_once_seven_days_before_however_often_the_job_runs(
    wiring: Wiring,
) {
    let b = billed(wiring).await;
    // Two trials a day apart: acme's ends first.
    let acme_end = time(&b.start_trial_of("acme").await["trial_ends_at"]);
    let body = json!({"name": "Beta", "slug": "beta"});
    let created = b.app.call(Method::POST, "/api/v1/groups", &b.owner.access, Some(&body));
    expect_status(created.await, StatusCode::CREATED).await;
    b.clock.advance(Duration::days(1));
    let beta_end = time(&b.start_trial_of("beta").await["trial_ends_at"]);
    assert_eq!(beta_end - acme_end, Duration::days(1));
    assert!(b.notices(&b.owner, "billing.trial_ending", "acme").await.is_empty());

    // 7 days before acme's end: its notice, not yet beta's.
    b.clock.set(acme_end - Duration::days(7) + Duration::hours(1));
    let ending = b.wait_for_notice(&b.owner, "billing.trial_ending", "acme").await;
    assert_eq!(ending[0]["title"], "Trial ending soon");
    let text = ending[0]["body"].as_str().unwrap();
    assert!(text.starts_with("The Pro trial of Acme ends in 7 days, on "), "{text}");
    assert!(b.notices(&b.owner, "billing.trial_ending", "beta").await.is_empty());

    // 7 days before beta's end: the runs that notify beta find acme's notice due again and
    // send it no second time.
    b.clock.set(beta_end - Duration::days(7) + Duration::hours(1));
    b.wait_for_notice(&b.owner, "billing.trial_ending", "beta").await;
    assert_eq!(b.notices(&b.owner, "billing.trial_ending", "acme").await.len(), 1);
    assert_eq!(b.notices(&b.owner, "billing.trial_ending", "beta").await.len(), 1);
}

async fn usage_notifies_the_billing_managers_at_fifty_and_eighty_percent_once(wiring: Wiring) {
    let b = billed(wiring).await;
    let plain = b.plain_member(2).await;
    // Free allows 10 customers a month: 8 reach 50 % and 80 %.
    let path = "/usage/customers";
    let counted = b.call(Method::POST, path, Some(&json!({"delta": 8}))).await;
    assert_eq!(expect_status(counted, StatusCode::OK).await["used"], 8);
    let mut titles: Vec<String> = b
        .wait_for_notices(&b.owner, "usage.threshold", &b.slug, 2)
        .await
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    assert_eq!(titles, ["Usage at 50 %", "Usage at 80 %"]);
    let eighty = b.notices(&b.owner, "usage.threshold", &b.slug).await;
    assert!(eighty.iter().any(|n| n["body"] == "Acme has used 8 of 10 customers this period"));
    // 9 crosses nothing; 10 reaches 100 %.
    let counted = b.call(Method::POST, path, Some(&json!({"delta": 1}))).await;
    expect_status(counted, StatusCode::OK).await;
    assert_eq!(b.notices(&b.owner, "usage.threshold", &b.slug).await.len(), 2);
    let counted = b.call(Method::POST, path, Some(&json!({"delta": 1}))).await;
    expect_status(counted, StatusCode::OK).await;
    assert_eq!(b.wait_for_notices(&b.owner, "usage.threshold", &b.slug, 3).await.len(), 3);
    assert!(b.notices(&plain, "usage.threshold", &b.slug).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// A deleted group leaves nothing at the gateway
// ---------------------------------------------------------------------------------------------

both_wirings!(a_deleted_group_is_never_charged_its_schedule_is_cancelled_and_its_key_deleted);

async fn a_deleted_group_is_never_charged_its_schedule_is_cancelled_and_its_key_deleted(
    wiring: Wiring,
) {
    let b = billed(wiring).await;
    let billing = b.start_trial_of(&b.slug).await;
    let uid = billing["next_charge"]["merchant_uid"].as_str().expect("a pending charge").to_owned();
    assert_eq!(b.gateway.schedule_state(&uid), Some(ScheduleState::Scheduled));
    assert_eq!(b.gateway.key_count(), 1);

    let path = format!("/api/v1/groups/{}", b.slug);
    let deleted = b.app.call(Method::DELETE, &path, &b.owner.access, None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    // The periodic work (every 50 ms here) cleans up after the deletion.
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    while b.gateway.schedule_state(&uid) != Some(ScheduleState::Cancelled)
        || b.gateway.key_count() != 0
    {
        assert!(std::time::Instant::now() < deadline, "the gateway still holds the group's charge");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}
