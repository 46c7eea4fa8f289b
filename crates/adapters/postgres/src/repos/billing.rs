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

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Nullable, SmallInt, Text, Timestamptz, Uuid,
};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::GroupId;
use onboard_payments::model::{
    Addon, Billing, BillingStatus, Card, CardChange, CardChangeId, CardChangeStep, CardId,
    Catalogue, Charge, ChargeKind, ChargeStatus, CustomerUid, Interval, MerchantUid, Money, Plan,
    PlanCode, Receipt, ReceiptCursor, ReceiptId, ReceiptKind, ReceiptStatus,
};
use onboard_payments::ports::{
    AddCardError, BeginCardChangeError, BillingCommit, BillingRepository, CardRepository, Claim,
    CommitError, DeleteCardError, GatewayLeftover, IdempotencyRepository, IncrementError,
    UsageRepository,
};

use crate::PgPool;
use crate::cached::CachedExt;
use crate::error::{TxError, is_transient, violated_unique};

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

/// The plans, cheapest first, then by code.
const PLANS: &str = "
    SELECT code, name, monthly_price, yearly_price FROM billing_plans
    ORDER BY monthly_price, code";

/// Every plan's limits.
const PLAN_LIMITS: &str = "SELECT plan_code, metric, max_used FROM billing_plan_limits";

/// Every plan's add-ons, in display order.
const PLAN_ADDONS: &str = "
    SELECT plan_code, addon_code, monthly_price, yearly_price FROM billing_plan_addons
    ORDER BY plan_code, position, addon_code";

/// The columns of [`AccountRow`].
macro_rules! account_columns {
    () => {
        "group_id, plan_code, interval, addons, status, trial_ends_at, current_period_start,
        current_period_end, cancel_at_period_end, trial_used, pay_hour, next_charge, version"
    };
}

/// The columns of [`ChargeRow`].
macro_rules! charge_columns {
    () => {
        "merchant_uid, group_id, card_id, customer_uid, amount, vat, at, plan_code, interval,
        addons, period_start, kind, attempt, status, created_at"
    };
}

/// The account of group `$1`.
const ACCOUNT: &str =
    concat!("SELECT ", account_columns!(), " FROM billing_accounts WHERE group_id = $1");

/// The charges whose merchant_uid is in `$1`.
const CHARGES_IN: &str =
    concat!("SELECT ", charge_columns!(), " FROM billing_charges WHERE merchant_uid = ANY($1)");

/// The charge `$1`.
const CHARGE: &str =
    concat!("SELECT ", charge_columns!(), " FROM billing_charges WHERE merchant_uid = $1");

/// Up to `$2` scheduled charges due before `$1`, oldest first (`billing_charges_scheduled_at_idx`).
const OVERDUE: &str = concat!(
    "SELECT ",
    charge_columns!(),
    " FROM billing_charges WHERE status = 'scheduled' AND at < $1
    ORDER BY at, merchant_uid LIMIT $2"
);

/// Up to `$2` accounts past their period end at `$1` with nothing scheduled to renew them (or
/// canceling), oldest period end first.
const EXPIRED: &str = "
    SELECT a.group_id, a.plan_code, a.interval, a.addons, a.status, a.trial_ends_at,
        a.current_period_start, a.current_period_end, a.cancel_at_period_end, a.trial_used,
        a.pay_hour, a.next_charge, a.version
    FROM billing_accounts a
    LEFT JOIN billing_charges c ON c.merchant_uid = a.next_charge
    WHERE a.status <> 'free' AND a.current_period_end < $1
        AND (a.status = 'canceling' OR c.merchant_uid IS NULL OR c.status <> 'scheduled')
    ORDER BY a.current_period_end, a.group_id
    LIMIT $2";

/// Key-share-locks card `$1` (a new charge on it), so that its deletion waits for the
/// transaction and then sees the charge.
const LOCK_CARD_SHARE: &str = "SELECT id FROM billing_cards WHERE id = $1 FOR KEY SHARE";

/// Inserts a charge.
const INSERT_CHARGE: &str = "
    INSERT INTO billing_charges (merchant_uid, group_id, card_id, customer_uid, amount, vat, at,
        plan_code, interval, addons, period_start, kind, attempt, status, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// Closes charge `$1` of group `$2` with status `$3` if it is still scheduled.
const CLOSE_CHARGE: &str = "
    UPDATE billing_charges SET status = $3
    WHERE merchant_uid = $1 AND group_id = $2 AND status = 'scheduled'";

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

/// Inserts the account of a group that had none, at version 1; no row when one exists.
const INSERT_ACCOUNT: &str = "
    INSERT INTO billing_accounts (group_id, plan_code, interval, addons, status, trial_ends_at,
        current_period_start, current_period_end, cancel_at_period_end, trial_used, pay_hour,
        next_charge, version)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)
    ON CONFLICT ON CONSTRAINT billing_accounts_pkey DO NOTHING";

/// Writes the account of group `$1` if its version is still `$13`, bumping it.
const UPDATE_ACCOUNT: &str = "
    UPDATE billing_accounts SET plan_code = $2, interval = $3, addons = $4, status = $5,
        trial_ends_at = $6, current_period_start = $7, current_period_end = $8,
        cancel_at_period_end = $9, trial_used = $10, pay_hour = $11, next_charge = $12,
        version = version + 1
    WHERE group_id = $1 AND version = $13";

/// Whether a receipt with imp_uid `$1` exists.
const RECEIPT_EXISTS: &str =
    "SELECT EXISTS (SELECT FROM billing_receipts WHERE imp_uid = $1) AS found";

