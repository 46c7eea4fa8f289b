//! One-time codes: `POST /api/v1/auth/otp` and `POST /api/v1/auth/otp/verify`.

use onboard_kernel::Region;
use reqwest::StatusCode;

use crate::both_wirings;
use crate::helpers::{
    CARD_KEYS, MEMBER_KEYS, Wiring, assert_problem, assert_problem_with_headers, expect_status,
    first_error_field, keys, phone, signed_in, spawn_app, spawn_app_with,
};

/// A code of the same length that is not `code`.
pub fn wrong(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    let first = chars[0].to_digit(10).expect("a digit");
    chars[0] = char::from_digit((first + 1) % 10, 10).expect("a digit");
    chars.into_iter().collect()
}

both_wirings!(
    a_new_phone_signs_up_and_then_signs_in,
    an_invalid_phone_is_refused_naming_the_field,
    a_second_code_within_the_resend_interval_is_rate_limited,
    the_hourly_send_cap_holds_per_phone,
    the_per_ip_send_cap_counts_the_forwarded_client_when_the_proxy_is_trusted,
    each_forwarded_client_gets_its_own_send_budget,
    without_trust_proxy_the_forwarded_header_does_not_escape_the_ip_cap,
    a_code_verifies_only_once,
    a_wrong_code_counts_down_the_attempts_left,
    the_attempt_that_burns_a_code_and_every_later_one_answer_too_many_attempts,
    a_code_never_requested_is_expired,
    a_code_past_its_ttl_is_expired,
    failures_survive_a_new_code_until_the_hourly_cap_locks_the_phone,
    verifications_are_limited_per_client_ip,
    an_unknown_referral_code_is_refused_and_the_code_stays_valid,
    a_referral_code_at_sign_up_links_the_new_member_to_the_referrer,
    a_referral_code_is_ignored_when_the_member_exists_already,
    national_format_input_is_read_with_the_default_region,
    the_code_request_answers_alike_for_members_and_strangers,
    four_digit_codes_work_when_configured,
);

async fn a_new_phone_signs_up_and_then_signs_in(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_limits.resend_interval_secs = 0).await;
    let phone = phone(4445566);

    let resp = app.request_otp(&phone).await;
    let body = expect_status(resp, StatusCode::ACCEPTED).await;
    assert_eq!(keys(&body), ["dev_code", "expires_in", "phone", "resend_in"]);
    assert_eq!(body["phone"], phone);
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["resend_in"], 0);
    let code = body["dev_code"].as_str().unwrap().to_owned();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "six digits: {code}");

    let body = expect_status(app.verify(&phone, &code).await, StatusCode::OK).await;
    assert_eq!(
        keys(&body),
        ["access_token", "created", "expires_in", "member", "refresh_token", "token_type"]
    );
    assert_eq!(body["created"], true);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let member = &body["member"];
    assert_eq!(keys(member), MEMBER_KEYS);
    assert_eq!(member["phone"], phone);
    let referral = member["referral_code"].as_str().unwrap();
    assert!(
        referral.len() == 6
            && referral.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "a referral code is 6 of A-Z0-9: {referral}"
    );
    for field in ["first_name", "last_name", "email", "referred_by"] {
        assert!(member[field].is_null(), "{field} starts empty");
    }
    let workspace = member["current_group"].as_str().expect("a personal workspace is current");
    assert!(workspace.starts_with("ws-"), "the personal workspace's slug: {workspace}");
    let created_at = member["created_at"].as_str().unwrap();
    assert!(created_at.ends_with('Z'), "RFC 3339 UTC: {created_at}");
    created_at.parse::<chrono::DateTime<chrono::Utc>>().expect("RFC 3339");
    let id = member["id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7, "ids are UUID v7");
    let me = app.me(body["access_token"].as_str().unwrap()).await;
    assert_eq!(me["id"], id.as_str());

    let code = app.request_code(&phone).await;
    let body = expect_status(app.verify(&phone, &code).await, StatusCode::OK).await;
    assert_eq!(body["created"], false);
    assert_eq!(body["member"]["id"], id.as_str());
    assert_eq!(body["member"]["referral_code"], referral);
}

async fn an_invalid_phone_is_refused_naming_the_field(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let too_long = "9".repeat(200);
    for bad in ["hello", "", "+1", "+7000", "79174445566", "010-1234-5678", too_long.as_str()] {
        let problem =
            assert_problem(app.request_otp(bad).await, StatusCode::BAD_REQUEST, "invalid_phone")
                .await;
        assert_eq!(first_error_field(&problem), "phone", "for {bad:?}");

        let problem = assert_problem(
            app.verify(bad, "123456").await,
            StatusCode::BAD_REQUEST,
            "invalid_phone",
        )
        .await;
        assert_eq!(first_error_field(&problem), "phone", "for {bad:?}");
    }
}

