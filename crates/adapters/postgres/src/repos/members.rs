//! [`MemberRepository`] on PostgreSQL.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Nullable, Text, Timestamptz, Uuid};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, QueryResult, QueryableByName,
};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_groups::Slug;
use onboard_kernel::events::Event;
use onboard_kernel::{MemberId, PhoneNumber, ReferralCode, SessionId};
use onboard_members::events::with_workspace_slug;
use onboard_members::ports::{MemberRepository, SignInRecord, SignInRequest};
use onboard_members::{
    DeleteMemberError, Member, MemberCard, MemberFilter, MemberList, MemberView, Profile,
    ProfilePatch, SignInStoreError, UpdateProfileError,
};

use crate::PgPool;
use crate::cached::CachedExt;
use crate::error::{TxError, is_transient, violated_unique};
use crate::repos::outbox::{self, events_json, record_events};
use crate::rows::{CurrentMemberRow, ProfileRow, SignInRow, ViewRow};
use crate::schema::{members, sessions};

/// The columns of [`CurrentMemberRow`], from `m` joined by [`member_joins!`].
macro_rules! member_columns {
    () => {
        "m.id, m.phone, m.first_name, m.last_name, m.email, m.referral_code, \
         r.referral_code AS referred_by_code, m.created_at, g.slug AS current_group"
    };
}

/// Joins a member `m` (with `referred_by` and `current_group_id`) to their referrer `r` and
/// their current group `g`.
macro_rules! member_joins {
    () => {
        " LEFT JOIN members r ON r.id = m.referred_by \
          LEFT JOIN groups g ON g.id = m.current_group_id"
    };
}

const MEMBER_BY_ID: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM members m",
    member_joins!(),
    " WHERE m.id = $1 AND m.deleted_at IS NULL"
);

const MEMBER_BY_PHONE: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM members m",
    member_joins!(),
    " WHERE m.phone = $1 AND m.deleted_at IS NULL"
);

/// Opens a session (`$2`, kind `$7`) for the live member with phone `$1` unless they are blocked, and answers
/// that member and whether they are blocked; no row when there is none. The share lock makes
/// a concurrent deletion or block wait for the session to commit, so it revokes it; a sign-in
/// that waited for a block sees the blocked row and opens nothing.
const OPEN_SESSION: &str = concat!(
    "WITH m AS (
        SELECT id, phone, first_name, last_name, email, referral_code, referred_by,
            current_group_id, created_at, blocked_at
        FROM members
        WHERE phone = $1 AND deleted_at IS NULL
        FOR SHARE
    ), s AS (
        INSERT INTO sessions
            (id, member_id, refresh_hash, user_agent, created_at, last_used_at, expires_at, kind)
        SELECT $2, m.id, $3, $4, $5, $5, $6, $7 FROM m WHERE m.blocked_at IS NULL
    )
    SELECT ",
    member_columns!(),
    ", m.blocked_at IS NOT NULL AS blocked FROM m",
    member_joins!()
);

