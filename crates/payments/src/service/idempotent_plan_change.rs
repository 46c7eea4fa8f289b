//! Changing a group's plan on a member's request, at most once per idempotency key.

use onboard_groups::Slug;
use onboard_kernel::MemberId;
use serde::{Deserialize, Serialize};

use super::{PaymentsService, plan_access};
use crate::error::ChangePlanError;
use crate::idempotency::{Answer, Fingerprint, IdempotencyKey};
use crate::model::Billing;
use crate::plan_change::{PlanRefusal, PlanRequest};

/// What a plan change came to, as kept for a repeat of its idempotency key: every outcome
/// here is final (nothing is left to try again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanChangeOutcome {
    /// The plan changed (or already was as asked): the account after.
    Changed(Box<Billing>),
    /// Refused as [`PlanRefusal`] says; nothing changed.
    Refused(PlanRefusal),
    /// The charge made at once was declined (the gateway's reason); nothing changed.
    PaymentFailed(String),
    /// The account changed while this change was carried out; nothing changed.
    Busy,
}

impl PlanChangeOutcome {
    /// The outcome to keep of a plan change's result, or the error after which the change may
    /// run again (the key is then released): the gateway could not be reached before anything
    /// was charged, or an unexpected failure.
    ///
    /// # Errors
    /// Every [`ChangePlanError`] that is not a final outcome.
    pub fn settle(result: Result<Billing, ChangePlanError>) -> Result<Self, ChangePlanError> {
        match result {
            Ok(billing) => Ok(Self::Changed(Box::new(billing))),
            Err(ChangePlanError::Refused(r)) => Ok(Self::Refused(r)),
            Err(ChangePlanError::PaymentFailed(reason)) => Ok(Self::PaymentFailed(reason)),
            Err(ChangePlanError::Busy) => Ok(Self::Busy),
            Err(e) => Err(e),
        }
    }

    /// The account after, or the refusal as the change's error.
    ///
    /// # Errors
    /// [`ChangePlanError::Refused`], [`ChangePlanError::PaymentFailed`] or
    /// [`ChangePlanError::Busy`].
    pub fn into_result(self) -> Result<Billing, ChangePlanError> {
        match self {
            Self::Changed(billing) => Ok(*billing),
            Self::Refused(r) => Err(ChangePlanError::Refused(r)),
            Self::PaymentFailed(reason) => Err(ChangePlanError::PaymentFailed(reason)),
            Self::Busy => Err(ChangePlanError::Busy),
        }
    }
}

/// The fingerprint of a plan change request as understood (so formatting does not matter).
fn fingerprint(request: &PlanRequest) -> Fingerprint {
    Fingerprint::of(
        format!("{:?}|{:?}|{:?}", request.plan, request.interval, request.addons).as_bytes(),
    )
}

