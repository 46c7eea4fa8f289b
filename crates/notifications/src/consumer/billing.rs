//! The billing and SMS credit notifications: each event of the payments domain that a member
//! is told of ([`text_of`]) goes to the active members of its group holding `billing.manage`.

use chrono::SubsecRound as _;
use onboard_groups::Permission;
use onboard_kernel::events::Event;
use onboard_payments::events::BillingEvent;

use super::NotificationsConsumer;
use crate::model::{NewNotification, NotificationId};
use crate::texts::billing::{BillingText, text_of};

/// What a billing event tells the holders of `billing.manage`; `None` for events nobody is
/// told of.
pub(super) fn billing_notice(event: &BillingEvent) -> Option<BillingText> {
    text_of(event)
}

impl NotificationsConsumer {
    /// The notifications of a billing event (`record` is its stored form).
    pub(super) async fn billing_notifications(
        &self,
        record: &Event,
        event: &BillingEvent,
    ) -> anyhow::Result<Vec<NewNotification>> {
        let Some(text) = billing_notice(event) else {
            return Ok(Vec::new());
        };
        let group_id = event.group_id();
        let Some(group) = self.audience.group(group_id).await? else {
            return Ok(Vec::new());
        };
        let recipients = self.audience.holders(group_id, &Permission::BILLING_MANAGE).await?;
        let (body, link) = text.render(&group.name, &group.slug);
        let created_at = record.occurred_at.trunc_subsecs(6);
        Ok(recipients
            .into_iter()
            .map(|member| NewNotification {
                id: NotificationId::new(),
                member,
                kind: text.kind,
                title: text.title.clone(),
                body: body.clone(),
                group: Some(group.slug.clone()),
                link: link.clone(),
                created_at,
                expires_at: created_at + self.ttl,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
    use onboard_kernel::events::MockEventFeed;
    use onboard_kernel::{GroupId, MemberId};

    use super::*;
    use crate::consumer::{GroupLabel, MockAudience};
    use crate::model::NotificationType;
    use crate::ports::MockNotificationRepository;

    fn group_id() -> GroupId {
        GroupId::from_uuid(uuid::Uuid::from_u128(0xb111))
    }

    fn member(n: u128) -> MemberId {
        MemberId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn at() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("an instant")
    }

    /// A consumer whose group `Acme` has `holders` holding `billing.manage`.
    fn consumer(holders: Vec<MemberId>) -> NotificationsConsumer {
        let mut audience = MockAudience::new();
        audience.expect_group().returning(|_| {
            Ok(Some(GroupLabel { name: "Acme".to_owned(), slug: "acme".to_owned() }))
        });
        audience
            .expect_holders()
            .withf(|g, p| *g == group_id() && *p == Permission::BILLING_MANAGE)
            .returning(move |_, _| Ok(holders.clone()));
        audience.expect_member_name().never();
        NotificationsConsumer::new(
            Arc::new(MockEventFeed::new()),
            Arc::new(MockNotificationRepository::new()),
            Arc::new(audience),
            std::time::Duration::from_secs(14 * 24 * 3600),
        )
    }

    async fn made(holders: Vec<MemberId>, event: &BillingEvent) -> Vec<NewNotification> {
        consumer(holders).notifications_for(&Event::record(event, at())).await.expect("decided")
    }

    #[tokio::test]
    async fn a_trial_start_tells_every_holder_of_billing_manage() {
        let event = BillingEvent::TrialStarted {
            group_id: group_id(),
            plan: "Pro".into(),
            ends_on: NaiveDate::from_ymd_opt(2026, 12, 21).expect("a day"),
        };
        let made = made(vec![member(1), member(2)], &event).await;
        assert_eq!(made.iter().map(|n| n.member).collect::<Vec<_>>(), [member(1), member(2)]);
        for n in &made {
            assert_eq!(n.kind, NotificationType::BillingTrialStarted);
            assert_eq!(n.title, "Trial started");
            assert_eq!(n.body, "Acme is trying Pro until 2026-12-21");
            assert_eq!(n.link.as_deref(), Some("/groups/acme/billing"));
            assert_eq!(n.group.as_deref(), Some("acme"));
            assert_eq!(n.created_at, at());
            assert_eq!(n.expires_at - n.created_at, TimeDelta::days(14));
        }
    }

    #[tokio::test]
    async fn a_usage_threshold_and_low_credit_say_their_figures() {
        let usage = BillingEvent::UsageThreshold {
            group_id: group_id(),
            metric: "customers".into(),
            percent: 80,
            used: 8,
            limit: 10,
        };
        let made_usage = made(vec![member(1)], &usage).await;
        assert_eq!(made_usage[0].kind, NotificationType::UsageThreshold);
        assert_eq!(made_usage[0].title, "Usage at 80 %");
        assert_eq!(made_usage[0].body, "Acme has used 8 of 10 customers this period");
        let low = BillingEvent::SmsCreditLow { group_id: group_id(), balance: 968 };
        let made_low = made(vec![member(1)], &low).await;
        assert_eq!(made_low[0].kind, NotificationType::SmsCreditLow);
        assert_eq!(made_low[0].body, "968 KRW of SMS credit is left.");
        assert_eq!(made_low[0].link, None);
        assert_eq!(made_low[0].group.as_deref(), Some("acme"));
    }

    #[tokio::test]
    async fn a_plan_change_or_a_purchase_by_itself_tells_nobody() {
        let mut audience = MockAudience::new();
        audience.expect_holders().never();
        let consumer = NotificationsConsumer::new(
            Arc::new(MockEventFeed::new()),
            Arc::new(MockNotificationRepository::new()),
            Arc::new(audience),
            std::time::Duration::from_secs(60),
        );
        let changed = BillingEvent::PlanChanged {
            group_id: group_id(),
            from: "free".into(),
            to: "pro".into(),
        };
        let bought = BillingEvent::SmsCreditPurchased {
            group_id: group_id(),
            amount: 5_000,
            reason: onboard_payments::sms_credit::CreditReason::Purchase,
        };
        for event in [changed, bought] {
            let made = consumer.notifications_for(&Event::record(&event, at())).await;
            assert!(made.expect("decided").is_empty());
        }
    }
}
