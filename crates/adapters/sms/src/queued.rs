//! A bounded queue in front of any sender.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use onboard_kernel::PhoneNumber;
use onboard_members::ports::SmsSender;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::{JoinError, JoinSet};
use tracing::Instrument;

/// Deliveries that may wait for the provider at the same time.
const MAX_IN_FLIGHT: usize = 32;

/// Queues messages for another sender and returns at once.
///
/// [`SmsSender::send`] only enqueues: it fails when the queue is full (or its worker is gone),
/// never waits. A background task hands the messages to the inner sender in the order they
/// were queued, up to 32 at a time, so one slow delivery does not hold up the rest; failures
/// are logged at `warn` level (target `onboard::sms`, phone masked, text never logged).
#[derive(Clone)]
pub struct QueuedSmsSender {
    queue: mpsc::Sender<Message>,
}

struct Message {
    to: PhoneNumber,
    text: String,
    /// The delivery's span, a child of the span that queued it (the request's), so the
    /// delivery's logs and its provider call (`traceparent`) belong to that request's trace.
    span: tracing::Span,
}

impl QueuedSmsSender {
    /// Starts the delivery task for `inner` with room for `capacity` waiting messages (at
    /// least one). The task ends when every clone of the returned sender is dropped and the
    /// queue has been handed over.
    ///
    /// # Panics
    /// When called outside a Tokio runtime.
    pub fn spawn(inner: Arc<dyn SmsSender>, capacity: usize) -> Self {
        let (queue, messages) = mpsc::channel(capacity.max(1));
        tokio::spawn(deliver_all(inner, messages));
        Self { queue }
    }
}

impl fmt::Debug for QueuedSmsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuedSmsSender")
            .field("capacity", &self.queue.max_capacity())
            .field("free", &self.queue.capacity())
            .finish()
    }
}

#[async_trait]
impl SmsSender for QueuedSmsSender {
    async fn send(&self, to: &PhoneNumber, text: &str) -> anyhow::Result<()> {
        let span = tracing::info_span!(target: "onboard::sms", "sms.deliver", otel.kind = "client");
        let message = Message { to: to.clone(), text: text.to_owned(), span };
        self.queue.try_send(message).map_err(|e| match e {
            TrySendError::Full(_) => anyhow::anyhow!("the SMS queue is full"),
            TrySendError::Closed(_) => anyhow::anyhow!("the SMS queue is closed"),
        })
    }
}

async fn deliver_all(inner: Arc<dyn SmsSender>, mut messages: mpsc::Receiver<Message>) {
    let mut in_flight = JoinSet::new();
    while let Some(message) = messages.recv().await {
        while let Some(done) = in_flight.try_join_next() {
            report(done);
        }
        if in_flight.len() >= MAX_IN_FLIGHT
            && let Some(done) = in_flight.join_next().await
        {
            report(done);
        }
        let inner = Arc::clone(&inner);
        let span = message.span.clone();
        in_flight.spawn(
            async move {
                if let Err(error) = inner.send(&message.to, &message.text).await {
                    tracing::warn!(
                        target: "onboard::sms",
                        to = %message.to.masked(),
                        error = format!("{error:#}"),
                        "SMS delivery failed"
                    );
                }
            }
            .instrument(span),
        );
    }
    while let Some(done) = in_flight.join_next().await {
        report(done);
    }
}

