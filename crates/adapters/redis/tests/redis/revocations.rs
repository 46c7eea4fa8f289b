use onboard_kernel::{MemberId, SessionId};
use onboard_members::ports::RevocationList;
use onboard_redis::RedisRevocationList;

use crate::support::{TestRedis, with_redis};

fn list(redis: &TestRedis) -> RedisRevocationList {
    RedisRevocationList::new(redis.pool.clone(), redis.prefix.clone())
}

#[tokio::test]
async fn revoked_sessions_are_refused_and_others_are_not() {
    with_redis(|redis| async move {
        let list = list(&redis);
        let member = MemberId::new();
        let (s1, s2, s3) = (SessionId::new(), SessionId::new(), SessionId::new());
        list.revoke_sessions(member, &[s1, s2], 900).await.unwrap();

        assert!(list.is_revoked(member, s1, 1_000).await.unwrap());
        assert!(list.is_revoked(member, s2, i64::MAX).await.unwrap());
        assert!(!list.is_revoked(member, s3, 1_000).await.unwrap());
        // The same session id under another member is not revoked.
        assert!(!list.is_revoked(MemberId::new(), s1, 1_000).await.unwrap());

        let p = &redis.prefix;
        let mut expected =
            vec![format!("{p}rev:{{{member}}}:s:{s1}"), format!("{p}rev:{{{member}}}:s:{s2}")];
        expected.sort();
        assert_eq!(redis.keys().await, expected, "keys carry the member as hash tag");
        let ttl = redis.pttl(&expected[0]).await;
        assert!(ttl > 890_000 && ttl <= 900_000, "TTL {ttl} ms");
    })
    .await;
}

#[tokio::test]
async fn revoking_no_sessions_writes_nothing() {
    with_redis(|redis| async move {
        list(&redis).revoke_sessions(MemberId::new(), &[], 900).await.unwrap();
        assert!(redis.keys().await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn revoking_a_member_refuses_tokens_issued_at_or_before_that_time() {
    with_redis(|redis| async move {
        let list = list(&redis);
        let member = MemberId::new();
        let session = SessionId::new();
        list.revoke_member(member, 1_000, 900).await.unwrap();

        assert!(list.is_revoked(member, session, 999).await.unwrap());
        assert!(list.is_revoked(member, session, 1_000).await.unwrap());
        assert!(!list.is_revoked(member, session, 1_001).await.unwrap());
        assert!(!list.is_revoked(MemberId::new(), session, 999).await.unwrap());

        let key = format!("{}rev:{{{member}}}:all", redis.prefix);
        assert_eq!(redis.keys().await, vec![key.clone()]);
        let ttl = redis.pttl(&key).await;
        assert!(ttl > 890_000 && ttl <= 900_000, "TTL {ttl} ms");
    })
    .await;
}

#[tokio::test]
async fn a_member_revocation_keeps_the_latest_time() {
    with_redis(|redis| async move {
        let list = list(&redis);
        let member = MemberId::new();
        let session = SessionId::new();
        list.revoke_member(member, 1_000, 900).await.unwrap();
        list.revoke_member(member, 500, 900).await.unwrap();
        assert!(
            list.is_revoked(member, session, 1_000).await.unwrap(),
            "an earlier time does not shrink it"
        );

        list.revoke_member(member, 2_000, 900).await.unwrap();
        assert!(list.is_revoked(member, session, 2_000).await.unwrap());
        assert!(!list.is_revoked(member, session, 2_001).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn a_session_revocation_holds_whatever_the_token_issue_time() {
    with_redis(|redis| async move {
        let list = list(&redis);
        let member = MemberId::new();
        let session = SessionId::new();
        list.revoke_member(member, 1_000, 900).await.unwrap();
        list.revoke_sessions(member, &[session], 900).await.unwrap();
        assert!(list.is_revoked(member, session, 5_000).await.unwrap());
        assert!(!list.is_revoked(member, SessionId::new(), 5_000).await.unwrap());
    })
    .await;
}
