//! Unit tests of every use case of [`MembersService`], against the mockall twins of the ports.
//!
//! A [`Fixture`] holds one mock per port with no expectations except the clock (a fixed
//! instant). Mockall refuses any call that no expectation allows, so each test also proves
//! that the use case leaves the other ports alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use mockall::Sequence;
use onboard_kernel::{Email, MemberId, MockClock, PhoneNumber, ReferralCode, SessionId};

use super::*;
use crate::model::{MemberCard, PersonName};
use crate::ports::{InvalidToken, OtpLimits};
use crate::ports::{
    MockAccessTokens, MockMemberRepository, MockOtpStore, MockRateLimiter, MockRevocationList,
    MockSessionRepository, MockSmsSender, RefreshedSession, SignInRecord,
};

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

const PHONE: &str = "+79174445566";
const OTHER_PHONE: &str = "+821012345678";
const IP: &str = "203.0.113.7";
const ACCESS_TOKEN: &str = "signed.access.token";

/// The instant every fixture's clock answers.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).single().expect("a valid instant")
}

fn phone() -> PhoneNumber {
    PhoneNumber::parse(PHONE, None).expect("a valid phone")
}

fn other_phone() -> PhoneNumber {
    PhoneNumber::parse(OTHER_PHONE, None).expect("a valid phone")
}

fn code(s: &str) -> ReferralCode {
    ReferralCode::parse(s).expect("a valid referral code")
}

fn member_with(phone: PhoneNumber) -> Member {
    Member {
        id: MemberId::new(),
        phone: Some(phone),
        first_name: Some("Ann".to_owned()),
        last_name: None,
        email: None,
        referral_code: code("K49FJ5"),
        referred_by: None,
        current_group: Some("acme".to_owned()),
        created_at: now(),
    }
}

fn member() -> Member {
    member_with(phone())
}

fn principal() -> Principal {
    Principal { member_id: MemberId::new(), session_id: SessionId::new(), current_group: None }
}

fn from_ip() -> ClientInfo {
    ClientInfo { ip: Some(IP.to_owned()), user_agent: None }
}

fn anonymous() -> ClientInfo {
    ClientInfo::default()
}

fn verify(code: &str) -> VerifyOtp {
    VerifyOtp { phone: phone(), code: code.to_owned(), referral_code: None }
}

fn verify_with_referral(code: &str, referral: &str) -> VerifyOtp {
    VerifyOtp { referral_code: Some(self::code(referral)), ..verify(code) }
}

fn claims_for(member_id: MemberId, session_id: SessionId) -> AccessClaims {
    let iat = now().timestamp();
    AccessClaims {
        sub: member_id,
        sid: session_id,
        grp: Some("acme".to_owned()),
        iat,
        exp: iat + 900,
        jti: uuid::Uuid::now_v7(),
    }
}

/// Values a mock saw, for the test to look at afterwards.
#[derive(Debug)]
struct Captured<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Captured<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: Clone> Captured<T> {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(Vec::new())))
    }

    fn push(&self, value: T) {
        self.0.lock().expect("not poisoned").push(value);
    }

    fn all(&self) -> Vec<T> {
        self.0.lock().expect("not poisoned").clone()
    }

    /// The one value seen; fails the test if there were none or several.
    fn one(&self) -> T {
        let all = self.all();
        assert_eq!(all.len(), 1, "expected exactly one captured value");
        all[0].clone()
    }
}

/// One mock per port, plus configuration, from which a test builds its service.
struct Fixture {
    otp: MockOtpStore,
    limiter: MockRateLimiter,
    members: MockMemberRepository,
    sessions: MockSessionRepository,
    revocations: MockRevocationList,
    tokens: MockAccessTokens,
    sms: MockSmsSender,
    clock: MockClock,
    config: MembersConfig,
    secrets: Secrets,
    referral_codes: Option<ReferralCodeGenerator>,
}

impl Fixture {
    /// Default configuration, a fixed clock, and mocks that expect nothing.
    fn new() -> Self {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());
        Self {
            otp: MockOtpStore::new(),
            limiter: MockRateLimiter::new(),
            members: MockMemberRepository::new(),
            sessions: MockSessionRepository::new(),
            revocations: MockRevocationList::new(),
            tokens: MockAccessTokens::new(),
            sms: MockSmsSender::new(),
            clock,
            config: MembersConfig::default(),
            secrets: Secrets::derive(b"test master secret"),
            referral_codes: None,
        }
    }

    fn service(self) -> MembersService {
        let service = MembersService::new(
            MembersPorts {
                otp: Arc::new(self.otp),
                limiter: Arc::new(self.limiter),
                members: Arc::new(self.members),
                sessions: Arc::new(self.sessions),
                revocations: Arc::new(self.revocations),
                tokens: Arc::new(self.tokens),
                sms: Arc::new(self.sms),
                clock: Arc::new(self.clock),
            },
            self.config,
            self.secrets,
        );
        match self.referral_codes {
            Some(generator) => service.with_referral_code_generator(generator),
            None => service,
        }
    }

    /// The OTP store issues codes; their hashes are captured.
    fn codes_issued(&mut self) -> Captured<CodeHash> {
        let hashes = Captured::new();
        let seen = hashes.clone();
        self.otp.expect_issue().returning(move |_, hash, _, _| {
            seen.push(*hash);
            Ok(IssueOutcome::Issued)
        });
        hashes
    }

    /// The SMS sender accepts messages; their texts are captured.
    fn sms_sent(&mut self) -> Captured<String> {
        let texts = Captured::new();
        let seen = texts.clone();
        self.sms.expect_send().returning(move |_, text| {
            seen.push(text.to_owned());
            Ok(())
        });
        texts
    }

    /// The OTP store answers `outcome` to every verification; the candidate hashes are captured.
    fn code_checked(&mut self, outcome: VerifyOutcome) -> Captured<CodeHash> {
        let hashes = Captured::new();
        let seen = hashes.clone();
        self.otp.expect_verify().returning(move |_, hash, _, _| {
            seen.push(*hash);
            Ok(outcome)
        });
        hashes
    }

    /// The repository signs in `member`; the requests are captured.
    fn signs_in(&mut self, member: Member, created: bool) -> Captured<SignInRequest> {
        let requests = Captured::new();
        let seen = requests.clone();
        self.members.expect_sign_in().returning(move |request| {
            seen.push(request);
            Ok(SignInRecord { member: member.clone(), created })
        });
        requests
    }

    /// Access tokens are signed as [`ACCESS_TOKEN`]; the claims are captured.
    fn tokens_signed(&mut self) -> Captured<AccessClaims> {
        let claims = Captured::new();
        let seen = claims.clone();
        self.tokens.expect_issue().returning(move |c| {
            seen.push(c.clone());
            Ok(ACCESS_TOKEN.to_owned())
        });
        claims
    }

    /// A code that checks out, a sign-in of `member`, and signed tokens.
    fn valid_sign_in(&mut self, member: Member, created: bool) -> Captured<SignInRequest> {
        self.code_checked(VerifyOutcome::Valid);
        self.tokens_signed();
        self.signs_in(member, created)
    }

    /// The session repository answers `outcome` to every rotation; `(old, new)` are captured.
    fn rotation(&mut self, outcome: RotateOutcome) -> Captured<(TokenHash, TokenHash)> {
        let hashes = Captured::new();
        let seen = hashes.clone();
        self.sessions.expect_rotate().returning(move |old, new, _, _, _| {
            seen.push((*old, *new));
            Ok(outcome.clone())
        });
        hashes
    }
}

fn refreshed(member_id: MemberId, session_id: SessionId) -> RefreshedSession {
    RefreshedSession { session_id, member_id, current_group: Some("acme".to_owned()) }
}

/// The code inside an SMS of the default message.
fn code_in(text: &str) -> String {
    text.strip_prefix("Your Onboard code: ").expect("the default message").to_owned()
}

// ---------------------------------------------------------------------------------------------
// request_otp
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_code_sent_by_sms_has_the_configured_number_of_digits() {
    for length in [4u8, 6, 8] {
        let mut fx = Fixture::new();
        fx.config.otp_length = length;
        fx.codes_issued();
        let texts = fx.sms_sent();
        let service = fx.service();

        service.request_otp(phone(), &anonymous()).await.expect("a code is sent");

        let code = code_in(&texts.one());
        assert_eq!(code.len(), usize::from(length), "{code:?}");
        assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code:?}");
    }
}

