//! An in-process payment gateway for the embedded mode and the tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::Clock;
use onboard_payments::gateway::{
    BillingKey, ChargeRequest, GatewayError, Payment, PaymentGateway, PaymentStatus,
    ScheduleRequest, Unscheduled, WebhookNotice, WebhookSink,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The test card that pays.
const PAYING_CARD: &str = "4242424242424242";
/// The test card that is accepted at registration and declines every charge.
const DECLINING_CARD: &str = "4000000000000002";
/// The reason a declining card gives.
const DECLINED: &str = "card declined (test card 4000 0000 0000 0002)";

/// A call of the simulated gateway that a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Schedule,
    Unschedule,
    Charge,
}

/// How a scheduled charge ends when it is executed by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimOutcome {
    Paid,
    Failed,
}

/// Card details as PortOne's `POST /subscribe/customers/{customer_uid}` takes them. The
/// gateway reads them once at registration and keeps none of them; `Debug` shows none of them.
#[derive(Clone)]
pub struct SimCard {
    /// Digits, spaces and dashes allowed: `4242 4242 4242 4242`.
    pub card_number: String,
    /// `YYYY-MM`.
    pub expiry: String,
    /// `YYMMDD` (or a 10-digit business registration number for a corporate card).
    pub birth: String,
    /// The first two digits of the card's PIN (not asked for corporate cards).
    pub pwd_2digit: Option<String>,
}

impl SimCard {
    pub fn new(
        card_number: impl Into<String>,
        expiry: impl Into<String>,
        birth: impl Into<String>,
        pwd_2digit: Option<&str>,
    ) -> Self {
        Self {
            card_number: card_number.into(),
            expiry: expiry.into(),
            birth: birth.into(),
            pwd_2digit: pwd_2digit.map(str::to_owned),
        }
    }
}

impl std::fmt::Debug for SimCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCard")
            .field("card_number", &"<redacted>")
            .field("expiry", &"<redacted>")
            .field("birth", &"<redacted>")
            .field("pwd_2digit", &"<redacted>")
            .finish()
    }
}

/// Why a card was not registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterCardError {
    /// A field is malformed.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// A well-formed number that is not one of the test cards.
    #[error(
        "card declined at registration: use the test card 4242 4242 4242 4242 (pays) or 4000 0000 0000 0002 (declines)"
    )]
    Declined,
}

/// Why a scheduled charge could not be executed.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// No charge is scheduled under this `merchant_uid` (never scheduled, cancelled, or run).
    #[error("no charge is scheduled under this merchant_uid")]
    NotScheduled,
}

/// A charge the simulated gateway holds, to run at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduledCharge {
    pub customer_uid: String,
    pub merchant_uid: String,
    /// Whole seconds, like PortOne's `schedule_at`.
    pub at: DateTime<Utc>,
    pub amount: i64,
    pub name: String,
}

/// A registered billing key: what PortOne reports, and whether the card pays.
#[derive(Debug, Clone)]
struct Key {
    key: BillingKey,
    pays: bool,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, Key>,
    /// By merchant_uid.
    schedules: BTreeMap<String, ScheduledCharge>,
    /// By imp_uid.
    payments: HashMap<String, Payment>,
    /// Pending injected faults, by call.
    faults: HashMap<Op, u32>,
}

impl State {
    /// Consumes a pending fault of `op`, if there is one.
    fn take_fault(&mut self, op: Op) -> Result<(), GatewayError> {
        match self.faults.get_mut(&op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(GatewayError::Unavailable(format!("simulated fault injected into {op:?}")))
            }
            _ => Ok(()),
        }
    }

    fn key(&self, customer_uid: &str) -> Result<&Key, GatewayError> {
        self.keys.get(customer_uid).ok_or_else(|| GatewayError::Rejected {
            code: 1,
            message: format!("no billing key is registered under customer_uid {customer_uid:?}"),
        })
    }

    fn paid(&self, merchant_uid: &str) -> bool {
        self.payments
            .values()
            .any(|p| p.merchant_uid == merchant_uid && p.status == PaymentStatus::Paid)
    }

    fn new_imp_uid(&self) -> String {
        loop {
            let n = u64::from_le_bytes(onboard_kernel::random_bytes::<8>()) % 1_000_000_000_000;
            let imp_uid = format!("imp_{n:012}");
            if !self.payments.contains_key(&imp_uid) {
                return imp_uid;
            }
        }
    }
}

