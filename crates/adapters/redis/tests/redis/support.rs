//! A key prefix of one's own for each test, and the cleanup after it.

use std::future::Future;

use deadpool_redis::redis;
use onboard_redis::Pool;

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// One test's pool and key prefix.
#[derive(Clone)]
pub struct TestRedis {
    pub pool: Pool,
    pub prefix: String,
}

impl TestRedis {
    /// Every key under this test's prefix, sorted.
    pub async fn keys(&self) -> Vec<String> {
        let mut conn = self.pool.get().await.expect("a Redis connection");
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("SCAN");
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Milliseconds before `key` expires (-1: no expiry, -2: no such key).
    pub async fn pttl(&self, key: &str) -> i64 {
        let mut conn = self.pool.get().await.expect("a Redis connection");
        redis::cmd("PTTL").arg(key).query_async(&mut conn).await.expect("PTTL")
    }

    async fn cleanup(&self) {
        let keys = self.keys().await;
        if keys.is_empty() {
            return;
        }
        let mut conn = self.pool.get().await.expect("a Redis connection");
        redis::cmd("DEL").arg(&keys).query_async::<()>(&mut conn).await.expect("DEL");
    }
}

/// Runs `test` with a fresh prefix `t-<uuid v7>:`, then deletes the prefix's keys, also when
/// the test fails.
pub async fn with_redis<F, Fut>(test: F)
where
    F: FnOnce(TestRedis) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let redis = TestRedis {
        pool: onboard_redis::pool(&redis_url(), 32).expect("a Redis pool"),
        prefix: format!("t-{}:", uuid::Uuid::now_v7()),
    };
    let outcome = tokio::spawn(test(redis.clone())).await;
    redis.cleanup().await;
    assert!(redis.keys().await.is_empty(), "the test's keys are gone");
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}
