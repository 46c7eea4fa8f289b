//! [`InviteRepository`] on PostgreSQL.
//!
//! Every method is one statement or one transaction. The rules only storage can settle are
//! settled here:
//!
//! - One live invite per person and group: the partial unique indexes
//!   `invites_pending_phone_key` and `invites_pending_email_key` hold at most one `pending` row
//!   per group and phone, and per group and e-mail. Of two concurrent creates naming one
//!   person, the second waits for the first and then fails on the index (`InvitePending`). A
//!   create first stores `expired` on the pending rows naming the same phone or e-mail whose
//!   expiry has passed, so an expired invite never blocks a new one.
//! - An invite is used once: an accept changes the invite row only while it is still pending
//!   and unexpired, by an `UPDATE ... WHERE status = 'pending'` that locks the row; a
//!   concurrent accept or revoke waits for that lock, then finds the row changed and changes
//!   nothing.
//! - The membership an accept adds is settled by one `INSERT ... ON CONFLICT DO UPDATE ...
//!   WHERE status = 'pending'`, which either adds the row, upgrades a join request, or locks
//!   the existing active membership (which then stays as it is).
//!
//! Every write stores its domain events in the outbox in its own transaction (in a
//! data-modifying CTE of its statement where it is one statement), only when it changes
//! something; the adapter writes no notification itself.
//!
//! Lock order, as in the groups and members adapters: a group row (an accept share-locks it
//! first, so the group's deletion, a member deletion that locks it, or a change of its
//! `approval_required` runs wholly before or after), then the invite row, then a custom role
//! row, then the membership row. A transaction the database still aborts to break a deadlock
//! is run again.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz, Uuid};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_groups::{GroupName, MembershipStatus, MyGroup, RoleName, Slug};
use onboard_invites::events::{AcceptEvents, AcceptedMembership};
use onboard_invites::ports::{InviteRepository, NewInvite, SmsCharge};
use onboard_invites::{
    AcceptOutcome, AcceptRecord, AcceptRefusal, CreateInviteRefusal, Invite, InviteCursor,
    InviteId, InvitePreview, InviteStatus, InviteeName,
};
use onboard_kernel::events::Event;
use onboard_kernel::{Email, GroupId, MemberId, PhoneNumber};

use crate::PgPool;
use crate::cached::CachedExt;
use crate::error::{TxError, retrying, violated_unique};
use crate::repos::outbox::{self, events_json, record_events};
use crate::rows::GroupRow;

/// Whether a live member with phone `$2` or e-mail `$3` is an active member of group `$1`;
/// unless so, marks `expired` the group's pending invites naming that phone or e-mail whose
/// `expires_at` is at or before `$4` (the new invite's creation), freeing the unique indexes.
const CHECK_AND_EXPIRE: &str = "
    WITH found AS (
        SELECT EXISTS (
            SELECT FROM group_members gm
            JOIN members m ON m.id = gm.member_id
            WHERE gm.group_id = $1 AND gm.status = 'active' AND m.deleted_at IS NULL
                AND (m.phone = $2 OR m.email = $3)
        ) AS already_member
    ), expired AS (
        UPDATE invites SET status = 'expired'
        WHERE group_id = $1 AND status = 'pending' AND expires_at <= $4
            AND (phone = $2 OR email = $3)
            AND NOT (SELECT already_member FROM found)
    )
    SELECT already_member FROM found";

/// Stores a pending invite, and the events in `$10` with it (a failed insert stores none).
const INSERT: &str = concat!(
    "WITH events AS (",
    record_events!("$10"),
    ")
    INSERT INTO invites (id, group_id, name, phone, email, role, status, invited_by, created_at,
        expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9)"
);

/// The columns of [`InviteRow`], from `invites i JOIN groups g`.
macro_rules! invite_columns {
    () => {
        "i.id, i.group_id, g.slug AS group_slug, i.name, i.phone, i.email, i.role, i.status,
        i.invited_by, i.expires_at, i.created_at"
    };
}

