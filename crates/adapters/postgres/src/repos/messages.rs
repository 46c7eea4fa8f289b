//! [`MessageRepository`] on PostgreSQL: messages with their outbox columns, paid from the
//! group's SMS credit in the same transaction (`sms_credit_apply`).
//!
//! A message row is its own outbox entry: `due_at` is when its next step is due. A worker
//! claims due rows with `FOR UPDATE SKIP LOCKED` under a lease token; each outcome is recorded
//! with `WHERE lease = <the claim's token>`, so a worker whose lease ran out (another took the
//! row over) changes nothing.
//!
//! The domain events of a change go into the outbox of domain events in the statement that
//! makes it (a data-modifying CTE, [`record_events!`], stored only when the row changed), or in
//! its transaction: no extra round trip.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::events::Event;
use onboard_kernel::{GroupId, PhoneNumber};
use onboard_messaging::ports::MessageRepository;
use onboard_messaging::{
    Channel, Claim, FailOverEvents, FailOverOutcome, Message, MessageId, MessageStatus, NewMessage,
    QueueError,
};
use onboard_payments::sms_credit::CreditReason;

use crate::PgPool;
use crate::cached::CachedExt;
use crate::error::TxError;
use crate::repos::outbox::{self, events_json, record_events};
use crate::repos::sms_credit::apply;

/// The columns of [`MessageRow`].
macro_rules! message_columns {
    () => {
        "id, group_id, to_phone, channel, text, template_code, failover, price, status,
        result_code, provider_message_id, failover_of, failover_id, created_at, updated_at,
        lease, checks"
    };
}

/// Stores queued messages from parallel arrays, due at `$10`, and the events `$11`.
const INSERT: &str = concat!(
    "WITH inserted AS (
        INSERT INTO messages (id, group_id, to_phone, channel, text, template_code, failover,
            price, failover_of, status, due_at, created_at, updated_at)
        SELECT m.*, 'queued', $10, $10, $10
        FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::bool[], $8::bigint[], $9::uuid[]) AS m
        RETURNING id
    ), events AS (",
    record_events!("$11"),
    " WHERE EXISTS (SELECT FROM inserted)
    )
    SELECT count(*) AS count FROM inserted"
);

const GET: &str =
    concat!("SELECT ", message_columns!(), " FROM messages WHERE group_id = $1 AND id = $2");

const LIST: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE group_id = $1
        AND id < COALESCE($2, 'ffffffff-ffff-ffff-ffff-ffffffffffff')
    ORDER BY id DESC LIMIT $3"
);

/// Claims up to `$4` rows due at `$1` that nobody holds, until `$2` under token `$3`.
const CLAIM: &str = concat!(
    "UPDATE messages SET lease = $3, claimed_until = $2
    WHERE id IN (
        SELECT id FROM messages
        WHERE due_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)
        ORDER BY due_at, id LIMIT $4
        FOR UPDATE SKIP LOCKED
    )
    RETURNING ",
    message_columns!()
);

/// Message `$1`, claimed under `$2`, was taken by the provider (id `$3`); next check at `$4`;
/// events `$6`.
const MARK_SENT: &str = concat!(
    "WITH marked AS (
        UPDATE messages SET status = 'sent', provider_message_id = $3, due_at = $4,
            lease = NULL, claimed_until = NULL, updated_at = $5
        WHERE id = $1 AND lease = $2 AND status = 'queued'
        RETURNING id
    ), events AS (",
    record_events!("$6"),
    " WHERE EXISTS (SELECT FROM marked)
    )
    SELECT count(*) AS count FROM marked"
);

/// Message `$1`, claimed under `$2`, was delivered; events `$4`.
const MARK_DELIVERED: &str = concat!(
    "WITH marked AS (
        UPDATE messages SET status = 'delivered', result_code = '0000', due_at = NULL,
            lease = NULL, claimed_until = NULL, updated_at = $3
        WHERE id = $1 AND lease = $2
        RETURNING id
    ), events AS (",
    record_events!("$4"),
    " WHERE EXISTS (SELECT FROM marked)
    )
    SELECT count(*) AS count FROM marked"
);