fn rejected(message: impl Into<String>) -> GatewayError {
    GatewayError::Rejected { code: 1, message: message.into() }
}

/// The simulated PortOne.
///
/// Guarantees:
/// - only the test cards register: `4242 4242 4242 4242` pays, `4000 0000 0000 0002` registers
///   and declines every charge; of a card it keeps only the masked number and a card name;
/// - a charge pays or declines by card and is recorded, so [`PaymentGateway::payment`] reads it
///   back; a decline is a failed [`Payment`], not an error;
/// - a `merchant_uid` is scheduled at most once and never again once paid; unscheduling is
///   idempotent;
/// - a schedule runs when [`Self::execute`] or [`Self::run_due`] says so (or the executor of
///   [`Self::spawn_executor`] finds it due): it is recorded as a payment under a new `imp_uid`
///   and a [`WebhookNotice`] is delivered to the sink before the call returns;
/// - a fault injected with [`Self::fail_next`] makes the next such call answer
///   [`GatewayError::Unavailable`] without doing anything.
pub struct SimulatedGateway {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    sink: RwLock<Option<Arc<dyn WebhookSink>>>,
}

impl std::fmt::Debug for SimulatedGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedGateway").field("state", &self.state).finish_non_exhaustive()
    }
}

impl SimulatedGateway {
    /// The merchant id the simulated gateway reports in its client configuration.
    pub const MERCHANT_ID: &'static str = "imp00000000";

    /// An empty gateway; payment times come from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock, state: Mutex::new(State::default()), sink: RwLock::new(None) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where notifications go from now on (the payments service, built after the gateway).
    pub fn set_webhook_sink(&self, sink: Arc<dyn WebhookSink>) {
        *self.sink.write().unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }

