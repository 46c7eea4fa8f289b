//! Webhooks as the outbox's second consumer: the fan-out of each event to the endpoints that
//! want it.
//!
//! The consumer reads a batch through [`EventFeed`], makes one delivery per (event, enabled
//! endpoint whose scope and filters take it), and stores them together with its new feed
//! position ([`DeliveryRepository::insert_consumed`]) in one transaction: each event fans out
//! exactly once, however many instances run the consumer. The write path that recorded the
//! event paid only for its outbox row.

use std::collections::BTreeSet;
use std::sync::Arc;

use onboard_kernel::Clock;
use onboard_kernel::events::{Event, EventFeed, EventTypes};

use crate::model::{Endpoint, NewDelivery};
use crate::ports::{DeliveryRepository, EndpointRepository};

/// The consumer's name: its position in the feed is kept under it.
pub const CONSUMER: &str = "webhooks";

/// No event type: what the consumer reads while no endpoint is enabled (the feed only moves it
/// past what is stored, without handing any event out).
const NOTHING: EventTypes = EventTypes::only(&[]);

/// Turns the outbox's events into deliveries.
#[derive(Clone)]
pub struct WebhooksConsumer {
    feed: Arc<dyn EventFeed>,
    endpoints: Arc<dyn EndpointRepository>,
    deliveries: Arc<dyn DeliveryRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WebhooksConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhooksConsumer").finish_non_exhaustive()
    }
}

impl WebhooksConsumer {
    pub fn new(
        feed: Arc<dyn EventFeed>,
        endpoints: Arc<dyn EndpointRepository>,
        deliveries: Arc<dyn DeliveryRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { feed, endpoints, deliveries, clock }
    }

    /// Handles the next batch of up to `limit` events: their deliveries are stored with the
    /// consumer's new position, in one change. Answers how many events were handled: 0 when
    /// none was waiting, or when another instance handled the same batch first.
    ///
    /// While no endpoint is enabled, it moves past the waiting events without reading them (so
    /// a deployment without webhooks pays nothing per event but the feed's index scan). Whether
    /// one is enabled is asked again after that skip: an endpoint enabled before the second
    /// look makes it read the events instead, and one enabled after it could not want the
    /// skipped events, which were all committed before it.
    pub async fn run_once(&self, limit: u32) -> anyhow::Result<usize> {
        if !self.endpoints.any_enabled().await? {
            let skipped = self.feed.read_matching(CONSUMER, limit, NOTHING).await?;
            if skipped.to == skipped.from {
                return Ok(0);
            }
            if !self.endpoints.any_enabled().await? {
                self.deliveries.insert_consumed(CONSUMER, skipped.from, skipped.to, &[]).await?;
                return Ok(0);
            }
        }
        let batch = self.feed.read(CONSUMER, limit).await?;
        if batch.events.is_empty() {
            return Ok(0);
        }
        let groups: BTreeSet<_> = batch.events.iter().filter_map(|e| e.group).collect();
        let groups: Vec<_> = groups.into_iter().collect();
        let endpoints = self.endpoints.enabled_for(&groups).await?;
        let now = self.clock.now();
        let deliveries: Vec<_> =
            batch.events.iter().flat_map(|e| fan_out(e, &endpoints, now)).collect();
        let stored =
            self.deliveries.insert_consumed(CONSUMER, batch.from, batch.to, &deliveries).await?;
        Ok(if stored { batch.events.len() } else { 0 })
    }
}

/// The deliveries of one event: one per endpoint that wants it.
pub fn fan_out(
    event: &Event,
    endpoints: &[Endpoint],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<NewDelivery> {
    endpoints
        .iter()
        .filter(|e| e.enabled && e.wants(event))
        .map(|e| NewDelivery::of(event, e.id, now))
        .collect()
}
