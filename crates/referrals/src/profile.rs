//! Changing one's profile together with redeeming a referral code.

use onboard_members::{Member, MembersService, Principal, ProfilePatch, UpdateProfileError};

use crate::service::{RedeemError, ReferralsService};

/// [`ReferralsService::update_profile`].
#[derive(Debug, thiserror::Error)]
pub enum ProfileUpdateError {
    /// Another member has the e-mail; nothing changed.
    #[error("the e-mail belongs to another member")]
    EmailTaken,
    /// The caller no longer exists.
    #[error("member not found")]
    NotFound,
    /// The code cannot be redeemed (never [`RedeemError::Unexpected`]); the profile was not
    /// changed.
    #[error(transparent)]
    Redeem(RedeemError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<RedeemError> for ProfileUpdateError {
    fn from(e: RedeemError) -> Self {
        match e {
            RedeemError::Unexpected(e) => Self::Unexpected(e),
            refused => Self::Redeem(refused),
        }
    }
}

impl From<UpdateProfileError> for ProfileUpdateError {
    fn from(e: UpdateProfileError) -> Self {
        match e {
            UpdateProfileError::EmailTaken => Self::EmailTaken,
            UpdateProfileError::NotFound => Self::NotFound,
            UpdateProfileError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl ReferralsService {
    /// Changes the caller's profile by `patch` (through `members`) and, with a `code`, redeems
    /// it; answers the member after.
    ///
    /// The redeem is judged before the profile changes, so a refused code leaves the profile
    /// as it was (only a concurrent change between that check and the redeem could still
    /// refuse it after the profile was saved). With a code and an empty patch the profile is
    /// not written at all.
    ///
    /// # Errors
    /// [`ProfileUpdateError::Redeem`] when the code cannot be redeemed,
    /// [`ProfileUpdateError::EmailTaken`], [`ProfileUpdateError::NotFound`].
    #[tracing::instrument(level = "debug", name = "referrals.update_profile", skip_all)]
    pub async fn update_profile(
        &self,
        members: &MembersService,
        caller: &Principal,
        patch: &ProfilePatch,
        code: Option<&str>,
    ) -> Result<Member, ProfileUpdateError> {
        let Some(code) = code else { return Ok(members.update_me(caller, patch).await?) };
        self.check_redeem(caller.member_id, code).await?;
        if *patch != ProfilePatch::default() {
            members.update_me(caller, patch).await?;
        }
        Ok(self.redeem(caller.member_id, code).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, TimeZone, Utc};
    use mockall::predicate::{always, eq};
    use onboard_kernel::{MemberId, MockClock, ReferralCode, SessionId};
    use onboard_members::ports::{
        MockAccessTokens, MockMemberRepository, MockOtpStore, MockRateLimiter, MockRevocationList,
        MockSessionRepository, MockSmsSender,
    };
    use onboard_members::{MembersConfig, MembersPorts, PersonName, Secrets};

    use super::*;
    use crate::ports::{MockReferralRepository, RedeemRefusal};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).single().expect("a valid instant")
    }

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        Arc::new(clock)
    }

    fn caller() -> Principal {
        Principal {
            member_id: MemberId::from_uuid(uuid::Uuid::nil()),
            session_id: SessionId::new(),
            current_group: None,
        }
    }

    fn member(first_name: &str) -> Member {
        Member {
            id: caller().member_id,
            phone: None,
            first_name: Some(first_name.to_owned()),
            last_name: None,
            email: None,
            referral_code: ReferralCode::parse("K49FJ5").expect("a code"),
            referred_by: None,
            current_group: None,
            created_at: now(),
        }
    }

    fn members(repo: MockMemberRepository) -> MembersService {
        MembersService::new(
            MembersPorts {
                otp: Arc::new(MockOtpStore::new()),
                limiter: Arc::new(MockRateLimiter::new()),
                members: Arc::new(repo),
                sessions: Arc::new(MockSessionRepository::new()),
                revocations: Arc::new(MockRevocationList::new()),
                tokens: Arc::new(MockAccessTokens::new()),
                sms: Arc::new(MockSmsSender::new()),
                clock: clock(),
            },
            MembersConfig::default(),
            Secrets::derive(b"test"),
        )
    }

    fn rename() -> ProfilePatch {
        ProfilePatch {
            first_name: Some(PersonName::parse("Ada").expect("a name")),
            ..ProfilePatch::default()
        }
    }

    #[tokio::test]
    async fn a_refused_code_leaves_the_profile_unchanged() {
        let mut referrals = MockReferralRepository::new();
        referrals.expect_check_redeem().returning(|_, _| Err(RedeemRefusal::Cycle));
        referrals.expect_redeem().never();
        let mut profiles = MockMemberRepository::new();
        profiles.expect_update_profile().never();
        let service = ReferralsService::new(Arc::new(referrals), clock());
        let e = service
            .update_profile(&members(profiles), &caller(), &rename(), Some("ab12cd"))
            .await
            .expect_err("refused");
        assert!(matches!(e, ProfileUpdateError::Redeem(RedeemError::Cycle)));
    }

    #[tokio::test]
    async fn the_profile_is_saved_before_the_code_is_redeemed_and_the_redeemed_member_answers() {
        let mut seq = mockall::Sequence::new();
        let mut referrals = MockReferralRepository::new();
        let mut profiles = MockMemberRepository::new();
        referrals.expect_check_redeem().times(1).in_sequence(&mut seq).returning(|_, _| Ok(()));
        profiles
            .expect_update_profile()
            .with(eq(caller().member_id), eq(rename()), always())
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(member("Ada")));
        referrals
            .expect_redeem()
            .with(eq(caller().member_id), always(), always(), always())
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _, _| {
                let mut m = member("Ada");
                m.referred_by = Some(ReferralCode::parse("AB12CD").expect("a code"));
                Ok(m)
            });
        let service = ReferralsService::new(Arc::new(referrals), clock());
        let after = service
            .update_profile(&members(profiles), &caller(), &rename(), Some("ab12cd"))
            .await
            .expect("updated and redeemed");
        assert_eq!(after.first_name.as_deref(), Some("Ada"));
        assert!(after.referred_by.is_some());
    }

    #[tokio::test]
    async fn a_code_alone_writes_no_profile() {
        let mut referrals = MockReferralRepository::new();
        referrals.expect_check_redeem().returning(|_, _| Ok(()));
        referrals.expect_redeem().times(1).returning(|_, _, _, _| Ok(member("Grace")));
        let mut profiles = MockMemberRepository::new();
        profiles.expect_update_profile().never();
        let service = ReferralsService::new(Arc::new(referrals), clock());
        let after = service
            .update_profile(&members(profiles), &caller(), &ProfilePatch::default(), Some("ab12cd"))
            .await
            .expect("redeemed");
        assert_eq!(after.first_name.as_deref(), Some("Grace"));
    }

    #[tokio::test]
    async fn without_a_code_only_the_profile_changes() {
        let mut referrals = MockReferralRepository::new();
        referrals.expect_check_redeem().never();
        referrals.expect_redeem().never();
        let mut profiles = MockMemberRepository::new();
        profiles.expect_update_profile().times(1).returning(|_, _, _| Ok(member("Ada")));
        let service = ReferralsService::new(Arc::new(referrals), clock());
        let after = service
            .update_profile(&members(profiles), &caller(), &rename(), None)
            .await
            .expect("updated");
        assert_eq!(after.first_name.as_deref(), Some("Ada"));
    }

    #[tokio::test]
    async fn a_taken_email_is_its_own_refusal() {
        let mut referrals = MockReferralRepository::new();
        referrals.expect_check_redeem().returning(|_, _| Ok(()));
        referrals.expect_redeem().never();
        let mut profiles = MockMemberRepository::new();
        profiles.expect_update_profile().returning(|_, _, _| Err(UpdateProfileError::EmailTaken));
        let service = ReferralsService::new(Arc::new(referrals), clock());
        let e = service
            .update_profile(&members(profiles), &caller(), &rename(), Some("ab12cd"))
            .await
            .expect_err("taken");
        assert!(matches!(e, ProfileUpdateError::EmailTaken));
    }
}
