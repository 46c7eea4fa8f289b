//! [`GroupRepository`] on PostgreSQL.
//!
//! Every method is one statement or one transaction. The rules only storage can settle are
//! settled here:
//!
//! - Slugs and custom role names are unique constraints (`groups_slug_key`,
//!   `group_roles_pkey`), so concurrent creates end in one row and one refusal.
//! - The last-owner rule: a role change or removal first locks, `FOR UPDATE` and in member id
//!   order, the target's membership and the group's active owner rows, then counts the
//!   owners among the locked rows. Two owners demoting (or removing) each other at once run
//!   one after the other, and the second finds itself the last owner.
//! - A join request is decided by `UPDATE`/`DELETE ... WHERE status = 'pending'`: of an
//!   approval and a rejection at once, the second finds no pending row.
//! - The current group is set only while an active membership exists, which the statement
//!   share-locks so that a concurrent removal waits for it (and then clears it) or happens
//!   before it (and then it is refused).
//!
//! Lock order, to stay clear of deadlocks: a group row, then a custom role row, then
//! membership rows in `(group_id, member_id)` order, then a member row. A transaction the
//! database still aborts to break a deadlock is run again.

use std::collections::BTreeSet;
use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Uuid};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, QueryableByName};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_groups::ports::{GroupRepository, JoinRecord, NewGroup};
use onboard_groups::{
    ChangeRoleRefusal, CreateGroupError, Group, GroupCursor, GroupMember, GroupPatch, MemberCursor,
    Membership, MembershipStatus, MyGroup, Permission, RemoveRefusal, Role, RoleName, RoleRefusal,
    SetCurrentGroupError, Slug,
};
use onboard_kernel::events::Event;
use onboard_kernel::{GroupId, MemberId};

use crate::PgPool;
use crate::cached::CachedExt;
use crate::error::{TxError, is_transient, violated_foreign_key, violated_unique};
use crate::repos::outbox::{self, events_json, record_events};
use crate::rows::{GroupMemberRow, GroupMembershipRow, GroupRow, MyGroupRow, RoleRow};
use crate::schema::{group_roles, members};

/// Stores group `$1` (slug `$2`, name `$3`, `approval_required` `$4`, created at `$5`) with
/// member `$6` as its active owner, joined at `$5`; answers the group.
const CREATE: &str = concat!(
    "WITH g AS (
        INSERT INTO groups (id, slug, name, approval_required, created_at)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING id, slug, name, approval_required, created_at
    ), o AS (
        INSERT INTO group_members (group_id, member_id, role, status, joined_at)
        SELECT id, $6, 'owner', 'active', $5 FROM g
    ), events AS (",
    record_events!("$7"),
    " WHERE EXISTS (SELECT FROM g)
    )
    SELECT id, slug, name, approval_required, created_at FROM g"
);

/// The group of slug `$1` with member `$2`'s membership and, for a custom role, its stored
/// permissions.
const FIND_FOR_MEMBER: &str = "
    SELECT g.id, g.slug, g.name, g.approval_required, g.created_at,
        gm.role, gm.status, r.permissions AS role_permissions
    FROM groups g
    LEFT JOIN group_members gm ON gm.group_id = g.id AND gm.member_id = $2
    LEFT JOIN group_roles r ON r.group_id = g.id AND r.name = gm.role
    WHERE g.slug = $1";

/// The `$4` groups in which member `$1` is active, in join order, after the cursor
/// (`$2`, `$3`; NULL for the first page). The row comparison is an index condition on
/// `group_members_member_idx`, so a page costs the same however deep it is.
const LIST_MINE: &str = "
    SELECT g.id, g.slug, g.name, g.approval_required, g.created_at,
        gm.role AS my_role, gm.joined_at
    FROM group_members gm
    JOIN groups g ON g.id = gm.group_id
    WHERE gm.member_id = $1 AND gm.status = 'active'
        AND (gm.joined_at, gm.group_id)
            > (COALESCE($2, '-infinity'), COALESCE($3, '00000000-0000-0000-0000-000000000000'))
    ORDER BY gm.joined_at, gm.group_id
    LIMIT $4";

/// Applies the non-null fields of a patch to group `$1` and answers it.
const UPDATE: &str = "
    UPDATE groups
    SET name = COALESCE($2, name), approval_required = COALESCE($3, approval_required)
    WHERE id = $1
    RETURNING id, slug, name, approval_required, created_at";

