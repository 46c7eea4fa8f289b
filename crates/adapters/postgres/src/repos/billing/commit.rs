//! One billing commit in one transaction: charges, receipt, account and the change's
//! events ([`BillingRepository::commit`], and the last step of a main-card change).
//!
//! [`BillingRepository::commit`]: onboard_payments::ports::BillingRepository::commit

use std::collections::HashMap;

use anyhow::Context as _;
use diesel::OptionalExtension as _;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Nullable, SmallInt, Text, Timestamptz, Uuid,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_payments::model::{Billing, Charge, ChargeStatus, Interval, MerchantUid};
use onboard_payments::ports::{BillingCommit, CommitError};

use crate::cached::CachedExt;
use crate::error::{TxError, violated_unique};

use super::{AccountRow, ChargeRow, IdRow, codes, insert_receipt};

/// The charges whose merchant_uid is in `$1`.
pub(super) const CHARGES_IN: &str =
    concat!("SELECT ", charge_columns!(), " FROM billing_charges WHERE merchant_uid = ANY($1)");

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

/// The accounts of `rows` with their next charges (one more query for all of them).
pub(super) async fn with_next_charges(
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

/// Inserts a charge of a commit; a merchant_uid that is taken is refused.
async fn insert_charge(
    conn: &mut AsyncPgConnection,
    c: &Charge,
) -> Result<(), TxError<CommitError>> {
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
    Ok(())
}

/// One attempt at [`BillingRepository::commit`] inside the caller's transaction.
pub(super) async fn commit_in(
    conn: &mut AsyncPgConnection,
    commit: &BillingCommit,
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
        insert_charge(conn, c).await?;
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
    // The change's events, in its transaction.
    crate::repos::outbox::record(conn, &commit.events).await?;
    Ok(())
}

pub(super) async fn commit_tx(
    conn: &mut AsyncPgConnection,
    commit: &BillingCommit,
) -> Result<(), TxError<CommitError>> {
    conn.transaction(async |conn| commit_in(conn, commit).await).await
}