/// Up to `$4` receipts of group `$1`, newest first, strictly after the cursor (`$2`, `$3`;
/// NULL for the first page): an index condition on `billing_receipts_group_idx`.
const RECEIPTS: &str = "
    SELECT id, group_id, kind, amount, vat, status, imp_uid, merchant_uid, card_id, paid_at,
        failure_reason, created_at
    FROM billing_receipts
    WHERE group_id = $1
        AND (created_at, id)
            < (COALESCE($2, 'infinity'), COALESCE($3, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
    ORDER BY created_at DESC, id DESC
    LIMIT $4";

/// Records that customer_uid `$1` was issued to group `$2` at `$3` (again: nothing changes).
const PREPARE: &str = "
    INSERT INTO billing_customer_uids (customer_uid, group_id, created_at) VALUES ($1, $2, $3)
    ON CONFLICT ON CONSTRAINT billing_customer_uids_pkey DO NOTHING";

/// The group customer_uid `$1` was issued to.
const PREPARED_FOR: &str =
    "SELECT group_id AS id FROM billing_customer_uids WHERE customer_uid = $1";

/// The columns of [`CardRow`].
macro_rules! card_columns {
    () => {
        "id, group_id, customer_uid, card_name, number_masked, main, created_at"
    };
}

/// Inserts a card as its group's main card, unless the group has one (then no row).
const INSERT_MAIN_CARD: &str = concat!(
    "INSERT INTO billing_cards (",
    card_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, true, $6)
    ON CONFLICT (group_id) WHERE main DO NOTHING
    RETURNING ",
    card_columns!()
);

/// Inserts a card, not main.
const INSERT_CARD: &str = concat!(
    "INSERT INTO billing_cards (",
    card_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, false, $6)
    RETURNING ",
    card_columns!()
);

/// The cards of group `$1`, oldest first.
const CARDS: &str = concat!(
    "SELECT ",
    card_columns!(),
    " FROM billing_cards WHERE group_id = $1 ORDER BY created_at, id"
);

/// Card `$2` of group `$1`.
const CARD: &str =
    concat!("SELECT ", card_columns!(), " FROM billing_cards WHERE group_id = $1 AND id = $2");

/// Locks card `$2` of group `$1` for its deletion.
const LOCK_CARD: &str = "SELECT id FROM billing_cards WHERE group_id = $1 AND id = $2 FOR UPDATE";

/// Whether a scheduled charge is on card `$1` (`billing_charges_scheduled_card_idx`).
const CARD_IN_USE: &str = "
    SELECT EXISTS (SELECT FROM billing_charges WHERE card_id = $1 AND status = 'scheduled')
        AS found";

/// Deletes card `$1`.
const DELETE_CARD: &str = "DELETE FROM billing_cards WHERE id = $1";

/// Locks every card of group `$1` (a main-card change), answering which is main.
const LOCK_CARDS: &str =
    "SELECT id, main FROM billing_cards WHERE group_id = $1 ORDER BY id FOR UPDATE";

/// Sets `main` to `$3` on card `$2` of group `$1`.
const SET_MAIN: &str = "UPDATE billing_cards SET main = $3 WHERE group_id = $1 AND id = $2";

/// Makes card `$2` of group `$1` main again (a rollback) if it still exists and no card of
/// the group is main.
const REMARK_OLD: &str = "
    UPDATE billing_cards SET main = true
    WHERE group_id = $1 AND id = $2
        AND NOT EXISTS (SELECT FROM billing_cards WHERE group_id = $1 AND main)";

/// Unmarks group `$1`'s main card.
const UNMARK_MAIN: &str = "UPDATE billing_cards SET main = false WHERE group_id = $1 AND main";

/// Inserts a main-card change journal row at step `marked`.
const INSERT_CHANGE: &str = "
    INSERT INTO billing_card_changes (id, group_id, old_card, new_card, old_merchant_uid,
        new_merchant_uid, step, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, 'marked', $7)";

/// Sets journal row `$1` to step `$2`.
const SET_STEP: &str = "UPDATE billing_card_changes SET step = $2 WHERE id = $1";

/// The unfinished journal rows, oldest first, with their old charge
/// (`billing_card_changes_unfinished_idx`).
const UNFINISHED: &str = "
    SELECT id, group_id, old_card, new_card, old_merchant_uid, new_merchant_uid, step, created_at
    FROM billing_card_changes
    WHERE step IN ('marked', 'unscheduled', 'scheduled')
    ORDER BY created_at, id";

/// Adds `$4` to counter (`$1`, `$2`, `$3`) if the result stays within `$5` (NULL: no limit),
/// creating it; no row when refused. One statement: concurrent increments of one counter wait
/// for each other's row lock and re-check the condition on the row as it then is.
const INCREMENT: &str = "
    INSERT INTO billing_usage (group_id, metric, period_start, used)
    SELECT $1, $2, $3, $4 WHERE $5::bigint IS NULL OR $4 <= $5
    ON CONFLICT ON CONSTRAINT billing_usage_pkey DO UPDATE
        SET used = billing_usage.used + EXCLUDED.used
        WHERE $5::bigint IS NULL OR billing_usage.used + EXCLUDED.used <= $5
    RETURNING used";

/// Counter (`$1`, `$2`, `$3`).
const USED: &str =
    "SELECT used FROM billing_usage WHERE group_id = $1 AND metric = $2 AND period_start = $3";

/// The counters of group `$1` for the period starting at `$2`.
const USAGE: &str = "
    SELECT metric, used FROM billing_usage WHERE group_id = $1 AND period_start = $2
    ORDER BY metric";

