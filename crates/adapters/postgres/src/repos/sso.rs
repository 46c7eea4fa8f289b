//! [`IdentityRepository`] on PostgreSQL.

use std::fmt;

use anyhow::Context as _;
use async_trait::async_trait;
use diesel::sql_types::{Bytea, Nullable, Text, Timestamptz, Uuid};
use diesel::{OptionalExtension as _, QueryResult, QueryableByName};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_groups::Slug;
use onboard_members::SignInStoreError;
use onboard_members::events::with_workspace_slug;
use onboard_members::ports::{SignInDraft, SignInRecord};
use onboard_sso::ProviderIdentity;
use onboard_sso::ports::IdentityRepository;

use crate::PgPool;
use crate::cached::CachedExt;
use crate::error::{TxError, is_transient, violated_unique};
use crate::repos::outbox::{events_json, record_events};
use crate::rows::CurrentMemberRow;

/// Serialises the sign-ins of one identity (`$1`: provider, `$2`: subject) until the
/// transaction ends, so two first logins of one person create one member (a provider name
/// has no `:`).
const LOCK_IDENTITY: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 7))";

/// The live member linked to identity (`$1`, `$2`), share-locked so that a concurrent
/// deletion waits for the new session and revokes it.
/// Whether a member is blocked by a platform admin.
const BLOCKED: &str = "SELECT blocked_at IS NOT NULL AS blocked FROM members WHERE id = $1";

#[derive(diesel::QueryableByName)]
struct BlockedRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    blocked: bool,
}

const LINKED_MEMBER: &str = "
    SELECT m.id FROM sso_identities i JOIN members m ON m.id = i.member_id
    WHERE i.provider = $1 AND i.subject = $2 AND m.deleted_at IS NULL
    FOR SHARE OF m";

/// The live member with phone `$1`, share-locked.
const MEMBER_BY_PHONE: &str =
    "SELECT id FROM members WHERE phone = $1 AND deleted_at IS NULL FOR SHARE";

/// The live member with e-mail `$1`, share-locked.
const MEMBER_BY_EMAIL: &str =
    "SELECT id FROM members WHERE email = $1 AND deleted_at IS NULL FOR SHARE";

/// Creates member `$1` (phone `$2`, e-mail `$3`, names `$4` `$5`, referral code `$6`, at `$7`)
/// and, when `$8` is given, their personal workspace: group `$8` (slug `$9`, name `$10`), the
/// member its active owner and the group their current one; with them, the sign-up's events
/// (the JSON array `$11`).
const CREATE_MEMBER: &str = concat!(
    "
    WITH m AS (
        INSERT INTO members
            (id, phone, email, first_name, last_name, referral_code, current_group_id, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $8, $7)
        RETURNING id
    ), g AS (
        INSERT INTO groups (id, slug, name, approval_required, created_at)
        SELECT $8, $9, $10, false, $7 FROM m WHERE $8::uuid IS NOT NULL
        RETURNING id
    ), o AS (
        INSERT INTO group_members (group_id, member_id, role, status, joined_at)
        SELECT g.id, m.id, 'owner', 'active', $7 FROM g CROSS JOIN m
    ), events AS (",
    record_events!("$11"),
    " WHERE EXISTS (SELECT FROM m)
    )
    SELECT id FROM m"
);

/// Links identity (`$1`, `$2`) to member `$3` at `$4` (moving a link whose member was deleted).
const LINK: &str = "
    INSERT INTO sso_identities (provider, subject, member_id, created_at, last_login_at)
    VALUES ($1, $2, $3, $4, $4)
    ON CONFLICT ON CONSTRAINT sso_identities_provider_subject_key
    DO UPDATE SET member_id = EXCLUDED.member_id, last_login_at = EXCLUDED.last_login_at";

/// Opens session `$1` (of kind `$7`) for member `$2`.
const OPEN_SESSION: &str = "
    INSERT INTO sessions
        (id, member_id, refresh_hash, user_agent, created_at, last_used_at, expires_at, kind)
    VALUES ($1, $2, $3, $4, $5, $5, $6, $7)";

/// Member `$1` with their referrer's code and current group.
const MEMBER: &str = "
    SELECT m.id, m.phone, m.first_name, m.last_name, m.email, m.referral_code,
        r.referral_code AS referred_by_code, m.created_at, g.slug AS current_group
    FROM members m
    LEFT JOIN members r ON r.id = m.referred_by
    LEFT JOIN groups g ON g.id = m.current_group_id
    WHERE m.id = $1";

/// How many times a sign-in starts over: after a concurrent sign-up or profile change took the
/// phone or e-mail of the member it was creating (the next attempt links to that member), a
/// personal workspace slug clash, or a deadlock.
const ATTEMPTS: usize = 3;

#[derive(Debug, QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
}

/// Provider identities linked to members, in PostgreSQL.
#[derive(Clone)]
pub struct PgIdentityRepository {
    pool: PgPool,
}

impl fmt::Debug for PgIdentityRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgIdentityRepository").field("pool", &self.pool.status()).finish()
    }
}

impl PgIdentityRepository {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> anyhow::Result<Object<AsyncPgConnection>> {
        self.pool.get().await.context("checking out a PostgreSQL connection")
    }
}

/// The id in the single-id answer of `query`, if any.
async fn find(
    conn: &mut AsyncPgConnection,
    query: &'static str,
    a: &str,
    b: Option<&str>,
) -> QueryResult<Option<uuid::Uuid>> {
    let row: Option<IdRow> = match b {
        Some(b) => {
            diesel::sql_query(query)
                .bind::<Text, _>(a)
                .bind::<Text, _>(b)
                .cached()
                .get_result(conn)
                .await
        }
        None => diesel::sql_query(query).bind::<Text, _>(a).cached().get_result(conn).await,
    }
    .optional()?;
    Ok(row.map(|r| r.id))
}

