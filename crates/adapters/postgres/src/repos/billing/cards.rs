//! [`CardRepository`] on PostgreSQL: cards, customer_uids issued to groups, and the journal of
//! main-card changes.

use std::collections::HashMap;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Bool, Nullable, Text, Timestamptz, Uuid};
use diesel::{OptionalExtension as _, QueryableByName};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use onboard_kernel::GroupId;
use onboard_payments::model::{
    Card, CardChange, CardChangeId, CardChangeStep, CardId, Charge, ChargeStatus, CustomerUid,
    MerchantUid,
};
use onboard_payments::ports::{
    AddCardError, BeginCardChangeError, BillingCommit, CardRepository, CommitError, DeleteCardError,
};

use crate::cached::CachedExt;
use crate::error::{TxError, retrying, violated_unique};

use super::commit::{CHARGES_IN, commit_in};
use super::{ChargeRow, FoundRow, IdRow, PgBillingStore};

/// Records that customer_uid `$1` was issued to group `$2` at `$3` (again: nothing changes).
const PREPARE: &str = "
    INSERT INTO billing_customer_uids (customer_uid, group_id, created_at) VALUES ($1, $2, $3)
    ON CONFLICT ON CONSTRAINT billing_customer_uids_pkey DO NOTHING";

/// The group customer_uid `$1` was issued to.
const PREPARED_FOR: &str =
    "SELECT group_id AS id FROM billing_customer_uids WHERE customer_uid = $1";

/// The columns of [`CardRow`].
macro_rules! card_columns {
    () => {
        "id, group_id, customer_uid, card_name, number_masked, main, created_at"
    };
}

/// Inserts a card as its group's main card, unless the group has one (then no row).
const INSERT_MAIN_CARD: &str = concat!(
    "INSERT INTO billing_cards (",
    card_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, true, $6)
    ON CONFLICT (group_id) WHERE main DO NOTHING
    RETURNING ",
    card_columns!()
);

/// Inserts a card, not main.
const INSERT_CARD: &str = concat!(
    "INSERT INTO billing_cards (",
    card_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, false, $6)
    RETURNING ",
    card_columns!()
);

/// The cards of group `$1`, oldest first.
const CARDS: &str = concat!(
    "SELECT ",
    card_columns!(),
    " FROM billing_cards WHERE group_id = $1 ORDER BY created_at, id"
);

/// Card `$2` of group `$1`.
const CARD: &str =
    concat!("SELECT ", card_columns!(), " FROM billing_cards WHERE group_id = $1 AND id = $2");

/// Locks card `$2` of group `$1` for its deletion.
const LOCK_CARD: &str = "SELECT id FROM billing_cards WHERE group_id = $1 AND id = $2 FOR UPDATE";

/// Whether a scheduled charge is on card `$1` (`billing_charges_scheduled_card_idx`).
const CARD_IN_USE: &str = "
    SELECT EXISTS (SELECT FROM billing_charges WHERE card_id = $1 AND status = 'scheduled')
        AS found";

/// Deletes card `$1`.
const DELETE_CARD: &str = "DELETE FROM billing_cards WHERE id = $1";

/// Locks every card of group `$1` (a main-card change), answering which is main.
const LOCK_CARDS: &str =
    "SELECT id, main FROM billing_cards WHERE group_id = $1 ORDER BY id FOR UPDATE";

/// Sets `main` to `$3` on card `$2` of group `$1`.
const SET_MAIN: &str = "UPDATE billing_cards SET main = $3 WHERE group_id = $1 AND id = $2";

/// Makes card `$2` of group `$1` main again (a rollback) if it still exists and no card of
/// the group is main.
const REMARK_OLD: &str = "
    UPDATE billing_cards SET main = true
    WHERE group_id = $1 AND id = $2
        AND NOT EXISTS (SELECT FROM billing_cards WHERE group_id = $1 AND main)";

/// Unmarks group `$1`'s main card.
const UNMARK_MAIN: &str = "UPDATE billing_cards SET main = false WHERE group_id = $1 AND main";

/// Inserts a main-card change journal row at step `marked`.
const INSERT_CHANGE: &str = "
    INSERT INTO billing_card_changes (id, group_id, old_card, new_card, old_merchant_uid,
        new_merchant_uid, step, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, 'marked', $7)";

