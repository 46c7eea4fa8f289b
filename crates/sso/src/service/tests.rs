//! Unit tests of the single sign-on use cases, against the mockall twins of the ports.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use onboard_kernel::{MemberId, MockClock, ReferralCode};
use onboard_members::ports::{
    MockAccessTokens, MockMemberRepository, MockOtpStore, MockRateLimiter, MockRevocationList,
    MockSessionRepository, MockSmsSender, SignInRecord,
};
use onboard_members::{Member, MembersConfig, MembersPorts, Secrets};

use super::*;
use crate::model::IdentityClaims;
use crate::ports::{MockIdentityProviders, MockIdentityRepository, MockSsoStateStore};

const APP: &str = "https://app.example.com/sso";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).single().expect("a valid instant")
}

fn clock() -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock.expect_now().returning(now);
    Arc::new(clock)
}

fn members() -> MembersService {
    let mut tokens = MockAccessTokens::new();
    tokens.expect_issue().returning(|_| Ok("signed.access.token".to_owned()));
    MembersService::new(
        MembersPorts {
            otp: Arc::new(MockOtpStore::new()),
            limiter: Arc::new(MockRateLimiter::new()),
            members: Arc::new(MockMemberRepository::new()),
            sessions: Arc::new(MockSessionRepository::new()),
            revocations: Arc::new(MockRevocationList::new()),
            tokens: Arc::new(tokens),
            sms: Arc::new(MockSmsSender::new()),
            clock: clock(),
        },
        MembersConfig::default(),
        Secrets::derive(b"test"),
    )
}

/// Providers that know `sparcs` only.
fn providers() -> MockIdentityProviders {
    let mut providers = MockIdentityProviders::new();
    providers.expect_knows().returning(|p| p.as_str() == "sparcs");
    providers
}

fn service(
    providers: MockIdentityProviders,
    states: MockSsoStateStore,
    identities: MockIdentityRepository,
) -> SsoService {
    SsoService::new(
        SsoPorts {
            providers: Arc::new(providers),
            states: Arc::new(states),
            identities: Arc::new(identities),
            clock: clock(),
        },
        members(),
        SsoConfig { redirect_uris: BTreeSet::from([APP.to_owned()]), ..SsoConfig::default() },
    )
}

fn sparcs() -> ProviderName {
    ProviderName::parse("sparcs").expect("a name")
}

fn login(provider: ProviderName) -> PendingLogin {
    PendingLogin {
        provider,
        redirect_uri: APP.to_owned(),
        nonce: "n".to_owned(),
        pkce_verifier: "v".to_owned(),
    }
}

#[tokio::test]
async fn an_unknown_provider_cannot_start_a_login() {
    let sso = service(providers(), MockSsoStateStore::new(), MockIdentityRepository::new());
    assert!(matches!(sso.start("github", APP).await, Err(StartError::UnknownProvider)));
    assert!(matches!(sso.start("not a name", APP).await, Err(StartError::UnknownProvider)));
}

#[tokio::test]
async fn a_redirect_uri_must_match_an_allowed_one_exactly() {
    let sso = service(providers(), MockSsoStateStore::new(), MockIdentityRepository::new());
    for uri in [format!("{APP}/"), format!("{APP}?x=1"), "https://evil.example.com/sso".into()] {
        assert!(matches!(sso.start("sparcs", &uri).await, Err(StartError::RedirectUriNotAllowed)));
    }
}

#[tokio::test]
async fn a_started_login_is_kept_under_the_digest_of_its_state_for_ten_minutes() {
    let seen: Arc<Mutex<Option<AuthorizationRequest>>> = Arc::default();
    let mut providers = providers();
    let seen_by_provider = seen.clone();
    providers.expect_authorization_url().times(1).returning(move |_, request| {
        *seen_by_provider.lock().expect("lock") = Some(request.clone());
        Ok("https://sso.example.com/authorize?x".to_owned())
    });
    let mut states = MockSsoStateStore::new();
    let seen_by_store = seen.clone();
    states.expect_put_login().times(1).returning(move |key, login, ttl, _| {
        let request = seen_by_store.lock().expect("lock").clone().expect("the URL came first");
        assert_eq!(key, lookup_key(&request.state));
        assert_ne!(key, request.state, "the state itself is never a key");
        assert_eq!(login.nonce, request.nonce);
        assert_eq!(login.pkce_verifier, request.pkce_verifier);
        assert_eq!(login.redirect_uri, APP);
        assert_eq!(ttl, 600);
        Ok(())
    });
    let sso = service(providers, states, MockIdentityRepository::new());
    let url = sso.start("sparcs", APP).await.expect("started");
    assert_eq!(url, "https://sso.example.com/authorize?x");
    let request = seen.lock().expect("lock").clone().expect("a request");
    assert_ne!(request.state, request.nonce);
    assert_eq!(request.pkce_verifier.len(), 43, "32 random bytes, base64url");
}

#[tokio::test]
async fn an_unknown_or_used_state_is_refused_without_asking_the_provider() {
    let mut states = MockSsoStateStore::new();
    states.expect_take_login().times(1).returning(|_, _| Ok(None));
    let sso = service(providers(), states, MockIdentityRepository::new());
    let answer = sso.callback("sparcs", Some("code"), Some("state"), None).await;
    assert!(matches!(answer, Err(CallbackError::StateInvalid)));
    let answer = sso.callback("sparcs", Some("code"), None, None).await;
    assert!(matches!(answer, Err(CallbackError::StateInvalid)));
}

