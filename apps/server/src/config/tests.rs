//! Reading the settings: defaults, refusals, and each section's variables.

use std::collections::HashMap;
use std::time::Duration;

use onboard_kernel::PhoneNumber;

use super::*;

fn settings(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
    let map: HashMap<String, String> =
        vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Settings::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn no_configuration_means_the_embedded_mode_with_echo_on() {
    let s = settings(&[]).expect("defaults are valid");
    assert!(matches!(s.storage, Storage::Memory));
    assert!(s.members.otp_echo);
    assert_eq!(s.addr, "127.0.0.1:8080");
    assert_eq!(s.members.otp_limits.ttl_secs, 300);
}

#[test]
fn postgres_and_redis_turn_echo_off_by_default() {
    let s =
        settings(&[("DATABASE_URL", "postgres://x"), ("REDIS_URL", "redis://y")]).expect("valid");
    assert!(matches!(s.storage, Storage::External { .. }));
    assert!(!s.members.otp_echo);
}

#[test]
fn one_of_the_two_urls_alone_is_refused() {
    assert!(settings(&[("DATABASE_URL", "postgres://x")]).is_err());
    assert!(settings(&[("REDIS_URL", "redis://y")]).is_err());
}

#[test]
fn production_refuses_echo_and_a_missing_key_file() {
    let err = settings(&[
        ("ONBOARD_ENV", "production"),
        ("OTP_ECHO", "true"),
        ("JWT_PRIVATE_KEY_FILE", "/k.pem"),
    ])
    .expect_err("echo in production");
    assert!(err.to_string().contains("OTP_ECHO"));
    let err =
        settings(&[("ONBOARD_ENV", "production"), ("OTP_ECHO", "false")]).expect_err("no key");
    assert!(err.to_string().contains("JWT_PRIVATE_KEY_FILE"));
    // The embedded mode turns echo on by default: production must say so explicitly.
    assert!(
        settings(&[("ONBOARD_ENV", "production"), ("JWT_PRIVATE_KEY_FILE", "/k.pem")]).is_err()
    );
    assert!(
        settings(&[
            ("ONBOARD_ENV", "production"),
            ("OTP_ECHO", "false"),
            ("JWT_PRIVATE_KEY_FILE", "/k.pem"),
            // Production pays through PortOne
            ("PORTONE_IMP_KEY", "key"),
            ("PORTONE_IMP_SECRET", "secret"),
            ("PORTONE_MERCHANT_ID", "imp12345678"),
        ])
        .is_ok()
    );
}

#[test]
fn malformed_values_name_the_variable() {
    let err = settings(&[("OTP_TTL", "five")]).expect_err("not a number");
    assert!(err.to_string().contains("OTP_TTL"));
    assert!(settings(&[("OTP_LENGTH", "3")]).is_err());
    assert!(settings(&[("DEFAULT_REGION", "ZZ")]).is_err());
    assert!(settings(&[("SMS_PROVIDER", "pigeon")]).is_err());
}

#[test]
fn the_log_sender_delay_reads_as_a_range_of_milliseconds() {
    let s = settings(&[("SMS_LOG_DELAY_MS", "1000-2000")]).expect("valid");
    assert!(matches!(
        s.sms,
        SmsSettings::Log { delay: Some(d) } if d == (Duration::from_secs(1)..=Duration::from_secs(2))
    ));
}

#[test]
fn sens_needs_its_keys_service_and_caller_number() {
    let err =
        settings(&[("SMS_PROVIDER", "sens"), ("SENS_ACCESS_KEY", "ak")]).expect_err("incomplete");
    assert!(err.to_string().contains("SENS_SECRET_KEY"), "{err}");
    let s = settings(&[
        ("SMS_PROVIDER", "sens"),
        ("SENS_ACCESS_KEY", "ak"),
        ("SENS_SECRET_KEY", "sk"),
        ("SENS_SERVICE_ID", "ncp:sms:kr:1:x"),
        ("SENS_FROM", "02-1234-5678"),
    ])
    .expect("valid");
    let SmsSettings::Sens(sens) = s.sms else { panic!("SENS expected") };
    assert_eq!(sens.from, "0212345678");
    assert_eq!(sens.api_url, "https://sens.apigw.ntruss.com");
    assert!(sens.alimtalk.is_none());
    let half_alimtalk = settings(&[
        ("SMS_PROVIDER", "sens"),
        ("SENS_ACCESS_KEY", "ak"),
        ("SENS_SECRET_KEY", "sk"),
        ("SENS_SERVICE_ID", "ncp:sms:kr:1:x"),
        ("SENS_FROM", "0212345678"),
        ("SENS_PLUS_FRIEND_ID", "@x"),
    ]);
    assert!(half_alimtalk.is_err());
}

#[test]
fn twilio_needs_its_account_token_and_sender() {
    assert!(settings(&[("SMS_PROVIDER", "twilio"), ("TWILIO_ACCOUNT_SID", "AC1")]).is_err());
    let s = settings(&[
        ("SMS_PROVIDER", "twilio"),
        ("TWILIO_ACCOUNT_SID", "AC1"),
        ("TWILIO_AUTH_TOKEN", "t"),
        ("TWILIO_FROM", "+15005550006"),
        ("SMS_TIMEOUT_MS", "1500"),
    ])
    .expect("valid");
    let SmsSettings::Twilio(twilio) = s.sms else { panic!("Twilio expected") };
    assert_eq!(twilio.timeout, Duration::from_millis(1500));
    assert_eq!(twilio.api_url, "https://api.twilio.com");
}

#[test]
fn the_simulated_gateway_is_the_default_outside_production() {
    let s = settings(&[]).expect("defaults are valid");
    assert!(matches!(s.gateway, GatewaySettings::Simulated));
    let s = settings(&[("PAYMENT_GATEWAY", "Simulated")]).expect("valid");
    assert!(matches!(s.gateway, GatewaySettings::Simulated));
}

#[test]
fn portone_reads_its_credentials_and_defaults_its_url() {
    let s = settings(&[
        ("PAYMENT_GATEWAY", "portone"),
        ("PORTONE_IMP_KEY", "key"),
        ("PORTONE_IMP_SECRET", "s3cr3t-value"),
        ("PORTONE_MERCHANT_ID", "imp12345678"),
        ("PORTONE_PG", "nice.nictest04m"),
    ])
    .expect("valid");
    let GatewaySettings::PortOne(config) = s.gateway else { panic!("expected PortOne") };
    assert_eq!(config.base_url, "https://api.iamport.kr");
    assert_eq!(config.imp_key, "key");
    assert_eq!(config.merchant_id, "imp12345678");
    assert_eq!(config.pg.as_deref(), Some("nice.nictest04m"));
    assert!(!format!("{config:?}").contains("s3cr3t-value"), "the secret stays hidden");
}

#[test]
fn portone_without_its_credentials_is_refused_naming_the_variable() {
    let err = settings(&[
        ("PAYMENT_GATEWAY", "portone"),
        ("PORTONE_IMP_KEY", "key"),
        ("PORTONE_MERCHANT_ID", "imp12345678"),
    ])
    .expect_err("no secret");
    assert!(err.to_string().contains("PORTONE_IMP_SECRET"), "{err}");
    let err = settings(&[
        ("PAYMENT_GATEWAY", "portone"),
        ("PORTONE_IMP_KEY", "key"),
        ("PORTONE_IMP_SECRET", "secret"),
        ("PORTONE_MERCHANT_ID", "imp12345678"),
        ("PORTONE_API_URL", "ftp://api.iamport.kr"),
    ])
    .expect_err("not http");
    assert!(err.to_string().contains("PORTONE_API_URL"), "{err}");
    assert!(settings(&[("PAYMENT_GATEWAY", "stripe")]).is_err());
}

#[test]
fn production_refuses_the_simulated_gateway_and_defaults_to_portone() {
    let production =
        [("ONBOARD_ENV", "production"), ("OTP_ECHO", "false"), ("JWT_PRIVATE_KEY_FILE", "/k.pem")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut vars = production.to_vec();
        vars.extend_from_slice(extra);
        settings(&vars)
    };
    let err = with(&[("PAYMENT_GATEWAY", "simulated")]).expect_err("simulated in production");
    assert!(err.to_string().contains("PAYMENT_GATEWAY"), "{err}");
    let err = with(&[]).expect_err("PortOne without credentials");
    assert!(err.to_string().contains("PORTONE_"), "{err}");
    let s = with(&[
        ("PORTONE_IMP_KEY", "key"),
        ("PORTONE_IMP_SECRET", "secret"),
        ("PORTONE_MERCHANT_ID", "imp12345678"),
    ])
    .expect("valid");
    assert!(matches!(s.gateway, GatewaySettings::PortOne(_)));
}

#[test]
fn billing_settings_read_their_defaults_and_refuse_bad_values() {
    let s = settings(&[]).expect("defaults are valid");
    assert_eq!(s.payments.trial_days, 14);
    assert_eq!(s.payments.pay_hour, 10);
    assert_eq!(s.payments.clock.tz.local_minus_utc(), 9 * 3600);
    let s = settings(&[("BILLING_TZ", "+05:30"), ("TRIAL_DAYS", "7"), ("BILLING_PAY_HOUR", "0")])
        .expect("valid");
    assert_eq!(s.payments.clock.tz.local_minus_utc(), 5 * 3600 + 1800);
    assert_eq!((s.payments.trial_days, s.payments.pay_hour), (7, 0));
    assert!(settings(&[("BILLING_TZ", "Mars/Olympus")]).is_err());
    assert!(settings(&[("BILLING_PAY_HOUR", "24")]).is_err());
}

#[test]
fn sso_providers_are_read_by_name() {
    let s = settings(&[
        ("SSO_PROVIDERS", "sparcs, Google"),
        ("SSO_SPARCS_ISSUER", "https://sparcssso.kaist.ac.kr"),
        ("SSO_SPARCS_CLIENT_ID", "sparcs-id"),
        ("SSO_SPARCS_CLIENT_SECRET", "sparcs-secret"),
        ("SSO_GOOGLE_ISSUER", "https://accounts.google.com"),
        ("SSO_GOOGLE_CLIENT_ID", "google-id"),
        ("SSO_REDIRECT_URIS", "https://app.example.com/sso, myapp://sso"),
        ("PUBLIC_URL", "https://api.example.com/"),
    ])
    .expect("valid");
    let names: Vec<&str> = s.sso.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["sparcs", "google"]);
    assert_eq!(s.sso.providers[0].client_id, "sparcs-id");
    assert!(s.sso.providers[0].client_secret.is_some());
    assert!(s.sso.providers[1].client_secret.is_none(), "a public client");
    assert_eq!(s.sso.public_url.as_deref(), Some("https://api.example.com"));
    assert!(s.sso.redirect_uris.contains("myapp://sso"));
    assert_eq!(s.sso.discovery_ttl_secs, 3600);
}