/// Claims key (`$1`, `$2`) for request hash `$3` at `$4`: inserts it, or replaces a record
/// claimed at or before `$5` (24 hours before `$4`). A row only when claimed.
const CLAIM: &str = "
    INSERT INTO billing_idempotency_keys (group_id, key, request_hash, claimed_at)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT ON CONSTRAINT billing_idempotency_keys_pkey DO UPDATE
        SET request_hash = EXCLUDED.request_hash, claimed_at = EXCLUDED.claimed_at,
            outcome = NULL
        WHERE billing_idempotency_keys.claimed_at <= $5
    RETURNING true AS found";

/// The record of key (`$1`, `$2`).
const KEY: &str = "
    SELECT request_hash, outcome::text AS outcome
    FROM billing_idempotency_keys WHERE group_id = $1 AND key = $2";

/// Stores the outcome of key (`$1`, `$2`).
const COMPLETE: &str = "
    UPDATE billing_idempotency_keys SET outcome = $3::jsonb
    WHERE group_id = $1 AND key = $2";

/// Forgets key (`$1`, `$2`) while it has no outcome.
const RELEASE: &str = "
    DELETE FROM billing_idempotency_keys
    WHERE group_id = $1 AND key = $2 AND outcome IS NULL";

/// How long an idempotency key lives.
const KEY_TTL_HOURS: i64 = 24;

/// How many times a transaction starts over after the database aborted it to break a
/// deadlock (and how many times a claim re-reads a key released under it).
const ATTEMPTS: usize = 3;

/// Runs `$attempt` (an expression giving a `Result<_, TxError<E>>` future) until it commits,
/// is refused, or fails for a reason other than a deadlock or serialization failure.
macro_rules! retrying {
    ($what:literal, $attempt:expr) => {{
        let mut attempt = 1;
        loop {
            match $attempt.await {
                Ok(done) => break Ok(done),
                Err(TxError::Refused(refusal)) => break Err(refusal),
                Err(TxError::Db(e)) if is_transient(&e) && attempt < ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(error = %e, what = $what, "transaction aborted; starting over");
                }
                Err(TxError::Db(e)) => break Err(anyhow::Error::new(e).context($what).into()),
            }
        }
    }};
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

#[derive(Debug, QueryableByName)]
struct PlanRow {
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    monthly_price: i64,
    #[diesel(sql_type = BigInt)]
    yearly_price: i64,
}

#[derive(Debug, QueryableByName)]
struct LimitRow {
    #[diesel(sql_type = Text)]
    plan_code: String,
    #[diesel(sql_type = Text)]
    metric: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    max_used: Option<i64>,
}

#[derive(Debug, QueryableByName)]
struct AddonRow {
    #[diesel(sql_type = Text)]
    plan_code: String,
    #[diesel(sql_type = Text)]
    addon_code: String,
    #[diesel(sql_type = BigInt)]
    monthly_price: i64,
    #[diesel(sql_type = BigInt)]
    yearly_price: i64,
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
struct ReceiptRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = BigInt)]
    vat: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    imp_uid: String,
    #[diesel(sql_type = Text)]
    merchant_uid: String,
    #[diesel(sql_type = Nullable<Uuid>)]
    card_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    paid_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    failure_reason: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl TryFrom<ReceiptRow> for Receipt {
    type Error = anyhow::Error;

    fn try_from(row: ReceiptRow) -> anyhow::Result<Self> {
        Ok(Self {
            id: ReceiptId::from_uuid(row.id),
            group: GroupId::from_uuid(row.group_id),
            kind: ReceiptKind::parse(&row.kind)
                .with_context(|| format!("unknown receipt kind {:?}", row.kind))?,
            money: Money { amount: row.amount, vat: row.vat },
            status: ReceiptStatus::parse(&row.status)
                .with_context(|| format!("unknown receipt status {:?}", row.status))?,
            imp_uid: row.imp_uid,
            merchant_uid: MerchantUid::from_trusted(row.merchant_uid),
            card_id: row.card_id.map(CardId::from_uuid),
            paid_at: row.paid_at,
            failure_reason: row.failure_reason,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, QueryableByName)]
struct CardRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    customer_uid: String,
    #[diesel(sql_type = Text)]
    card_name: String,
    #[diesel(sql_type = Text)]
    number_masked: String,
    #[diesel(sql_type = Bool)]
    main: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl From<CardRow> for Card {
    fn from(row: CardRow) -> Self {
        Self {
            id: CardId::from_uuid(row.id),
            group: GroupId::from_uuid(row.group_id),
            customer_uid: CustomerUid::from_trusted(row.customer_uid),
            card_name: row.card_name,
            number_masked: row.number_masked,
            main: row.main,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, QueryableByName)]
struct MainRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Bool)]
    main: bool,
}

#[derive(Debug, QueryableByName)]
struct ChangeRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Uuid>)]
    old_card: Option<uuid::Uuid>,
    #[diesel(sql_type = Uuid)]
    new_card: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    old_merchant_uid: Option<String>,
    #[diesel(sql_type = Text)]
    new_merchant_uid: String,
    #[diesel(sql_type = Text)]
    step: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
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

#[derive(Debug, QueryableByName)]
struct UsedRow {
    #[diesel(sql_type = BigInt)]
    used: i64,
}

#[derive(Debug, QueryableByName)]
struct MetricRow {
    #[diesel(sql_type = Text)]
    metric: String,
    #[diesel(sql_type = BigInt)]
    used: i64,
}

#[derive(Debug, QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    request_hash: String,
    #[diesel(sql_type = Nullable<Text>)]
    outcome: Option<String>,
}

fn interval_of(raw: &str) -> anyhow::Result<Interval> {
    Interval::parse(raw).with_context(|| format!("unknown interval {raw:?}"))
}