/// Deletes group `$1` (memberships and custom roles cascade) and clears it as anyone's
/// current group. The foreign key's `ON DELETE SET NULL` also clears it for a member whose
/// change committed after this statement's snapshot.
const DELETE: &str = concat!(
    "WITH cleared AS (
        UPDATE members SET current_group_id = NULL WHERE current_group_id = $1
    ), deleted AS (
        DELETE FROM groups WHERE id = $1 RETURNING id
    ), events AS (",
    record_events!("$2"),
    " WHERE EXISTS (SELECT FROM deleted)
    )
    SELECT count(*) AS count FROM deleted"
);

/// The group of id `$1`.
const FIND: &str = "
    SELECT id, slug, name, approval_required, created_at FROM groups WHERE id = $1";

/// The active members of group `$1` whose role is one of `$2`, in member id order.
const ACTIVE_WITH_ROLES: &str = "
    SELECT member_id FROM group_members
    WHERE group_id = $1 AND status = 'active' AND role = ANY ($2)
    ORDER BY member_id";

/// The columns of [`GroupMemberRow`], from `group_members gm JOIN members m`.
macro_rules! group_member_columns {
    () => {
        "gm.member_id, m.first_name, m.last_name, m.phone, gm.role, gm.status, gm.joined_at"
    };
}

/// The `$5` members of group `$1` with status `$2`, in join order, after the cursor (`$3`,
/// `$4`; NULL for the first page): a range of `group_members_group_idx`.
const MEMBERS: &str = concat!(
    "SELECT ",
    group_member_columns!(),
    " FROM group_members gm
    JOIN members m ON m.id = gm.member_id
    WHERE gm.group_id = $1 AND gm.status = $2
        AND (gm.joined_at, gm.member_id)
            > (COALESCE($3, '-infinity'), COALESCE($4, '00000000-0000-0000-0000-000000000000'))
    ORDER BY gm.joined_at, gm.member_id
    LIMIT $5"
);

/// Member `$2`'s membership in group `$1`, any status.
const MEMBER: &str = concat!(
    "SELECT ",
    group_member_columns!(),
    " FROM group_members gm
    JOIN members m ON m.id = gm.member_id
    WHERE gm.group_id = $1 AND gm.member_id = $2"
);

/// Step 1 of a role change or removal in group `$1` of target `$2`: key-share-locks the
/// custom role `$3` (if given and it exists, so that it cannot be deleted under the change),
/// then locks the target's membership and the group's active owners, in member id order.
/// Answers whether the custom role exists, the target's role if they are active, and how
/// many other active owners there are.
///
/// The scalar subqueries run in the order written: the role row is locked before the
/// membership rows, as [`DELETE_ROLE`] does.
const LOCK_FOR_CHANGE: &str = "
    WITH custom AS (
        SELECT name FROM group_roles WHERE group_id = $1 AND name = $3 FOR KEY SHARE
    ), locked AS (
        SELECT member_id, role, status
        FROM group_members
        WHERE group_id = $1 AND (member_id = $2 OR (role = 'owner' AND status = 'active'))
        ORDER BY member_id
        FOR UPDATE
    )
    SELECT EXISTS (SELECT FROM custom) AS role_exists,
        (SELECT role FROM locked WHERE member_id = $2 AND status = 'active') AS target_role,
        (SELECT count(*) FROM locked
            WHERE member_id <> $2 AND role = 'owner' AND status = 'active') AS other_owners";

/// Step 2 of a role change: gives member `$2` of group `$1` the role `$3` and answers them.
const SET_ROLE: &str = concat!(
    "WITH gm AS (
        UPDATE group_members SET role = $3
        WHERE group_id = $1 AND member_id = $2
        RETURNING member_id, role, status, joined_at
    )
    SELECT ",
    group_member_columns!(),
    " FROM gm JOIN members m ON m.id = gm.member_id"
);

/// Step 2 of a removal: deletes member `$2`'s membership of group `$1` and clears their
/// current group if it was this one. A statement of its own after the locks, so its snapshot
/// sees a current group set by a change that held the membership before.
const REMOVE: &str = "
    WITH gone AS (
        DELETE FROM group_members WHERE group_id = $1 AND member_id = $2 RETURNING member_id
    )
    UPDATE members SET current_group_id = NULL
    WHERE id IN (SELECT member_id FROM gone) AND current_group_id = $1";