/// Sets journal row `$1` to step `$2`.
const SET_STEP: &str = "UPDATE billing_card_changes SET step = $2 WHERE id = $1";

/// The unfinished journal rows, oldest first, with their old charge
/// (`billing_card_changes_unfinished_idx`).
const UNFINISHED: &str = "
    SELECT id, group_id, old_card, new_card, old_merchant_uid, new_merchant_uid, step, created_at
    FROM billing_card_changes
    WHERE step IN ('marked', 'unscheduled', 'scheduled')
    ORDER BY created_at, id";

#[derive(Debug, QueryableByName)]
struct CardRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    customer_uid: String,
    #[diesel(sql_type = Text)]
    card_name: String,
    #[diesel(sql_type = Text)]
    number_masked: String,
    #[diesel(sql_type = Bool)]
    main: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl From<CardRow> for Card {
    fn from(row: CardRow) -> Self {
        Self {
            id: CardId::from_uuid(row.id),
            group: GroupId::from_uuid(row.group_id),
            customer_uid: CustomerUid::from_trusted(row.customer_uid),
            card_name: row.card_name,
            number_masked: row.number_masked,
            main: row.main,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, QueryableByName)]
struct MainRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Bool)]
    main: bool,
}

#[derive(Debug, QueryableByName)]
struct ChangeRow {
    #[diesel(sql_type = Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    group_id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Uuid>)]
    old_card: Option<uuid::Uuid>,
    #[diesel(sql_type = Uuid)]
    new_card: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    old_merchant_uid: Option<String>,
    #[diesel(sql_type = Text)]
    new_merchant_uid: String,
    #[diesel(sql_type = Text)]
    step: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

async fn add_tx(conn: &mut AsyncPgConnection, card: &Card) -> Result<Card, TxError<AddCardError>> {
    conn.transaction(async |conn| {
        let owner: Option<IdRow> = diesel::sql_query(PREPARED_FOR)
            .bind::<Text, _>(card.customer_uid.as_str())
            .cached()
            .get_result(conn)
            .await
            .optional()?;
        if owner.map(|o| o.id) != Some(card.group.as_uuid()) {
            return Err(TxError::Refused(AddCardError::NotPrepared));
        }
        let exists = |e: diesel::result::Error| match violated_unique(&e) {
            Some("billing_cards_customer_uid_key" | "billing_cards_pkey") => {
                TxError::Refused(AddCardError::Exists)
            }
            _ => TxError::Db(e),
        };
        let main: Option<CardRow> = diesel::sql_query(INSERT_MAIN_CARD)
            .bind::<Uuid, _>(card.id.as_uuid())
            .bind::<Uuid, _>(card.group.as_uuid())
            .bind::<Text, _>(card.customer_uid.as_str())
            .bind::<Text, _>(&card.card_name)
            .bind::<Text, _>(&card.number_masked)
            .bind::<Timestamptz, _>(card.created_at)
            .cached()
            .get_result(conn)
            .await
            .optional()
            .map_err(exists)?;
        if let Some(row) = main {
            return Ok(row.into());
        }
        let row: CardRow = diesel::sql_query(INSERT_CARD)
            .bind::<Uuid, _>(card.id.as_uuid())
            .bind::<Uuid, _>(card.group.as_uuid())
            .bind::<Text, _>(card.customer_uid.as_str())
            .bind::<Text, _>(&card.card_name)
            .bind::<Text, _>(&card.number_masked)
            .bind::<Timestamptz, _>(card.created_at)
            .cached()
            .get_result(conn)
            .await
            .map_err(exists)?;
        Ok(row.into())
    })
    .await
}

async fn delete_tx(
    conn: &mut AsyncPgConnection,
    group: GroupId,
    id: CardId,
) -> Result<(), TxError<DeleteCardError>> {
    conn.transaction(async |conn| {
        let found: Option<IdRow> = diesel::sql_query(LOCK_CARD)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Uuid, _>(id.as_uuid())
            .cached()
            .get_result(conn)
            .await
            .optional()?;
        if found.is_none() {
            return Err(TxError::Refused(DeleteCardError::NotFound));
        }
        let in_use: FoundRow = diesel::sql_query(CARD_IN_USE)
            .bind::<Uuid, _>(id.as_uuid())
            .cached()
            .get_result(conn)
            .await?;
        if in_use.found {
            return Err(TxError::Refused(DeleteCardError::InUse));
        }
        diesel::sql_query(DELETE_CARD).bind::<Uuid, _>(id.as_uuid()).cached().execute(conn).await?;
        Ok(())
    })
    .await
}

async fn begin_tx(
    conn: &mut AsyncPgConnection,
    change: &CardChange,
) -> Result<(), TxError<BeginCardChangeError>> {
    conn.transaction(async |conn| {
        let group = change.group.as_uuid();
        let cards: Vec<MainRow> =
            diesel::sql_query(LOCK_CARDS).bind::<Uuid, _>(group).cached().load(conn).await?;
        if !cards.iter().any(|c| c.id == change.new_card.as_uuid()) {
            return Err(TxError::Refused(BeginCardChangeError::NotFound));
        }
        let main = cards.iter().find(|c| c.main).map(|c| CardId::from_uuid(c.id));
        if main != change.old_card {
            return Err(TxError::Refused(BeginCardChangeError::Busy));
        }
        diesel::sql_query(INSERT_CHANGE)
            .bind::<Uuid, _>(change.id.as_uuid())
            .bind::<Uuid, _>(group)
            .bind::<Nullable<Uuid>, _>(change.old_card.map(|c| c.as_uuid()))
            .bind::<Uuid, _>(change.new_card.as_uuid())
            .bind::<Nullable<Text>, _>(change.old_charge.as_ref().map(|c| c.merchant_uid.as_str()))
            .bind::<Text, _>(change.new_merchant_uid.as_str())
            .bind::<Timestamptz, _>(change.created_at)
            .cached()
            .execute(conn)
            .await
            .map_err(|e| match violated_unique(&e) {
                Some("billing_card_changes_unfinished_key") => {
                    TxError::Refused(BeginCardChangeError::Busy)
                }
                _ => TxError::Db(e),
            })?;
        diesel::sql_query(UNMARK_MAIN).bind::<Uuid, _>(group).cached().execute(conn).await?;
        diesel::sql_query(SET_MAIN)
            .bind::<Uuid, _>(group)
            .bind::<Uuid, _>(change.new_card.as_uuid())
            .bind::<Bool, _>(true)
            .cached()
            .execute(conn)
            .await
            .map_err(|e| match violated_unique(&e) {
                Some("billing_cards_one_main_key") => TxError::Refused(BeginCardChangeError::Busy),
                _ => TxError::Db(e),
            })?;
        Ok(())
    })
    .await
}

async fn set_step(
    conn: &mut AsyncPgConnection,
    id: CardChangeId,
    step: CardChangeStep,
) -> diesel::QueryResult<usize> {
    diesel::sql_query(SET_STEP)
        .bind::<Uuid, _>(id.as_uuid())
        .bind::<Text, _>(step.as_str())
        .cached()
        .execute(conn)
        .await
}

async fn finish_tx(
    conn: &mut AsyncPgConnection,
    id: CardChangeId,
    commit: Option<&BillingCommit>,
) -> Result<(), TxError<CommitError>> {
    conn.transaction(async |conn| {
        if let Some(commit) = commit {
            commit_in(conn, commit).await?;
        }
        set_step(conn, id, CardChangeStep::Done).await?;
        Ok(())
    })
    .await
}

async fn roll_back_tx(
    conn: &mut AsyncPgConnection,
    change: &CardChange,
) -> Result<(), TxError<anyhow::Error>> {
    conn.transaction(async |conn| {
        let group = change.group.as_uuid();
        let _: Vec<MainRow> =
            diesel::sql_query(LOCK_CARDS).bind::<Uuid, _>(group).cached().load(conn).await?;
        diesel::sql_query(SET_MAIN)
            .bind::<Uuid, _>(group)
            .bind::<Uuid, _>(change.new_card.as_uuid())
            .bind::<Bool, _>(false)
            .cached()
            .execute(conn)
            .await?;
        if let Some(old) = change.old_card {
            diesel::sql_query(REMARK_OLD)
                .bind::<Uuid, _>(group)
                .bind::<Uuid, _>(old.as_uuid())
                .cached()
                .execute(conn)
                .await?;
        }
        set_step(conn, change.id, CardChangeStep::RolledBack).await?;
        Ok(())
    })
    .await
}

#[async_trait]
impl CardRepository for PgBillingStore {
    async fn prepare(
        &self,
        group: GroupId,
        customer_uid: &CustomerUid,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        diesel::sql_query(PREPARE)
            .bind::<Text, _>(customer_uid.as_str())
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Timestamptz, _>(now)
            .cached()
            .execute(&mut conn)
            .await
            .context("recording a customer_uid")?;
        Ok(())
    }

