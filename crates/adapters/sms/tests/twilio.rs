//! The Twilio sender against a stand-in Twilio (wiremock) answering with Twilio's own shapes.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use onboard_kernel::PhoneNumber;
use onboard_sms::{ProviderError, TwilioSettings, TwilioSmsSender};
use serde_json::json;
use wiremock::matchers::{basic_auth, body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sender(server: &MockServer, from: &str) -> TwilioSmsSender {
    TwilioSmsSender::new(TwilioSettings {
        api_url: server.uri(),
        account_sid: "AC0123456789abcdef".to_owned(),
        auth_token: "token-xyz".to_owned().into(),
        from: from.to_owned(),
        timeout: Duration::from_millis(500),
    })
    .expect("a sender")
}

fn to() -> PhoneNumber {
    PhoneNumber::parse("+12025550143", None).expect("valid")
}

#[tokio::test]
async fn a_message_is_a_form_post_with_basic_auth_to_the_accounts_messages() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC0123456789abcdef/Messages.json"))
        .and(basic_auth("AC0123456789abcdef", "token-xyz"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("To=%2B12025550143&From=%2B15005550006&Body=Your+code%3A+123456"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": "SM1234567890abcdef1234567890abcdef",
            "status": "queued",
            "to": "+12025550143",
            "from": "+15005550006",
            "body": "Your code: 123456",
            "error_code": null,
            "error_message": null,
        })))
        .expect(1)
        .mount(&server)
        .await;

    let sent = sender(&server, "+15005550006").send_text(&to(), "Your code: 123456").await;
    let sent = sent.expect("sent");
    assert_eq!(sent.sid, "SM1234567890abcdef1234567890abcdef");
    assert_eq!(sent.status, "queued");
}

#[tokio::test]
async fn a_messaging_service_sender_goes_as_messaging_service_sid() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string("To=%2B12025550143&MessagingServiceSid=MG42&Body=hi"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "accepted"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    sender(&server, "MG42").send_text(&to(), "hi").await.expect("sent");
}

#[tokio::test]
async fn twilios_error_body_becomes_a_refusal_with_its_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21211,
            "message": "The 'To' number +12025550143 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        })))
        .mount(&server)
        .await;
    match sender(&server, "+15005550006").send_text(&to(), "hi").await.unwrap_err() {
        ProviderError::Rejected { code, message } => {
            assert_eq!(code, "21211");
            assert!(message.contains("not a valid phone number"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_unavailability() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"code": 20429})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let twilio = sender(&server, "+15005550006");
    for _ in 0..2 {
        let error = twilio.send_text(&to(), "hi").await.unwrap_err();
        assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
    }
}
