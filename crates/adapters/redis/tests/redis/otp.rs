use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use onboard_kernel::PhoneNumber;
use onboard_members::model::CodeHash;
use onboard_members::ports::{IssueOutcome, OtpLimits, OtpStore, VerifyOutcome};
use onboard_redis::RedisOtpStore;

use crate::support::{TestRedis, with_redis};

const PHONE: &str = "+79174445566";

fn phone() -> PhoneNumber {
    PhoneNumber::parse(PHONE, None).expect("a valid phone")
}

fn hash(n: u8) -> CodeHash {
    CodeHash([n; 32])
}

/// Roomy limits: no resend interval, so tests can issue codes back to back.
fn limits() -> OtpLimits {
    OtpLimits {
        ttl_secs: 300,
        resend_interval_secs: 0,
        max_sends_per_hour: 100,
        max_attempts: 5,
        max_failures_per_hour: 100,
    }
}

fn store(redis: &TestRedis) -> RedisOtpStore {
    RedisOtpStore::new(redis.pool.clone(), redis.prefix.clone())
}

async fn issue(
    store: &RedisOtpStore,
    code: u8,
    now: DateTime<Utc>,
    limits: &OtpLimits,
) -> IssueOutcome {
    store.issue(&phone(), &hash(code), now, limits).await.expect("issue")
}

async fn verify(
    store: &RedisOtpStore,
    code: u8,
    now: DateTime<Utc>,
    limits: &OtpLimits,
) -> VerifyOutcome {
    store.verify(&phone(), &hash(code), now, limits).await.expect("verify")
}

#[tokio::test]
async fn the_right_code_is_valid_and_every_key_carries_the_phone_hash_tag() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let limits = OtpLimits { resend_interval_secs: 60, ..limits() };
        let now = Utc::now();
        assert_eq!(issue(&store, 1, now, &limits).await, IssueOutcome::Issued);
        assert_eq!(
            verify(&store, 2, now, &limits).await,
            VerifyOutcome::Invalid { attempts_left: 4 }
        );

        let p = &redis.prefix;
        let mut expected = vec![
            format!("{p}otp:{{{PHONE}}}:code"),
            format!("{p}otp:{{{PHONE}}}:fails"),
            format!("{p}otp:{{{PHONE}}}:next"),
            format!("{p}otp:{{{PHONE}}}:sends"),
        ];
        // This hour's traffic counters, written in the background.
        let stats = format!("{p}otp-stats:{{{}}}", now.timestamp().div_euclid(3600));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let keys = loop {
            let mut keys = redis.keys().await;
            if keys.contains(&stats) || std::time::Instant::now() > deadline {
                keys.retain(|k| k != &stats);
                break keys;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        expected.sort();
        assert_eq!(keys, expected);

        let code_ttl = redis.pttl(&format!("{p}otp:{{{PHONE}}}:code")).await;
        assert!(code_ttl > 290_000 && code_ttl <= 300_000, "code TTL {code_ttl} ms");
        let next_ttl = redis.pttl(&format!("{p}otp:{{{PHONE}}}:next")).await;
        assert!(next_ttl > 50_000 && next_ttl <= 60_000, "resend marker TTL {next_ttl} ms");

        assert_eq!(verify(&store, 1, now, &limits).await, VerifyOutcome::Valid);
    })
    .await;
}

#[tokio::test]
async fn a_new_code_is_refused_during_the_resend_interval_and_allowed_after_it() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let limits = OtpLimits { resend_interval_secs: 1, ..limits() };
        assert_eq!(issue(&store, 1, Utc::now(), &limits).await, IssueOutcome::Issued);
        assert_eq!(
            issue(&store, 2, Utc::now(), &limits).await,
            IssueOutcome::Limited { retry_after_secs: 1 }
        );
        // The refused code did not replace the first one.
        assert_eq!(verify(&store, 1, Utc::now(), &limits).await, VerifyOutcome::Valid);

        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(issue(&store, 3, Utc::now(), &limits).await, IssueOutcome::Issued);
        assert_eq!(verify(&store, 3, Utc::now(), &limits).await, VerifyOutcome::Valid);
    })
    .await;
}