    async fn add(&self, card: &Card) -> Result<Card, AddCardError> {
        let mut conn = self.conn().await?;
        retrying!("adding a card", add_tx(&mut conn, card))
    }

    async fn cards(&self, group: GroupId) -> anyhow::Result<Vec<Card>> {
        let mut conn = self.conn().await?;
        let rows: Vec<CardRow> = diesel::sql_query(CARDS)
            .bind::<Uuid, _>(group.as_uuid())
            .cached()
            .load(&mut conn)
            .await
            .context("listing cards")?;
        Ok(rows.into_iter().map(Card::from).collect())
    }

    async fn card(&self, group: GroupId, id: CardId) -> anyhow::Result<Option<Card>> {
        let mut conn = self.conn().await?;
        let row: Option<CardRow> = diesel::sql_query(CARD)
            .bind::<Uuid, _>(group.as_uuid())
            .bind::<Uuid, _>(id.as_uuid())
            .cached()
            .get_result(&mut conn)
            .await
            .optional()
            .context("reading a card")?;
        Ok(row.map(Card::from))
    }

    async fn delete(&self, group: GroupId, id: CardId) -> Result<(), DeleteCardError> {
        let mut conn = self.conn().await?;
        retrying!("deleting a card", delete_tx(&mut conn, group, id))
    }