/// Creates the member of phone `$2` unless the phone is taken, with `referred_by` set to the
/// live owner of code `$4` when `$4` is given; creates nothing when `$4` names no live member.
/// When `$6` is given, the new member's personal workspace comes with it: group `$6` (slug
/// `$7`, name `$8`), the member its active owner and the group their current one. With the
/// member comes their first session: `$9` (refresh hash `$10`, user agent `$11`, expiry
/// `$12`, kind `$14`). The events of the sign-up (the JSON array `$13`) are stored with the member, in
/// the same statement, only when it creates them. Answers the new member (as
/// [`OPEN_SESSION`] does) when it created them; no row when it created nothing.
///
/// One statement for the whole sign-up (it used to be a transaction of two statements after
/// the session lookup: five round trips, now two). The foreign keys from the member to the
/// group and back, and from the session to the member, are checked at the end of the
/// statement, when all rows exist. The new rows are this statement's own, so nobody can block
/// or delete the member before it commits, which is what [`OPEN_SESSION`]'s share lock is for.
const SIGN_UP: &str = concat!(
    "
    WITH m AS (
        INSERT INTO members
            (id, phone, referral_code, referred_by, referred_at, current_group_id, created_at)
        SELECT $1, $2, $3, r.id, CASE WHEN r.id IS NULL THEN NULL ELSE $5 END, $6, $5
        FROM (SELECT $4::text AS code) AS c
        LEFT JOIN members r ON r.referral_code = c.code AND r.deleted_at IS NULL
        WHERE c.code IS NULL OR r.id IS NOT NULL
        ON CONFLICT ON CONSTRAINT members_phone_key DO NOTHING
        RETURNING id, phone, first_name, last_name, email, referral_code, referred_by,
            current_group_id, created_at
    ), g AS (
        INSERT INTO groups (id, slug, name, approval_required, created_at)
        SELECT $6, $7, $8, false, $5 FROM m WHERE $6::uuid IS NOT NULL
        RETURNING id, slug
    ), o AS (
        INSERT INTO group_members (group_id, member_id, role, status, joined_at)
        SELECT g.id, m.id, 'owner', 'active', $5 FROM g CROSS JOIN m
    ), s AS (
        INSERT INTO sessions
            (id, member_id, refresh_hash, user_agent, created_at, last_used_at, expires_at, kind)
        SELECT $9, m.id, $10, $11, $5, $5, $12, $14 FROM m
    ), events AS (",
    record_events!("$13"),
    " WHERE EXISTS (SELECT FROM m)
    )
    SELECT m.id, m.phone, m.first_name, m.last_name, m.email, m.referral_code,
        r.referral_code AS referred_by_code, m.created_at, g.slug AS current_group,
        false AS blocked
    FROM m
    LEFT JOIN members r ON r.id = m.referred_by
    LEFT JOIN g ON g.id = m.current_group_id"
);

/// How many slugs a sign-up tries for the personal workspace before it gives up (a clash of
/// random 10-character slugs is already a rarity).
const WORKSPACE_SLUG_ATTEMPTS: usize = 3;

/// The member `$1`, once per invitee among the newest `$2` (or once with no invitee), with
/// the count of all their invitees.
const PROFILE: &str = concat!(
    "WITH m AS (
        SELECT ",
    member_columns!(),
    " FROM members m",
    member_joins!(),
    " WHERE m.id = $1 AND m.deleted_at IS NULL
    ), i AS (
        SELECT id, first_name, last_name, phone, referred_at
        FROM members
        WHERE referred_by = $1 AND deleted_at IS NULL
        ORDER BY referred_at DESC, id DESC
        LIMIT $2
    )
    SELECT m.*,
        (SELECT count(*) FROM members c WHERE c.referred_by = $1 AND c.deleted_at IS NULL)
            AS invitees_count,
        i.id AS invitee_id, i.first_name AS invitee_first_name,
        i.last_name AS invitee_last_name, i.phone AS invitee_phone
    FROM m LEFT JOIN i ON true
    ORDER BY i.referred_at DESC, i.id DESC"
);

/// The live member `$2` as viewer `$1` may see them: `full` when it is the viewer or they
/// share a group in which both are active.
const VIEW: &str = concat!(
    "SELECT ",
    member_columns!(),
    ", m.id = $1 OR EXISTS (
        SELECT FROM group_members mine
        JOIN group_members theirs ON theirs.group_id = mine.group_id
        WHERE mine.member_id = $1 AND mine.status = 'active'
            AND theirs.member_id = m.id AND theirs.status = 'active'
    ) AS full
    FROM members m",
    member_joins!(),
    " WHERE m.id = $2 AND m.deleted_at IS NULL"
);

/// Applies the non-null fields of a patch to the live member `$1`, stores the events `$5` with
/// the change (none when there is no such member), and answers the member.
const UPDATE_PROFILE: &str = concat!(
    "WITH m AS (
        UPDATE members
        SET first_name = COALESCE($2, first_name),
            last_name = COALESCE($3, last_name),
            email = COALESCE($4, email)
        WHERE id = $1 AND deleted_at IS NULL
        RETURNING id, phone, first_name, last_name, email, referral_code, referred_by,
            current_group_id, created_at
    ), events AS (",
    record_events!("$5"),
    " WHERE EXISTS (SELECT FROM m)
    )
    SELECT ",
    member_columns!(),
    " FROM m",
    member_joins!()
);

