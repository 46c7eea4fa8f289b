//! [`AdminRepository`] on PostgreSQL.
//!
//! Every admin action is one transaction that also writes its `admin_audit` row. Searches use
//! the prefix indexes of migration `000020_platform_admin` (one per kind of search text) and
//! page by id (uuid v7, newest first); their SQL is sent unprepared so that PostgreSQL plans
//! each `LIKE 'prefix%'` with the prefix in hand (a generic plan could not use the index).

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz, Uuid};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_admin::ports::AdminRepository;
use onboard_admin::{
    Actor, AdminGroup, AdminMember, AuditAction, AuditEntry, Block, BlockReason, GroupSearch,
    MemberDetail, MemberGroup, MemberSearch, Standing, StoredCounts, TargetError,
};
use onboard_kernel::events::Event;
use onboard_kernel::{GroupId, MemberId, PhoneNumber, SessionId};

use crate::PgPool;
use crate::cached::CachedExt;
use crate::error::TxError;
use crate::repos::outbox::{self, events_json, record_events};
use crate::rows::{CurrentMemberRow, GroupRow};

/// The member columns of [`CurrentMemberRow`] from `m`, joined by [`admin_member_joins!`].
macro_rules! admin_member_columns {
    () => {
        "m.id, m.phone, m.first_name, m.last_name, m.email, m.referral_code, \
         r.referral_code AS referred_by_code, m.created_at, g.slug AS current_group"
    };
}

macro_rules! admin_member_joins {
    () => {
        " LEFT JOIN members r ON r.id = m.referred_by \
          LEFT JOIN groups g ON g.id = m.current_group_id"
    };
}

/// A search over live members: `$1` the id to page after (or null), `$2` the page size, then
/// the condition's own parameters.
macro_rules! member_search {
    ($condition:literal) => {
        concat!(
            "SELECT ",
            admin_member_columns!(),
            ", m.is_admin, m.blocked_at IS NOT NULL AS blocked FROM members m",
            admin_member_joins!(),
            " WHERE m.deleted_at IS NULL AND ($1::uuid IS NULL OR m.id < $1) AND ",
            $condition,
            " ORDER BY m.id DESC LIMIT $2"
        )
    };
}

const SEARCH_ALL: &str = member_search!("true");
/// `$3`: `LIKE` pattern of an E.164 prefix.
const SEARCH_PHONE: &str = member_search!("m.phone LIKE $3");
/// `$3`: `LIKE` pattern of a lower-case e-mail prefix.
const SEARCH_EMAIL: &str = member_search!("m.email LIKE $3");
/// `$3`: `LIKE` pattern of a lower-case name or e-mail prefix; `$4`: a referral code or null.
const SEARCH_NAME_OR_CODE: &str = member_search!(
    "(lower(m.first_name) LIKE $3 OR lower(m.last_name) LIKE $3 OR m.email LIKE $3 \
      OR m.referral_code = $4)"
);

/// The standing of live member `$1`.
const STANDING: &str = "
    SELECT phone, is_admin, blocked_at IS NOT NULL AS blocked
    FROM members
    WHERE id = $1 AND deleted_at IS NULL";

/// Live member `$1` with admin flag, block, sessions live at `$2`, invitee count.
const DETAIL: &str = concat!(
    "SELECT ",
    admin_member_columns!(),
    ", m.is_admin, m.blocked_at, m.blocked_reason,
        (SELECT count(*) FROM sessions s
            WHERE s.member_id = m.id AND s.revoked_at IS NULL AND s.expires_at > $2)
            AS sessions_active,
        (SELECT count(*) FROM members i WHERE i.referred_by = m.id AND i.deleted_at IS NULL)
            AS invitees_count
    FROM members m",
    admin_member_joins!(),
    " WHERE m.id = $1 AND m.deleted_at IS NULL"
);

/// The most groups a member detail lists (in join order).
const DETAIL_GROUPS: i64 = 100;

/// Member `$1`'s groups (active and pending), in join order, at most `$2`.
const MEMBER_GROUPS: &str = "
    SELECT g.slug, g.name, gm.role, gm.status
    FROM group_members gm
    JOIN groups g ON g.id = gm.group_id
    WHERE gm.member_id = $1
    ORDER BY gm.joined_at, g.id
    LIMIT $2";