/// Message `$1`, claimed under `$2`, failed with code `$3`; events `$5`: its group and price,
/// for a refund.
const MARK_FAILED: &str = concat!(
    "WITH marked AS (
        UPDATE messages SET status = 'failed', result_code = $3, due_at = NULL,
            lease = NULL, claimed_until = NULL, updated_at = $4
        WHERE id = $1 AND lease = $2
        RETURNING group_id, price
    ), events AS (",
    record_events!("$5"),
    " WHERE EXISTS (SELECT FROM marked)
    )
    SELECT group_id, price FROM marked"
);

/// Message `$1`, claimed under `$2`, is checked again at `$3`; events `$5`.
const RESCHEDULE_CHECK: &str = concat!(
    "WITH marked AS (
        UPDATE messages SET due_at = $3, checks = checks + 1, lease = NULL,
            claimed_until = NULL, updated_at = $4
        WHERE id = $1 AND lease = $2
        RETURNING id
    ), events AS (",
    record_events!("$5"),
    " WHERE EXISTS (SELECT FROM marked)
    )
    SELECT count(*) AS count FROM marked"
);

const MARK_FAILED_OVER: &str = "
    UPDATE messages SET status = 'failed_over', failover_id = $2 WHERE id = $1";

#[derive(Debug, QueryableByName)]
struct MessageRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    to_phone: String,
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = Text)]
    text: String,
    #[diesel(sql_type = Nullable<Text>)]
    template_code: Option<String>,
    #[diesel(sql_type = Bool)]
    failover: bool,
    #[diesel(sql_type = BigInt)]
    price: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    result_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    provider_message_id: Option<String>,
    #[diesel(sql_type = Nullable<Uuid>)]
    failover_of: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Uuid>)]
    failover_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Uuid>)]
    lease: Option<uuid::Uuid>,
    #[diesel(sql_type = Integer)]
    checks: i32,
}

impl MessageRow {
    fn into_message(self) -> anyhow::Result<Message> {
        Ok(Message {
            id: MessageId::from_uuid(self.id),
            group: GroupId::from_uuid(self.group_id),
            to: PhoneNumber::from_trusted_e164(self.to_phone),
            channel: Channel::parse(&self.channel)
                .with_context(|| format!("unknown channel {:?}", self.channel))?,
            text: self.text,
            template_code: self.template_code,
            failover: self.failover,
            price: self.price,
            status: MessageStatus::parse(&self.status)
                .with_context(|| format!("unknown message status {:?}", self.status))?,
            result_code: self.result_code,
            provider_message_id: self.provider_message_id,
            failover_of: self.failover_of.map(MessageId::from_uuid),
            failover_id: self.failover_id.map(MessageId::from_uuid),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }

    fn into_claim(self) -> anyhow::Result<Claim> {
        let lease = self.lease.context("a claimed message without a lease")?;
        let checks = u32::try_from(self.checks).unwrap_or(0);
        Ok(Claim { message: self.into_message()?, lease, checks })
    }
}

#[derive(Debug, QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(Debug, QueryableByName)]
struct PriceRow {
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    price: i64,
}

/// The credit did not cover a debit: roll back.
#[derive(Debug)]
struct NoCredit;

/// Messages in PostgreSQL.
#[derive(Clone)]
pub struct PgMessageRepository {
    pool: PgPool,
}

impl fmt::Debug for PgMessageRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgMessageRepository").field("pool", &self.pool.status()).finish()
    }
}

impl PgMessageRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