/// Deleting member `$1`, step 1: locks the groups in which they are active, in id order, so
/// that nobody joins them (a join's foreign-key check waits for this lock) and no join
/// request there is approved until the deletion commits.
const LOCK_MEMBER_GROUPS: &str = "
    SELECT id FROM groups
    WHERE id IN (SELECT group_id FROM group_members WHERE member_id = $1 AND status = 'active')
    ORDER BY id
    FOR UPDATE";

/// Deleting member `$1`, step 2 (a new snapshot: the groups are locked): locks, in the order
/// `change_role` and `remove` lock them, the member's memberships and the active owners of
/// the groups in which the member is active, and answers, per group in which the member is
/// still active, whether they are an owner there, how many other active owners there are and
/// how many active members.
const INSPECT_MEMBER_GROUPS: &str = "
    WITH locked AS (
        SELECT group_id, member_id, role, status
        FROM group_members
        WHERE group_id IN (
                SELECT group_id FROM group_members WHERE member_id = $1 AND status = 'active'
            )
            AND (member_id = $1 OR (role = 'owner' AND status = 'active'))
        ORDER BY group_id, member_id
        FOR UPDATE
    )
    SELECT l.group_id,
        bool_or(l.member_id = $1 AND l.role = 'owner') AS is_owner,
        count(*) FILTER (WHERE l.member_id <> $1) AS other_owners,
        (SELECT count(*) FROM group_members a WHERE a.group_id = l.group_id AND a.status = 'active')
            AS active_members
    FROM locked l
    GROUP BY l.group_id
    HAVING bool_or(l.member_id = $1 AND l.status = 'active')";

/// Deleting member `$1` at `$3`, step 3: deletes the groups `$2` (where they are the only
/// active member: their memberships, custom roles and anyone's current group go with them),
/// the member's memberships, and the member themself (phone and e-mail freed). A row when the
/// member was live.
const DELETE_MEMBER: &str = "
    WITH solo AS (
        DELETE FROM groups WHERE id = ANY($2)
    ), memberships AS (
        DELETE FROM group_members WHERE member_id = $1
    ), m AS (
        UPDATE members
        SET deleted_at = $3, phone = NULL, email = NULL, current_group_id = NULL
        WHERE id = $1 AND deleted_at IS NULL
        RETURNING id
    )
    SELECT id FROM m";

// The seed referral-api's users list.
/// The live members matching the filter, oldest first, page `$10` rows from `$11`, each with
/// the count of all that match. A NULL parameter filters nothing; `$7` is a LIKE prefix pattern
/// (lower-cased, escaped) over phone, e-mail and names, `$8` the search text as a code.
const LIST_MEMBERS: &str = concat!(
    "SELECT ",
    member_columns!(),
    ", count(*) OVER () AS total
    FROM members m",
    member_joins!(),
    " WHERE m.deleted_at IS NULL
        AND ($1::text IS NULL OR m.email = $1)
        AND ($2::text IS NULL OR m.first_name = $2)
        AND ($3::text IS NULL OR m.last_name = $3)
        AND ($4::text IS NULL OR m.phone = $4)
        AND ($5::text IS NULL OR m.referral_code = $5)
        AND ($6::text IS NULL OR r.referral_code = $6)
        AND ($7::text IS NULL
            OR m.phone LIKE $7 ESCAPE '\\'
            OR m.email LIKE $7 ESCAPE '\\'
            OR lower(m.first_name) LIKE $7 ESCAPE '\\'
            OR lower(m.last_name) LIKE $7 ESCAPE '\\'
            OR m.referral_code = $8)
    ORDER BY m.created_at, m.id
    LIMIT $9 OFFSET $10"
);

