//! Notifications as a consumer of domain events: the one place that decides who is told of a
//! change, and what they are told.
//!
//! The use cases of other domains record their events with their change (the outbox); this
//! consumer reads them through [`EventFeed`], turns each into the notifications it implies
//! ([`NotificationsConsumer::notifications_for`]) and stores them together with its new feed
//! position ([`NotificationRepository::insert_consumed`]), in one transaction: each event is
//! turned into notifications exactly once, however many instances run the consumer.
//!
//! Recipients come from the domains that own the rule: "those who decide join requests" are
//! the holders of `members.manage` as the groups domain defines them
//! ([`Audience::holders`], implemented by [`GroupsService`] with
//! [`GroupsService::holders_of`]).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{SubsecRound as _, TimeDelta};
use onboard_groups::events::GroupEvent;
use onboard_groups::{GroupsService, Permission};
use onboard_invites::events::InviteEvent;
use onboard_kernel::events::{Event, EventFeed, EventTypes};
use onboard_kernel::{GroupId, MemberId};
use onboard_webhooks::events::WebhookEvent;

use crate::model::{NewNotification, NotificationId, NotificationType};
use crate::ports::NotificationRepository;
use crate::texts::Text;

mod billing;

/// The consumer's name: its position in the feed is kept under it.
pub const CONSUMER: &str = "notifications";

/// The event types that can tell someone something: the consumer reads only these, and the
/// feed moves it past the others without handing them out (sign-ups, redeems and the other
/// events of the hot paths imply no notification).
pub const TOLD: EventTypes = EventTypes::only(&[
    "billing.",
    "sms_credit.",
    "group.join_requested",
    "group.join_approved",
    "group.join_rejected",
    "group.member_role_changed",
    "group.member_removed",
    "invite.accepted",
    "webhook.endpoint_disabled",
]);

/// A group as a notification names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLabel {
    pub name: String,
    pub slug: String,
}

/// Who is concerned by a group's events, as the groups domain answers it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Audience: Send + Sync {
    /// The active members of `group` whose role holds `permission`.
    async fn holders(
        &self,
        group: GroupId,
        permission: &Permission,
    ) -> anyhow::Result<Vec<MemberId>>;

    /// The group's name and slug; `None` when it is gone.
    async fn group(&self, group: GroupId) -> anyhow::Result<Option<GroupLabel>>;

    /// The display name (first and last names) of `member` as `group` lists them; `None` when
    /// they are no longer in it or have no name.
    async fn member_name(&self, group: GroupId, member: MemberId)
    -> anyhow::Result<Option<String>>;
}

#[async_trait]
impl Audience for GroupsService {
    async fn holders(
        &self,
        group: GroupId,
        permission: &Permission,
    ) -> anyhow::Result<Vec<MemberId>> {
        self.holders_of(group, permission).await
    }

    async fn group(&self, group: GroupId) -> anyhow::Result<Option<GroupLabel>> {
        Ok(self.find_by_id(group).await?.map(|g| GroupLabel {
            name: g.name.as_str().to_owned(),
            slug: g.slug.as_str().to_owned(),
        }))
    }

