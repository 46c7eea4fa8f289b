//! Live notifications and stream tickets in process (notify).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use onboard_kernel::MemberId;
use onboard_notifications::ports::{NotificationBus, StreamTicketStore};
use onboard_notifications::{Notification, StreamTicket};
use tokio::sync::broadcast;

/// How many notifications a slow stream may lag behind before it loses the oldest.
pub const BUS_CAPACITY: usize = 1024;

/// [`NotificationBus`] within one process: a tokio broadcast channel.
#[derive(Debug)]
pub struct MemoryNotificationBus {
    sender: broadcast::Sender<Notification>,
}

impl Default for MemoryNotificationBus {
    fn default() -> Self {
        Self { sender: broadcast::channel(BUS_CAPACITY).0 }
    }
}

#[async_trait]
impl NotificationBus for MemoryNotificationBus {
    async fn publish(&self, notification: &Notification) -> anyhow::Result<()> {
        // No subscriber is no error: nobody is streaming.
        let _ = self.sender.send(notification.clone());
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.sender.subscribe()
    }
}

/// [`StreamTicketStore`] in memory: each ticket taken once, until its TTL ends.
#[derive(Debug, Default)]
pub struct MemoryStreamTicketStore {
    tickets: Mutex<HashMap<StreamTicket, (MemberId, Instant)>>,
}

#[async_trait]
impl StreamTicketStore for MemoryStreamTicketStore {
    async fn put(
        &self,
        ticket: &StreamTicket,
        member: MemberId,
        ttl_secs: u64,
    ) -> anyhow::Result<()> {
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        tickets.retain(|_, (_, until)| *until > now);
        tickets.insert(ticket.clone(), (member, now + Duration::from_secs(ttl_secs.max(1))));
        Ok(())
    }

    async fn take(&self, ticket: &StreamTicket) -> anyhow::Result<Option<MemberId>> {
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(tickets
            .remove(ticket)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(member, _)| member))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_ticket_is_taken_once() {
        let store = MemoryStreamTicketStore::default();
        let (ticket, member) = (StreamTicket::generate(), MemberId::new());
        store.put(&ticket, member, 30).await.unwrap();
        assert_eq!(store.take(&ticket).await.unwrap(), Some(member));
        assert_eq!(store.take(&ticket).await.unwrap(), None);
        assert_eq!(store.take(&StreamTicket::generate()).await.unwrap(), None);
    }
}
