//! The referral use cases.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use onboard_kernel::events::Event;
use onboard_kernel::{Clock, MemberId, ReferralCode};
use onboard_members::{Member, MemberCard};
use uuid::Uuid;

use crate::events::{RedeemEvents, ReferralEvent};
use crate::ports::{RedeemRefusal, ReferralRepository};

/// Who referred a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub code: ReferralCode,
    pub member_id: MemberId,
}

/// A member's referral standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralSummary {
    pub code: ReferralCode,
    pub referred_by: Option<Referrer>,
    pub invitees_count: u64,
}

/// A position in the invitee list: when the invitee redeemed, and their id (the tie-break).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub referred_at: DateTime<Utc>,
    pub id: MemberId,
}

impl Cursor {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        let micros = self.referred_at.timestamp_micros();
        URL_SAFE_NO_PAD.encode(format!("{micros}:{}", self.id))
    }

    /// Reads a cursor a client sent back; `None` when it is not one of ours.
    pub fn decode(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (micros, id) = text.split_once(':')?;
        Some(Self {
            referred_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: MemberId::from_uuid(Uuid::parse_str(id).ok()?),
        })
    }
}

/// One page of invitees, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteePage {
    pub items: Vec<MemberCard>,
    /// Present when more may follow.
    pub next_cursor: Option<String>,
}

