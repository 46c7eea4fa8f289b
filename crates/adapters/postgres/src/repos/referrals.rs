//! [`ReferralRepository`] on PostgreSQL.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::{MemberId, PhoneNumber, ReferralCode};
use onboard_members::{Member, MemberCard};
use onboard_referrals::events::RedeemEvents;
use onboard_referrals::ports::{RedeemRefusal, ReferralRepository};
use onboard_referrals::{Cursor, ReferralSummary, Referrer};

use crate::PgPool;
use crate::cached::CachedExt;
use crate::repos::outbox::{events_json, record_events};
use crate::rows::{CurrentMemberRow, MemberRow};

/// The most `ref_parent` steps a lookup of a representative follows before it gives up with an
/// error. Union by rank keeps every path under 64 steps; only rows written by hand (into a
/// loop, say) come near this.
const MAX_STEPS: i32 = 100_000;

/// How many times [`PgReferralRepository::redeem`] starts over (a representative it found
/// joined another set while it waited for the lock, or the database aborted the transaction to
/// break a deadlock or a serialization failure) before it answers an error.
const MAX_ATTEMPTS: usize = 16;

/// Reads, without locking, what a redeem of code `$2` by member `$1` depends on: whether the
/// redeemer is live and has already redeemed, who owns the code, and the representatives of
/// the redeemer's set and of the owner's set, each found by following `ref_parent` at most
/// `$3` steps. The lookups are skipped when the redeemer has already redeemed.
const PROBE: &str = "
    WITH RECURSIVE redeemer AS (
        SELECT referred_by FROM members WHERE id = $1 AND deleted_at IS NULL
    ), owner AS (
        SELECT id FROM members WHERE referral_code = $2 AND deleted_at IS NULL
    ), up (start, id, parent, steps) AS (
        SELECT id, id, ref_parent, 0
        FROM members
        WHERE id IN ($1, (SELECT id FROM owner))
            AND NOT EXISTS (SELECT FROM redeemer WHERE referred_by IS NOT NULL)
      UNION ALL
        SELECT up.start, m.id, m.ref_parent, up.steps + 1
        FROM up JOIN members m ON m.id = up.parent
        WHERE up.steps < $3
    )
    SELECT EXISTS (SELECT FROM redeemer) AS redeemer_live,
        EXISTS (SELECT FROM redeemer WHERE referred_by IS NOT NULL) AS redeemed,
        (SELECT id FROM owner) AS owner,
        (SELECT id FROM up WHERE start = $1 AND parent IS NULL) AS redeemer_set,
        (SELECT up.id FROM up JOIN owner ON up.start = owner.id WHERE up.parent IS NULL)
            AS owner_set";