fn codes(codes: &[PlanCode]) -> Vec<&str> {
    codes.iter().map(PlanCode::as_str).collect()
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

/// The payments storage in PostgreSQL (tables `billing_*` of migration 000010).
#[derive(Clone)]
pub struct PgBillingStore {
    pool: PgPool,
    /// How long the notifications it creates are kept, in seconds (`NOTIFICATION_TTL`).
    notification_ttl_secs: i64,
}

impl fmt::Debug for PgBillingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgBillingStore").field("pool", &self.pool.status()).finish()
    }
}

impl PgBillingStore {
    /// A store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool, notification_ttl_secs: crate::repos::notifications::DEFAULT_TTL_SECS }
    }

    /// Keeps the notifications this store creates for `ttl` (`NOTIFICATION_TTL`; 14 days by
    /// default).
    #[must_use]
    pub fn with_notification_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.notification_ttl_secs = crate::repos::notifications::ttl_secs(ttl);
        self
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

/// The accounts of `rows` with their next charges (one more query for all of them).
async fn with_next_charges(
    conn: &mut AsyncPgConnection,
    rows: Vec<AccountRow>,
) -> anyhow::Result<Vec<Billing>> {
    let uids: Vec<&str> = rows.iter().filter_map(|r| r.next_charge.as_deref()).collect();
    let mut charges: HashMap<String, Charge> = HashMap::new();
    if !uids.is_empty() {
        let found: Vec<ChargeRow> = diesel::sql_query(CHARGES_IN)
            .bind::<Array<Text>, _>(&uids)
            .cached()
            .load(conn)
            .await
            .context("reading next charges")?;
        for row in found {
            let charge = Charge::try_from(row)?;
            charges.insert(charge.merchant_uid.as_str().to_owned(), charge);
        }
    }
    rows.into_iter()
        .map(|row| {
            let next = row.next_charge.as_ref().and_then(|m| charges.get(m)).cloned();
            row.into_domain(next)
        })
        .collect()
}

/// One attempt at [`BillingRepository::commit`] inside the caller's transaction.
async fn commit_in(
    conn: &mut AsyncPgConnection,
    commit: &BillingCommit,
    ttl_secs: i64,
) -> Result<(), TxError<CommitError>> {
    let billing = &commit.billing;
    let group = billing.group.as_uuid();
    // Cards first: a card's deletion then waits for this charge, or happened before it.
    let mut cards: Vec<uuid::Uuid> =
        commit.new_charges.iter().map(|c| c.card_id.as_uuid()).collect();
    cards.sort_unstable();
    cards.dedup();
    for card in cards {
        let _: Option<IdRow> = diesel::sql_query(LOCK_CARD_SHARE)
            .bind::<Uuid, _>(card)
            .cached()
            .get_result(conn)
            .await
            .optional()?;
    }
    for c in &commit.new_charges {
        diesel::sql_query(INSERT_CHARGE)
            .bind::<Text, _>(c.merchant_uid.as_str())
            .bind::<Uuid, _>(c.group.as_uuid())
            .bind::<Uuid, _>(c.card_id.as_uuid())
            .bind::<Text, _>(c.customer_uid.as_str())
            .bind::<BigInt, _>(c.money.amount)
            .bind::<BigInt, _>(c.money.vat)
            .bind::<Timestamptz, _>(c.at)
            .bind::<Text, _>(c.plan.as_str())
            .bind::<Text, _>(c.interval.as_str())
            .bind::<Array<Text>, _>(codes(&c.addons))
            .bind::<Timestamptz, _>(c.period_start)
            .bind::<Text, _>(c.kind.as_str())
            .bind::<Integer, _>(i32::try_from(c.attempt).unwrap_or(i32::MAX))
            .bind::<Text, _>(c.status.as_str())
            .bind::<Timestamptz, _>(c.created_at)
            .cached()
            .execute(conn)
            .await
            .map_err(|e| match violated_unique(&e) {
                Some("billing_charges_pkey") => TxError::Refused(CommitError::Unexpected(
                    anyhow::anyhow!("merchant_uid {} is taken", c.merchant_uid),
                )),
                _ => TxError::Db(e),
            })?;
    }
    let mut closed: Vec<&(MerchantUid, ChargeStatus)> = commit.closed_charges.iter().collect();
    closed.sort_by(|a, b| a.0.cmp(&b.0));
    for (uid, status) in closed {
        let n = diesel::sql_query(CLOSE_CHARGE)
            .bind::<Text, _>(uid.as_str())
            .bind::<Uuid, _>(group)
            .bind::<Text, _>(status.as_str())
            .cached()
            .execute(conn)
            .await?;
        if n == 0 {
            return Err(TxError::Refused(CommitError::Stale));
        }
    }
    if let Some(r) = &commit.receipt
        && !insert_receipt(conn, r).await?
    {
        return Err(TxError::Refused(CommitError::DuplicateReceipt));
    }
    let pay_hour = i16::try_from(billing.pay_hour).map_err(|_| {
        TxError::Refused(CommitError::Unexpected(anyhow::anyhow!(
            "pay_hour {} is out of range",
            billing.pay_hour
        )))
    })?;
    let query = if billing.version == 0 { INSERT_ACCOUNT } else { UPDATE_ACCOUNT };
    let query = diesel::sql_query(query)
        .bind::<Uuid, _>(group)
        .bind::<Text, _>(billing.plan.as_str())
        .bind::<Nullable<Text>, _>(billing.interval.map(Interval::as_str))
        .bind::<Array<Text>, _>(codes(&billing.addons))
        .bind::<Text, _>(billing.status.as_str())
        .bind::<Nullable<Timestamptz>, _>(billing.trial_ends_at)
        .bind::<Nullable<Timestamptz>, _>(billing.current_period_start)
        .bind::<Nullable<Timestamptz>, _>(billing.current_period_end)
        .bind::<Bool, _>(billing.cancel_at_period_end)
        .bind::<Bool, _>(billing.trial_used)
        .bind::<SmallInt, _>(pay_hour)
        .bind::<Nullable<Text>, _>(billing.next_charge.as_ref().map(|c| c.merchant_uid.as_str()));
    let written = if billing.version == 0 {
        query.cached().execute(conn).await?
    } else {
        query.bind::<BigInt, _>(billing.version).cached().execute(conn).await?
    };
    if written == 0 {
        return Err(TxError::Refused(CommitError::Stale));
    }
    // The change's notifications, in its transaction.
    crate::repos::billing_notices::notify(conn, billing.group, &commit.notices, ttl_secs).await?;
    Ok(())
}

