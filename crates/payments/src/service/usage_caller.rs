//! Counting usage on behalf of a member or a trusted service.

use onboard_groups::{AuthorizeError, Slug};
use onboard_kernel::MemberId;

use super::PaymentsService;
use crate::error::UsageError;
use crate::model::Usage;

/// Who asks to count usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageCaller {
    /// A trusted service (it presented one of the configured service tokens): it may count
    /// for any group.
    Service,
    /// A member: needs `billing.manage` in the group.
    Member(MemberId),
}

impl PaymentsService {
    /// Counts `delta` of `metric` for the group `slug` against its current plan's limit,
    /// atomically (over the limit nothing is counted), when `caller` may: a trusted service
    /// always, a member holding `billing.manage` in it.
    ///
    /// # Errors
    /// [`UsageError::NotFound`] (no such group, or the member is not in it),
    /// [`UsageError::Forbidden`], [`UsageError::UnknownMetric`], [`UsageError::LimitReached`].
    #[tracing::instrument(level = "debug", name = "payments.record_usage_as", skip_all)]
    pub async fn record_usage_as(
        &self,
        caller: UsageCaller,
        slug: &Slug,
        metric: &str,
        delta: i64,
    ) -> Result<Usage, UsageError> {
        let group = match caller {
            UsageCaller::Service => {
                self.groups().find_by_slug(slug).await?.ok_or(UsageError::NotFound)?
            }
            UsageCaller::Member(member) => {
                self.manager_of(slug, member).await.map_err(|e| match e {
                    AuthorizeError::NotFound => UsageError::NotFound,
                    AuthorizeError::Forbidden(_) => UsageError::Forbidden,
                    AuthorizeError::Unexpected(e) => UsageError::Unexpected(e),
                })?
            }
        };
        self.record_usage(&group, metric, delta).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use chrono::{DateTime, TimeZone, Utc};
    use mockall::predicate::{always, eq};
    use onboard_groups::ports::MockGroupRepository;
    use onboard_groups::{
        Group, GroupName, GroupsConfig, GroupsService, Membership, MembershipStatus, RoleName,
    };
    use onboard_kernel::{Clock, GroupId, MockClock};

    use super::*;
    use crate::config::PaymentsConfig;
    use crate::gateway::MockPaymentGateway;
    use crate::model::Catalogue;
    use crate::ports::{
        MockBillingRepository, MockCardRepository, MockIdempotencyRepository, MockUsageRepository,
    };
    use crate::service::PaymentsPorts;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).single().expect("a time")
    }

    fn group() -> Group {
        Group {
            id: GroupId::from_uuid(uuid::Uuid::nil()),
            slug: Slug::from_trusted("acme"),
            name: GroupName::parse("Acme").expect("a name"),
            approval_required: false,
            created_at: now(),
        }
    }

    /// The service, where the caller holds `role` in the group (`None`: not a member).
    fn service(role: Option<RoleName>, usage: MockUsageRepository) -> PaymentsService {
        let mut groups = MockGroupRepository::new();
        groups.expect_find_for_member().returning(move |_, _| {
            let membership = role.clone().map(|role| Membership {
                role,
                status: MembershipStatus::Active,
                role_permissions: BTreeSet::new(),
            });
            Ok(Some((group(), membership)))
        });
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let groups = GroupsService::new(Arc::new(groups), GroupsConfig::default(), clock.clone());
        let mut billing = MockBillingRepository::new();
        billing.expect_catalogue().returning(|| Ok(Catalogue::seed()));
        billing.expect_billing().returning(|_| Ok(None));
        let ports = PaymentsPorts {
            billing: Arc::new(billing),
            cards: Arc::new(MockCardRepository::new()),
            usage: Arc::new(usage),
            idempotency: Arc::new(MockIdempotencyRepository::new()),
            gateway: Arc::new(MockPaymentGateway::new()),
        };
        PaymentsService::new(ports, groups, clock, PaymentsConfig::default())
    }

    fn metric() -> String {
        Catalogue::seed().metrics().first().cloned().expect("a limited metric")
    }

    #[tokio::test]
    async fn a_trusted_service_counts_usage_for_a_group_it_is_no_member_of() {
        let mut usage = MockUsageRepository::new();
        usage
            .expect_increment()
            .with(eq(group().id), eq(metric()), always(), eq(3), always())
            .times(1)
            .returning(|_, _, _, _, _| Ok(3));
        let counted = service(None, usage)
            .record_usage_as(UsageCaller::Service, &group().slug, &metric(), 3)
            .await
            .expect("counted");
        assert_eq!(counted.used, 3);
    }

    #[tokio::test]
    async fn a_member_without_billing_manage_counts_nothing() {
        let mut usage = MockUsageRepository::new();
        usage.expect_increment().never();
        let e = service(Some(RoleName::MEMBER), usage)
            .record_usage_as(UsageCaller::Member(MemberId::new()), &group().slug, &metric(), 1)
            .await
            .expect_err("forbidden");
        assert!(matches!(e, UsageError::Forbidden));
    }

    #[tokio::test]
    async fn a_member_of_another_group_finds_no_group_to_count_for() {
        let mut usage = MockUsageRepository::new();
        usage.expect_increment().never();
        let e = service(None, usage)
            .record_usage_as(UsageCaller::Member(MemberId::new()), &group().slug, &metric(), 1)
            .await
            .expect_err("not found");
        assert!(matches!(e, UsageError::NotFound));
    }
}
