//! [`ReferralRepository`] on PostgreSQL.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::{MemberId, PhoneNumber, ReferralCode};
use onboard_members::{Member, MemberCard};
use onboard_referrals::ports::{RedeemRefusal, ReferralRepository};
use onboard_referrals::{Cursor, ReferralSummary, Referrer};

use crate::PgPool;
use crate::rows::MemberRow;

/// The most levels the cycle check climbs before it gives up with an error. Only a chain this
/// deep (or rows edited by hand into a loop) reaches it.
const MAX_DEPTH: i32 = 1_000_000;

/// How many times [`PgReferralRepository::redeem`] starts over (the root it found gained a
/// referrer while it waited for the lock, or the database aborted the transaction to break a
/// deadlock or a serialization failure) before it answers an error.
const MAX_ATTEMPTS: usize = 16;

/// Reads, without locking, what a redeem of code `$2` by member `$1` depends on: whether the
/// redeemer is live and has already redeemed, who owns the code, and the topmost member
/// reached by climbing `referred_by` from `$3` (or from the owner when `$3` is NULL), at most
/// `$4` levels up. The climb is skipped when the redeemer has already redeemed.
const PROBE: &str = "
    WITH RECURSIVE redeemer AS (
        SELECT referred_by FROM members WHERE id = $1 AND deleted_at IS NULL
    ), owner AS (
        SELECT id FROM members WHERE referral_code = $2 AND deleted_at IS NULL
    ), up (id, parent, depth) AS (
        SELECT id, referred_by, 0
        FROM members
        WHERE id = COALESCE($3, (SELECT id FROM owner))
            AND NOT EXISTS (SELECT FROM redeemer WHERE referred_by IS NOT NULL)
      UNION ALL
        SELECT m.id, m.referred_by, up.depth + 1
        FROM up JOIN members m ON m.id = up.parent
        WHERE up.depth < $4
    )
    SELECT EXISTS (SELECT FROM redeemer) AS redeemer_live,
        EXISTS (SELECT FROM redeemer WHERE referred_by IS NOT NULL) AS redeemed,
        (SELECT id FROM owner) AS owner,
        top.id AS top,
        top.parent IS NULL AS top_is_root
    FROM (SELECT) AS one
    LEFT JOIN LATERAL (SELECT id, parent FROM up ORDER BY depth DESC LIMIT 1) AS top ON true";

/// Locks the redeemer `$1` and the root `$2` (one row when they are the same), in id order so
/// that two redeems locking the same pair never wait for each other in a circle, and answers
/// each one's state as of now.
const LOCK_PAIR: &str = "
    SELECT id, referred_by IS NULL AS is_root, deleted_at IS NULL AS is_live
    FROM members
    WHERE id IN ($1, $2)
    ORDER BY id
    FOR NO KEY UPDATE";

/// Makes `$2` the referrer of `$1` at `$3` and answers the member as [`MemberRow`].
const SET_REFERRER: &str = "
    WITH m AS (
        UPDATE members
        SET referred_by = $2, referred_at = $3
        WHERE id = $1
        RETURNING id, phone, first_name, last_name, email, referral_code, referred_by, created_at
    )
    SELECT m.id, m.phone, m.first_name, m.last_name, m.email, m.referral_code,
        r.referral_code AS referred_by_code, m.created_at
    FROM m LEFT JOIN members r ON r.id = m.referred_by";

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
    top: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Bool>)]
    top_is_root: Option<bool>,
}

