//! The SQL of [`PgGroupRepository`](super::PgGroupRepository): every statement constant, with
//! what it does and what its parameters are.

use crate::repos::outbox::record_events;

/// Stores group `$1` (slug `$2`, name `$3`, `approval_required` `$4`, created at `$5`) with
/// member `$6` as its active owner, joined at `$5`; answers the group.
pub(super) const CREATE: &str = concat!(
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
pub(super) const FIND_FOR_MEMBER: &str = "
    SELECT g.id, g.slug, g.name, g.approval_required, g.created_at,
        gm.role, gm.status, r.permissions AS role_permissions
    FROM groups g
    LEFT JOIN group_members gm ON gm.group_id = g.id AND gm.member_id = $2
    LEFT JOIN group_roles r ON r.group_id = g.id AND r.name = gm.role
    WHERE g.slug = $1";

/// The `$4` groups in which member `$1` is active, in join order, after the cursor
/// (`$2`, `$3`; NULL for the first page). The row comparison is an index condition on
/// `group_members_member_idx`, so a page costs the same however deep it is.
pub(super) const LIST_MINE: &str = "
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
pub(super) const UPDATE: &str = "
    UPDATE groups
    SET name = COALESCE($2, name), approval_required = COALESCE($3, approval_required)
    WHERE id = $1
    RETURNING id, slug, name, approval_required, created_at";

/// Deletes group `$1` (memberships and custom roles cascade) and clears it as anyone's
/// current group. The foreign key's `ON DELETE SET NULL` also clears it for a member whose
/// change committed after this statement's snapshot.
pub(super) const DELETE: &str = concat!(
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
pub(super) const FIND: &str = "
    SELECT id, slug, name, approval_required, created_at FROM groups WHERE id = $1";

/// The active members of group `$1` whose role is one of `$2`, in member id order.
pub(super) const ACTIVE_WITH_ROLES: &str = "
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
pub(super) const MEMBERS: &str = concat!(
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
pub(super) const MEMBER: &str = concat!(
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
pub(super) const LOCK_FOR_CHANGE: &str = "
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
pub(super) const SET_ROLE: &str = concat!(
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
pub(super) const REMOVE: &str = "
    WITH gone AS (
        DELETE FROM group_members WHERE group_id = $1 AND member_id = $2 RETURNING member_id
    )
    UPDATE members SET current_group_id = NULL
    WHERE id IN (SELECT member_id FROM gone) AND current_group_id = $1";

/// Moves the members of group `$1` holding role `$2` to `member` (after the role row is
/// deleted, in a statement of its own so that it sees every change that held the row).
pub(super) const MOVE_TO_MEMBER: &str = "
    UPDATE group_members SET role = 'member' WHERE group_id = $1 AND role = $2";

/// Adds member `$2` to group `$1` with role `member`, status `$3`, joined at `$4`, unless a
/// membership exists. Answers `added`, or the status of the membership found in this
/// statement's snapshot; no row when a concurrent join added it after the snapshot.
///
/// The membership's events (`$5`, [`events_json`]) are stored only when it is added.
pub(super) const JOIN: &str = concat!(
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
pub(super) const MEMBERSHIP_STATUS: &str = "
    SELECT status AS outcome FROM group_members WHERE group_id = $1 AND member_id = $2";

/// Makes member `$2`'s PENDING membership of group `$1` active as `member`, joined at `$3`,
/// and answers it. The group row is key-share-locked first, so a member deletion that
/// locked the group (to decide whether it dies with its last member) settles first.
pub(super) const APPROVE: &str = concat!(
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
pub(super) const REJECT: &str = "
    DELETE FROM group_members WHERE group_id = $1 AND member_id = $2 AND status = 'pending'";

/// Makes the group of slug `$2` member `$1`'s current group if they are an active member of
/// it, key-share-locking the membership so that a concurrent removal either waits for this
/// change (and then clears it) or wins (and this finds no membership).
pub(super) const SET_CURRENT: &str = "
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
