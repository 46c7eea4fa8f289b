//! Plans, billing accounts, cards, charges, receipts and usage: the values of the payments domain.
//!
//! Money is integer KRW. Catalogue prices exclude VAT; every [`Charge`] and [`Receipt`] amount
//! includes it (see [`Money::with_vat`]).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use onboard_kernel::{GroupId, random_bytes};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------------------------

onboard_kernel::id_type!(
    /// Identifies a card (a billing key held for a group).
    CardId
);
onboard_kernel::id_type!(
    /// Identifies a receipt.
    ReceiptId
);
onboard_kernel::id_type!(
    /// Identifies one main-card change (its journal row).
    CardChangeId
);

/// 128 random bits as 32 lower-case hex digits.
fn random_hex() -> String {
    random_bytes::<16>().iter().map(|b| format!("{b:02x}")).collect()
}

/// Onboard's id of one payment at the gateway: `ob_` and 128 random bits in hex. Unique across
/// groups and instances without coordination.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MerchantUid(String);

impl MerchantUid {
    /// A fresh id.
    pub fn generate() -> Self {
        Self(format!("ob_{}", random_hex()))
    }
    /// Rebuilds an id read back from storage or received from the gateway.
    pub fn from_trusted(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MerchantUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name under which the client SDK registers a card at the gateway: `cu_` and 128 random
/// bits in hex. Issued by Onboard to one group ([`crate::ports::CardRepository::prepare`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerUid(String);

/// The text is not a customer uid Onboard could have issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a customer_uid")]
pub struct CustomerUidError;

impl CustomerUid {
    /// A fresh id.
    pub fn generate() -> Self {
        Self(format!("cu_{}", random_hex()))
    }
    /// Reads a customer uid from a client: `cu_` and 32 lower-case hex digits.
    pub fn parse(raw: &str) -> Result<Self, CustomerUidError> {
        match raw.strip_prefix("cu_") {
            Some(hex)
                if hex.len() == 32
                    && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(Self(raw.to_owned()))
            }
            _ => Err(CustomerUidError),
        }
    }
    /// Rebuilds an id read back from storage.
    pub fn from_trusted(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------------

/// The VAT rate, in percent of the net price (Korea: 10 %).
pub const VAT_PERCENT: i64 = 10;

/// An amount in KRW with the VAT it includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// KRW, VAT included: what the card is charged.
    pub amount: i64,
    /// The VAT part of `amount`.
    pub vat: i64,
}

impl Money {
    /// VAT is [`VAT_PERCENT`] of the net price, rounded half up to the won; the amount is
    /// net + VAT.
    pub fn with_vat(net: i64) -> Self {
        let vat = (net * VAT_PERCENT + 50) / 100;
        Self { amount: net + vat, vat }
    }
    pub const ZERO: Self = Self { amount: 0, vat: 0 };
}

// ---------------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------------

/// A plan's code in the catalogue (`free`, `starter`, `pro`, `team`, `company`): 1 to 32
/// characters of `a-z`, `0-9` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlanCode(String);

/// The text is not a plan code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a plan code")]
pub struct PlanCodeError;

impl PlanCode {
    /// Reads a code (a plan, an add-on or a metric name share the shape).
    pub fn parse(raw: &str) -> Result<Self, PlanCodeError> {
        let ok = (1..=32).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok { Ok(Self(raw.to_owned())) } else { Err(PlanCodeError) }
    }
    /// The Free plan: every group without a paid plan is on it.
    pub fn free() -> Self {
        Self("free".to_owned())
    }
    pub fn from_trusted(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_free(&self) -> bool {
        self.0 == "free"
    }
}

impl fmt::Display for PlanCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How often a paid plan is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Year => "year",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }
}

/// An add-on's prices on one plan (KRW per month, VAT excluded; `yearly_price` is per month,
/// billed ×12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addon {
    pub code: PlanCode,
    pub monthly_price: i64,
    pub yearly_price: i64,
}

