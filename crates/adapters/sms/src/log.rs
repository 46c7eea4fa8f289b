//! A sender that only logs.

use std::ops::RangeInclusive;
use std::time::Duration;

use async_trait::async_trait;
use onboard_kernel::PhoneNumber;
use onboard_members::ports::SmsSender;
use rand_core::{OsRng, RngCore};

/// Logs every message at `info` level, target `onboard::sms`, with the full phone number and
/// text (it carries the code: for development only). With a delay range it first waits a
/// random time within the range, like a real provider would.
#[derive(Debug, Clone, Default)]
pub struct LogSmsSender {
    delay: Option<RangeInclusive<Duration>>,
}

impl LogSmsSender {
    /// A log sender; `delay` (for instance `1 s..=2 s`) simulates delivery time. An empty range
    /// (`start > end`) means no delay.
    pub fn new(delay: Option<RangeInclusive<Duration>>) -> Self {
        Self { delay }
    }

    fn pick_delay(&self) -> Option<Duration> {
        let range = self.delay.as_ref()?;
        let (start, end) = (*range.start(), *range.end());
        if start > end {
            return None;
        }
        let span = u64::try_from((end - start).as_micros()).unwrap_or(u64::MAX);
        let offset = match span.checked_add(1) {
            Some(n) => OsRng.next_u64() % n,
            None => OsRng.next_u64(),
        };
        Some(start.saturating_add(Duration::from_micros(offset)).min(end))
    }
}

#[async_trait]
impl SmsSender for LogSmsSender {
    async fn send(&self, to: &PhoneNumber, text: &str) -> anyhow::Result<()> {
        if let Some(delay) = self.pick_delay() {
            tokio::time::sleep(delay).await;
        }
        tracing::info!(target: "onboard::sms", to = %to, text, "SMS sent");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("+79174445566", None).expect("valid")
    }

    /// Collects formatted log lines.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_message_is_logged_with_its_phone_and_text() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        LogSmsSender::new(None).send(&phone(), "Your Onboard code: 123456").await.expect("sent");

        let logged =
            String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("utf-8");
        assert!(logged.contains("onboard::sms"), "{logged}");
        assert!(logged.contains("SMS sent"), "{logged}");
        assert!(logged.contains("to=+79174445566"), "{logged}");
        assert!(logged.contains("Your Onboard code: 123456"), "{logged}");
    }

    #[test]
    fn picked_delays_cover_the_range_and_nothing_outside_it() {
        let sender =
            LogSmsSender::new(Some(Duration::from_millis(1000)..=Duration::from_millis(2000)));
        let picks: Vec<Duration> = (0..500).filter_map(|_| sender.pick_delay()).collect();
        assert_eq!(picks.len(), 500);
        assert!(
            picks.iter().all(|d| (Duration::from_secs(1)..=Duration::from_secs(2)).contains(d))
        );
        assert!(picks.iter().any(|d| *d < Duration::from_millis(1500)));
        assert!(picks.iter().any(|d| *d > Duration::from_millis(1500)));
    }

    #[test]
    fn a_single_point_or_empty_range_is_handled() {
        let one = LogSmsSender::new(Some(Duration::from_secs(1)..=Duration::from_secs(1)));
        assert_eq!(one.pick_delay(), Some(Duration::from_secs(1)));
        #[allow(clippy::reversed_empty_ranges)]
        let empty = LogSmsSender::new(Some(Duration::from_secs(2)..=Duration::from_secs(1)));
        assert_eq!(empty.pick_delay(), None);
        let huge = LogSmsSender::new(Some(Duration::ZERO..=Duration::MAX));
        assert!(huge.pick_delay().is_some());
    }
}
