//! Live notifications across instances (Redis pub/sub) and single-use stream tickets (notify).

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::redis;
use futures_util::StreamExt as _;
use onboard_kernel::MemberId;
use onboard_notifications::ports::{NotificationBus, StreamTicketStore};
use onboard_notifications::{Notification, NotificationId, NotificationType, StreamTicket};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::{Pool, connection, debug_store, positive_millis};

/// How many notifications a slow stream may lag behind before it loses the oldest.
pub const BUS_CAPACITY: usize = 1024;

/// How long the subscriber waits before connecting again after losing Redis.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// [`NotificationBus`] through Redis pub/sub: `PUBLISH` on the channel
/// `{prefix}notifications` (one channel; each message names its member), and ONE subscriber
/// connection per instance that fans out in process through a tokio broadcast channel.
///
/// A message published while an instance's subscriber is reconnecting does not reach that
/// instance's streams; their clients replay it with `Last-Event-ID` when they reconnect.
pub struct RedisNotificationBus {
    pool: Pool,
    prefix: String,
    channel: String,
    sender: broadcast::Sender<Notification>,
}

impl fmt::Debug for RedisNotificationBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_store("RedisNotificationBus", &self.pool, &self.prefix, f)
    }
}

/// A notification on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    id: uuid::Uuid,
    member: uuid::Uuid,
    #[serde(rename = "type")]
    kind: String,
    title: String,
    body: String,
    group: Option<String>,
    link: Option<String>,
    read: bool,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    snoozed_until: Option<DateTime<Utc>>,
}

impl From<&Notification> for Wire {
    fn from(n: &Notification) -> Self {
        Self {
            id: n.id.as_uuid(),
            member: n.member.as_uuid(),
            kind: n.kind.as_str().to_owned(),
            title: n.title.clone(),
            body: n.body.clone(),
            group: n.group.clone(),
            link: n.link.clone(),
            read: n.read,
            created_at: n.created_at,
            expires_at: n.expires_at,
            snoozed_until: n.snoozed_until,
        }
    }
}

impl Wire {
    fn into_domain(self) -> Option<Notification> {
        Some(Notification {
            id: NotificationId::from_uuid(self.id),
            member: MemberId::from_uuid(self.member),
            kind: NotificationType::parse(&self.kind)?,
            title: self.title,
            body: self.body,
            group: self.group,
            link: self.link,
            read: self.read,
            created_at: self.created_at,
            expires_at: self.expires_at,
            snoozed_until: self.snoozed_until,
        })
    }
}

impl RedisNotificationBus {
    /// A bus on the Redis at `url` whose channel starts with `prefix`. Subscribes before it
    /// answers (so whatever is published afterwards reaches this instance), then keeps the
    /// subscription in a task of the current Tokio runtime, reconnecting when Redis goes away.
    ///
    /// # Errors
    /// When Redis cannot be reached for the first subscription.
    pub async fn start(url: &str, pool: Pool, prefix: impl Into<String>) -> anyhow::Result<Self> {
        let prefix = prefix.into();
        let channel = format!("{prefix}notifications");
        let (sender, _) = broadcast::channel(BUS_CAPACITY);
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        let first = subscribe(&client, &channel).await?;
        let task_sender = sender.downgrade();
        let task_channel = channel.clone();
        tokio::spawn(async move {
            let mut pubsub = Some(first);
            loop {
                let current = match pubsub.take() {
                    Some(p) => p,
                    None => match subscribe(&client, &task_channel).await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!(error = %e, "notification subscriber: Redis unreachable");
                            tokio::time::sleep(RECONNECT_DELAY).await;
                            continue;
                        }
                    },
                };
                let mut messages = current.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Some(sender) = task_sender.upgrade() else {
                        return; // The bus is gone.
                    };
                    let Ok(payload) = msg.get_payload::<String>() else { continue };
                    match serde_json::from_str::<Wire>(&payload).ok().and_then(Wire::into_domain) {
                        Some(n) => {
                            let _ = sender.send(n);
                        }
                        None => tracing::warn!("notification subscriber: unreadable message"),
                    }
                }
                if task_sender.upgrade().is_none() {
                    return;
                }
                tracing::warn!("notification subscriber: connection lost; reconnecting");
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        });
        Ok(Self { pool, prefix, channel, sender })
    }
}

async fn subscribe(client: &redis::Client, channel: &str) -> anyhow::Result<redis::aio::PubSub> {
    let mut pubsub =
        client.get_async_pubsub().await.context("opening the notification subscription")?;
    pubsub.subscribe(channel).await.context("subscribing to notifications")?;
    Ok(pubsub)
}

#[async_trait]
impl NotificationBus for RedisNotificationBus {
    async fn publish(&self, notification: &Notification) -> anyhow::Result<()> {
        let payload = serde_json::to_string(&Wire::from(notification))?;
        let mut conn = connection(&self.pool).await?;
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .context("publishing a notification")?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.sender.subscribe()
    }
}

/// [`StreamTicketStore`] in Redis: `{prefix}nticket:{<ticket>}` holds the member id with the
/// ticket's TTL; taking it is one `GETDEL`, so a ticket works once across every instance.
pub struct RedisStreamTicketStore {
    pool: Pool,
    prefix: String,
}

impl RedisStreamTicketStore {
    pub fn new(pool: Pool, prefix: impl Into<String>) -> Self {
        Self { pool, prefix: prefix.into() }
    }

    fn key(&self, ticket: &StreamTicket) -> String {
        format!("{}nticket:{{{}}}", self.prefix, ticket.as_str())
    }
}

impl fmt::Debug for RedisStreamTicketStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_store("RedisStreamTicketStore", &self.pool, &self.prefix, f)
    }
}

#[async_trait]
impl StreamTicketStore for RedisStreamTicketStore {
    async fn put(
        &self,
        ticket: &StreamTicket,
        member: MemberId,
        ttl_secs: u64,
    ) -> anyhow::Result<()> {
        let mut conn = connection(&self.pool).await?;
        redis::cmd("SET")
            .arg(self.key(ticket))
            .arg(member.as_uuid().to_string())
            .arg("PX")
            .arg(positive_millis(ttl_secs))
            .query_async::<()>(&mut conn)
            .await
            .context("storing a stream ticket")
    }

    async fn take(&self, ticket: &StreamTicket) -> anyhow::Result<Option<MemberId>> {
        let mut conn = connection(&self.pool).await?;
        let member: Option<String> = redis::cmd("GETDEL")
            .arg(self.key(ticket))
            .query_async(&mut conn)
            .await
            .context("taking a stream ticket")?;
        Ok(member.and_then(|m| uuid::Uuid::parse_str(&m).ok()).map(MemberId::from_uuid))
    }
}