async fn commit_tx(
    conn: &mut AsyncPgConnection,
    commit: &BillingCommit,
    ttl_secs: i64,
) -> Result<(), TxError<CommitError>> {
    conn.transaction(async |conn| commit_in(conn, commit, ttl_secs).await).await
}

#[async_trait]
impl BillingRepository for PgBillingStore {
    async fn catalogue(&self) -> anyhow::Result<Catalogue> {
        let mut conn = self.conn().await?;
        let plans: Vec<PlanRow> =
            diesel::sql_query(PLANS).cached().load(&mut conn).await.context("reading plans")?;
        let limits: Vec<LimitRow> = diesel::sql_query(PLAN_LIMITS)
            .cached()
            .load(&mut conn)
            .await
            .context("reading plan limits")?;
        let addons: Vec<AddonRow> = diesel::sql_query(PLAN_ADDONS)
            .cached()
            .load(&mut conn)
            .await
            .context("reading plan add-ons")?;
        let mut limits_of: HashMap<String, BTreeMap<String, Option<i64>>> = HashMap::new();
        for l in limits {
            limits_of.entry(l.plan_code).or_default().insert(l.metric, l.max_used);
        }
        let mut addons_of: HashMap<String, Vec<Addon>> = HashMap::new();
        for a in addons {
            addons_of.entry(a.plan_code).or_default().push(Addon {
                code: PlanCode::from_trusted(a.addon_code),
                monthly_price: a.monthly_price,
                yearly_price: a.yearly_price,
            });
        }
        let plans = plans
            .into_iter()
            .map(|p| Plan {
                limits: limits_of.remove(&p.code).unwrap_or_default(),
                addons: addons_of.remove(&p.code).unwrap_or_default(),
                code: PlanCode::from_trusted(p.code),
                name: p.name,
                monthly_price: p.monthly_price,
                yearly_price: p.yearly_price,
            })
            .collect();
        Ok(Catalogue { plans })
    }

    async fn billing(&self, group: GroupId) -> anyhow::Result<Option<Billing>> {
        let mut conn = self.conn().await?;
        let row: Option<AccountRow> = diesel::sql_query(ACCOUNT)
            .bind::<Uuid, _>(group.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading a billing account")?;
        let Some(row) = row else { return Ok(None) };
        Ok(with_next_charges(&mut conn, vec![row]).await?.pop())
    }

    async fn commit(&self, commit: &BillingCommit) -> Result<(), CommitError> {
        let mut conn = self.conn().await?;
        let ttl = self.notification_ttl_secs;
        retrying!("writing a billing change", commit_tx(&mut conn, commit, ttl))
    }

    async fn charge(&self, merchant_uid: &MerchantUid) -> anyhow::Result<Option<Charge>> {
        let mut conn = self.conn().await?;
        let row: Option<ChargeRow> = diesel::sql_query(CHARGE)
            .bind::<Text, _>(merchant_uid.as_str())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading a charge")?;
        row.map(Charge::try_from).transpose()
    }

    async fn receipt_exists(&self, imp_uid: &str) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let row: FoundRow = diesel::sql_query(RECEIPT_EXISTS)
            .bind::<Text, _>(imp_uid)
            .cached()
            .get_result(&mut conn)
            .await
            .context("looking up a receipt")?;
        Ok(row.found)
    }

    async fn receipts(
        &self,
        group: GroupId,
        after: Option<ReceiptCursor>,
        limit: u32,
    ) -> anyhow::Result<Vec<Receipt>> {
        let mut conn = self.conn().await?;
        let rows: Vec<ReceiptRow> = diesel::sql_query(RECEIPTS)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.created_at))
            .bind::<Nullable<Uuid>, _>(after.map(|a| a.id.as_uuid()))
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("listing receipts")?;
        rows.into_iter().map(Receipt::try_from).collect()
    }

    async fn overdue_charges(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Charge>> {
        let mut conn = self.conn().await?;
        let rows: Vec<ChargeRow> = diesel::sql_query(OVERDUE)
            .bind::<Timestamptz, _>(before)
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("listing overdue charges")?;
        rows.into_iter().map(Charge::try_from).collect()
    }

    async fn expired_billings(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Billing>> {
        let mut conn = self.conn().await?;
        let rows: Vec<AccountRow> = diesel::sql_query(EXPIRED)
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("listing expired billing accounts")?;
        with_next_charges(&mut conn, rows).await
    }

    async fn trials_ending(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<(DateTime<Utc>, GroupId)>,
        limit: u32,
    ) -> anyhow::Result<Vec<Billing>> {
        let mut conn = self.conn().await?;
        let rows: Vec<AccountRow> = diesel::sql_query(crate::repos::billing_notices::TRIALS_ENDING)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(until)
            .bind::<Nullable<Timestamptz>, _>(after.map(|(end, _)| end))
            .bind::<BigInt, _>(i64::from(limit))
            .bind::<Nullable<Uuid>, _>(after.map(|(_, group)| group.as_uuid()))
            .cached()
            .load(&mut conn)
            .await
            .context("listing trials ending")?;
        with_next_charges(&mut conn, rows).await
    }

    async fn notify_trial_ending(
        &self,
        group: GroupId,
        trial_ends_at: DateTime<Utc>,
        days: u32,
        notice: &onboard_payments::notices::BillingNotice,
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let ttl = self.notification_ttl_secs;
        conn.transaction(async |conn| {
            crate::repos::billing_notices::notify_trial_ending(
                conn,
                group,
                trial_ends_at,
                days,
                notice,
                ttl,
            )
            .await
        })
        .await
        .context("notifying a trial's end")
    }

    async fn gateway_leftovers(&self, limit: u32) -> anyhow::Result<Vec<GatewayLeftover>> {
        let mut conn = self.conn().await?;
        let rows: Vec<LeftoverRow> = diesel::sql_query(LEFTOVERS)
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("listing gateway leftovers")?;
        Ok(rows
            .into_iter()
            .map(|r| GatewayLeftover {
                id: r.id,
                customer_uid: r.customer_uid,
                merchant_uid: r.merchant_uid,
            })
            .collect())
    }

    async fn forget_leftover(&self, id: i64) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        diesel::sql_query(FORGET_LEFTOVER)
            .bind::<BigInt, _>(id)
            .cached()
            .execute(&mut conn)
            .await
            .context("forgetting a gateway leftover")?;
        Ok(())
    }
}