#[test]
fn no_sso_configuration_means_no_providers() {
    let s = settings(&[]).expect("valid");
    assert!(s.sso.providers.is_empty());
    assert!(s.sso.redirect_uris.is_empty());
}

#[test]
fn an_sso_provider_needs_an_issuer_a_client_id_and_a_public_url() {
    let base = [
        ("SSO_PROVIDERS", "sparcs"),
        ("SSO_SPARCS_ISSUER", "https://sso.example.com"),
        ("SSO_SPARCS_CLIENT_ID", "id"),
        ("PUBLIC_URL", "https://api.example.com"),
    ];
    assert!(settings(&base).is_ok());
    for missing in ["SSO_SPARCS_ISSUER", "SSO_SPARCS_CLIENT_ID", "PUBLIC_URL"] {
        let vars: Vec<_> = base.iter().copied().filter(|(k, _)| *k != missing).collect();
        let err = settings(&vars).expect_err("incomplete");
        assert!(err.to_string().contains(missing), "{err}");
    }
    let err = settings(&[("SSO_PROVIDERS", "sparcs,sparcs")]).expect_err("twice");
    assert!(err.to_string().contains("twice"));
    assert!(settings(&[("SSO_PROVIDERS", "no good")]).is_err());
    assert!(settings(&[("SSO_REDIRECT_URIS", "not-a-uri")]).is_err());
    let mut bad_issuer = base.to_vec();
    bad_issuer[1] = ("SSO_SPARCS_ISSUER", "sso.example.com");
    assert!(settings(&bad_issuer).is_err());
}

