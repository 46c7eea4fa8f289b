//! The member directory with every phone and e-mail, for platform admins.

use onboard_members::{MemberFilter, MemberList, MembersService, Principal};

use crate::error::AdminError;
use crate::service::AdminService;

impl AdminService {
    /// A page of the live members matching `filter` (`None`: a filter that can match nothing),
    /// oldest first, with their count, read through `members` (see
    /// [`MembersService::list_members`]). Platform admins only: it shows every member's phone
    /// and e-mail.
    ///
    /// # Errors
    /// [`AdminError::Forbidden`] when `principal` is not a platform admin; nothing is read
    /// then.
    pub async fn list_members(
        &self,
        principal: &Principal,
        members: &MembersService,
        filter: Option<&MemberFilter>,
        offset: u64,
        limit: u32,
    ) -> Result<MemberList, AdminError> {
        self.require_admin(principal).await?;
        match filter {
            Some(filter) => Ok(members.list_members(filter, offset, limit).await?),
            None => Ok(MemberList::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};
    use onboard_kernel::{MemberId, MockClock, PhoneNumber, SessionId};
    use onboard_members::ports::{
        MockAccessTokens, MockMemberRepository, MockOtpStore, MockRateLimiter, MockRevocationList,
        MockSessionRepository, MockSmsSender,
    };
    use onboard_members::{MembersConfig, MembersPorts, Secrets};

    use super::*;
    use crate::model::Standing;
    use crate::ports::{MockAdminRepository, MockOtpStats};
    use crate::service::{AdminConfig, AdminPorts};

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| {
            Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).single().expect("valid time")
        });
        Arc::new(clock)
    }

    fn admin(is_admin: bool) -> AdminService {
        let mut repo = MockAdminRepository::new();
        repo.expect_standing().returning(move |_| {
            Ok(Some(Standing {
                phone: Some(PhoneNumber::from_trusted_e164("+79170000001")),
                is_admin,
                blocked: false,
            }))
        });
        AdminService::new(
            AdminPorts {
                repo: Arc::new(repo),
                otp_stats: Arc::new(MockOtpStats::new()),
                revocations: Arc::new(MockRevocationList::new()),
                clock: clock(),
            },
            AdminConfig::default(),
        )
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

    fn caller() -> Principal {
        Principal { member_id: MemberId::new(), session_id: SessionId::new(), current_group: None }
    }

    #[tokio::test]
    async fn only_a_platform_admin_lists_the_member_directory() {
        let mut repo = MockMemberRepository::new();
        repo.expect_list_members().never();
        let e = admin(false)
            .list_members(&caller(), &members(repo), Some(&MemberFilter::default()), 0, 10)
            .await
            .expect_err("forbidden");
        assert!(matches!(e, AdminError::Forbidden));
    }

    #[tokio::test]
    async fn an_admin_lists_the_members_matching_the_filter() {
        let mut repo = MockMemberRepository::new();
        repo.expect_list_members()
            .times(1)
            .returning(|_, _, _| Ok(MemberList { count: 7, items: vec![] }));
        let list = admin(true)
            .list_members(&caller(), &members(repo), Some(&MemberFilter::default()), 0, 10)
            .await
            .expect("listed");
        assert_eq!(list.count, 7);
    }

    #[tokio::test]
    async fn a_filter_that_can_match_nothing_lists_nothing_without_reading() {
        let mut repo = MockMemberRepository::new();
        repo.expect_list_members().never();
        let list =
            admin(true).list_members(&caller(), &members(repo), None, 0, 10).await.expect("listed");
        assert_eq!(list, MemberList::default());
    }
}
