//! The SENS client against a stand-in SENS (wiremock) answering with SENS's own shapes.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use onboard_kernel::PhoneNumber;
use onboard_sms::sens::{AlimtalkStatus, signature};
use onboard_sms::{AlimtalkSettings, ProviderError, SensClient, SensSettings, TextKind};
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::matchers::{body_json, header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SMS_SERVICE: &str = "ncp:sms:kr:256123456789:onboard";
const ALIMTALK_SERVICE: &str = "ncp:kkobizmsg:kr:123:onboard";

fn client(server: &MockServer) -> SensClient {
    SensClient::new(SensSettings {
        api_url: server.uri(),
        access_key: "AKIDEXAMPLE".to_owned(),
        secret_key: "SECRETEXAMPLE".to_owned().into(),
        sms_service_id: SMS_SERVICE.to_owned(),
        from: "0212345678".to_owned(),
        alimtalk: Some(AlimtalkSettings {
            service_id: ALIMTALK_SERVICE.to_owned(),
            plus_friend_id: "@onboard".to_owned(),
        }),
        timeout: Duration::from_millis(500),
    })
    .expect("a client")
}

fn kr_phone() -> PhoneNumber {
    PhoneNumber::parse("+821012345678", None).expect("valid")
}

fn accepted() -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({
        "requestId": "RSSA-1505709880500-2046-16447117-BJbXXbna",
        "requestTime": "2026-11-27T09:00:00.000",
        "statusCode": "202",
        "statusName": "success",
    }))
}

/// The signature recomputed here with the HMAC primitives, not with the client's code.
fn expected_signature(request: &Request) -> String {
    let timestamp = request.headers["x-ncp-apigw-timestamp"].to_str().expect("ascii");
    let message = format!("{} {}\n{timestamp}\nAKIDEXAMPLE", request.method, request.url.path());
    let mut mac = Hmac::<Sha256>::new_from_slice(b"SECRETEXAMPLE").expect("any key");
    mac.update(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn the_signature_matches_vectors_computed_independently() {
    // Computed with Python's hmac and base64 modules.
    assert_eq!(
        signature(
            "SECRETEXAMPLE",
            "POST",
            "/sms/v2/services/ncp:sms:kr:256123456789:onboard/messages",
            "1505709880500",
            "AKIDEXAMPLE",
        ),
        "caprVn5Hul+aXbm9ZuW3yBEuRieihTdXCnNrGDlN+EI="
    );
    assert_eq!(
        signature(
            "SECRETEXAMPLE",
            "GET",
            "/alimtalk/v2/services/ncp:kkobizmsg:kr:123:onboard/messages/abc-1",
            "1700000000000",
            "AKIDEXAMPLE",
        ),
        "CYwzLHb32TquY/ZBJrJZAnabasmMnrQkLCjqufKBMJs="
    );
}

#[tokio::test]
async fn an_sms_goes_to_the_sms_service_signed_and_shaped_as_sens_expects() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/sms/v2/services/{SMS_SERVICE}/messages")))
        .and(header_exists("x-ncp-apigw-timestamp"))
        .and(body_json(json!({
            "type": "SMS",
            "contentType": "COMM",
            "countryCode": "82",
            "from": "0212345678",
            "content": "Onboard code 123456",
            "messages": [{"to": "01012345678"}],
        })))
        .respond_with(accepted())
        .expect(1)
        .mount(&server)
        .await;

    let sent = client(&server).send_text(&kr_phone(), "Onboard code 123456").await.expect("sent");
    assert_eq!(sent.kind, TextKind::Sms);
    assert_eq!(sent.request_id, "RSSA-1505709880500-2046-16447117-BJbXXbna");

    let requests = server.received_requests().await.expect("recorded");
    let request = &requests[0];
    assert_eq!(request.headers["x-ncp-iam-access-key"], "AKIDEXAMPLE");
    assert_eq!(request.headers["x-ncp-apigw-signature-v2"], expected_signature(request).as_str());
    let timestamp: u128 =
        request.headers["x-ncp-apigw-timestamp"].to_str().unwrap().parse().expect("milliseconds");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    assert!(now.as_millis().abs_diff(timestamp) < 60_000, "the timestamp is in milliseconds");
}

#[tokio::test]
async fn a_text_over_ninety_bytes_goes_as_lms_and_a_foreign_number_keeps_its_country_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(accepted()).mount(&server).await;
    let text = "가".repeat(46);
    let us = PhoneNumber::parse("+12025550143", None).expect("valid");
    let sent = client(&server).send_text(&us, &text).await.expect("sent");
    assert_eq!(sent.kind, TextKind::Lms);

    let body: Value = server.received_requests().await.unwrap()[0].body_json().expect("json");
    assert_eq!(body["type"], "LMS");
    assert_eq!(body["countryCode"], "1");
    assert_eq!(body["messages"][0]["to"], "2025550143");
    assert_eq!(body["content"], text);
}