/// A redeem's second step, in one statement (its own transaction): locks the redeemer `$1`
/// and the representatives `$2` (of the redeemer's set) and `$3` (of the owner's) in id order
/// (fewer rows when some are the same member), so that redeems locking overlapping rows never
/// wait for each other in a circle, and re-reads them as of now. If the redeemer is still
/// live with no referrer and both are still representatives, unites the sets by rank and
/// makes `$4` the redeemer's referrer at `$5`, touching only the redeemer, the representative
/// that joins the other set, and that other one if its rank grows. Answers one row: the
/// outcome (`redeemed`, `gone`: the redeemer is no longer live, `already`: a concurrent
/// redeem of theirs won, `moved`: a representative joined another set meanwhile) and, when
/// redeemed, the redeemer as [`CurrentMemberRow`] reads them. The redeem's events (the JSON
/// array `$6`) are stored with it, in the same statement, only when it redeems.
///
/// Why one statement sees and writes the rows as of now: in READ COMMITTED, a row locked by
/// `FOR NO KEY UPDATE` is the newest committed version (re-read after waiting for the lock),
/// and the UPDATE of a row changed since the statement's snapshot updates that newest version
/// (which this statement holds locked, so it is the one judged).
const LOCK_AND_UNITE: &str = concat!(
    "
    WITH locked AS MATERIALIZED (
        SELECT id, deleted_at IS NULL AS is_live, referred_by IS NULL AS is_root,
            ref_parent IS NULL AS is_representative, ref_rank
        FROM members
        WHERE id IN ($1, $2, $3)
        ORDER BY id
        FOR NO KEY UPDATE
    ), plan AS (
        SELECT
            CASE WHEN a.ref_rank <= b.ref_rank THEN a.id ELSE b.id END AS child,
            CASE WHEN a.ref_rank <= b.ref_rank THEN b.id ELSE a.id END AS parent,
            a.ref_rank = b.ref_rank AS taller,
            (greatest(a.ref_rank, b.ref_rank)
                + CASE WHEN a.ref_rank = b.ref_rank THEN 1 ELSE 0 END)::smallint AS parent_rank
        FROM locked a, locked b
        WHERE a.id = $2 AND a.is_representative AND b.id = $3 AND b.is_representative
            AND EXISTS (SELECT FROM locked r WHERE r.id = $1 AND r.is_live AND r.is_root)
    ), m AS (
        UPDATE members
        SET referred_by = CASE WHEN members.id = $1 THEN $4 ELSE members.referred_by END,
            referred_at = CASE WHEN members.id = $1 THEN $5 ELSE members.referred_at END,
            ref_parent = CASE WHEN members.id = plan.child THEN plan.parent
                ELSE members.ref_parent END,
            ref_rank = CASE WHEN members.id = plan.parent AND plan.taller THEN plan.parent_rank
                ELSE members.ref_rank END
        FROM plan
        WHERE members.id = ANY (CASE WHEN plan.taller THEN ARRAY[$1, plan.child, plan.parent]
            ELSE ARRAY[$1, plan.child] END)
        RETURNING members.id, members.phone, members.first_name, members.last_name,
            members.email, members.referral_code, members.referred_by,
            members.current_group_id, members.created_at
    ), events AS (",
    record_events!("$6"),
    " WHERE EXISTS (SELECT FROM m)
    )
    SELECT
        CASE
            WHEN NOT EXISTS (SELECT FROM locked WHERE id = $1 AND is_live) THEN 'gone'
            WHEN NOT EXISTS (SELECT FROM locked WHERE id = $1 AND is_root) THEN 'already'
            WHEN NOT EXISTS (SELECT FROM m) THEN 'moved'
            ELSE 'redeemed'
        END AS outcome,
        m.id, m.phone, m.first_name, m.last_name, m.email, m.referral_code,
        r.referral_code AS referred_by_code, m.created_at, g.slug AS current_group
    FROM (SELECT) AS one
    LEFT JOIN m ON m.id = $1
    LEFT JOIN members r ON r.id = m.referred_by
    LEFT JOIN groups g ON g.id = m.current_group_id"
);

/// The live member `$1`'s code, their referrer (live or not: who referred them stays true),
/// and the count of their live invitees.
const SUMMARY: &str = "
    SELECT m.referral_code AS code, r.id AS referrer_id, r.referral_code AS referrer_code,
        (SELECT count(*) FROM members i WHERE i.referred_by = m.id AND i.deleted_at IS NULL)
            AS invitees_count
    FROM members m LEFT JOIN members r ON r.id = m.referred_by
    WHERE m.id = $1 AND m.deleted_at IS NULL";

/// The first `$2` live invitees of `$1`, newest first: a range of `members_referred_by_idx`.
const FIRST_INVITEES: &str = "
    SELECT id, first_name, last_name, phone, referred_at
    FROM members
    WHERE referred_by = $1 AND deleted_at IS NULL
    ORDER BY referred_at DESC, id DESC
    LIMIT $2";

/// The `$4` live invitees of `$1` after the cursor (`$2`, `$3`), newest first: the row
/// comparison is an index condition on `members_referred_by_idx`, so a page costs the same
/// however deep it is.
const INVITEES_AFTER: &str = "
    SELECT id, first_name, last_name, phone, referred_at
    FROM members
    WHERE referred_by = $1 AND deleted_at IS NULL AND (referred_at, id) < ($2, $3)
    ORDER BY referred_at DESC, id DESC
    LIMIT $4";

#[derive(Debug, QueryableByName)]
struct ProbeRow {
    #[diesel(sql_type = Bool)]
    redeemer_live: bool,
    #[diesel(sql_type = Bool)]
    redeemed: bool,
    #[diesel(sql_type = Nullable<Uuid>)]
    owner: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Uuid>)]
    redeemer_set: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Uuid>)]
    owner_set: Option<uuid::Uuid>,
}

