use std::sync::Arc;

use chrono::TimeZone;

use super::*;

fn limits() -> OtpLimits {
    OtpLimits {
        ttl_secs: 300,
        resend_interval_secs: 60,
        max_sends_per_hour: 5,
        max_attempts: 5,
        max_failures_per_hour: 10,
    }
}

/// `s` seconds after a fixed start.
fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid") + Duration::seconds(s)
}

fn phone() -> PhoneNumber {
    PhoneNumber::parse("+79174445566", None).expect("valid")
}

fn code(n: u8) -> CodeHash {
    CodeHash([n; 32])
}

async fn issue(store: &MemoryOtpStore, c: u8, at: i64) -> IssueOutcome {
    store.issue(&phone(), &code(c), t(at), &limits()).await.expect("issues")
}

async fn verify(store: &MemoryOtpStore, c: u8, at: i64) -> VerifyOutcome {
    store.verify(&phone(), &code(c), t(at), &limits()).await.expect("verifies")
}

#[tokio::test]
async fn a_code_can_be_verified_once() {
    let store = MemoryOtpStore::new();
    assert_eq!(issue(&store, 1, 0).await, IssueOutcome::Issued);
    assert_eq!(verify(&store, 1, 10).await, VerifyOutcome::Valid);
    assert_eq!(verify(&store, 1, 11).await, VerifyOutcome::NoCode);
}

#[tokio::test]
async fn a_phone_without_a_code_has_no_code() {
    let store = MemoryOtpStore::new();
    assert_eq!(verify(&store, 1, 0).await, VerifyOutcome::NoCode);
}

#[tokio::test]
async fn a_wrong_code_counts_one_attempt() {
    let store = MemoryOtpStore::new();
    issue(&store, 1, 0).await;
    assert_eq!(verify(&store, 2, 1).await, VerifyOutcome::Invalid { attempts_left: 4 });
    assert_eq!(verify(&store, 2, 2).await, VerifyOutcome::Invalid { attempts_left: 3 });
    assert_eq!(verify(&store, 1, 3).await, VerifyOutcome::Valid);
}

#[tokio::test]
async fn a_hash_differing_in_one_byte_does_not_match() {
    let store = MemoryOtpStore::new();
    issue(&store, 1, 0).await;
    let mut near = code(1);
    near.0[31] = 0;
    let outcome = store.verify(&phone(), &near, t(1), &limits()).await.expect("verifies");
    assert_eq!(outcome, VerifyOutcome::Invalid { attempts_left: 4 });
}

#[tokio::test]
async fn the_miss_that_reaches_max_attempts_burns_the_code_until_a_new_one() {
    let store = MemoryOtpStore::new();
    issue(&store, 1, 0).await;
    for left in (1..=4).rev() {
        assert_eq!(verify(&store, 2, 1).await, VerifyOutcome::Invalid { attempts_left: left });
    }
    assert_eq!(verify(&store, 2, 2).await, VerifyOutcome::Burned);
    assert_eq!(verify(&store, 1, 3).await, VerifyOutcome::Burned, "the right code is burned too");
    assert_eq!(issue(&store, 3, 60).await, IssueOutcome::Issued);
    assert_eq!(verify(&store, 3, 61).await, VerifyOutcome::Valid);
}

#[tokio::test]
async fn a_burned_code_that_expires_is_no_code() {
    let store = MemoryOtpStore::new();
    issue(&store, 1, 0).await;
    for _ in 0..5 {
        verify(&store, 2, 1).await;
    }
    assert_eq!(verify(&store, 1, 299).await, VerifyOutcome::Burned);
    assert_eq!(verify(&store, 1, 300).await, VerifyOutcome::NoCode);
}

#[tokio::test]
async fn a_code_expires_after_its_ttl() {
    let store = MemoryOtpStore::new();
    issue(&store, 1, 0).await;
    assert_eq!(verify(&store, 2, 299).await, VerifyOutcome::Invalid { attempts_left: 4 });
    assert_eq!(verify(&store, 1, 300).await, VerifyOutcome::NoCode);
}

#[tokio::test]
async fn a_new_code_replaces_the_old_one_with_fresh_attempts() {
    let store = MemoryOtpStore::new();
    issue(&store, 1, 0).await;
    verify(&store, 9, 1).await;
    verify(&store, 9, 2).await;
    assert_eq!(issue(&store, 2, 60).await, IssueOutcome::Issued);
    assert_eq!(verify(&store, 1, 61).await, VerifyOutcome::Invalid { attempts_left: 4 });
    assert_eq!(verify(&store, 2, 62).await, VerifyOutcome::Valid);
}

#[tokio::test]
async fn a_new_code_within_the_resend_interval_is_refused() {
    let store = MemoryOtpStore::new();
    issue(&store, 1, 0).await;
    assert_eq!(issue(&store, 2, 0).await, IssueOutcome::Limited { retry_after_secs: 60 });
    assert_eq!(issue(&store, 2, 30).await, IssueOutcome::Limited { retry_after_secs: 30 });
    assert_eq!(
        verify(&store, 1, 31).await,
        VerifyOutcome::Valid,
        "a refused issue changes nothing"
    );
    assert_eq!(issue(&store, 2, 60).await, IssueOutcome::Issued);
}

