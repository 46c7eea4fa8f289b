//! [`UsageRepository`] on PostgreSQL: usage counters that never pass the limit.

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use onboard_kernel::GroupId;
use onboard_payments::ports::{IncrementError, UsageRepository};

use crate::cached::CachedExt;

use super::PgBillingStore;

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
        // The thresholds it crosses are recorded, with their events, in the increment's
        // transaction.
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
                    crate::repos::billing_events::record_usage(
                        conn,
                        group,
                        metric,
                        period_start,
                        row.used - delta,
                        row.used,
                        limit,
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
