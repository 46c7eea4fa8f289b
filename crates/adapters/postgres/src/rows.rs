//! Rows as queries return them, and their conversion to domain values.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid};
use onboard_kernel::{Email, MemberId, PhoneNumber, ReferralCode, SessionId};
use onboard_members::{Member, MemberCard, Session};

use crate::schema::sessions;

/// A member with their referrer's code (`members m LEFT JOIN members r ON r.id = m.referred_by`).
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct MemberRow {
    #[diesel(sql_type = Uuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    pub phone: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub email: Option<String>,
    #[diesel(sql_type = Text)]
    pub referral_code: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub referred_by_code: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

impl From<MemberRow> for Member {
    fn from(row: MemberRow) -> Self {
        Self {
            id: MemberId::from_uuid(row.id),
            phone: row.phone.map(PhoneNumber::from_trusted_e164),
            first_name: row.first_name,
            last_name: row.last_name,
            email: row.email.map(Email::from_trusted),
            referral_code: ReferralCode::from_trusted(row.referral_code),
            referred_by: row.referred_by_code.map(ReferralCode::from_trusted),
            // Groups come with their own migration.
            current_group: None,
            created_at: row.created_at,
        }
    }
}

/// One row of the profile query: the member, the invitee count, and one invitee (if any).
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct ProfileRow {
    #[diesel(embed)]
    pub member: MemberRow,
    #[diesel(sql_type = BigInt)]
    pub invitees_count: i64,
    #[diesel(sql_type = Nullable<Uuid>)]
    pub invitee_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub invitee_first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub invitee_last_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub invitee_phone: Option<String>,
}

impl ProfileRow {
    /// The invitee this row carries, if any.
    pub fn invitee(&self) -> Option<MemberCard> {
        self.invitee_id.map(|id| MemberCard {
            id: MemberId::from_uuid(id),
            first_name: self.invitee_first_name.clone(),
            last_name: self.invitee_last_name.clone(),
            phone_masked: self
                .invitee_phone
                .as_deref()
                .map(|p| PhoneNumber::from_trusted_e164(p).masked()),
        })
    }
}

/// A session as its owner sees it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub(crate) struct SessionRow {
    pub id: uuid::Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub user_agent: Option<String>,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Self {
            id: SessionId::from_uuid(row.id),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            user_agent: row.user_agent,
        }
    }
}

/// The answer of the rotation statement: what happened to which session.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct RotationRow {
    /// `rotated`, `grace` or `reused`.
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = Uuid)]
    pub session_id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    pub member_id: uuid::Uuid,
}