fn report(done: Result<(), JoinError>) {
    if let Err(error) = done {
        tracing::warn!(target: "onboard::sms", %error, "SMS delivery task failed");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use tokio::sync::Notify;
    use tokio::time::Instant;

    use super::*;

    fn phone(n: u32) -> PhoneNumber {
        PhoneNumber::parse(&format!("+7917444{n:04}"), None).expect("valid")
    }

    /// Records what it delivers; waits first when told to.
    #[derive(Default)]
    struct Recorder {
        delivered: Mutex<Vec<(String, String)>>,
        delay: Option<Duration>,
        /// Messages with this text wait until `release` is notified.
        hold: Option<String>,
        release: Notify,
        /// Messages with this text fail.
        fail: Option<String>,
        finished_one: AtomicBool,
    }

    impl Recorder {
        fn delivered(&self) -> Vec<(String, String)> {
            self.delivered.lock().expect("not poisoned").clone()
        }
    }

    #[async_trait]
    impl SmsSender for Recorder {
        async fn send(&self, to: &PhoneNumber, text: &str) -> anyhow::Result<()> {
            if let Some(delay) = self.delay {
                tokio::time::sleep(delay).await;
            }
            if self.hold.as_deref() == Some(text) {
                self.release.notified().await;
            }
            if self.fail.as_deref() == Some(text) {
                anyhow::bail!("provider refused");
            }
            self.delivered.lock().expect("not poisoned").push((to.to_string(), text.to_owned()));
            self.finished_one.store(true, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Polls `done` until it holds or five seconds pass.
    async fn eventually(mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        done()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_send_returns_before_a_slow_provider_finishes() {
        let inner =
            Arc::new(Recorder { delay: Some(Duration::from_millis(500)), ..Recorder::default() });
        let queued = QueuedSmsSender::spawn(inner.clone(), 16);

        queued.send(&phone(1), "code 1234").await.expect("queued");

        assert!(!inner.finished_one.load(Ordering::SeqCst), "send waited for the provider");
        assert!(eventually(|| inner.delivered().len() == 1).await);
        assert_eq!(inner.delivered(), vec![("+79174440001".to_owned(), "code 1234".to_owned())]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_queued_message_reaches_the_provider() {
        let inner = Arc::new(Recorder::default());
        let queued = QueuedSmsSender::spawn(inner.clone(), 256);
        let mut expected = Vec::new();
        for n in 0..200 {
            queued.send(&phone(n), &format!("message {n}")).await.expect("queued");
            expected.push((phone(n).to_string(), format!("message {n}")));
        }
        assert!(eventually(|| inner.delivered().len() == 200).await);
        let mut delivered = inner.delivered();
        delivered.sort();
        expected.sort();
        assert_eq!(delivered, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_delivery_does_not_hold_up_the_others() {
        let inner = Arc::new(Recorder { hold: Some("stuck".into()), ..Recorder::default() });
        let queued = QueuedSmsSender::spawn(inner.clone(), 16);
        queued.send(&phone(1), "stuck").await.expect("queued");
        for n in 2..6 {
            queued.send(&phone(n), "fine").await.expect("queued");
        }
        assert!(eventually(|| inner.delivered().len() == 4).await);
        assert!(inner.delivered().iter().all(|(_, text)| text == "fine"));

        inner.release.notify_one();
        assert!(eventually(|| inner.delivered().len() == 5).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_delivery_does_not_stop_the_queue() {
        let inner = Arc::new(Recorder { fail: Some("bad".into()), ..Recorder::default() });
        let queued = QueuedSmsSender::spawn(inner.clone(), 16);
        queued.send(&phone(1), "bad").await.expect("queued");
        queued.send(&phone(2), "good").await.expect("queued");
        assert!(eventually(|| inner.delivered().len() == 1).await);
        assert_eq!(inner.delivered()[0].1, "good");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_the_message_at_once() {
        // On this single-threaded runtime the delivery task cannot run between the two sends,
        // so the second finds the one-message queue full.
        let inner = Arc::new(Recorder::default());
        let queued = QueuedSmsSender::spawn(inner.clone(), 1);
        queued.send(&phone(1), "first").await.expect("queued");
        let refused = queued.send(&phone(2), "second").await;
        assert!(refused.is_err());

        assert!(eventually(|| inner.delivered().len() == 1).await);
        assert_eq!(inner.delivered()[0].1, "first");
        queued.send(&phone(3), "third").await.expect("room again");
        assert!(eventually(|| inner.delivered().len() == 2).await);
    }
}
