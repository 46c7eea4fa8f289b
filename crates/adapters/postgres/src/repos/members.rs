//! [`MemberRepository`] on PostgreSQL.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bytea, Nullable, Text, Timestamptz, Uuid};
use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, QueryResult};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::{MemberId, PhoneNumber, ReferralCode, SessionId};
use onboard_members::ports::{MemberRepository, SignInRecord, SignInRequest};
use onboard_members::{
    DeleteMemberError, Member, MemberCard, MemberView, Profile, ProfilePatch, SignInStoreError,
    UpdateProfileError,
};

use crate::PgPool;
use crate::error::{TxError, violated_unique};
use crate::rows::{MemberRow, ProfileRow};
use crate::schema::{members, sessions};

/// The columns of [`MemberRow`], from `members m LEFT JOIN members r ON r.id = m.referred_by`.
macro_rules! member_columns {
    () => {
        "m.id, m.phone, m.first_name, m.last_name, m.email, m.referral_code, \
         r.referral_code AS referred_by_code, m.created_at"
    };
}

const MEMBER_BY_ID: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM members m LEFT JOIN members r ON r.id = m.referred_by",
    " WHERE m.id = $1 AND m.deleted_at IS NULL"
);

const MEMBER_BY_PHONE: &str = concat!(
    "SELECT ",
    member_columns!(),
    " FROM members m LEFT JOIN members r ON r.id = m.referred_by",
    " WHERE m.phone = $1 AND m.deleted_at IS NULL"
);

/// Opens a session for the live member with phone `$1` and answers that member; no row when
/// there is none. The share lock makes a concurrent deletion wait for the session to commit,
/// so the deletion revokes it.
const OPEN_SESSION: &str = concat!(
    "WITH m AS (
        SELECT id, phone, first_name, last_name, email, referral_code, referred_by, created_at
        FROM members
        WHERE phone = $1 AND deleted_at IS NULL
        FOR SHARE
    ), s AS (
        INSERT INTO sessions
            (id, member_id, refresh_hash, user_agent, created_at, last_used_at, expires_at)
        SELECT $2, m.id, $3, $4, $5, $5, $6 FROM m
    )
    SELECT ",
    member_columns!(),
    " FROM m LEFT JOIN members r ON r.id = m.referred_by"
);

/// Creates the member of phone `$2` unless the phone is taken, with `referred_by` set to the
/// live owner of code `$4` when `$4` is given; creates nothing when `$4` names no live member.
const CREATE_MEMBER: &str = "
    INSERT INTO members (id, phone, referral_code, referred_by, referred_at, created_at)
    SELECT $1, $2, $3, r.id, CASE WHEN r.id IS NULL THEN NULL ELSE $5 END, $5
    FROM (SELECT $4::text AS code) AS c
    LEFT JOIN members r ON r.referral_code = c.code AND r.deleted_at IS NULL
    WHERE c.code IS NULL OR r.id IS NOT NULL
    ON CONFLICT ON CONSTRAINT members_phone_key DO NOTHING";

/// The member `$1`, once per invitee among the newest `$2` (or once with no invitee), with
/// the count of all their invitees.
const PROFILE: &str = concat!(
    "WITH m AS (
        SELECT ",
    member_columns!(),
    " FROM members m LEFT JOIN members r ON r.id = m.referred_by
        WHERE m.id = $1 AND m.deleted_at IS NULL
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

/// Applies the non-null fields of a patch to the live member `$1` and answers the member.
const UPDATE_PROFILE: &str = concat!(
    "WITH m AS (
        UPDATE members
        SET first_name = COALESCE($2, first_name),
            last_name = COALESCE($3, last_name),
            email = COALESCE($4, email)
        WHERE id = $1 AND deleted_at IS NULL
        RETURNING id, phone, first_name, last_name, email, referral_code, referred_by, created_at
    )
    SELECT ",
    member_columns!(),
    " FROM m LEFT JOIN members r ON r.id = m.referred_by"
);

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
) -> QueryResult<Option<MemberRow>> {
    let session = &request.session;
    diesel::sql_query(OPEN_SESSION)
        .bind::<Text, _>(request.phone.as_e164())
        .bind::<Uuid, _>(session.id.as_uuid())
        .bind::<Bytea, _>(&session.refresh_hash.0[..])
        .bind::<Nullable<Text>, _>(session.user_agent.as_deref())
        .bind::<Timestamptz, _>(request.now)
        .bind::<Timestamptz, _>(session.expires_at)
        .get_result(conn)
        .await
        .optional()
}

