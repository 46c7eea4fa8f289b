use std::sync::Arc;
use std::time::Duration;

use onboard_invites::ports::InviteCodeStore;
use onboard_invites::{InviteCode, InviteId};
use onboard_redis::RedisInviteCodeStore;

use crate::support::{TestRedis, with_redis};

fn store(redis: &TestRedis) -> RedisInviteCodeStore {
    RedisInviteCodeStore::new(redis.pool.clone(), redis.prefix.clone())
}

fn code_key(redis: &TestRedis, code: &InviteCode) -> String {
    format!("{}invite:{{{code}}}", redis.prefix)
}

fn invite_key(redis: &TestRedis, invite: InviteId) -> String {
    format!("{}invite:{{{invite}}}:code", redis.prefix)
}

#[tokio::test]
async fn a_code_names_its_invite_under_keys_with_hash_tags_and_the_ttl() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 259_200).await.unwrap();

        assert_eq!(store.get(&code).await.unwrap(), Some(invite));
        let mut expected = vec![code_key(&redis, &code), invite_key(&redis, invite)];
        expected.sort();
        assert_eq!(redis.keys().await, expected);
        for key in &expected {
            let ttl = redis.pttl(key).await;
            assert!(ttl > 259_190_000 && ttl <= 259_200_000, "{key}: TTL {ttl} ms");
        }
    })
    .await;
}

#[tokio::test]
async fn an_unknown_code_names_no_invite() {
    with_redis(|redis| async move {
        let store = store(&redis);
        store.put(&InviteCode::generate(), InviteId::new(), 60).await.unwrap();

        assert_eq!(store.get(&InviteCode::generate()).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_code_is_consumed_once_and_then_names_nothing() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 60).await.unwrap();

        assert!(store.consume(&code, invite).await.unwrap());
        assert!(!store.consume(&code, invite).await.unwrap());
        assert_eq!(store.get(&code).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_code_is_not_consumed_for_another_invite() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 60).await.unwrap();

        assert!(!store.consume(&code, InviteId::new()).await.unwrap());
        assert_eq!(store.get(&code).await.unwrap(), Some(invite));
    })
    .await;
}

#[tokio::test]
async fn of_eight_concurrent_consumes_exactly_one_wins() {
    with_redis(|redis| async move {
        let store = Arc::new(store(&redis));
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 60).await.unwrap();

        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (store, code) = (Arc::clone(&store), code.clone());
                tokio::spawn(async move { store.consume(&code, invite).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for racer in racers {
            wins += usize::from(racer.await.unwrap());
        }

        assert_eq!(wins, 1);
        assert_eq!(store.get(&code).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_restored_code_works_again_for_the_time_it_was_given() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 3600).await.unwrap();
        assert!(store.consume(&code, invite).await.unwrap());

        store.restore(&code, invite, 100).await.unwrap();

        assert_eq!(store.get(&code).await.unwrap(), Some(invite));
        let ttl = redis.pttl(&code_key(&redis, &code)).await;
        assert!(ttl > 90_000 && ttl <= 100_000, "TTL {ttl} ms");
        assert!(store.consume(&code, invite).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn a_restore_does_not_overwrite_a_live_code() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 3600).await.unwrap();

        store.restore(&code, InviteId::new(), 100).await.unwrap();

        assert_eq!(store.get(&code).await.unwrap(), Some(invite));
        let ttl = redis.pttl(&code_key(&redis, &code)).await;
        assert!(ttl > 3_590_000, "TTL {ttl} ms");
    })
    .await;
}

#[tokio::test]
async fn deleting_an_invites_code_kills_it_at_once_and_spares_the_others() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        let (other_code, other) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 60).await.unwrap();
        store.put(&other_code, other, 60).await.unwrap();

        store.delete(invite).await.unwrap();

        assert_eq!(store.get(&code).await.unwrap(), None);
        assert!(!store.consume(&code, invite).await.unwrap());
        assert_eq!(store.get(&other_code).await.unwrap(), Some(other));
        let mut expected = vec![code_key(&redis, &other_code), invite_key(&redis, other)];
        expected.sort();
        assert_eq!(redis.keys().await, expected);
    })
    .await;
}

#[tokio::test]
async fn deleting_is_idempotent_and_harmless_after_a_consume() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 60).await.unwrap();
        assert!(store.consume(&code, invite).await.unwrap());

        store.delete(invite).await.unwrap();
        store.delete(invite).await.unwrap();
        store.delete(InviteId::new()).await.unwrap();

        assert!(redis.keys().await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn codes_expire_with_their_ttl_and_a_zero_ttl_is_one_second() {
    with_redis(|redis| async move {
        let store = store(&redis);
        let (code, invite) = (InviteCode::generate(), InviteId::new());
        store.put(&code, invite, 0).await.unwrap();
        let ttl = redis.pttl(&code_key(&redis, &code)).await;
        assert!(ttl > 0 && ttl <= 1000, "TTL {ttl} ms");

        tokio::time::sleep(Duration::from_millis(1100)).await;

        assert_eq!(store.get(&code).await.unwrap(), None);
        assert!(!store.consume(&code, invite).await.unwrap());
        assert!(redis.keys().await.is_empty());
    })
    .await;
}