async fn a_second_code_within_the_resend_interval_is_rate_limited(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let phone = phone(1);
    let body = expect_status(app.request_otp(&phone).await, StatusCode::ACCEPTED).await;
    assert_eq!(body["resend_in"], 60);

    let problem = assert_problem(
        app.request_otp(&phone).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    let retry = problem["retry_after"].as_u64().unwrap();
    assert!((1..=60).contains(&retry), "within the resend interval: {retry}");

    // Another phone is not held back.
    expect_status(app.request_otp(&crate::helpers::phone(2)).await, StatusCode::ACCEPTED).await;
}

async fn the_hourly_send_cap_holds_per_phone(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.members.otp_limits.resend_interval_secs = 0;
        s.members.otp_limits.max_sends_per_hour = 3;
    })
    .await;
    let phone = phone(1);
    for _ in 0..3 {
        expect_status(app.request_otp(&phone).await, StatusCode::ACCEPTED).await;
    }
    let problem = assert_problem(
        app.request_otp(&phone).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    let retry = problem["retry_after"].as_u64().unwrap();
    assert!((3000..=3600).contains(&retry), "until the oldest send leaves the hour: {retry}");
    expect_status(app.request_otp(&crate::helpers::phone(2)).await, StatusCode::ACCEPTED).await;
}

async fn the_per_ip_send_cap_counts_the_forwarded_client_when_the_proxy_is_trusted(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.trust_proxy = true;
        s.members.max_sends_per_ip_hour = 3;
    })
    .await;
    for n in 0..3 {
        let resp = app.request_otp_from(&phone(n), "203.0.113.7").await;
        expect_status(resp, StatusCode::ACCEPTED).await;
    }
    let resp = app.request_otp_from(&phone(3), "203.0.113.7").await;
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // The first address of the list is the client.
    let resp = app.request_otp_from(&phone(4), "203.0.113.7, 10.0.0.1").await;
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another client is not held back, and a refused request did not use up the phone.
    let resp = app.request_otp_from(&phone(3), "203.0.113.8").await;
    expect_status(resp, StatusCode::ACCEPTED).await;
}

async fn each_forwarded_client_gets_its_own_send_budget(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.trust_proxy = true;
        s.members.max_sends_per_ip_hour = 2;
    })
    .await;
    for n in 0..6 {
        let resp = app.request_otp_from(&phone(n), &format!("198.51.100.{n}")).await;
        expect_status(resp, StatusCode::ACCEPTED).await;
    }
}

async fn without_trust_proxy_the_forwarded_header_does_not_escape_the_ip_cap(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.trust_proxy = false;
        s.members.max_sends_per_ip_hour = 2;
    })
    .await;
    for n in 0..2 {
        let resp = app.request_otp_from(&phone(n), &format!("198.51.100.{n}")).await;
        expect_status(resp, StatusCode::ACCEPTED).await;
    }
    let resp = app.request_otp_from(&phone(2), "198.51.100.2").await;
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

async fn a_code_verifies_only_once(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let phone = phone(1);
    let code = app.request_code(&phone).await;
    expect_status(app.verify(&phone, &code).await, StatusCode::OK).await;
    assert_problem(app.verify(&phone, &code).await, StatusCode::UNAUTHORIZED, "otp_expired").await;
}

async fn a_wrong_code_counts_down_the_attempts_left(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let phone = phone(1);
    let code = app.request_code(&phone).await;
    for left in [4, 3, 2] {
        let problem = assert_problem(
            app.verify(&phone, &wrong(&code)).await,
            StatusCode::UNAUTHORIZED,
            "otp_invalid",
        )
        .await;
        assert_eq!(problem["attempts_left"], left);
    }
    // A code of the wrong shape is just a wrong code.
    let problem =
        assert_problem(app.verify(&phone, "12").await, StatusCode::UNAUTHORIZED, "otp_invalid")
            .await;
    assert_eq!(problem["attempts_left"], 1);
    let body = expect_status(app.verify(&phone, &code).await, StatusCode::OK).await;
    assert_eq!(body["created"], true);
}