/// A plan of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub code: PlanCode,
    pub name: String,
    /// KRW per month, VAT excluded.
    pub monthly_price: i64,
    /// KRW per month when billed yearly (×12), VAT excluded.
    pub yearly_price: i64,
    /// Metric name → the most a billing period may count (`None`: unlimited).
    pub limits: BTreeMap<String, Option<i64>>,
    /// The add-ons this plan offers.
    pub addons: Vec<Addon>,
}

impl Plan {
    pub fn is_free(&self) -> bool {
        self.code.is_free()
    }

    /// The net price (VAT excluded) of one billing period of this plan with these add-ons.
    /// Add-ons the plan does not offer cost nothing (the service refuses them before).
    pub fn period_price(&self, interval: Interval, addons: &[PlanCode]) -> i64 {
        let per_month = |m: i64, y: i64| match interval {
            Interval::Month => m,
            Interval::Year => y * 12,
        };
        let mut net = per_month(self.monthly_price, self.yearly_price);
        for code in addons {
            if let Some(a) = self.addons.iter().find(|a| &a.code == code) {
                net += per_month(a.monthly_price, a.yearly_price);
            }
        }
        net
    }
}

/// The plan catalogue, in display order (cheapest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    pub plans: Vec<Plan>,
}

impl Catalogue {
    pub fn plan(&self, code: &PlanCode) -> Option<&Plan> {
        self.plans.iter().find(|p| &p.code == code)
    }

    /// The Free plan (a catalogue without one gives a plan with no limits at all, which the
    /// seed never does).
    pub fn free(&self) -> Plan {
        self.plan(&PlanCode::free()).cloned().unwrap_or(Plan {
            code: PlanCode::free(),
            name: "Free".into(),
            monthly_price: 0,
            yearly_price: 0,
            limits: BTreeMap::new(),
            addons: Vec::new(),
        })
    }

    /// Every metric any plan limits.
    pub fn metrics(&self) -> Vec<String> {
        let mut all: Vec<String> =
            self.plans.iter().flat_map(|p| p.limits.keys().cloned()).collect();
        all.sort();
        all.dedup();
        all
    }

    /// The catalogue the migration seeds (the memory adapter serves this one): prices and
    /// limits of payments.md; add-on prices of the billing service Onboard replaces (an add-on
    /// that service priced at 0 on a plan is not offered on it).
    pub fn seed() -> Self {
        fn limits(
            c: i64,
            cu: i64,
            forms: Option<i64>,
            storage_gib: i64,
        ) -> BTreeMap<String, Option<i64>> {
            BTreeMap::from([
                ("consultations".to_owned(), Some(c)),
                ("customers".to_owned(), Some(cu)),
                ("forms".to_owned(), forms),
                ("storage_gib".to_owned(), Some(storage_gib)),
            ])
        }
        fn addon(code: &str, m: i64, y: i64) -> Addon {
            Addon { code: PlanCode::from_trusted(code), monthly_price: m, yearly_price: y }
        }
        let plan = |code: &str, name: &str, m, y, l, addons| Plan {
            code: PlanCode::from_trusted(code),
            name: name.to_owned(),
            monthly_price: m,
            yearly_price: y,
            limits: l,
            addons,
        };
        Self {
            plans: vec![
                plan("free", "Free", 0, 0, limits(3, 10, Some(1), 0), vec![]),
                plan(
                    "starter",
                    "Starter",
                    43_000,
                    38_000,
                    limits(40, 45, None, 500),
                    vec![addon("analytics", 21_500, 19_000), addon("chat", 21_500, 19_000)],
                ),
                plan(
                    "pro",
                    "Pro",
                    75_800,
                    68_000,
                    limits(100, 113, None, 1024),
                    vec![addon("analytics", 60_700, 54_000), addon("chat", 60_700, 54_000)],
                ),
                plan(
                    "team",
                    "Team",
                    125_300,
                    112_000,
                    limits(205, 225, None, 1536),
                    vec![
                        addon("white_label", 150_400, 135_000),
                        addon("analytics", 150_400, 135_000),
                        addon("chat", 150_400, 135_000),
                    ],
                ),
                plan(
                    "company",
                    "Company",
                    227_200,
                    204_000,
                    limits(410, 450, None, 2048),
                    vec![
                        addon("white_label", 454_300, 408_000),
                        addon("analytics", 340_700, 306_000),
                        addon("chat", 340_700, 306_000),
                    ],
                ),
            ],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Billing account
// ---------------------------------------------------------------------------------------------

/// Where a group's billing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingStatus {
    Free,
    Trialing,
    Active,
    PastDue,
    Canceling,
}

impl BillingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceling => "canceling",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "free" => Self::Free,
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "canceling" => Self::Canceling,
            _ => return None,
        })
    }
}