#[test]
fn admin_phones_read_as_a_comma_list_and_a_bad_one_is_named() {
    let s = settings(&[("ADMIN_PHONES", " +79170000001, +821012345678 ,")]).expect("valid");
    let phones: Vec<&str> = s.admin_phones.iter().map(PhoneNumber::as_e164).collect();
    assert_eq!(phones, ["+79170000001", "+821012345678"]);
    assert!(settings(&[]).expect("valid").admin_phones.is_empty());
    let err = settings(&[("ADMIN_PHONES", "+79170000001,nope")]).expect_err("not a phone");
    assert!(err.to_string().contains("ADMIN_PHONES"), "{err}");
}

#[test]
fn compat_apis_default_to_all_three_and_an_empty_list_turns_them_off() {
    assert_eq!(settings(&[]).expect("valid").compat_apis, CompatApis::ALL);
    assert_eq!(settings(&[("COMPAT_APIS", "")]).expect("valid").compat_apis, CompatApis::NONE);
    let some = settings(&[("COMPAT_APIS", " connect-hub, member_invitation ")]).expect("valid");
    assert_eq!(
        some.compat_apis,
        CompatApis { referral_api: false, connect_hub: true, member_invitation: true }
    );
    let err = settings(&[("COMPAT_APIS", "referral-api,zabo")]).expect_err("unknown name");
    assert!(err.to_string().contains("COMPAT_APIS"));
}

