//! Billing events on PostgreSQL that storage records once: the thresholds of a usage
//! increment and the trial-ending notices (tables `billing_usage_notices` and
//! `billing_trial_notices` of migration 000090 keep what was recorded), each stored in the
//! outbox in the same statement as its dedupe row, only when that row is new.

use chrono::{DateTime, SubsecRound as _, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, SmallInt, Text, Timestamptz, Uuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::GroupId;
use onboard_kernel::events::Event;
use onboard_payments::events::{BillingEvent, usage_events};

use crate::cached::CachedExt;
use crate::repos::outbox::{events_json, record_events};

/// Records that threshold `$4` % of counter (`$1`, `$2`, `$3`) was reached, and stores the
/// events `$5` when that row is new. Answers how many rows were new (0 or 1).
const RECORD_USAGE: &str = concat!(
    "WITH new AS (
        INSERT INTO billing_usage_notices (group_id, metric, period_start, percent)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT ON CONSTRAINT billing_usage_notices_pkey DO NOTHING
        RETURNING 1
    ), events AS (",
    record_events!("$5"),
    " WHERE EXISTS (SELECT FROM new))
    SELECT count(*) AS count FROM new"
);

/// Records that the trial of group `$1` ending at `$2` was told `$3` days before, when the
/// account is still trialing with that end (its row share-locked, so a concurrent change of the
/// account is seen), and stores the events `$4` when that row is new. Answers how many rows
/// were new (0 or 1).
const RECORD_TRIAL: &str = concat!(
    "WITH new AS (
        INSERT INTO billing_trial_notices (group_id, trial_ends_at, days)
        SELECT $1, $2, $3 FROM billing_accounts
        WHERE group_id = $1 AND status = 'trialing' AND trial_ends_at = $2
        FOR SHARE
        ON CONFLICT ON CONSTRAINT billing_trial_notices_pkey DO NOTHING
        RETURNING 1
    ), events AS (",
    record_events!("$4"),
    " WHERE EXISTS (SELECT FROM new))
    SELECT count(*) AS count FROM new"
);

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Up to `$4` trialing accounts whose trial ends in (`$1`, `$2`], after (`$3` end, `$5`
/// group) in (end, group) order when `$3` is not null.
pub(crate) const TRIALS_ENDING: &str = "
    SELECT a.group_id, a.plan_code, a.interval, a.addons, a.status, a.trial_ends_at,
        a.current_period_start, a.current_period_end, a.cancel_at_period_end, a.trial_used,
        a.pay_hour, a.next_charge, a.version
    FROM billing_accounts a
    WHERE a.status = 'trialing' AND a.trial_ends_at > $1 AND a.trial_ends_at <= $2
        AND ($3::timestamptz IS NULL OR (a.trial_ends_at, a.group_id) > ($3, $5))
    ORDER BY a.trial_ends_at, a.group_id
    LIMIT $4";

/// Records the usage thresholds an increment of counter (`group`, `metric`, `period_start`)
/// from `before` to `after` crossed against `limit` ([`usage_events`]), each once per counter
/// and percent, with its event, inside the increment's transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_usage(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    metric: &str,
    period_start: DateTime<Utc>,
    before: i64,
    after: i64,
    limit: Option<i64>,
) -> diesel::QueryResult<()> {
    let now = Utc::now().trunc_subsecs(6);
    for event in usage_events(group, metric, before, after, limit) {
        let BillingEvent::UsageThreshold { percent, .. } = &event else { continue };
        let _: CountRow = diesel::sql_query(RECORD_USAGE)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Text, _>(metric)
            .bind::<Timestamptz, _>(period_start)
            .bind::<SmallInt, _>(i16::from(*percent))
            .bind::<Text, _>(events_json(&[Event::record(&event, now)]))
            .cached()
            .get_result(conn)
            .await?;
    }
    Ok(())
}

/// Records the trial-ending notice (`group`, `trial_ends_at`, `days`) with `events`, inside
/// `conn`'s transaction, unless it was recorded before or the trial is no longer that one.
/// Answers whether it recorded.
pub(crate) async fn record_trial_ending(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    trial_ends_at: DateTime<Utc>,
    days: u32,
    events: &[Event],
) -> diesel::QueryResult<bool> {
    let new: CountRow = diesel::sql_query(RECORD_TRIAL)
        .bind::<Uuid, _>(group.as_uuid())
        .bind::<Timestamptz, _>(trial_ends_at)
        .bind::<Integer, _>(i32::try_from(days).unwrap_or(i32::MAX))
        .bind::<Text, _>(events_json(events))
        .cached()
        .get_result(conn)
        .await?;
    Ok(new.count > 0)
}