/// Up to `$6` invites of group `$1`, newest first, strictly after the cursor (`$4`, `$5`;
/// NULL for the first page), of status `$2` as of `$3` (NULL: every invite). The row
/// comparison is an index condition on `invites_group_idx`.
const LIST: &str = concat!(
    "SELECT ",
    invite_columns!(),
    " FROM invites i
    JOIN groups g ON g.id = i.group_id
    WHERE i.group_id = $1
        AND (($2::text IS NULL)
            OR ($2 = 'pending' AND i.status = 'pending' AND i.expires_at > $3)
            OR ($2 = 'expired' AND (i.status = 'expired'
                OR (i.status = 'pending' AND i.expires_at <= $3)))
            OR ($2 IN ('accepted', 'revoked') AND i.status = $2))
        AND (i.created_at, i.id)
            < (COALESCE($4, 'infinity'), COALESCE($5, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
    ORDER BY i.created_at DESC, i.id DESC
    LIMIT $6"
);

/// The invite `$1`, any status.
const GET: &str = concat!(
    "SELECT ",
    invite_columns!(),
    " FROM invites i JOIN groups g ON g.id = i.group_id WHERE i.id = $1"
);

/// What accepting invite `$1` by member `$2` checks, in one round trip: the invite, any
/// status, and the phone of `$2` while they are a live member.
const FOR_ACCEPT: &str = concat!(
    "SELECT ",
    invite_columns!(),
    ", (SELECT phone FROM members WHERE id = $2 AND deleted_at IS NULL) AS caller_phone
    FROM invites i JOIN groups g ON g.id = i.group_id WHERE i.id = $1"
);

/// An invite and the accepting member's phone ([`FOR_ACCEPT`]).
#[derive(QueryableByName)]
struct ForAcceptRow {
    #[diesel(embed)]
    invite: InviteRow,
    #[diesel(sql_type = Nullable<Text>)]
    caller_phone: Option<String>,
}

/// Revokes invite `$1` of group `$2` at `$3` when it is pending (expired or not), storing the
/// events in `$4` only then; answers whether the group has the invite at all. A concurrent
/// accept or revoke holding the row makes the update wait, then find the row no longer pending
/// and leave it.
const REVOKE: &str = concat!(
    "WITH target AS (
        SELECT id FROM invites WHERE id = $1 AND group_id = $2
    ), revoked AS (
        UPDATE invites SET status = 'revoked', revoked_at = $3
        WHERE id = (SELECT id FROM target) AND status IN ('pending', 'expired')
        RETURNING id
    ), events AS (",
    record_events!("$4"),
    " WHERE EXISTS (SELECT FROM revoked)
    )
    SELECT EXISTS (SELECT FROM target) AS found"
);

/// What invite `$1` shows to a holder of its code; the inviter's first name only while they
/// are a live member.
const PREVIEW: &str = "
    SELECT g.slug AS group_slug, g.name AS group_name, m.first_name AS inviter_first_name,
        i.name, i.expires_at, i.status
    FROM invites i
    JOIN groups g ON g.id = i.group_id
    LEFT JOIN members m ON m.id = i.invited_by AND m.deleted_at IS NULL
    WHERE i.id = $1";

/// Accepting invite `$1`, step 1: share-locks its group (first, as every adapter locks a
/// group row before the rows under it) and answers it.
const LOCK_GROUP: &str = "
    SELECT g.id, g.slug, g.name, g.approval_required, g.created_at
    FROM groups g
    WHERE g.id = (SELECT group_id FROM invites WHERE id = $1)
    FOR SHARE OF g";

/// Accepting, step 2: marks invite `$1` of group `$2` accepted by member `$3` at `$4` if it
/// is still pending with `expires_at` after `$4`, and answers its role. The update locks the
/// row; a concurrent accept or revoke waits for it and then finds the row no longer pending.
const MARK_ACCEPTED: &str = "
    UPDATE invites SET status = 'accepted', accepted_by = $3, accepted_at = $4
    WHERE id = $1 AND group_id = $2 AND status = 'pending' AND expires_at > $4
    RETURNING role";

/// Accepting into a group that requires approval, step 3: adds member `$2`'s PENDING
/// membership of group `$1` as `member`, joined at `$3`, unless a membership exists, which is
/// then locked and left as it is. A row only when it was added.
const ADD_REQUEST: &str = "
    INSERT INTO group_members (group_id, member_id, role, status, joined_at)
    VALUES ($1, $2, 'member', 'pending', $3)
    ON CONFLICT ON CONSTRAINT group_members_pkey
        DO UPDATE SET status = group_members.status WHERE false
    RETURNING role";

/// Accepting into an open group, step 3: makes member `$2` an ACTIVE member of group `$1`
/// with role `$3` (`$5`: it is built in; a custom role must still exist, key-share-locked so
/// that it cannot be deleted under the change, else `member`), joined at `$4`. A pending
/// membership becomes it; an active one is locked and left as it is. Answers the role given,
/// and no row when the member was active already.
const ADD_MEMBER: &str = "
    WITH custom AS (
        SELECT name FROM group_roles WHERE group_id = $1 AND name = $3 FOR KEY SHARE
    )
    INSERT INTO group_members (group_id, member_id, role, status, joined_at)
    VALUES ($1, $2,
        CASE WHEN $5 THEN $3 ELSE COALESCE((SELECT name FROM custom), 'member') END,
        'active', $4)
    ON CONFLICT ON CONSTRAINT group_members_pkey
        DO UPDATE SET role = EXCLUDED.role, status = 'active', joined_at = EXCLUDED.joined_at
        WHERE group_members.status = 'pending'
    RETURNING role";

/// The membership of member `$2` in group `$1` (locked by this transaction when read after
/// [`ADD_REQUEST`] or [`ADD_MEMBER`] found it).
const MEMBERSHIP: &str = "
    SELECT role, status FROM group_members WHERE group_id = $1 AND member_id = $2";

/// An invite with its group's slug (`invites i JOIN groups g`).
#[derive(Debug, Clone, QueryableByName)]
struct InviteRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    group_slug: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    phone: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Uuid)]
    invited_by: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl InviteRow {
    /// The invite, with its stored status, and the cursor that points at it.
    fn into_domain(self) -> anyhow::Result<(Invite, InviteCursor)> {
        let invite = Invite {
            id: InviteId::from_uuid(self.id),
            group: GroupId::from_uuid(self.group_id),
            group_slug: Slug::from_trusted(self.group_slug),
            name: InviteeName::from_trusted(self.name),
            phone: self.phone.map(PhoneNumber::from_trusted_e164),
            email: self.email.map(Email::from_trusted),
            role: RoleName::from_trusted(self.role),
            status: status_of(&self.status)?,
            invited_by: MemberId::from_uuid(self.invited_by),
            expires_at: self.expires_at,
            created_at: self.created_at,
        };
        let cursor = InviteCursor::of(&invite);
        Ok((invite, cursor))
    }
}

