//! [`SessionRepository`] on PostgreSQL.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use diesel::sql_types::{Bytea, Text, Timestamptz};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _,
};
use diesel_async::RunQueryDsl as _;
use onboard_kernel::{MemberId, SessionId};
use onboard_members::ports::{RefreshedSession, RotateOutcome, SessionRepository};
use onboard_members::{Session, SessionKind, TokenHash};

use crate::PgPool;
use crate::cached::CachedExt;
use crate::rows::{RotationRow, SessionRow};
use crate::schema::sessions;

/// One statement for the whole rotation: `$1` old hash, `$2` new hash, `$3` now, `$4` the
/// start of the grace period, `$5` the new expiry.
///
/// - `live`: `$1` is the live token of a live session: rotate it, and remember `$1` as used.
/// - `used`: otherwise, `$1` was used before: within grace (rotated to `$2`, recently, session
///   not revoked) nothing changes; else `revoked` revokes the session.
///
/// Each row carries the slug of the member's current group (for the new access token).
///
/// - `blocked`: `$1` is the current or a used token of a session of a blocked member: nothing
///   changes (a block revokes every session of the member anyway).
///
/// No row: nothing changed, and no live or used token is `$1` in this statement's snapshot.
///
/// A rotation (and only a rotation: not a revocation on reuse) commits without waiting for
/// its WAL to reach the disk (`synchronous_commit = off` for this transaction alone, set by
/// the `rotated` row): refresh is the busiest write, and a flush per rotation made it wait
/// for the disk several milliseconds each time. Losing it is harmless: only a crash of
/// PostgreSQL itself within a fraction of a second (three `wal_writer_delay`s at most) can
/// undo a rotation, and then the session simply keeps its previous refresh token, the
/// database stays consistent, and the client, whose new token is now unknown, signs in
/// again. See `docs/performance.md`.
const ROTATE: &str = "
    WITH blocked AS (
        SELECT s.id, s.member_id
        FROM sessions s
        JOIN members bm ON bm.id = s.member_id AND bm.blocked_at IS NOT NULL
        WHERE s.refresh_hash = $1
            OR s.id = (SELECT session_id FROM used_refresh_tokens WHERE hash = $1)
    ), live AS (
        UPDATE sessions
        SET refresh_hash = $2, last_used_at = $3, expires_at = $5
        WHERE refresh_hash = $1 AND kind = 'rotating' AND revoked_at IS NULL AND expires_at > $3
            AND NOT EXISTS (SELECT 1 FROM blocked)
        RETURNING id, member_id
    ), remembered AS (
        INSERT INTO used_refresh_tokens (hash, session_id, rotated_to, used_at)
        SELECT $1, id, $2, $3 FROM live
    ), used AS (
        SELECT u.session_id, s.member_id,
            (u.rotated_to = $2 AND u.used_at > $4 AND s.revoked_at IS NULL) AS grace
        FROM used_refresh_tokens u
        JOIN sessions s ON s.id = u.session_id AND s.kind = 'rotating'
        WHERE u.hash = $1 AND NOT EXISTS (SELECT 1 FROM live)
            AND NOT EXISTS (SELECT 1 FROM blocked)
    ), revoked AS (
        UPDATE sessions s
        SET revoked_at = $3
        FROM used
        WHERE s.id = used.session_id AND NOT used.grace AND s.revoked_at IS NULL
    )
    SELECT 'rotated'::text AS outcome, live.id AS session_id, live.member_id,
        g.slug AS current_group
    FROM live
    LEFT JOIN members m ON m.id = live.member_id
    LEFT JOIN groups g ON g.id = m.current_group_id
    WHERE set_config('synchronous_commit', 'off', true) = 'off'
    UNION ALL
    SELECT CASE WHEN grace THEN 'grace' ELSE 'reused' END, used.session_id, used.member_id,
        g.slug
    FROM used
    LEFT JOIN members m ON m.id = used.member_id
    LEFT JOIN groups g ON g.id = m.current_group_id
    UNION ALL
    SELECT 'blocked', blocked.id, blocked.member_id, NULL FROM blocked";