    async fn begin_main_change(&self, change: &CardChange) -> Result<(), BeginCardChangeError> {
        let mut conn = self.conn().await?;
        retrying!("beginning a main-card change", begin_tx(&mut conn, change))
    }

    async fn advance_main_change(
        &self,
        id: CardChangeId,
        step: CardChangeStep,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        set_step(&mut conn, id, step).await.context("advancing a main-card change")?;
        Ok(())
    }

    async fn finish_main_change(
        &self,
        id: CardChangeId,
        commit: Option<BillingCommit>,
    ) -> Result<(), CommitError> {
        let mut conn = self.conn().await?;
        retrying!("finishing a main-card change", finish_tx(&mut conn, id, commit.as_ref()))
    }

    async fn roll_back_main_change(&self, change: &CardChange) -> anyhow::Result<()> {
        let mut conn = self.conn().await?;
        retrying!("rolling back a main-card change", roll_back_tx(&mut conn, change))
    }

    async fn unfinished_main_changes(&self) -> anyhow::Result<Vec<CardChange>> {
        let mut conn = self.conn().await?;
        let rows: Vec<ChangeRow> = diesel::sql_query(UNFINISHED)
            .cached()
            .load(&mut conn)
            .await
            .context("listing unfinished main-card changes")?;
        let uids: Vec<&str> = rows.iter().filter_map(|r| r.old_merchant_uid.as_deref()).collect();
        let mut charges: HashMap<String, Charge> = HashMap::new();
        if !uids.is_empty() {
            let found: Vec<ChargeRow> = diesel::sql_query(CHARGES_IN)
                .bind::<Array<Text>, _>(&uids)
                .cached()
                .load(&mut conn)
                .await
                .context("reading the old charges of main-card changes")?;
            for row in found {
                let charge = Charge::try_from(row)?;
                charges.insert(charge.merchant_uid.as_str().to_owned(), charge);
            }
        }
        rows.into_iter()
            .map(|r| {
                // The journal holds the charge as it was when the change began: scheduled
                // (only its status ever changes).
                let old_charge = r
                    .old_merchant_uid
                    .as_ref()
                    .and_then(|m| charges.get(m))
                    .cloned()
                    .map(|c| Charge { status: ChargeStatus::Scheduled, ..c });
                Ok(CardChange {
                    id: CardChangeId::from_uuid(r.id),
                    group: GroupId::from_uuid(r.group_id),
                    old_card: r.old_card.map(CardId::from_uuid),
                    new_card: CardId::from_uuid(r.new_card),
                    old_charge,
                    new_merchant_uid: MerchantUid::from_trusted(r.new_merchant_uid),
                    step: CardChangeStep::parse(&r.step)
                        .with_context(|| format!("unknown main-card change step {:?}", r.step))?,
                    created_at: r.created_at,
                })
            })
            .collect()
    }
}
