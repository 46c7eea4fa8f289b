//! [`IdempotencyRepository`] on PostgreSQL: `Idempotency-Key` claims and their stored answers.

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use diesel::sql_types::{Nullable, Text, Timestamptz, Uuid};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel_async::RunQueryDsl as _;
use onboard_kernel::GroupId;
use onboard_payments::ports::{Claim, IdempotencyRepository};

use crate::cached::CachedExt;

use super::{FoundRow, PgBillingStore};
use crate::error::TX_ATTEMPTS;

/// Claims key (`$1`, `$2`) for request hash `$3` at `$4`: inserts it, or replaces a record
/// claimed at or before `$5` (24 hours before `$4`). A row only when claimed.
const CLAIM: &str = "
    INSERT INTO billing_idempotency_keys (group_id, key, request_hash, claimed_at)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT ON CONSTRAINT billing_idempotency_keys_pkey DO UPDATE
        SET request_hash = EXCLUDED.request_hash, claimed_at = EXCLUDED.claimed_at,
            outcome = NULL
        WHERE billing_idempotency_keys.claimed_at <= $5
    RETURNING true AS found";

/// The record of key (`$1`, `$2`).
const KEY: &str = "
    SELECT request_hash, outcome::text AS outcome
    FROM billing_idempotency_keys WHERE group_id = $1 AND key = $2";

/// Stores the outcome of key (`$1`, `$2`).
const COMPLETE: &str = "
    UPDATE billing_idempotency_keys SET outcome = $3::jsonb
    WHERE group_id = $1 AND key = $2";

/// Forgets key (`$1`, `$2`) while it has no outcome.
const RELEASE: &str = "
    DELETE FROM billing_idempotency_keys
    WHERE group_id = $1 AND key = $2 AND outcome IS NULL";

/// How long an idempotency key lives.
const KEY_TTL_HOURS: i64 = 24;

#[derive(Debug, QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    request_hash: String,
    #[diesel(sql_type = Nullable<Text>)]
    outcome: Option<String>,
}

#[async_trait]
impl IdempotencyRepository for PgBillingStore {
    async fn claim(
        &self,
        group: GroupId,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Claim> {
        let mut conn = self.conn().await?;
        for _ in 0..TX_ATTEMPTS {
            let claimed: Option<FoundRow> = diesel::sql_query(CLAIM)
                .bind::<Uuid, _>(group.as_uuid())
                .bind::<Text, _>(key)
                .bind::<Text, _>(request_hash)
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(now - Duration::hours(KEY_TTL_HOURS))
                .cached()
                .get_result(&mut conn)
                .await
                .optional()
                .context("claiming an idempotency key")?;
            if claimed.is_some() {
                return Ok(Claim::Claimed);
            }
            let row: Option<KeyRow> = diesel::sql_query(KEY)
                .bind::<Uuid, _>(group.as_uuid())
                .bind::<Text, _>(key)
                .cached()
                .get_result(&mut conn)
                .await
                .optional()
                .context("reading an idempotency key")?;
            // None: released between the two statements; claim again.
            if let Some(row) = row {
                let outcome = row
                    .outcome
                    .map(|o| serde_json::from_str(&o))
                    .transpose()
                    .context("a stored outcome")?;
                return Ok(Claim::Existing { request_hash: row.request_hash, outcome });
            }
        }
        anyhow::bail!("idempotency key {key:?} kept changing under its claim")
    }

    async fn complete(
        &self,
        group: GroupId,
        key: &str,
        outcome: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        let outcome = serde_json::to_string(outcome).context("encoding an outcome")?;
        diesel::sql_query(COMPLETE)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Text, _>(key)
            .bind::<Text, _>(outcome)
            .cached()
            .execute(&mut conn)
            .await
            .context("storing an idempotent outcome")?;
        Ok(())
    }

    async fn release(&self, group: GroupId, key: &str) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        diesel::sql_query(RELEASE)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Text, _>(key)
            .cached()
            .execute(&mut conn)
            .await
            .context("releasing an idempotency key")?;
        Ok(())
    }
}
