//! The outbox of domain events in memory: every write of the store records its events under
//! the store's one lock, with the change (the twin of the same transaction), and
//! [`EventFeed`] reads them in that order.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::events::{Event, EventBatch, EventFeed, EventTypes, FeedPosition};

use super::MemoryStore;

/// The events, in the order they were recorded, and each consumer's position.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Each event with its sequence number (from 1).
    events: Vec<(i64, Event)>,
    last: i64,
    consumers: HashMap<String, FeedPosition>,
}

impl Outbox {
    /// Records events of a change made under the store's lock.
    pub(crate) fn record(&mut self, events: &[Event]) {
        for event in events {
            self.last += 1;
            self.events.push((self.last, event.clone()));
        }
    }

    /// Every event recorded so far, oldest first (for tests).
    #[cfg(test)]
    pub(crate) fn all(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().map(|(_, e)| e)
    }

    /// The events after `from`, oldest first, with their positions.
    pub(crate) fn after(&self, from: FeedPosition) -> impl Iterator<Item = (FeedPosition, &Event)> {
        let start = self.events.partition_point(|(seq, _)| *seq <= from.seq);
        self.events[start..].iter().map(|(seq, e)| (FeedPosition { txid: *seq, seq: *seq }, e))
    }

    pub(crate) fn read(&self, consumer: &str, limit: u32, types: EventTypes) -> EventBatch {
        let from = self.consumers.get(consumer).copied().unwrap_or(FeedPosition::START);
        let limit = limit.max(1) as usize;
        let mut to = from;
        let mut events = Vec::new();
        for (position, event) in self.after(from) {
            if events.len() == limit {
                break;
            }
            // Past every event looked at; a full batch ends at its last event.
            to = position;
            if types.matches(&event.event_type) {
                events.push(event.clone());
            }
        }
        EventBatch { consumer: consumer.to_owned(), from, to, events }
    }

    /// Moves `consumer` from `from` to `to` when it is still at `from`.
    pub(crate) fn advance(&mut self, consumer: &str, from: FeedPosition, to: FeedPosition) -> bool {
        let at = self.consumers.entry(consumer.to_owned()).or_insert(FeedPosition::START);
        if *at != from {
            return false;
        }
        *at = to;
        true
    }

    fn purge(&mut self, before: DateTime<Utc>) -> u64 {
        let len = self.events.len();
        self.events.retain(|(_, e)| e.occurred_at >= before);
        (len - self.events.len()) as u64
    }
}

#[async_trait]
impl EventFeed for MemoryStore {
    async fn read_matching(
        &self,
        consumer: &str,
        limit: u32,
        types: EventTypes,
    ) -> anyhow::Result<EventBatch> {
        Ok(self.state().outbox.read(consumer, limit, types))
    }

    async fn advance(
        &self,
        consumer: &str,
        from: FeedPosition,
        to: FeedPosition,
    ) -> anyhow::Result<bool> {
        Ok(self.state().outbox.advance(consumer, from, to))
    }

    async fn purge(&self, before: DateTime<Utc>) -> anyhow::Result<u64> {
        Ok(self.state().outbox.purge(before))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onboard_kernel::events::{Aggregate, DomainEvent};
    use onboard_kernel::{GroupId, MemberId};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum Ev {
        #[serde(rename = "test.ev")]
        Ev { member_id: MemberId },
    }

    impl DomainEvent for Ev {
        fn aggregate(&self) -> Aggregate {
            let Self::Ev { member_id } = self;
            Aggregate::member(*member_id)
        }
        fn group(&self) -> Option<GroupId> {
            None
        }
    }

    fn event() -> Event {
        Event::record(&Ev::Ev { member_id: MemberId::new() }, Utc::now())
    }

    #[test]
    fn each_consumer_reads_every_event_once_at_its_own_pace() {
        let mut outbox = Outbox::default();
        outbox.record(&[event(), event(), event()]);
        let a = outbox.read("a", 2, EventTypes::ALL);
        assert_eq!(a.events.len(), 2);
        assert!(outbox.advance("a", a.from, a.to));
        assert!(!outbox.advance("a", a.from, a.to), "a second instance's move is refused");
        let rest = outbox.read("a", 10, EventTypes::ALL);
        assert_eq!(rest.events.len(), 1);
        assert_eq!(
            outbox.read("b", 10, EventTypes::ALL).events.len(),
            3,
            "b starts at the beginning"
        );
        assert!(outbox.advance("a", rest.from, rest.to));
        let none = outbox.read("a", 10, EventTypes::ALL);
        assert!(none.events.is_empty());
        assert_eq!(none.from, none.to);
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum Other {
        #[serde(rename = "other.ev")]
        Ev { member_id: MemberId },
    }

    impl DomainEvent for Other {
        fn aggregate(&self) -> Aggregate {
            let Self::Ev { member_id } = self;
            Aggregate::member(*member_id)
        }
        fn group(&self) -> Option<GroupId> {
            None
        }
    }

    fn other() -> Event {
        Event::record(&Other::Ev { member_id: MemberId::new() }, Utc::now())
    }

    #[test]
    fn a_consumer_of_some_types_reads_only_those_and_moves_past_the_others() {
        let mut outbox = Outbox::default();
        let wanted = EventTypes::only(&["test."]);
        outbox.record(&[other(), event(), other(), event(), other()]);

        let first = outbox.read("a", 1, wanted);
        assert_eq!(first.events.len(), 1, "a full batch");
        assert_eq!(first.to, FeedPosition { txid: 2, seq: 2 }, "ends at its last event");
        assert!(outbox.advance("a", first.from, first.to));

        let rest = outbox.read("a", 10, wanted);
        assert_eq!(
            rest.events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(),
            ["test.ev"]
        );
        assert_eq!(rest.to, FeedPosition { txid: 5, seq: 5 }, "past the trailing other type");
        assert!(outbox.advance("a", rest.from, rest.to));

        outbox.record(&[other()]);
        let skipped = outbox.read("a", 10, wanted);
        assert!(skipped.events.is_empty());
        assert_eq!(skipped.to, FeedPosition { txid: 6, seq: 6 }, "moves past what it skips");
    }
}