/// The oldest gateway leftovers of deleted groups.
const LEFTOVERS: &str = "
    SELECT id, customer_uid, merchant_uid FROM billing_gateway_leftovers ORDER BY id LIMIT $1";

const FORGET_LEFTOVER: &str = "DELETE FROM billing_gateway_leftovers WHERE id = $1";

#[derive(QueryableByName)]
struct LeftoverRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    customer_uid: String,
    #[diesel(sql_type = Nullable<Text>)]
    merchant_uid: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Cards and the journal
// ---------------------------------------------------------------------------------------------

async fn add_tx(conn: &mut AsyncPgConnection, card: &Card) -> Result<Card, TxError<AddCardError>> {
    conn.transaction(async |conn| {
        let owner: Option<IdRow> = diesel::sql_query(PREPARED_FOR)
            .bind::<Text, _>(card.customer_uid.as_str())
            .cached()
            .get_result(conn)
            .await
            .optional()?;
        if owner.map(|o| o.id) != Some(card.group.as_uuid()) {
            return Err(TxError::Refused(AddCardError::NotPrepared));
        }
        let exists = |e: diesel::result::Error| match violated_unique(&e) {
            Some("billing_cards_customer_uid_key" | "billing_cards_pkey") => {
                TxError::Refused(AddCardError::Exists)
            }
            _ => TxError::Db(e),
        };
        let main: Option<CardRow> = diesel::sql_query(INSERT_MAIN_CARD)
            .bind::<Uuid, _>(card.id.as_uuid())
            .bind::<Uuid, _>(card.group.as_uuid())
            .bind::<Text, _>(card.customer_uid.as_str())
            .bind::<Text, _>(&card.card_name)
            .bind::<Text, _>(&card.number_masked)
            .bind::<Timestamptz, _>(card.created_at)
            .cached()
            .get_result(conn)
            .await
            .optional()
            .map_err(exists)?;
        if let Some(row) = main {
            return Ok(row.into());
        }
        let row: CardRow = diesel::sql_query(INSERT_CARD)
            .bind::<Uuid, _>(card.id.as_uuid())
            .bind::<Uuid, _>(card.group.as_uuid())
            .bind::<Text, _>(card.customer_uid.as_str())
            .bind::<Text, _>(&card.card_name)
            .bind::<Text, _>(&card.number_masked)
            .bind::<Timestamptz, _>(card.created_at)
            .cached()
            .get_result(conn)
            .await
            .map_err(exists)?;
        Ok(row.into())
    })
    .await
}

async fn delete_tx(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    id: CardId,
) -> Result<(), TxError<DeleteCardError>> {
    conn.transaction(async |conn| {
        let found: Option<IdRow> = diesel::sql_query(LOCK_CARD)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Uuid, _>(id.as_uuid())
            .cached()
            .get_result(conn)
            .await
            .optional()?;
        if found.is_none() {
            return Err(TxError::Refused(DeleteCardError::NotFound));
        }
        let in_use: FoundRow = diesel::sql_query(CARD_IN_USE)
            .bind::<Uuid, _>(id.as_uuid())
            .cached()
            .get_result(conn)
            .await?;
        if in_use.found {
            return Err(TxError::Refused(DeleteCardError::InUse));
        }
        diesel::sql_query(DELETE_CARD).bind::<Uuid, _>(id.as_uuid()).cached().execute(conn).await?;
        Ok(())
    })
    .await
}

