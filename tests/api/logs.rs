//! What the server writes to standard error: one start-up block, one access-log line per
//! request, text without colour codes when not on a terminal, or JSON with `LOG_FORMAT=json`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::phone;
use crate::process::ServerProcess;

/// Requests a code for `phone` and signs in with it; returns the access token and member id.
async fn sign_in(
    client: &reqwest::Client,
    server: &ServerProcess,
    phone: &str,
) -> (String, String) {
    let sent: Value = client
        .post(server.url("/api/v1/auth/otp"))
        .json(&json!({ "phone": phone }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = sent["dev_code"].as_str().expect("the embedded mode echoes codes");
    let signed: Value = client
        .post(server.url("/api/v1/auth/otp/verify"))
        .json(&json!({ "phone": phone, "code": code }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        signed["access_token"].as_str().unwrap().to_owned(),
        signed["member"]["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_writes_one_plain_access_log_line_and_a_clean_start_warns_of_nothing() {
    let server = ServerProcess::start(&[]).await;
    let client = reqwest::Client::new();

    let start = server.stderr();
    assert!(!start.contains('\u{1b}'), "no colour codes in a redirected log:\n{start}");
    assert!(!start.contains(" WARN "), "a clean start warns of nothing:\n{start}");
    for part in [
        "Onboard is listening on http://127.0.0.1:",
        "mode:     development",
        "storage:  embedded",
        "sms:      log",
        "gateway:  simulated",
        "unsafe for production:",
    ] {
        assert!(start.contains(part), "the start-up block says {part:?}:\n{start}");
    }

    let (token, member) = sign_in(&client, &server, &phone(1)).await;
    let me = client.get(server.url("/api/v1/members/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let request_id = me.headers()["x-request-id"].to_str().unwrap().to_owned();
    let line = server.wait_for_line(|l| l.contains(&request_id) && l.contains("access")).await;
    assert!(line.contains(" INFO "), "{line}");
    for part in [
        "method=GET",
        "route=/api/v1/members/me",
        "status=200",
        "latency_ms=",
        &format!("request_id={request_id}"),
        &format!("member_id={member}"),
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
    assert_eq!(server.stderr().matches(&request_id).count(), 1, "{}", server.stderr());

    // A 4xx is an info line naming the problem's code, without the Rust error.
    let wrong = client
        .post(server.url("/api/v1/auth/otp/verify"))
        .json(&json!({ "phone": phone(1), "code": "000000" }))
        .send()
        .await
        .unwrap();
    assert!(wrong.status().is_client_error());
    let request_id = wrong.headers()["x-request-id"].to_str().unwrap().to_owned();
    let line = server.wait_for_line(|l| l.contains(&request_id)).await;
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("route=/api/v1/auth/otp/verify"), "{line}");
    assert!(line.contains(&format!("status={}", wrong.status().as_u16())), "{line}");
    assert!(line.contains("code=otp_"), "the problem code: {line}");
    assert!(line.len() < 400, "one short line: {line}");
    assert!(!server.stderr().contains(" WARN "), "{}", server.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_the_access_fields_at_the_top() {
    let server = ServerProcess::start(&[("LOG_FORMAT", "json")]).await;
    let client = reqwest::Client::new();
    let (token, member) = sign_in(&client, &server, &phone(2)).await;
    let me = client.get(server.url("/api/v1/members/me")).bearer_auth(&token).send().await.unwrap();
    let request_id = me.headers()["x-request-id"].to_str().unwrap().to_owned();
    server.wait_for_line(|l| l.contains(&request_id)).await;

    let lines: Vec<Value> = server
        .stderr()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    let started = lines
        .iter()
        .find(|l| {
            l["fields"]["message"] == "Onboard is listening"
                || l["message"] == "Onboard is listening"
        })
        .expect("the start-up event");
    assert_eq!(started["mode"], "development", "{started}");
    assert_eq!(started["gateway"], "simulated (test cards only, no real payments)", "{started}");
    let access =
        lines.iter().find(|l| l["request_id"] == request_id.as_str()).expect("the access-log line");
    assert_eq!(access["level"], "INFO", "{access}");
    assert_eq!(access["target"], "access", "{access}");
    assert_eq!(access["method"], "GET", "{access}");
    assert_eq!(access["route"], "/api/v1/members/me", "{access}");
    assert_eq!(access["status"], 200, "{access}");
    assert_eq!(access["member_id"], member.as_str(), "{access}");
    assert!(access["latency_ms"].is_number(), "{access}");
    assert!(access["timestamp"].is_string(), "{access}");
}
