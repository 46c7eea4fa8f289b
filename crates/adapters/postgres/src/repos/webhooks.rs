//! Outgoing webhooks on PostgreSQL: [`PgWebhookStore`] is the [`EndpointRepository`], the
//! [`DeliveryRepository`] (deliveries are their own outbox, claimed with `FOR UPDATE SKIP
//! LOCKED` under a lease) and the [`EventLog`] of the events API (migration 000150).

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::GroupId;
use onboard_kernel::events::{Event, EventId, FeedPosition};
use onboard_webhooks::ports::{DeliveryRepository, EndpointRepository, EventLog};
use onboard_webhooks::{
    Attempt, AttemptRecord, Claim, Delivery, DeliveryId, DeliveryStatus, Endpoint, EndpointHealth,
    EndpointId, EndpointUrl, EventFilter, EventPage, NewDelivery, PreviousSecret, Scope,
    WebhookSecret,
};

use crate::PgPool;
use crate::cached::CachedExt;
use crate::repos::outbox::{self, FeedRow, first_id_at, horizon_cte, record_events};

mod sql;

use sql::*;

/// Webhook endpoints, deliveries and the events API in PostgreSQL.
#[derive(Clone)]
pub struct PgWebhookStore {
    pool: PgPool,
}

impl fmt::Debug for PgWebhookStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgWebhookStore").finish_non_exhaustive()
    }
}

impl PgWebhookStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

#[derive(Debug, QueryableByName)]
struct EndpointRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Uuid>)]
    group_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = Array<Text>)]
    filters: Vec<String>,
    #[diesel(sql_type = Bool)]
    enabled: bool,
    #[diesel(sql_type = Text)]
    secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    previous_secret: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    previous_expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    failing_since: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

impl From<EndpointRow> for Endpoint {
    fn from(r: EndpointRow) -> Self {
        Self {
            id: EndpointId::from_uuid(r.id),
            scope: Scope::of(r.group_id.map(GroupId::from_uuid)),
            url: EndpointUrl::from_trusted(r.url),
            description: r.description,
            filters: r.filters.iter().map(|f| EventFilter::from_trusted(f)).collect(),
            enabled: r.enabled,
            secret: WebhookSecret::from_trusted(r.secret),
            previous_secret: r.previous_secret.zip(r.previous_expires_at).map(
                |(secret, expires_at)| PreviousSecret {
                    secret: WebhookSecret::from_trusted(secret),
                    expires_at,
                },
            ),
            failing_since: r.failing_since,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, QueryableByName)]
struct DeliveryRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    endpoint_id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    event_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    next_attempt_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_attempt_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Integer>)]
    response_status: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    latency_ms: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    response: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl DeliveryRow {
    fn into_domain(self) -> anyhow::Result<Delivery> {
        let status = DeliveryStatus::parse(&self.status)
            .with_context(|| format!("unknown delivery status {:?}", self.status))?;
        Ok(Delivery {
            id: DeliveryId::from_uuid(self.id),
            endpoint: EndpointId::from_uuid(self.endpoint_id),
            event_id: EventId::from_uuid(self.event_id),
            event_type: self.event_type,
            status,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: self.next_attempt_at,
            last_attempt: self.last_attempt_at.map(|at| Attempt {
                at,
                response_status: self.response_status.and_then(|s| u16::try_from(s).ok()),
                latency_ms: self.latency_ms.and_then(|l| u32::try_from(l).ok()).unwrap_or(0),
                response: self.response.unwrap_or_default(),
            }),
            created_at: self.created_at,
        })
    }
}

#[derive(Debug, QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = Uuid)]
    delivery_id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    lease: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    event_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(embed)]
    endpoint: EndpointRow,
}

#[derive(Debug, QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(Debug, QueryableByName)]
struct AgeRow {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest: Option<DateTime<Utc>>,
}

fn scope_group(scope: Scope) -> Option<uuid::Uuid> {
    scope.group().map(|g| g.as_uuid())
}

fn limit_of(limit: u32) -> i64 {
    i64::from(limit.max(1))
}