/// [`LIST_MEMBERS`] without the page: how many match (asked only for a page past the end).
const COUNT_MEMBERS: &str = "
    SELECT count(*) AS total
    FROM members m LEFT JOIN members r ON r.id = m.referred_by
    WHERE m.deleted_at IS NULL
        AND ($1::text IS NULL OR m.email = $1)
        AND ($2::text IS NULL OR m.first_name = $2)
        AND ($3::text IS NULL OR m.last_name = $3)
        AND ($4::text IS NULL OR m.phone = $4)
        AND ($5::text IS NULL OR m.referral_code = $5)
        AND ($6::text IS NULL OR r.referral_code = $6)
        AND ($7::text IS NULL
            OR m.phone LIKE $7 ESCAPE '\\'
            OR m.email LIKE $7 ESCAPE '\\'
            OR lower(m.first_name) LIKE $7 ESCAPE '\\'
            OR lower(m.last_name) LIKE $7 ESCAPE '\\'
            OR m.referral_code = $8)";

#[derive(Debug, QueryableByName)]
struct ListedMemberRow {
    #[diesel(embed)]
    member: CurrentMemberRow,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

#[derive(Debug, QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// A LIKE pattern for values starting with `text`, lower-cased, with `\`, `%` and `_` escaped.
fn prefix_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// How many times [`PgMemberRepository::delete`] starts over after the database broke a
/// deadlock by aborting it.
const DELETE_ATTEMPTS: usize = 3;

#[derive(Debug, QueryableByName)]
struct MemberGroupRow {
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = Bool)]
    is_owner: bool,
    #[diesel(sql_type = BigInt)]
    other_owners: i64,
    #[diesel(sql_type = BigInt)]
    active_members: i64,
}

/// Members and profiles in PostgreSQL.
#[derive(Clone)]
pub struct PgMemberRepository {
    pool: PgPool,
}

impl fmt::Debug for PgMemberRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgMemberRepository").field("pool", &self.pool.status()).finish()
    }
}