/// The member the identity signs in as, created if need be; whether it was created.
async fn resolve(
    conn: &mut AsyncPgConnection,
    identity: &ProviderIdentity,
    draft: &SignInDraft,
    slug: Option<&str>,
) -> QueryResult<(uuid::Uuid, bool)> {
    let provider = identity.provider.as_str();
    if let Some(id) = find(conn, LINKED_MEMBER, provider, Some(&identity.subject)).await? {
        return Ok((id, false));
    }
    if let Some(phone) = &identity.verified_phone
        && let Some(id) = find(conn, MEMBER_BY_PHONE, phone.as_e164(), None).await?
    {
        return Ok((id, false));
    }
    if let Some(email) = &identity.verified_email
        && let Some(id) = find(conn, MEMBER_BY_EMAIL, email.as_str(), None).await?
    {
        return Ok((id, false));
    }
    let workspace = draft.personal_workspace.as_ref();
    let events = match (workspace, slug) {
        (Some(w), Some(slug)) => with_workspace_slug(&draft.created_events, w.id, slug),
        _ => draft.created_events.clone(),
    };
    let row: IdRow = diesel::sql_query(CREATE_MEMBER)
        .bind::<Uuid, _>(draft.new_member_id.as_uuid())
        .bind::<Nullable<Text>, _>(identity.verified_phone.as_ref().map(|p| p.as_e164()))
        .bind::<Nullable<Text>, _>(identity.verified_email.as_ref().map(|e| e.as_str()))
        .bind::<Nullable<Text>, _>(identity.first_name.as_ref().map(|n| n.as_str()))
        .bind::<Nullable<Text>, _>(identity.last_name.as_ref().map(|n| n.as_str()))
        .bind::<Text, _>(draft.new_referral_code.as_str())
        .bind::<Timestamptz, _>(draft.now)
        .bind::<Nullable<Uuid>, _>(workspace.map(|w| w.id.as_uuid()))
        .bind::<Nullable<Text>, _>(workspace.map(|w| slug.unwrap_or(&w.slug)))
        .bind::<Nullable<Text>, _>(workspace.map(|w| w.name.as_str()))
        .bind::<Text, _>(events_json(&events))
        .cached()
        .get_result(conn)
        .await?;
    Ok((row.id, true))
}

/// The whole sign-in, in one transaction.
async fn sign_in_once(
    conn: &mut AsyncPgConnection,
    identity: &ProviderIdentity,
    draft: &SignInDraft,
    slug: Option<&str>,
) -> Result<SignInRecord, TxError<SignInStoreError>> {
    conn.transaction(async |conn| {
        let provider = identity.provider.as_str();
        diesel::sql_query(LOCK_IDENTITY)
            .bind::<Text, _>(provider)
            .bind::<Text, _>(&identity.subject)
            .cached()
            .execute(conn)
            .await?;
        let (member_id, created) = resolve(conn, identity, draft, slug).await?;
        let blocked: BlockedRow =
            diesel::sql_query(BLOCKED).bind::<Uuid, _>(member_id).cached().get_result(conn).await?;
        if blocked.blocked {
            return Err(TxError::Refused(SignInStoreError::Blocked));
        }
        diesel::sql_query(LINK)
            .bind::<Text, _>(provider)
            .bind::<Text, _>(&identity.subject)
            .bind::<Uuid, _>(member_id)
            .bind::<Timestamptz, _>(draft.now)
            .cached()
            .execute(conn)
            .await?;
        let session = &draft.session;
        diesel::sql_query(OPEN_SESSION)
            .bind::<Uuid, _>(session.id.as_uuid())
            .bind::<Uuid, _>(member_id)
            .bind::<Bytea, _>(&session.refresh_hash.0[..])
            .bind::<Nullable<Text>, _>(session.user_agent.as_deref())
            .bind::<Timestamptz, _>(draft.now)
            .bind::<Timestamptz, _>(session.expires_at)
            .bind::<Text, _>(session.kind.as_str())
            .cached()
            .execute(conn)
            .await?;
        let member: CurrentMemberRow =
            diesel::sql_query(MEMBER).bind::<Uuid, _>(member_id).cached().get_result(conn).await?;
        Ok(SignInRecord { member: member.into(), created })
    })
    .await
}

#[async_trait]
impl IdentityRepository for PgIdentityRepository {
    async fn sign_in(
        &self,
        identity: &ProviderIdentity,
        draft: &SignInDraft,
    ) -> Result<SignInRecord, SignInStoreError> {
        let mut conn = self.conn().await?;
        let mut slug: Option<String> = None;
        let mut attempt = 1;
        loop {
            let error = match sign_in_once(&mut conn, identity, draft, slug.as_deref()).await {
                Ok(record) => return Ok(record),
                Err(TxError::Refused(e)) => return Err(e),
                Err(TxError::Db(e)) => e,
            };
            let retry = match violated_unique(&error) {
                Some("members_referral_code_key") => {
                    return Err(SignInStoreError::ReferralCodeCollision);
                }
                Some("groups_slug_key") => {
                    slug = Some(Slug::personal().as_str().to_owned());
                    true
                }
                Some("members_phone_key" | "members_email_key") => true,
                _ => is_transient(&error),
            };
            if !retry || attempt >= ATTEMPTS {
                return Err(anyhow::Error::new(error).context("signing in with SSO").into());
            }
            attempt += 1;
        }
    }
}
