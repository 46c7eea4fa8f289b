//! The PortOne adapter against a wiremock PortOne speaking v1's real shapes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use onboard_gateway::{PortOneConfig, PortOneGateway};
use onboard_payments::gateway::{
    ChargeRequest, GatewayError, PaymentGateway, PaymentStatus, ScheduleRequest, Unscheduled,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "s3cret-imp-secret";

fn config(server: &MockServer) -> PortOneConfig {
    let mut config = PortOneConfig::new("imp_key_1", SecretString::from(SECRET), "imp12345678");
    config.base_url = server.uri();
    config.request_timeout = Duration::from_secs(5);
    config.retry_backoff = Duration::from_millis(1);
    config
}

fn gateway(server: &MockServer) -> PortOneGateway {
    PortOneGateway::new(config(server)).expect("valid config")
}

fn ok(response: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({ "code": 0, "message": null, "response": response }))
}

fn refused(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({ "code": code, "message": message, "response": null }))
}

/// `POST /users/getToken` answering `token`, valid for `secs` on PortOne's clock.
fn token_answer(token: &str, secs: i64) -> ResponseTemplate {
    let now = Utc::now().timestamp();
    ok(json!({ "access_token": token, "now": now, "expired_at": now + secs }))
}

fn get_token() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/users/getToken"))
        .and(body_json(json!({ "imp_key": "imp_key_1", "imp_secret": SECRET })))
}

fn customer(uid: &str) -> Value {
    json!({
        "customer_uid": uid,
        "pg_provider": "nice",
        "pg_id": "nictest04m",
        "card_name": "BC카드",
        "card_code": "361",
        "card_number": "910020******7012",
        "card_type": 0,
        "customer_name": null,
        "customer_tel": null,
        "customer_email": null,
        "customer_addr": null,
        "customer_postcode": null,
        "inserted": 1764200000,
        "updated": 1764200000
    })
}

fn payment(
    imp_uid: &str,
    merchant_uid: &str,
    status: &str,
    paid_at: i64,
    fail: Option<&str>,
) -> Value {
    json!({
        "imp_uid": imp_uid,
        "merchant_uid": merchant_uid,
        "customer_uid": "cust_1",
        "pay_method": "card",
        "pg_provider": "nice",
        "amount": 83380,
        "cancel_amount": 0,
        "currency": "KRW",
        "name": "Onboard Pro (monthly)",
        "card_name": "BC카드",
        "card_number": "910020******7012",
        "status": status,
        "started_at": 1764200000,
        "paid_at": paid_at,
        "failed_at": if status == "failed" { 1764200001 } else { 0 },
        "cancelled_at": 0,
        "fail_reason": fail,
        "cancel_reason": null,
        "cancel_history": []
    })
}

fn charge_request() -> ChargeRequest {
    ChargeRequest {
        customer_uid: "cust_1".into(),
        merchant_uid: "m_charge_1".into(),
        amount: 83_380,
        name: "Onboard Pro (monthly)".into(),
    }
}

#[tokio::test]
async fn a_token_is_fetched_once_and_reused_across_calls() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).expect(1).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/subscribe/customers/cust_1"))
        .and(header("authorization", "Bearer tok_1"))
        .respond_with(ok(customer("cust_1")))
        .expect(3)
        .mount(&server)
        .await;
    let gateway = gateway(&server);
    for _ in 0..3 {
        assert!(gateway.billing_key("cust_1").await.expect("answers").is_some());
    }
}

