//! The outbox of domain events on PostgreSQL: how write repositories store the events of a
//! change in its transaction, and [`PgEventFeed`], the [`EventFeed`] its consumers read.
//!
//! Events go in as ONE JSON array parameter ([`events_json`]), so any statement can store them
//! in a data-modifying CTE of its own ([`record_events!`]) without an extra round trip.
//!
//! The feed is ordered by (inserting transaction id, sequence) and hands out only the events of
//! transactions older than the oldest transaction of this database still running: an event
//! whose transaction commits late can never appear behind a position a consumer has already
//! passed. A write transaction left open for a long time therefore holds the feed back until
//! it ends (bounded by the statement and idle-in-transaction timeouts).

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, SmallInt, Text, Timestamptz, Uuid};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::GroupId;
use onboard_kernel::events::{Event, EventBatch, EventFeed, EventId, EventTypes, FeedPosition};

use crate::PgPool;
use crate::cached::CachedExt;

/// An `INSERT INTO outbox` of the events in the JSON array parameter `$param` (made by
/// [`events_json`]); usable as a data-modifying CTE (`events AS (record_events!("$5") ...)`).
macro_rules! record_events {
    ($param:literal) => {
        concat!(
            "INSERT INTO outbox (id, type, aggregate_type, aggregate_id, group_id, payload, \
             occurred_at, version) \
             SELECT (e->>'id')::uuid, e->>'type', e->>'aggregate_type', \
             (e->>'aggregate_id')::uuid, (e->>'group_id')::uuid, e->'payload', \
             (e->>'occurred_at')::timestamptz, (e->>'version')::smallint \
             FROM jsonb_array_elements(",
            $param,
            "::jsonb) e"
        )
    };
}
pub(crate) use record_events;

/// Stores events of the caller's transaction in a statement of their own.
const RECORD: &str = record_events!("$1");

/// The events as the JSON array [`record_events!`] reads, written straight from the records
/// (no intermediate JSON values: this runs on every write path that records events).
pub(crate) fn events_json(events: &[Event]) -> String {
    use std::fmt::Write as _;
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    let mut json = String::with_capacity(events.len() * 320 + 2);
    json.push('[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let group = e.group.map_or_else(|| "null".to_owned(), |g| format!("\"{g}\""));
        // Writing to a String cannot fail.
        let _ = write!(
            json,
            r#"{{"id":"{}","type":{},"aggregate_type":{},"aggregate_id":"{}","group_id":{},"payload":{},"occurred_at":"{}","version":{}}}"#,
            e.id.as_uuid(),
            quoted(&e.event_type),
            quoted(&e.aggregate_type),
            e.aggregate_id,
            group,
            e.payload,
            e.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            e.version,
        );
    }
    json.push(']');
    json
}

/// Stores `events` on `conn`, inside whatever transaction it is in; nothing when there are
/// none.
///
/// # Errors
/// When the database refuses.
pub async fn record(conn: &mut AsyncPgConnection, events: &[Event]) -> diesel::QueryResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    diesel::sql_query(RECORD).bind::<Text, _>(events_json(events)).cached().execute(conn).await?;
    Ok(())
}

/// `horizon AS (...)`: the feed's horizon, a CTE with one row and one column, `txid`: events
/// of transactions below it are the only ones handed out (see [`READ`]).
macro_rules! horizon_cte {
    () => {
        "horizon AS (
        SELECT coalesce(
            min(x.xid::text::bigint),
            pg_snapshot_xmax(pg_current_snapshot())::text::bigint
        ) AS txid
        FROM pg_snapshot_xip(pg_current_snapshot()) AS x (xid)
        WHERE NOT EXISTS (
            SELECT FROM pg_stat_activity a
            WHERE a.datname <> current_database()
                AND a.backend_xid::text::bigint = x.xid::text::bigint % 4294967296
        )
    )"
    };
}
pub(crate) use horizon_cte;