/// The audit row of an action on the member that `m` returns: `$a` id, `$b` actor kind,
/// `$c` acting member, `$d` action, `$e` details, `$f` time (numbers given per query).
const SET_ADMIN: &str = "
    WITH m AS (
        UPDATE members SET is_admin = $2
        WHERE phone = $1 AND deleted_at IS NULL
        RETURNING id
    ), audit AS (
        INSERT INTO admin_audit
            (id, actor, actor_member_id, action, target_id, details, created_at)
        SELECT $3, $4, $5, $6, m.id, NULL, $7 FROM m
    )
    SELECT id FROM m";

/// Blocks live member `$1` at `$2` (an earlier block keeps its time) with reason `$3`, and
/// writes the audit row (`$4` id, `$5` actor kind, `$6` acting member).
const BLOCK: &str = "
    WITH m AS (
        UPDATE members SET blocked_at = COALESCE(blocked_at, $2), blocked_reason = $3
        WHERE id = $1 AND deleted_at IS NULL
        RETURNING id
    ), audit AS (
        INSERT INTO admin_audit
            (id, actor, actor_member_id, action, target_id, details, created_at)
        SELECT $4, $5, $6, 'block', m.id, $3, $2 FROM m
    )
    SELECT id FROM m";

/// Revokes every live session of member `$1` at `$2`.
const REVOKE_ALL_SESSIONS: &str = "
    UPDATE sessions SET revoked_at = $2
    WHERE member_id = $1 AND revoked_at IS NULL AND expires_at > $2
    RETURNING id";

/// Lifts live member `$1`'s block and writes the audit row (`$2` time, `$3` id, `$4` actor
/// kind, `$5` acting member) and the events `$6`, only for a live member.
const UNBLOCK: &str = concat!(
    "
    WITH m AS (
        UPDATE members SET blocked_at = NULL, blocked_reason = NULL
        WHERE id = $1 AND deleted_at IS NULL
        RETURNING id
    ), audit AS (
        INSERT INTO admin_audit
            (id, actor, actor_member_id, action, target_id, details, created_at)
        SELECT $3, $4, $5, 'unblock', m.id, NULL, $2 FROM m
    ), events AS (",
    record_events!("$6"),
    " WHERE EXISTS (SELECT FROM m)
    )
    SELECT id FROM m"
);

/// Groups after `$1` (or from the newest), at most `$2`, with active member counts and plans.
///
/// `plan`: the billing account's plan; a group without a billing account is on `free`.
macro_rules! group_search {
    ($condition:literal) => {
        concat!(
            "SELECT g.id, g.slug, g.name, g.approval_required, g.created_at,
                (SELECT count(*) FROM group_members gm
                    WHERE gm.group_id = g.id AND gm.status = 'active') AS members_count,
                COALESCE((SELECT b.plan_code FROM billing_accounts b WHERE b.group_id = g.id),
                    'free') AS plan
            FROM groups g
            WHERE ($1::uuid IS NULL OR g.id < $1) AND ",
            $condition,
            " ORDER BY g.id DESC LIMIT $2"
        )
    };
}

const GROUPS_ALL: &str = group_search!("true");
/// `$3`: `LIKE` pattern of a lower-case slug or name prefix.
const GROUPS_PREFIX: &str = group_search!("(g.slug LIKE $3 OR lower(g.name) LIKE $3)");

/// The platform counts; `$1` starts the sign-in window.
const COUNTS: &str = "
    SELECT
        (SELECT count(*) FROM members WHERE deleted_at IS NULL) AS members,
        (SELECT count(*) FROM groups) AS groups,
        (SELECT count(*) FROM sessions WHERE created_at >= $1) AS sign_ins,
        (SELECT count(*) FROM members WHERE referred_by IS NOT NULL AND deleted_at IS NULL)
            AS referrals_redeemed";

