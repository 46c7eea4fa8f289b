//! The use cases.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use onboard_kernel::{Clock, MemberId};
use tokio::sync::broadcast;

use crate::config::NotificationsConfig;
use crate::error::{NotificationError, OpenStreamError};
use crate::model::{
    MarkRead, NewNotification, Notification, NotificationId, NotificationPage, NotificationType,
    SnoozeMinutes, StreamTicket,
};
use crate::ports::{
    NotificationBus, NotificationOutbox, NotificationRepository, StreamTicketStore,
};

/// The most notifications a reconnecting stream replays; a client that missed more reads the
/// list.
pub const REPLAY_LIMIT: u32 = 500;

/// How many notifications one publishing round claims.
const PUBLISH_BATCH: u32 = 100;

/// How long a claim holds a batch: after that, a batch whose worker died is claimed again.
const CLAIM_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// The adapters the service works with.
#[derive(Clone)]
pub struct NotificationsPorts {
    pub repo: Arc<dyn NotificationRepository>,
    pub outbox: Arc<dyn NotificationOutbox>,
    pub bus: Arc<dyn NotificationBus>,
    pub tickets: Arc<dyn StreamTicketStore>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for NotificationsPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationsPorts").finish_non_exhaustive()
    }
}

/// A member's notifications, and their live delivery.
#[derive(Clone)]
pub struct NotificationsService {
    ports: NotificationsPorts,
    config: NotificationsConfig,
}

impl std::fmt::Debug for NotificationsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationsService").field("config", &self.config).finish_non_exhaustive()
    }
}

/// An opened stream: what the member missed (oldest first), then everything published from
/// the moment before the replay was read (the caller skips ids it already sent).
#[derive(Debug)]
pub struct LiveStream {
    pub member: MemberId,
    pub replay: Vec<Notification>,
    pub live: broadcast::Receiver<Notification>,
}

impl NotificationsService {
    pub fn new(ports: NotificationsPorts, config: NotificationsConfig) -> Self {
        Self { ports, config }
    }

    pub fn config(&self) -> &NotificationsConfig {
        &self.config
    }

    fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }

    /// A notification for `member`, created now, expiring after the TTL: for producers that
    /// have no transaction of their own, with [`Self::notify`].
    pub fn draft(
        &self,
        member: MemberId,
        kind: NotificationType,
        title: impl Into<String>,
        body: impl Into<String>,
        group: Option<String>,
        link: Option<String>,
    ) -> NewNotification {
        let created_at = self.now();
        NewNotification {
            id: NotificationId::new(),
            member,
            kind,
            title: title.into(),
            body: body.into(),
            group,
            link,
            created_at,
            expires_at: created_at + to_delta(self.config.ttl),
        }
    }

    /// Stores the notifications (all or none); the outbox worker delivers them live.
    #[tracing::instrument(level = "debug", name = "notifications.notify", skip_all)]
    pub async fn notify(&self, notifications: &[NewNotification]) -> anyhow::Result<()> {
        self.ports.repo.insert(notifications).await
    }

    /// A page of `member`'s visible notifications, newest first, after the cursor, with the
    /// count of all their unread ones.
    #[tracing::instrument(level = "debug", name = "notifications.list", skip_all)]
    pub async fn list(
        &self,
        member: MemberId,
        unread_only: bool,
        cursor: Option<NotificationId>,
        limit: u32,
    ) -> anyhow::Result<NotificationPage> {
        let now = self.now();
        let mut items =
            self.ports.repo.list(member, unread_only, cursor, limit.saturating_add(1), now).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|n| n.id.to_string())
        } else {
            None
        };
        let unread_count = self.ports.repo.unread_count(member, now).await?;
        Ok(NotificationPage { items, next_cursor, unread_count })
    }

    /// Marks the member's own notifications read; others' ids are ignored.
    #[tracing::instrument(level = "debug", name = "notifications.mark_read", skip_all)]
    pub async fn mark_read(&self, member: MemberId, which: &MarkRead) -> anyhow::Result<()> {
        self.ports.repo.mark_read(member, which, self.now()).await
    }

    /// Hides the notification for `minutes`; it comes back unread after that.
    ///
    /// # Errors
    /// [`NotificationError::NotFound`] when the member has no such visible notification.
    #[tracing::instrument(level = "debug", name = "notifications.snooze", skip_all)]
    pub async fn snooze(
        &self,
        member: MemberId,
        id: NotificationId,
        minutes: SnoozeMinutes,
    ) -> Result<Notification, NotificationError> {
        let now = self.now();
        let until = now + to_delta(self.config.snooze_minute * minutes.get());
        self.ports.repo.snooze(member, id, until, now).await?.ok_or(NotificationError::NotFound)
    }

    /// Deletes the member's notification.
    ///
    /// # Errors
    /// [`NotificationError::NotFound`] when the member has none by this id (another
    /// member's included).
    #[tracing::instrument(level = "debug", name = "notifications.delete", skip_all)]
    pub async fn delete(
        &self,
        member: MemberId,
        id: NotificationId,
    ) -> Result<(), NotificationError> {
        if self.ports.repo.delete(member, id).await? {
            Ok(())
        } else {
            Err(NotificationError::NotFound)
        }
    }

    /// A single-use ticket that opens one stream for `member` within the ticket TTL.
    #[tracing::instrument(level = "debug", name = "notifications.issue_ticket", skip_all)]
    pub async fn issue_ticket(&self, member: MemberId) -> anyhow::Result<StreamTicket> {
        let ticket = StreamTicket::generate();
        let ttl = self.config.ticket_ttl.as_secs().max(1);
        self.ports.tickets.put(&ticket, member, ttl).await?;
        Ok(ticket)
    }

    /// Opens a stream with a ticket (which is used up), replaying what came after
    /// `last_event_id` when given.
    ///
    /// # Errors
    /// [`OpenStreamError::TicketInvalid`] when the ticket is unknown, used or expired.
    #[tracing::instrument(level = "debug", name = "notifications.open_stream", skip_all)]
    pub async fn open_stream(
        &self,
        ticket: &StreamTicket,
        last_event_id: Option<NotificationId>,
    ) -> Result<LiveStream, OpenStreamError> {
        let member =
            self.ports.tickets.take(ticket).await?.ok_or(OpenStreamError::TicketInvalid)?;
        // Subscribed before the replay is read, so nothing falls between the two.
        let live = self.ports.bus.subscribe();
        let replay = match last_event_id {
            Some(after) => self.ports.repo.after(member, after, REPLAY_LIMIT, self.now()).await?,
            None => Vec::new(),
        };
        Ok(LiveStream { member, replay, live })
    }

    /// One round of the outbox worker: claims unpublished notifications, publishes them and
    /// marks those published. Answers how many were published.
    #[tracing::instrument(level = "debug", name = "notifications.publish_pending", skip_all)]
    pub async fn publish_pending(&self) -> anyhow::Result<usize> {
        let now = self.now();
        let batch = self.ports.outbox.claim(now, now + CLAIM_LEASE, PUBLISH_BATCH).await?;
        let mut published = Vec::with_capacity(batch.len());
        let mut failure = None;
        for notification in &batch {
            match self.ports.bus.publish(notification).await {
                Ok(()) => published.push(notification.id),
                // The rest stays claimed until the lease ends, then goes again.
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if !published.is_empty() {
            self.ports.outbox.mark_published(&published).await?;
        }
        match failure {
            Some(e) => Err(e.context("publishing notifications")),
            None => Ok(published.len()),
        }
    }

    /// Deletes expired notifications; answers how many.
    #[tracing::instrument(level = "debug", name = "notifications.purge_expired", skip_all)]
    pub async fn purge_expired(&self) -> anyhow::Result<u64> {
        self.ports.repo.purge_expired(self.now()).await
    }
}

fn to_delta(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

#[cfg(test)]
mod tests;
