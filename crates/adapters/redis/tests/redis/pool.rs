use crate::support::redis_url;

#[tokio::test]
async fn ping_answers_true_when_redis_is_up() {
    let pool = onboard_redis::pool(&redis_url(), 2).expect("a pool");
    assert!(onboard_redis::ping(&pool).await);
}

#[tokio::test]
async fn ping_answers_false_when_nothing_listens() {
    let pool = onboard_redis::pool("redis://127.0.0.1:1", 2).expect("a pool");
    assert!(!onboard_redis::ping(&pool).await);
}
