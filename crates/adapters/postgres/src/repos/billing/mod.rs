//! The payments storage ports on PostgreSQL: [`BillingRepository`], [`CardRepository`],
//! [`UsageRepository`] and [`IdempotencyRepository`], all on [`PgBillingStore`].
//!
//! Every method is one statement or one transaction. The rules only storage can settle are
//! settled here:
//!
//! - A billing write is conditional on the account's version (`UPDATE ... WHERE version = $v`,
//!   or an insert of version 0 that meets no row): of two racing writers, one gets
//!   [`CommitError::Stale`]. Closing a charge is `UPDATE ... WHERE status = 'scheduled'`.
//! - A payment is recorded once: `billing_receipts_imp_uid_key` (unique `imp_uid`).
//! - At most one main card per group: `billing_cards_one_main_key` (partial unique index). An
//!   add inserts the card as main with `ON CONFLICT ... DO NOTHING` on that index, and as not
//!   main when another card holds it; a main-card change locks the group's cards first.
//! - One unfinished main-card change per group: `billing_card_changes_unfinished_key`.
//! - Usage counts never pass the limit: one conditional upsert per increment.
//! - Of concurrent claims of an idempotency key exactly one wins: one conditional upsert.
//!
//! Lock order, in every transaction that takes more than one: card rows, then charge rows (in
//! `merchant_uid` order), then the receipt's index entry, then the account row, then the
//! journal row. A transaction the database still aborts to break a deadlock is run again.
//!
//! One file per port: `accounts.rs`, `cards.rs`, `usage.rs`, `idempotency.rs`; the commit of a
//! billing change, shared by the account and the main-card change, in `commit.rs`.
//!
//! [`BillingRepository`]: onboard_payments::ports::BillingRepository
//! [`CardRepository`]: onboard_payments::ports::CardRepository
//! [`UsageRepository`]: onboard_payments::ports::UsageRepository
//! [`IdempotencyRepository`]: onboard_payments::ports::IdempotencyRepository
//! [`CommitError::Stale`]: onboard_payments::ports::CommitError::Stale
use std::fmt;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Nullable, SmallInt, Text, Timestamptz, Uuid,
};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::GroupId;
use onboard_payments::model::{
    Billing, BillingStatus, CardId, Charge, ChargeKind, ChargeStatus, CustomerUid, Interval,
    MerchantUid, Money, PlanCode, Receipt,
};

use crate::PgPool;
use crate::cached::CachedExt;
use crate::error::violated_unique;

/// The columns of [`ChargeRow`].
macro_rules! charge_columns {
    () => {
        "merchant_uid, group_id, card_id, customer_uid, amount, vat, at, plan_code, interval,
        addons, period_start, kind, attempt, status, created_at"
    };
}

mod accounts;
mod cards;
mod commit;
mod idempotency;
mod usage;

/// Inserts a receipt.
const INSERT_RECEIPT: &str = "
    INSERT INTO billing_receipts (id, group_id, kind, amount, vat, status, imp_uid, merchant_uid,
        card_id, paid_at, failure_reason, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// Inserts `receipt` on `conn`, in the caller's transaction. `Ok(false)` when a receipt with
/// its `imp_uid` exists (the payment was recorded before; the transaction must roll back).
pub(crate) async fn insert_receipt(
    conn: &mut AsyncPgConnection,
    receipt: &Receipt,
) -> diesel::QueryResult<bool> {
    let inserted = diesel::sql_query(INSERT_RECEIPT)
        .bind::<Uuid, _>(receipt.id.as_uuid())
        .bind::<Uuid, _>(receipt.group.as_uuid())
        .bind::<Text, _>(receipt.kind.as_str())
        .bind::<BigInt, _>(receipt.money.amount)
        .bind::<BigInt, _>(receipt.money.vat)
        .bind::<Text, _>(receipt.status.as_str())
        .bind::<Text, _>(&receipt.imp_uid)
        .bind::<Text, _>(receipt.merchant_uid.as_str())
        .bind::<Nullable<Uuid>, _>(receipt.card_id.map(|c| c.as_uuid()))
        .bind::<Nullable<Timestamptz>, _>(receipt.paid_at)
        .bind::<Nullable<Text>, _>(receipt.failure_reason.as_deref())
        .bind::<Timestamptz, _>(receipt.created_at)
        .cached()
        .execute(conn)
        .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if violated_unique(&e) == Some("billing_receipts_imp_uid_key") => Ok(false),
        Err(e) => Err(e),
    }
}

