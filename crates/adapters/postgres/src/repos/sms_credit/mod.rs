//! SMS credit on PostgreSQL: [`apply`], the statement that runs inside other repositories'
//! transactions and the one way any code changes a group's balance (see `sms_credit_apply` in
//! the migration), and the store of wallets, ledger and purchases ([`PgSmsCreditStore`]).

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::GroupId;
use onboard_kernel::events::Event;
use onboard_payments::events::low_credit_events;
use onboard_payments::sms_credit::CreditReason;

use crate::cached::CachedExt;

mod store;

pub use store::PgSmsCreditStore;

/// Applies a delta and appends its ledger entry; NULL when a debit is not covered.
const APPLY: &str = "
    SELECT sms_credit_apply($1, $2, $3, $4, $5, interval '0') AS balance";

#[derive(QueryableByName)]
struct BalanceRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    balance: Option<i64>,
}

/// Applies `delta` KRW to `group`'s SMS credit on `conn`, inside its transaction, and appends
/// the ledger entry (`reason`, `reference`, `at`). Answers the new balance, or `None` when a
/// debit is more than the balance (nothing changed: refuse what it would have paid for).
///
/// A debit stores, in the same transaction, the events of
/// [`low_credit_events`]`(group, balance before, balance after)` in the outbox (the
/// `sms_credit.low` event when it crossed below 1,000 KRW: a second statement only then); one
/// that crosses below the wallet's auto top-up threshold marks the wallet for the top-up job.
/// A credit creates the wallet if needed. (The SQL function's last argument, a notification
/// lifetime, is no longer used since migration 000137.)
///
/// # Errors
/// When the database refuses (a zero `delta` included).
pub async fn apply(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    delta: i64,
    reason: CreditReason,
    reference: Option<&str>,
    at: DateTime<Utc>,
) -> diesel::QueryResult<Option<i64>> {
    let row: BalanceRow = diesel::sql_query(APPLY)
        .bind::<Uuid, _>(group.as_uuid())
        .bind::<BigInt, _>(delta)
        .bind::<Text, _>(reason.as_str())
        .bind::<Nullable<Text>, _>(reference)
        .bind::<Timestamptz, _>(at)
        .cached()
        .get_result(conn)
        .await?;
    if let Some(after) = row.balance {
        let events = low_credit_events(group, after - delta, after);
        crate::repos::outbox::record(conn, &Event::records(&events, at)).await?;
    }
    Ok(row.balance)
}
