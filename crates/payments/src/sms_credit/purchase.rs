//! Buying SMS credit and setting the auto top-up on a member's request; a purchase runs at
//! most once per idempotency key.

use onboard_groups::Slug;
use onboard_kernel::MemberId;
use serde::{Deserialize, Serialize};

use super::{AutoTopup, Purchased, SmsCreditError, SmsCreditService, Wallet};
use crate::idempotency::{Answer, Fingerprint, IdempotencyKey};

/// The refusal of an amount below [`crate::sms_credit::MIN_PURCHASE`], as
/// [`SmsCreditService::purchase`] words it.
const BELOW_MINIMUM: &str = "amount: at least 100 KRW";

/// What a purchase came to, as kept for a repeat of its idempotency key: every outcome here
/// is final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseOutcome {
    /// Charged and credited.
    Bought(Purchased),
    /// The amount is below [`crate::sms_credit::MIN_PURCHASE`]; nothing was charged.
    BelowMinimum,
    /// The group has no main card; nothing was charged.
    NoMainCard,
    /// Declined (the gateway's reason); nothing was added.
    PaymentFailed(String),
    /// The gateway could not be reached: whether the card was charged is unknown. Final all
    /// the same: a repeat must never charge again, and reconciliation credits the purchase if
    /// it was charged.
    GatewayUnavailable,
}

impl PurchaseOutcome {
    /// The outcome to keep of a purchase's result, or the error after which the purchase may
    /// run again (the key is then released): an unexpected failure.
    ///
    /// # Errors
    /// Every [`SmsCreditError`] that is not a final outcome.
    pub fn settle(result: Result<Purchased, SmsCreditError>) -> Result<Self, SmsCreditError> {
        match result {
            Ok(done) => Ok(Self::Bought(done)),
            // The only amount a purchase refuses as invalid is one below the minimum.
            Err(SmsCreditError::Invalid(_)) => Ok(Self::BelowMinimum),
            Err(SmsCreditError::NoMainCard) => Ok(Self::NoMainCard),
            Err(SmsCreditError::PaymentFailed(reason)) => Ok(Self::PaymentFailed(reason)),
            Err(SmsCreditError::GatewayUnavailable) => Ok(Self::GatewayUnavailable),
            Err(e) => Err(e),
        }
    }

    /// What was bought, or the refusal as the purchase's error.
    ///
    /// # Errors
    /// [`SmsCreditError::Invalid`], [`SmsCreditError::NoMainCard`],
    /// [`SmsCreditError::PaymentFailed`] or [`SmsCreditError::GatewayUnavailable`].
    pub fn into_result(self) -> Result<Purchased, SmsCreditError> {
        match self {
            Self::Bought(done) => Ok(done),
            Self::BelowMinimum => Err(SmsCreditError::Invalid(BELOW_MINIMUM)),
            Self::NoMainCard => Err(SmsCreditError::NoMainCard),
            Self::PaymentFailed(reason) => Err(SmsCreditError::PaymentFailed(reason)),
            Self::GatewayUnavailable => Err(SmsCreditError::GatewayUnavailable),
        }
    }
}

impl SmsCreditService {
    /// Buys `amount` KRW of credit (at least [`crate::sms_credit::MIN_PURCHASE`]) for the group
    /// `slug` on `caller`'s request (who needs `billing.manage` there), charging the main card
    /// at once. The purchase is recorded before the card is charged, so one the gateway could
    /// not confirm is settled later by [`SmsCreditService::reconcile`]. Under an idempotency
    /// `key` the purchase runs once: a repeat with the same amount answers the first
    /// [`PurchaseOutcome`] for 24 hours and charges nothing.
    ///
    /// # Errors
    /// [`SmsCreditError::NotFound`] and [`SmsCreditError::Forbidden`] (nothing claimed);
    /// [`SmsCreditError::Key`] when the key was used with another amount or its first request
    /// still runs; unexpected failures (the key is released).
    #[tracing::instrument(level = "debug", name = "payments.purchase_as", skip_all)]
    pub async fn purchase_as(
        &self,
        caller: MemberId,
        slug: &Slug,
        amount: i64,
        key: Option<&IdempotencyKey>,
    ) -> Result<Answer<PurchaseOutcome>, SmsCreditError> {
        let group = self.manager_of(slug, caller).await?;
        let fingerprint = Fingerprint::of(format!("sms-credit|{amount}").as_bytes());
        self.idempotency_keys()
            .run(group, key, &fingerprint, || async {
                PurchaseOutcome::settle(self.purchase(group, amount).await)
            })
            .await
    }