/// Stores `deliveries` on `conn` (inside the caller's transaction): new ones, and with
/// `requeue` those already there put back to pending.
async fn insert_deliveries(
    conn: &mut AsyncPgConnection,
    deliveries: &[NewDelivery],
    requeue: bool,
) -> diesel::QueryResult<u64> {
    if deliveries.is_empty() {
        return Ok(0);
    }
    let ids: Vec<_> = deliveries.iter().map(|d| d.id.as_uuid()).collect();
    let endpoints: Vec<_> = deliveries.iter().map(|d| d.endpoint.as_uuid()).collect();
    let events: Vec<_> = deliveries.iter().map(|d| d.event_id.as_uuid()).collect();
    let types: Vec<_> = deliveries.iter().map(|d| d.event_type.clone()).collect();
    let bodies: Vec<_> = deliveries.iter().map(|d| d.body.clone()).collect();
    let due: Vec<_> = deliveries.iter().map(|d| d.due_at).collect();
    let n = diesel::sql_query(if requeue { REQUEUE } else { INSERT })
        .bind::<Array<Uuid>, _>(ids)
        .bind::<Array<Uuid>, _>(endpoints)
        .bind::<Array<Uuid>, _>(events)
        .bind::<Array<Text>, _>(types)
        .bind::<Array<Text>, _>(bodies)
        .bind::<Array<Timestamptz>, _>(due)
        .cached()
        .execute(conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[async_trait]
impl EndpointRepository for PgWebhookStore {
    async fn create(&self, e: &Endpoint) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        let previous = e.previous_secret.as_ref();
        diesel::sql_query(CREATE_ENDPOINT)
            .bind::<Uuid, _>(e.id.as_uuid())
            .bind::<Nullable<Uuid>, _>(scope_group(e.scope))
            .bind::<Text, _>(e.url.as_str())
            .bind::<Text, _>(&e.description)
            .bind::<Array<Text>, _>(e.filters.iter().map(EventFilter::to_text).collect::<Vec<_>>())
            .bind::<Bool, _>(e.enabled)
            .bind::<Text, _>(e.secret.expose())
            .bind::<Nullable<Text>, _>(previous.map(|p| p.secret.expose().to_owned()))
            .bind::<Nullable<Timestamptz>, _>(previous.map(|p| p.expires_at))
            .bind::<Timestamptz, _>(e.created_at)
            .bind::<Timestamptz, _>(e.updated_at)
            .cached()
            .execute(&mut conn)
            .await
            .context("creating a webhook endpoint")?;
        Ok(())
    }

    async fn get(&self, scope: Scope, id: EndpointId) -> anyhow::Result<Option<Endpoint>> {
        let mut conn = self.conn().await?;
        let row: Option<EndpointRow> = diesel::sql_query(GET_ENDPOINT)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Nullable<Uuid>, _>(scope_group(scope))
            .cached()
            .get_result(&mut conn)
            .await
            .map(Some)
            .or_else(|e| if e == diesel::NotFound { Ok(None) } else { Err(e) })
            .context("reading a webhook endpoint")?;
        Ok(row.map(Endpoint::from))
    }

    async fn list(&self, scope: Scope) -> anyhow::Result<Vec<Endpoint>> {
        let mut conn = self.conn().await?;
        let rows: Vec<EndpointRow> = diesel::sql_query(LIST_ENDPOINTS)
            .bind::<Nullable<Uuid>, _>(scope_group(scope))
            .cached()
            .load(&mut conn)
            .await
            .context("listing webhook endpoints")?;
        Ok(rows.into_iter().map(Endpoint::from).collect())
    }

    async fn update(&self, e: &Endpoint) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let previous = e.previous_secret.as_ref();
        let n = diesel::sql_query(UPDATE_ENDPOINT)
            .bind::<Uuid, _>(e.id.as_uuid())
            .bind::<Text, _>(e.url.as_str())
            .bind::<Text, _>(&e.description)
            .bind::<Array<Text>, _>(e.filters.iter().map(EventFilter::to_text).collect::<Vec<_>>())
            .bind::<Bool, _>(e.enabled)
            .bind::<Text, _>(e.secret.expose())
            .bind::<Nullable<Text>, _>(previous.map(|p| p.secret.expose().to_owned()))
            .bind::<Nullable<Timestamptz>, _>(previous.map(|p| p.expires_at))
            .bind::<Timestamptz, _>(e.updated_at)
            .cached()
            .execute(&mut conn)
            .await
            .context("updating a webhook endpoint")?;
        Ok(n == 1)
    }

    async fn delete(&self, scope: Scope, id: EndpointId) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let n = diesel::sql_query(DELETE_ENDPOINT)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Nullable<Uuid>, _>(scope_group(scope))
            .cached()
            .execute(&mut conn)
            .await
            .context("deleting a webhook endpoint")?;
        Ok(n == 1)
    }

    async fn enabled_for(&self, groups: &[GroupId]) -> anyhow::Result<Vec<Endpoint>> {
        let mut conn = self.conn().await?;
        let rows: Vec<EndpointRow> = diesel::sql_query(ENABLED_FOR)
            .bind::<Array<Uuid>, _>(groups.iter().map(|g| g.as_uuid()).collect::<Vec<_>>())
            .cached()
            .load(&mut conn)
            .await
            .context("reading the endpoints of events")?;
        Ok(rows.into_iter().map(Endpoint::from).collect())
    }

    async fn any_enabled(&self) -> anyhow::Result<bool> {
        #[derive(QueryableByName)]
        struct Any {
            #[diesel(sql_type = Bool)]
            any: bool,
        }
        let mut conn = self.conn().await?;
        let row: Any = diesel::sql_query(ANY_ENABLED)
            .cached()
            .get_result(&mut conn)
            .await
            .context("looking for an enabled endpoint")?;
        Ok(row.any)
    }
}