#[tokio::test]
async fn the_hourly_send_cap_refuses_until_the_oldest_send_leaves_the_hour() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let limits = OtpLimits { max_sends_per_hour: 3, ..limits() };
        let t0 = Utc::now();
        let minutes = |m: i64| t0 + TimeDelta::minutes(m);
        assert_eq!(issue(&store, 1, minutes(0), &limits).await, IssueOutcome::Issued);
        assert_eq!(issue(&store, 2, minutes(10), &limits).await, IssueOutcome::Issued);
        assert_eq!(issue(&store, 3, minutes(20), &limits).await, IssueOutcome::Issued);
        assert_eq!(
            issue(&store, 4, minutes(30), &limits).await,
            IssueOutcome::Limited { retry_after_secs: 30 * 60 }
        );
        // A refused send is not counted and leaves the live code alone.
        assert_eq!(
            issue(&store, 5, minutes(59), &limits).await,
            IssueOutcome::Limited { retry_after_secs: 60 }
        );
        assert_eq!(verify(&store, 3, minutes(59), &limits).await, VerifyOutcome::Valid);

        let after_oldest = t0 + TimeDelta::minutes(60) + TimeDelta::milliseconds(1);
        assert_eq!(issue(&store, 6, after_oldest, &limits).await, IssueOutcome::Issued);
        assert_eq!(
            issue(&store, 7, after_oldest, &limits).await,
            IssueOutcome::Limited { retry_after_secs: 10 * 60 }
        );
    })
    .await;
}

#[tokio::test]
async fn a_new_code_replaces_the_old_one() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let now = Utc::now();
        assert_eq!(issue(&store, 1, now, &limits()).await, IssueOutcome::Issued);
        assert_eq!(issue(&store, 2, now, &limits()).await, IssueOutcome::Issued);
        assert_eq!(
            verify(&store, 1, now, &limits()).await,
            VerifyOutcome::Invalid { attempts_left: 4 }
        );
        assert_eq!(verify(&store, 2, now, &limits()).await, VerifyOutcome::Valid);
    })
    .await;
}

#[tokio::test]
async fn a_code_cannot_be_verified_twice() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let now = Utc::now();
        issue(&store, 1, now, &limits()).await;
        assert_eq!(verify(&store, 1, now, &limits()).await, VerifyOutcome::Valid);
        assert_eq!(verify(&store, 1, now, &limits()).await, VerifyOutcome::NoCode);
    })
    .await;
}

#[tokio::test]
async fn verifying_when_no_code_was_sent_answers_no_code_and_counts_no_failure() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let limits = OtpLimits { max_failures_per_hour: 1, ..limits() };
        let now = Utc::now();
        assert_eq!(verify(&store, 1, now, &limits).await, VerifyOutcome::NoCode);
        assert_eq!(verify(&store, 1, now, &limits).await, VerifyOutcome::NoCode);
        assert!(redis.keys().await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn wrong_guesses_count_down_and_burn_the_code_even_for_the_right_guess() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let limits = OtpLimits { max_attempts: 3, ..limits() };
        let now = Utc::now();
        issue(&store, 1, now, &limits).await;
        assert_eq!(
            verify(&store, 9, now, &limits).await,
            VerifyOutcome::Invalid { attempts_left: 2 }
        );
        assert_eq!(
            verify(&store, 9, now, &limits).await,
            VerifyOutcome::Invalid { attempts_left: 1 }
        );
        assert_eq!(verify(&store, 9, now, &limits).await, VerifyOutcome::Burned);
        assert_eq!(verify(&store, 1, now, &limits).await, VerifyOutcome::Burned);

        let code_ttl = redis.pttl(&format!("{}otp:{{{PHONE}}}:code", redis.prefix)).await;
        assert!(code_ttl > 0, "a burned code still expires with the code (PTTL {code_ttl})");

        // A new code can be sent and used.
        issue(&store, 2, now, &limits).await;
        assert_eq!(verify(&store, 2, now, &limits).await, VerifyOutcome::Valid);
    })
    .await;
}

#[tokio::test]
async fn failures_survive_a_new_code_and_lock_the_phone_for_the_rest_of_the_hour() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let limits = OtpLimits { max_failures_per_hour: 3, ..limits() };
        let t0 = Utc::now();
        issue(&store, 1, t0, &limits).await;
        assert_eq!(
            verify(&store, 9, t0, &limits).await,
            VerifyOutcome::Invalid { attempts_left: 4 }
        );
        assert_eq!(
            verify(&store, 9, t0, &limits).await,
            VerifyOutcome::Invalid { attempts_left: 3 }
        );

        // The new code starts with all its attempts, but the phone's failures stay.
        issue(&store, 2, t0, &limits).await;
        let later = t0 + TimeDelta::minutes(15);
        assert_eq!(
            verify(&store, 9, later, &limits).await,
            VerifyOutcome::Invalid { attempts_left: 4 }
        );
        let VerifyOutcome::Locked { retry_after_secs } = verify(&store, 2, later, &limits).await
        else {
            panic!("the phone should be locked after 3 failures");
        };
        assert_eq!(retry_after_secs, 45 * 60, "until the first failure is an hour old");

        // Once the first failures leave the hour, the (still live) code can be used.
        let after_hour = t0 + TimeDelta::minutes(60) + TimeDelta::seconds(1);
        assert_eq!(verify(&store, 2, after_hour, &limits).await, VerifyOutcome::Valid);
    })
    .await;
}

