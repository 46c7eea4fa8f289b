use std::sync::Arc;

use chrono::Utc;
use onboard_redis::RedisSsoStateStore;
use onboard_sso::ports::SsoStateStore;
use onboard_sso::{IdentityClaims, LoginGrant, PendingLogin, ProviderName};

use crate::support::{TestRedis, with_redis};

fn store(redis: &TestRedis) -> RedisSsoStateStore {
    RedisSsoStateStore::new(redis.pool.clone(), redis.prefix.clone())
}

fn login() -> PendingLogin {
    PendingLogin {
        provider: ProviderName::parse("sparcs").unwrap(),
        redirect_uri: "https://app.example.com/sso".into(),
        nonce: "nonce".into(),
        pkce_verifier: "verifier".into(),
    }
}

#[tokio::test]
async fn a_pending_login_is_kept_under_a_hash_tagged_key_for_its_ttl_and_taken_once() {
    with_redis(|redis| async move {
        let store = store(&redis);
        store.put_login("d1g3st", &login(), 600, Utc::now()).await.unwrap();
        let key = format!("{}sso-state:{{d1g3st}}", redis.prefix);
        assert_eq!(redis.keys().await, vec![key.clone()]);
        let ttl = redis.pttl(&key).await;
        assert!(ttl > 590_000 && ttl <= 600_000, "TTL {ttl} ms");

        assert_eq!(store.take_login("d1g3st", Utc::now()).await.unwrap(), Some(login()));
        assert_eq!(store.take_login("d1g3st", Utc::now()).await.unwrap(), None);
        assert!(redis.keys().await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn of_concurrent_takes_of_one_login_code_exactly_one_gets_the_grant() {
    with_redis(|redis| async move {
        let store = Arc::new(store(&redis));
        let grant = LoginGrant {
            provider: ProviderName::parse("google").unwrap(),
            claims: IdentityClaims { subject: "s".into(), ..IdentityClaims::default() },
        };
        store.put_grant("code", &grant, 60, Utc::now()).await.unwrap();
        let takes = (0..16).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_grant("code", Utc::now()).await.unwrap() })
        });
        let taken: Vec<_> = futures_join(takes).await;
        assert_eq!(taken.iter().filter(|t| t.as_ref() == Some(&grant)).count(), 1);
        assert_eq!(taken.iter().filter(|t| t.is_none()).count(), 15);
    })
    .await;
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}