    /// Turns the auto top-up of the group `slug` on (`Some`) or off (`None`) on `caller`'s
    /// request (who needs `billing.manage` there); answers the wallet after.
    ///
    /// # Errors
    /// [`SmsCreditError::NotFound`], [`SmsCreditError::Forbidden`];
    /// [`SmsCreditError::Invalid`] for an amount below [`crate::sms_credit::MIN_PURCHASE`] or a
    /// negative threshold.
    #[tracing::instrument(level = "debug", name = "payments.set_auto_topup_as", skip_all)]
    pub async fn set_auto_topup_as(
        &self,
        caller: MemberId,
        slug: &Slug,
        auto_topup: Option<AutoTopup>,
    ) -> Result<Wallet, SmsCreditError> {
        let group = self.manager_of(slug, caller).await?;
        self.set_auto_topup(group, auto_topup).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use chrono::{DateTime, Duration, TimeZone, Utc};
    use mockall::predicate::{always, eq};
    use onboard_groups::ports::MockGroupRepository;
    use onboard_groups::{
        Group, GroupName, GroupsConfig, GroupsService, Membership, MembershipStatus, RoleName,
    };
    use onboard_kernel::{Clock, GroupId, MockClock};

    use super::*;
    use crate::gateway::{GatewayError, MockPaymentGateway};
    use crate::model::{Card, CardId, CustomerUid};
    use crate::ports::{Claim, MockCardRepository, MockIdempotencyRepository};
    use crate::sms_credit::SmsPrices;
    use crate::sms_credit::{MockSmsCreditRepository, SmsCreditPorts};

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

    fn card() -> Card {
        Card {
            id: CardId::new(),
            group: group().id,
            customer_uid: CustomerUid::generate(),
            card_name: "Test Card".into(),
            number_masked: "424242******4242".into(),
            main: true,
            created_at: now(),
        }
    }

    fn key() -> IdempotencyKey {
        IdempotencyKey::parse("buy-1").expect("a key")
    }

    struct Mocks {
        credit: MockSmsCreditRepository,
        cards: MockCardRepository,
        gateway: MockPaymentGateway,
        keys: MockIdempotencyRepository,
    }

    impl Mocks {
        fn new() -> Self {
            Self {
                credit: MockSmsCreditRepository::new(),
                cards: MockCardRepository::new(),
                gateway: MockPaymentGateway::new(),
                keys: MockIdempotencyRepository::new(),
            }
        }

        fn service(self, role: RoleName) -> SmsCreditService {
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
            let ports = SmsCreditPorts {
                credit: Arc::new(self.credit),
                cards: Arc::new(self.cards),
                gateway: Arc::new(self.gateway),
                idempotency: Arc::new(self.keys),
            };
            SmsCreditService::new(ports, groups, clock, SmsPrices::default(), Duration::minutes(10))
        }
    }

    #[tokio::test]
    async fn buying_credit_without_billing_manage_is_forbidden_and_claims_no_key() {
        let mut m = Mocks::new();
        m.keys.expect_claim().never();
        let e = m
            .service(RoleName::MEMBER)
            .purchase_as(MemberId::new(), &group().slug, 1_000, Some(&key()))
            .await
            .expect_err("forbidden");
        assert!(matches!(e, SmsCreditError::Forbidden));
    }

    #[tokio::test]
    async fn a_purchase_whose_outcome_is_unknown_is_kept_so_a_repeat_never_charges_again() {
        let mut m = Mocks::new();
        m.cards.expect_cards().returning(|_| Ok(vec![card()]));
        m.credit.expect_begin_purchase().times(1).returning(|_| Ok(true));
        m.gateway
            .expect_charge()
            .times(1)
            .returning(|_| Err(GatewayError::Unavailable("timeout".into())));
        m.keys.expect_claim().times(1).returning(|_, _, _, _| Ok(Claim::Claimed));
        m.keys
            .expect_complete()
            .with(eq(group().id), eq("buy-1"), eq(serde_json::json!("gateway_unavailable")))
            .times(1)
            .returning(|_, _, _| Ok(()));
        m.keys.expect_release().never();
        let answer = m
            .service(RoleName::OWNER)
            .purchase_as(MemberId::new(), &group().slug, 1_000, Some(&key()))
            .await
            .expect("an outcome");
        assert_eq!(answer, Answer::Fresh(PurchaseOutcome::GatewayUnavailable));
    }

    #[tokio::test]
    async fn a_repeated_purchase_answers_the_first_outcome_and_charges_nothing() {
        let mut m = Mocks::new();
        m.gateway.expect_charge().never();
        m.credit.expect_begin_purchase().never();
        let first = Fingerprint::of(b"sms-credit|1000").as_str().to_owned();
        m.keys.expect_claim().with(always(), eq("buy-1"), eq(first.clone()), always()).returning(
            move |_, _, _, _| {
                Ok(Claim::Existing {
                    request_hash: first.clone(),
                    outcome: Some(serde_json::json!({"payment_failed": "card declined"})),
                })
            },
        );
        let answer = m
            .service(RoleName::OWNER)
            .purchase_as(MemberId::new(), &group().slug, 1_000, Some(&key()))
            .await
            .expect("the first outcome");
        assert_eq!(
            answer,
            Answer::Replayed(PurchaseOutcome::PaymentFailed("card declined".into()))
        );
    }

    #[tokio::test]
    async fn an_unexpected_failure_releases_the_purchase_key() {
        let mut m = Mocks::new();
        m.cards.expect_cards().returning(|_| Err(anyhow::anyhow!("the database is down")));
        m.gateway.expect_charge().never();
        m.keys.expect_claim().returning(|_, _, _, _| Ok(Claim::Claimed));
        m.keys.expect_complete().never();
        m.keys.expect_release().with(eq(group().id), eq("buy-1")).times(1).returning(|_, _| Ok(()));
        let e = m
            .service(RoleName::OWNER)
            .purchase_as(MemberId::new(), &group().slug, 1_000, Some(&key()))
            .await
            .expect_err("unexpected");
        assert!(matches!(e, SmsCreditError::Unexpected(_)));
    }

    #[test]
    fn a_kept_refusal_answers_as_the_purchase_error_it_was() {
        let below = PurchaseOutcome::settle(Err(SmsCreditError::Invalid(BELOW_MINIMUM)));
        let below = below.expect("final").into_result().expect_err("refused");
        assert!(matches!(below, SmsCreditError::Invalid(m) if m == BELOW_MINIMUM));
        let no_card = PurchaseOutcome::settle(Err(SmsCreditError::NoMainCard)).expect("final");
        assert!(matches!(no_card.into_result(), Err(SmsCreditError::NoMainCard)));
    }

    #[tokio::test]
    async fn a_purchase_below_the_minimum_is_refused_in_the_words_its_kept_outcome_answers() {
        let service = Mocks::new().service(RoleName::OWNER);
        let e = service.purchase(group().id, 99).await.expect_err("below the minimum");
        assert!(matches!(e, SmsCreditError::Invalid(m) if m == BELOW_MINIMUM));
    }

    #[tokio::test]
    async fn setting_the_auto_top_up_needs_billing_manage() {
        let mut m = Mocks::new();
        m.credit.expect_set_auto_topup().never();
        let e = m
            .service(RoleName::MEMBER)
            .set_auto_topup_as(MemberId::new(), &group().slug, None)
            .await
            .expect_err("forbidden");
        assert!(matches!(e, SmsCreditError::Forbidden));
    }
}