/// A group's billing account. A group without a stored one is on Free ([`Billing::free`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Billing {
    pub group: GroupId,
    /// The current plan (its limits apply now).
    pub plan: PlanCode,
    /// `None` on Free.
    pub interval: Option<Interval>,
    /// The current plan's add-ons.
    pub addons: Vec<PlanCode>,
    pub status: BillingStatus,
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// The current billing period (the trial while trialing); `None` on Free.
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    /// True while `canceling`: Free at `current_period_end`.
    pub cancel_at_period_end: bool,
    /// The trial is once per group, ever.
    pub trial_used: bool,
    /// The hour (0–23, in `BILLING_TZ`) at which this group's charges run.
    pub pay_hour: u32,
    /// The pending charge Onboard scheduled at the gateway (at most one per group).
    pub next_charge: Option<Charge>,
    /// Optimistic concurrency: storage bumps it on every write; 0 for a group never stored.
    pub version: i64,
}

impl Billing {
    /// The account of a group that never had one.
    pub fn free(group: GroupId, pay_hour: u32) -> Self {
        Self {
            group,
            plan: PlanCode::free(),
            interval: None,
            addons: Vec::new(),
            status: BillingStatus::Free,
            trial_ends_at: None,
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            trial_used: false,
            pay_hour,
            next_charge: None,
            version: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cards
// ---------------------------------------------------------------------------------------------

/// A card held as a billing key at the gateway. Only what the gateway reports back is kept: no
/// card number, CVC, expiry or birth date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub id: CardId,
    pub group: GroupId,
    pub customer_uid: CustomerUid,
    pub card_name: String,
    /// As the gateway masks it, such as "424242******4242".
    pub number_masked: String,
    /// At most one main card per group.
    pub main: bool,
    pub created_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// Charges
// ---------------------------------------------------------------------------------------------

/// Why a charge is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeKind {
    /// The first charge, at the end of a trial.
    TrialEnd,
    /// A period's charge at the end of the previous one.
    Renewal,
    /// A retry of a failed trial-end or renewal charge (`attempt` 1–3).
    Retry,
    /// A charge made at once (free → paid with the trial used).
    Immediate,
}

impl ChargeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TrialEnd => "trial_end",
            Self::Renewal => "renewal",
            Self::Retry => "retry",
            Self::Immediate => "immediate",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "trial_end" => Self::TrialEnd,
            "renewal" => Self::Renewal,
            "retry" => Self::Retry,
            "immediate" => Self::Immediate,
            _ => return None,
        })
    }
}

/// Where a charge stands, as Onboard recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    /// Scheduled at the gateway (or, for `Immediate`, being made); no outcome recorded yet.
    Scheduled,
    Paid,
    Failed,
    /// Unscheduled by Onboard (plan change, main-card change, cancel).
    Cancelled,
}