#[tokio::test]
async fn a_locked_phone_counts_nothing_and_checks_nothing() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let limits = OtpLimits { max_failures_per_hour: 1, max_attempts: 2, ..limits() };
        let now = Utc::now();
        issue(&store, 1, now, &limits).await;
        assert_eq!(
            verify(&store, 9, now, &limits).await,
            VerifyOutcome::Invalid { attempts_left: 1 }
        );
        for _ in 0..3 {
            assert!(matches!(verify(&store, 9, now, &limits).await, VerifyOutcome::Locked { .. }));
        }
        // The code kept its last attempt: the lock counted no attempt against it.
        let unlocked = now + TimeDelta::hours(1);
        assert_eq!(verify(&store, 1, unlocked, &limits).await, VerifyOutcome::Valid);
    })
    .await;
}

#[tokio::test]
async fn an_expired_code_answers_no_code() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let limits = OtpLimits { ttl_secs: 1, ..limits() };
        issue(&store, 1, Utc::now(), &limits).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(verify(&store, 1, Utc::now(), &limits).await, VerifyOutcome::NoCode);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_sixteen_concurrent_verifications_of_the_right_code_exactly_one_is_valid() {
    with_redis(|redis| async move {
        let store = Arc::new(store(&redis));
        let now = Utc::now();
        issue(&store, 1, now, &limits()).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let store = Arc::clone(&store);
            tasks.spawn(async move { verify(&store, 1, now, &limits()).await });
        }
        let outcomes = tasks.join_all().await;
        let valid = outcomes.iter().filter(|o| **o == VerifyOutcome::Valid).count();
        assert_eq!(valid, 1, "{outcomes:?}");
        assert!(
            outcomes.iter().all(|o| matches!(o, VerifyOutcome::Valid | VerifyOutcome::NoCode)),
            "{outcomes:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn sends_and_wrong_codes_are_counted_per_hour_for_the_last_day() {
    use onboard_admin::ports::OtpStats as _;
    with_redis(|redis| async move {
        let store = store(&redis);
        let now = Utc::now();
        let yesterday = now - TimeDelta::hours(30);
        assert_eq!(issue(&store, 1, yesterday, &limits()).await, IssueOutcome::Issued);
        assert_eq!(issue(&store, 1, now, &limits()).await, IssueOutcome::Issued);
        assert_eq!(issue(&store, 2, now, &limits()).await, IssueOutcome::Issued);
        assert!(matches!(verify(&store, 9, now, &limits()).await, VerifyOutcome::Invalid { .. }));
        assert_eq!(verify(&store, 2, now, &limits()).await, VerifyOutcome::Valid);
        assert_eq!(verify(&store, 2, now, &limits()).await, VerifyOutcome::NoCode);

        // The counts are written in the background: wait for them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let counts = loop {
            let counts = store.last_24h(now).await.expect("stats");
            if (counts.sends, counts.failures) == (2, 1) || std::time::Instant::now() > deadline {
                break counts;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        assert_eq!((counts.sends, counts.failures), (2, 1));
        let key = format!("{}otp-stats:{{{}}}", redis.prefix, now.timestamp().div_euclid(3600));
        let ttl = redis.pttl(&key).await;
        assert!(ttl > 24 * 3_600_000 && ttl <= 25 * 3_600_000, "stats TTL {ttl} ms");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_concurrent_sends_is_counted_in_full() {
    use onboard_admin::ports::OtpStats as _;
    with_redis(|redis| async move {
        let store = Arc::new(store(&redis));
        let now = Utc::now();
        let sends: Vec<_> = (0..40u32)
            .map(|n| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let phone = PhoneNumber::parse(&format!("+7917444{n:04}"), None)
                        .expect("a valid phone");
                    store.issue(&phone, &hash(1), now, &limits()).await.expect("issue")
                })
            })
            .collect();
        for send in sends {
            assert_eq!(send.await.expect("the task ran"), IssueOutcome::Issued);
        }

        // Gathered in the process, written in the background: wait for all of them.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let counts = loop {
            let counts = store.last_24h(now).await.expect("stats");
            if counts.sends >= 40 || std::time::Instant::now() > deadline {
                break counts;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!((counts.sends, counts.failures), (40, 0));
    })
    .await;
}