/// What [`LOCK_AND_UNITE`] answers: the outcome and, when redeemed, the redeemer.
#[derive(Debug, QueryableByName)]
struct UniteRow {
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = Nullable<Uuid>)]
    id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    phone: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    last_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    referral_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    referred_by_code: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    current_group: Option<String>,
}

impl UniteRow {
    /// The redeemer, when the row has them.
    fn redeemer(self) -> Option<CurrentMemberRow> {
        Some(CurrentMemberRow {
            member: MemberRow {
                id: self.id?,
                phone: self.phone,
                first_name: self.first_name,
                last_name: self.last_name,
                email: self.email,
                referral_code: self.referral_code?,
                referred_by_code: self.referred_by_code,
                created_at: self.created_at?,
            },
            current_group: self.current_group,
        })
    }
}

#[derive(Debug, QueryableByName)]
struct SummaryRow {
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Nullable<Uuid>)]
    referrer_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    referrer_code: Option<String>,
    #[diesel(sql_type = BigInt)]
    invitees_count: i64,
}

#[derive(Debug, QueryableByName)]
struct InviteeRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    last_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    phone: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    referred_at: DateTime<Utc>,
}

impl InviteeRow {
    fn into_card(self) -> (MemberCard, Cursor) {
        let id = MemberId::from_uuid(self.id);
        let card = MemberCard {
            id,
            first_name: self.first_name,
            last_name: self.last_name,
            phone_masked: self.phone.map(|p| PhoneNumber::from_trusted_e164(p).masked()),
        };
        (card, Cursor { referred_at: self.referred_at, id })
    }
}

/// Referral codes, referrers and invitees in PostgreSQL (the `members` table).
///
/// # How a redeem stays free of cycles, quickly and under concurrency
///
/// A member redeems only while their `referred_by` is NULL, and `referred_by`, once set, never
/// changes (deletion keeps it; a sign-up with a code sets it only on the row it creates, a new
/// leaf). So referral trees only ever merge: a redeem by R of O's code hangs R's whole tree
/// below O. That closes a cycle exactly when O is in R's tree already.
///
/// Each tree is therefore also kept as a disjoint set (union-find) in two columns of
/// `members`: `ref_parent` points at another member of the same tree, and following it ends at
/// the set's *representative*, the one member whose `ref_parent` is NULL (any member of the
/// tree, not necessarily its root); `ref_rank` bounds the height of the set below its
/// representative. Union by rank keeps every path under log2(members) + 2 steps (22 for a
/// million members), so finding a member's representative takes a few primary-key probes
/// however deep the tree is. A sign-up with a code joins the referrer's set through a trigger
/// of the migration (the new member points at the set's representative and stays a leaf of the
/// set); a redeem is the only other writer of `referred_by` and of the sets. A redeem:
///
/// 1. reads, in one statement and without locks: whether R is live and has already redeemed
///    (→ `AlreadyRedeemed`), the live owner O of the code (→ `NotFound`; O = R → `OwnCode`),
///    and the representatives a of R's set and b of O's set. a = b → `Cycle`. Each of these
///    answers stays true once read (R's referrer never changes once set, and sets only
///    merge), so a refusal needs no lock and no transaction.
/// 2. in one READ COMMITTED statement (its own transaction, `LOCK_AND_UNITE`), locks R, a
///    and b (`FOR NO KEY UPDATE`, in id order) and re-reads them: R must still be live with no
///    referrer (else a concurrent redeem of R's won: `AlreadyRedeemed`), and a and b must
///    still be representatives. If either joined another set while we read or waited, the
///    statement changes nothing and the redeem starts over from step 1.
/// 3. in the same statement, unites the sets by rank (the representative of lower rank points
///    at the other; on a tie, a points at b and b's rank grows by one) and sets R's referrer
///    to O (`referred_at` = now), then commits, answering the updated member.
///
/// Why this is race-safe: a member's `ref_parent` changes only when a representative joins
/// another set, and only a redeem does that, holding that representative's row lock until it
/// commits. So while we hold a and b locked and both are still representatives, R's set and
/// O's set are still apart, and they stay apart until we commit: any redeem that would merge
/// them, or would give R a referrer, must lock a, b or R first, so it waits for us, then finds
/// a representative gone (or R's referrer set) and starts over. Two redeems that together
/// would close a cycle (R₁ redeems in R₂'s tree while R₂ redeems in R₁'s) both need the locks
/// of the same two representatives: the second to get them finds one gone, starts over, sees
/// both members in one set and refuses with `Cycle`. The trigger's joins need no lock: the new
/// member points at a member of the right set, and sets only merge, so it stays right. Every
/// transaction takes its row locks in one statement in id order, so redeems never deadlock one
/// another; should the database still abort one (deadlock or serialization failure), it
/// starts over, at most 16 times in all.
///
/// Round trips: a refusal costs one statement; a redeem, two (the probe, then steps 2 and 3
/// in one statement, `LOCK_AND_UNITE`; they were five: probe, BEGIN, lock, unite, COMMIT).
/// None of them grows with the depth of the tree.
#[derive(Clone)]
pub struct PgReferralRepository {
    pool: PgPool,
}