#[derive(Debug, QueryableByName)]
struct PreviewRow {
    #[diesel(sql_type = Text)]
    group_slug: String,
    #[diesel(sql_type = Text)]
    group_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    inviter_first_name: Option<String>,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    status: String,
}

#[derive(Debug, QueryableByName)]
struct CheckRow {
    #[diesel(sql_type = Bool)]
    already_member: bool,
}

#[derive(Debug, QueryableByName)]
struct FoundRow {
    #[diesel(sql_type = Bool)]
    found: bool,
}

#[derive(Debug, QueryableByName)]
struct RoleRow {
    #[diesel(sql_type = Text)]
    role: String,
}

#[derive(Debug, QueryableByName)]
struct MembershipRow {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    status: String,
}

/// Invites to groups in PostgreSQL (table `invites`), with the memberships accepting adds.
#[derive(Clone)]
pub struct PgInviteRepository {
    pool: PgPool,
}

impl fmt::Debug for PgInviteRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgInviteRepository").field("pool", &self.pool.status()).finish()
    }
}

impl PgInviteRepository {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

/// A stored invite status (the table's check constraint allows only these four).
fn status_of(raw: &str) -> anyhow::Result<InviteStatus> {
    InviteStatus::parse(raw).ok_or_else(|| anyhow::anyhow!("unknown invite status {raw:?}"))
}

/// One attempt at [`InviteRepository::create`].
async fn create_tx(
    conn: &mut AsyncPgConnection,
    invite: &NewInvite,
    events: &str,
) -> Result<(), TxError<CreateInviteRefusal>> {
    conn.transaction(async |conn| {
        let phone = invite.phone.as_ref().map(PhoneNumber::as_e164);
        let email = invite.email.as_ref().map(Email::as_str);
        let check: CheckRow = diesel::sql_query(CHECK_AND_EXPIRE)
            .bind::<Uuid, _>(invite.group.as_uuid())
            .bind::<Nullable<Text>, _>(phone)
            .bind::<Nullable<Text>, _>(email)
            .bind::<Timestamptz, _>(invite.created_at)
            .cached()
            .get_result(conn)
            .await?;
        if check.already_member {
            return Err(TxError::Refused(CreateInviteRefusal::AlreadyMember));
        }
        diesel::sql_query(INSERT)
            .bind::<Uuid, _>(invite.id.as_uuid())
            .bind::<Uuid, _>(invite.group.as_uuid())
            .bind::<Text, _>(invite.name.as_str())
            .bind::<Nullable<Text>, _>(phone)
            .bind::<Nullable<Text>, _>(email)
            .bind::<Text, _>(invite.role.as_str())
            .bind::<Uuid, _>(invite.invited_by.as_uuid())
            .bind::<Timestamptz, _>(invite.created_at)
            .bind::<Timestamptz, _>(invite.expires_at)
            .bind::<Text, _>(events)
            .cached()
            .execute(conn)
            .await
            .map_err(|e| match violated_unique(&e) {
                Some("invites_pending_phone_key" | "invites_pending_email_key") => {
                    TxError::Refused(CreateInviteRefusal::InvitePending)
                }
                _ => TxError::Db(e),
            })?;
        // The invite SMS is paid in the invite's transaction.
        if let Some(charge) = &invite.sms_charge {
            let reference = charge.invite.to_string();
            let debited = crate::repos::sms_credit::apply(
                conn,
                charge.group,
                -charge.amount,
                onboard_payments::sms_credit::CreditReason::InviteSms,
                Some(&reference),
                invite.created_at,
            )
            .await?;
            if debited.is_none() {
                return Err(TxError::Refused(CreateInviteRefusal::InsufficientCredit));
            }
        }
        Ok(())
    })
    .await
}

/// Step 3 of an accept: the membership the invite gives, a join request when the group
/// requires approval; `None` when the member already had a membership (locked by the
/// statement, so it is as read afterwards).
async fn add_membership(
    conn: &mut AsyncPgConnection,
    group: &GroupRow,
    member: MemberId,
    role: String,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Option<RoleRow>> {
    if group.approval_required {
        return diesel::sql_query(ADD_REQUEST)
            .bind::<Uuid, _>(group.id)
            .bind::<Uuid, _>(member.as_uuid())
            .bind::<Timestamptz, _>(now)
            .cached()
            .get_result(conn)
            .await
            .optional();
    }
    let role = RoleName::from_trusted(role);
    diesel::sql_query(ADD_MEMBER)
        .bind::<Uuid, _>(group.id)
        .bind::<Uuid, _>(member.as_uuid())
        .bind::<Text, _>(role.as_str())
        .bind::<Timestamptz, _>(now)
        .bind::<Bool, _>(role.is_builtin())
        .cached()
        .get_result(conn)
        .await
        .optional()
}

/// Step 4 of an accept: what the membership came to, the caller's role in the group, and
/// which membership events the accept stores.
async fn settle(
    conn: &mut AsyncPgConnection,
    group: &GroupRow,
    member: MemberId,
    added: Option<RoleRow>,
) -> Result<(AcceptOutcome, RoleName, AcceptedMembership), TxError<AcceptRefusal>> {
    Ok(match added {
        Some(RoleRow { role }) if group.approval_required => {
            debug_assert_eq!(role, RoleName::MEMBER.as_str());
            // A new join request.
            (AcceptOutcome::PendingApproval, RoleName::MEMBER, AcceptedMembership::Requested)
        }
        Some(RoleRow { role }) => {
            let role = RoleName::from_trusted(role);
            (AcceptOutcome::Joined, role.clone(), AcceptedMembership::Joined(role))
        }
        None => {
            // The membership existed; the statement locked it, so it is as read here.
            let found: MembershipRow = diesel::sql_query(MEMBERSHIP)
                .bind::<Uuid, _>(group.id)
                .bind::<Uuid, _>(member.as_uuid())
                .cached()
                .get_result(conn)
                .await?;
            match MembershipStatus::parse(&found.status) {
                Some(MembershipStatus::Active) => (
                    AcceptOutcome::AlreadyMember,
                    RoleName::from_trusted(found.role),
                    AcceptedMembership::Unchanged,
                ),
                Some(MembershipStatus::Pending) => (
                    AcceptOutcome::PendingApproval,
                    RoleName::MEMBER,
                    AcceptedMembership::Unchanged,
                ),
                None => {
                    return Err(TxError::Refused(
                        anyhow::anyhow!("unknown membership status {:?}", found.status).into(),
                    ));
                }
            }
        }
    })
}

/// One attempt at [`InviteRepository::accept`]. Its last statement stores the accept's events,
/// picked by how the membership settled ([`outbox::record`]); it takes the place of the
/// inviter's notification the transaction used to write, so the accept makes as many round
/// trips as before.
async fn accept_tx(
    conn: &mut AsyncPgConnection,
    invite: InviteId,
    member: MemberId,
    now: DateTime<Utc>,
    events: &AcceptEvents,
) -> Result<AcceptRecord, TxError<AcceptRefusal>> {
    conn.transaction(async |conn| {
        let group: Option<GroupRow> = diesel::sql_query(LOCK_GROUP)
            .bind::<Uuid, _>(invite.as_uuid())
            .cached()
            .get_result(conn)
            .await
            .optional()?;
        let Some(group) = group else {
            return Err(TxError::Refused(AcceptRefusal::NotFound));
        };
        let accepted: Option<RoleRow> = diesel::sql_query(MARK_ACCEPTED)
            .bind::<Uuid, _>(invite.as_uuid())
            .bind::<Uuid, _>(group.id)
            .bind::<Uuid, _>(member.as_uuid())
            .bind::<Timestamptz, _>(now)
            .cached()
            .get_result(conn)
            .await
            .optional()?;
        let Some(RoleRow { role }) = accepted else {
            return Err(TxError::Refused(AcceptRefusal::NotFound));
        };

        let added = add_membership(conn, &group, member, role, now).await?;
        let (outcome, my_role, settled) = settle(conn, &group, member, added).await?;
        outbox::record(conn, &events.records(&settled)).await?;
        Ok(AcceptRecord { outcome, group: MyGroup { group: group.into(), my_role } })
    })
    .await
}

#[async_trait]
impl InviteRepository for PgInviteRepository {
    async fn create(
        &self,
        invite: &NewInvite,
        events: &[Event],
    ) -> Result<(), CreateInviteRefusal> {
        let mut conn = self.conn().await?;
        let events = events_json(events);
        retrying!("creating an invite", create_tx(&mut conn, invite, &events))
    }

    async fn list(
        &self,
        group: GroupId,
        status: Option<InviteStatus>,
        after: Option<InviteCursor>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(Invite, InviteCursor)>> {
        let mut conn = self.conn().await?;
        let rows: Vec<InviteRow> = diesel::sql_query(LIST)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Nullable<Text>, _>(status.map(InviteStatus::as_str))
            .bind::<Timestamptz, _>(now)
            .bind::<Nullable<Timestamptz>, _>(after.map(|c| c.created_at))
            .bind::<Nullable<Uuid>, _>(after.map(|c| c.invite_id.as_uuid()))
            .bind::<BigInt, _>(i64::from(limit))
            .cached()
            .load(&mut conn)
            .await
            .context("listing a group's invites")?;
        rows.into_iter().map(InviteRow::into_domain).collect()
    }

    async fn get(&self, invite: InviteId) -> anyhow::Result<Option<Invite>> {
        let mut conn = self.conn().await?;
        let row: Option<InviteRow> = diesel::sql_query(GET)
            .bind::<Uuid, _>(invite.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("getting an invite")?;
        Ok(row.map(InviteRow::into_domain).transpose()?.map(|(invite, _)| invite))
    }

    async fn refund_sms(
        &self,
        charge: &SmsCharge,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        let reference = charge.invite.to_string();
        let refund = async |conn: &mut AsyncPgConnection| {
            crate::repos::sms_credit::apply(
                conn,
                charge.group,
                charge.amount,
                onboard_payments::sms_credit::CreditReason::Refund,
                Some(&reference),
                now,
            )
            .await
        };
        if events.is_empty() {
            refund(&mut conn).await
        } else {
            conn.transaction(async |conn| {
                let refunded = refund(conn).await?;
                outbox::record(conn, events).await?;
                Ok(refunded)
            })
            .await
        }
        .context("refunding an invite SMS")?;
        Ok(())
    }

    async fn revoke(
        &self,
        group: GroupId,
        invite: InviteId,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        let row: FoundRow = diesel::sql_query(REVOKE)
            .bind::<Uuid, _>(invite.as_uuid())
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Timestamptz, _>(now)
            .bind::<Text, _>(events_json(events))
            .cached()
            .get_result(&mut conn)
            .await
            .context("revoking an invite")?;
        Ok(row.found)
    }

    async fn preview(&self, invite: InviteId) -> anyhow::Result<Option<InvitePreview>> {
        let mut conn = self.conn().await?;
        let row: Option<PreviewRow> = diesel::sql_query(PREVIEW)
            .bind::<Uuid, _>(invite.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("previewing an invite")?;
        row.map(|row| {
            Ok(InvitePreview {
                group_slug: Slug::from_trusted(row.group_slug),
                group_name: GroupName::from_trusted(row.group_name),
                inviter_first_name: row.inviter_first_name,
                name: InviteeName::from_trusted(row.name),
                expires_at: row.expires_at,
                status: status_of(&row.status)?,
            })
        })
        .transpose()
    }

    async fn for_accept(
        &self,
        invite: InviteId,
        member: MemberId,
    ) -> anyhow::Result<Option<(Invite, Option<PhoneNumber>)>> {
        let mut conn = self.conn().await?;
        let row: Option<ForAcceptRow> = diesel::sql_query(FOR_ACCEPT)
            .bind::<Uuid, _>(invite.as_uuid())
            .bind::<Uuid, _>(member.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading an invite to accept")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (invite, _) = row.invite.into_domain()?;
        Ok(Some((invite, row.caller_phone.map(PhoneNumber::from_trusted_e164))))
    }

    async fn accept(
        &self,
        invite: InviteId,
        member: MemberId,
        now: DateTime<Utc>,
        events: &AcceptEvents,
    ) -> Result<AcceptRecord, AcceptRefusal> {
        let mut conn = self.conn().await?;
        retrying!("accepting an invite", accept_tx(&mut conn, invite, member, now, events))
    }
}