/// [`ReferralsService::redeem`].
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("no member has this referral code")]
    NotFound,
    #[error("you cannot redeem your own code")]
    OwnCode,
    #[error("you have already redeemed a referral code")]
    AlreadyRedeemed,
    #[error("this code's owner was referred, directly or not, by you")]
    Cycle,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<RedeemRefusal> for RedeemError {
    fn from(r: RedeemRefusal) -> Self {
        match r {
            RedeemRefusal::NotFound => Self::NotFound,
            RedeemRefusal::OwnCode => Self::OwnCode,
            RedeemRefusal::AlreadyRedeemed => Self::AlreadyRedeemed,
            RedeemRefusal::Cycle => Self::Cycle,
            RedeemRefusal::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

/// Redeeming codes and listing invitees.
#[derive(Clone)]
pub struct ReferralsService {
    repo: Arc<dyn ReferralRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ReferralsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReferralsService")
    }
}

impl ReferralsService {
    /// The largest page [`Self::invitees`] answers.
    pub const MAX_PAGE: u32 = 100;

    pub fn new(repo: Arc<dyn ReferralRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { repo, clock }
    }

    /// Redeems `raw_code` for `member`: case-insensitive, surrounding spaces ignored. A text that
    /// cannot be a code is a code nobody has.
    #[tracing::instrument(level = "debug", name = "referrals.redeem", skip_all)]
    pub async fn redeem(&self, member: MemberId, raw_code: &str) -> Result<Member, RedeemError> {
        let code = ReferralCode::parse(raw_code).map_err(|_| RedeemError::NotFound)?;
        let now = self.clock.now();
        let events = RedeemEvents::new(move |referrer_id| {
            vec![Event::record(&ReferralEvent::Redeemed { member_id: member, referrer_id }, now)]
        });
        Ok(self.repo.redeem(member, &code, now, &events).await?)
    }

    /// Whether `member` may redeem `raw_code` now, changing nothing (see
    /// [`ReferralRepository::check_redeem`]).
    #[tracing::instrument(level = "debug", name = "referrals.check_redeem", skip_all)]
    pub async fn check_redeem(&self, member: MemberId, raw_code: &str) -> Result<(), RedeemError> {
        let code = ReferralCode::parse(raw_code).map_err(|_| RedeemError::NotFound)?;
        Ok(self.repo.check_redeem(member, &code).await?)
    }

    /// The member's code, referrer and invitee count.
    #[tracing::instrument(level = "debug", name = "referrals.summary", skip_all)]
    pub async fn summary(&self, member: MemberId) -> anyhow::Result<Option<ReferralSummary>> {
        self.repo.summary(member).await
    }

    /// A page of the members `member` referred, newest first; `limit` is clamped to 1..=100.
    #[tracing::instrument(level = "debug", name = "referrals.invitees", skip_all)]
    pub async fn invitees(
        &self,
        member: MemberId,
        after: Option<Cursor>,
        limit: u32,
    ) -> anyhow::Result<InviteePage> {
        let limit = limit.clamp(1, Self::MAX_PAGE);
        // One more than asked tells whether another page follows, without a count query.
        let mut rows = self.repo.invitees(member, after, limit + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = more.then(|| rows.last().map(|(_, c)| c.encode())).flatten();
        Ok(InviteePage { items: rows.into_iter().map(|(card, _)| card).collect(), next_cursor })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;
    use mockall::predicate::eq;
    use onboard_kernel::SystemClock;

    use super::*;
    use crate::ports::MockReferralRepository;

    fn service(repo: MockReferralRepository) -> ReferralsService {
        ReferralsService::new(Arc::new(repo), Arc::new(SystemClock))
    }

    fn card(n: u8) -> (MemberCard, Cursor) {
        let id = MemberId::new();
        let card = MemberCard {
            id,
            first_name: Some(format!("m{n}")),
            last_name: None,
            phone_masked: None,
        };
        let at = Utc.timestamp_opt(1_700_000_000 - i64::from(n), 0).single().unwrap();
        (card, Cursor { referred_at: at, id })
    }

    #[tokio::test]
    async fn a_code_is_read_case_insensitively_without_surrounding_spaces() {
        let mut repo = MockReferralRepository::new();
        repo.expect_redeem()
            .withf(|_, code, _, _| code.as_str() == "K49FJ5")
            .times(1)
            .returning(|_, _, _, _| Err(RedeemRefusal::AlreadyRedeemed));
        let err = service(repo).redeem(MemberId::new(), "  k49fj5 ").await.unwrap_err();
        assert!(matches!(err, RedeemError::AlreadyRedeemed));
    }

    #[tokio::test]
    async fn a_redeem_hands_storage_its_redeemed_event_for_the_referrer_it_finds() {
        let redeemer = MemberId::new();
        let referrer = MemberId::new();
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap();
        let mut clock = onboard_kernel::MockClock::new();
        clock.expect_now().return_const(at);
        let mut repo = MockReferralRepository::new();
        repo.expect_redeem()
            .withf(move |m, _, now, events| {
                let decided = events.for_referrer(referrer);
                *m == redeemer
                    && *now == at
                    && decided.len() == 1
                    && decided[0].occurred_at == at
                    && decided[0].decode::<ReferralEvent>()
                        == Some(ReferralEvent::Redeemed {
                            member_id: redeemer,
                            referrer_id: referrer,
                        })
            })
            .times(1)
            .returning(|_, _, _, _| Err(RedeemRefusal::Cycle));
        let service = ReferralsService::new(Arc::new(repo), Arc::new(clock));
        let err = service.redeem(redeemer, "K49FJ5").await.unwrap_err();
        assert!(matches!(err, RedeemError::Cycle));
    }

    #[tokio::test]
    async fn text_that_cannot_be_a_code_is_not_found_without_asking_storage() {
        for raw in ["", "K49F", "K49FJ5X", "K4-FJ5"] {
            let mut repo = MockReferralRepository::new();
            repo.expect_redeem().never();
            let err = service(repo).redeem(MemberId::new(), raw).await.unwrap_err();
            assert!(matches!(err, RedeemError::NotFound), "{raw}");
        }
    }

    #[tokio::test]
    async fn every_refusal_of_storage_keeps_its_meaning() {
        for (refusal, check) in [
            (
                RedeemRefusal::NotFound,
                (|e: &RedeemError| matches!(e, RedeemError::NotFound)) as fn(&RedeemError) -> bool,
            ),
            (RedeemRefusal::OwnCode, |e| matches!(e, RedeemError::OwnCode)),
            (RedeemRefusal::AlreadyRedeemed, |e| matches!(e, RedeemError::AlreadyRedeemed)),
            (RedeemRefusal::Cycle, |e| matches!(e, RedeemError::Cycle)),
        ] {
            let mut repo = MockReferralRepository::new();
            let refusal = std::sync::Mutex::new(Some(refusal));
            repo.expect_redeem()
                .returning(move |_, _, _, _| Err(refusal.lock().unwrap().take().unwrap()));
            let err = service(repo).redeem(MemberId::new(), "ABC123").await.unwrap_err();
            assert!(check(&err), "{err:?}");
        }
    }

    #[tokio::test]
    async fn a_full_page_points_at_the_next_one_and_the_last_page_does_not() {
        let member = MemberId::new();
        let rows: Vec<_> = (0..3).map(card).collect();
        let expected_cursor = rows[1].1.encode();
        let mut repo = MockReferralRepository::new();
        let first = rows.clone();
        repo.expect_invitees()
            .with(eq(member), eq(None), eq(3))
            .times(1)
            .returning(move |_, _, _| Ok(first.clone()));
        let page = service(repo).invitees(member, None, 2).await.unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next_cursor, Some(expected_cursor));

        let mut repo = MockReferralRepository::new();
        let last = rows[2..].to_vec();
        repo.expect_invitees().returning(move |_, _, _| Ok(last.clone()));
        let page = service(repo).invitees(member, Some(rows[1].1), 2).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.next_cursor, None);
    }

    #[tokio::test]
    async fn page_sizes_are_clamped_to_one_to_a_hundred() {
        let mut repo = MockReferralRepository::new();
        repo.expect_invitees()
            .with(mockall::predicate::always(), eq(None), eq(101))
            .times(1)
            .returning(|_, _, _| Ok(vec![]));
        repo.expect_invitees()
            .with(mockall::predicate::always(), eq(None), eq(2))
            .times(1)
            .returning(|_, _, _| Ok(vec![]));
        let s = service(repo);
        s.invitees(MemberId::new(), None, 5000).await.unwrap();
        s.invitees(MemberId::new(), None, 0).await.unwrap();
    }

    #[tokio::test]
    async fn a_check_reads_the_code_like_a_redeem_and_passes_refusals_through() {
        let mut repo = MockReferralRepository::new();
        repo.expect_check_redeem()
            .withf(|_, code| code.as_str() == "K49FJ5")
            .times(1)
            .returning(|_, _| Err(RedeemRefusal::Cycle));
        repo.expect_redeem().never();
        let s = service(repo);
        assert!(matches!(
            s.check_redeem(MemberId::new(), " k49fj5").await,
            Err(RedeemError::Cycle)
        ));
        assert!(matches!(
            s.check_redeem(MemberId::new(), "nope").await,
            Err(RedeemError::NotFound)
        ));
    }

    #[test]
    fn a_cursor_round_trips_and_garbage_is_not_a_cursor() {
        let (_, c) = card(1);
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("not a cursor"), None);
        assert_eq!(Cursor::decode(""), None);
    }
}
