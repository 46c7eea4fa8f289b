use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use onboard_members::ports::{RateDecision, RateLimiter};
use onboard_redis::RedisRateLimiter;

use crate::support::{TestRedis, with_redis};

fn limiter(redis: &TestRedis) -> RedisRateLimiter {
    RedisRateLimiter::new(redis.pool.clone(), redis.prefix.clone())
}

#[tokio::test]
async fn the_limiter_allows_the_limit_then_refuses_until_the_oldest_hit_leaves_the_window() {
    with_redis(|redis| async move {
        let limiter = limiter(&redis);
        let t0 = Utc::now();
        let at = |secs: i64| t0 + TimeDelta::seconds(secs);
        for secs in [0, 10, 20] {
            assert_eq!(limiter.hit("ip:1", 3, 60, at(secs)).await.unwrap(), RateDecision::Allowed);
        }
        assert_eq!(
            limiter.hit("ip:1", 3, 60, at(30)).await.unwrap(),
            RateDecision::Limited { retry_after_secs: 30 }
        );
        // Other keys have their own windows.
        assert_eq!(limiter.hit("ip:2", 3, 60, at(30)).await.unwrap(), RateDecision::Allowed);

        let after_first = t0 + TimeDelta::milliseconds(60_001);
        assert_eq!(limiter.hit("ip:1", 3, 60, after_first).await.unwrap(), RateDecision::Allowed);
        assert_eq!(
            limiter.hit("ip:1", 3, 60, after_first).await.unwrap(),
            RateDecision::Limited { retry_after_secs: 10 }
        );

        let key = format!("{}rl:{{ip:1}}", redis.prefix);
        assert!(redis.keys().await.contains(&key), "the counter carries the key as hash tag");
        let ttl = redis.pttl(&key).await;
        assert!(ttl > 0 && ttl <= 60_000, "the counter expires with the window ({ttl} ms)");
    })
    .await;
}

#[tokio::test]
async fn refused_hits_are_not_counted() {
    with_redis(|redis| async move {
        let limiter = limiter(&redis);
        let t0 = Utc::now();
        assert_eq!(limiter.hit("k", 2, 10, t0).await.unwrap(), RateDecision::Allowed);
        assert_eq!(limiter.hit("k", 2, 10, t0).await.unwrap(), RateDecision::Allowed);
        for secs in 1..=9 {
            let refused = limiter.hit("k", 2, 10, t0 + TimeDelta::seconds(secs)).await.unwrap();
            assert!(matches!(refused, RateDecision::Limited { .. }), "{refused:?}");
        }
        // Both counted hits leave the window; the nine refused ones never entered it.
        let later = t0 + TimeDelta::seconds(10);
        assert_eq!(limiter.hit("k", 2, 10, later).await.unwrap(), RateDecision::Allowed);
        assert_eq!(limiter.hit("k", 2, 10, later).await.unwrap(), RateDecision::Allowed);
    })
    .await;
}

#[tokio::test]
async fn a_refusal_asks_to_wait_at_least_one_second() {
    with_redis(|redis| async move {
        let limiter = limiter(&redis);
        let t0 = Utc::now();
        assert_eq!(limiter.hit("k", 1, 1, t0).await.unwrap(), RateDecision::Allowed);
        assert_eq!(
            limiter.hit("k", 1, 1, t0 + TimeDelta::milliseconds(999)).await.unwrap(),
            RateDecision::Limited { retry_after_secs: 1 }
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_fifty_concurrent_hits_with_a_limit_of_twenty_exactly_twenty_are_allowed() {
    with_redis(|redis| async move {
        let limiter = Arc::new(limiter(&redis));
        let now = Utc::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let limiter = Arc::clone(&limiter);
            tasks.spawn(async move { limiter.hit("burst", 20, 60, now).await.unwrap() });
        }
        let decisions = tasks.join_all().await;
        let allowed = decisions.iter().filter(|d| **d == RateDecision::Allowed).count();
        assert_eq!(allowed, 20, "{decisions:?}");
    })
    .await;
}