#[async_trait]
impl DeliveryRepository for PgWebhookStore {
    async fn insert_consumed(
        &self,
        consumer: &str,
        from: FeedPosition,
        to: FeedPosition,
        deliveries: &[NewDelivery],
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            if !outbox::advance(conn, consumer, from, to).await? {
                return Ok(false);
            }
            insert_deliveries(conn, deliveries, false).await?;
            diesel::QueryResult::Ok(true)
        })
        .await
        .context("storing the deliveries of events")
    }

    async fn requeue(&self, deliveries: &[NewDelivery]) -> anyhow::Result<u64> {
        let mut conn = self.conn().await?;
        insert_deliveries(&mut conn, deliveries, true).await.context("queueing deliveries")
    }

    async fn list(
        &self,
        endpoint: EndpointId,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> anyhow::Result<Vec<Delivery>> {
        let mut conn = self.conn().await?;
        let rows: Vec<DeliveryRow> = diesel::sql_query(LIST_DELIVERIES)
            .bind::<Uuid, _>(endpoint.as_uuid())
            .bind::<Nullable<Uuid>, _>(before.map(|b| b.as_uuid()))
            .bind::<BigInt, _>(limit_of(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("listing deliveries")?;
        rows.into_iter().map(DeliveryRow::into_domain).collect()
    }

    async fn retry(
        &self,
        endpoint: EndpointId,
        id: DeliveryId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Delivery>> {
        let mut conn = self.conn().await?;
        let rows: Vec<DeliveryRow> = diesel::sql_query(RETRY)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Uuid, _>(endpoint.as_uuid())
            .bind::<Timestamptz, _>(now)
            .cached()
            .load(&mut conn)
            .await
            .context("retrying a delivery")?;
        rows.into_iter().next().map(DeliveryRow::into_domain).transpose()
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Claim>> {
        let mut conn = self.conn().await?;
        let rows: Vec<ClaimRow> = diesel::sql_query(CLAIM)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(lease_until)
            .bind::<BigInt, _>(limit_of(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("claiming deliveries")?;
        Ok(rows
            .into_iter()
            .map(|r| Claim {
                id: DeliveryId::from_uuid(r.delivery_id),
                lease: r.lease,
                event_id: EventId::from_uuid(r.event_id),
                body: r.body,
                attempts: u32::try_from(r.attempts).unwrap_or(0),
                endpoint: r.endpoint.into(),
            })
            .collect())
    }

    async fn record(
        &self,
        id: DeliveryId,
        lease: uuid::Uuid,
        record: &AttemptRecord,
        disabled_events: &[Event],
    ) -> anyhow::Result<bool> {
        let (health, since) = match record.health {
            EndpointHealth::Failing(since) => ("failing", Some(since)),
            EndpointHealth::Disable(since) => ("disable", Some(since)),
            _ => ("healthy", None),
        };
        let a = &record.attempt;
        let mut conn = self.conn().await?;
        let row: CountRow = diesel::sql_query(RECORD)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Uuid, _>(lease)
            .bind::<Text, _>(record.status.as_str())
            .bind::<Integer, _>(i32::try_from(record.attempts).unwrap_or(i32::MAX))
            .bind::<Nullable<Timestamptz>, _>(record.next_attempt_at)
            .bind::<Timestamptz, _>(a.at)
            .bind::<Nullable<Integer>, _>(a.response_status.map(i32::from))
            .bind::<Integer, _>(i32::try_from(a.latency_ms).unwrap_or(i32::MAX))
            .bind::<Text, _>(&a.response)
            .bind::<Text, _>(health)
            .bind::<Nullable<Timestamptz>, _>(since)
            .bind::<Text, _>(outbox::events_json(disabled_events))
            .cached()
            .get_result(&mut conn)
            .await
            .context("recording a delivery attempt")?;
        Ok(row.count == 1)
    }

    async fn queue_age(&self, now: DateTime<Utc>) -> anyhow::Result<std::time::Duration> {
        let mut conn = self.conn().await?;
        let row: AgeRow = diesel::sql_query(OLDEST_DUE)
            .bind::<Timestamptz, _>(now)
            .cached()
            .get_result(&mut conn)
            .await
            .context("measuring the delivery queue")?;
        Ok(row.oldest.and_then(|o| (now - o).to_std().ok()).unwrap_or_default())
    }

    async fn purge(&self, before: DateTime<Utc>) -> anyhow::Result<u64> {
        let mut conn = self.conn().await?;
        let n = diesel::sql_query(PURGE)
            .bind::<Timestamptz, _>(before)
            .cached()
            .execute(&mut conn)
            .await
            .context("purging deliveries")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// The events API's type filters as the queries read them: exact types and prefixes; both
/// `None` when every type passes.
fn type_filters(types: &[EventFilter]) -> (Option<Vec<String>>, Option<Vec<String>>) {
    if types.is_empty() || types.iter().any(|t| matches!(t, EventFilter::All)) {
        return (None, None);
    }
    let mut exact = Vec::new();
    let mut prefixes = Vec::new();
    for t in types {
        match t {
            EventFilter::Exact(e) => exact.push(e.clone()),
            EventFilter::Prefix(p) => prefixes.push(p.clone()),
            _ => {}
        }
    }
    (Some(exact), Some(prefixes))
}

#[async_trait]
impl EventLog for PgWebhookStore {
    async fn page(
        &self,
        scope: Scope,
        after: FeedPosition,
        types: &[EventFilter],
        limit: u32,
    ) -> anyhow::Result<EventPage> {
        let (exact, prefixes) = type_filters(types);
        let mut conn = self.conn().await?;
        let query = diesel::sql_query(match scope.group() {
            Some(_) => GROUP_EVENTS,
            None => ALL_EVENTS,
        })
        .bind::<BigInt, _>(after.txid)
        .bind::<BigInt, _>(after.seq)
        .bind::<Nullable<Uuid>, _>(scope_group(scope))
        .bind::<Nullable<Array<Text>>, _>(exact)
        .bind::<Nullable<Array<Text>>, _>(prefixes)
        .bind::<BigInt, _>(limit_of(limit));
        let rows: Vec<FeedRow> =
            query.cached().load(&mut conn).await.context("reading the events API")?;
        let mut page = EventPage { events: Vec::with_capacity(rows.len()), next: after };
        for row in rows {
            if let Some((position, event)) = row.into_event()? {
                page.next = position;
                page.events.push(event);
            }
        }
        Ok(page)
    }

    async fn between(
        &self,
        scope: Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Event>> {
        let mut conn = self.conn().await?;
        let rows: Vec<FeedRow> = diesel::sql_query(BETWEEN)
            // Ids are UUID v7s made when the event was recorded, close to `occurred_at`: the
            // id range (an index range) is widened by an hour on each side.
            .bind::<Uuid, _>(first_id_at(from - chrono::TimeDelta::hours(1)))
            .bind::<Uuid, _>(first_id_at(to + chrono::TimeDelta::hours(1)))
            .bind::<Nullable<Uuid>, _>(scope_group(scope))
            .bind::<Timestamptz, _>(from)
            .bind::<Timestamptz, _>(to)
            .bind::<BigInt, _>(limit_of(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("reading events to replay")?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some((_, event)) = row.into_event()? {
                events.push(event);
            }
        }
        Ok(events)
    }
}
