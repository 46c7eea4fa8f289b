//! The PostgreSQL adapters against a real server: every test gets its own database.

#![allow(clippy::unwrap_used)]

mod admin;
mod billing;
mod billing_events;
mod groups;
mod invites;
mod jobs;
mod members;
mod messages;
mod migrations;
mod notifications;
mod outbox;
mod referrals;
mod sessions;
mod sms_credit;
mod sms_credit_store;
mod sso;
mod webhooks;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl as _;
use onboard_kernel::{MemberId, PhoneNumber, ReferralCode, SessionId, random_bytes};
use onboard_members::TokenHash;
use onboard_members::ports::{NewSession, SignInRequest};
use onboard_postgres::PgPool;

/// Now, at the precision PostgreSQL keeps.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A valid Russian mobile number, distinct for each `n`.
pub fn phone(n: u32) -> PhoneNumber {
    PhoneNumber::parse(&format!("+7917{n:07}"), None).expect("a valid number")
}

pub fn token() -> TokenHash {
    TokenHash(random_bytes())
}

/// A sign-in of `phone` at `now`, with a fresh member id, referral code and session.
pub fn sign_in(phone: &PhoneNumber, now: DateTime<Utc>) -> SignInRequest {
    SignInRequest {
        phone: phone.clone(),
        new_member_id: MemberId::new(),
        new_referral_code: ReferralCode::generate(),
        referred_by: None,
        session: NewSession {
            kind: onboard_members::SessionKind::Rotating,
            id: SessionId::new(),
            refresh_hash: token(),
            user_agent: Some("tests/1.0".into()),
            expires_at: now + Duration::days(14),
        },
        personal_workspace: None,
        created_events: Vec::new(),
        now,
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Every event the outbox holds, oldest first.
pub async fn stored_events(pool: &PgPool) -> Vec<onboard_kernel::events::Event> {
    use onboard_kernel::events::EventFeed as _;
    onboard_postgres::PgEventFeed::new(pool.clone()).read("test", 100).await.unwrap().events
}

/// A sign-in of `phone` at `now` (as [`sign_in`]) carrying the events of the sign-up it would
/// be, personal workspace included.
pub fn signing_up(phone: &PhoneNumber, now: DateTime<Utc>) -> SignInRequest {
    let mut request = sign_in(phone, now);
    request.created_events = onboard_members::events::signed_up(
        request.new_member_id,
        None,
        request.personal_workspace.as_ref(),
        now,
    );
    request
}

/// The number of rows in `table`.
pub async fn rows(pool: &PgPool, table: &str) -> i64 {
    let mut conn = pool.get().await.unwrap();
    let count: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result(&mut conn)
        .await
        .unwrap();
    count.n
}