impl PgMemberRepository {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

/// Runs [`OPEN_SESSION`] for the request.
async fn open_session(
    conn: &mut AsyncPgConnection,
    request: &SignInRequest,
) -> QueryResult<Option<SignInRow>> {
    let session = &request.session;
    diesel::sql_query(OPEN_SESSION)
        .bind::<Text, _>(request.phone.as_e164())
        .bind::<Uuid, _>(session.id.as_uuid())
        .bind::<Bytea, _>(&session.refresh_hash.0[..])
        .bind::<Nullable<Text>, _>(session.user_agent.as_deref())
        .bind::<Timestamptz, _>(request.now)
        .bind::<Timestamptz, _>(session.expires_at)
        .bind::<Text, _>(session.kind.as_str())
        .cached()
        .get_result(conn)
        .await
        .optional()
}

/// Runs [`SIGN_UP`] for the request: the new member, when it created them.
async fn create_member(
    conn: &mut AsyncPgConnection,
    request: &SignInRequest,
) -> QueryResult<Option<SignInRow>> {
    let workspace = request.personal_workspace.as_ref();
    let session = &request.session;
    diesel::sql_query(SIGN_UP)
        .bind::<Uuid, _>(request.new_member_id.as_uuid())
        .bind::<Text, _>(request.phone.as_e164())
        .bind::<Text, _>(request.new_referral_code.as_str())
        .bind::<Nullable<Text>, _>(request.referred_by.as_ref().map(ReferralCode::as_str))
        .bind::<Timestamptz, _>(request.now)
        .bind::<Nullable<Uuid>, _>(workspace.map(|w| w.id.as_uuid()))
        .bind::<Nullable<Text>, _>(workspace.map(|w| w.slug.as_str()))
        .bind::<Nullable<Text>, _>(workspace.map(|w| w.name.as_str()))
        .bind::<Uuid, _>(session.id.as_uuid())
        .bind::<Bytea, _>(&session.refresh_hash.0[..])
        .bind::<Nullable<Text>, _>(session.user_agent.as_deref())
        .bind::<Timestamptz, _>(session.expires_at)
        .bind::<Text, _>(events_json(&request.created_events))
        .bind::<Text, _>(session.kind.as_str())
        .cached()
        .get_result(conn)
        .await
        .optional()
}

/// Creates the member of a new phone (with their personal workspace, if asked) and their
/// session in one statement; when it created nothing (a concurrent sign-in just took the
/// phone, or the referral code names no live member), opens the session for whichever member
/// holds the phone now, in a statement of its own that sees the other sign-in's commit.
async fn sign_up(
    conn: &mut AsyncPgConnection,
    request: &SignInRequest,
) -> Result<SignInRecord, TxError<SignInStoreError>> {
    if let Some(row) = create_member(conn, request).await? {
        return Ok(SignInRecord { member: row.member.into(), created: true });
    }
    match open_session(conn, request).await? {
        Some(row) if row.blocked => Err(TxError::Refused(SignInStoreError::Blocked)),
        Some(row) => Ok(SignInRecord { member: row.member.into(), created: false }),
        None if request.referred_by.is_some() => {
            Err(TxError::Refused(SignInStoreError::ReferralCodeNotFound))
        }
        None => Err(TxError::Refused(SignInStoreError::Unexpected(anyhow::anyhow!(
            "the member holding the phone was deleted during sign-in"
        )))),
    }
}

/// What a member's deletion does to the groups they are active in.
#[derive(Debug)]
enum GroupsOfDeleted {
    /// The groups in which the member is the only active member, to delete with them.
    Solo(Vec<uuid::Uuid>),
    /// The member is the only active owner of a group with other active members.
    LastOwner,
}

/// Runs [`LOCK_MEMBER_GROUPS`] and [`INSPECT_MEMBER_GROUPS`] for member `id`.
async fn groups_of_deleted(
    conn: &mut AsyncPgConnection,
    id: MemberId,
) -> QueryResult<GroupsOfDeleted> {
    diesel::sql_query(LOCK_MEMBER_GROUPS)
        .bind::<Uuid, _>(id.as_uuid())
        .cached()
        .execute(conn)
        .await?;
    let rows: Vec<MemberGroupRow> = diesel::sql_query(INSPECT_MEMBER_GROUPS)
        .bind::<Uuid, _>(id.as_uuid())
        .cached()
        .load(conn)
        .await?;
    if rows.iter().any(|r| r.is_owner && r.other_owners == 0 && r.active_members > 1) {
        return Ok(GroupsOfDeleted::LastOwner);
    }
    Ok(GroupsOfDeleted::Solo(
        rows.into_iter().filter(|r| r.active_members <= 1).map(|r| r.group_id).collect(),
    ))
}

/// The whole deletion of member `id`, in one transaction.
async fn delete_member(
    conn: &mut AsyncPgConnection,
    id: MemberId,
    now: DateTime<Utc>,
    events: &[Event],
) -> Result<Vec<SessionId>, TxError<DeleteMemberError>> {
    conn.transaction(async |conn| {
        let solo = match groups_of_deleted(conn, id).await? {
            GroupsOfDeleted::LastOwner => {
                return Err(TxError::Refused(DeleteMemberError::LastOwner));
            }
            GroupsOfDeleted::Solo(solo) => solo,
        };
        let deleted = diesel::sql_query(DELETE_MEMBER)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Array<Uuid>, _>(solo)
            .bind::<Timestamptz, _>(now)
            .cached()
            .execute(conn)
            .await?;
        if deleted == 0 {
            return Err(TxError::Refused(DeleteMemberError::NotFound));
        }
        // A statement of its own: it sees any session that a sign-in holding the member's row
        // opened while the deletion waited for it.
        let revoked: Vec<uuid::Uuid> = diesel::update(
            sessions::table
                .filter(sessions::member_id.eq(id.as_uuid()))
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::expires_at.gt(now)),
        )
        .set(sessions::revoked_at.eq(now))
        .returning(sessions::id)
        .get_results(conn)
        .await?;
        outbox::record(conn, events).await?;
        Ok(revoked.into_iter().map(SessionId::from_uuid).collect())
    })
    .await
}

#[async_trait]
impl MemberRepository for PgMemberRepository {
    async fn find_by_phone(&self, phone: &PhoneNumber) -> anyhow::Result<Option<Member>> {
        let mut conn = self.conn().await?;
        let row: Option<CurrentMemberRow> = diesel::sql_query(MEMBER_BY_PHONE)
            .bind::<Text, _>(phone.as_e164())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("finding a member by phone")?;
        Ok(row.map(Member::from))
    }

