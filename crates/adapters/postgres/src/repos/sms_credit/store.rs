//! [`SmsCreditRepository`] on PostgreSQL ([`PgSmsCreditStore`]): wallets and ledger (migration
//! 000070) and purchases (000071). A purchase's outcome is one transaction: the purchase row
//! (locked by its `WHERE status = 'pending'` update, so of two settlements one wins), the
//! credit through `sms_credit_apply`, the receipt and, for an auto top-up, the cleared request
//! (and the events the service decided: `sms_credit.purchased`, `sms_credit.topup_failed`).

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::GroupId;
use onboard_kernel::events::Event;
use onboard_payments::model::{CardId, CustomerUid, MerchantUid, Receipt};
use onboard_payments::sms_credit::{
    AutoTopup, CompletePurchaseError, CreditPurchase, CreditReason, DueTopup, LedgerEntry,
    PurchaseStatus, SmsCreditRepository, Wallet,
};

use crate::PgPool;
use crate::cached::CachedExt;
use crate::error::TxError;

const WALLET: &str = "
    SELECT balance, auto_topup_below, auto_topup_amount, topup_requested_at
    FROM sms_credit_wallets WHERE group_id = $1";

/// Up to `$3` entries of group `$1` with an id below `$2` (any when NULL), newest first.
const LEDGER: &str = "
    SELECT id, delta, balance, reason, reference, at FROM sms_credit_ledger
    WHERE group_id = $1 AND ($2::bigint IS NULL OR id < $2)
    ORDER BY id DESC LIMIT $3";

/// Sets (or, with NULLs, clears, dropping a pending request) the auto top-up of group `$1`.
const SET_AUTO_TOPUP: &str = "
    INSERT INTO sms_credit_wallets AS w (group_id, balance, auto_topup_below, auto_topup_amount,
        updated_at)
    VALUES ($1, 0, $2, $3, $4)
    ON CONFLICT (group_id) DO UPDATE SET auto_topup_below = $2, auto_topup_amount = $3,
        updated_at = $4,
        topup_requested_at = CASE WHEN $2::bigint IS NULL THEN NULL ELSE w.topup_requested_at END";

const BEGIN: &str = "
    INSERT INTO sms_credit_purchases (merchant_uid, group_id, amount, reason, card_id,
        customer_uid, status, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (merchant_uid) DO NOTHING";

macro_rules! purchase_columns {
    () => {
        "merchant_uid, group_id, amount, reason, card_id, customer_uid, status, created_at"
    };
}

const PURCHASE: &str =
    concat!("SELECT ", purchase_columns!(), " FROM sms_credit_purchases WHERE merchant_uid = $1");

const PENDING: &str = concat!(
    "SELECT ",
    purchase_columns!(),
    " FROM sms_credit_purchases WHERE status = 'pending' AND created_at < $1
    ORDER BY created_at LIMIT $2"
);

/// Settles pending purchase `$1` with status `$2` (and failure reason `$3`).
const SETTLE: &str = "
    UPDATE sms_credit_purchases SET status = $2, failure_reason = $3
    WHERE merchant_uid = $1 AND status = 'pending'
    RETURNING group_id, amount, reason";

const CLEAR_REQUEST: &str =
    "UPDATE sms_credit_wallets SET topup_requested_at = NULL WHERE group_id = $1";

const DUE: &str = "
    SELECT group_id, auto_topup_amount, topup_requested_at FROM sms_credit_wallets
    WHERE topup_requested_at IS NOT NULL AND auto_topup_amount IS NOT NULL
    ORDER BY topup_requested_at LIMIT $1";

#[derive(QueryableByName)]
struct WalletRow {
    #[diesel(sql_type = BigInt)]
    balance: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    auto_topup_below: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    auto_topup_amount: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    topup_requested_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct LedgerRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    delta: i64,
    #[diesel(sql_type = BigInt)]
    balance: i64,
    #[diesel(sql_type = Text)]
    reason: String,
    #[diesel(sql_type = Nullable<Text>)]
    reference: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct PurchaseRow {
    #[diesel(sql_type = Text)]
    merchant_uid: String,
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = Text)]
    reason: String,
    #[diesel(sql_type = Nullable<Uuid>)]
    card_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    customer_uid: Option<String>,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct SettledRow {
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = Text)]
    reason: String,
}

#[derive(QueryableByName)]
struct DueRow {
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    auto_topup_amount: i64,
    #[diesel(sql_type = Timestamptz)]
    topup_requested_at: DateTime<Utc>,
}