async fn the_attempt_that_burns_a_code_and_every_later_one_answer_too_many_attempts(
    wiring: Wiring,
) {
    let app = spawn_app_with(wiring, |s| {
        s.members.otp_limits.max_attempts = 3;
        s.members.otp_limits.resend_interval_secs = 0;
    })
    .await;
    let phone = phone(1);
    let code = app.request_code(&phone).await;
    for left in [2, 1] {
        let problem = assert_problem(
            app.verify(&phone, &wrong(&code)).await,
            StatusCode::UNAUTHORIZED,
            "otp_invalid",
        )
        .await;
        assert_eq!(problem["attempts_left"], left);
    }
    let resp = app.verify(&phone, &wrong(&code)).await;
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // Burned: not even the right code works now, and the answer stays the same.
    for _ in 0..2 {
        let resp = app.verify(&phone, &code).await;
        assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    }
    // A new code works (three failures are under the hourly cap of ten).
    let code = app.request_code(&phone).await;
    expect_status(app.verify(&phone, &code).await, StatusCode::OK).await;
}

async fn a_code_never_requested_is_expired(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    assert_problem(app.verify(&phone(1), "123456").await, StatusCode::UNAUTHORIZED, "otp_expired")
        .await;
}

async fn a_code_past_its_ttl_is_expired(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_limits.ttl_secs = 1).await;
    let phone = phone(1);
    let body = expect_status(app.request_otp(&phone).await, StatusCode::ACCEPTED).await;
    assert_eq!(body["expires_in"], 1);
    let code = body["dev_code"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_problem(app.verify(&phone, &code).await, StatusCode::UNAUTHORIZED, "otp_expired").await;
}

async fn failures_survive_a_new_code_until_the_hourly_cap_locks_the_phone(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| {
        s.members.otp_limits.max_failures_per_hour = 3;
        s.members.otp_limits.resend_interval_secs = 0;
    })
    .await;
    let phone = phone(1);
    let first = app.request_code(&phone).await;
    for left in [4, 3] {
        let problem = assert_problem(
            app.verify(&phone, &wrong(&first)).await,
            StatusCode::UNAUTHORIZED,
            "otp_invalid",
        )
        .await;
        assert_eq!(problem["attempts_left"], left);
    }
    let second = app.request_code(&phone).await;
    // A fresh code has all its attempts...
    let problem = assert_problem(
        app.verify(&phone, &wrong(&second)).await,
        StatusCode::UNAUTHORIZED,
        "otp_invalid",
    )
    .await;
    assert_eq!(problem["attempts_left"], 4);
    // ...but the phone has failed three times this hour: even the right code is refused.
    let (headers, problem) = assert_problem_with_headers(
        app.verify(&phone, &second).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
    let retry = problem["retry_after"].as_u64().expect("retry_after while locked");
    assert!((3000..=3600).contains(&retry), "until the oldest failure leaves the hour: {retry}");
    assert_eq!(headers["retry-after"].to_str().unwrap(), retry.to_string());
    // Another new code does not unlock the phone either.
    let third = app.request_code(&phone).await;
    let resp = app.verify(&phone, &third).await;
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // Other phones are not affected.
    let other = crate::helpers::phone(2);
    let code = app.request_code(&other).await;
    expect_status(app.verify(&other, &code).await, StatusCode::OK).await;
}

async fn verifications_are_limited_per_client_ip(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.max_verifies_per_ip = 3).await;
    let code = app.request_code(&phone(9)).await;
    for n in 0..3 {
        let resp = app.verify(&phone(n), "123456").await;
        assert_problem(resp, StatusCode::UNAUTHORIZED, "otp_expired").await;
    }
    let resp = app.verify(&phone(9), &code).await;
    let problem = assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(problem["retry_after"].as_u64().unwrap() <= 300, "within the 5-minute window");
}

async fn an_unknown_referral_code_is_refused_and_the_code_stays_valid(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let phone = phone(1);
    let code = app.request_code(&phone).await;
    for referral in ["ZZZZZ9", "nope!", "TOOLONG7"] {
        let resp = app.verify_with_referral(&phone, &code, referral).await;
        let problem =
            assert_problem(resp, StatusCode::BAD_REQUEST, "referral_code_not_found").await;
        assert_eq!(first_error_field(&problem), "referral_code");
    }
    // No attempt was counted: a wrong guess now leaves four of five.
    let problem = assert_problem(
        app.verify(&phone, &wrong(&code)).await,
        StatusCode::UNAUTHORIZED,
        "otp_invalid",
    )
    .await;
    assert_eq!(problem["attempts_left"], 4);
    let body = expect_status(app.verify(&phone, &code).await, StatusCode::OK).await;
    assert_eq!(body["created"], true);
    assert!(body["member"]["referred_by"].is_null());
}