    async fn referral_code_owner(&self, code: &ReferralCode) -> anyhow::Result<Option<MemberId>> {
        let mut conn = self.conn().await?;
        let owner: Option<uuid::Uuid> = members::table
            .filter(members::referral_code.eq(code.as_str()))
            .filter(members::deleted_at.is_null())
            .select(members::id)
            .first(&mut conn)
            .await
            .optional()
            .context("looking up a referral code")?;
        Ok(owner.map(MemberId::from_uuid))
    }

    /// Also creates the personal workspace of a new member when the request has one. If its
    /// slug is taken (two random 10-character slugs met), the sign-up starts over with a fresh
    /// [`Slug::personal`], up to three slugs in all; then it fails as unexpected.
    async fn sign_in(&self, mut request: SignInRequest) -> Result<SignInRecord, SignInStoreError> {
        let mut conn = self.conn().await?;
        // A known phone: one statement, no explicit transaction.
        if let Some(row) = open_session(&mut conn, &request).await.context("opening a session")? {
            if row.blocked {
                return Err(SignInStoreError::Blocked);
            }
            return Ok(SignInRecord { member: row.member.into(), created: false });
        }
        // A new phone, as far as we saw.
        let mut attempt = 1;
        loop {
            let error = match sign_up(&mut conn, &request).await {
                Ok(record) => return Ok(record),
                Err(TxError::Refused(e)) => return Err(e),
                Err(TxError::Db(e)) => e,
            };
            match violated_unique(&error) {
                Some("members_referral_code_key") => {
                    return Err(SignInStoreError::ReferralCodeCollision);
                }
                Some("groups_slug_key") if attempt < WORKSPACE_SLUG_ATTEMPTS => {
                    attempt += 1;
                    if let Some(workspace) = request.personal_workspace.as_mut() {
                        workspace.slug = Slug::personal().as_str().to_owned();
                        request.created_events = with_workspace_slug(
                            &request.created_events,
                            workspace.id,
                            &workspace.slug,
                        );
                    }
                }
                _ => return Err(anyhow::Error::new(error).context("signing up").into()),
            }
        }
    }