#[test]
fn the_alimtalk_check_delay_reads_milliseconds_seconds_or_a_bare_number_of_seconds() {
    let delay =
        |raw: &str| settings(&[("ALIMTALK_CHECK_DELAY", raw)]).map(|s| s.messaging.check_delay);
    assert_eq!(settings(&[]).expect("valid").messaging.check_delay, Duration::from_secs(2));
    assert_eq!(delay("250ms").expect("valid"), Duration::from_millis(250));
    assert_eq!(delay("3s").expect("valid"), Duration::from_secs(3));
    assert_eq!(delay("5").expect("valid"), Duration::from_secs(5));
    assert!(delay("soon").is_err());
    assert!(delay("0ms").is_err());
}

#[test]
fn compat_regions_default_to_kr_for_member_invitation_and_are_set_per_api() {
    let kr = onboard_kernel::Region::parse("KR").ok();
    let ru = onboard_kernel::Region::parse("RU").ok();
    let us = onboard_kernel::Region::parse("US").ok();
    let defaults = settings(&[]).expect("valid").compat_regions;
    assert_eq!((defaults.referral_api, defaults.connect_hub), (None, None));
    assert_eq!(defaults.member_invitation, kr);
    let fallback = settings(&[("DEFAULT_REGION", "US")]).expect("valid").compat_regions;
    assert_eq!((fallback.referral_api, fallback.member_invitation), (us, kr));
    let set = settings(&[("COMPAT_DEFAULT_REGION", "connect-hub=RU, member_invitation=US")])
        .expect("valid")
        .compat_regions;
    assert_eq!((set.referral_api, set.connect_hub, set.member_invitation), (None, ru, us));
    let all = settings(&[("COMPAT_DEFAULT_REGION", "RU")]).expect("valid").compat_regions;
    assert_eq!((all.referral_api, all.connect_hub, all.member_invitation), (ru, ru, ru));
    assert!(settings(&[("COMPAT_DEFAULT_REGION", "zabo=KR")]).is_err());
    assert!(settings(&[("COMPAT_DEFAULT_REGION", "connect-hub=ZZ")]).is_err());
}

#[test]
fn the_seeds_access_lifetimes_default_to_theirs_and_are_configurable() {
    let defaults = settings(&[]).expect("valid").members;
    assert_eq!(
        (defaults.fixed_access_ttl_secs, defaults.keeps_old_access_ttl_secs),
        (36_000, 3_600)
    );
    let set = settings(&[
        ("COMPAT_REFERRAL_API_ACCESS_TTL", "60"),
        ("COMPAT_CONNECT_HUB_ACCESS_TTL", "120"),
    ])
    .expect("valid")
    .members;
    assert_eq!((set.fixed_access_ttl_secs, set.keeps_old_access_ttl_secs), (60, 120));
}

#[test]
fn webhooks_keep_the_standard_schedule_and_refuse_private_addresses_by_default() {
    let s = settings(&[]).expect("defaults are valid");
    let w = &s.webhooks;
    assert_eq!(w.config.retry_schedule, onboard_webhooks::config::RETRY_SCHEDULE.to_vec());
    assert!(!w.config.urls.allow_private);
    assert!(!w.config.urls.https_only, "http is allowed outside production");
    assert_eq!((w.poll, w.timeout), (Duration::from_millis(250), Duration::from_secs(10)));
}

#[test]
fn webhooks_read_their_schedule_lease_poll_and_private_flag() {
    let s = settings(&[
        ("WEBHOOKS_RETRY_SCHEDULE", "1s, 250ms,3"),
        ("WEBHOOKS_LEASE", "2s"),
        ("WEBHOOKS_POLL", "50ms"),
        ("WEBHOOKS_ALLOW_PRIVATE", "true"),
    ])
    .expect("valid");
    let w = &s.webhooks;
    let schedule = [Duration::from_secs(1), Duration::from_millis(250), Duration::from_secs(3)];
    assert_eq!(w.config.retry_schedule, schedule);
    assert_eq!(w.config.lease, Duration::from_secs(2));
    assert_eq!(w.poll, Duration::from_millis(50));
    assert!(w.config.urls.allow_private);
    assert!(settings(&[("WEBHOOKS_POLL", "0ms")]).is_err());
    assert!(settings(&[("WEBHOOKS_RETRY_SCHEDULE", "5 minutes")]).is_err());
}