    /// Registers (or replaces) the billing key `customer_uid`, as PortOne's
    /// `POST /subscribe/customers/{customer_uid}` does, and answers the key as PortOne reports it.
    pub fn register_card(
        &self,
        customer_uid: &str,
        card: SimCard,
    ) -> Result<BillingKey, RegisterCardError> {
        let invalid = |field, message: &str| RegisterCardError::Invalid {
            field,
            message: message.to_owned(),
        };
        if customer_uid.is_empty() || customer_uid.len() > 80 {
            return Err(invalid("customer_uid", "1 to 80 characters"));
        }
        let number: String = card.card_number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if !(13..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("card_number", "13 to 19 digits (spaces and dashes allowed)"));
        }
        let expiry: String = card.expiry.chars().filter(|c| *c != '-').collect();
        let month_ok = expiry
            .get(4..)
            .and_then(|m| m.parse::<u8>().ok())
            .is_some_and(|m| (1..=12).contains(&m));
        if expiry.len() != 6 || !expiry.bytes().all(|b| b.is_ascii_digit()) || !month_ok {
            return Err(invalid("expiry", "YYYY-MM"));
        }
        if !matches!(card.birth.len(), 6 | 10) || !card.birth.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("birth", "YYMMDD (or a 10-digit business registration number)"));
        }
        if let Some(pwd) = &card.pwd_2digit
            && (pwd.len() != 2 || !pwd.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid("pwd_2digit", "the first two digits of the PIN"));
        }
        let pays = match number.as_str() {
            PAYING_CARD => true,
            DECLINING_CARD => false,
            _ => return Err(RegisterCardError::Declined),
        };
        let key = BillingKey {
            customer_uid: customer_uid.to_owned(),
            card_name: "Test Card".to_owned(),
            number_masked: mask(&number),
        };
        self.state().keys.insert(customer_uid.to_owned(), Key { key: key.clone(), pays });
        Ok(key)
    }

    /// Makes the next call of `op` answer [`GatewayError::Unavailable`] and do nothing (faults
    /// add up: two calls make the next two fail).
    pub fn fail_next(&self, op: Op) {
        *self.state().faults.entry(op).or_insert(0) += 1;
    }

    /// The charges waiting to run, earliest first.
    pub fn scheduled(&self) -> Vec<ScheduledCharge> {
        let mut all: Vec<_> = self.state().schedules.values().cloned().collect();
        all.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.merchant_uid.cmp(&b.merchant_uid)));
        all
    }

    /// Runs the scheduled charge `merchant_uid` now with the given outcome, records the payment,
    /// and delivers its notification to the sink before answering.
    pub async fn execute(
        &self,
        merchant_uid: &str,
        outcome: SimOutcome,
    ) -> Result<Payment, ExecuteError> {
        let payment = {
            let mut state = self.state();
            let schedule =
                state.schedules.remove(merchant_uid).ok_or(ExecuteError::NotScheduled)?;
            let reason = (outcome == SimOutcome::Failed).then(|| DECLINED.to_owned());
            self.settle(&mut state, &schedule, outcome, reason)
        };
        self.deliver(&payment).await;
        Ok(payment)
    }

    /// Runs the scheduled charge `merchant_uid` now, paying or declining by its card (a deleted
    /// billing key declines), like [`Self::execute`].
    pub async fn execute_by_card(&self, merchant_uid: &str) -> Result<Payment, ExecuteError> {
        let payment = {
            let mut state = self.state();
            let schedule =
                state.schedules.remove(merchant_uid).ok_or(ExecuteError::NotScheduled)?;
            let (outcome, reason) = by_card(&state, &schedule.customer_uid);
            self.settle(&mut state, &schedule, outcome, reason)
        };
        self.deliver(&payment).await;
        Ok(payment)
    }

    /// Runs every charge scheduled at or before `now` (by card) and delivers their
    /// notifications; answers the payments made, earliest schedule first.
    pub async fn run_due(&self, now: DateTime<Utc>) -> Vec<Payment> {
        let payments: Vec<Payment> = {
            let mut state = self.state();
            let mut due: Vec<ScheduledCharge> =
                state.schedules.values().filter(|s| s.at <= now).cloned().collect();
            due.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.merchant_uid.cmp(&b.merchant_uid)));
            due.iter()
                .map(|schedule| {
                    state.schedules.remove(&schedule.merchant_uid);
                    let (outcome, reason) = by_card(&state, &schedule.customer_uid);
                    self.settle(&mut state, schedule, outcome, reason)
                })
                .collect()
        };
        for payment in &payments {
            self.deliver(payment).await;
        }
        payments
    }

    /// Every `period`, runs the charges that are due by the gateway's clock (see
    /// [`Self::run_due`]). The task ends when the gateway is dropped. Start it after
    /// [`Self::set_webhook_sink`].
    pub fn spawn_executor(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let gateway: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let Some(gateway) = gateway.upgrade() else { break };
                let now = gateway.clock.now();
                let ran = gateway.run_due(now).await;
                if !ran.is_empty() {
                    tracing::info!(target: "onboard::gateway", count = ran.len(), "simulated gateway ran due charges");
                }
            }
        })
    }

    /// Records the payment of `schedule` ending with `outcome`.
    fn settle(
        &self,
        state: &mut State,
        schedule: &ScheduledCharge,
        outcome: SimOutcome,
        reason: Option<String>,
    ) -> Payment {
        let payment = self.payment_now(
            state,
            &schedule.customer_uid,
            &schedule.merchant_uid,
            schedule.amount,
            outcome,
            reason,
        );
        state.payments.insert(payment.imp_uid.clone(), payment.clone());
        payment
    }

    fn payment_now(
        &self,
        state: &State,
        customer_uid: &str,
        merchant_uid: &str,
        amount: i64,
        outcome: SimOutcome,
        reason: Option<String>,
    ) -> Payment {
        let paid = outcome == SimOutcome::Paid;
        Payment {
            imp_uid: state.new_imp_uid(),
            merchant_uid: merchant_uid.to_owned(),
            customer_uid: Some(customer_uid.to_owned()),
            amount,
            status: if paid { PaymentStatus::Paid } else { PaymentStatus::Failed },
            failure_reason: if paid { None } else { reason.or_else(|| Some(DECLINED.to_owned())) },
            paid_at: paid.then(|| whole_seconds(self.clock.now())),
        }
    }

    async fn deliver(&self, payment: &Payment) {
        let sink = self.sink.read().unwrap_or_else(PoisonError::into_inner).clone();
        let notice = WebhookNotice {
            imp_uid: payment.imp_uid.clone(),
            merchant_uid: payment.merchant_uid.clone(),
            status: status_word(payment.status).to_owned(),
        };
        match sink {
            None => tracing::warn!(
                target: "onboard::gateway",
                merchant_uid = %notice.merchant_uid,
                "simulated gateway has no webhook sink: notification dropped"
            ),
            Some(sink) => {
                if let Err(error) = sink.deliver(notice).await {
                    tracing::warn!(
                        target: "onboard::gateway",
                        merchant_uid = %payment.merchant_uid,
                        error = format!("{error:#}"),
                        "simulated webhook was not handled"
                    );
                }
            }
        }
    }
}