async fn a_referral_code_at_sign_up_links_the_new_member_to_the_referrer(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let referrer = app.sign_in(&phone(1)).await;
    let referral = referrer.member["referral_code"].as_str().unwrap().to_owned();

    let invitee_phone = "+79174444435";
    let code = app.request_code(invitee_phone).await;
    // Redeeming is case-insensitive and ignores surrounding spaces.
    let typed = format!("  {}  ", referral.to_lowercase());
    let resp = app.verify_with_referral(invitee_phone, &code, &typed).await;
    let body = expect_status(resp, StatusCode::OK).await;
    assert_eq!(body["created"], true);
    assert_eq!(body["member"]["referred_by"], referral.as_str());
    let invitee = signed_in(body);
    assert_eq!(app.me(&invitee.access).await["referred_by"], referral.as_str());

    let me = app.me(&referrer.access).await;
    assert_eq!(me["invitees_count"], 1);
    let invitees = me["invitees"].as_array().unwrap();
    assert_eq!(invitees.len(), 1);
    assert_eq!(keys(&invitees[0]), CARD_KEYS);
    assert_eq!(invitees[0]["id"], invitee.id());
    assert_eq!(invitees[0]["phone_masked"], "+7******4435");
    assert!(me["referred_by"].is_null(), "the referrer was referred by nobody");
}

async fn a_referral_code_is_ignored_when_the_member_exists_already(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_limits.resend_interval_secs = 0).await;
    let first = app.sign_in(&phone(1)).await;
    let second = app.sign_in(&phone(2)).await;
    let referral = second.member["referral_code"].as_str().unwrap();

    let code = app.request_code(&phone(1)).await;
    let body =
        expect_status(app.verify_with_referral(&phone(1), &code, referral).await, StatusCode::OK)
            .await;
    assert_eq!(body["created"], false);
    assert!(body["member"]["referred_by"].is_null());
    // Not even an unknown code stops an existing member from signing in.
    let code = app.request_code(&phone(1)).await;
    let body =
        expect_status(app.verify_with_referral(&phone(1), &code, "ZZZZZ9").await, StatusCode::OK)
            .await;
    assert_eq!(body["member"]["id"], first.id());
    assert_eq!(app.me(&second.access).await["invitees_count"], 0);
}

async fn national_format_input_is_read_with_the_default_region(wiring: Wiring) {
    let app =
        spawn_app_with(wiring, |s| s.default_region = Some(Region::parse("KR").unwrap())).await;
    let body = expect_status(app.request_otp("010-1234-5678").await, StatusCode::ACCEPTED).await;
    assert_eq!(body["phone"], "+821012345678");
    let code = body["dev_code"].as_str().unwrap();
    let body = expect_status(app.verify("010 1234 5678", code).await, StatusCode::OK).await;
    assert_eq!(body["member"]["phone"], "+821012345678");
    // E.164 input is still read as such.
    let body = expect_status(app.request_otp("+79174445566").await, StatusCode::ACCEPTED).await;
    assert_eq!(body["phone"], "+79174445566");
}

async fn the_code_request_answers_alike_for_members_and_strangers(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_limits.resend_interval_secs = 0).await;
    app.sign_in(&phone(1)).await;
    let member = expect_status(app.request_otp(&phone(1)).await, StatusCode::ACCEPTED).await;
    let stranger = expect_status(app.request_otp(&phone(2)).await, StatusCode::ACCEPTED).await;
    assert_eq!(keys(&member), keys(&stranger));
    for field in ["expires_in", "resend_in"] {
        assert_eq!(member[field], stranger[field], "{field}");
    }

    // Without OTP_ECHO the code stays in the SMS.
    let app = spawn_app_with(wiring, |s| s.members.otp_echo = false).await;
    let body = expect_status(app.request_otp(&phone(2)).await, StatusCode::ACCEPTED).await;
    assert_eq!(keys(&body), ["expires_in", "phone", "resend_in"]);
}

async fn four_digit_codes_work_when_configured(wiring: Wiring) {
    let app = spawn_app_with(wiring, |s| s.members.otp_length = 4).await;
    let code = app.request_code(&phone(1)).await;
    assert!(code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()), "four digits: {code}");
    let problem = assert_problem(
        app.verify(&phone(1), &wrong(&code)).await,
        StatusCode::UNAUTHORIZED,
        "otp_invalid",
    )
    .await;
    assert_eq!(problem["attempts_left"], 4);
    expect_status(app.verify(&phone(1), &code).await, StatusCode::OK).await;
}