fn reason_of(raw: &str) -> anyhow::Result<CreditReason> {
    CreditReason::parse(raw).ok_or_else(|| anyhow::anyhow!("unknown credit reason {raw:?}"))
}

impl TryFrom<PurchaseRow> for CreditPurchase {
    type Error = anyhow::Error;

    fn try_from(row: PurchaseRow) -> anyhow::Result<Self> {
        Ok(Self {
            merchant_uid: MerchantUid::from_trusted(row.merchant_uid),
            group: GroupId::from_uuid(row.group_id),
            amount: row.amount,
            reason: reason_of(&row.reason)?,
            card: row
                .card_id
                .zip(row.customer_uid)
                .map(|(id, uid)| (CardId::from_uuid(id), CustomerUid::from_trusted(uid))),
            status: PurchaseStatus::parse(&row.status)
                .ok_or_else(|| anyhow::anyhow!("unknown purchase status {:?}", row.status))?,
            created_at: row.created_at,
        })
    }
}

/// SMS credit storage in PostgreSQL.
#[derive(Clone)]
pub struct PgSmsCreditStore {
    pool: PgPool,
}

impl fmt::Debug for PgSmsCreditStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSmsCreditStore").field("pool", &self.pool.status()).finish()
    }
}

impl PgSmsCreditStore {
    /// A store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

async fn complete_tx(
    conn: &mut AsyncPgConnection,
    merchant_uid: &MerchantUid,
    receipt: &Receipt,
    events: &[Event],
) -> Result<i64, TxError<CompletePurchaseError>> {
    conn.transaction(async |conn| {
        let settled: Option<SettledRow> = diesel::sql_query(SETTLE)
            .bind::<Text, _>(merchant_uid.as_str())
            .bind::<Text, _>(PurchaseStatus::Paid.as_str())
            .bind::<Nullable<Text>, _>(None::<&str>)
            .cached()
            .get_result(conn)
            .await
            .optional()?;
        let Some(settled) = settled else {
            return Err(TxError::Refused(CompletePurchaseError::NotPending));
        };
        let reason = reason_of(&settled.reason)
            .map_err(|e| TxError::Refused(CompletePurchaseError::Unexpected(e)))?;
        let group = GroupId::from_uuid(settled.group_id);
        let balance = crate::repos::sms_credit::apply(
            conn,
            group,
            settled.amount,
            reason,
            Some(merchant_uid.as_str()),
            receipt.created_at,
        )
        .await?
        .ok_or_else(|| {
            TxError::Refused(CompletePurchaseError::Unexpected(anyhow::anyhow!(
                "a credit was refused"
            )))
        })?;
        if !crate::repos::billing::insert_receipt(conn, receipt).await? {
            return Err(TxError::Refused(CompletePurchaseError::NotPending));
        }
        if reason == CreditReason::AutoTopup {
            diesel::sql_query(CLEAR_REQUEST)
                .bind::<Uuid, _>(group.as_uuid())
                .cached()
                .execute(conn)
                .await?;
        }
        crate::repos::outbox::record(conn, events).await?;
        Ok(balance)
    })
    .await
}

async fn fail_tx(
    conn: &mut AsyncPgConnection,
    merchant_uid: &MerchantUid,
    reason: &str,
    events: &[Event],
) -> diesel::QueryResult<bool> {
    conn.transaction(async |conn| {
        let settled: Option<SettledRow> = diesel::sql_query(SETTLE)
            .bind::<Text, _>(merchant_uid.as_str())
            .bind::<Text, _>(PurchaseStatus::Failed.as_str())
            .bind::<Nullable<Text>, _>(Some(reason))
            .cached()
            .get_result(conn)
            .await
            .optional()?;
        let Some(settled) = settled else { return Ok(false) };
        if settled.reason == CreditReason::AutoTopup.as_str() {
            diesel::sql_query(CLEAR_REQUEST)
                .bind::<Uuid, _>(settled.group_id)
                .cached()
                .execute(conn)
                .await?;
        }
        crate::repos::outbox::record(conn, events).await?;
        Ok(true)
    })
    .await
}

#[async_trait]
impl SmsCreditRepository for PgSmsCreditStore {
    async fn wallet(&self, group: GroupId) -> anyhow::Result<Wallet> {
        let mut conn = self.conn().await?;
        let row: Option<WalletRow> = diesel::sql_query(WALLET)
            .bind::<Uuid, _>(group.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading an SMS credit wallet")?;
        Ok(row
            .map(|r| Wallet {
                balance: r.balance,
                auto_topup: r
                    .auto_topup_below
                    .zip(r.auto_topup_amount)
                    .map(|(below, amount)| AutoTopup { below, amount }),
                topup_requested_at: r.topup_requested_at,
            })
            .unwrap_or_default())
    }

    async fn ledger(
        &self,
        group: GroupId,
        before: Option<i64>,
        limit: u32,
    ) -> anyhow::Result<Vec<LedgerEntry>> {
        let mut conn = self.conn().await?;
        let rows: Vec<LedgerRow> = diesel::sql_query(LEDGER)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Nullable<BigInt>, _>(before)
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("reading the SMS credit ledger")?;
        rows.into_iter()
            .map(|r| {
                Ok(LedgerEntry {
                    id: r.id,
                    delta: r.delta,
                    balance: r.balance,
                    reason: reason_of(&r.reason)?,
                    reference: r.reference,
                    at: r.at,
                })
            })
            .collect()
    }

    async fn set_auto_topup(
        &self,
        group: GroupId,
        auto_topup: Option<AutoTopup>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        diesel::sql_query(SET_AUTO_TOPUP)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Nullable<BigInt>, _>(auto_topup.map(|t| t.below))
            .bind::<Nullable<BigInt>, _>(auto_topup.map(|t| t.amount))
            .bind::<Timestamptz, _>(now)
            .cached()
            .execute(&mut conn)
            .await
            .context("setting the auto top-up")?;
        Ok(())
    }

    async fn begin_purchase(&self, p: &CreditPurchase) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let n = diesel::sql_query(BEGIN)
            .bind::<Text, _>(p.merchant_uid.as_str())
            .bind::<Uuid, _>(p.group.as_uuid())
            .bind::<BigInt, _>(p.amount)
            .bind::<Text, _>(p.reason.as_str())
            .bind::<Nullable<Uuid>, _>(p.card.as_ref().map(|(id, _)| id.as_uuid()))
            .bind::<Nullable<Text>, _>(p.card.as_ref().map(|(_, uid)| uid.as_str()))
            .bind::<Text, _>(p.status.as_str())
            .bind::<Timestamptz, _>(p.created_at)
            .cached()
            .execute(&mut conn)
            .await
            .context("recording an SMS credit purchase")?;
        Ok(n == 1)
    }