#[tokio::test]
async fn sends_are_capped_per_rolling_hour() {
    let store = MemoryOtpStore::new();
    for n in 0..5 {
        assert_eq!(issue(&store, 1, n * 60).await, IssueOutcome::Issued);
    }
    assert_eq!(issue(&store, 2, 300).await, IssueOutcome::Limited { retry_after_secs: 3300 });
    assert_eq!(issue(&store, 2, 3599).await, IssueOutcome::Limited { retry_after_secs: 1 });
    assert_eq!(issue(&store, 2, 3600).await, IssueOutcome::Issued, "the first send left the hour");
    assert_eq!(issue(&store, 3, 3659).await, IssueOutcome::Limited { retry_after_secs: 1 });
    assert_eq!(issue(&store, 3, 3660).await, IssueOutcome::Issued, "the second send left too");
}

#[tokio::test]
async fn the_resend_interval_is_the_wait_while_it_runs_then_the_hourly_cap() {
    let limits = OtpLimits { max_sends_per_hour: 1, resend_interval_secs: 60, ..limits() };
    let store = MemoryOtpStore::new();
    store.issue(&phone(), &code(1), t(0), &limits).await.expect("issues");
    let outcome = store.issue(&phone(), &code(2), t(10), &limits).await.expect("issues");
    assert_eq!(outcome, IssueOutcome::Limited { retry_after_secs: 50 });
    let outcome = store.issue(&phone(), &code(2), t(60), &limits).await.expect("issues");
    assert_eq!(outcome, IssueOutcome::Limited { retry_after_secs: 3540 });
}

#[tokio::test]
async fn failures_lock_the_phone_and_a_new_code_does_not_reset_them() {
    let store = MemoryOtpStore::new();
    issue(&store, 1, 0).await;
    for _ in 0..5 {
        verify(&store, 9, 0).await;
    }
    issue(&store, 2, 60).await;
    for _ in 0..4 {
        verify(&store, 9, 60).await;
    }
    assert_eq!(verify(&store, 9, 60).await, VerifyOutcome::Burned, "the tenth failure");
    issue(&store, 3, 120).await;
    assert_eq!(verify(&store, 3, 121).await, VerifyOutcome::Locked { retry_after_secs: 3479 });
}

#[tokio::test]
async fn a_locked_phone_checks_and_counts_nothing_until_failures_leave_the_hour() {
    let limits = OtpLimits { ttl_secs: 7200, max_attempts: 100, ..limits() };
    let store = MemoryOtpStore::new();
    store.issue(&phone(), &code(1), t(0), &limits).await.expect("issues");
    let verify = |c: u8, at: i64| {
        let store = &store;
        async move { store.verify(&phone(), &code(c), t(at), &limits).await.expect("verifies") }
    };
    for n in 0..10 {
        assert_eq!(verify(9, n).await, VerifyOutcome::Invalid { attempts_left: 99 - n as u32 });
    }
    assert_eq!(verify(1, 100).await, VerifyOutcome::Locked { retry_after_secs: 3500 });
    for _ in 0..50 {
        assert_eq!(verify(9, 200).await, VerifyOutcome::Locked { retry_after_secs: 3400 });
    }
    // Only the first failure has left the hour: one more miss locks again, and the code,
    // untouched while locked, still has its attempts.
    assert_eq!(verify(9, 3600).await, VerifyOutcome::Invalid { attempts_left: 89 });
    assert_eq!(verify(1, 3600).await, VerifyOutcome::Locked { retry_after_secs: 1 });
    assert_eq!(verify(1, 3601).await, VerifyOutcome::Valid);
}

#[tokio::test]
async fn misses_without_a_live_code_count_no_failure() {
    let store = MemoryOtpStore::new();
    for _ in 0..20 {
        assert_eq!(verify(&store, 9, 0).await, VerifyOutcome::NoCode);
    }
    issue(&store, 1, 0).await;
    assert_eq!(verify(&store, 1, 1).await, VerifyOutcome::Valid);
}

#[tokio::test]
async fn phones_do_not_share_codes_or_limits() {
    let store = MemoryOtpStore::new();
    let other = PhoneNumber::parse("+821012345678", None).expect("valid");
    issue(&store, 1, 0).await;
    assert_eq!(
        store.issue(&other, &code(2), t(0), &limits()).await.expect("issues"),
        IssueOutcome::Issued
    );
    assert_eq!(
        store.verify(&other, &code(1), t(1), &limits()).await.expect("verifies"),
        VerifyOutcome::Invalid { attempts_left: 4 }
    );
    assert_eq!(verify(&store, 1, 1).await, VerifyOutcome::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_concurrent_matching_verifications_exactly_one_succeeds() {
    let store = Arc::new(MemoryOtpStore::new());
    issue(&store, 1, 0).await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { verify(&store, 1, 1).await })
        })
        .collect();
    let mut valid = 0;
    for task in tasks {
        match task.await.expect("no panic") {
            VerifyOutcome::Valid => valid += 1,
            other => assert_eq!(other, VerifyOutcome::NoCode),
        }
    }
    assert_eq!(valid, 1);
}

#[tokio::test]
async fn idle_phones_are_forgotten() {
    let store = MemoryOtpStore::new();
    issue(&store, 1, 0).await;
    assert_eq!(verify(&store, 1, 1).await, VerifyOutcome::Valid);
    assert_eq!(store.inner().phones.len(), 1, "the send still counts for the hour");
    assert_eq!(verify(&store, 1, 3600).await, VerifyOutcome::NoCode);
    assert!(store.inner().phones.is_empty());
}