    async fn member_name(
        &self,
        group: GroupId,
        member: MemberId,
    ) -> anyhow::Result<Option<String>> {
        Ok(self.membership_of(group, member).await?.map(|m| {
            [m.first_name.as_deref(), m.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        }))
    }
}

/// What one event tells, before the texts are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Notice {
    group: GroupId,
    kind: NotificationType,
    to: Recipients,
    /// The member named in the text (`{name}`).
    about: Option<MemberId>,
    /// The `{role}` of the text.
    role: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Recipients {
    Member(MemberId),
    Holders(Permission),
}

/// What a group event tells, and whom; `None` for events nobody is told of.
fn group_notice(event: &GroupEvent) -> Option<Notice> {
    let notice = |group, kind, to, about, role: &str| Notice {
        group,
        kind,
        to,
        about,
        role: role.to_owned(),
    };
    use NotificationType as T;
    Some(match event {
        GroupEvent::JoinRequested { group_id, member_id } => notice(
            *group_id,
            T::JoinRequestCreated,
            Recipients::Holders(Permission::MEMBERS_MANAGE),
            Some(*member_id),
            "",
        ),
        GroupEvent::JoinApproved { group_id, member_id, .. } => {
            notice(*group_id, T::JoinRequestApproved, Recipients::Member(*member_id), None, "")
        }
        GroupEvent::JoinRejected { group_id, member_id, .. } => {
            notice(*group_id, T::JoinRequestRejected, Recipients::Member(*member_id), None, "")
        }
        GroupEvent::MemberRoleChanged { group_id, member_id, to, .. } => {
            notice(*group_id, T::MemberRoleChanged, Recipients::Member(*member_id), None, to)
        }
        GroupEvent::MemberRemoved { group_id, member_id, .. } => {
            notice(*group_id, T::MemberRemoved, Recipients::Member(*member_id), None, "")
        }
        _ => return None,
    })
}

/// What an invite event tells, and whom; `None` for events nobody is told of. The join
/// request an accepted invite may make is told by its own group event.
fn invite_notice(event: &InviteEvent) -> Option<Notice> {
    match event {
        InviteEvent::Accepted { group_id, invited_by, member_id, .. } => Some(Notice {
            group: *group_id,
            kind: NotificationType::InviteAccepted,
            to: Recipients::Member(*invited_by),
            about: Some(*member_id),
            role: String::new(),
        }),
        _ => None,
    }
}

/// What a webhooks event tells, and whom: a group endpoint disabled tells the holders of
/// `webhooks.manage`.
fn webhook_notice(event: &WebhookEvent) -> Option<Notice> {
    match event {
        WebhookEvent::EndpointDisabled { group_id: Some(group), .. } => Some(Notice {
            group: *group,
            kind: NotificationType::WebhookEndpointDisabled,
            to: Recipients::Holders(Permission::WEBHOOKS_MANAGE),
            about: None,
            role: String::new(),
        }),
        _ => None,
    }
}

/// Turns the outbox's events into members' notifications.
#[derive(Clone)]
pub struct NotificationsConsumer {
    feed: Arc<dyn EventFeed>,
    store: Arc<dyn NotificationRepository>,
    audience: Arc<dyn Audience>,
    ttl: TimeDelta,
}

impl std::fmt::Debug for NotificationsConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationsConsumer").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl NotificationsConsumer {
    /// A consumer whose notifications are kept `ttl` after the event.
    pub fn new(
        feed: Arc<dyn EventFeed>,
        store: Arc<dyn NotificationRepository>,
        audience: Arc<dyn Audience>,
        ttl: std::time::Duration,
    ) -> Self {
        let ttl = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        Self { feed, store, audience, ttl }
    }

    /// Handles the next batch of up to `limit` events: their notifications are stored with
    /// the consumer's new position, in one change. Answers how many events were handled: 0
    /// when none was waiting, or when another instance handled the same batch first (it then
    /// stored the notifications, and this call stored none).
    #[tracing::instrument(level = "debug", name = "notifications.run_once", skip_all)]
    pub async fn run_once(&self, limit: u32) -> anyhow::Result<usize> {
        let batch = self.feed.read_matching(CONSUMER, limit, TOLD).await?;
        if batch.to == batch.from {
            return Ok(0);
        }
        let mut notifications = Vec::new();
        for event in &batch.events {
            notifications.extend(self.notifications_for(event).await?);
        }
        let stored =
            self.store.insert_consumed(CONSUMER, batch.from, batch.to, &notifications).await?;
        Ok(if stored { batch.events.len() } else { 0 })
    }