    async fn purchase(&self, merchant_uid: &MerchantUid) -> anyhow::Result<Option<CreditPurchase>> {
        let mut conn = self.conn().await?;
        let row: Option<PurchaseRow> = diesel::sql_query(PURCHASE)
            .bind::<Text, _>(merchant_uid.as_str())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading an SMS credit purchase")?;
        row.map(CreditPurchase::try_from).transpose()
    }

    async fn complete_purchase(
        &self,
        merchant_uid: &MerchantUid,
        receipt: &Receipt,
        events: &[Event],
    ) -> Result<i64, CompletePurchaseError> {
        let mut conn = self.conn().await?;
        match complete_tx(&mut conn, merchant_uid, receipt, events).await {
            Ok(balance) => Ok(balance),
            Err(TxError::Refused(e)) => Err(e),
            Err(TxError::Db(e)) => {
                Err(anyhow::Error::new(e).context("recording a paid SMS credit purchase").into())
            }
        }
    }

    async fn fail_purchase(
        &self,
        merchant_uid: &MerchantUid,
        reason: &str,
        _now: DateTime<Utc>,
        events: &[Event],
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        fail_tx(&mut conn, merchant_uid, reason, events)
            .await
            .context("recording a failed SMS credit purchase")
    }

    async fn pending_purchases(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<CreditPurchase>> {
        let mut conn = self.conn().await?;
        let rows: Vec<PurchaseRow> = diesel::sql_query(PENDING)
            .bind::<Timestamptz, _>(before)
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("reading pending SMS credit purchases")?;
        rows.into_iter().map(CreditPurchase::try_from).collect()
    }

    async fn due_topups(&self, limit: u32) -> anyhow::Result<Vec<DueTopup>> {
        let mut conn = self.conn().await?;
        let rows: Vec<DueRow> = diesel::sql_query(DUE)
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("reading due auto top-ups")?;
        Ok(rows
            .into_iter()
            .map(|r| DueTopup {
                group: GroupId::from_uuid(r.group_id),
                amount: r.auto_topup_amount,
                requested_at: r.topup_requested_at,
            })
            .collect())
    }
}
