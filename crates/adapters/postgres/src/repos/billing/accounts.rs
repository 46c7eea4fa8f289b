//! [`BillingRepository`] on PostgreSQL: the catalogue, accounts, charges, receipts, the
//! periodic queries and the gateway leftovers of deleted groups.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel_async::RunQueryDsl as _;
use onboard_kernel::GroupId;
use onboard_payments::model::{
    Addon, Billing, CardId, Catalogue, Charge, MerchantUid, Money, Plan, PlanCode, Receipt,
    ReceiptCursor, ReceiptId, ReceiptKind, ReceiptStatus,
};
use onboard_payments::ports::{BillingCommit, BillingRepository, CommitError, GatewayLeftover};

use crate::cached::CachedExt;
use crate::error::retrying;

use super::commit::{commit_tx, with_next_charges};
use super::{AccountRow, ChargeRow, FoundRow, PgBillingStore};

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

/// The account of group `$1`.
const ACCOUNT: &str =
    concat!("SELECT ", account_columns!(), " FROM billing_accounts WHERE group_id = $1");

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
        retrying!("writing a billing change", commit_tx(&mut conn, commit))
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
        let rows: Vec<AccountRow> = diesel::sql_query(crate::repos::billing_events::TRIALS_ENDING)
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

    async fn record_trial_ending(
        &self,
        group: GroupId,
        trial_ends_at: DateTime<Utc>,
        days: u32,
        events: &[onboard_kernel::events::Event],
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        crate::repos::billing_events::record_trial_ending(
            &mut conn,
            group,
            trial_ends_at,
            days,
            events,
        )
        .await
        .context("recording a trial's end")
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