/// Runs [`CREATE_MEMBER`] for the request; answers whether it created the member.
async fn create_member(conn: &mut AsyncPgConnection, request: &SignInRequest) -> QueryResult<bool> {
    let inserted = diesel::sql_query(CREATE_MEMBER)
        .bind::<Uuid, _>(request.new_member_id.as_uuid())
        .bind::<Text, _>(request.phone.as_e164())
        .bind::<Text, _>(request.new_referral_code.as_str())
        .bind::<Nullable<Text>, _>(request.referred_by.as_ref().map(ReferralCode::as_str))
        .bind::<Timestamptz, _>(request.now)
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

#[async_trait]
impl MemberRepository for PgMemberRepository {
    async fn find_by_phone(&self, phone: &PhoneNumber) -> anyhow::Result<Option<Member>> {
        let mut conn = self.conn().await?;
        let row: Option<MemberRow> = diesel::sql_query(MEMBER_BY_PHONE)
            .bind::<Text, _>(phone.as_e164())
            .get_result(&mut conn)
            .await
            .optional()
            .context("finding a member by phone")?;
        Ok(row.map(Member::from))
    }

    async fn referral_code_exists(&self, code: &ReferralCode) -> anyhow::Result<bool> {
        let mut conn = self.conn().await?;
        diesel::select(diesel::dsl::exists(
            members::table
                .filter(members::referral_code.eq(code.as_str()))
                .filter(members::deleted_at.is_null()),
        ))
        .get_result(&mut conn)
        .await
        .context("looking up a referral code")
    }

    async fn sign_in(&self, request: SignInRequest) -> Result<SignInRecord, SignInStoreError> {
        let mut conn = self.conn().await?;
        // A known phone: one statement, no explicit transaction.
        if let Some(row) = open_session(&mut conn, &request).await.context("opening a session")? {
            return Ok(SignInRecord { member: row.into(), created: false });
        }
        // A new phone, as far as we saw: create the member unless a concurrent sign-in just
        // did, then open the session for whichever member holds the phone now.
        let outcome = conn
            .transaction(async |conn| {
                let created = create_member(conn, &request).await?;
                match open_session(conn, &request).await? {
                    Some(row) => Ok(SignInRecord { member: row.into(), created }),
                    None if request.referred_by.is_some() => {
                        Err(TxError::Refused(SignInStoreError::ReferralCodeNotFound))
                    }
                    None => Err(TxError::Refused(SignInStoreError::Unexpected(anyhow::anyhow!(
                        "the member holding the phone was deleted during sign-in"
                    )))),
                }
            })
            .await;
        outcome.map_err(|e| match e {
            TxError::Refused(e) => e,
            TxError::Db(e) if violated_unique(&e) == Some("members_referral_code_key") => {
                SignInStoreError::ReferralCodeCollision
            }
            TxError::Db(e) => anyhow::Error::new(e).context("signing in").into(),
        })
    }

    async fn get(&self, id: MemberId) -> anyhow::Result<Option<Member>> {
        let mut conn = self.conn().await?;
        let row: Option<MemberRow> = diesel::sql_query(MEMBER_BY_ID)
            .bind::<Uuid, _>(id.as_uuid())
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
        // Groups come later: until then only a member sees all of themself.
        Ok(self.get(id).await?.map(|member| {
            if viewer == id {
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
    ) -> Result<Member, UpdateProfileError> {
        if *patch == ProfilePatch::default() {
            return self.get(id).await?.ok_or(UpdateProfileError::NotFound);
        }
        let mut conn = self.conn().await?;
        let row: Option<MemberRow> = diesel::sql_query(UPDATE_PROFILE)
            .bind::<Uuid, _>(id.as_uuid())
            .bind::<Nullable<Text>, _>(patch.first_name.as_ref().map(|n| n.as_str()))
            .bind::<Nullable<Text>, _>(patch.last_name.as_ref().map(|n| n.as_str()))
            .bind::<Nullable<Text>, _>(patch.email.as_ref().map(|e| e.as_str()))
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| match violated_unique(&e) {
                Some("members_email_key") => UpdateProfileError::EmailTaken,
                _ => anyhow::Error::new(e).context("updating a profile").into(),
            })?;
        row.map(Member::from).ok_or(UpdateProfileError::NotFound)
    }

    async fn delete(
        &self,
        id: MemberId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, DeleteMemberError> {
        let mut conn = self.conn().await?;
        // Two statements: the second sees any session that a sign-in holding the member's row
        // opened while the first waited for it.
        let outcome = conn
            .transaction(async |conn| {
                let deleted = diesel::update(
                    members::table
                        .filter(members::id.eq(id.as_uuid()))
                        .filter(members::deleted_at.is_null()),
                )
                .set((
                    members::deleted_at.eq(now),
                    members::phone.eq(None::<String>),
                    members::email.eq(None::<String>),
                ))
                .execute(conn)
                .await?;
                if deleted == 0 {
                    return Err(TxError::Refused(DeleteMemberError::NotFound));
                }
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
                Ok(revoked.into_iter().map(SessionId::from_uuid).collect())
            })
            .await;
        outcome.map_err(|e| match e {
            TxError::Refused(e) => e,
            TxError::Db(e) => anyhow::Error::new(e).context("deleting a member").into(),
        })
    }
}