/// Consumer `$1`'s position, the position of the last event it could be handed now (`last_*`),
/// then up to `$2` events after its position, from transactions that have all ended, of the
/// types `$3` matches (every type when it is null; see [`EventTypes`]). One row with null event
/// columns when there is none.
///
/// The horizon is the oldest transaction this statement's snapshot saw running, leaving out
/// those running in another database of the cluster (their rows can never be ours; a shared
/// cluster's `CREATE DATABASE` would otherwise hold every feed back). A transaction that ended
/// between the snapshot and the look at `pg_stat_activity` counts as ours: the horizon is only
/// ever too early, never too late. Every row below the horizon is committed for good (a
/// transaction that has not started yet gets a later id), so when fewer than `$2` rows match,
/// the consumer may move to `last_*`: nothing can ever appear before it.
const READ: &str = concat!(
    "
    WITH pos AS (
        SELECT coalesce(max(txid), 0) AS txid, coalesce(max(seq), 0) AS seq
        FROM outbox_consumers WHERE name = $1
    ), ",
    horizon_cte!(),
    "
    SELECT pos.txid AS from_txid, pos.seq AS from_seq, l.txid AS last_txid, l.seq AS last_seq,
        o.id, o.txid, o.seq, o.type AS event_type, o.aggregate_type, o.aggregate_id,
        o.group_id, o.payload::text AS payload, o.occurred_at, o.version
    FROM pos CROSS JOIN horizon LEFT JOIN LATERAL (
        SELECT txid, seq FROM outbox
        WHERE (txid, seq) > (pos.txid, pos.seq) AND txid < horizon.txid
        ORDER BY txid DESC, seq DESC
        LIMIT 1
    ) l ON true LEFT JOIN LATERAL (
        SELECT * FROM outbox
        WHERE (txid, seq) > (pos.txid, pos.seq) AND txid < horizon.txid
            AND ($3::text[] IS NULL OR type = ANY ($3) OR EXISTS (
                SELECT FROM unnest($3::text[]) AS p (pattern)
                WHERE right(p.pattern, 1) = '.' AND starts_with(type, p.pattern)
            ))
        ORDER BY txid, seq
        LIMIT $2
    ) o ON true
    ORDER BY o.txid, o.seq"
);

/// Moves consumer `$1` from (`$2`, `$3`) to (`$4`, `$5`) if it is still there (a consumer
/// without a row is at the start).
const ADVANCE: &str = "
    INSERT INTO outbox_consumers AS c (name, txid, seq, updated_at) VALUES ($1, $4, $5, now())
    ON CONFLICT (name) DO UPDATE SET txid = EXCLUDED.txid, seq = EXCLUDED.seq, updated_at = now()
    WHERE c.txid = $2 AND c.seq = $3";

/// Deletes the events whose id (a UUID v7) is below `$1`, the smallest id of an instant: the
/// events recorded before it, through the primary key.
const PURGE: &str = "DELETE FROM outbox WHERE id < $1";

/// The smallest UUID v7 of the millisecond of `at`.
pub(crate) fn first_id_at(at: DateTime<Utc>) -> uuid::Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    uuid::Uuid::from_bytes(bytes)
}

#[derive(Debug, QueryableByName)]
pub(crate) struct FeedRow {
    #[diesel(sql_type = BigInt)]
    from_txid: i64,
    #[diesel(sql_type = BigInt)]
    from_seq: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_txid: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_seq: Option<i64>,
    #[diesel(sql_type = Nullable<Uuid>)]
    id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<BigInt>)]
    txid: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    event_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    aggregate_type: Option<String>,
    #[diesel(sql_type = Nullable<Uuid>)]
    aggregate_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Uuid>)]
    group_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    payload: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    occurred_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    version: Option<i16>,
}

impl FeedRow {
    /// The event and its position; `None` for the row that only carries the position.
    pub(crate) fn into_event(self) -> anyhow::Result<Option<(FeedPosition, Event)>> {
        let (Some(id), Some(txid), Some(seq)) = (self.id, self.txid, self.seq) else {
            return Ok(None);
        };
        let missing = || anyhow::anyhow!("outbox row {id} has a null column");
        let payload = self.payload.ok_or_else(missing)?;
        let event = Event {
            id: EventId::from_uuid(id),
            event_type: self.event_type.ok_or_else(missing)?,
            aggregate_type: self.aggregate_type.ok_or_else(missing)?,
            aggregate_id: self.aggregate_id.ok_or_else(missing)?,
            group: self.group_id.map(GroupId::from_uuid),
            payload: serde_json::from_str(&payload).context("an outbox payload")?,
            occurred_at: self.occurred_at.ok_or_else(missing)?,
            version: u16::try_from(self.version.ok_or_else(missing)?).unwrap_or(0),
        };
        Ok(Some((FeedPosition { txid, seq }, event)))
    }
}