/// The refresh of a session of a lenient kind ([`SessionRepository::refresh_lenient`]) in one
/// statement: `$1` old hash, `$2` new hash (equal to `$1` for `fixed`), `$3` now, `$4` the
/// oldest use of a used token still honoured, `$5` the new expiry, `$6` the kind.
///
/// - `blocked`: `$1` is the current or a used token of a session of `$6` of a blocked member.
/// - `live`: `$1` is the live token of a live session of `$6`: rotated to `$2` (for `fixed`
///   the same token: only `last_used_at` changes, and the expiry stays), remembered as used
///   when it changed.
/// - `used`: otherwise, `$1` was used after `$4` and rotated to `$2`, and its session of `$6`
///   is live: `grace`, nothing changes. Nothing is ever revoked here.
///
/// No row: nothing changed, and no such token in this statement's snapshot.
const REFRESH_LENIENT: &str = "
    WITH blocked AS (
        SELECT s.id, s.member_id
        FROM sessions s
        JOIN members bm ON bm.id = s.member_id AND bm.blocked_at IS NOT NULL
        WHERE s.kind = $6 AND (s.refresh_hash = $1
            OR s.id = (SELECT session_id FROM used_refresh_tokens WHERE hash = $1))
    ), live AS (
        UPDATE sessions
        SET refresh_hash = $2, last_used_at = $3,
            expires_at = CASE WHEN $6 = 'fixed' THEN expires_at ELSE $5 END
        WHERE refresh_hash = $1 AND kind = $6 AND revoked_at IS NULL AND expires_at > $3
            AND NOT EXISTS (SELECT 1 FROM blocked)
        RETURNING id, member_id
    ), remembered AS (
        INSERT INTO used_refresh_tokens (hash, session_id, rotated_to, used_at)
        SELECT $1, id, $2, $3 FROM live WHERE $1 <> $2
    ), used AS (
        SELECT u.session_id, s.member_id
        FROM used_refresh_tokens u
        JOIN sessions s ON s.id = u.session_id AND s.kind = $6
        WHERE u.hash = $1 AND u.rotated_to = $2 AND u.used_at > $4
            AND s.revoked_at IS NULL AND s.expires_at > $3
            AND NOT EXISTS (SELECT 1 FROM live) AND NOT EXISTS (SELECT 1 FROM blocked)
    )
    SELECT 'rotated'::text AS outcome, live.id AS session_id, live.member_id,
        g.slug AS current_group
    FROM live
    LEFT JOIN members m ON m.id = live.member_id
    LEFT JOIN groups g ON g.id = m.current_group_id
    UNION ALL
    SELECT 'grace', used.session_id, used.member_id, g.slug
    FROM used
    LEFT JOIN members m ON m.id = used.member_id
    LEFT JOIN groups g ON g.id = m.current_group_id
    UNION ALL
    SELECT 'blocked', blocked.id, blocked.member_id, NULL FROM blocked";

/// Whether `$1` is the live refresh token of a live session (`$2` now) of a live member who is
/// not blocked.
const IS_LIVE: &str = "
    SELECT EXISTS (
        SELECT FROM sessions s
        JOIN members m ON m.id = s.member_id
        WHERE s.refresh_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
            AND m.blocked_at IS NULL AND m.deleted_at IS NULL
    ) AS live";

#[derive(Debug, diesel::QueryableByName)]
struct LiveRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    live: bool,
}

/// A refresh statement's row as its outcome.
fn outcome(row: RotationRow) -> RotateOutcome {
    let session = RefreshedSession {
        session_id: SessionId::from_uuid(row.session_id),
        member_id: MemberId::from_uuid(row.member_id),
        current_group: row.current_group,
    };
    match row.outcome.as_str() {
        "rotated" => RotateOutcome::Rotated(session),
        "grace" => RotateOutcome::Grace(session),
        "blocked" => RotateOutcome::Blocked,
        _ => RotateOutcome::Reused { member_id: session.member_id, session_id: session.session_id },
    }
}