    /// The notifications an event implies: whom it concerns and what they read. Events of
    /// types this consumer does not know imply none.
    #[tracing::instrument(level = "debug", name = "notifications.notifications_for", skip_all)]
    pub async fn notifications_for(&self, event: &Event) -> anyhow::Result<Vec<NewNotification>> {
        let kind = event.event_type.as_str();
        if !TOLD.matches(kind) {
            return Ok(Vec::new());
        }
        if kind.starts_with("billing.") || kind.starts_with("sms_credit.") {
            return match event.decode::<onboard_payments::events::BillingEvent>() {
                Some(billing) => self.billing_notifications(event, &billing).await,
                None => Ok(Vec::new()),
            };
        }
        let notice = if kind.starts_with("group.") {
            event.decode::<GroupEvent>().as_ref().and_then(group_notice)
        } else if kind.starts_with("invite.") {
            event.decode::<InviteEvent>().as_ref().and_then(invite_notice)
        } else {
            event.decode::<WebhookEvent>().as_ref().and_then(webhook_notice)
        };
        let Some(notice) = notice else {
            return Ok(Vec::new());
        };
        let (Some(text), Some(group)) =
            (Text::of(notice.kind), self.audience.group(notice.group).await?)
        else {
            return Ok(Vec::new());
        };
        let recipients = match &notice.to {
            Recipients::Member(member) => vec![*member],
            Recipients::Holders(permission) => {
                self.audience.holders(notice.group, permission).await?
            }
        };
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        let name = match notice.about {
            Some(member) => self.audience.member_name(notice.group, member).await?,
            None => None,
        };
        let (body, link) = text.render(name.as_deref(), &notice.role, &group.name, &group.slug);
        let created_at = event.occurred_at.trunc_subsecs(6);
        Ok(recipients
            .into_iter()
            .map(|member| NewNotification {
                id: NotificationId::new(),
                member,
                kind: notice.kind,
                title: text.title.to_owned(),
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
    use std::sync::{Arc, Mutex};

    use chrono::{TimeZone, Utc};
    use onboard_kernel::events::{EventBatch, FeedPosition, MockEventFeed};

    use super::*;
    use crate::ports::MockNotificationRepository;

    fn group_id() -> GroupId {
        GroupId::from_uuid(uuid::Uuid::from_u128(0x6701))
    }

    fn member(n: u128) -> MemberId {
        MemberId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn at() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).single().expect("an instant")
    }

    fn acme(audience: &mut MockAudience) {
        audience.expect_group().returning(|_| {
            Ok(Some(GroupLabel { name: "Acme".to_owned(), slug: "acme".to_owned() }))
        });
    }

    fn consumer(audience: MockAudience) -> NotificationsConsumer {
        NotificationsConsumer::new(
            Arc::new(MockEventFeed::new()),
            Arc::new(MockNotificationRepository::new()),
            Arc::new(audience),
            std::time::Duration::from_secs(14 * 24 * 3600),
        )
    }

    #[tokio::test]
    async fn a_join_request_tells_every_holder_of_members_manage_who_asked() {
        let mut audience = MockAudience::new();
        acme(&mut audience);
        audience
            .expect_holders()
            .withf(|g, p| *g == group_id() && *p == Permission::MEMBERS_MANAGE)
            .times(1)
            .returning(|_, _| Ok(vec![member(1), member(2)]));
        audience
            .expect_member_name()
            .withf(|g, m| *g == group_id() && *m == member(9))
            .returning(|_, _| Ok(Some("Ann Lee".to_owned())));
        let event = GroupEvent::JoinRequested { group_id: group_id(), member_id: member(9) };

        let made = consumer(audience).notifications_for(&Event::record(&event, at())).await;
        let made = made.expect("decided");

        assert_eq!(made.iter().map(|n| n.member).collect::<Vec<_>>(), [member(1), member(2)]);
        for n in &made {
            assert_eq!(n.kind, NotificationType::JoinRequestCreated);
            assert_eq!(n.body, "Ann Lee asked to join Acme");
            assert_eq!(n.link.as_deref(), Some("/groups/acme/join-requests"));
            assert_eq!(n.group.as_deref(), Some("acme"));
            assert_eq!(n.created_at, at());
            assert_eq!(n.expires_at - n.created_at, TimeDelta::days(14));
        }
    }

    #[tokio::test]
    async fn an_approval_tells_the_requester_and_nobody_else() {
        let mut audience = MockAudience::new();
        acme(&mut audience);
        audience.expect_holders().never();
        let event =
            GroupEvent::JoinApproved { group_id: group_id(), member_id: member(9), by: member(1) };

        let made = consumer(audience).notifications_for(&Event::record(&event, at())).await;

        let made = made.expect("decided");
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].member, member(9));
        assert_eq!(made[0].kind, NotificationType::JoinRequestApproved);
        assert_eq!(made[0].body, "You are now a member of Acme");
    }

    #[tokio::test]
    async fn a_role_change_names_the_new_role() {
        let mut audience = MockAudience::new();
        acme(&mut audience);
        let event = GroupEvent::MemberRoleChanged {
            group_id: group_id(),
            member_id: member(9),
            from: "member".to_owned(),
            to: "admin".to_owned(),
            by: member(1),
        };

        let made = consumer(audience).notifications_for(&Event::record(&event, at())).await;

        assert_eq!(made.expect("decided")[0].body, "Your role in Acme is now admin");
    }

    #[tokio::test]
    async fn a_disabled_group_endpoint_tells_the_holders_of_webhooks_manage() {
        let mut audience = MockAudience::new();
        acme(&mut audience);
        audience
            .expect_holders()
            .withf(|g, p| *g == group_id() && *p == Permission::WEBHOOKS_MANAGE)
            .times(1)
            .returning(|_, _| Ok(vec![member(1)]));
        let event = WebhookEvent::EndpointDisabled {
            endpoint_id: onboard_webhooks::EndpointId::new(),
            group_id: Some(group_id()),
            url: "https://crm.example.com/in".to_owned(),
        };

        let made = consumer(audience).notifications_for(&Event::record(&event, at())).await;

        let made = made.expect("decided");
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].kind, NotificationType::WebhookEndpointDisabled);
        assert_eq!(made[0].body, "A webhook endpoint of Acme failed for 5 days and was disabled");
        assert_eq!(made[0].link.as_deref(), Some("/groups/acme/webhooks"));
    }

    #[tokio::test]
    async fn a_member_joining_an_open_group_tells_nobody() {
        let audience = MockAudience::new();
        let event = GroupEvent::MemberJoined {
            group_id: group_id(),
            member_id: member(9),
            role: "member".to_owned(),
            via: onboard_groups::events::JoinedVia::Join,
        };

        let made = consumer(audience).notifications_for(&Event::record(&event, at())).await;

        assert!(made.expect("decided").is_empty());
    }

    fn invite_id() -> onboard_invites::InviteId {
        onboard_invites::InviteId::from_uuid(uuid::Uuid::from_u128(0x1717))
    }

    #[tokio::test]
    async fn an_accepted_invite_tells_the_inviter_who_accepted_it() {
        let mut audience = MockAudience::new();
        acme(&mut audience);
        audience.expect_holders().never();
        audience
            .expect_member_name()
            .withf(|g, m| *g == group_id() && *m == member(9))
            .times(1)
            .returning(|_, _| Ok(Some("Ann Lee".to_owned())));
        let event = InviteEvent::Accepted {
            invite_id: invite_id(),
            group_id: group_id(),
            invited_by: member(1),
            member_id: member(9),
            role: "member".to_owned(),
        };

        let made = consumer(audience).notifications_for(&Event::record(&event, at())).await;

        let made = made.expect("decided");
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].member, member(1));
        assert_eq!(made[0].kind, NotificationType::InviteAccepted);
        assert_eq!(made[0].title, "Invite accepted");
        assert_eq!(made[0].body, "Ann Lee accepted your invite to Acme");
        assert_eq!(made[0].link.as_deref(), Some("/groups/acme/members"));
        assert_eq!(made[0].group.as_deref(), Some("acme"));
        assert_eq!(made[0].created_at, at());
    }

    #[tokio::test]
    async fn an_invitee_without_a_name_is_someone() {
        let mut audience = MockAudience::new();
        acme(&mut audience);
        audience.expect_member_name().returning(|_, _| Ok(Some(String::new())));
        let event = InviteEvent::Accepted {
            invite_id: invite_id(),
            group_id: group_id(),
            invited_by: member(1),
            member_id: member(9),
            role: "member".to_owned(),
        };

        let made = consumer(audience).notifications_for(&Event::record(&event, at())).await;

        let body = &made.expect("decided")[0].body;
        assert_eq!(*body, format!("{} accepted your invite to Acme", crate::texts::NO_NAME));
    }

    #[tokio::test]
    async fn created_and_revoked_invites_tell_nobody() {
        let events = [
            InviteEvent::Created {
                invite_id: invite_id(),
                group_id: group_id(),
                invited_by: member(1),
                phone: Some("+7******5566".to_owned()),
                email: None,
                role: "member".to_owned(),
            },
            InviteEvent::Revoked { invite_id: invite_id(), group_id: group_id(), by: member(1) },
        ];
        for event in events {
            let audience = MockAudience::new();
            let made = consumer(audience).notifications_for(&Event::record(&event, at())).await;
            assert!(made.expect("decided").is_empty(), "{event:?}");
        }
    }

    fn batch(events: Vec<Event>) -> EventBatch {
        EventBatch {
            consumer: CONSUMER.to_owned(),
            from: FeedPosition { txid: 3, seq: 7 },
            to: FeedPosition { txid: 4, seq: 9 },
            events,
        }
    }

    #[tokio::test]
    async fn a_batch_is_stored_with_the_new_position_in_one_call() {
        let mut feed = MockEventFeed::new();
        let removed = GroupEvent::MemberRemoved {
            group_id: group_id(),
            member_id: member(9),
            role: "member".to_owned(),
            by: member(1),
        };
        let events = vec![Event::record(&removed, at())];
        feed.expect_read_matching()
            .withf(|c, _, types| c == CONSUMER && *types == TOLD)
            .returning(move |_, _, _| Ok(batch(events.clone())));
        let mut audience = MockAudience::new();
        acme(&mut audience);
        let stored = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stored);
        let mut store = MockNotificationRepository::new();
        store.expect_insert_consumed().times(1).returning(move |c, from, to, made| {
            assert_eq!((c, from, to), (CONSUMER, batch(vec![]).from, batch(vec![]).to));
            sink.lock().expect("not poisoned").extend(made.iter().map(|n| (n.member, n.kind)));
            Ok(true)
        });
        let consumer = NotificationsConsumer::new(
            Arc::new(feed),
            Arc::new(store),
            Arc::new(audience),
            std::time::Duration::from_secs(60),
        );

        assert_eq!(consumer.run_once(100).await.expect("ran"), 1);
        let stored = stored.lock().expect("not poisoned").clone();
        assert_eq!(stored, [(member(9), NotificationType::MemberRemoved)]);
    }

    #[tokio::test]
    async fn a_batch_another_instance_stored_first_counts_as_none_handled() {
        let mut feed = MockEventFeed::new();
        let rejected =
            GroupEvent::JoinRejected { group_id: group_id(), member_id: member(9), by: member(1) };
        let events = vec![Event::record(&rejected, at())];
        feed.expect_read_matching().returning(move |_, _, _| Ok(batch(events.clone())));
        let mut audience = MockAudience::new();
        acme(&mut audience);
        let mut store = MockNotificationRepository::new();
        store.expect_insert_consumed().times(1).returning(|_, _, _, _| Ok(false));
        let consumer = NotificationsConsumer::new(
            Arc::new(feed),
            Arc::new(store),
            Arc::new(audience),
            std::time::Duration::from_secs(60),
        );

        assert_eq!(consumer.run_once(100).await.expect("ran"), 0);
    }

    #[tokio::test]
    async fn a_batch_of_events_nobody_is_told_of_only_moves_the_position() {
        let mut feed = MockEventFeed::new();
        feed.expect_read_matching().returning(|_, _, _| Ok(batch(vec![])));
        let mut store = MockNotificationRepository::new();
        store.expect_insert_consumed().times(1).returning(|c, from, to, made| {
            assert_eq!((c, from, to), (CONSUMER, batch(vec![]).from, batch(vec![]).to));
            assert!(made.is_empty());
            Ok(true)
        });
        let consumer = NotificationsConsumer::new(
            Arc::new(feed),
            Arc::new(store),
            Arc::new(MockAudience::new()),
            std::time::Duration::from_secs(60),
        );

        assert_eq!(consumer.run_once(100).await.expect("ran"), 0);
    }

    #[tokio::test]
    async fn every_group_and_invite_event_that_tells_someone_is_a_type_the_consumer_reads() {
        let (g, m) = (group_id(), member(9));
        let role = || "member".to_owned();
        let group_events = [
            GroupEvent::Created {
                group_id: g,
                slug: "acme".into(),
                name: "Acme".into(),
                owner_id: m,
            },
            GroupEvent::Deleted { group_id: g, slug: "acme".into(), by: m },
            GroupEvent::MemberJoined {
                group_id: g,
                member_id: m,
                role: role(),
                via: onboard_groups::events::JoinedVia::Invite,
            },
            GroupEvent::JoinRequested { group_id: g, member_id: m },
            GroupEvent::JoinApproved { group_id: g, member_id: m, by: m },
            GroupEvent::JoinRejected { group_id: g, member_id: m, by: m },
            GroupEvent::MemberRoleChanged {
                group_id: g,
                member_id: m,
                from: role(),
                to: role(),
                by: m,
            },
            GroupEvent::MemberRemoved { group_id: g, member_id: m, role: role(), by: m },
        ];
        for event in &group_events {
            let record = Event::record(event, at());
            assert_eq!(
                group_notice(event).is_some(),
                TOLD.matches(&record.event_type),
                "{event:?}"
            );
        }
        let accepted = InviteEvent::Accepted {
            invite_id: invite_id(),
            group_id: g,
            invited_by: member(1),
            member_id: m,
            role: role(),
        };
        assert!(invite_notice(&accepted).is_some());
        assert!(TOLD.matches(&Event::record(&accepted, at()).event_type));
        assert!(!TOLD.matches("member.signed_up") && !TOLD.matches("referral.redeemed"));
    }

    #[tokio::test]
    async fn an_empty_feed_stores_nothing() {
        let mut feed = MockEventFeed::new();
        feed.expect_read_matching().returning(|_, _, _| {
            let mut empty = batch(vec![]);
            empty.to = empty.from;
            Ok(empty)
        });
        let mut store = MockNotificationRepository::new();
        store.expect_insert_consumed().never();
        let consumer = NotificationsConsumer::new(
            Arc::new(feed),
            Arc::new(store),
            Arc::new(MockAudience::new()),
            std::time::Duration::from_secs(60),
        );

        assert_eq!(consumer.run_once(100).await.expect("ran"), 0);
    }
}