    async fn get(&self, id: MemberId) -> anyhow::Result<Option<Member>> {
        let mut conn = self.conn().await?;
        let row: Option<CurrentMemberRow> = diesel::sql_query(MEMBER_BY_ID)
            .bind::<Uuid, _>(id.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("getting a member")?;
        Ok(row.map(Member::from))
    }

    async fn profile(&self, id: MemberId, invitees: u32) -> anyhow::Result<Option<Profile>> {
        let mut conn = self.conn().await?;
        let rows: Vec<ProfileRow> = diesel::sql_query(PROFILE)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<BigInt, _>(i64::from(invitees))
            .cached()
            .load(&mut conn)
            .await
            .context("loading a profile")?;
        let mut rows = rows.into_iter();
        let Some(first) = rows.next() else {
            return Ok(None);
        };
        let invitees_count = u64::try_from(first.invitees_count).unwrap_or_default();
        let invitees =
            first.invitee().into_iter().chain(rows.filter_map(|r| r.invitee())).collect();
        Ok(Some(Profile { member: first.member.into(), invitees, invitees_count }))
    }

    async fn view(&self, viewer: MemberId, id: MemberId) -> anyhow::Result<Option<MemberView>> {
        let mut conn = self.conn().await?;
        let row: Option<ViewRow> = diesel::sql_query(VIEW)
            .bind::<Uuid, _>(viewer.as_uuid())
            .bind::<Uuid, _>(id.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("viewing a member")?;
        Ok(row.map(|row| {
            let member = Member::from(row.member);
            if row.full {
                MemberView::Full(member)
            } else {
                MemberView::Card(MemberCard::from(&member))
            }
        }))
    }

    async fn update_profile(
        &self,
        id: MemberId,
        patch: &ProfilePatch,
        events: &[Event],
    ) -> Result<Member, UpdateProfileError> {
        if *patch == ProfilePatch::default() {
            return self.get(id).await?.ok_or(UpdateProfileError::NotFound);
        }
        let mut conn = self.conn().await?;
        let row: Option<CurrentMemberRow> = diesel::sql_query(UPDATE_PROFILE)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Nullable<Text>, _>(patch.first_name.as_ref().map(|n| n.as_str()))
            .bind::<Nullable<Text>, _>(patch.last_name.as_ref().map(|n| n.as_str()))
            .bind::<Nullable<Text>, _>(patch.email.as_ref().map(|e| e.as_str()))
            .bind::<Text, _>(events_json(events))
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| match violated_unique(&e) {
                Some("members_email_key") => UpdateProfileError::EmailTaken,
                _ => anyhow::Error::new(e).context("updating a profile").into(),
            })?;
        row.map(Member::from).ok_or(UpdateProfileError::NotFound)
    }

    /// Refuses with [`DeleteMemberError::LastOwner`], writing nothing, while the member is the
    /// only active owner of a group with other active members. Otherwise deletes, in the same
    /// transaction, the groups in which the member is the only active member (their personal
    /// workspace), all their memberships and join requests, then the member (phone and e-mail
    /// freed, current group cleared) and their live sessions.
    async fn delete(
        &self,
        id: MemberId,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> Result<Vec<SessionId>, DeleteMemberError> {
        let mut conn = self.conn().await?;
        let mut attempt = 1;
        loop {
            match delete_member(&mut conn, id, now, events).await {
                Ok(revoked) => return Ok(revoked),
                Err(TxError::Refused(e)) => return Err(e),
                Err(TxError::Db(e)) if is_transient(&e) && attempt < DELETE_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(error = %e, "member deletion aborted; starting over");
                }
                Err(TxError::Db(e)) => {
                    return Err(anyhow::Error::new(e).context("deleting a member").into());
                }
            }
        }
    }

    // The seed referral-api's users list.
    async fn list_members(
        &self,
        filter: &MemberFilter,
        offset: u64,
        limit: u32,
    ) -> anyhow::Result<MemberList> {
        let mut conn = self.conn().await?;
        let pattern = filter.search.as_deref().map(prefix_pattern);
        let code = filter.search.as_deref().map(|s| s.trim().to_ascii_uppercase());
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        macro_rules! bind_filter {
            ($query:expr) => {
                $query
                    .bind::<Nullable<Text>, _>(filter.email.as_ref().map(|e| e.as_str()))
                    .bind::<Nullable<Text>, _>(filter.first_name.as_deref())
                    .bind::<Nullable<Text>, _>(filter.last_name.as_deref())
                    .bind::<Nullable<Text>, _>(filter.phone.as_ref().map(PhoneNumber::as_e164))
                    .bind::<Nullable<Text>, _>(
                        filter.referral_code.as_ref().map(ReferralCode::as_str),
                    )
                    .bind::<Nullable<Text>, _>(
                        filter.referred_by.as_ref().map(ReferralCode::as_str),
                    )
                    .bind::<Nullable<Text>, _>(pattern.as_deref())
                    .bind::<Nullable<Text>, _>(code.as_deref())
            };
        }
        // Not `.cached()`: planned with its parameters known, an absent filter (`$n IS NULL`)
        // folds away and a search prefix can use the prefix indexes of the admin migration,
        // which a generic plan of a prepared statement could not.
        let rows: Vec<ListedMemberRow> = bind_filter!(diesel::sql_query(LIST_MEMBERS))
            .bind::<BigInt, _>(i64::from(limit))
            .bind::<BigInt, _>(offset)
            .load(&mut conn)
            .await
            .context("listing members")?;
        let total = match <[ListedMemberRow]>::first(&rows) {
            Some(row) => row.total,
            None if offset == 0 => 0,
            None => {
                let row: CountRow = bind_filter!(diesel::sql_query(COUNT_MEMBERS))
                    .get_result(&mut conn)
                    .await
                    .context("counting members")?;
                row.total
            }
        };
        Ok(MemberList {
            count: u64::try_from(total).unwrap_or_default(),
            items: rows.into_iter().map(|r| Member::from(r.member)).collect(),
        })
    }
}
