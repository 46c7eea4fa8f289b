//! [`NotificationRepository`] and [`NotificationOutbox`] on PostgreSQL, and the statements
//! other repositories run inside their own transactions to notify.
//!
//! A notification row is also its own outbox entry: `published_at` is null until the outbox
//! worker has published it. A worker claims rows with `FOR UPDATE SKIP LOCKED` and a lease
//! (`claimed_until`), so several instances never claim one row at once and a crashed worker's
//! rows are claimed again after the lease.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Uuid};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::MemberId;
use onboard_kernel::events::FeedPosition;
use onboard_notifications::ports::{NotificationOutbox, NotificationRepository};
use onboard_notifications::{
    MarkRead, NewNotification, Notification, NotificationId, NotificationType,
};

use crate::PgPool;
use crate::cached::CachedExt;
use crate::repos::outbox;

/// The columns of [`NotificationRow`].
macro_rules! notification_columns {
    () => {
        "id, member_id, type, title, body, group_slug, link, read, created_at, expires_at, snoozed_until"
    };
}

/// Whether a row is visible at `$now` (the placeholder's number is spliced in).
macro_rules! visible_at {
    ($now:literal) => {
        concat!(
            "expires_at > ",
            $now,
            " AND (snoozed_until IS NULL OR snoozed_until <= ",
            $now,
            ")"
        )
    };
}

/// Stores notifications from parallel arrays, unread and unpublished.
const INSERT: &str = "
    INSERT INTO notifications
        (id, member_id, type, title, body, group_slug, link, created_at, expires_at)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
        $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[])";

/// Member `$1`'s visible notifications, unread only when `$2`, before id `$3`, newest first.
const LIST: &str = concat!(
    "SELECT ",
    notification_columns!(),
    " FROM notifications
    WHERE member_id = $1 AND (NOT $2 OR NOT read)
        AND id < COALESCE($3, 'ffffffff-ffff-ffff-ffff-ffffffffffff') AND ",
    visible_at!("$4"),
    " ORDER BY id DESC LIMIT $5"
);

/// How many of member `$1`'s visible notifications are unread.
const UNREAD_COUNT: &str = concat!(
    "SELECT count(*) AS count FROM notifications WHERE member_id = $1 AND NOT read AND ",
    visible_at!("$2")
);

/// Member `$1`'s visible notifications after id `$2`, oldest first.
const AFTER: &str = concat!(
    "SELECT ",
    notification_columns!(),
    " FROM notifications WHERE member_id = $1 AND id > $2 AND ",
    visible_at!("$3"),
    " ORDER BY id LIMIT $4"
);

/// Marks member `$1`'s notifications `$2` (every one when null) read, but not the snoozed.
const MARK_READ: &str = "
    UPDATE notifications SET read = true
    WHERE member_id = $1 AND NOT read AND ($2::uuid[] IS NULL OR id = ANY ($2))
        AND (snoozed_until IS NULL OR snoozed_until <= $3)";

/// Snoozes member `$1`'s visible notification `$2` until `$3` and makes it unread.
const SNOOZE: &str = concat!(
    "UPDATE notifications SET snoozed_until = $3, read = false
    WHERE member_id = $1 AND id = $2 AND ",
    visible_at!("$4"),
    " RETURNING ",
    notification_columns!()
);

const DELETE: &str = "DELETE FROM notifications WHERE member_id = $1 AND id = $2";

const PURGE: &str = "DELETE FROM notifications WHERE expires_at <= $1";

/// Claims up to `$3` unpublished rows nobody holds at `$1`, until `$2`.
const CLAIM: &str = concat!(
    "UPDATE notifications SET claimed_until = $2
    WHERE id IN (
        SELECT id FROM notifications
        WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until <= $1)
        ORDER BY id LIMIT $3
        FOR UPDATE SKIP LOCKED
    )
    RETURNING ",
    notification_columns!()
);

const MARK_PUBLISHED: &str = "
    UPDATE notifications SET published_at = now(), claimed_until = NULL WHERE id = ANY ($1)";

