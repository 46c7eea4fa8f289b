use onboard_webhooks::EndpointUrl;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

fn request(url: &str) -> OutgoingRequest {
    OutgoingRequest {
        url: EndpointUrl::from_trusted(url),
        id: "msg_1".to_owned(),
        timestamp: 1_765_098_000,
        signature: "v1,abc".to_owned(),
        body: r#"{"type":"webhook.test"}"#.to_owned(),
    }
}

fn sender(allow_private: bool) -> HttpWebhookSender {
    HttpWebhookSender::new(SenderConfig { allow_private, ..SenderConfig::default() })
        .expect("a client")
}

#[tokio::test]
async fn an_attempt_posts_the_body_with_the_standard_webhooks_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("webhook-id", "msg_1"))
        .and(header("webhook-timestamp", "1765098000"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;

    let answer = sender(true).send(&request(&format!("{}/hook", server.uri()))).await;

    assert_eq!(answer.expect("answered").status, 204);
    // (wiremock's header matcher splits values on commas, so the signature is read here.)
    let received = server.received_requests().await.unwrap_or_default();
    assert_eq!(
        received[0].headers.get("webhook-signature").map(|v| v.as_bytes()),
        Some(&b"v1,abc"[..])
    );
    assert_eq!(received[0].body, br#"{"type":"webhook.test"}"#);
}

#[tokio::test]
async fn an_answer_body_is_read_up_to_the_limit() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("x".repeat(10_000)))
        .mount(&server)
        .await;

    let answer = sender(true).send(&request(&server.uri())).await.expect("answered");

    assert_eq!(answer.status, 500);
    assert_eq!(answer.body.len(), 4096);
}

#[tokio::test]
async fn loopback_private_and_metadata_literals_are_refused_without_a_connection() {
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/",
        "http://[::ffff:127.0.0.1]/",
    ] {
        let refused = sender(false).send(&request(url)).await;
        assert!(matches!(refused, Err((SendError::Refused(_), _))), "{url}: {refused:?}");
    }
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused() {
    let server = MockServer::start().await;
    let port = server.address().port();

    let refused = sender(false).send(&request(&format!("http://localhost:{port}/hook"))).await;

    assert!(matches!(refused, Err((SendError::Refused(_), _))), "{refused:?}");
    assert!(server.received_requests().await.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "http://10.0.0.1/"))
        .mount(&server)
        .await;

    let answer = sender(true).send(&request(&server.uri())).await.expect("answered");

    assert_eq!(answer.status, 307);
}

#[tokio::test]
async fn no_listener_is_a_connection_error() {
    let refused = sender(true).send(&request("http://127.0.0.1:9/hook")).await;
    assert!(matches!(refused, Err((SendError::Connection(_), _))), "{refused:?}");
}