#[derive(Debug, QueryableByName)]
struct AccountRow {
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    plan_code: String,
    #[diesel(sql_type = Nullable<Text>)]
    interval: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    addons: Vec<String>,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    trial_ends_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    current_period_start: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    current_period_end: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    cancel_at_period_end: bool,
    #[diesel(sql_type = Bool)]
    trial_used: bool,
    #[diesel(sql_type = SmallInt)]
    pay_hour: i16,
    #[diesel(sql_type = Nullable<Text>)]
    next_charge: Option<String>,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

impl AccountRow {
    fn into_domain(self, next_charge: Option<Charge>) -> anyhow::Result<Billing> {
        Ok(Billing {
            group: GroupId::from_uuid(self.group_id),
            plan: PlanCode::from_trusted(self.plan_code),
            interval: self.interval.as_deref().map(interval_of).transpose()?,
            addons: self.addons.into_iter().map(PlanCode::from_trusted).collect(),
            status: BillingStatus::parse(&self.status)
                .with_context(|| format!("unknown billing status {:?}", self.status))?,
            trial_ends_at: self.trial_ends_at,
            current_period_start: self.current_period_start,
            current_period_end: self.current_period_end,
            cancel_at_period_end: self.cancel_at_period_end,
            trial_used: self.trial_used,
            pay_hour: u32::try_from(self.pay_hour).context("a negative pay_hour")?,
            next_charge,
            version: self.version,
        })
    }
}

#[derive(Debug, QueryableByName)]
struct ChargeRow {
    #[diesel(sql_type = Text)]
    merchant_uid: String,
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    card_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    customer_uid: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = BigInt)]
    vat: i64,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    plan_code: String,
    #[diesel(sql_type = Text)]
    interval: String,
    #[diesel(sql_type = Array<Text>)]
    addons: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    period_start: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl TryFrom<ChargeRow> for Charge {
    type Error = anyhow::Error;

    fn try_from(row: ChargeRow) -> anyhow::Result<Self> {
        Ok(Self {
            merchant_uid: MerchantUid::from_trusted(row.merchant_uid),
            group: GroupId::from_uuid(row.group_id),
            card_id: CardId::from_uuid(row.card_id),
            customer_uid: CustomerUid::from_trusted(row.customer_uid),
            money: Money { amount: row.amount, vat: row.vat },
            at: row.at,
            plan: PlanCode::from_trusted(row.plan_code),
            interval: interval_of(&row.interval)?,
            addons: row.addons.into_iter().map(PlanCode::from_trusted).collect(),
            period_start: row.period_start,
            kind: ChargeKind::parse(&row.kind)
                .with_context(|| format!("unknown charge kind {:?}", row.kind))?,
            attempt: u32::try_from(row.attempt).context("a negative attempt")?,
            status: ChargeStatus::parse(&row.status)
                .with_context(|| format!("unknown charge status {:?}", row.status))?,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
}

#[derive(Debug, QueryableByName)]
struct FoundRow {
    #[diesel(sql_type = Bool)]
    found: bool,
}

fn interval_of(raw: &str) -> anyhow::Result<Interval> {
    Interval::parse(raw).with_context(|| format!("unknown interval {raw:?}"))
}

fn codes(codes: &[PlanCode]) -> Vec<&str> {
    codes.iter().map(PlanCode::as_str).collect()
}

/// The payments storage in PostgreSQL (tables `billing_*` of migration 000010).
#[derive(Clone)]
pub struct PgBillingStore {
    pool: PgPool,
}

impl fmt::Debug for PgBillingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgBillingStore").field("pool", &self.pool.status()).finish()
    }
}

impl PgBillingStore {
    /// A store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}