#[derive(Debug, QueryableByName)]
struct NotificationRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    member_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    r#type: String,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Nullable<Text>)]
    group_slug: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    link: Option<String>,
    #[diesel(sql_type = Bool)]
    read: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    snoozed_until: Option<DateTime<Utc>>,
}

impl NotificationRow {
    fn into_domain(self) -> anyhow::Result<Notification> {
        let kind = NotificationType::parse(&self.r#type)
            .with_context(|| format!("unknown notification type {:?}", self.r#type))?;
        Ok(Notification {
            id: NotificationId::from_uuid(self.id),
            member: MemberId::from_uuid(self.member_id),
            kind,
            title: self.title,
            body: self.body,
            group: self.group_slug,
            link: self.link,
            read: self.read,
            created_at: self.created_at,
            expires_at: self.expires_at,
            snoozed_until: self.snoozed_until,
        })
    }
}

fn into_domain(rows: Vec<NotificationRow>) -> anyhow::Result<Vec<Notification>> {
    rows.into_iter().map(NotificationRow::into_domain).collect()
}

#[derive(Debug, QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Stores `notifications` on `conn`, inside whatever transaction it is in (the consumer's, with
/// its feed position).
///
/// # Errors
/// When the database refuses (an unknown member, say).
pub async fn insert_notifications(
    conn: &mut AsyncPgConnection,
    notifications: &[NewNotification],
) -> diesel::QueryResult<()> {
    if notifications.is_empty() {
        return Ok(());
    }
    let col =
        |f: fn(&NewNotification) -> uuid::Uuid| notifications.iter().map(f).collect::<Vec<_>>();
    let ids = col(|n| n.id.as_uuid());
    let members = col(|n| n.member.as_uuid());
    let text = |f: fn(&NewNotification) -> Option<&str>| {
        notifications.iter().map(f).map(|s| s.map(str::to_owned)).collect::<Vec<_>>()
    };
    let at =
        |f: fn(&NewNotification) -> DateTime<Utc>| notifications.iter().map(f).collect::<Vec<_>>();
    diesel::sql_query(INSERT)
        .bind::<Array<Uuid>, _>(ids)
        .bind::<Array<Uuid>, _>(members)
        .bind::<Array<Nullable<Text>>, _>(text(|n| Some(n.kind.as_str())))
        .bind::<Array<Nullable<Text>>, _>(text(|n| Some(n.title.as_str())))
        .bind::<Array<Nullable<Text>>, _>(text(|n| Some(n.body.as_str())))
        .bind::<Array<Nullable<Text>>, _>(text(|n| n.group.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(text(|n| n.link.as_deref()))
        .bind::<Array<Timestamptz>, _>(at(|n| n.created_at))
        .bind::<Array<Timestamptz>, _>(at(|n| n.expires_at))
        .cached()
        .execute(conn)
        .await?;
    Ok(())
}

/// Notifications in PostgreSQL.
#[derive(Clone)]
pub struct PgNotificationRepository {
    pool: PgPool,
}

impl fmt::Debug for PgNotificationRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgNotificationRepository").field("pool", &self.pool.status()).finish()
    }
}

impl PgNotificationRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

fn limit_of(limit: u32) -> i64 {
    i64::from(limit)
}

#[async_trait]
impl NotificationRepository for PgNotificationRepository {
    async fn insert(&self, notifications: &[NewNotification]) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| insert_notifications(conn, notifications).await)
            .await
            .context("storing notifications")
    }

    async fn insert_consumed(
        &self,
        consumer: &str,
        from: FeedPosition,
        to: FeedPosition,
        notifications: &[NewNotification],
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            if !outbox::advance(conn, consumer, from, to).await? {
                return Ok(false);
            }
            insert_notifications(conn, notifications).await?;
            diesel::QueryResult::Ok(true)
        })
        .await
        .context("storing the notifications of events")
    }

    async fn list(
        &self,
        member: MemberId,
        unread_only: bool,
        before: Option<NotificationId>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Notification>> {
        let mut conn = self.conn().await?;
        let rows: Vec<NotificationRow> = diesel::sql_query(LIST)
            .bind::<Uuid, _>(member.as_uuid())
            .bind::<Bool, _>(unread_only)
            .bind::<Nullable<Uuid>, _>(before.map(|id| id.as_uuid()))
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(limit_of(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("listing notifications")?;
        into_domain(rows)
    }

    async fn unread_count(&self, member: MemberId, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let mut conn = self.conn().await?;
        let row: CountRow = diesel::sql_query(UNREAD_COUNT)
            .bind::<Uuid, _>(member.as_uuid())
            .bind::<Timestamptz, _>(now)
            .cached()
            .get_result(&mut conn)
            .await
            .context("counting unread notifications")?;
        Ok(u64::try_from(row.count).unwrap_or(0))
    }

    async fn after(
        &self,
        member: MemberId,
        after: NotificationId,
        limit: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Notification>> {
        let mut conn = self.conn().await?;
        let rows: Vec<NotificationRow> = diesel::sql_query(AFTER)
            .bind::<Uuid, _>(member.as_uuid())
            .bind::<Uuid, _>(after.as_uuid())
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(limit_of(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("reading missed notifications")?;
        into_domain(rows)
    }

    async fn mark_read(
        &self,
        member: MemberId,
        which: &MarkRead,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let ids = match which {
            MarkRead::All => None,
            MarkRead::Ids(ids) => Some(ids.iter().map(|id| id.as_uuid()).collect::<Vec<_>>()),
        };
        let mut conn = self.conn().await?;
        diesel::sql_query(MARK_READ)
            .bind::<Uuid, _>(member.as_uuid())
            .bind::<Nullable<Array<Uuid>>, _>(ids)
            .bind::<Timestamptz, _>(now)
            .cached()
            .execute(&mut conn)
            .await
            .context("marking notifications read")?;
        Ok(())
    }

    async fn snooze(
        &self,
        member: MemberId,
        id: NotificationId,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Notification>> {
        let mut conn = self.conn().await?;
        let rows: Vec<NotificationRow> = diesel::sql_query(SNOOZE)
            .bind::<Uuid, _>(member.as_uuid())
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Timestamptz, _>(until)
            .bind::<Timestamptz, _>(now)
            .cached()
            .load(&mut conn)
            .await
            .context("snoozing a notification")?;
        rows.into_iter().next().map(NotificationRow::into_domain).transpose()
    }

    async fn delete(&self, member: MemberId, id: NotificationId) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let deleted = diesel::sql_query(DELETE)
            .bind::<Uuid, _>(member.as_uuid())
            .bind::<Uuid, _>(id.as_uuid())
            .cached()
            .execute(&mut conn)
            .await
            .context("deleting a notification")?;
        Ok(deleted == 1)
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let mut conn = self.conn().await?;
        let deleted = diesel::sql_query(PURGE)
            .bind::<Timestamptz, _>(now)
            .cached()
            .execute(&mut conn)
            .await
            .context("purging expired notifications")?;
        Ok(deleted as u64)
    }
}

#[async_trait]
impl NotificationOutbox for PgNotificationRepository {
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Notification>> {
        let mut conn = self.conn().await?;
        let rows: Vec<NotificationRow> = diesel::sql_query(CLAIM)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(lease_until)
            .bind::<BigInt, _>(limit_of(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("claiming unpublished notifications")?;
        let mut claimed = into_domain(rows)?;
        claimed.sort_by_key(|n| n.id);
        Ok(claimed)
    }

    async fn mark_published(&self, ids: &[NotificationId]) -> anyhow::Result<()> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let mut conn = self.conn().await?;
        diesel::sql_query(MARK_PUBLISHED)
            .bind::<Array<Uuid>, _>(ids)
            .cached()
            .execute(&mut conn)
            .await
            .context("marking notifications published")?;
        Ok(())
    }
}