/// Reads `consumer`'s next batch of the `types` it reads on `conn`.
pub(crate) async fn read(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    limit: u32,
    types: EventTypes,
) -> anyhow::Result<EventBatch> {
    let limit = limit.max(1);
    let patterns = types.patterns().map(|p| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    let rows: Vec<FeedRow> = diesel::sql_query(READ)
        .bind::<Text, _>(consumer)
        .bind::<Integer, _>(i32::try_from(limit).unwrap_or(i32::MAX))
        .bind::<Nullable<Array<Text>>, _>(patterns)
        .cached()
        .load(conn)
        .await
        .context("reading the outbox")?;
    let (from, last) = <[FeedRow]>::first(&rows).map_or((FeedPosition::START, None), |r| {
        let from = FeedPosition { txid: r.from_txid, seq: r.from_seq };
        let last = r.last_txid.zip(r.last_seq).map(|(txid, seq)| FeedPosition { txid, seq });
        (from, last)
    });
    let mut to = from;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some((position, event)) = row.into_event()? {
            to = position;
            events.push(event);
        }
    }
    if events.len() < limit as usize {
        to = last.map_or(to, |last| last.max(to));
    }
    Ok(EventBatch { consumer: consumer.to_owned(), from, to, events })
}

/// Moves `consumer` from `from` to `to` on `conn` (inside the caller's transaction, if any);
/// `false` when another instance moved it first.
pub(crate) async fn advance(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    from: FeedPosition,
    to: FeedPosition,
) -> diesel::QueryResult<bool> {
    let moved = diesel::sql_query(ADVANCE)
        .bind::<Text, _>(consumer)
        .bind::<BigInt, _>(from.txid)
        .bind::<BigInt, _>(from.seq)
        .bind::<BigInt, _>(to.txid)
        .bind::<BigInt, _>(to.seq)
        .cached()
        .execute(conn)
        .await?;
    Ok(moved == 1)
}

/// [`EventFeed`] on PostgreSQL.
#[derive(Clone)]
pub struct PgEventFeed {
    pool: PgPool,
}

impl fmt::Debug for PgEventFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgEventFeed").finish_non_exhaustive()
    }
}

impl PgEventFeed {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("getting a database connection")
    }
}

#[async_trait]
impl EventFeed for PgEventFeed {
    async fn read_matching(
        &self,
        consumer: &str,
        limit: u32,
        types: EventTypes,
    ) -> anyhow::Result<EventBatch> {
        let mut conn = self.conn().await?;
        read(&mut conn, consumer, limit, types).await
    }

    async fn advance(
        &self,
        consumer: &str,
        from: FeedPosition,
        to: FeedPosition,
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        advance(&mut conn, consumer, from, to).await.context("moving a consumer's position")
    }

    async fn purge(&self, before: DateTime<Utc>) -> anyhow::Result<u64> {
        let mut conn = self.conn().await?;
        let deleted = diesel::sql_query(PURGE)
            .bind::<Uuid, _>(first_id_at(before))
            .cached()
            .execute(&mut conn)
            .await
            .context("purging old events")?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn the_events_json_reads_back_as_the_records_fields() {
        use onboard_kernel::events::{Aggregate, DomainEvent};
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(tag = "type", content = "data")]
        enum Ev {
            #[serde(rename = "test.\"quoted\"")]
            Ev { note: String },
        }
        impl DomainEvent for Ev {
            fn aggregate(&self) -> Aggregate {
                Aggregate::new("thing", uuid::Uuid::from_u128(7))
            }
            fn group(&self) -> Option<GroupId> {
                Some(GroupId::from_uuid(uuid::Uuid::from_u128(9)))
            }
        }
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().unwrap_or_default();
        let events = [Event::record(&Ev::Ev { note: "a \"b\"\n".to_owned() }, at)];

        let json: serde_json::Value =
            serde_json::from_str(&events_json(&events)).expect("valid JSON");

        let row = &json[0];
        assert_eq!(row["id"], events[0].id.as_uuid().to_string());
        assert_eq!(row["type"], "test.\"quoted\"");
        assert_eq!(row["aggregate_type"], "thing");
        assert_eq!(row["aggregate_id"], uuid::Uuid::from_u128(7).to_string());
        assert_eq!(row["group_id"], uuid::Uuid::from_u128(9).to_string());
        assert_eq!(row["payload"]["note"], "a \"b\"\n");
        assert_eq!(row["occurred_at"], "2026-12-07T09:00:00.000000Z");
        assert_eq!(row["version"], 1);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&events_json(&[])).ok(),
            Some(serde_json::json!([]))
        );
    }

    #[test]
    fn the_first_id_of_an_instant_sorts_between_the_ids_made_before_and_after_it() {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().unwrap_or_default();
        let floor = first_id_at(at);
        assert_eq!(floor.get_version_num(), 7);
        let millis = |id: uuid::Uuid| id.get_timestamp().map(|t| t.to_unix());
        assert_eq!(millis(floor), Some((at.timestamp().try_into().unwrap_or(0), 0)));
        let before = first_id_at(at - chrono::Duration::milliseconds(1));
        let after = first_id_at(at + chrono::Duration::milliseconds(1));
        assert!(before < floor && floor < after);
    }
}