/// Moves the members of group `$1` holding role `$2` to `member` (after the role row is
/// deleted, in a statement of its own so that it sees every change that held the row).
const MOVE_TO_MEMBER: &str = "
    UPDATE group_members SET role = 'member' WHERE group_id = $1 AND role = $2";

/// Adds member `$2` to group `$1` with role `member`, status `$3`, joined at `$4`, unless a
/// membership exists. Answers `added`, or the status of the membership found in this
/// statement's snapshot; no row when a concurrent join added it after the snapshot.
///
/// The membership's events (`$5`, [`events_json`]) are stored only when it is added.
const JOIN: &str = concat!(
    "WITH added AS (
        INSERT INTO group_members (group_id, member_id, role, status, joined_at)
        VALUES ($1, $2, 'member', $3, $4)
        ON CONFLICT ON CONSTRAINT group_members_pkey DO NOTHING
        RETURNING member_id
    ), events AS (",
    record_events!("$5"),
    " WHERE EXISTS (SELECT FROM added)
    )
    SELECT 'added'::text AS outcome FROM added
    UNION ALL
    SELECT status FROM group_members
    WHERE group_id = $1 AND member_id = $2 AND NOT EXISTS (SELECT FROM added)"
);

/// The status of member `$2`'s membership of group `$1`.
const MEMBERSHIP_STATUS: &str = "
    SELECT status AS outcome FROM group_members WHERE group_id = $1 AND member_id = $2";

/// Makes member `$2`'s PENDING membership of group `$1` active as `member`, joined at `$3`,
/// and answers it. The group row is key-share-locked first, so a member deletion that
/// locked the group (to decide whether it dies with its last member) settles first.
const APPROVE: &str = concat!(
    "WITH g AS (
        SELECT id FROM groups WHERE id = $1 FOR KEY SHARE
    ), gm AS (
        UPDATE group_members SET status = 'active', role = 'member', joined_at = $3
        WHERE group_id = (SELECT id FROM g) AND member_id = $2 AND status = 'pending'
        RETURNING member_id, role, status, joined_at
    )
    SELECT ",
    group_member_columns!(),
    " FROM gm JOIN members m ON m.id = gm.member_id"
);

/// Deletes member `$2`'s PENDING membership of group `$1`.
const REJECT: &str = "
    DELETE FROM group_members WHERE group_id = $1 AND member_id = $2 AND status = 'pending'";

/// Makes the group of slug `$2` member `$1`'s current group if they are an active member of
/// it, key-share-locking the membership so that a concurrent removal either waits for this
/// change (and then clears it) or wins (and this finds no membership).
const SET_CURRENT: &str = "
    WITH g AS (
        SELECT id FROM groups WHERE slug = $2
    ), gm AS (
        SELECT group_id FROM group_members
        WHERE group_id = (SELECT id FROM g) AND member_id = $1 AND status = 'active'
        FOR KEY SHARE
    ), changed AS (
        UPDATE members SET current_group_id = (SELECT group_id FROM gm)
        WHERE id = $1 AND deleted_at IS NULL AND EXISTS (SELECT FROM gm)
        RETURNING id
    )
    SELECT EXISTS (SELECT FROM g) AS group_found, EXISTS (SELECT FROM changed) AS changed";

/// How many times a transaction starts over after the database aborted it to break a
/// deadlock.
const ATTEMPTS: usize = 3;

/// How many times [`GroupRepository::join`] looks again for a membership that a concurrent
/// join added and a concurrent rejection took away.
const JOIN_ATTEMPTS: usize = 5;

/// Runs `$attempt` (an expression giving a `Result<_, TxError<E>>` future) until it commits,
/// is refused, or fails for a reason other than a deadlock or serialization failure.
macro_rules! retrying {
    ($what:literal, $attempt:expr) => {{
        let mut attempt = 1;
        loop {
            match $attempt.await {
                Ok(done) => break Ok(done),
                Err(TxError::Refused(refusal)) => break Err(refusal),
                Err(TxError::Db(e)) if is_transient(&e) && attempt < ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(error = %e, what = $what, "transaction aborted; starting over");
                }
                Err(TxError::Db(e)) => break Err(anyhow::Error::new(e).context($what).into()),
            }
        }
    }};
}