#[tokio::test]
async fn a_text_too_long_for_an_lms_is_refused_without_a_request() {
    let server = MockServer::start().await;
    let error = client(&server).send_text(&kr_phone(), &"a".repeat(2001)).await.unwrap_err();
    assert!(matches!(error, ProviderError::TooLong(_)), "{error:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_authentication_failure_is_a_refusal_and_a_server_error_is_unavailability() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"errorCode": "200", "message": "Authentication Failed",
                      "details": "Invalid authentication information."}
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let sens = client(&server);

    match sens.send_text(&kr_phone(), "hi").await.unwrap_err() {
        ProviderError::Rejected { code, message } => {
            assert_eq!(code, "http_401");
            assert!(message.contains("Authentication Failed"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        sens.send_text(&kr_phone(), "hi").await.unwrap_err(),
        ProviderError::Unavailable(_)
    ));
}

#[tokio::test]
async fn a_provider_slower_than_the_timeout_is_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(accepted().set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let error = client(&server).send_text(&kr_phone(), "hi").await.unwrap_err();
    assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn an_alimtalk_is_sent_from_the_channel_with_its_template_and_no_sens_failover() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/alimtalk/v2/services/{ALIMTALK_SERVICE}/messages")))
        .and(body_json(json!({
            "plusFriendId": "@onboard",
            "templateCode": "WELCOME01",
            "messages": [{"countryCode": "82", "to": "01012345678",
                          "content": "환영합니다", "useSmsFailover": false}],
        })))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "requestId": "req-1",
            "requestTime": "2026-11-27T09:00:00.000",
            "statusCode": "202",
            "statusName": "success",
            "messages": [{"messageId": "msg-1", "countryCode": "82", "to": "01012345678",
                          "content": "환영합니다", "requestStatusCode": "A000",
                          "requestStatusName": "success", "requestStatusDesc": "성공",
                          "useSmsFailover": false}],
        })))
        .expect(1)
        .mount(&server)
        .await;

    let sent =
        client(&server).send_alimtalk(&kr_phone(), "WELCOME01", "환영합니다").await.expect("sent");
    assert_eq!((sent.request_id.as_str(), sent.message_id.as_str()), ("req-1", "msg-1"));
    let request = &server.received_requests().await.unwrap()[0];
    assert_eq!(request.headers["x-ncp-apigw-signature-v2"], expected_signature(request).as_str());
}

#[tokio::test]
async fn an_alimtalk_refused_at_request_time_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "requestId": "req-2", "requestTime": "2026-11-27T09:00:00.000",
            "statusCode": "202", "statusName": "success",
            "messages": [{"messageId": "msg-2", "requestStatusCode": "A012",
                          "requestStatusName": "fail",
                          "requestStatusDesc": "템플릿이 존재하지 않습니다"}],
        })))
        .mount(&server)
        .await;
    match client(&server).send_alimtalk(&kr_phone(), "NOPE", "x").await.unwrap_err() {
        ProviderError::Rejected { code, .. } => assert_eq!(code, "A012"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn result(message_status: Option<(&str, &str)>) -> ResponseTemplate {
    let mut body = json!({
        "requestId": "req-1", "messageId": "msg-1",
        "requestTime": "2026-11-27T09:00:00.000", "plusFriendId": "@onboard",
        "templateCode": "WELCOME01", "countryCode": "82", "to": "01012345678",
        "content": "환영합니다", "requestStatusCode": "A000", "requestStatusName": "success",
        "requestStatusDesc": "성공", "useSmsFailover": false,
    });
    if let Some((code, name)) = message_status {
        body["messageStatusCode"] = json!(code);
        body["messageStatusName"] = json!(name);
        body["messageStatusDesc"] =
            json!(if code == "3018" { "메시지를 전송할 수 없음" } else { "" });
    }
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn alimtalk_status_reads_not_yet_then_delivered_or_failed_with_the_code() {
    let server = MockServer::start().await;
    let at = |id: &str| path(format!("/alimtalk/v2/services/{ALIMTALK_SERVICE}/messages/{id}"));
    Mock::given(method("GET")).and(at("pending")).respond_with(result(None)).mount(&server).await;
    Mock::given(method("GET"))
        .and(at("processing"))
        .respond_with(result(Some(("", "processing"))))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(at("delivered"))
        .respond_with(result(Some(("0000", "success"))))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(at("blocked"))
        .respond_with(result(Some(("3018", "fail"))))
        .mount(&server)
        .await;
    let sens = client(&server);

    assert_eq!(sens.alimtalk_status("pending").await.unwrap(), AlimtalkStatus::Pending);
    assert_eq!(sens.alimtalk_status("processing").await.unwrap(), AlimtalkStatus::Pending);
    assert_eq!(sens.alimtalk_status("delivered").await.unwrap(), AlimtalkStatus::Delivered);
    assert_eq!(
        sens.alimtalk_status("blocked").await.unwrap(),
        AlimtalkStatus::Failed {
            code: "3018".to_owned(),
            description: "메시지를 전송할 수 없음".to_owned()
        }
    );
    let request = &server.received_requests().await.unwrap()[0];
    assert_eq!(request.headers["x-ncp-apigw-signature-v2"], expected_signature(request).as_str());
}

#[tokio::test]
async fn alimtalk_without_its_settings_is_not_configured() {
    let server = MockServer::start().await;
    let sens = SensClient::new(SensSettings {
        api_url: server.uri(),
        access_key: "a".to_owned(),
        secret_key: "s".to_owned().into(),
        sms_service_id: SMS_SERVICE.to_owned(),
        from: "0212345678".to_owned(),
        alimtalk: None,
        timeout: Duration::from_secs(1),
    })
    .unwrap();
    assert!(matches!(
        sens.send_alimtalk(&kr_phone(), "T", "x").await.unwrap_err(),
        ProviderError::NotConfigured(_)
    ));
}
