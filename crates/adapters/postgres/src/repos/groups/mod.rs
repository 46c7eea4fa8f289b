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
use crate::error::{TxError, retrying, violated_foreign_key, violated_unique};
use crate::repos::outbox::{self, events_json};
use crate::rows::{GroupMemberRow, GroupMembershipRow, GroupRow, MyGroupRow, RoleRow};
use crate::schema::{group_roles, members};

mod sql;

use sql::*;

/// How many times [`GroupRepository::join`] looks again for a membership that a concurrent
/// join added and a concurrent rejection took away.
const JOIN_ATTEMPTS: usize = 5;

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
