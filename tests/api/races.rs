//! Concurrent requests: one winner where there must be one, and never a 5xx.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_wirings;
use crate::helpers::{Wiring, assert_problem, expect_status, phone, signed_in, spawn_app};

both_wirings!(
    sixteen_parallel_verifies_of_one_code_sign_in_exactly_once,
    parallel_refreshes_of_one_token_within_the_grace_all_get_the_same_pair,
    two_members_claiming_one_email_at_once_end_in_one_success_and_one_conflict,
    parallel_sign_ups_with_one_referral_code_all_count,
);

async fn sixteen_parallel_verifies_of_one_code_sign_in_exactly_once(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let phone = phone(1);
    let code = app.request_code(&phone).await;
    let answers = join_all((0..16).map(|_| app.verify(&phone, &code))).await;

    let mut winners = Vec::new();
    for resp in answers {
        let status = resp.status();
        assert!(!status.is_server_error(), "never a 5xx: {status}");
        if status == StatusCode::OK {
            winners.push(resp.json::<Value>().await.unwrap());
        } else {
            let body: Value = resp.json().await.unwrap();
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            assert!(body["code"] == "otp_expired" || body["code"] == "otp_invalid", "{body}");
        }
    }
    assert_eq!(winners.len(), 1, "exactly one verification wins");
    let winner = signed_in(winners.remove(0));
    assert_eq!(app.sessions(&winner.access).await.len(), 1, "exactly one session");
    assert_problem(app.verify(&phone, &code).await, StatusCode::UNAUTHORIZED, "otp_expired").await;
}

async fn parallel_refreshes_of_one_token_within_the_grace_all_get_the_same_pair(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let me = app.sign_in(&phone(1)).await;
    let answers = join_all((0..8).map(|_| app.refresh(&me.refresh))).await;
    let mut refresh_tokens = Vec::new();
    for resp in answers {
        let body = expect_status(resp, StatusCode::OK).await;
        let access = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(app.me(&access).await["id"], me.id());
        refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    refresh_tokens.dedup();
    assert_eq!(refresh_tokens.len(), 1, "one new refresh token for all: {refresh_tokens:?}");
    assert_ne!(refresh_tokens[0], me.refresh);
    // The session survived and rotates on.
    expect_status(app.refresh(&refresh_tokens[0]).await, StatusCode::OK).await;
    assert_eq!(app.sessions(&me.access).await.len(), 1);
}

async fn two_members_claiming_one_email_at_once_end_in_one_success_and_one_conflict(
    wiring: Wiring,
) {
    let app = spawn_app(wiring).await;
    for round in 0..4 {
        let a = app.sign_in(&phone(round * 2)).await;
        let b = app.sign_in(&phone(round * 2 + 1)).await;
        let email = json!({ "email": format!("race{round}@example.com") });
        let (ra, rb) =
            tokio::join!(app.patch_me(&a.access, &email), app.patch_me(&b.access, &email));
        let mut statuses = [ra.status(), rb.status()];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "round {round}");
        let loser = if ra.status() == StatusCode::CONFLICT { ra } else { rb };
        assert_problem(loser, StatusCode::CONFLICT, "email_taken").await;
    }
}

async fn parallel_sign_ups_with_one_referral_code_all_count(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let referrer = app.sign_in(&phone(100)).await;
    let referral = referrer.member["referral_code"].as_str().unwrap().to_owned();
    let mut codes = Vec::new();
    for n in 0..8 {
        codes.push((phone(n), app.request_code(&phone(n)).await));
    }
    let answers = join_all(
        codes.iter().map(|(phone, code)| app.verify_with_referral(phone, code, &referral)),
    )
    .await;
    for resp in answers {
        let body = expect_status(resp, StatusCode::OK).await;
        assert_eq!(body["member"]["referred_by"], referral.as_str());
    }
    let me = app.me(&referrer.access).await;
    assert_eq!(me["invitees_count"], 8);
    assert_eq!(me["invitees"].as_array().unwrap().len(), 8);
}