/// Audit rows after `$1` (or from the newest), at most `$2`.
const AUDIT: &str = "
    SELECT id, actor, actor_member_id, action, target_id, details, created_at
    FROM admin_audit
    WHERE ($1::uuid IS NULL OR id < $1)
    ORDER BY id DESC
    LIMIT $2";

#[derive(Debug, QueryableByName)]
struct StandingRow {
    #[diesel(sql_type = Nullable<Text>)]
    phone: Option<String>,
    #[diesel(sql_type = Bool)]
    is_admin: bool,
    #[diesel(sql_type = Bool)]
    blocked: bool,
}

#[derive(Debug, QueryableByName)]
struct AdminMemberRow {
    #[diesel(embed)]
    member: CurrentMemberRow,
    #[diesel(sql_type = Bool)]
    is_admin: bool,
    #[diesel(sql_type = Bool)]
    blocked: bool,
}

#[derive(Debug, QueryableByName)]
struct DetailRow {
    #[diesel(embed)]
    member: CurrentMemberRow,
    #[diesel(sql_type = Bool)]
    is_admin: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    blocked_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    blocked_reason: Option<String>,
    #[diesel(sql_type = BigInt)]
    sessions_active: i64,
    #[diesel(sql_type = BigInt)]
    invitees_count: i64,
}

#[derive(Debug, QueryableByName)]
struct MemberGroupRow {
    #[diesel(sql_type = Text)]
    slug: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    status: String,
}

#[derive(Debug, QueryableByName)]
struct AdminGroupRow {
    #[diesel(embed)]
    group: GroupRow,
    #[diesel(sql_type = BigInt)]
    members_count: i64,
    #[diesel(sql_type = Text)]
    plan: String,
}

#[derive(Debug, QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
}

#[derive(Debug, QueryableByName)]
struct CountsRow {
    #[diesel(sql_type = BigInt)]
    members: i64,
    #[diesel(sql_type = BigInt)]
    groups: i64,
    #[diesel(sql_type = BigInt)]
    sign_ins: i64,
    #[diesel(sql_type = BigInt)]
    referrals_redeemed: i64,
}

#[derive(Debug, QueryableByName)]
struct AuditRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    actor: String,
    #[diesel(sql_type = Nullable<Uuid>)]
    actor_member_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Uuid)]
    target_id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    details: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// `prefix%` for `LIKE`, with the prefix's own `%`, `_` and `\` taken literally.
fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Admin flags, blocks, the audit trail and the admin listings in PostgreSQL.
#[derive(Clone)]
pub struct PgAdminRepository {
    pool: PgPool,
}

impl fmt::Debug for PgAdminRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgAdminRepository").field("pool", &self.pool.status()).finish()
    }
}

