//! Notifications in memory: [`NotificationRepository`] and [`NotificationOutbox`] for
//! [`MemoryStore`], and the helper producers whose memory adapter shares this store use to
//! notify under the same lock as their change (the memory twin of notifying in the same
//! transaction).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::MemberId;
use onboard_kernel::events::FeedPosition;
use onboard_notifications::ports::{NotificationOutbox, NotificationRepository};
use onboard_notifications::{MarkRead, NewNotification, Notification, NotificationId};

use super::MemoryStore;

/// The stored notifications.
#[derive(Debug, Default)]
pub(super) struct Notifications {
    rows: BTreeMap<NotificationId, Row>,
}

#[derive(Debug, Clone)]
struct Row {
    notification: Notification,
    published: bool,
    claimed_until: Option<DateTime<Utc>>,
}

impl Notifications {
    pub(super) fn insert(&mut self, new: NewNotification) {
        let id = new.id;
        self.rows.insert(
            id,
            Row { notification: new.into_notification(), published: false, claimed_until: None },
        );
    }

    fn own(&self, member: MemberId) -> impl DoubleEndedIterator<Item = &Notification> {
        self.rows.values().map(|r| &r.notification).filter(move |n| n.member == member)
    }
}

#[async_trait]
impl NotificationRepository for MemoryStore {
    async fn insert(&self, notifications: &[NewNotification]) -> anyhow::Result<()> {
        let mut state = self.state();
        for n in notifications {
            state.notifications.insert(n.clone());
        }
        Ok(())
    }

    async fn insert_consumed(
        &self,
        consumer: &str,
        from: FeedPosition,
        to: FeedPosition,
        notifications: &[NewNotification],
    ) -> anyhow::Result<bool> {
        let mut state = self.state();
        if !state.outbox.advance(consumer, from, to) {
            return Ok(false);
        }
        for n in notifications {
            state.notifications.insert(n.clone());
        }
        Ok(true)
    }

    async fn list(
        &self,
        member: MemberId,
        unread_only: bool,
        before: Option<NotificationId>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Notification>> {
        let state = self.state();
        Ok(state
            .notifications
            .own(member)
            .rev()
            .filter(|n| before.is_none_or(|b| n.id < b))
            .filter(|n| n.is_visible(now) && (!unread_only || !n.read))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn unread_count(&self, member: MemberId, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let state = self.state();
        Ok(state.notifications.own(member).filter(|n| n.is_visible(now) && !n.read).count() as u64)
    }

    async fn after(
        &self,
        member: MemberId,
        after: NotificationId,
        limit: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Notification>> {
        let state = self.state();
        Ok(state
            .notifications
            .own(member)
            .filter(|n| n.id > after && n.is_visible(now))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn mark_read(
        &self,
        member: MemberId,
        which: &MarkRead,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut state = self.state();
        for row in state.notifications.rows.values_mut() {
            let n = &mut row.notification;
            let named = match which {
                MarkRead::All => true,
                MarkRead::Ids(ids) => ids.contains(&n.id),
            };
            if n.member == member && named && n.snoozed_until.is_none_or(|u| u <= now) {
                n.read = true;
            }
        }
        Ok(())
    }

    async fn snooze(
        &self,
        member: MemberId,
        id: NotificationId,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Notification>> {
        let mut state = self.state();
        let Some(row) = state.notifications.rows.get_mut(&id) else {
            return Ok(None);
        };
        let n = &mut row.notification;
        if n.member != member || !n.is_visible(now) {
            return Ok(None);
        }
        n.snoozed_until = Some(until);
        n.read = false;
        Ok(Some(n.clone()))
    }

    async fn delete(&self, member: MemberId, id: NotificationId) -> anyhow::Result<bool> {
        let mut state = self.state();
        let rows = &mut state.notifications.rows;
        if rows.get(&id).is_some_and(|r| r.notification.member == member) {
            rows.remove(&id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let mut state = self.state();
        let rows = &mut state.notifications.rows;
        let before = rows.len();
        rows.retain(|_, r| r.notification.expires_at > now);
        Ok((before - rows.len()) as u64)
    }
}

#[async_trait]
impl NotificationOutbox for MemoryStore {
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<Notification>> {
        let mut state = self.state();
        Ok(state
            .notifications
            .rows
            .values_mut()
            .filter(|r| !r.published && r.claimed_until.is_none_or(|c| c <= now))
            .take(limit as usize)
            .map(|r| {
                r.claimed_until = Some(lease_until);
                r.notification.clone()
            })
            .collect())
    }

    async fn mark_published(&self, ids: &[NotificationId]) -> anyhow::Result<()> {
        let mut state = self.state();
        for id in ids {
            if let Some(row) = state.notifications.rows.get_mut(id) {
                row.published = true;
                row.claimed_until = None;
            }
        }
        Ok(())
    }
}