#[tokio::test]
async fn codes_keep_their_leading_zeros() {
    // With 4 digits, one code in ten starts with 0: 300 codes all but surely include some.
    let mut fx = Fixture::new();
    fx.config.otp_length = 4;
    fx.codes_issued();
    let texts = fx.sms_sent();
    let service = fx.service();

    for _ in 0..300 {
        service.request_otp(phone(), &anonymous()).await.expect("a code is sent");
    }

    let codes: Vec<String> = texts.all().iter().map(|t| code_in(t)).collect();
    assert!(codes.iter().all(|c| c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit())));
    assert!(codes.iter().any(|c| c.starts_with('0')), "no code below 1000 in 300");
}

#[tokio::test]
async fn every_request_sends_a_fresh_code() {
    let mut fx = Fixture::new();
    fx.config.otp_length = 8;
    let hashes = fx.codes_issued();
    let texts = fx.sms_sent();
    let service = fx.service();

    for _ in 0..3 {
        service.request_otp(phone(), &anonymous()).await.expect("a code is sent");
    }

    let codes: Vec<String> = texts.all().iter().map(|t| code_in(t)).collect();
    assert!(codes[0] != codes[1] || codes[1] != codes[2], "three equal codes: {codes:?}");
    let hashes = hashes.all();
    assert!(hashes[0] != hashes[1] || hashes[1] != hashes[2]);
}

#[tokio::test]
async fn the_stored_hash_is_the_hash_that_verifying_the_sent_code_presents() {
    let mut fx = Fixture::new();
    let stored = fx.codes_issued();
    let texts = fx.sms_sent();
    let presented = fx.code_checked(VerifyOutcome::NoCode);
    let service = fx.service();

    service.request_otp(phone(), &anonymous()).await.expect("a code is sent");
    let sent = code_in(&texts.one());
    let _ = service.verify_otp(verify(&sent), &anonymous()).await;

    assert_eq!(presented.one(), stored.one());
}

#[tokio::test]
async fn a_different_code_presents_a_different_hash() {
    let mut fx = Fixture::new();
    let stored = fx.codes_issued();
    let texts = fx.sms_sent();
    let presented = fx.code_checked(VerifyOutcome::Invalid { attempts_left: 4 });
    let service = fx.service();

    service.request_otp(phone(), &anonymous()).await.expect("a code is sent");
    let sent: u32 = code_in(&texts.one()).parse().expect("digits");
    let wrong = format!("{:06}", (sent + 1) % 1_000_000);
    let _ = service.verify_otp(verify(&wrong), &anonymous()).await;

    assert_ne!(presented.one(), stored.one());
}

#[tokio::test]
async fn the_code_hash_is_bound_to_the_phone() {
    let mut fx = Fixture::new();
    let presented = fx.code_checked(VerifyOutcome::NoCode);
    let service = fx.service();

    let _ = service.verify_otp(verify("123456"), &anonymous()).await;
    let other = VerifyOtp { phone: other_phone(), ..verify("123456") };
    let _ = service.verify_otp(other, &anonymous()).await;

    let hashes = presented.all();
    assert_eq!(hashes.len(), 2);
    assert_ne!(hashes[0], hashes[1]);
}

#[tokio::test]
async fn the_sms_is_the_configured_message_with_the_code_sent_to_the_phone() {
    let mut fx = Fixture::new();
    fx.config.otp_message = "Onboard: {code} is your code. Never share it.".to_owned();
    fx.codes_issued();
    let texts = Captured::new();
    let seen = texts.clone();
    fx.sms.expect_send().withf(|to, _| to.as_e164() == PHONE).times(1).returning(move |_, text| {
        seen.push(text.to_owned());
        Ok(())
    });
    let service = fx.service();

    service.request_otp(phone(), &anonymous()).await.expect("a code is sent");

    let text = texts.one();
    let code = text
        .strip_prefix("Onboard: ")
        .and_then(|t| t.strip_suffix(" is your code. Never share it."))
        .expect("the configured message");
    assert_eq!(code.len(), 6);
}

#[tokio::test]
async fn the_code_is_echoed_when_echo_is_on() {
    let mut fx = Fixture::new();
    fx.config.otp_echo = true;
    fx.codes_issued();
    let texts = fx.sms_sent();
    let service = fx.service();

    let issued = service.request_otp(phone(), &anonymous()).await.expect("a code is sent");

    assert_eq!(issued.dev_code, Some(code_in(&texts.one())));
}

#[tokio::test]
async fn the_code_is_not_echoed_when_echo_is_off() {
    let mut fx = Fixture::new();
    fx.codes_issued();
    fx.sms_sent();
    let service = fx.service();

    let issued = service.request_otp(phone(), &anonymous()).await.expect("a code is sent");

    assert_eq!(issued.dev_code, None);
}

#[tokio::test]
async fn the_answer_tells_the_phone_the_code_lifetime_and_the_resend_interval() {
    let mut fx = Fixture::new();
    fx.config.otp_limits.ttl_secs = 120;
    fx.config.otp_limits.resend_interval_secs = 45;
    fx.codes_issued();
    fx.sms_sent();
    let service = fx.service();

    let issued = service.request_otp(phone(), &anonymous()).await.expect("a code is sent");

    assert_eq!(
        issued,
        OtpIssued { phone: phone(), expires_in: 120, resend_in: 45, dev_code: None }
    );
}

#[tokio::test]
async fn the_otp_store_gets_the_phone_the_clock_time_and_the_configured_limits() {
    let mut fx = Fixture::new();
    let limits = OtpLimits {
        ttl_secs: 100,
        resend_interval_secs: 20,
        max_sends_per_hour: 3,
        max_attempts: 2,
        max_failures_per_hour: 7,
    };
    fx.config.otp_limits = limits;
    fx.otp
        .expect_issue()
        .withf(move |p, _, at, l| p.as_e164() == PHONE && *at == now() && *l == limits)
        .times(1)
        .returning(|_, _, _, _| Ok(IssueOutcome::Issued));
    fx.sms_sent();
    let service = fx.service();

    service.request_otp(phone(), &anonymous()).await.expect("a code is sent");
}

#[tokio::test]
async fn the_per_ip_send_limit_refuses_before_any_code_is_issued() {
    let mut fx = Fixture::new();
    fx.limiter
        .expect_hit()
        .withf(|key, limit, window, at| {
            key == "otp-send-ip:203.0.113.7" && *limit == 30 && *window == 3600 && *at == now()
        })
        .times(1)
        .returning(|_, _, _, _| Ok(RateDecision::Limited { retry_after_secs: 42 }));
    fx.otp.expect_issue().never();
    fx.sms.expect_send().never();
    let service = fx.service();

    let err = service.request_otp(phone(), &from_ip()).await.expect_err("limited");

    assert!(matches!(err, RequestOtpError::RateLimited { retry_after_secs: 42 }), "{err:?}");
}

#[tokio::test]
async fn a_request_within_the_per_ip_limit_counts_one_hit_and_sends_the_code() {
    let mut fx = Fixture::new();
    fx.config.max_sends_per_ip_hour = 12;
    fx.limiter
        .expect_hit()
        .withf(|key, limit, window, _| {
            key == "otp-send-ip:203.0.113.7" && *limit == 12 && *window == 3600
        })
        .times(1)
        .returning(|_, _, _, _| Ok(RateDecision::Allowed));
    fx.codes_issued();
    let texts = fx.sms_sent();
    let service = fx.service();

    service.request_otp(phone(), &from_ip()).await.expect("a code is sent");

    assert_eq!(texts.all().len(), 1);
}

#[tokio::test]
async fn the_per_phone_limit_refuses_and_sends_no_sms() {
    let mut fx = Fixture::new();
    fx.otp
        .expect_issue()
        .times(1)
        .returning(|_, _, _, _| Ok(IssueOutcome::Limited { retry_after_secs: 17 }));
    fx.sms.expect_send().never();
    let service = fx.service();

    let err = service.request_otp(phone(), &anonymous()).await.expect_err("limited");

    assert!(matches!(err, RequestOtpError::RateLimited { retry_after_secs: 17 }), "{err:?}");
}

