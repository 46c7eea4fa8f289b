//! Billing periods and charge times.
//!
//! A period runs from its first day to the same day next month (or year) minus one day,
//! clamped to that month's end: Jan 31 → Feb 28 (Feb 29 in a leap year), Jan 15 → Feb 14,
//! Feb 29 2028 (yearly) → Feb 28 2029. The next period starts the day after. Days are
//! calendar days in the billing time zone (`BILLING_TZ`, Asia/Seoul: a fixed +09:00, since
//! Korea keeps no daylight saving time); charges run at the group's `pay_hour` there.
//!
//! As instants, a period starts when its charge runs and ends (exclusive) when the next
//! period's charge runs: at `pay_hour` of the day after its last day.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};

use crate::model::Interval;

/// The billing time zone and the hour charges run by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingClock {
    pub tz: FixedOffset,
}

impl BillingClock {
    /// Asia/Seoul (+09:00).
    pub fn seoul() -> Self {
        Self { tz: FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset") }
    }

    /// The calendar day of `at` in the billing time zone.
    pub fn day_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// `day` at `pay_hour:00` in the billing time zone.
    pub fn at_pay_hour(&self, day: NaiveDate, pay_hour: u32) -> DateTime<Utc> {
        let local =
            day.and_hms_opt(pay_hour.min(23), 0, 0).unwrap_or(day.and_time(chrono::NaiveTime::MIN));
        match self.tz.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                t.with_timezone(&Utc)
            }
            // A fixed offset has no gaps.
            chrono::LocalResult::None => local.and_utc(),
        }
    }

    /// The instant the period that starts on `first_day` ends: its next charge time.
    pub fn period_end(
        &self,
        first_day: NaiveDate,
        interval: Interval,
        pay_hour: u32,
    ) -> DateTime<Utc> {
        self.at_pay_hour(last_day(first_day, interval) + Duration::days(1), pay_hour)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1).and_then(|d| d.pred_opt()).map_or(28, |d| d.day())
}

/// The last day of the period starting on `first`: the same day next month (or year) minus
/// one day, clamped to that month's end.
pub fn last_day(first: NaiveDate, interval: Interval) -> NaiveDate {
    let (mut y, mut m) = (first.year(), first.month());
    match interval {
        Interval::Month => {
            if m == 12 {
                y += 1;
                m = 1;
            } else {
                m += 1;
            }
        }
        Interval::Year => y += 1,
    }
    let dim = days_in_month(y, m);
    if first.day() > dim {
        // The same day does not exist there: clamp to the month's end.
        NaiveDate::from_ymd_opt(y, m, dim).unwrap_or(first)
    } else {
        NaiveDate::from_ymd_opt(y, m, first.day()).and_then(|d| d.pred_opt()).unwrap_or(first)
    }
}

/// The first day of the period after the one starting on `first`.
pub fn next_first_day(first: NaiveDate, interval: Interval) -> NaiveDate {
    last_day(first, interval) + Duration::days(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("a date")
    }

    #[test]
    fn a_month_runs_to_the_day_before_the_same_day_next_month() {
        assert_eq!(last_day(d(2026, 1, 15), Interval::Month), d(2026, 2, 14));
        assert_eq!(last_day(d(2026, 1, 1), Interval::Month), d(2026, 1, 31));
        assert_eq!(last_day(d(2026, 12, 10), Interval::Month), d(2027, 1, 9));
    }

    #[test]
    fn a_month_from_the_31st_is_clamped_to_the_end_of_february() {
        assert_eq!(last_day(d(2026, 1, 31), Interval::Month), d(2026, 2, 28));
        assert_eq!(last_day(d(2028, 1, 31), Interval::Month), d(2028, 2, 29));
        assert_eq!(last_day(d(2026, 1, 30), Interval::Month), d(2026, 2, 28));
        assert_eq!(last_day(d(2026, 3, 31), Interval::Month), d(2026, 4, 30));
        assert_eq!(next_first_day(d(2026, 1, 31), Interval::Month), d(2026, 3, 1));
    }

    #[test]
    fn a_month_from_the_29th_in_a_leap_year_ends_on_the_28th_of_february() {
        assert_eq!(last_day(d(2028, 1, 29), Interval::Month), d(2028, 2, 28));
        assert_eq!(last_day(d(2026, 1, 29), Interval::Month), d(2026, 2, 28));
        assert_eq!(last_day(d(2028, 2, 29), Interval::Month), d(2028, 3, 28));
    }

    #[test]
    fn a_year_from_a_leap_day_is_clamped_to_the_end_of_february() {
        assert_eq!(last_day(d(2028, 2, 29), Interval::Year), d(2029, 2, 28));
        assert_eq!(next_first_day(d(2028, 2, 29), Interval::Year), d(2029, 3, 1));
        assert_eq!(last_day(d(2026, 11, 27), Interval::Year), d(2027, 11, 26));
        assert_eq!(last_day(d(2027, 3, 1), Interval::Year), d(2028, 2, 29));
    }

    #[test]
    fn charges_run_at_the_pay_hour_in_seoul() {
        let clock = BillingClock::seoul();
        let at = clock.at_pay_hour(d(2026, 12, 1), 10);
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 12, 1, 1, 0, 0).single().expect("a time"));
        // 23:30 UTC on Nov 30 is already Dec 1 in Seoul.
        assert_eq!(
            clock.day_of(Utc.with_ymd_and_hms(2026, 11, 30, 23, 30, 0).single().expect("a time")),
            d(2026, 12, 1)
        );
        assert_eq!(
            clock.period_end(d(2026, 1, 31), Interval::Month, 10),
            Utc.with_ymd_and_hms(2026, 3, 1, 1, 0, 0).single().expect("a time")
        );
    }
}
