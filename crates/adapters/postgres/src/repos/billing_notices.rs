//! Billing notifications on PostgreSQL: the notices of a billing change, of a usage
//! increment and of a trial's end, created inside the transaction of the change (tables
//! `billing_trial_notices` and `billing_usage_notices` of migration 000090 keep what was
//! notified, so that each is sent once).

use chrono::{DateTime, SubsecRound as _, Utc};
use diesel::sql_types::{Integer, Nullable, SmallInt, Text, Timestamptz, Uuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::GroupId;
use onboard_payments::notices::{BillingNotice, NOTIFIED_PERMISSION, usage_notices};

use crate::cached::CachedExt;

/// Notifies the active members of group `$1` holding permission `$2` of a notice of type `$3`
/// titled `$4`, with body `$5` and link `$6` whose `{group}` and `{slug}` are filled in here,
/// created at `$7`, expiring at `$8`. No row when the group is gone.
const NOTIFY: &str = "
    SELECT notify_group_permission(g.id, $2, $3, $4, replace($5, '{group}', g.name),
        replace($6, '{slug}', g.slug), $7, $8) AS count
    FROM groups g WHERE g.id = $1";

/// Records that threshold `$4` % of counter (`$1`, `$2`, `$3`) was notified; a row only the
/// first time.
const RECORD_USAGE_NOTICE: &str = "
    INSERT INTO billing_usage_notices (group_id, metric, period_start, percent)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT ON CONSTRAINT billing_usage_notices_pkey DO NOTHING";

/// Records that the trial of group `$1` ending at `$2` was noticed `$3` days before, when the
/// account is still trialing with that end (its row share-locked, so a concurrent change of the
/// account is seen); a row only the first time.
const RECORD_TRIAL_NOTICE: &str = "
    INSERT INTO billing_trial_notices (group_id, trial_ends_at, days)
    SELECT $1, $2, $3 FROM billing_accounts
    WHERE group_id = $1 AND status = 'trialing' AND trial_ends_at = $2
    FOR SHARE
    ON CONFLICT ON CONSTRAINT billing_trial_notices_pkey DO NOTHING";

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

/// Notifies the holders of `billing.manage` in `group` of each of `notices`, on `conn` and
/// inside its transaction; they expire `ttl_secs` after now.
pub(crate) async fn notify(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    notices: &[BillingNotice],
    ttl_secs: i64,
) -> diesel::QueryResult<()> {
    let now = Utc::now().trunc_subsecs(6);
    let expires_at = now + chrono::Duration::seconds(ttl_secs);
    for notice in notices {
        let text = notice.text();
        diesel::sql_query(NOTIFY)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Text, _>(NOTIFIED_PERMISSION)
            .bind::<Text, _>(text.kind.as_str())
            .bind::<Text, _>(&text.title)
            .bind::<Text, _>(&text.body)
            .bind::<Nullable<Text>, _>(text.link.as_deref())
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(expires_at)
            .cached()
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Notifies the usage thresholds an increment of counter (`group`, `metric`, `period_start`)
/// from `before` to `after` crossed against `limit`, each once per counter and percent, inside
/// the increment's transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn notify_usage(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    metric: &str,
    period_start: DateTime<Utc>,
    before: i64,
    after: i64,
    limit: Option<i64>,
    ttl_secs: i64,
) -> diesel::QueryResult<()> {
    for notice in usage_notices(metric, before, after, limit) {
        let BillingNotice::UsageThreshold { percent, .. } = &notice else { continue };
        let first = diesel::sql_query(RECORD_USAGE_NOTICE)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Text, _>(metric)
            .bind::<Timestamptz, _>(period_start)
            .bind::<SmallInt, _>(i16::from(*percent))
            .cached()
            .execute(conn)
            .await?;
        if first == 1 {
            notify(conn, group, std::slice::from_ref(&notice), ttl_secs).await?;
        }
    }
    Ok(())
}

/// Records the trial-ending notice (`group`, `trial_ends_at`, `days`) and notifies of it,
/// inside `conn`'s transaction, unless it was recorded before or the trial is no longer that
/// one. Answers whether it notified.
pub(crate) async fn notify_trial_ending(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    trial_ends_at: DateTime<Utc>,
    days: u32,
    notice: &BillingNotice,
    ttl_secs: i64,
) -> diesel::QueryResult<bool> {
    let first = diesel::sql_query(RECORD_TRIAL_NOTICE)
        .bind::<Uuid, _>(group.as_uuid())
        .bind::<Timestamptz, _>(trial_ends_at)
        .bind::<Integer, _>(i32::try_from(days).unwrap_or(i32::MAX))
        .cached()
        .execute(conn)
        .await?;
    if first == 0 {
        return Ok(false);
    }
    notify(conn, group, std::slice::from_ref(notice), ttl_secs).await?;
    Ok(true)
}