impl ChargeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "scheduled" => Self::Scheduled,
            "paid" => Self::Paid,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A charge Onboard asked the gateway for: what a webhook must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// Unique across all groups (the primary key).
    pub merchant_uid: MerchantUid,
    pub group: GroupId,
    pub card_id: CardId,
    pub customer_uid: CustomerUid,
    /// KRW with VAT: exactly what the gateway must report for a match.
    pub money: Money,
    /// When the gateway runs it.
    pub at: DateTime<Utc>,
    /// The plan, interval and add-ons this charge pays for (they become current when it is
    /// paid, for the period starting at `period_start`).
    pub plan: PlanCode,
    pub interval: Interval,
    pub addons: Vec<PlanCode>,
    pub period_start: DateTime<Utc>,
    pub kind: ChargeKind,
    /// 0 for the first attempt, 1–3 for the retries.
    pub attempt: u32,
    pub status: ChargeStatus,
    pub created_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// Receipts
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    Subscription,
    SmsCredit,
}

impl ReceiptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscription => "subscription",
            Self::SmsCredit => "sms_credit",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "subscription" => Self::Subscription,
            "sms_credit" => Self::SmsCredit,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Paid,
    Failed,
    Cancelled,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "paid" => Self::Paid,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// The record of one payment outcome (one per gateway payment: unique `imp_uid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub id: ReceiptId,
    pub group: GroupId,
    pub kind: ReceiptKind,
    pub money: Money,
    pub status: ReceiptStatus,
    /// The gateway's payment id: unique across receipts.
    pub imp_uid: String,
    pub merchant_uid: MerchantUid,
    pub card_id: Option<CardId>,
    pub paid_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
    /// Receipts list newest first by (`created_at`, `id`).
    pub created_at: DateTime<Utc>,
}

/// A position in a receipts list: the (`created_at`, `id`) of the last row shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptCursor {
    pub created_at: DateTime<Utc>,
    pub id: ReceiptId,
}

impl ReceiptCursor {
    /// The opaque text form: `<micros>.<uuid>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at.timestamp_micros(), self.id)
    }
    pub fn decode(raw: &str) -> Option<Self> {
        let (micros, id) = raw.split_once('.')?;
        let created_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        let id = Uuid::parse_str(id).ok()?;
        Some(Self { created_at, id: ReceiptId::from_uuid(id) })
    }
}

// ---------------------------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------------------------

/// One metric's count in a billing period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub metric: String,
    pub used: i64,
    pub limit: Option<i64>,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// Main-card change journal
// ---------------------------------------------------------------------------------------------

/// The furthest step a main-card change reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardChangeStep {
    /// Step 1 done: marks moved to the new card.
    Marked,
    /// Step 2 done: the old schedule is cancelled at the gateway.
    Unscheduled,
    /// Step 3 done: the charge is scheduled on the new card.
    Scheduled,
    /// Step 4 done: recorded; finished.
    Done,
    /// Compensated: marks restored, old schedule restored; finished.
    RolledBack,
}

impl CardChangeStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marked => "marked",
            Self::Unscheduled => "unscheduled",
            Self::Scheduled => "scheduled",
            Self::Done => "done",
            Self::RolledBack => "rolled_back",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "marked" => Self::Marked,
            "unscheduled" => Self::Unscheduled,
            "scheduled" => Self::Scheduled,
            "done" => Self::Done,
            "rolled_back" => Self::RolledBack,
            _ => return None,
        })
    }
    /// Done or rolled back.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::RolledBack)
    }
}

/// A journal row of one main-card change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardChange {
    pub id: CardChangeId,
    pub group: GroupId,
    /// The main card before the change (`None` when the group had none).
    pub old_card: Option<CardId>,
    pub new_card: CardId,
    /// The pending charge on the old card when the change began (`None`: nothing scheduled,
    /// only the marks move).
    pub old_charge: Option<Charge>,
    /// The id the charge is scheduled under on the new card.
    pub new_merchant_uid: MerchantUid,
    pub step: CardChangeStep,
    pub created_at: DateTime<Utc>,
}