impl fmt::Debug for PgReferralRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgReferralRepository").field("pool", &self.pool.status()).finish()
    }
}

/// What one locked attempt of a redeem ended with.
enum Attempt {
    Redeemed(Box<CurrentMemberRow>),
    AlreadyRedeemed,
    /// The redeemer was deleted while the redeem ran.
    RedeemerGone,
    /// A representative found by the probe has joined another set: look them up again.
    SetsMoved,
}

impl PgReferralRepository {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

/// Runs [`PROBE`].
async fn probe(
    conn: &mut AsyncPgConnection,
    member: MemberId,
    code: &ReferralCode,
) -> Result<ProbeRow, DbError> {
    diesel::sql_query(PROBE)
        .bind::<Uuid, _>(member.as_uuid())
        .bind::<Text, _>(code.as_str())
        .bind::<Integer, _>(MAX_STEPS)
        .cached()
        .get_result(conn)
        .await
}

/// The two sets a redeem unites, by their representatives.
#[derive(Clone, Copy)]
struct Sets {
    /// The redeemer's.
    redeemer: uuid::Uuid,
    /// The code owner's.
    owner: uuid::Uuid,
}

/// Runs [`LOCK_AND_UNITE`]: locks the redeemer and both representatives, re-checks them, and
/// when they still allow it unites the sets and sets the referrer.
async fn locked_attempt(
    conn: &mut AsyncPgConnection,
    member: uuid::Uuid,
    owner: uuid::Uuid,
    sets: Sets,
    now: DateTime<Utc>,
    events: &str,
) -> Result<Attempt, DbError> {
    let row: UniteRow = diesel::sql_query(LOCK_AND_UNITE)
        .bind::<Uuid, _>(member)
        .bind::<Uuid, _>(sets.redeemer)
        .bind::<Uuid, _>(sets.owner)
        .bind::<Uuid, _>(owner)
        .bind::<Timestamptz, _>(now)
        .bind::<Text, _>(events)
        .cached()
        .get_result(conn)
        .await?;
    Ok(match row.outcome.as_str() {
        "gone" => Attempt::RedeemerGone,
        "already" => Attempt::AlreadyRedeemed,
        "moved" => Attempt::SetsMoved,
        _ => match row.redeemer() {
            Some(redeemed) => Attempt::Redeemed(Box::new(redeemed)),
            None => Attempt::RedeemerGone,
        },
    })
}

/// Whether the database aborted the transaction only to resolve a conflict, so that running
/// it again may succeed. PostgreSQL reports a deadlock (40P01) with no kind of its own through
/// diesel; its message is matched (the server's messages are in English unless `lc_messages`
/// says otherwise).
fn is_transient(error: &DbError) -> bool {
    match error {
        DbError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DbError::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// What a probe says of a redeem: the code's owner and the two sets it would unite, or the
/// refusal.
fn judge(
    found: &ProbeRow,
    member: MemberId,
    code: &ReferralCode,
) -> Result<(uuid::Uuid, Sets), RedeemRefusal> {
    if !found.redeemer_live {
        return Err(anyhow::anyhow!("the redeemer {member} is not a live member").into());
    }
    if found.redeemed {
        return Err(RedeemRefusal::AlreadyRedeemed);
    }
    let Some(owner) = found.owner else {
        return Err(RedeemRefusal::NotFound);
    };
    if owner == member.as_uuid() {
        return Err(RedeemRefusal::OwnCode);
    }
    let (Some(redeemer), Some(owner_set)) = (found.redeemer_set, found.owner_set) else {
        return Err(anyhow::anyhow!(
            "no representative within {MAX_STEPS} steps of the redeemer {member} or of the \
             owner of {code}"
        )
        .into());
    };
    if redeemer == owner_set {
        return Err(RedeemRefusal::Cycle);
    }
    Ok((owner, Sets { redeemer, owner: owner_set }))
}

#[async_trait]
impl ReferralRepository for PgReferralRepository {
    async fn check_redeem(
        &self,
        member: MemberId,
        code: &ReferralCode,
    ) -> Result<(), RedeemRefusal> {
        let mut conn = self.conn().await?;
        let found = probe(&mut conn, member, code).await.context("probing a redeem")?;
        judge(&found, member, code).map(|_| ())
    }

    async fn redeem(
        &self,
        member: MemberId,
        code: &ReferralCode,
        now: DateTime<Utc>,
        events: &RedeemEvents,
    ) -> Result<Member, RedeemRefusal> {
        let mut conn = self.conn().await?;
        for _ in 0..MAX_ATTEMPTS {
            let found = probe(&mut conn, member, code).await.context("probing a redeem")?;
            let (owner, sets) = judge(&found, member, code)?;
            let decided = events_json(&events.for_referrer(MemberId::from_uuid(owner)));

            match locked_attempt(&mut conn, member.as_uuid(), owner, sets, now, &decided).await {
                Ok(Attempt::Redeemed(row)) => return Ok(Member::from(*row)),
                Ok(Attempt::AlreadyRedeemed) => return Err(RedeemRefusal::AlreadyRedeemed),
                Ok(Attempt::SetsMoved) => {}
                Ok(Attempt::RedeemerGone) => {
                    return Err(anyhow::anyhow!("the redeemer {member} was deleted").into());
                }
                Err(e) if is_transient(&e) => {
                    tracing::debug!(error = %e, "redeem transaction aborted; starting over");
                }
                Err(e) => return Err(anyhow::Error::new(e).context("redeeming a code").into()),
            }
        }
        Err(anyhow::anyhow!("redeem gave up after {MAX_ATTEMPTS} attempts").into())
    }

    async fn summary(&self, member: MemberId) -> anyhow::Result<Option<ReferralSummary>> {
        let mut conn = self.conn().await?;
        let row: Option<SummaryRow> = diesel::sql_query(SUMMARY)
            .bind::<Uuid, _>(member.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("loading a referral summary")?;
        Ok(row.map(|row| ReferralSummary {
            code: ReferralCode::from_trusted(row.code),
            referred_by: row.referrer_id.zip(row.referrer_code).map(|(id, code)| Referrer {
                code: ReferralCode::from_trusted(code),
                member_id: MemberId::from_uuid(id),
            }),
            invitees_count: u64::try_from(row.invitees_count).unwrap_or_default(),
        }))
    }

    async fn invitees(
        &self,
        member: MemberId,
        after: Option<Cursor>,
        limit: u32,
    ) -> anyhow::Result<Vec<(MemberCard, Cursor)>> {
        let mut conn = self.conn().await?;
        let rows: Vec<InviteeRow> = match after {
            None => {
                diesel::sql_query(FIRST_INVITEES)
                    .bind::<Uuid, _>(member.as_uuid())
                    .bind::<BigInt, _>(i64::from(limit))
                    .cached()
                    .load(&mut conn)
                    .await
            }
            Some(cursor) => {
                diesel::sql_query(INVITEES_AFTER)
                    .bind::<Uuid, _>(member.as_uuid())
                    .bind::<Timestamptz, _>(cursor.referred_at)
                    .bind::<Uuid, _>(cursor.id.as_uuid())
                    .bind::<BigInt, _>(i64::from(limit))
                    .cached()
                    .load(&mut conn)
                    .await
            }
        }
        .context("loading invitees")?;
        Ok(rows.into_iter().map(InviteeRow::into_card).collect())
    }
}