#[tokio::test]
async fn a_state_started_for_another_provider_is_invalid() {
    let mut providers = providers();
    providers.expect_knows().returning(|_| true);
    let mut states = MockSsoStateStore::new();
    states
        .expect_take_login()
        .returning(|_, _| Ok(Some(login(ProviderName::parse("google").expect("name")))));
    let sso = service(providers, states, MockIdentityRepository::new());
    let answer = sso.callback("sparcs", Some("code"), Some("state"), None).await;
    assert!(matches!(answer, Err(CallbackError::StateInvalid)));
}

#[tokio::test]
async fn a_failed_provider_check_issues_no_login_code() {
    let mut providers = providers();
    providers.expect_redeem().times(1).returning(|_, _, _| Err(anyhow::anyhow!("bad nonce")));
    let mut states = MockSsoStateStore::new();
    states.expect_take_login().times(1).returning(|_, _| Ok(Some(login(sparcs()))));
    states.expect_put_grant().never();
    let sso = service(providers, states, MockIdentityRepository::new());
    let answer = sso.callback("sparcs", Some("code"), Some("state"), None).await;
    assert!(matches!(answer, Err(CallbackError::Provider(_))));
}

#[tokio::test]
async fn a_checked_callback_sends_the_browser_back_with_a_login_code() {
    let mut providers = providers();
    providers
        .expect_redeem()
        .times(1)
        .withf(|_, code, login| code == "code" && login.nonce == "n")
        .returning(|_, _, _| {
            Ok(IdentityClaims { subject: "s-1".into(), ..IdentityClaims::default() })
        });
    let mut states = MockSsoStateStore::new();
    states.expect_take_login().times(1).returning(|_, _| Ok(Some(login(sparcs()))));
    let kept: Arc<Mutex<Option<String>>> = Arc::default();
    let kept_by_store = kept.clone();
    states.expect_put_grant().times(1).returning(move |key, grant, ttl, _| {
        assert_eq!(grant.claims.subject, "s-1");
        assert_eq!(ttl, 60);
        *kept_by_store.lock().expect("lock") = Some(key.to_owned());
        Ok(())
    });
    let sso = service(providers, states, MockIdentityRepository::new());
    let to = sso.callback("sparcs", Some("code"), Some("state"), None).await.expect("checked");
    let code = to.strip_prefix(&format!("{APP}?login_code=")).expect("the app's URI");
    assert_eq!(kept.lock().expect("lock").as_deref(), Some(lookup_key(code).as_str()));
}

#[tokio::test]
async fn an_unknown_login_code_signs_nobody_in() {
    let mut states = MockSsoStateStore::new();
    states.expect_take_grant().times(1).returning(|_, _| Ok(None));
    let mut identities = MockIdentityRepository::new();
    identities.expect_sign_in().never();
    let sso = service(providers(), states, identities);
    let answer = sso.exchange("nope", &ClientInfo::default()).await;
    assert!(matches!(answer, Err(ExchangeError::LoginCodeInvalid)));
}

#[tokio::test]
async fn a_login_code_becomes_a_session_of_the_linked_member() {
    let mut states = MockSsoStateStore::new();
    states.expect_take_grant().times(1).returning(|_, _| {
        Ok(Some(LoginGrant {
            provider: ProviderName::parse("sparcs").expect("name"),
            claims: IdentityClaims {
                subject: "s-1".into(),
                email: Some("ann@example.com".into()),
                email_verified: Some(false),
                ..IdentityClaims::default()
            },
        }))
    });
    let mut identities = MockIdentityRepository::new();
    let calls = Arc::new(Mutex::new(0));
    let counted = calls.clone();
    identities
        .expect_sign_in()
        .withf(|identity, draft| {
            let signed_up = draft
                .created_events
                .first()
                .and_then(|e| e.decode::<onboard_members::events::MemberEvent>());
            identity.subject == "s-1"
                && identity.verified_email.is_none()
                && draft.now == now()
                && matches!(
                    signed_up,
                    Some(onboard_members::events::MemberEvent::SignedUp { member_id, referred_by: None, .. })
                        if member_id == draft.new_member_id
                )
        })
        .returning(move |_, draft| {
            let mut n = counted.lock().expect("lock");
            *n += 1;
            if *n == 1 {
                // The first referral code is taken: the members service retries with another.
                return Err(SignInStoreError::ReferralCodeCollision);
            }
            Ok(SignInRecord {
                member: Member {
                    id: draft.new_member_id,
                    phone: None,
                    first_name: None,
                    last_name: None,
                    email: None,
                    referral_code: ReferralCode::parse("K49FJ5").expect("code"),
                    referred_by: None,
                    current_group: None,
                    created_at: now(),
                },
                created: true,
            })
        });
    let sso = service(providers(), states, identities);
    let signed_in = sso.exchange("code", &ClientInfo::default()).await.expect("signed in");
    assert!(signed_in.created);
    assert_eq!(signed_in.tokens.access_token, "signed.access.token");
    assert_ne!(signed_in.member.id, MemberId::new());
    assert_eq!(*calls.lock().expect("lock"), 2);
}

#[test]
fn the_login_code_is_added_to_the_apps_query_before_any_fragment() {
    assert_eq!(with_query("https://a.b/c", "login_code", "X"), "https://a.b/c?login_code=X");
    assert_eq!(
        with_query("https://a.b/c?x=1", "login_code", "X"),
        "https://a.b/c?x=1&login_code=X"
    );
    assert_eq!(with_query("app://cb?", "login_code", "X"), "app://cb?login_code=X");
    assert_eq!(
        with_query("https://a.b/c#top", "login_code", "X"),
        "https://a.b/c?login_code=X#top"
    );
}