#[tokio::test]
async fn concurrent_calls_share_one_token_fetch() {
    let server = MockServer::start().await;
    get_token()
        .respond_with(token_answer("tok_1", 1800).set_delay(Duration::from_millis(100)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/subscribe/customers/cust_1"))
        .and(header("authorization", "Bearer tok_1"))
        .respond_with(ok(customer("cust_1")))
        .expect(4)
        .mount(&server)
        .await;
    let gateway = gateway(&server);
    let (a, b, c, d) = tokio::join!(
        gateway.billing_key("cust_1"),
        gateway.billing_key("cust_1"),
        gateway.billing_key("cust_1"),
        gateway.billing_key("cust_1"),
    );
    for answer in [a, b, c, d] {
        assert!(answer.expect("answers").is_some());
    }
}

#[tokio::test]
async fn a_token_near_its_expiry_is_fetched_again() {
    let server = MockServer::start().await;
    // 30 s left is inside the 60 s renewal margin: each call needs a new token.
    get_token().respond_with(token_answer("tok_short", 30)).expect(2).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/subscribe/customers/cust_1"))
        .respond_with(ok(customer("cust_1")))
        .expect(2)
        .mount(&server)
        .await;
    let gateway = gateway(&server);
    gateway.billing_key("cust_1").await.expect("answers");
    gateway.billing_key("cust_1").await.expect("answers");
}

#[tokio::test]
async fn a_call_answered_401_is_repeated_once_with_a_fresh_token() {
    let server = MockServer::start().await;
    get_token()
        .respond_with(token_answer("tok_old", 1800))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    get_token().respond_with(token_answer("tok_new", 1800)).expect(1).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/payments/imp_1"))
        .and(header("authorization", "Bearer tok_old"))
        .respond_with(refused(401, -1, "Unauthorized"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/payments/imp_1"))
        .and(header("authorization", "Bearer tok_new"))
        .respond_with(ok(payment("imp_1", "m_1", "paid", 1764200000, None)))
        .expect(1)
        .mount(&server)
        .await;
    let payment = gateway(&server).payment("imp_1").await.expect("answers").expect("known");
    assert_eq!(payment.status, PaymentStatus::Paid);
}

#[tokio::test]
async fn a_call_refused_twice_for_its_token_gives_up_with_a_refusal() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).expect(2).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/subscribe/payments/again"))
        .respond_with(refused(401, -1, "Unauthorized"))
        .expect(2)
        .mount(&server)
        .await;
    let err = gateway(&server).charge(&charge_request()).await.expect_err("unauthorized");
    assert!(matches!(err, GatewayError::Rejected { code: -1, .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_credentials_are_a_refusal() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/users/getToken"))
        .respond_with(refused(401, -1, "imp_key, imp_secret 파라메터가 누락되었습니다."))
        .expect(1)
        .mount(&server)
        .await;
    let err = gateway(&server).billing_key("cust_1").await.expect_err("no token");
    assert!(matches!(err, GatewayError::Rejected { code: -1, .. }), "{err:?}");
}

#[tokio::test]
async fn an_envelope_with_a_nonzero_code_is_an_error_even_with_http_200() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/subscribe/payments/schedule"))
        .respond_with(refused(200, 1, "이미 등록된 merchant_uid 입니다."))
        .expect(1)
        .mount(&server)
        .await;
    let request = ScheduleRequest {
        customer_uid: "cust_1".into(),
        merchant_uid: "m_1".into(),
        at: Utc::now(),
        amount: 1000,
        name: "x".into(),
    };
    let err = gateway(&server).schedule(&request).await.expect_err("refused");
    match err {
        GatewayError::Rejected { code, message } => {
            assert_eq!(code, 1);
            assert!(message.contains("merchant_uid"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn http_5xx_is_unavailable_and_a_charge_is_not_repeated() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/subscribe/payments/again"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let err = gateway(&server).charge(&charge_request()).await.expect_err("unavailable");
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn an_answer_without_portones_envelope_is_unavailable_not_absent() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    // A wrong base URL or a proxy answers 404 with a page of its own: that is not "no such key".
    Mock::given(method("GET"))
        .and(path("/subscribe/customers/cust_1"))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html>Not Found</html>"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/subscribe/payments/again"))
        .respond_with(ResponseTemplate::new(200).set_body_string("OK"))
        .mount(&server)
        .await;
    let gateway = gateway(&server);
    let err = gateway.billing_key("cust_1").await.expect_err("not PortOne");
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
    let err = gateway.charge(&charge_request()).await.expect_err("not PortOne");
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_timeout_is_unavailable() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/subscribe/payments/again"))
        .respond_with(
            ok(payment("imp_1", "m_charge_1", "paid", 1764200000, None))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.request_timeout = Duration::from_millis(300);
    let gateway = PortOneGateway::new(config).expect("valid");
    let err = gateway.charge(&charge_request()).await.expect_err("timed out");
    match err {
        GatewayError::Unavailable(why) => assert!(why.contains("timed out"), "{why}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_read_is_repeated_while_portone_is_unavailable() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/payments/imp_1"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/payments/imp_1"))
        .respond_with(ok(payment("imp_1", "m_1", "paid", 1764200000, None)))
        .expect(1)
        .mount(&server)
        .await;
    let payment = gateway(&server).payment("imp_1").await.expect("third time").expect("known");
    assert_eq!(payment.imp_uid, "imp_1");
}

#[tokio::test]
async fn a_read_gives_up_after_its_attempts() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/payments/imp_1"))
        .respond_with(ResponseTemplate::new(500))
        .expect(3)
        .mount(&server)
        .await;
    let err = gateway(&server).payment("imp_1").await.expect_err("down");
    assert!(matches!(err, GatewayError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn unscheduling_sends_the_merchant_uid_list_and_answers_cancelled() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/subscribe/payments/unschedule"))
        .and(body_json(json!({ "customer_uid": "cust_1", "merchant_uid": ["m_1"] })))
        .respond_with(ok(json!([{
            "customer_uid": "cust_1",
            "merchant_uid": "m_1",
            "imp_uid": null,
            "schedule_at": 1764200000,
            "executed_at": 0,
            "revoked_at": 1764100000,
            "amount": 83380,
            "name": "Onboard Pro (monthly)",
            "schedule_status": "revoked",
            "payment_status": null
        }])))
        .expect(1)
        .mount(&server)
        .await;
    let answer = gateway(&server).unschedule("cust_1", "m_1").await.expect("answers");
    assert_eq!(answer, Unscheduled::Cancelled);
}

#[tokio::test]
async fn unscheduling_with_nothing_to_cancel_is_not_an_error() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/subscribe/payments/unschedule"))
        .respond_with(refused(200, 1, "취소할 예약결제 기록이 존재하지 않습니다."))
        .expect(1)
        .mount(&server)
        .await;
    let answer = gateway(&server).unschedule("cust_1", "m_gone").await.expect("answers");
    assert_eq!(answer, Unscheduled::NothingToCancel);
}

#[tokio::test]
async fn a_billing_key_reads_back_with_its_masked_number() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/subscribe/customers/cust_1"))
        .respond_with(ok(customer("cust_1")))
        .mount(&server)
        .await;
    let key = gateway(&server).billing_key("cust_1").await.expect("answers").expect("exists");
    assert_eq!(key.customer_uid, "cust_1");
    assert_eq!(key.card_name, "BC카드");
    assert_eq!(key.number_masked, "910020******7012");
}

#[tokio::test]
async fn an_unknown_billing_key_is_none() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/subscribe/customers/cust_404"))
        .respond_with(refused(
            404,
            1,
            "요청하신 customer_uid(cust_404)로 등록된 정보를 찾을 수 없습니다.",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/subscribe/customers/cust_200"))
        .respond_with(refused(
            200,
            1,
            "요청하신 customer_uid(cust_200)로 등록된 정보를 찾을 수 없습니다.",
        ))
        .mount(&server)
        .await;
    let gateway = gateway(&server);
    assert_eq!(gateway.billing_key("cust_404").await.expect("answers"), None);
    assert_eq!(gateway.billing_key("cust_200").await.expect("answers"), None);
}

#[tokio::test]
async fn deleting_a_billing_key_that_is_not_there_is_not_an_error() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("DELETE"))
        .and(path("/subscribe/customers/cust_1"))
        .respond_with(ok(customer("cust_1")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/subscribe/customers/cust_gone"))
        .respond_with(refused(
            404,
            1,
            "요청하신 customer_uid(cust_gone)로 등록된 정보를 찾을 수 없습니다.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let gateway = gateway(&server);
    gateway.delete_billing_key("cust_1").await.expect("deleted");
    gateway.delete_billing_key("cust_gone").await.expect("absent is fine");
}

#[tokio::test]
async fn a_charge_is_sent_as_portone_expects_and_reads_the_payment() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/subscribe/payments/again"))
        .and(header("authorization", "Bearer tok_1"))
        .and(body_json(json!({
            "customer_uid": "cust_1",
            "merchant_uid": "m_charge_1",
            "amount": 83380,
            "name": "Onboard Pro (monthly)"
        })))
        .respond_with(ok(payment("imp_9", "m_charge_1", "paid", 1764200000, None)))
        .expect(1)
        .mount(&server)
        .await;
    let payment = gateway(&server).charge(&charge_request()).await.expect("charged");
    assert_eq!(payment.imp_uid, "imp_9");
    assert_eq!(payment.merchant_uid, "m_charge_1");
    assert_eq!(payment.customer_uid.as_deref(), Some("cust_1"));
    assert_eq!(payment.amount, 83_380);
    assert_eq!(payment.status, PaymentStatus::Paid);
    assert_eq!(payment.failure_reason, None);
    assert_eq!(payment.paid_at, DateTime::from_timestamp(1_764_200_000, 0));
}

#[tokio::test]
async fn a_declined_charge_is_a_failed_payment() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/subscribe/payments/again"))
        .respond_with(ok(payment(
            "imp_2",
            "m_charge_1",
            "failed",
            0,
            Some("[F113]거래거절 한도초과"),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let payment = gateway(&server).charge(&charge_request()).await.expect("an answer");
    assert_eq!(payment.status, PaymentStatus::Failed);
    assert_eq!(payment.failure_reason.as_deref(), Some("[F113]거래거절 한도초과"));
    assert_eq!(payment.paid_at, None);
}

#[tokio::test]
async fn a_schedule_is_sent_as_portone_expects() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/subscribe/payments/schedule"))
        .and(body_json(json!({
            "customer_uid": "cust_1",
            "schedules": [{
                "merchant_uid": "m_next",
                "schedule_at": 1767225600,
                "amount": 83380,
                "name": "Onboard Pro (monthly)"
            }]
        })))
        .respond_with(ok(json!([{
            "customer_uid": "cust_1",
            "merchant_uid": "m_next",
            "imp_uid": null,
            "schedule_at": 1767225600,
            "executed_at": 0,
            "revoked_at": 0,
            "amount": 83380,
            "name": "Onboard Pro (monthly)",
            "schedule_status": "scheduled",
            "payment_status": null
        }])))
        .expect(1)
        .mount(&server)
        .await;
    let request = ScheduleRequest {
        customer_uid: "cust_1".into(),
        merchant_uid: "m_next".into(),
        at: DateTime::from_timestamp(1_767_225_600, 0).expect("valid"),
        amount: 83_380,
        name: "Onboard Pro (monthly)".into(),
    };
    gateway(&server).schedule(&request).await.expect("scheduled");
}

#[tokio::test]
async fn an_unknown_payment_is_none() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/payments/imp_nope"))
        .respond_with(refused(404, -1, "존재하지 않는 결제정보입니다."))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(gateway(&server).payment("imp_nope").await.expect("answers"), None);
}

#[tokio::test]
async fn an_id_from_outside_cannot_change_the_path() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/payments/a%2F..%2Fusers"))
        .respond_with(refused(404, -1, "존재하지 않는 결제정보입니다."))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(gateway(&server).payment("a/../users").await.expect("answers"), None);
}

#[tokio::test]
async fn the_client_configuration_names_the_merchant_and_the_pg() {
    let server = MockServer::start().await;
    let mut config = config(&server);
    config.pg = Some("nice.nictest04m".into());
    let gateway = PortOneGateway::new(config).expect("valid");
    assert_eq!(
        gateway.client_config(),
        json!({ "merchant_id": "imp12345678", "pg": "nice.nictest04m" })
    );
}

#[tokio::test]
async fn neither_the_secret_nor_the_token_shows_in_debug_output() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_sensitive", 1800)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/subscribe/customers/cust_1"))
        .respond_with(ok(customer("cust_1")))
        .mount(&server)
        .await;
    let gateway = gateway(&server);
    gateway.billing_key("cust_1").await.expect("answers");
    let debug = format!("{gateway:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(!debug.contains("tok_sensitive"), "{debug}");
}

#[test]
fn a_base_url_that_is_not_http_is_refused() {
    let mut config = PortOneConfig::new("k", SecretString::from("s"), "imp1");
    config.base_url = "mailto:ops@example.com".into();
    assert!(PortOneGateway::new(config).is_err());
}

#[tokio::test]
async fn a_scheduled_charge_is_read_back_by_its_merchant_uid() {
    let server = MockServer::start().await;
    get_token().respond_with(token_answer("tok_1", 1800)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/payments/find/m_1"))
        .respond_with(ok(payment("imp_9", "m_1", "paid", 1764200000, None)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/payments/find/m_never"))
        .respond_with(refused(404, -1, "존재하지 않는 결제정보입니다."))
        .expect(1)
        .mount(&server)
        .await;
    let portone = gateway(&server);
    let found = portone.payment_by_merchant_uid("m_1").await.expect("answers").expect("known");
    assert_eq!((found.imp_uid.as_str(), found.merchant_uid.as_str()), ("imp_9", "m_1"));
    assert_eq!(portone.payment_by_merchant_uid("m_never").await.expect("answers"), None);
}