async fn begin_tx(
    conn: &mut AsyncPgConnection,
    change: &CardChange,
) -> Result<(), TxError<BeginCardChangeError>> {
    conn.transaction(async |conn| {
        let group = change.group.as_uuid();
        let cards: Vec<MainRow> =
            diesel::sql_query(LOCK_CARDS).bind::<Uuid, _>(group).cached().load(conn).await?;
        if !cards.iter().any(|c| c.id == change.new_card.as_uuid()) {
            return Err(TxError::Refused(BeginCardChangeError::NotFound));
        }
        let main = cards.iter().find(|c| c.main).map(|c| CardId::from_uuid(c.id));
        if main != change.old_card {
            return Err(TxError::Refused(BeginCardChangeError::Busy));
        }
        diesel::sql_query(INSERT_CHANGE)
            .bind::<Uuid, _>(change.id.as_uuid())
            .bind::<Uuid, _>(group)
            .bind::<Nullable<Uuid>, _>(change.old_card.map(|c| c.as_uuid()))
            .bind::<Uuid, _>(change.new_card.as_uuid())
            .bind::<Nullable<Text>, _>(change.old_charge.as_ref().map(|c| c.merchant_uid.as_str()))
            .bind::<Text, _>(change.new_merchant_uid.as_str())
            .bind::<Timestamptz, _>(change.created_at)
            .cached()
            .execute(conn)
            .await
            .map_err(|e| match violated_unique(&e) {
                Some("billing_card_changes_unfinished_key") => {
                    TxError::Refused(BeginCardChangeError::Busy)
                }
                _ => TxError::Db(e),
            })?;
        diesel::sql_query(UNMARK_MAIN).bind::<Uuid, _>(group).cached().execute(conn).await?;
        diesel::sql_query(SET_MAIN)
            .bind::<Uuid, _>(group)
            .bind::<Uuid, _>(change.new_card.as_uuid())
            .bind::<Bool, _>(true)
            .cached()
            .execute(conn)
            .await
            .map_err(|e| match violated_unique(&e) {
                Some("billing_cards_one_main_key") => TxError::Refused(BeginCardChangeError::Busy),
                _ => TxError::Db(e),
            })?;
        Ok(())
    })
    .await
}

async fn set_step(
    conn: &mut AsyncPgConnection,
    id: CardChangeId,
    step: CardChangeStep,
) -> diesel::QueryResult<usize> {
    diesel::sql_query(SET_STEP)
        .bind::<Uuid, _>(id.as_uuid())
        .bind::<Text, _>(step.as_str())
        .cached()
        .execute(conn)
        .await
}

async fn finish_tx(
    conn: &mut AsyncPgConnection,
    id: CardChangeId,
    commit: Option<&BillingCommit>,
    ttl_secs: i64,
) -> Result<(), TxError<CommitError>> {
    conn.transaction(async |conn| {
        if let Some(commit) = commit {
            commit_in(conn, commit, ttl_secs).await?;
        }
        set_step(conn, id, CardChangeStep::Done).await?;
        Ok(())
    })
    .await
}

async fn roll_back_tx(
    conn: &mut AsyncPgConnection,
    change: &CardChange,
) -> Result<(), TxError<anyhow::Error>> {
    conn.transaction(async |conn| {
        let group = change.group.as_uuid();
        let _: Vec<MainRow> =
            diesel::sql_query(LOCK_CARDS).bind::<Uuid, _>(group).cached().load(conn).await?;
        diesel::sql_query(SET_MAIN)
            .bind::<Uuid, _>(group)
            .bind::<Uuid, _>(change.new_card.as_uuid())
            .bind::<Bool, _>(false)
            .cached()
            .execute(conn)
            .await?;
        if let Some(old) = change.old_card {
            diesel::sql_query(REMARK_OLD)
                .bind::<Uuid, _>(group)
                .bind::<Uuid, _>(old.as_uuid())
                .cached()
                .execute(conn)
                .await?;
        }
        set_step(conn, change.id, CardChangeStep::RolledBack).await?;
        Ok(())
    })
    .await
}

#[async_trait]
impl CardRepository for PgBillingStore {
    async fn prepare(
        &self,
        group: GroupId,
        customer_uid: &CustomerUid,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        diesel::sql_query(PREPARE)
            .bind::<Text, _>(customer_uid.as_str())
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Timestamptz, _>(now)
            .cached()
            .execute(&mut conn)
            .await
            .context("recording a customer_uid")?;
        Ok(())
    }

    async fn add(&self, card: &Card) -> Result<Card, AddCardError> {
        let mut conn = self.conn().await?;
        retrying!("adding a card", add_tx(&mut conn, card))
    }

    async fn cards(&self, group: GroupId) -> anyhow::Result<Vec<Card>> {
        let mut conn = self.conn().await?;
        let rows: Vec<CardRow> = diesel::sql_query(CARDS)
            .bind::<Uuid, _>(group.as_uuid())
            .cached()
            .load(&mut conn)
            .await
            .context("listing cards")?;
        Ok(rows.into_iter().map(Card::from).collect())
    }

    async fn card(&self, group: GroupId, id: CardId) -> anyhow::Result<Option<Card>> {
        let mut conn = self.conn().await?;
        let row: Option<CardRow> = diesel::sql_query(CARD)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Uuid, _>(id.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading a card")?;
        Ok(row.map(Card::from))
    }

    async fn delete(&self, group: GroupId, id: CardId) -> Result<(), DeleteCardError> {
        let mut conn = self.conn().await?;
        retrying!("deleting a card", delete_tx(&mut conn, group, id))
    }

    async fn begin_main_change(&self, change: &CardChange) -> Result<(), BeginCardChangeError> {
        let mut conn = self.conn().await?;
        retrying!("beginning a main-card change", begin_tx(&mut conn, change))
    }

    async fn advance_main_change(
        &self,
        id: CardChangeId,
        step: CardChangeStep,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        set_step(&mut conn, id, step).await.context("advancing a main-card change")?;
        Ok(())
    }

    async fn finish_main_change(
        &self,
        id: CardChangeId,
        commit: Option<BillingCommit>,
    ) -> Result<(), CommitError> {
        let mut conn = self.conn().await?;
        let ttl = self.notification_ttl_secs;
        retrying!("finishing a main-card change", finish_tx(&mut conn, id, commit.as_ref(), ttl))
    }

    async fn roll_back_main_change(&self, change: &CardChange) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        retrying!("rolling back a main-card change", roll_back_tx(&mut conn, change))
    }