impl PgAdminRepository {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(
        &self,
    ) -> anyhow::Result<diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

/// The whole block of member `id`, in one transaction.
async fn block_member(
    conn: &mut AsyncPgConnection,
    id: MemberId,
    reason: Option<&str>,
    actor: Actor,
    now: DateTime<Utc>,
    events: &[Event],
) -> Result<Vec<SessionId>, TxError<TargetError>> {
    conn.transaction(async |conn| {
        let blocked: Option<IdRow> = diesel::sql_query(BLOCK)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Timestamptz, _>(now)
            .bind::<Nullable<Text>, _>(reason)
            .bind::<Uuid, _>(uuid::Uuid::now_v7())
            .bind::<Text, _>(actor.kind())
            .bind::<Nullable<Uuid>, _>(actor.member_id().map(|m| m.as_uuid()))
            .cached()
            .get_result(conn)
            .await
            .optional()?;
        if blocked.is_none() {
            return Err(TxError::Refused(TargetError::NotFound));
        }
        // A statement of its own: it sees any session that a sign-in holding the member's row
        // opened while the block waited for it.
        let revoked: Vec<IdRow> = diesel::sql_query(REVOKE_ALL_SESSIONS)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Timestamptz, _>(now)
            .cached()
            .load(conn)
            .await?;
        outbox::record(conn, events).await?;
        Ok(revoked.into_iter().map(|r| SessionId::from_uuid(r.id)).collect())
    })
    .await
}

#[async_trait]
impl AdminRepository for PgAdminRepository {
    async fn standing(&self, member: MemberId) -> anyhow::Result<Option<Standing>> {
        let mut conn = self.conn().await?;
        let row: Option<StandingRow> = diesel::sql_query(STANDING)
            .bind::<Uuid, _>(member.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading a member's standing")?;
        Ok(row.map(|r| Standing {
            phone: r.phone.map(PhoneNumber::from_trusted_e164),
            is_admin: r.is_admin,
            blocked: r.blocked,
        }))
    }

    async fn search_members(
        &self,
        search: &MemberSearch,
        after: Option<MemberId>,
        limit: u32,
    ) -> anyhow::Result<Vec<AdminMember>> {
        let mut conn = self.conn().await?;
        let after = after.map(|id| id.as_uuid());
        let limit = i64::from(limit);
        let rows: Vec<AdminMemberRow> = match search {
            MemberSearch::All => {
                diesel::sql_query(SEARCH_ALL)
                    .bind::<Nullable<Uuid>, _>(after)
                    .bind::<BigInt, _>(limit)
                    .load(&mut conn)
                    .await
            }
            MemberSearch::PhonePrefix(p) => {
                diesel::sql_query(SEARCH_PHONE)
                    .bind::<Nullable<Uuid>, _>(after)
                    .bind::<BigInt, _>(limit)
                    .bind::<Text, _>(prefix_pattern(p))
                    .load(&mut conn)
                    .await
            }
            MemberSearch::EmailPrefix(p) => {
                diesel::sql_query(SEARCH_EMAIL)
                    .bind::<Nullable<Uuid>, _>(after)
                    .bind::<BigInt, _>(limit)
                    .bind::<Text, _>(prefix_pattern(p))
                    .load(&mut conn)
                    .await
            }
            MemberSearch::NameOrCode { prefix, code } => {
                diesel::sql_query(SEARCH_NAME_OR_CODE)
                    .bind::<Nullable<Uuid>, _>(after)
                    .bind::<BigInt, _>(limit)
                    .bind::<Text, _>(prefix_pattern(prefix))
                    .bind::<Nullable<Text>, _>(code.as_ref().map(|c| c.as_str().to_owned()))
                    .load(&mut conn)
                    .await
            }
        }
        .context("searching members")?;
        Ok(rows
            .into_iter()
            .map(|r| AdminMember {
                member: r.member.into(),
                is_admin: r.is_admin,
                blocked: r.blocked,
            })
            .collect())
    }

    async fn member_detail(
        &self,
        id: MemberId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<MemberDetail>> {
        let mut conn = self.conn().await?;
        let row: Option<DetailRow> = diesel::sql_query(DETAIL)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Timestamptz, _>(now)
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading a member for an admin")?;
        let Some(row) = row else { return Ok(None) };
        let groups: Vec<MemberGroupRow> = diesel::sql_query(MEMBER_GROUPS)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<BigInt, _>(DETAIL_GROUPS)
            .cached()
            .load(&mut conn)
            .await
            .context("listing a member's groups")?;
        Ok(Some(MemberDetail {
            member: row.member.into(),
            is_admin: row.is_admin,
            block: row.blocked_at.map(|at| Block { at, reason: row.blocked_reason }),
            groups: groups
                .into_iter()
                .map(|g| MemberGroup { slug: g.slug, name: g.name, role: g.role, status: g.status })
                .collect(),
            sessions_active: count(row.sessions_active),
            invitees_count: count(row.invitees_count),
        }))
    }

    async fn set_admin(
        &self,
        phone: &PhoneNumber,
        admin: bool,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<MemberId, TargetError> {
        let mut conn = self.conn().await?;
        let action = if admin { AuditAction::Grant } else { AuditAction::Revoke };
        let row: Option<IdRow> = diesel::sql_query(SET_ADMIN)
            .bind::<Text, _>(phone.as_e164())
            .bind::<Bool, _>(admin)
            .bind::<Uuid, _>(uuid::Uuid::now_v7())
            .bind::<Text, _>(actor.kind())
            .bind::<Nullable<Uuid>, _>(actor.member_id().map(|m| m.as_uuid()))
            .bind::<Text, _>(action.as_str())
            .bind::<Timestamptz, _>(now)
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("setting the admin flag")?;
        row.map(|r| MemberId::from_uuid(r.id)).ok_or(TargetError::NotFound)
    }

    async fn block(
        &self,
        id: MemberId,
        reason: Option<BlockReason>,
        actor: Actor,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> Result<Vec<SessionId>, TargetError> {
        let mut conn = self.conn().await?;
        let reason = reason.as_ref().map(BlockReason::as_str);
        match block_member(&mut conn, id, reason, actor, now, events).await {
            Ok(revoked) => Ok(revoked),
            Err(TxError::Refused(e)) => Err(e),
            Err(TxError::Db(e)) => Err(anyhow::Error::new(e).context("blocking a member").into()),
        }
    }

    async fn unblock(
        &self,
        id: MemberId,
        actor: Actor,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> Result<(), TargetError> {
        let mut conn = self.conn().await?;
        let row: Option<IdRow> = diesel::sql_query(UNBLOCK)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Timestamptz, _>(now)
            .bind::<Uuid, _>(uuid::Uuid::now_v7())
            .bind::<Text, _>(actor.kind())
            .bind::<Nullable<Uuid>, _>(actor.member_id().map(|m| m.as_uuid()))
            .bind::<Text, _>(events_json(events))
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("unblocking a member")?;
        row.map(|_| ()).ok_or(TargetError::NotFound)
    }

    async fn list_groups(
        &self,
        search: &GroupSearch,
        after: Option<GroupId>,
        limit: u32,
    ) -> anyhow::Result<Vec<AdminGroup>> {
        let mut conn = self.conn().await?;
        let after = after.map(|id| id.as_uuid());
        let limit = i64::from(limit);
        let rows: Vec<AdminGroupRow> = match search {
            GroupSearch::All => {
                diesel::sql_query(GROUPS_ALL)
                    .bind::<Nullable<Uuid>, _>(after)
                    .bind::<BigInt, _>(limit)
                    .load(&mut conn)
                    .await
            }
            GroupSearch::Prefix(p) => {
                diesel::sql_query(GROUPS_PREFIX)
                    .bind::<Nullable<Uuid>, _>(after)
                    .bind::<BigInt, _>(limit)
                    .bind::<Text, _>(prefix_pattern(p))
                    .load(&mut conn)
                    .await
            }
        }
        .context("listing groups")?;
        Ok(rows
            .into_iter()
            .map(|r| AdminGroup {
                group: r.group.into(),
                members_count: count(r.members_count),
                plan: r.plan,
            })
            .collect())
    }

    async fn counts(&self, since: DateTime<Utc>) -> anyhow::Result<StoredCounts> {
        let mut conn = self.conn().await?;
        let row: CountsRow = diesel::sql_query(COUNTS)
            .bind::<Timestamptz, _>(since)
            .cached()
            .get_result(&mut conn)
            .await
            .context("counting for the stats")?;
        Ok(StoredCounts {
            members: count(row.members),
            groups: count(row.groups),
            sign_ins: count(row.sign_ins),
            referrals_redeemed: count(row.referrals_redeemed),
        })
    }

    async fn audit(
        &self,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> anyhow::Result<Vec<AuditEntry>> {
        let mut conn = self.conn().await?;
        let rows: Vec<AuditRow> = diesel::sql_query(AUDIT)
            .bind::<Nullable<Uuid>, _>(after)
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("reading the audit trail")?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.id,
                    actor: Actor::from_stored(&r.actor, r.actor_member_id.map(MemberId::from_uuid)),
                    action: AuditAction::parse(&r.action)
                        .with_context(|| format!("unknown audit action {:?}", r.action))?,
                    target: MemberId::from_uuid(r.target_id),
                    details: r.details,
                    at: r.created_at,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_pattern;

    #[test]
    fn a_prefix_pattern_takes_like_wildcards_literally() {
        assert_eq!(prefix_pattern("+7917"), "+7917%");
        assert_eq!(prefix_pattern("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