impl PaymentsService {
    /// Changes the plan of the group `slug` for `caller`, who needs `billing.manage` there, to
    /// what [`crate::plan_change::plan_change`] judges (the preview's answer), charging or
    /// scheduling at the gateway as it says. Under an idempotency `key` the change runs once:
    /// a repeat with the same request answers the first [`PlanChangeOutcome`] for 24 hours.
    ///
    /// # Errors
    /// [`ChangePlanError::NotFound`] and [`ChangePlanError::Forbidden`] (nothing claimed);
    /// [`ChangePlanError::Key`] when the key was used with another request or its first request
    /// still runs; [`ChangePlanError::GatewayUnavailable`] and unexpected failures (the key is
    /// released).
    #[tracing::instrument(level = "debug", name = "payments.change_plan_as", skip_all)]
    pub async fn change_plan_as(
        &self,
        caller: MemberId,
        slug: &Slug,
        request: &PlanRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Answer<PlanChangeOutcome>, ChangePlanError> {
        let group = self.manager_of(slug, caller).await.map_err(plan_access)?;
        self.idempotency_keys()
            .run(group.id, key, &fingerprint(request), || async {
                PlanChangeOutcome::settle(self.change_plan(&group, request).await)
            })
            .await
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
    use crate::model::{Catalogue, Interval, PlanCode};
    use crate::ports::{
        Claim, MockBillingRepository, MockCardRepository, MockIdempotencyRepository,
        MockUsageRepository,
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

    fn pro() -> PlanRequest {
        PlanRequest {
            plan: PlanCode::from_trusted("pro"),
            interval: Some(Interval::Month),
            addons: vec![],
        }
    }

    fn key() -> IdempotencyKey {
        IdempotencyKey::parse("plan-1").expect("a key")
    }

    struct Mocks {
        billing: MockBillingRepository,
        cards: MockCardRepository,
        keys: MockIdempotencyRepository,
    }

    impl Mocks {
        fn new() -> Self {
            let mut billing = MockBillingRepository::new();
            billing.expect_catalogue().returning(|| Ok(Catalogue::seed()));
            Self {
                billing,
                cards: MockCardRepository::new(),
                keys: MockIdempotencyRepository::new(),
            }
        }

        fn service(self, role: RoleName) -> PaymentsService {
            let mut groups = MockGroupRepository::new();
            groups.expect_find_for_member().returning(move |_, _| {
                Ok(Some((
                    group(),
                    Some(Membership {
                        role: role.clone(),
                        status: MembershipStatus::Active,
                        role_permissions: BTreeSet::new(),
                    }),
                )))
            });
            let mut clock = MockClock::new();
            clock.expect_now().returning(now);
            let clock: Arc<dyn Clock> = Arc::new(clock);
            let groups =
                GroupsService::new(Arc::new(groups), GroupsConfig::default(), clock.clone());
            let mut gateway = MockPaymentGateway::new();
            gateway.expect_charge().never();
            let ports = PaymentsPorts {
                billing: Arc::new(self.billing),
                cards: Arc::new(self.cards),
                usage: Arc::new(MockUsageRepository::new()),
                idempotency: Arc::new(self.keys),
                gateway: Arc::new(gateway),
            };
            PaymentsService::new(ports, groups, clock, PaymentsConfig::default())
        }
    }

    #[tokio::test]
    async fn changing_the_plan_without_billing_manage_is_forbidden_and_claims_no_key() {
        let mut m = Mocks::new();
        m.keys.expect_claim().never();
        let e = m
            .service(RoleName::MEMBER)
            .change_plan_as(MemberId::new(), &group().slug, &pro(), Some(&key()))
            .await
            .expect_err("forbidden");
        assert!(matches!(e, ChangePlanError::Forbidden));
    }

    #[tokio::test]
    async fn a_refused_plan_change_is_kept_as_its_outcome_for_the_key() {
        let mut m = Mocks::new();
        m.billing.expect_billing().returning(|_| Ok(None));
        m.cards.expect_cards().returning(|_| Ok(vec![]));
        m.keys.expect_claim().times(1).returning(|_, _, _, _| Ok(Claim::Claimed));
        m.keys
            .expect_complete()
            .with(eq(group().id), eq("plan-1"), eq(serde_json::json!({"refused": "no_main_card"})))
            .times(1)
            .returning(|_, _, _| Ok(()));
        m.keys.expect_release().never();
        let answer = m
            .service(RoleName::OWNER)
            .change_plan_as(MemberId::new(), &group().slug, &pro(), Some(&key()))
            .await
            .expect("an outcome");
        assert_eq!(answer, Answer::Fresh(PlanChangeOutcome::Refused(PlanRefusal::NoMainCard)));
    }

    #[tokio::test]
    async fn a_repeated_plan_change_answers_the_first_outcome_and_changes_nothing() {
        let mut m = Mocks::new();
        m.billing.expect_billing().never();
        m.billing.expect_commit().never();
        let first = fingerprint(&pro()).as_str().to_owned();
        m.keys.expect_claim().with(always(), eq("plan-1"), eq(first.clone()), always()).returning(
            move |_, _, _, _| {
                Ok(Claim::Existing {
                    request_hash: first.clone(),
                    outcome: Some(serde_json::json!({"payment_failed": "card declined"})),
                })
            },
        );
        let answer = m
            .service(RoleName::OWNER)
            .change_plan_as(MemberId::new(), &group().slug, &pro(), Some(&key()))
            .await
            .expect("the first outcome");
        assert_eq!(
            answer,
            Answer::Replayed(PlanChangeOutcome::PaymentFailed("card declined".into()))
        );
    }

    #[test]
    fn an_unreachable_gateway_or_a_fault_is_not_a_final_plan_change_outcome() {
        assert!(PlanChangeOutcome::settle(Err(ChangePlanError::GatewayUnavailable)).is_err());
        assert!(
            PlanChangeOutcome::settle(Err(ChangePlanError::Unexpected(anyhow::anyhow!("db"))))
                .is_err()
        );
        assert_eq!(
            PlanChangeOutcome::settle(Err(ChangePlanError::Busy)).expect("final"),
            PlanChangeOutcome::Busy
        );
    }

    #[test]
    fn an_outcome_reads_back_as_the_same_domain_value() {
        let billing = crate::model::Billing::free(group().id, 10);
        for outcome in [
            PlanChangeOutcome::Changed(Box::new(billing)),
            PlanChangeOutcome::Refused(PlanRefusal::UnknownAddon(PlanCode::from_trusted("x"))),
            PlanChangeOutcome::PaymentFailed("declined".into()),
            PlanChangeOutcome::Busy,
        ] {
            let stored = serde_json::to_value(&outcome).expect("stored");
            assert_eq!(serde_json::from_value::<PlanChangeOutcome>(stored).expect("read"), outcome);
        }
    }
}