#[derive(Debug, QueryableByName)]
struct LockedRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Bool)]
    is_root: bool,
    #[diesel(sql_type = Bool)]
    is_live: bool,
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
/// # How a redeem stays free of cycles under concurrency
///
/// A member redeems only while their `referred_by` is NULL, and `referred_by`, once set, never
/// changes. So the redeemer R is always the root of their own tree, only roots ever gain a
/// referrer, and every member's chain of ancestors only grows at its top. Giving R the
/// referrer O closes a cycle exactly when R is an ancestor of O, that is, when the root of
/// O's tree is R. A redeem:
///
/// 1. reads, in one statement and without locks: whether R is live and has already redeemed
///    (→ `AlreadyRedeemed`), the live owner O of the code (→ `NotFound`; O = R → `OwnCode`),
///    and the root T of O's tree, by a recursive query that climbs `referred_by` through the
///    primary key (one index probe per level, bounded at a million levels). T = R → `Cycle`.
///    Each of these answers stays true once read (R's referrer and O's ancestors never
///    change), so a refusal needs no lock and no transaction.
/// 2. in one READ COMMITTED transaction, locks R and T (`FOR NO KEY UPDATE`, in one
///    statement, in id order) and re-reads them: R must still have no referrer (else a
///    concurrent redeem of R's won: `AlreadyRedeemed`). If T has gained a referrer while we
///    read or waited, the transaction ends and the redeem starts over, climbing from T.
/// 3. sets R's referrer to O (`referred_at` = now) and commits, answering the updated member.
///
/// Why this is enough: the only way for O's root to change, or for R to gain a referrer, is a
/// redeem by T or by R, and each of those needs the row lock we hold until commit. Two
/// redeems that together would close a cycle (R₁ redeems in R₂'s tree while R₂ redeems in
/// R₁'s) both lock {R₁, R₂}: the second to get the locks sees its root gone, climbs again,
/// finds itself at the top and refuses with `Cycle`. Every transaction takes its row locks in
/// one statement in id order, so redeems never deadlock one another; should the database still
/// abort one (deadlock or serialization failure), it starts over, at most 16 times in all.
///
/// Round trips: a refusal costs one statement; a redeem, five (probe, BEGIN, lock, update,
/// COMMIT). The climb is the only part that grows with depth.
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
    Redeemed(Box<MemberRow>),
    AlreadyRedeemed,
    /// The redeemer was deleted while the redeem ran.
    RedeemerGone,
    /// The root found by the probe has a referrer now: climb on from it.
    RootMoved,
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
    climb_from: Option<uuid::Uuid>,
) -> Result<ProbeRow, DbError> {
    diesel::sql_query(PROBE)
        .bind::<Uuid, _>(member.as_uuid())
        .bind::<Text, _>(code.as_str())
        .bind::<Nullable<Uuid>, _>(climb_from)
        .bind::<Integer, _>(MAX_DEPTH)
        .get_result(conn)
        .await
}

/// Locks the redeemer and the root, re-checks both, and sets the referrer when they allow it.
async fn locked_attempt(
    conn: &mut AsyncPgConnection,
    member: uuid::Uuid,
    owner: uuid::Uuid,
    root: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<Attempt, DbError> {
    conn.build_transaction()
        .read_committed()
        .run(async |conn| {
            let locked: Vec<LockedRow> = diesel::sql_query(LOCK_PAIR)
                .bind::<Uuid, _>(member)
                .bind::<Uuid, _>(root)
                .load(conn)
                .await?;
            let redeemer = locked.iter().find(|r| r.id == member);
            if !redeemer.is_some_and(|r| r.is_live) {
                return Ok(Attempt::RedeemerGone);
            }
            if redeemer.is_some_and(|r| !r.is_root) {
                return Ok(Attempt::AlreadyRedeemed);
            }
            if !locked.iter().any(|r| r.id == root && r.is_root) {
                return Ok(Attempt::RootMoved);
            }
            let row: MemberRow = diesel::sql_query(SET_REFERRER)
                .bind::<Uuid, _>(member)
                .bind::<Uuid, _>(owner)
                .bind::<Timestamptz, _>(now)
                .get_result(conn)
                .await?;
            Ok(Attempt::Redeemed(Box::new(row)))
        })
        .await
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

#[async_trait]
impl ReferralRepository for PgReferralRepository {
    async fn redeem(
        &self,
        member: MemberId,
        code: &ReferralCode,
        now: DateTime<Utc>,
    ) -> Result<Member, RedeemRefusal> {
        let mut conn = self.conn().await?;
        let mut climb_from = None;
        for _ in 0..MAX_ATTEMPTS {
            let found =
                probe(&mut conn, member, code, climb_from).await.context("probing a redeem")?;
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
            let (Some(root), Some(true)) = (found.top, found.top_is_root) else {
                return Err(anyhow::anyhow!(
                    "no root within {MAX_DEPTH} levels above the owner of {code}"
                )
                .into());
            };
            if root == member.as_uuid() {
                return Err(RedeemRefusal::Cycle);
            }
            match locked_attempt(&mut conn, member.as_uuid(), owner, root, now).await {
                Ok(Attempt::Redeemed(row)) => return Ok(Member::from(*row)),
                Ok(Attempt::AlreadyRedeemed) => return Err(RedeemRefusal::AlreadyRedeemed),
                Ok(Attempt::RootMoved) => climb_from = Some(root),
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
                    .load(&mut conn)
                    .await
            }
            Some(cursor) => {
                diesel::sql_query(INVITEES_AFTER)
                    .bind::<Uuid, _>(member.as_uuid())
                    .bind::<Timestamptz, _>(cursor.referred_at)
                    .bind::<Uuid, _>(cursor.id.as_uuid())
                    .bind::<BigInt, _>(i64::from(limit))
                    .load(&mut conn)
                    .await
            }
        }
        .context("loading invitees")?;
        Ok(rows.into_iter().map(InviteeRow::into_card).collect())
    }
}
