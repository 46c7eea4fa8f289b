//! Sign-in codes leave through the configured SMS provider, spoken to over its real HTTP API
//! (a stand-in provider on wiremock).

use std::time::{Duration, Instant};

use onboard_server::config::SmsSettings;
use onboard_sms::{SensSettings, TwilioSettings};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{Wiring, spawn_app_with};

/// The requests the provider received, once there is one (the send is queued, not awaited).
async fn first_request(server: &MockServer) -> Request {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(request) = server.received_requests().await.unwrap().into_iter().next() {
            return request;
        }
        assert!(Instant::now() < deadline, "the provider received nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_code_goes_out_through_sens_to_a_korean_number_in_domestic_form() {
    let sens = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/v2/services/ncp:sms:kr:1:onboard/messages"))
        .respond_with(ResponseTemplate::new(202).set_body_json(serde_json::json!({
            "requestId": "r1", "requestTime": "2026-11-27T09:00:00.000",
            "statusCode": "202", "statusName": "success",
        })))
        .mount(&sens)
        .await;
    let uri = sens.uri();
    let app = spawn_app_with(Wiring::Memory, move |s| {
        s.sms = SmsSettings::Sens(SensSettings {
            api_url: uri,
            access_key: "ak".to_owned(),
            secret_key: "sk".to_owned().into(),
            sms_service_id: "ncp:sms:kr:1:onboard".to_owned(),
            from: "0212345678".to_owned(),
            alimtalk: None,
            timeout: Duration::from_secs(2),
        });
    })
    .await;

    let code = app.request_code("+821012345678").await;
    let body: serde_json::Value = first_request(&sens).await.body_json().unwrap();
    assert_eq!(body["messages"][0]["to"], "01012345678");
    assert_eq!(body["countryCode"], "82");
    assert!(body["content"].as_str().unwrap().contains(&code), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_code_goes_out_through_twilio() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC1/Messages.json"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"sid": "SM1", "status": "queued"})),
        )
        .mount(&twilio)
        .await;
    let uri = twilio.uri();
    let app = spawn_app_with(Wiring::Memory, move |s| {
        s.sms = SmsSettings::Twilio(TwilioSettings {
            api_url: uri,
            account_sid: "AC1".to_owned(),
            auth_token: "t".to_owned().into(),
            from: "+15005550006".to_owned(),
            timeout: Duration::from_secs(2),
        });
    })
    .await;

    let code = app.request_code("+12025550143").await;
    let request = first_request(&twilio).await;
    let form = String::from_utf8(request.body).unwrap();
    assert!(form.starts_with("To=%2B12025550143&From=%2B15005550006&Body="), "{form}");
    assert!(form.contains(&code), "{form}");
}