    async fn unfinished_main_changes(&self) -> anyhow::Result<Vec<CardChange>> {
        let mut conn = self.conn().await?;
        let rows: Vec<ChangeRow> = diesel::sql_query(UNFINISHED)
            .cached()
            .load(&mut conn)
            .await
            .context("listing unfinished main-card changes")?;
        let uids: Vec<&str> = rows.iter().filter_map(|r| r.old_merchant_uid.as_deref()).collect();
        let mut charges: HashMap<String, Charge> = HashMap::new();
        if !uids.is_empty() {
            let found: Vec<ChargeRow> = diesel::sql_query(CHARGES_IN)
                .bind::<Array<Text>, _>(&uids)
                .cached()
                .load(&mut conn)
                .await
                .context("reading the old charges of main-card changes")?;
            for row in found {
                let charge = Charge::try_from(row)?;
                charges.insert(charge.merchant_uid.as_str().to_owned(), charge);
            }
        }
        rows.into_iter()
            .map(|r| {
                // The journal holds the charge as it was when the change began: scheduled
                // (only its status ever changes).
                let old_charge = r
                    .old_merchant_uid
                    .as_ref()
                    .and_then(|m| charges.get(m))
                    .cloned()
                    .map(|c| Charge { status: ChargeStatus::Scheduled, ..c });
                Ok(CardChange {
                    id: CardChangeId::from_uuid(r.id),
                    group: GroupId::from_uuid(r.group_id),
                    old_card: r.old_card.map(CardId::from_uuid),
                    new_card: CardId::from_uuid(r.new_card),
                    old_charge,
                    new_merchant_uid: MerchantUid::from_trusted(r.new_merchant_uid),
                    step: CardChangeStep::parse(&r.step)
                        .with_context(|| format!("unknown main-card change step {:?}", r.step))?,
                    created_at: r.created_at,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Usage and idempotency keys
// ---------------------------------------------------------------------------------------------

#[async_trait]
impl UsageRepository for PgBillingStore {
    async fn increment(
        &self,
        group: GroupId,
        metric: &str,
        period_start: DateTime<Utc>,
        delta: i64,
        limit: Option<i64>,
    ) -> Result<i64, IncrementError> {
        let mut conn = self.conn().await?;
        let ttl = self.notification_ttl_secs;
        // The thresholds it crosses are notified in the increment's transaction.
        let counted: Option<UsedRow> = conn
            .transaction(async |conn| {
                let counted: Option<UsedRow> = diesel::sql_query(INCREMENT)
                    .bind::<Uuid, _>(group.as_uuid())
                    .bind::<Text, _>(metric)
                    .bind::<Timestamptz, _>(period_start)
                    .bind::<BigInt, _>(delta)
                    .bind::<Nullable<BigInt>, _>(limit)
                    .cached()
                    .get_result(conn)
                    .await
                    .optional()?;
                if let Some(row) = &counted {
                    crate::repos::billing_notices::notify_usage(
                        conn,
                        group,
                        metric,
                        period_start,
                        row.used - delta,
                        row.used,
                        limit,
                        ttl,
                    )
                    .await?;
                }
                diesel::QueryResult::Ok(counted)
            })
            .await
            .context("counting usage")?;
        if let Some(row) = counted {
            return Ok(row.used);
        }
        let current: Option<UsedRow> = diesel::sql_query(USED)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Text, _>(metric)
            .bind::<Timestamptz, _>(period_start)
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading usage")?;
        Err(IncrementError::LimitReached { used: current.map_or(0, |r| r.used) })
    }

    async fn usage(
        &self,
        group: GroupId,
        period_start: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        let mut conn = self.conn().await?;
        let rows: Vec<MetricRow> = diesel::sql_query(USAGE)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Timestamptz, _>(period_start)
            .cached()
            .load(&mut conn)
            .await
            .context("reading usage")?;
        Ok(rows.into_iter().map(|r| (r.metric, r.used)).collect())
    }
}

#[async_trait]
impl IdempotencyRepository for PgBillingStore {
    async fn claim(
        &self,
        group: GroupId,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Claim> {
        let mut conn = self.conn().await?;
        for _ in 0..ATTEMPTS {
            let claimed: Option<FoundRow> = diesel::sql_query(CLAIM)
                .bind::<Uuid, _>(group.as_uuid())
                .bind::<Text, _>(key)
                .bind::<Text, _>(request_hash)
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(now - Duration::hours(KEY_TTL_HOURS))
                .cached()
                .get_result(&mut conn)
                .await
                .optional()
                .context("claiming an idempotency key")?;
            if claimed.is_some() {
                return Ok(Claim::Claimed);
            }
            let row: Option<KeyRow> = diesel::sql_query(KEY)
                .bind::<Uuid, _>(group.as_uuid())
                .bind::<Text, _>(key)
                .cached()
                .get_result(&mut conn)
                .await
                .optional()
                .context("reading an idempotency key")?;
            // None: released between the two statements; claim again.
            if let Some(row) = row {
                let outcome = row
                    .outcome
                    .map(|o| serde_json::from_str(&o))
                    .transpose()
                    .context("a stored outcome")?;
                return Ok(Claim::Existing { request_hash: row.request_hash, outcome });
            }
        }
        anyhow::bail!("idempotency key {key:?} kept changing under its claim")
    }

    async fn complete(
        &self,
        group: GroupId,
        key: &str,
        outcome: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        let outcome = serde_json::to_string(outcome).context("encoding an outcome")?;
        diesel::sql_query(COMPLETE)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Text, _>(key)
            .bind::<Text, _>(outcome)
            .cached()
            .execute(&mut conn)
            .await
            .context("storing an idempotent outcome")?;
        Ok(())
    }

    async fn release(&self, group: GroupId, key: &str) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        diesel::sql_query(RELEASE)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Text, _>(key)
            .cached()
            .execute(&mut conn)
            .await
            .context("releasing an idempotency key")?;
        Ok(())
    }
}