#[derive(Debug, QueryableByName)]
struct LockedRow {
    #[diesel(sql_type = Bool)]
    role_exists: bool,
    #[diesel(sql_type = Nullable<Text>)]
    target_role: Option<String>,
    #[diesel(sql_type = BigInt)]
    other_owners: i64,
}

#[derive(Debug, QueryableByName)]
struct OutcomeRow {
    #[diesel(sql_type = Text)]
    outcome: String,
}

#[derive(Debug, QueryableByName)]
struct SetCurrentRow {
    #[diesel(sql_type = Bool)]
    group_found: bool,
    #[diesel(sql_type = Bool)]
    changed: bool,
}

#[derive(Debug, QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(Debug, QueryableByName)]
struct MemberIdRow {
    #[diesel(sql_type = Uuid)]
    member_id: uuid::Uuid,
}

/// Groups, their roles and memberships, and members' current groups in PostgreSQL.
#[derive(Clone)]
pub struct PgGroupRepository {
    pool: PgPool,
}

impl fmt::Debug for PgGroupRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgGroupRepository").field("pool", &self.pool.status()).finish()
    }
}

impl PgGroupRepository {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

/// Runs [`LOCK_FOR_CHANGE`].
async fn lock_for_change(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    target: MemberId,
    custom_role: Option<&RoleName>,
) -> diesel::QueryResult<LockedRow> {
    diesel::sql_query(LOCK_FOR_CHANGE)
        .bind::<Uuid, _>(group.as_uuid())
        .bind::<Uuid, _>(target.as_uuid())
        .bind::<Nullable<Text>, _>(custom_role.map(RoleName::as_str))
        .cached()
        .get_result(conn)
        .await
}

/// One attempt at [`GroupRepository::change_role`].
async fn change_role_tx(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    target: MemberId,
    expected: &RoleName,
    role: &RoleName,
    events: &[Event],
) -> Result<GroupMember, TxError<ChangeRoleRefusal>> {
    conn.transaction(async |conn| {
        let custom = (!role.is_builtin()).then_some(role);
        let locked = lock_for_change(conn, group, target, custom).await?;
        let Some(current) = locked.target_role else {
            return Err(TxError::Refused(ChangeRoleRefusal::MemberNotFound));
        };
        if current != expected.as_str() {
            return Err(TxError::Refused(ChangeRoleRefusal::RoleChanged));
        }
        if custom.is_some() && !locked.role_exists {
            return Err(TxError::Refused(ChangeRoleRefusal::UnknownRole));
        }
        if expected.is_owner() && !role.is_owner() && locked.other_owners == 0 {
            return Err(TxError::Refused(ChangeRoleRefusal::LastOwner));
        }
        let row: GroupMemberRow = diesel::sql_query(SET_ROLE)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Uuid, _>(target.as_uuid())
            .bind::<Text, _>(role.as_str())
            .cached()
            .get_result(conn)
            .await?;
        outbox::record(conn, events).await?;
        Ok(row.into_domain().map_err(|e| TxError::Refused(e.into()))?.0)
    })
    .await
}

/// One attempt at [`GroupRepository::remove`].
async fn remove_tx(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    target: MemberId,
    expected: &RoleName,
    events: &[Event],
) -> Result<(), TxError<RemoveRefusal>> {
    conn.transaction(async |conn| {
        let locked = lock_for_change(conn, group, target, None).await?;
        let Some(current) = locked.target_role else {
            return Err(TxError::Refused(RemoveRefusal::MemberNotFound));
        };
        if current != expected.as_str() {
            return Err(TxError::Refused(RemoveRefusal::RoleChanged));
        }
        if expected.is_owner() && locked.other_owners == 0 {
            return Err(TxError::Refused(RemoveRefusal::LastOwner));
        }
        diesel::sql_query(REMOVE)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Uuid, _>(target.as_uuid())
            .cached()
            .execute(conn)
            .await?;
        outbox::record(conn, events).await?;
        Ok(())
    })
    .await
}

/// One attempt at [`GroupRepository::delete_role`].
async fn delete_role_tx(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    name: &RoleName,
) -> Result<(), TxError<RoleRefusal>> {
    conn.transaction(async |conn| {
        let deleted = diesel::delete(
            group_roles::table
                .filter(group_roles::group_id.eq(group.as_uuid()))
                .filter(group_roles::name.eq(name.as_str())),
        )
        .execute(conn)
        .await?;
        if deleted == 0 {
            return Err(TxError::Refused(RoleRefusal::NotFound));
        }
        diesel::sql_query(MOVE_TO_MEMBER)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Text, _>(name.as_str())
            .cached()
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

/// Permission names to store.
fn permission_names(permissions: &BTreeSet<Permission>) -> Vec<&str> {
    permissions.iter().map(Permission::as_str).collect()
}

/// A page size as SQL wants it.
fn limit_of(limit: u32) -> i64 {
    i64::from(limit)
}

#[async_trait]
impl GroupRepository for PgGroupRepository {
    async fn create(&self, group: &NewGroup, events: &[Event]) -> Result<Group, CreateGroupError> {
        let mut conn = self.conn().await?;
        let row: GroupRow = diesel::sql_query(CREATE)
            .bind::<Uuid, _>(group.id.as_uuid())
            .bind::<Text, _>(group.slug.as_str())
            .bind::<Text, _>(group.name.as_str())
            .bind::<Bool, _>(group.approval_required)
            .bind::<Timestamptz, _>(group.now)
            .bind::<Uuid, _>(group.owner.as_uuid())
            .bind::<Text, _>(events_json(events))
            .cached()
            .get_result(&mut conn)
            .await
            .map_err(|e| match violated_unique(&e) {
                Some("groups_slug_key") => CreateGroupError::SlugTaken,
                _ => anyhow::Error::new(e).context("creating a group").into(),
            })?;
        Ok(row.into())
    }

    async fn find(&self, group: GroupId) -> anyhow::Result<Option<Group>> {
        let mut conn = self.conn().await?;
        let row: Option<GroupRow> = diesel::sql_query(FIND)
            .bind::<Uuid, _>(group.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("finding a group by id")?;
        Ok(row.map(Group::from))
    }

    async fn active_members_with_roles(
        &self,
        group: GroupId,
        roles: &[RoleName],
    ) -> anyhow::Result<Vec<MemberId>> {
        let mut conn = self.conn().await?;
        let names: Vec<&str> = roles.iter().map(RoleName::as_str).collect();
        let rows: Vec<MemberIdRow> = diesel::sql_query(ACTIVE_WITH_ROLES)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Array<Text>, _>(names)
            .cached()
            .load(&mut conn)
            .await
            .context("listing the holders of roles")?;
        Ok(rows.into_iter().map(|r| MemberId::from_uuid(r.member_id)).collect())
    }

    async fn find_for_member(
        &self,
        slug: &Slug,
        member: MemberId,
    ) -> anyhow::Result<Option<(Group, Option<Membership>)>> {
        let mut conn = self.conn().await?;
        let row: Option<GroupMembershipRow> = diesel::sql_query(FIND_FOR_MEMBER)
            .bind::<Text, _>(slug.as_str())
            .bind::<Uuid, _>(member.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("finding a group")?;
        row.map(GroupMembershipRow::into_domain).transpose()
    }

    async fn list_mine(
        &self,
        member: MemberId,
        after: Option<GroupCursor>,
        limit: u32,
    ) -> anyhow::Result<Vec<(MyGroup, GroupCursor)>> {
        let mut conn = self.conn().await?;
        let rows: Vec<MyGroupRow> = diesel::sql_query(LIST_MINE)
            .bind::<Uuid, _>(member.as_uuid())
            .bind::<Nullable<Timestamptz>, _>(after.map(|c| c.joined_at))
            .bind::<Nullable<Uuid>, _>(after.map(|c| c.group_id.as_uuid()))
            .bind::<BigInt, _>(limit_of(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("listing a member's groups")?;
        Ok(rows.into_iter().map(MyGroupRow::into_domain).collect())
    }

    async fn update(&self, group: GroupId, patch: &GroupPatch) -> anyhow::Result<Option<Group>> {
        let mut conn = self.conn().await?;
        let row: Option<GroupRow> = diesel::sql_query(UPDATE)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Nullable<Text>, _>(patch.name.as_ref().map(|n| n.as_str()))
            .bind::<Nullable<Bool>, _>(patch.approval_required)
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("updating a group")?;
        Ok(row.map(Group::from))
    }

    async fn delete(&self, group: GroupId, events: &[Event]) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let deleted: CountRow = diesel::sql_query(DELETE)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Text, _>(events_json(events))
            .cached()
            .get_result(&mut conn)
            .await
            .context("deleting a group")?;
        Ok(deleted.count == 1)
    }

    async fn custom_roles(&self, group: GroupId) -> anyhow::Result<Vec<Role>> {
        let mut conn = self.conn().await?;
        let rows: Vec<RoleRow> = group_roles::table
            .filter(group_roles::group_id.eq(group.as_uuid()))
            .order(group_roles::name)
            .select((group_roles::name, group_roles::permissions))
            .load(&mut conn)
            .await
            .context("listing custom roles")?;
        Ok(rows.into_iter().map(Role::from).collect())
    }

    async fn create_role(
        &self,
        group: GroupId,
        name: &RoleName,
        permissions: &BTreeSet<Permission>,
    ) -> Result<Role, RoleRefusal> {
        let mut conn = self.conn().await?;
        diesel::insert_into(group_roles::table)
            .values((
                group_roles::group_id.eq(group.as_uuid()),
                group_roles::name.eq(name.as_str()),
                group_roles::permissions.eq(permission_names(permissions)),
            ))
            .execute(&mut conn)
            .await
            .map_err(|e| match violated_unique(&e) {
                Some("group_roles_pkey") => RoleRefusal::Exists,
                _ => anyhow::Error::new(e).context("creating a role").into(),
            })?;
        Ok(Role { name: name.clone(), permissions: permissions.clone(), builtin: false })
    }

    async fn update_role(
        &self,
        group: GroupId,
        name: &RoleName,
        permissions: &BTreeSet<Permission>,
    ) -> Result<Role, RoleRefusal> {
        let mut conn = self.conn().await?;
        let updated = diesel::update(
            group_roles::table
                .filter(group_roles::group_id.eq(group.as_uuid()))
                .filter(group_roles::name.eq(name.as_str())),
        )
        .set(group_roles::permissions.eq(permission_names(permissions)))
        .execute(&mut conn)
        .await
        .context("updating a role")?;
        if updated == 0 {
            return Err(RoleRefusal::NotFound);
        }
        Ok(Role { name: name.clone(), permissions: permissions.clone(), builtin: false })
    }

    async fn delete_role(&self, group: GroupId, name: &RoleName) -> Result<(), RoleRefusal> {
        let mut conn = self.conn().await?;
        retrying!("deleting a role", delete_role_tx(&mut conn, group, name))
    }

    async fn members(
        &self,
        group: GroupId,
        status: MembershipStatus,
        after: Option<MemberCursor>,
        limit: u32,
    ) -> anyhow::Result<Vec<(GroupMember, MemberCursor)>> {
        let mut conn = self.conn().await?;
        let rows: Vec<GroupMemberRow> = diesel::sql_query(MEMBERS)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Text, _>(status.as_str())
            .bind::<Nullable<Timestamptz>, _>(after.map(|c| c.joined_at))
            .bind::<Nullable<Uuid>, _>(after.map(|c| c.member_id.as_uuid()))
            .bind::<BigInt, _>(limit_of(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("listing a group's members")?;
        rows.into_iter().map(GroupMemberRow::into_domain).collect()
    }

    async fn member(
        &self,
        group: GroupId,
        member: MemberId,
    ) -> anyhow::Result<Option<GroupMember>> {
        let mut conn = self.conn().await?;
        let row: Option<GroupMemberRow> = diesel::sql_query(MEMBER)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Uuid, _>(member.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("getting a group member")?;
        Ok(row.map(GroupMemberRow::into_domain).transpose()?.map(|(member, _)| member))
    }

    async fn change_role(
        &self,
        group: GroupId,
        target: MemberId,
        expected: &RoleName,
        role: &RoleName,
        events: &[Event],
    ) -> Result<GroupMember, ChangeRoleRefusal> {
        let mut conn = self.conn().await?;
        retrying!(
            "changing a role",
            change_role_tx(&mut conn, group, target, expected, role, events)
        )
    }

    async fn remove(
        &self,
        group: GroupId,
        target: MemberId,
        expected: &RoleName,
        events: &[Event],
    ) -> Result<(), RemoveRefusal> {
        let mut conn = self.conn().await?;
        retrying!("removing a member", remove_tx(&mut conn, group, target, expected, events))
    }

    async fn join(
        &self,
        group: GroupId,
        member: MemberId,
        status: MembershipStatus,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> anyhow::Result<JoinRecord> {
        let mut conn = self.conn().await?;
        let events = events_json(events);
        for _ in 0..JOIN_ATTEMPTS {
            let row: Option<OutcomeRow> = diesel::sql_query(JOIN)
                .bind::<Uuid, _>(group.as_uuid())
                .bind::<Uuid, _>(member.as_uuid())
                .bind::<Text, _>(status.as_str())
                .bind::<Timestamptz, _>(now)
                .bind::<Text, _>(&events)
                .cached()
                .get_result(&mut conn)
                .await
                .optional()
                .context("joining a group")?;
            // No row: a concurrent join added the membership after this statement's
            // snapshot; a new statement sees it (unless a rejection took it away again).
            let row = match row {
                Some(row) => Some(row),
                None => diesel::sql_query(MEMBERSHIP_STATUS)
                    .bind::<Uuid, _>(group.as_uuid())
                    .bind::<Uuid, _>(member.as_uuid())
                    .cached()
                    .get_result(&mut conn)
                    .await
                    .optional()
                    .context("reading a membership")?,
            };
            match row.as_ref().map(|r| r.outcome.as_str()) {
                Some("added") => return Ok(JoinRecord::Added),
                Some("active") => return Ok(JoinRecord::AlreadyActive),
                Some("pending") => return Ok(JoinRecord::AlreadyPending),
                Some(other) => anyhow::bail!("unknown membership status {other:?}"),
                None => {}
            }
        }
        anyhow::bail!("the membership kept changing during {JOIN_ATTEMPTS} join attempts")
    }

    async fn approve(
        &self,
        group: GroupId,
        member: MemberId,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> anyhow::Result<Option<GroupMember>> {
        let mut conn = self.conn().await?;
        let row: Option<GroupMemberRow> = conn
            .transaction(async |conn| {
                let row: Option<GroupMemberRow> = diesel::sql_query(APPROVE)
                    .bind::<Uuid, _>(group.as_uuid())
                    .bind::<Uuid, _>(member.as_uuid())
                    .bind::<Timestamptz, _>(now)
                    .cached()
                    .get_result(conn)
                    .await
                    .optional()?;
                if row.is_some() {
                    outbox::record(conn, events).await?;
                }
                diesel::QueryResult::Ok(row)
            })
            .await
            .context("approving a join request")?;
        Ok(row.map(GroupMemberRow::into_domain).transpose()?.map(|(member, _)| member))
    }

    async fn reject(
        &self,
        group: GroupId,
        member: MemberId,
        events: &[Event],
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let deleted = conn
            .transaction(async |conn| {
                let deleted = diesel::sql_query(REJECT)
                    .bind::<Uuid, _>(group.as_uuid())
                    .bind::<Uuid, _>(member.as_uuid())
                    .cached()
                    .execute(conn)
                    .await?;
                if deleted == 1 {
                    outbox::record(conn, events).await?;
                }
                diesel::QueryResult::Ok(deleted)
            })
            .await
            .context("rejecting a join request")?;
        Ok(deleted == 1)
    }

    async fn set_current_group(
        &self,
        member: MemberId,
        slug: &Slug,
    ) -> Result<(), SetCurrentGroupError> {
        let mut conn = self.conn().await?;
        let row: SetCurrentRow = diesel::sql_query(SET_CURRENT)
            .bind::<Uuid, _>(member.as_uuid())
            .bind::<Text, _>(slug.as_str())
            .cached()
            .get_result(&mut conn)
            .await
            .map_err(|e| match violated_foreign_key(&e) {
                // The group was deleted between this statement's snapshot and its end.
                Some("members_current_group_id_fkey") => SetCurrentGroupError::NotFound,
                _ => anyhow::Error::new(e).context("setting the current group").into(),
            })?;
        match row {
            SetCurrentRow { changed: true, .. } => Ok(()),
            SetCurrentRow { group_found: false, .. } => Err(SetCurrentGroupError::NotFound),
            SetCurrentRow { group_found: true, .. } => Err(SetCurrentGroupError::NotAMember),
        }
    }

    async fn clear_current_group(&self, member: MemberId) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        diesel::update(members::table.filter(members::id.eq(member.as_uuid())))
            .set(members::current_group_id.eq(None::<uuid::Uuid>))
            .execute(&mut conn)
            .await
            .context("clearing the current group")?;
        Ok(())
    }
}