/// How a charge on `customer_uid` ends: by its card; a missing billing key declines.
fn by_card(state: &State, customer_uid: &str) -> (SimOutcome, Option<String>) {
    match state.keys.get(customer_uid) {
        Some(key) if key.pays => (SimOutcome::Paid, None),
        Some(_) => (SimOutcome::Failed, Some(DECLINED.to_owned())),
        None => (SimOutcome::Failed, Some("billing key not found".to_owned())),
    }
}

/// PortOne's status word.
fn status_word(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Ready => "ready",
        PaymentStatus::Paid => "paid",
        PaymentStatus::Failed => "failed",
        PaymentStatus::Cancelled => "cancelled",
    }
}

/// PortOne reports times in whole unix seconds.
fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// `424242******4242`: the first six and the last four digits.
fn mask(number: &str) -> String {
    let n = number.len();
    format!("{}{}{}", &number[..6], "*".repeat(n.saturating_sub(10)), &number[n - 4..])
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn billing_key(&self, customer_uid: &str) -> Result<Option<BillingKey>, GatewayError> {
        Ok(self.state().keys.get(customer_uid).map(|k| k.key.clone()))
    }

    async fn delete_billing_key(&self, customer_uid: &str) -> Result<(), GatewayError> {
        self.state().keys.remove(customer_uid);
        Ok(())
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<Payment, GatewayError> {
        let mut state = self.state();
        state.take_fault(Op::Charge)?;
        let pays = state.key(&request.customer_uid)?.pays;
        if request.amount <= 0 {
            return Err(rejected("amount must be positive"));
        }
        if state.paid(&request.merchant_uid) {
            return Err(rejected(format!(
                "merchant_uid {:?} is already paid",
                request.merchant_uid
            )));
        }
        let outcome = if pays { SimOutcome::Paid } else { SimOutcome::Failed };
        let payment = self.payment_now(
            &state,
            &request.customer_uid,
            &request.merchant_uid,
            request.amount,
            outcome,
            None,
        );
        state.payments.insert(payment.imp_uid.clone(), payment.clone());
        Ok(payment)
    }

    async fn schedule(&self, request: &ScheduleRequest) -> Result<(), GatewayError> {
        let mut state = self.state();
        state.take_fault(Op::Schedule)?;
        state.key(&request.customer_uid)?;
        if request.amount <= 0 {
            return Err(rejected("amount must be positive"));
        }
        if state.schedules.contains_key(&request.merchant_uid) || state.paid(&request.merchant_uid)
        {
            return Err(rejected(format!(
                "merchant_uid {:?} is already scheduled or paid",
                request.merchant_uid
            )));
        }
        state.schedules.insert(
            request.merchant_uid.clone(),
            ScheduledCharge {
                customer_uid: request.customer_uid.clone(),
                merchant_uid: request.merchant_uid.clone(),
                at: whole_seconds(request.at),
                amount: request.amount,
                name: request.name.clone(),
            },
        );
        Ok(())
    }

    async fn unschedule(
        &self,
        customer_uid: &str,
        merchant_uid: &str,
    ) -> Result<Unscheduled, GatewayError> {
        let mut state = self.state();
        state.take_fault(Op::Unschedule)?;
        if state.schedules.get(merchant_uid).is_some_and(|s| s.customer_uid == customer_uid) {
            state.schedules.remove(merchant_uid);
            Ok(Unscheduled::Cancelled)
        } else {
            Ok(Unscheduled::NothingToCancel)
        }
    }

    async fn payment(&self, imp_uid: &str) -> Result<Option<Payment>, GatewayError> {
        Ok(self.state().payments.get(imp_uid).cloned())
    }

    // Reconciliation reads scheduled charges back by merchant_uid.
    async fn payment_by_merchant_uid(
        &self,
        merchant_uid: &str,
    ) -> Result<Option<Payment>, GatewayError> {
        // The latest attempt under this merchant_uid: a paid one wins over failed ones.
        let state = self.state();
        let mut found: Vec<&Payment> =
            state.payments.values().filter(|p| p.merchant_uid == merchant_uid).collect();
        found.sort_by_key(|p| p.status == PaymentStatus::Paid);
        Ok(found.last().map(|p| (*p).clone()))
    }

    fn client_config(&self) -> Value {
        json!({ "merchant_id": Self::MERCHANT_ID, "pg": "simulated" })
    }
}