/// Refresh sessions in PostgreSQL.
#[derive(Clone)]
pub struct PgSessionRepository {
    pool: PgPool,
}

impl fmt::Debug for PgSessionRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSessionRepository").field("pool", &self.pool.status()).finish()
    }
}

impl PgSessionRepository {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl SessionRepository for PgSessionRepository {
    async fn rotate(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
        grace_secs: u64,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<RotateOutcome> {
        let grace_from =
            now - Duration::seconds(i64::try_from(grace_secs).unwrap_or(i64::MAX / 1000));
        let mut conn = self.pool.get().await.context("checking out a PostgreSQL connection")?;
        // A concurrent rotation of the same token makes the first attempt wait for it and
        // then find neither a live nor (in its older snapshot) a used token; the second
        // attempt sees the committed rotation. An attempt without a row changed nothing.
        for _ in 0..2 {
            let row: Option<RotationRow> = diesel::sql_query(ROTATE)
                .bind::<Bytea, _>(&old.0[..])
                .bind::<Bytea, _>(&new.0[..])
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(grace_from)
                .bind::<Timestamptz, _>(expires_at)
                .cached()
                .get_result(&mut conn)
                .await
                .optional()
                .context("rotating a refresh token")?;
            if let Some(row) = row {
                return Ok(outcome(row));
            }
        }
        Ok(RotateOutcome::Invalid)
    }

    async fn refresh_lenient(
        &self,
        kind: SessionKind,
        old: &TokenHash,
        new: &TokenHash,
        now: DateTime<Utc>,
        used_since: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<RotateOutcome> {
        if kind.reuse_is_theft() {
            anyhow::bail!("refresh_lenient called for {kind:?} sessions");
        }
        let mut conn = self.pool.get().await.context("checking out a PostgreSQL connection")?;
        // As in `rotate`: a concurrent rotation makes the first attempt find nothing.
        for _ in 0..2 {
            let row: Option<RotationRow> = diesel::sql_query(REFRESH_LENIENT)
                .bind::<Bytea, _>(&old.0[..])
                .bind::<Bytea, _>(&new.0[..])
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(used_since)
                .bind::<Timestamptz, _>(expires_at)
                .bind::<Text, _>(kind.as_str())
                .cached()
                .get_result(&mut conn)
                .await
                .optional()
                .context("refreshing a session")?;
            if let Some(row) = row {
                return Ok(outcome(row));
            }
        }
        Ok(RotateOutcome::Invalid)
    }

    async fn is_live(&self, token: &TokenHash, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let mut conn = self.pool.get().await.context("checking out a PostgreSQL connection")?;
        let row: LiveRow = diesel::sql_query(IS_LIVE)
            .bind::<Bytea, _>(&token.0[..])
            .bind::<Timestamptz, _>(now)
            .cached()
            .get_result(&mut conn)
            .await
            .context("checking a refresh token")?;
        Ok(row.live)
    }

    async fn revoke(
        &self,
        member: MemberId,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut conn = self.pool.get().await.context("checking out a PostgreSQL connection")?;
        let revoked = diesel::update(
            sessions::table
                .filter(sessions::id.eq(session.as_uuid()))
                .filter(sessions::member_id.eq(member.as_uuid()))
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::expires_at.gt(now)),
        )
        .set(sessions::revoked_at.eq(now))
        .execute(&mut conn)
        .await
        .context("revoking a session")?;
        Ok(revoked == 1)
    }

    async fn list(&self, member: MemberId, now: DateTime<Utc>) -> anyhow::Result<Vec<Session>> {
        let mut conn = self.pool.get().await.context("checking out a PostgreSQL connection")?;
        let rows: Vec<SessionRow> = sessions::table
            .filter(sessions::member_id.eq(member.as_uuid()))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .order((sessions::created_at.desc(), sessions::id.desc()))
            .select(SessionRow::as_select())
            .load(&mut conn)
            .await
            .context("listing sessions")?;
        Ok(rows.into_iter().map(Session::from).collect())
    }
}
