//! Rolling windows over the `now` the service passes in.

use chrono::{DateTime, Duration, Utc};

/// `secs` as a chrono duration, saturating instead of overflowing.
pub(crate) fn seconds(secs: u64) -> Duration {
    Duration::try_seconds(i64::try_from(secs).unwrap_or(i64::MAX)).unwrap_or(Duration::MAX)
}

/// Whole seconds from `now` until `then`, rounded up; at least 1.
pub(crate) fn secs_until(now: DateTime<Utc>, then: DateTime<Utc>) -> u64 {
    let ms = (then - now).num_milliseconds();
    u64::try_from(ms).map_or(1, |ms| ms.div_ceil(1000).max(1))
}

/// The instant `window` after `at`, or the end of time.
pub(crate) fn after(at: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    at.checked_add_signed(window).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Timestamps within a rolling window: an entry made at `t` counts while `now < t + window`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window(Vec<DateTime<Utc>>);

impl Window {
    /// Drops the entries that left the window ending at `now`; answers how many remain.
    pub(crate) fn count(&mut self, now: DateTime<Utc>, window: Duration) -> usize {
        self.0.retain(|t| after(*t, window) > now);
        self.0.len()
    }

    pub(crate) fn push(&mut self, at: DateTime<Utc>) {
        self.0.push(at);
    }

    /// Seconds until the oldest entry leaves the window (so one more fits), at least 1;
    /// the whole window when there is no entry.
    pub(crate) fn retry_after(&self, now: DateTime<Utc>, window: Duration) -> u64 {
        match self.0.iter().min() {
            Some(oldest) => secs_until(now, after(*oldest, window)),
            None => u64::try_from(window.num_seconds()).unwrap_or(1).max(1),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).single().expect("valid")
    }

    #[test]
    fn an_entry_leaves_the_window_exactly_one_window_later() {
        let mut w = Window::default();
        w.push(t(0));
        assert_eq!(w.count(t(59), seconds(60)), 1);
        assert_eq!(w.count(t(60), seconds(60)), 0);
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        let mut w = Window::default();
        w.push(t(0));
        assert_eq!(w.retry_after(t(0), seconds(60)), 60);
        assert_eq!(w.retry_after(t(0) + Duration::milliseconds(59_001), seconds(60)), 1);
        assert_eq!(secs_until(t(10), t(0)), 1);
    }

    #[test]
    fn huge_windows_saturate_instead_of_overflowing() {
        let mut w = Window::default();
        w.push(t(0));
        assert_eq!(w.count(t(1), seconds(u64::MAX)), 1);
        assert!(w.retry_after(t(1), seconds(u64::MAX)) > 0);
    }
}