/// Inserts `messages`, queued and due at `at`, and `events` on `conn`.
async fn insert(
    conn: &mut AsyncPgConnection,
    messages: &[NewMessage],
    events: &[Event],
    at: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    let uuids = |f: fn(&NewMessage) -> uuid::Uuid| messages.iter().map(f).collect::<Vec<_>>();
    diesel::sql_query(INSERT)
        .bind::<Array<Uuid>, _>(uuids(|m| m.id.as_uuid()))
        .bind::<Array<Uuid>, _>(uuids(|m| m.group.as_uuid()))
        .bind::<Array<Text>, _>(messages.iter().map(|m| m.to.as_e164()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(messages.iter().map(|m| m.channel.as_str()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(messages.iter().map(|m| m.text.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            messages.iter().map(|m| m.template_code.as_deref()).collect::<Vec<_>>(),
        )
        .bind::<Array<Bool>, _>(messages.iter().map(|m| m.failover).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(messages.iter().map(|m| m.price).collect::<Vec<_>>())
        .bind::<Array<Nullable<Uuid>>, _>(
            messages.iter().map(|m| m.failover_of.map(|f| f.as_uuid())).collect::<Vec<_>>(),
        )
        .bind::<Timestamptz, _>(at)
        .bind::<Text, _>(events_json(events))
        .cached()
        .execute(conn)
        .await?;
    Ok(())
}

/// Debits `message`'s price (ledger `message`), or refuses.
async fn debit(
    conn: &mut AsyncPgConnection,
    message: &NewMessage,
    at: DateTime<Utc>,
) -> Result<(), TxError<NoCredit>> {
    if message.price == 0 {
        return Ok(());
    }
    let reference = message.id.to_string();
    let balance =
        apply(conn, message.group, -message.price, CreditReason::Message, Some(&reference), at)
            .await?;
    balance.map(|_| ()).ok_or(TxError::Refused(NoCredit))
}

/// Marks the claimed message failed with `code`, refunding it when asked, and stores
/// `events`; `false` (nothing written) when the lease is no longer the claim's.
async fn fail(
    conn: &mut AsyncPgConnection,
    claim: &Claim,
    code: &str,
    refund: bool,
    events: &[Event],
    at: DateTime<Utc>,
) -> diesel::QueryResult<bool> {
    let row: Option<PriceRow> = diesel::sql_query(MARK_FAILED)
        .bind::<Uuid, _>(claim.message.id.as_uuid())
        .bind::<Uuid, _>(claim.lease)
        .bind::<Text, _>(code)
        .bind::<Timestamptz, _>(at)
        .bind::<Text, _>(events_json(events))
        .cached()
        .get_result(conn)
        .await
        .optional()?;
    let Some(row) = row else { return Ok(false) };
    if refund && row.price > 0 {
        let reference = claim.message.id.to_string();
        let group = GroupId::from_uuid(row.group_id);
        // A credit never fails for want of balance.
        apply(conn, group, row.price, CreditReason::Refund, Some(&reference), at).await?;
    }
    Ok(true)
}

fn into_claims(rows: Vec<MessageRow>) -> anyhow::Result<Vec<Claim>> {
    rows.into_iter().map(MessageRow::into_claim).collect()
}

#[async_trait]
impl MessageRepository for PgMessageRepository {
    async fn queue_batch(
        &self,
        messages: &[NewMessage],
        events: &[Event],
        at: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        let done = conn
            .transaction(async |conn| {
                for message in messages {
                    debit(conn, message, at).await?;
                }
                insert(conn, messages, events, at).await?;
                Ok::<_, TxError<NoCredit>>(())
            })
            .await;
        match done {
            Ok(()) => Ok(()),
            Err(TxError::Refused(NoCredit)) => Err(QueueError::InsufficientCredit),
            Err(TxError::Db(e)) => {
                Err(QueueError::Unexpected(anyhow::Error::new(e).context("queueing messages")))
            }
        }
    }

    async fn get(&self, group: GroupId, id: MessageId) -> anyhow::Result<Option<Message>> {
        let mut conn = self.conn().await?;
        let row: Option<MessageRow> = diesel::sql_query(GET)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Uuid, _>(id.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading a message")?;
        row.map(MessageRow::into_message).transpose()
    }

    async fn list(
        &self,
        group: GroupId,
        before: Option<MessageId>,
        limit: u32,
    ) -> anyhow::Result<Vec<Message>> {
        let mut conn = self.conn().await?;
        let rows: Vec<MessageRow> = diesel::sql_query(LIST)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Nullable<Uuid>, _>(before.map(|b| b.as_uuid()))
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("listing messages")?;
        rows.into_iter().map(MessageRow::into_message).collect()
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Claim>> {
        let mut conn = self.conn().await?;
        let rows: Vec<MessageRow> = diesel::sql_query(CLAIM)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(lease_until)
            .bind::<Uuid, _>(uuid::Uuid::now_v7())
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("claiming messages")?;
        into_claims(rows)
    }

    async fn mark_sent(
        &self,
        claim: &Claim,
        provider_message_id: Option<String>,
        check_at: Option<DateTime<Utc>>,
        events: &[Event],
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let row: CountRow = diesel::sql_query(MARK_SENT)
            .bind::<Uuid, _>(claim.message.id.as_uuid())
            .bind::<Uuid, _>(claim.lease)
            .bind::<Nullable<Text>, _>(provider_message_id)
            .bind::<Nullable<Timestamptz>, _>(check_at)
            .bind::<Timestamptz, _>(at)
            .bind::<Text, _>(events_json(events))
            .cached()
            .get_result(&mut conn)
            .await
            .context("marking a message sent")?;
        Ok(row.count == 1)
    }

    async fn mark_delivered(
        &self,
        claim: &Claim,
        events: &[Event],
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let row: CountRow = diesel::sql_query(MARK_DELIVERED)
            .bind::<Uuid, _>(claim.message.id.as_uuid())
            .bind::<Uuid, _>(claim.lease)
            .bind::<Timestamptz, _>(at)
            .bind::<Text, _>(events_json(events))
            .cached()
            .get_result(&mut conn)
            .await
            .context("marking a message delivered")?;
        Ok(row.count == 1)
    }

    async fn mark_failed(
        &self,
        claim: &Claim,
        code: &str,
        refund: bool,
        events: &[Event],
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| fail(conn, claim, code, refund, events, at).await)
            .await
            .context("marking a message failed")
    }

    async fn reschedule_check(
        &self,
        claim: &Claim,
        check_at: DateTime<Utc>,
        events: &[Event],
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let row: CountRow = diesel::sql_query(RESCHEDULE_CHECK)
            .bind::<Uuid, _>(claim.message.id.as_uuid())
            .bind::<Uuid, _>(claim.lease)
            .bind::<Timestamptz, _>(check_at)
            .bind::<Timestamptz, _>(at)
            .bind::<Text, _>(events_json(events))
            .cached()
            .get_result(&mut conn)
            .await
            .context("rescheduling a delivery check")?;
        Ok(row.count == 1)
    }

    async fn fail_over(
        &self,
        claim: &Claim,
        code: &str,
        resend: &NewMessage,
        events: &FailOverEvents,
        at: DateTime<Utc>,
    ) -> anyhow::Result<FailOverOutcome> {
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            if !fail(conn, claim, code, true, &[], at).await? {
                return Ok(FailOverOutcome::LeaseLost);
            }
            match debit(conn, resend, at).await {
                Ok(()) => {}
                Err(TxError::Refused(NoCredit)) => {
                    outbox::record(conn, &events.no_credit).await?;
                    return Ok(FailOverOutcome::NoCredit);
                }
                Err(TxError::Db(e)) => return Err(e),
            }
            insert(conn, std::slice::from_ref(resend), &events.resent, at).await?;
            diesel::sql_query(MARK_FAILED_OVER)
                .bind::<Uuid, _>(claim.message.id.as_uuid())
                .bind::<Uuid, _>(resend.id.as_uuid())
                .cached()
                .execute(conn)
                .await?;
            Ok::<_, diesel::result::Error>(FailOverOutcome::Resent)
        })
        .await
        .context("failing a message over")
    }
}