#[tokio::test]
async fn without_a_client_ip_no_send_limit_per_ip_is_consulted() {
    let mut fx = Fixture::new();
    fx.limiter.expect_hit().never();
    fx.codes_issued();
    fx.sms_sent();
    let service = fx.service();

    service.request_otp(phone(), &anonymous()).await.expect("a code is sent");
}

#[tokio::test]
async fn a_failing_otp_store_is_unexpected_and_sends_no_sms() {
    let mut fx = Fixture::new();
    fx.otp.expect_issue().returning(|_, _, _, _| Err(anyhow::anyhow!("redis down")));
    fx.sms.expect_send().never();
    let service = fx.service();

    let err = service.request_otp(phone(), &anonymous()).await.expect_err("fails");

    assert!(matches!(err, RequestOtpError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn a_failing_rate_limiter_is_unexpected_and_issues_no_code() {
    let mut fx = Fixture::new();
    fx.limiter.expect_hit().returning(|_, _, _, _| Err(anyhow::anyhow!("redis down")));
    fx.otp.expect_issue().never();
    let service = fx.service();

    let err = service.request_otp(phone(), &from_ip()).await.expect_err("fails");

    assert!(matches!(err, RequestOtpError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn a_failing_sms_sender_is_unexpected() {
    let mut fx = Fixture::new();
    fx.codes_issued();
    fx.sms.expect_send().returning(|_, _| Err(anyhow::anyhow!("provider down")));
    let service = fx.service();

    let err = service.request_otp(phone(), &anonymous()).await.expect_err("fails");

    assert!(matches!(err, RequestOtpError::Unexpected(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// verify_otp
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_valid_code_signs_the_member_in() {
    let mut fx = Fixture::new();
    let ann = member();
    fx.valid_sign_in(ann.clone(), true);
    let service = fx.service();

    let signed_in = service.verify_otp(verify("123456"), &anonymous()).await.expect("signed in");

    assert_eq!(signed_in.member, ann);
    assert!(signed_in.created);
    assert_eq!(signed_in.tokens.access_token, ACCESS_TOKEN);
    assert_eq!(signed_in.tokens.expires_in, 900);
    assert!(!signed_in.tokens.refresh_token.expose().is_empty());
}

#[tokio::test]
async fn an_existing_member_signs_in_without_being_created() {
    let mut fx = Fixture::new();
    let ann = member();
    fx.valid_sign_in(ann.clone(), false);
    let service = fx.service();

    let signed_in = service.verify_otp(verify("123456"), &anonymous()).await.expect("signed in");

    assert_eq!(signed_in.member, ann);
    assert!(!signed_in.created);
}

#[tokio::test]
async fn the_otp_store_checks_the_code_at_the_clock_time_with_the_configured_limits() {
    let mut fx = Fixture::new();
    fx.config.otp_limits.max_attempts = 3;
    let limits = fx.config.otp_limits;
    fx.otp
        .expect_verify()
        .withf(move |p, _, at, l| p.as_e164() == PHONE && *at == now() && *l == limits)
        .times(1)
        .returning(|_, _, _, _| Ok(VerifyOutcome::Valid));
    fx.tokens_signed();
    fx.signs_in(member(), true);
    let service = fx.service();

    service.verify_otp(verify("123456"), &anonymous()).await.expect("signed in");
}

#[tokio::test]
async fn the_access_token_carries_member_session_group_and_expiry() {
    let mut fx = Fixture::new();
    fx.config.access_ttl_secs = 600;
    let ann = member();
    fx.code_checked(VerifyOutcome::Valid);
    let requests = fx.signs_in(ann.clone(), true);
    let claims = fx.tokens_signed();
    let service = fx.service();

    let signed_in = service.verify_otp(verify("123456"), &anonymous()).await.expect("signed in");

    let claims = claims.one();
    assert_eq!(claims.sub, ann.id);
    assert_eq!(claims.sid, requests.one().session.id);
    assert_eq!(claims.grp.as_deref(), Some("acme"));
    assert_eq!(claims.iat, now().timestamp());
    assert_eq!(claims.exp, claims.iat + 600);
    assert_eq!(claims.jti.get_version_num(), 7);
    assert_eq!(signed_in.tokens.expires_in, 600);
}

#[tokio::test]
async fn the_sign_in_carries_the_phone_the_user_agent_and_the_clock_time() {
    let mut fx = Fixture::new();
    let requests = fx.valid_sign_in(member(), true);
    let service = fx.service();
    let client = ClientInfo { ip: None, user_agent: Some("Onboard/1.0 (iOS)".to_owned()) };

    service.verify_otp(verify("123456"), &client).await.expect("signed in");

    let request = requests.one();
    assert_eq!(request.phone, phone());
    assert_eq!(request.now, now());
    assert_eq!(request.session.user_agent.as_deref(), Some("Onboard/1.0 (iOS)"));
    assert_eq!(request.referred_by, None);
}

#[tokio::test]
async fn the_session_expires_one_refresh_lifetime_after_sign_in() {
    let mut fx = Fixture::new();
    fx.config.refresh_ttl_secs = 86_400;
    let requests = fx.valid_sign_in(member(), true);
    let service = fx.service();

    service.verify_otp(verify("123456"), &anonymous()).await.expect("signed in");

    assert_eq!(requests.one().session.expires_at, now() + Duration::seconds(86_400));
}

#[tokio::test]
async fn the_refresh_token_returned_hashes_to_what_the_session_keeps() {
    let mut fx = Fixture::new();
    let requests = fx.valid_sign_in(member(), true);
    let service = fx.service();

    let signed_in = service.verify_otp(verify("123456"), &anonymous()).await.expect("signed in");

    assert_eq!(token_hash(&signed_in.tokens.refresh_token), requests.one().session.refresh_hash);
}

#[tokio::test]
async fn every_sign_in_opens_a_new_session_with_a_new_refresh_token() {
    let mut fx = Fixture::new();
    let requests = fx.valid_sign_in(member(), false);
    let service = fx.service();

    let first = service.verify_otp(verify("123456"), &anonymous()).await.expect("signed in");
    let second = service.verify_otp(verify("654321"), &anonymous()).await.expect("signed in");

    assert_ne!(first.tokens.refresh_token, second.tokens.refresh_token);
    let requests = requests.all();
    assert_ne!(requests[0].session.id, requests[1].session.id);
    assert_ne!(requests[0].new_member_id, requests[1].new_member_id);
}

#[tokio::test]
async fn a_wrong_code_answers_with_the_attempts_left_and_signs_nobody_in() {
    let mut fx = Fixture::new();
    fx.code_checked(VerifyOutcome::Invalid { attempts_left: 3 });
    fx.members.expect_sign_in().never();
    let service = fx.service();

    let err = service.verify_otp(verify("000000"), &anonymous()).await.expect_err("wrong");

    assert!(matches!(err, VerifyOtpError::InvalidCode { attempts_left: 3 }), "{err:?}");
}

#[tokio::test]
async fn a_phone_without_a_live_code_answers_expired() {
    let mut fx = Fixture::new();
    fx.code_checked(VerifyOutcome::NoCode);
    let service = fx.service();

    let err = service.verify_otp(verify("123456"), &anonymous()).await.expect_err("expired");

    assert!(matches!(err, VerifyOtpError::Expired), "{err:?}");
}

#[tokio::test]
async fn a_burned_code_answers_too_many_attempts_without_a_wait() {
    let mut fx = Fixture::new();
    fx.code_checked(VerifyOutcome::Burned);
    let service = fx.service();

    let err = service.verify_otp(verify("123456"), &anonymous()).await.expect_err("burned");

    assert!(matches!(err, VerifyOtpError::TooManyAttempts { retry_after_secs: None }), "{err:?}");
}

#[tokio::test]
async fn a_locked_phone_answers_too_many_attempts_with_the_wait() {
    let mut fx = Fixture::new();
    fx.code_checked(VerifyOutcome::Locked { retry_after_secs: 1234 });
    let service = fx.service();

    let err = service.verify_otp(verify("123456"), &anonymous()).await.expect_err("locked");

    assert!(
        matches!(err, VerifyOtpError::TooManyAttempts { retry_after_secs: Some(1234) }),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_per_ip_verify_limit_refuses_before_the_code_is_checked() {
    let mut fx = Fixture::new();
    fx.config.max_verifies_per_ip = 9;
    fx.config.verify_ip_window_secs = 120;
    fx.limiter
        .expect_hit()
        .withf(|key, limit, window, at| {
            key == "otp-verify-ip:203.0.113.7" && *limit == 9 && *window == 120 && *at == now()
        })
        .times(1)
        .returning(|_, _, _, _| Ok(RateDecision::Limited { retry_after_secs: 60 }));
    fx.otp.expect_verify().never();
    let service = fx.service();

    let err = service.verify_otp(verify("123456"), &from_ip()).await.expect_err("limited");

    assert!(matches!(err, VerifyOtpError::RateLimited { retry_after_secs: 60 }), "{err:?}");
}

#[tokio::test]
async fn a_verification_within_the_per_ip_limit_goes_on_to_the_code() {
    let mut fx = Fixture::new();
    fx.limiter
        .expect_hit()
        .withf(|key, _, _, _| key == "otp-verify-ip:203.0.113.7")
        .times(1)
        .returning(|_, _, _, _| Ok(RateDecision::Allowed));
    fx.valid_sign_in(member(), true);
    let service = fx.service();

    service.verify_otp(verify("123456"), &from_ip()).await.expect("signed in");
}

#[tokio::test]
async fn without_a_client_ip_no_verify_limit_per_ip_is_consulted() {
    let mut fx = Fixture::new();
    fx.limiter.expect_hit().never();
    fx.valid_sign_in(member(), true);
    let service = fx.service();

    service.verify_otp(verify("123456"), &anonymous()).await.expect("signed in");
}

#[tokio::test]
async fn an_unknown_referral_code_for_a_new_phone_leaves_the_code_valid_and_uncounted() {
    let mut fx = Fixture::new();
    fx.members
        .expect_find_by_phone()
        .withf(|p| p.as_e164() == PHONE)
        .times(1)
        .returning(|_| Ok(None));
    fx.members
        .expect_referral_code_owner()
        .withf(|c| c.as_str() == "ZZZ999")
        .times(1)
        .returning(|_| Ok(None));
    fx.otp.expect_verify().never();
    fx.members.expect_sign_in().never();
    let service = fx.service();

    let err = service
        .verify_otp(verify_with_referral("123456", "zzz999"), &anonymous())
        .await
        .expect_err("unknown referral code");

    assert!(matches!(err, VerifyOtpError::ReferralCodeNotFound), "{err:?}");
}

#[tokio::test]
async fn a_known_referral_code_for_a_new_phone_is_redeemed_at_sign_up() {
    let mut fx = Fixture::new();
    let referrer = MemberId::new();
    fx.members.expect_find_by_phone().times(1).returning(|_| Ok(None));
    fx.members.expect_referral_code_owner().times(1).returning(move |_| Ok(Some(referrer)));
    let requests = fx.valid_sign_in(member(), true);
    let service = fx.service();

    service
        .verify_otp(verify_with_referral("123456", "K49FJ5"), &anonymous())
        .await
        .expect("signed up");

    let request = requests.one();
    assert_eq!(request.referred_by, Some(code("K49FJ5")));
    let signed_up = request.created_events[0].decode::<MemberEvent>();
    assert!(
        matches!(signed_up, Some(MemberEvent::SignedUp { referred_by: Some(r), .. }) if r == referrer),
        "{signed_up:?}"
    );
}

#[tokio::test]
async fn a_referral_code_is_not_checked_when_the_phone_already_has_a_member() {
    let mut fx = Fixture::new();
    let ann = member();
    let existing = ann.clone();
    fx.members.expect_find_by_phone().times(1).returning(move |_| Ok(Some(existing.clone())));
    fx.members.expect_referral_code_owner().never();
    fx.valid_sign_in(ann, false);
    let service = fx.service();

    let signed_in = service
        .verify_otp(verify_with_referral("123456", "ZZZ999"), &anonymous())
        .await
        .expect("signed in");

    assert!(!signed_in.created);
}

#[tokio::test]
async fn without_a_referral_code_no_member_is_looked_up_before_the_code_is_checked() {
    let mut fx = Fixture::new();
    fx.members.expect_find_by_phone().never();
    fx.members.expect_referral_code_owner().never();
    fx.valid_sign_in(member(), true);
    let service = fx.service();

    service.verify_otp(verify("123456"), &anonymous()).await.expect("signed in");
}

#[tokio::test]
async fn a_referral_code_that_vanishes_during_sign_up_answers_referral_code_not_found() {
    let mut fx = Fixture::new();
    fx.members.expect_find_by_phone().returning(|_| Ok(None));
    fx.members.expect_referral_code_owner().returning(|_| Ok(Some(MemberId::new())));
    fx.code_checked(VerifyOutcome::Valid);
    fx.members.expect_sign_in().times(1).returning(|_| Err(SignInStoreError::ReferralCodeNotFound));
    fx.tokens.expect_issue().never();
    let service = fx.service();

    let err = service
        .verify_otp(verify_with_referral("123456", "K49FJ5"), &anonymous())
        .await
        .expect_err("referrer gone");

    assert!(matches!(err, VerifyOtpError::ReferralCodeNotFound), "{err:?}");
}

#[tokio::test]
async fn a_referral_code_collision_is_retried_with_a_fresh_code() {
    let mut fx = Fixture::new();
    let codes = Mutex::new(vec![code("BBBBBB"), code("AAAAAA")]);
    fx.referral_codes = Some(Arc::new(move || {
        codes.lock().expect("not poisoned").pop().expect("only two codes are asked for")
    }));
    fx.code_checked(VerifyOutcome::Valid);
    fx.tokens_signed();
    let requests = Captured::new();
    let seen = requests.clone();
    fx.members
        .expect_sign_in()
        .withf(|r| r.new_referral_code.as_str() == "AAAAAA")
        .times(1)
        .returning(|_| Err(SignInStoreError::ReferralCodeCollision));
    let ann = member();
    let signed_up = ann.clone();
    fx.members
        .expect_sign_in()
        .withf(|r| r.new_referral_code.as_str() == "BBBBBB")
        .times(1)
        .returning(move |r| {
            seen.push(r);
            Ok(SignInRecord { member: signed_up.clone(), created: true })
        });
    let service = fx.service();

    let signed_in = service.verify_otp(verify("123456"), &anonymous()).await.expect("signed up");

    assert_eq!(signed_in.member, ann);
    // The retry changes the referral code only: the session and its token stay the same.
    assert_eq!(token_hash(&signed_in.tokens.refresh_token), requests.one().session.refresh_hash);
}

#[tokio::test]
async fn sign_up_gives_up_with_an_unexpected_error_after_eight_collisions() {
    let mut fx = Fixture::new();
    let generated = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&generated);
    fx.referral_codes = Some(Arc::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        ReferralCode::from_trusted(format!("CODE{n:02}"))
    }));
    fx.code_checked(VerifyOutcome::Valid);
    let tried = Captured::new();
    let seen = tried.clone();
    fx.members.expect_sign_in().times(8).returning(move |r| {
        seen.push(r.new_referral_code);
        Err(SignInStoreError::ReferralCodeCollision)
    });
    fx.tokens.expect_issue().never();
    let service = fx.service();

    let err = service.verify_otp(verify("123456"), &anonymous()).await.expect_err("gives up");

    assert!(matches!(err, VerifyOtpError::Unexpected(_)), "{err:?}");
    assert_eq!(generated.load(Ordering::SeqCst), 8);
    let mut tried = tried.all();
    tried.dedup();
    assert_eq!(tried.len(), 8, "each attempt uses a fresh code");
}

#[tokio::test]
async fn a_failing_member_repository_is_unexpected() {
    let mut fx = Fixture::new();
    fx.code_checked(VerifyOutcome::Valid);
    fx.members
        .expect_sign_in()
        .returning(|_| Err(SignInStoreError::Unexpected(anyhow::anyhow!("db down"))));
    let service = fx.service();

    let err = service.verify_otp(verify("123456"), &anonymous()).await.expect_err("fails");

    assert!(matches!(err, VerifyOtpError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn a_failing_otp_store_on_verify_is_unexpected() {
    let mut fx = Fixture::new();
    fx.otp.expect_verify().returning(|_, _, _, _| Err(anyhow::anyhow!("redis down")));
    fx.members.expect_sign_in().never();
    let service = fx.service();

    let err = service.verify_otp(verify("123456"), &anonymous()).await.expect_err("fails");

    assert!(matches!(err, VerifyOtpError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn a_failure_to_sign_the_access_token_is_unexpected() {
    let mut fx = Fixture::new();
    fx.code_checked(VerifyOutcome::Valid);
    fx.signs_in(member(), true);
    fx.tokens.expect_issue().returning(|_| Err(anyhow::anyhow!("no key")));
    let service = fx.service();

    let err = service.verify_otp(verify("123456"), &anonymous()).await.expect_err("fails");

    assert!(matches!(err, VerifyOtpError::Unexpected(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// refresh
// ---------------------------------------------------------------------------------------------

const OLD_REFRESH: &str = "an-old-refresh-token";

#[tokio::test]
async fn a_live_refresh_token_is_rotated_to_a_new_pair() {
    let mut fx = Fixture::new();
    fx.rotation(RotateOutcome::Rotated(refreshed(MemberId::new(), SessionId::new())));
    fx.tokens_signed();
    let service = fx.service();

    let pair = service.refresh(OLD_REFRESH).await.expect("rotated");

    assert_eq!(pair.access_token, ACCESS_TOKEN);
    assert_eq!(pair.expires_in, 900);
    assert_ne!(pair.refresh_token.expose(), OLD_REFRESH);
    assert!(!pair.refresh_token.expose().is_empty());
}

#[tokio::test]
async fn the_rotated_token_is_the_same_for_the_same_old_token() {
    let mut fx = Fixture::new();
    fx.rotation(RotateOutcome::Rotated(refreshed(MemberId::new(), SessionId::new())));
    fx.tokens_signed();
    let service = fx.service();

    let first = service.refresh(OLD_REFRESH).await.expect("rotated");
    let second = service.refresh(OLD_REFRESH).await.expect("rotated");
    let other = service.refresh("another-refresh-token").await.expect("rotated");

    assert_eq!(first.refresh_token, second.refresh_token);
    assert_ne!(first.refresh_token, other.refresh_token);
}

#[tokio::test]
async fn the_rotation_stores_the_hashes_of_the_presented_and_the_returned_tokens() {
    let mut fx = Fixture::new();
    let hashes = fx.rotation(RotateOutcome::Rotated(refreshed(MemberId::new(), SessionId::new())));
    fx.tokens_signed();
    let service = fx.service();

    let pair = service.refresh(OLD_REFRESH).await.expect("rotated");

    let (old, new) = hashes.one();
    assert_eq!(old, token_hash(&RefreshToken::new(OLD_REFRESH.to_owned())));
    assert_eq!(new, token_hash(&pair.refresh_token));
}

#[tokio::test]
async fn a_rotation_extends_the_session_by_the_refresh_lifetime_with_the_configured_grace() {
    let mut fx = Fixture::new();
    fx.config.refresh_ttl_secs = 3_600;
    fx.config.refresh_grace_secs = 7;
    fx.sessions
        .expect_rotate()
        .withf(|_, _, at, grace, expires| {
            *at == now() && *grace == 7 && *expires == now() + Duration::seconds(3_600)
        })
        .times(1)
        .returning(|_, _, _, _, _| {
            Ok(RotateOutcome::Rotated(refreshed(MemberId::new(), SessionId::new())))
        });
    fx.tokens_signed();
    let service = fx.service();

    service.refresh(OLD_REFRESH).await.expect("rotated");
}

#[tokio::test]
async fn the_refreshed_access_token_carries_the_session_and_its_current_group() {
    let mut fx = Fixture::new();
    let (member_id, session_id) = (MemberId::new(), SessionId::new());
    fx.rotation(RotateOutcome::Rotated(refreshed(member_id, session_id)));
    let claims = fx.tokens_signed();
    let service = fx.service();

    service.refresh(OLD_REFRESH).await.expect("rotated");

    let claims = claims.one();
    assert_eq!((claims.sub, claims.sid), (member_id, session_id));
    assert_eq!(claims.grp.as_deref(), Some("acme"));
    assert_eq!((claims.iat, claims.exp), (now().timestamp(), now().timestamp() + 900));
}

#[tokio::test]
async fn a_concurrent_refresh_within_the_grace_gets_the_same_new_refresh_token() {
    let (member_id, session_id) = (MemberId::new(), SessionId::new());

    let mut fx = Fixture::new();
    fx.rotation(RotateOutcome::Rotated(refreshed(member_id, session_id)));
    fx.tokens_signed();
    let winner = fx.service().refresh(OLD_REFRESH).await.expect("rotated");

    let mut fx = Fixture::new();
    fx.rotation(RotateOutcome::Grace(refreshed(member_id, session_id)));
    let claims = fx.tokens_signed();
    let late = fx.service().refresh(OLD_REFRESH).await.expect("within the grace");

    assert_eq!(late.refresh_token, winner.refresh_token);
    assert_eq!(late.access_token, ACCESS_TOKEN);
    assert_eq!(late.expires_in, winner.expires_in);
    let claims = claims.one();
    assert_eq!((claims.sub, claims.sid), (member_id, session_id));
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_session_at_once() {
    let mut fx = Fixture::new();
    let (member_id, session_id) = (MemberId::new(), SessionId::new());
    fx.rotation(RotateOutcome::Reused { member_id, session_id });
    fx.revocations
        .expect_revoke_sessions()
        .withf(move |m, s, ttl| *m == member_id && s == [session_id] && *ttl == 36_000)
        .times(1)
        .returning(|_, _, _| Ok(()));
    fx.tokens.expect_issue().never();
    let service = fx.service();

    let err = service.refresh(OLD_REFRESH).await.expect_err("reused");

    assert!(matches!(err, RefreshError::Reused), "{err:?}");
}

#[tokio::test]
async fn a_reused_refresh_token_whose_revocation_fails_is_unexpected() {
    let mut fx = Fixture::new();
    fx.rotation(RotateOutcome::Reused { member_id: MemberId::new(), session_id: SessionId::new() });
    fx.revocations.expect_revoke_sessions().returning(|_, _, _| Err(anyhow::anyhow!("down")));
    let service = fx.service();

    let err = service.refresh(OLD_REFRESH).await.expect_err("fails");

    assert!(matches!(err, RefreshError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn an_unknown_refresh_token_is_invalid() {
    let mut fx = Fixture::new();
    fx.rotation(RotateOutcome::Invalid);
    fx.revocations.expect_revoke_sessions().never();
    fx.tokens.expect_issue().never();
    let service = fx.service();

    let err = service.refresh("never-issued").await.expect_err("invalid");

    assert!(matches!(err, RefreshError::Invalid), "{err:?}");
}

#[tokio::test]
async fn a_failing_session_repository_on_refresh_is_unexpected() {
    let mut fx = Fixture::new();
    fx.sessions.expect_rotate().returning(|_, _, _, _, _| Err(anyhow::anyhow!("db down")));
    let service = fx.service();

    let err = service.refresh(OLD_REFRESH).await.expect_err("fails");

    assert!(matches!(err, RefreshError::Unexpected(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// authenticate and verify_token
// ---------------------------------------------------------------------------------------------

fn token_checks_out(fx: &mut Fixture, claims: AccessClaims) {
    fx.tokens.expect_verify().withf(|t| t == ACCESS_TOKEN).returning(move |_| Ok(claims.clone()));
}

#[tokio::test]
async fn an_invalid_access_token_is_unauthorized_without_a_revocation_lookup() {
    let mut fx = Fixture::new();
    fx.tokens.expect_verify().returning(|_| Err(InvalidToken));
    fx.revocations.expect_is_revoked().never();
    let service = fx.service();

    let err = service.authenticate("forged").await.expect_err("refused");
    assert!(matches!(err, AuthError::Unauthorized), "{err:?}");
    let err = service.verify_token("forged").await.expect_err("refused");
    assert!(matches!(err, AuthError::Unauthorized), "{err:?}");
}

#[tokio::test]
async fn a_revoked_access_token_is_unauthorized() {
    let mut fx = Fixture::new();
    let claims = claims_for(MemberId::new(), SessionId::new());
    let (sub, sid, iat) = (claims.sub, claims.sid, claims.iat);
    token_checks_out(&mut fx, claims);
    fx.revocations
        .expect_is_revoked()
        .withf(move |m, s, at| (*m, *s, *at) == (sub, sid, iat))
        .times(2)
        .returning(|_, _, _| Ok(true));
    let service = fx.service();

    let err = service.authenticate(ACCESS_TOKEN).await.expect_err("revoked");
    assert!(matches!(err, AuthError::Unauthorized), "{err:?}");
    let err = service.verify_token(ACCESS_TOKEN).await.expect_err("revoked");
    assert!(matches!(err, AuthError::Unauthorized), "{err:?}");
}

#[tokio::test]
async fn a_good_access_token_authenticates_its_member_and_session() {
    let mut fx = Fixture::new();
    let claims = claims_for(MemberId::new(), SessionId::new());
    let (sub, sid) = (claims.sub, claims.sid);
    token_checks_out(&mut fx, claims);
    fx.revocations.expect_is_revoked().times(1).returning(|_, _, _| Ok(false));
    let service = fx.service();

    let principal = service.authenticate(ACCESS_TOKEN).await.expect("authenticated");

    assert_eq!(
        principal,
        Principal { member_id: sub, session_id: sid, current_group: Some("acme".to_owned()) }
    );
}

#[tokio::test]
async fn verify_token_tells_the_member_the_session_and_the_expiry() {
    let mut fx = Fixture::new();
    let claims = claims_for(MemberId::new(), SessionId::new());
    let (sub, sid) = (claims.sub, claims.sid);
    token_checks_out(&mut fx, claims);
    fx.revocations.expect_is_revoked().times(1).returning(|_, _, _| Ok(false));
    let service = fx.service();

    let info = service.verify_token(ACCESS_TOKEN).await.expect("valid");

    assert_eq!(
        info,
        TokenInfo { member_id: sub, session_id: sid, expires_at: now() + Duration::seconds(900) }
    );
}

#[tokio::test]
async fn a_failing_revocation_list_is_unexpected_not_a_pass() {
    let mut fx = Fixture::new();
    token_checks_out(&mut fx, claims_for(MemberId::new(), SessionId::new()));
    fx.revocations.expect_is_revoked().returning(|_, _, _| Err(anyhow::anyhow!("redis down")));
    let service = fx.service();

    let err = service.authenticate(ACCESS_TOKEN).await.expect_err("fails");
    assert!(matches!(err, AuthError::Unexpected(_)), "{err:?}");
    let err = service.verify_token(ACCESS_TOKEN).await.expect_err("fails");
    assert!(matches!(err, AuthError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn a_token_whose_expiry_is_out_of_range_is_unauthorized_by_verify_token() {
    let mut fx = Fixture::new();
    let claims = AccessClaims { exp: i64::MAX, ..claims_for(MemberId::new(), SessionId::new()) };
    token_checks_out(&mut fx, claims);
    fx.revocations.expect_is_revoked().returning(|_, _, _| Ok(false));
    let service = fx.service();

    let err = service.verify_token(ACCESS_TOKEN).await.expect_err("refused");

    assert!(matches!(err, AuthError::Unauthorized), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// logout, list_sessions, revoke_session
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_revokes_the_session_in_the_revocation_list_before_the_database() {
    let mut fx = Fixture::new();
    let me = principal();
    let (member_id, session_id) = (me.member_id, me.session_id);
    let mut order = Sequence::new();
    fx.revocations
        .expect_revoke_sessions()
        .withf(move |m, s, ttl| *m == member_id && s == [session_id] && *ttl == 36_000)
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(()));
    fx.sessions
        .expect_revoke()
        .withf(move |m, s, at| (*m, *s, *at) == (member_id, session_id, now()))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(true));
    let service = fx.service();

    service.logout(&me).await.expect("logged out");
}

#[tokio::test]
async fn a_second_logout_of_the_same_session_is_not_an_error() {
    let mut fx = Fixture::new();
    fx.revocations.expect_revoke_sessions().times(1).returning(|_, _, _| Ok(()));
    fx.sessions.expect_revoke().times(1).returning(|_, _, _| Ok(false));
    let service = fx.service();

    service.logout(&principal()).await.expect("already logged out is logged out");
}

#[tokio::test]
async fn when_the_revocation_list_fails_the_session_is_left_for_a_retry() {
    let mut fx = Fixture::new();
    fx.revocations.expect_revoke_sessions().returning(|_, _, _| Err(anyhow::anyhow!("down")));
    fx.sessions.expect_revoke().never();
    let service = fx.service();

    let err = service.revoke_session(&principal(), SessionId::new()).await.expect_err("fails");
    assert!(matches!(err, NotFoundError::Unexpected(_)), "{err:?}");
    service.logout(&principal()).await.expect_err("fails");
}

#[tokio::test]
async fn revoking_another_session_of_the_caller_revokes_it_in_both_places() {
    let mut fx = Fixture::new();
    let me = principal();
    let member_id = me.member_id;
    let other = SessionId::new();
    let mut order = Sequence::new();
    fx.revocations
        .expect_revoke_sessions()
        .withf(move |m, s, _| *m == member_id && s == [other])
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(()));
    fx.sessions
        .expect_revoke()
        .withf(move |m, s, _| (*m, *s) == (member_id, other))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(true));
    let service = fx.service();

    service.revoke_session(&me, other).await.expect("revoked");
}

#[tokio::test]
async fn revoking_an_unknown_session_answers_not_found() {
    let mut fx = Fixture::new();
    fx.revocations.expect_revoke_sessions().returning(|_, _, _| Ok(()));
    fx.sessions.expect_revoke().times(1).returning(|_, _, _| Ok(false));
    let service = fx.service();

    let err = service.revoke_session(&principal(), SessionId::new()).await.expect_err("unknown");

    assert!(matches!(err, NotFoundError::NotFound), "{err:?}");
}

#[tokio::test]
async fn the_session_listing_marks_the_current_session() {
    let mut fx = Fixture::new();
    let me = principal();
    let member_id = me.member_id;
    let session = |id| Session {
        id,
        created_at: now(),
        last_used_at: now(),
        user_agent: Some("Onboard/1.0".to_owned()),
    };
    let listed = vec![session(SessionId::new()), session(me.session_id), session(SessionId::new())];
    let answer = listed.clone();
    fx.sessions
        .expect_list()
        .withf(move |m, at| (*m, *at) == (member_id, now()))
        .times(1)
        .returning(move |_, _| Ok(answer.clone()));
    let service = fx.service();

    let sessions = service.list_sessions(&me).await.expect("listed");

    let expected: Vec<SessionListing> = listed
        .into_iter()
        .map(|s| SessionListing { current: s.id == me.session_id, session: s })
        .collect();
    assert_eq!(sessions, expected);
    assert_eq!(sessions.iter().filter(|s| s.current).count(), 1);
    assert!(sessions[1].current, "the order is kept");
}

// ---------------------------------------------------------------------------------------------
// me, update_me, delete_me, get_member
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn me_answers_the_profile_with_the_configured_number_of_invitees() {
    let mut fx = Fixture::new();
    fx.config.profile_invitees = 7;
    let me = principal();
    let member_id = me.member_id;
    let profile = Profile { member: member(), invitees: Vec::new(), invitees_count: 0 };
    let answer = profile.clone();
    fx.members
        .expect_profile()
        .withf(move |id, n| (*id, *n) == (member_id, 7))
        .times(1)
        .returning(move |_, _| Ok(Some(answer.clone())));
    let service = fx.service();

    assert_eq!(service.me(&me).await.expect("the profile"), profile);
}

#[tokio::test]
async fn me_of_a_member_who_is_gone_is_unauthorized() {
    let mut fx = Fixture::new();
    fx.members.expect_profile().returning(|_, _| Ok(None));
    let service = fx.service();

    let err = service.me(&principal()).await.expect_err("gone");

    assert!(matches!(err, AuthError::Unauthorized), "{err:?}");
}

#[tokio::test]
async fn update_me_applies_the_patch_to_the_caller() {
    let mut fx = Fixture::new();
    let me = principal();
    let member_id = me.member_id;
    let patch = ProfilePatch {
        first_name: Some(PersonName::parse("Ann").expect("a name")),
        last_name: None,
        email: Some(Email::parse("ann@example.com").expect("an e-mail")),
    };
    let expected_patch = patch.clone();
    let updated = member();
    let answer = updated.clone();
    fx.members
        .expect_update_profile()
        .withf(move |id, p, _| *id == member_id && *p == expected_patch)
        .times(1)
        .returning(move |_, _, _| Ok(answer.clone()));
    let service = fx.service();

    assert_eq!(service.update_me(&me, &patch).await.expect("updated"), updated);
}

#[tokio::test]
async fn an_e_mail_taken_by_another_member_is_refused() {
    let mut fx = Fixture::new();
    fx.members.expect_update_profile().returning(|_, _, _| Err(UpdateProfileError::EmailTaken));
    let service = fx.service();

    let err = service.update_me(&principal(), &ProfilePatch::default()).await.expect_err("taken");

    assert!(matches!(err, UpdateProfileError::EmailTaken), "{err:?}");
}

#[tokio::test]
async fn delete_me_deletes_the_member_then_revokes_every_token_of_theirs() {
    let mut fx = Fixture::new();
    let me = principal();
    let member_id = me.member_id;
    let mut order = Sequence::new();
    fx.members
        .expect_delete()
        .withf(move |m, at, _| (*m, *at) == (member_id, now()))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(vec![SessionId::new(), SessionId::new()]));
    fx.revocations
        .expect_revoke_member()
        .withf(move |m, at, ttl| (*m, *at, *ttl) == (member_id, now().timestamp(), 36_000))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _| Ok(()));
    let service = fx.service();

    service.delete_me(&me).await.expect("deleted");
}

#[tokio::test]
async fn a_passing_revocation_failure_is_retried() {
    let mut fx = Fixture::new();
    fx.members.expect_delete().times(1).returning(|_, _, _| Ok(vec![]));
    let mut calls = 0;
    fx.revocations.expect_revoke_member().times(2).returning(move |_, _, _| {
        calls += 1;
        if calls == 1 { Err(anyhow::anyhow!("blip")) } else { Ok(()) }
    });
    let service = fx.service();

    service.delete_me(&principal()).await.expect("deleted after a retry");
}

#[tokio::test]
async fn a_lasting_revocation_failure_is_reported() {
    let mut fx = Fixture::new();
    fx.members.expect_delete().times(1).returning(|_, _, _| Ok(vec![]));
    fx.revocations
        .expect_revoke_member()
        .times(3)
        .returning(|_, _, _| Err(anyhow::anyhow!("down")));
    let service = fx.service();

    let err = service.delete_me(&principal()).await.expect_err("fails");

    assert!(matches!(err, DeleteMemberError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn a_refused_deletion_passes_its_reason_through_and_leaves_the_tokens_alive() {
    let mut fx = Fixture::new();
    fx.revocations.expect_revoke_member().never();
    fx.members.expect_delete().returning(|_, _, _| Err(DeleteMemberError::LastOwner));
    let service = fx.service();

    let err = service.delete_me(&principal()).await.expect_err("refused");

    assert!(matches!(err, DeleteMemberError::LastOwner), "{err:?}");
}

#[tokio::test]
async fn get_member_answers_what_the_caller_may_see() {
    let mut fx = Fixture::new();
    let me = principal();
    let viewer = me.member_id;
    let other = member();
    let other_id = other.id;
    let view = MemberView::Card(MemberCard::from(&other));
    let answer = view.clone();
    fx.members
        .expect_view()
        .withf(move |v, id| (*v, *id) == (viewer, other_id))
        .times(1)
        .returning(move |_, _| Ok(Some(answer.clone())));
    let service = fx.service();

    assert_eq!(service.get_member(&me, other_id).await.expect("visible"), view);
}

#[tokio::test]
async fn get_member_of_an_unknown_member_is_not_found() {
    let mut fx = Fixture::new();
    fx.members.expect_view().returning(|_, _| Ok(None));
    let service = fx.service();

    let err = service.get_member(&principal(), MemberId::new()).await.expect_err("unknown");

    assert!(matches!(err, NotFoundError::NotFound), "{err:?}");
}

#[tokio::test]
async fn a_failing_member_repository_on_get_member_is_unexpected() {
    let mut fx = Fixture::new();
    fx.members.expect_view().returning(|_, _| Err(anyhow::anyhow!("db down")));
    let service = fx.service();

    let err = service.get_member(&principal(), MemberId::new()).await.expect_err("fails");

    assert!(matches!(err, NotFoundError::Unexpected(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Secrets and token hashes
// ---------------------------------------------------------------------------------------------

/// The code hash that a service keyed with `master` presents for `code`, and the token it
/// rotates [`OLD_REFRESH`] to.
async fn keyed_outputs(master: &[u8]) -> (CodeHash, RefreshToken) {
    let mut fx = Fixture::new();
    fx.secrets = Secrets::derive(master);
    let presented = fx.code_checked(VerifyOutcome::NoCode);
    fx.rotation(RotateOutcome::Rotated(refreshed(MemberId::new(), SessionId::new())));
    fx.tokens_signed();
    let service = fx.service();
    let _ = service.verify_otp(verify("123456"), &anonymous()).await;
    let pair = service.refresh(OLD_REFRESH).await.expect("rotated");
    (presented.one(), pair.refresh_token)
}

#[tokio::test]
async fn instances_sharing_a_master_secret_hash_codes_and_rotate_tokens_alike() {
    let a = keyed_outputs(b"one secret shared by every instance").await;
    let b = keyed_outputs(b"one secret shared by every instance").await;

    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
}

#[tokio::test]
async fn different_master_secrets_give_different_code_hashes_and_rotated_tokens() {
    let a = keyed_outputs(b"the secret of one deployment").await;
    let b = keyed_outputs(b"the secret of another deployment").await;

    assert_ne!(a.0, b.0);
    assert_ne!(a.1, b.1);
}

#[test]
fn a_token_hash_is_the_sha256_of_the_token_text() {
    let hash = token_hash(&RefreshToken::new("abc".to_owned()));
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    let expected: [u8; 32] = [
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22,
        0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
        0x15, 0xad,
    ];
    assert_eq!(hash, TokenHash(expected));
}

#[test]
fn the_service_exposes_its_configuration() {
    let mut fx = Fixture::new();
    fx.config.otp_length = 4;
    let service = fx.service();

    assert_eq!(service.config().otp_length, 4);
}

// ---------------------------------------------------------------------------------------------
// Blocked members
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_blocked_member_with_the_right_code_gets_no_tokens() {
    let mut fx = Fixture::new();
    fx.code_checked(VerifyOutcome::Valid);
    fx.members.expect_sign_in().times(1).returning(|_| Err(SignInStoreError::Blocked));
    fx.tokens.expect_issue().never();
    let service = fx.service();

    let err = service.verify_otp(verify("123456"), &anonymous()).await.expect_err("blocked");

    assert!(matches!(err, VerifyOtpError::Blocked), "{err:?}");
}

#[tokio::test]
async fn a_refresh_token_of_a_blocked_member_is_refused_as_blocked() {
    let mut fx = Fixture::new();
    fx.rotation(RotateOutcome::Blocked);
    fx.revocations.expect_revoke_sessions().never();
    fx.tokens.expect_issue().never();
    let service = fx.service();

    let err = service.refresh("of-a-blocked-member").await.expect_err("blocked");

    assert!(matches!(err, RefreshError::Blocked), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_sign_up_hands_the_store_its_events_for_when_it_creates_the_member() {
    use onboard_groups::events::{GroupEvent, JoinedVia};

    let mut fx = Fixture::new();
    fx.config.personal_workspace = true;
    let requests = fx.valid_sign_in(member(), true);
    let service = fx.service();

    service.verify_otp(verify("123456"), &anonymous()).await.expect("signed up");

    let request = requests.one();
    let workspace = request.personal_workspace.clone().expect("a personal workspace");
    let events = &request.created_events;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.iter().all(|e| e.occurred_at == now()));
    assert_eq!(
        events[0].decode::<MemberEvent>(),
        Some(MemberEvent::SignedUp {
            member_id: request.new_member_id,
            referred_by: None,
            workspace_id: Some(workspace.id),
        })
    );
    assert_eq!(
        events[1].decode::<GroupEvent>(),
        Some(GroupEvent::Created {
            group_id: workspace.id,
            slug: workspace.slug.clone(),
            name: workspace.name.clone(),
            owner_id: request.new_member_id,
        })
    );
    assert_eq!(
        events[2].decode::<GroupEvent>(),
        Some(GroupEvent::MemberJoined {
            group_id: workspace.id,
            member_id: request.new_member_id,
            role: "owner".to_owned(),
            via: JoinedVia::Created,
        })
    );
}

#[tokio::test]
async fn a_sign_up_without_a_personal_workspace_has_only_its_signed_up_event() {
    let mut fx = Fixture::new();
    fx.config.personal_workspace = false;
    let requests = fx.valid_sign_in(member(), true);
    let service = fx.service();

    service.verify_otp(verify("123456"), &anonymous()).await.expect("signed up");

    let request = requests.one();
    assert_eq!(request.created_events.len(), 1);
    assert_eq!(
        request.created_events[0].decode::<MemberEvent>(),
        Some(MemberEvent::SignedUp {
            member_id: request.new_member_id,
            referred_by: None,
            workspace_id: None,
        })
    );
}

#[tokio::test]
async fn a_replaced_workspace_slug_is_the_slug_its_created_event_names() {
    use onboard_groups::events::GroupEvent;

    let workspace = crate::ports::NewWorkspace {
        id: onboard_kernel::GroupId::new(),
        slug: "ws-aaaaaaaaaa".to_owned(),
        name: "Personal".to_owned(),
    };
    let events = crate::events::signed_up(MemberId::new(), None, Some(&workspace), now());

    let replaced = crate::events::with_workspace_slug(&events, workspace.id, "ws-bbbbbbbbbb");

    assert!(matches!(
        replaced[1].decode::<GroupEvent>(),
        Some(GroupEvent::Created { slug, .. }) if slug == "ws-bbbbbbbbbb"
    ));
    assert_eq!(replaced[0], events[0]);
    assert_eq!(replaced[2], events[2]);
}

#[tokio::test]
async fn a_profile_update_hands_the_store_the_names_of_the_fields_it_sets() {
    let mut fx = Fixture::new();
    let me = principal();
    let member_id = me.member_id;
    let patch = ProfilePatch {
        first_name: None,
        last_name: Some(PersonName::parse("Lee").expect("a name")),
        email: Some(Email::parse("ann@example.com").expect("an e-mail")),
    };
    let events = Captured::new();
    let seen = events.clone();
    let answer = member();
    fx.members.expect_update_profile().times(1).returning(move |_, _, events| {
        seen.push(events.to_vec());
        Ok(answer.clone())
    });
    let service = fx.service();

    service.update_me(&me, &patch).await.expect("updated");

    let events = events.one();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].occurred_at, now());
    assert_eq!(
        events[0].decode::<MemberEvent>(),
        Some(MemberEvent::ProfileUpdated {
            member_id,
            fields: vec!["last_name".to_owned(), "email".to_owned()],
        })
    );
}

#[tokio::test]
async fn an_empty_profile_update_hands_the_store_no_event() {
    let mut fx = Fixture::new();
    let answer = member();
    fx.members
        .expect_update_profile()
        .withf(|_, _, events| events.is_empty())
        .times(1)
        .returning(move |_, _, _| Ok(answer.clone()));
    let service = fx.service();

    service.update_me(&principal(), &ProfilePatch::default()).await.expect("unchanged");
}

#[tokio::test]
async fn a_deletion_hands_the_store_its_deleted_event() {
    let mut fx = Fixture::new();
    let me = principal();
    let member_id = me.member_id;
    fx.members
        .expect_delete()
        .withf(move |_, _, events| {
            events.len() == 1
                && events[0].decode::<MemberEvent>() == Some(MemberEvent::Deleted { member_id })
        })
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    fx.revocations.expect_revoke_member().returning(|_, _, _| Ok(()));
    let service = fx.service();

    service.delete_me(&me).await.expect("deleted");
}

// ---------------------------------------------------------------------------------------------
// the seed APIs' sessions (compat)
// ---------------------------------------------------------------------------------------------

#[test]
fn revocations_outlive_the_longest_access_token_of_any_kind_of_session() {
    let mut config = MembersConfig::default();
    assert_eq!(config.revocation_ttl_secs(), 36_000, "referral-api's 600 minutes");
    config.fixed_access_ttl_secs = 60;
    config.keeps_old_access_ttl_secs = 7_200;
    assert_eq!(config.revocation_ttl_secs(), 7_200);
    config.access_ttl_secs = 9_000;
    assert_eq!(config.revocation_ttl_secs(), 9_000);
}

#[tokio::test]
async fn a_fixed_session_refreshes_without_rotating_and_never_takes_reuse_for_theft() {
    let mut fx = Fixture::new();
    let (member_id, session_id) = (MemberId::new(), SessionId::new());
    fx.sessions.expect_rotate().never();
    fx.sessions
        .expect_refresh_lenient()
        .withf(|kind, old, new, _, _, _| *kind == SessionKind::Fixed && old == new)
        .times(3)
        .returning(move |_, _, _, _, _, _| {
            Ok(RotateOutcome::Rotated(refreshed(member_id, session_id)))
        });
    fx.revocations.expect_revoke_sessions().never();
    fx.tokens_signed();
    let service = fx.service();

    for _ in 0..3 {
        let pair = service.refresh_as(OLD_REFRESH, SessionKind::Fixed).await.expect("refreshed");
        assert_eq!(pair.refresh_token.expose(), OLD_REFRESH, "the token is kept");
        assert_eq!(pair.expires_in, 36_000, "referral-api's access lifetime");
    }
}

#[tokio::test]
async fn a_session_that_keeps_old_tokens_rotates_and_answers_a_used_token_again() {
    let mut fx = Fixture::new();
    let (member_id, session_id) = (MemberId::new(), SessionId::new());
    let outcomes = Mutex::new(vec![
        RotateOutcome::Grace(refreshed(member_id, session_id)),
        RotateOutcome::Rotated(refreshed(member_id, session_id)),
    ]);
    fx.sessions
        .expect_refresh_lenient()
        .withf(|kind, old, new, _, _, _| *kind == SessionKind::RotatingKeepsOld && old != new)
        .times(2)
        .returning(move |_, _, _, _, _, _| {
            Ok(outcomes.lock().expect("lock").pop().expect("an outcome"))
        });
    fx.revocations.expect_revoke_sessions().never();
    fx.tokens_signed();
    let service = fx.service();

    let first = service.refresh_as(OLD_REFRESH, SessionKind::RotatingKeepsOld).await.expect("ok");
    let again = service.refresh_as(OLD_REFRESH, SessionKind::RotatingKeepsOld).await.expect("ok");

    assert_ne!(first.refresh_token.expose(), OLD_REFRESH);
    assert_eq!(first.refresh_token.expose(), again.refresh_token.expose());
    assert_eq!(first.expires_in, 3_600, "connect-hub's access lifetime");
}

#[tokio::test]
async fn a_blank_profile_is_filled_from_an_invite_and_a_chosen_one_is_kept() {
    let mut fx = Fixture::new();
    let me = principal();
    let mut named = member();
    named.first_name = Some("Chosen".to_owned());
    named.email = None;
    fx.members.expect_get().returning(move |_| Ok(Some(named.clone())));
    let email = Email::parse("invitee@example.com").expect("e-mail");
    let expected = ProfilePatch { email: Some(email.clone()), ..ProfilePatch::default() };
    fx.members
        .expect_update_profile()
        .withf(move |_, p, _| *p == expected)
        .times(1)
        .returning(|_, _, _| Ok(member()));
    let service = fx.service();

    let name = PersonName::parse("From Invite").ok();
    service.fill_blank_profile(&me, name, Some(email)).await.expect("filled");
}
