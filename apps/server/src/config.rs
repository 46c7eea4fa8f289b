//! Configuration, read once from the environment (and an optional `.env` file) into typed
//! structs. Names and defaults are those of `shared/spec/product.md`.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use onboard_groups::{GroupsConfig, Permission};
use onboard_invites::InvitesConfig;
use onboard_kernel::Region;
use onboard_members::MembersConfig;
use onboard_members::ports::OtpLimits;
use secrecy::SecretString;
// payments
use std::sync::Arc;

use onboard_kernel::Clock;
use onboard_payments::PaymentsConfig;
use onboard_payments::gateway::PaymentGateway;
use onboard_payments::period::BillingClock;
// gateway
use onboard_gateway::PortOneConfig;

/// `ONBOARD_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Where data lives.
#[derive(Debug, Clone)]
pub enum Storage {
    /// In-process memory: nothing survives a restart (the embedded default).
    Memory,
    /// PostgreSQL and Redis.
    External { database_url: SecretString, redis_url: SecretString },
}

/// Which SMS provider delivers codes (`SMS_PROVIDER`).
#[derive(Debug, Clone)]
pub enum SmsSettings {
    /// Print each message in the log, optionally after a simulated delivery delay.
    Log { delay: Option<RangeInclusive<Duration>> },
    /// Naver Cloud SENS (`SENS_*`).
    Sens(onboard_sms::SensSettings),
    /// Twilio (`TWILIO_*`).
    Twilio(onboard_sms::TwilioSettings),
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub addr: String,
    pub env: Environment,
    pub storage: Storage,
    /// Prefix of every Redis key (tests give each run its own).
    pub redis_prefix: String,
    pub pg_pool_size: usize,
    pub redis_pool_size: usize,
    pub migrate_on_start: bool,
    pub jwt_private_key_file: Option<PathBuf>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub members: MembersConfig,
    pub groups: GroupsConfig,
    pub invites: InvitesConfig,
    pub default_region: Option<Region>,
    pub trust_proxy: bool,
    pub sms: SmsSettings,
    /// HTTP workers; the number of cores by default.
    pub workers: Option<usize>,
    // payments
    /// `TRIAL_DAYS`, `BILLING_PAY_HOUR`, `BILLING_TZ`.
    pub payments: PaymentsConfig,
    /// `BILLING_TICK_MS`: how often this instance runs the periodic billing work (period ends,
    /// reconciliation) when no job runner does (60 s).
    pub billing_tick: Duration,
    /// Test hooks, never read from the environment.
    pub payments_overrides: PaymentsOverrides,
    /// `SERVICE_TOKENS`: comma-separated bearer tokens (at least 32 characters each) that other
    /// services use to record usage (`POST .../usage/{metric}`) in any group. None by default.
    pub service_tokens: Vec<SecretString>,
    // gateway
    /// The payment gateway (`PAYMENT_GATEWAY`).
    pub gateway: GatewaySettings,
}

/// What tests may put in place of the payments domain's clock and gateway.
#[derive(Clone, Default)]
pub struct PaymentsOverrides {
    /// The payments domain's clock (trial ends, periods, retries); the rest of the app keeps
    /// the system clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// The payment gateway.
    pub gateway: Option<Arc<dyn PaymentGateway>>,
}

impl std::fmt::Debug for PaymentsOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentsOverrides")
            .field("clock", &self.clock.is_some())
            .field("gateway", &self.gateway.is_some())
            .finish()
    }
}

/// `BILLING_TZ`: `Asia/Seoul` (or `KST`), `UTC`, or a fixed offset such as `+09:00`.
fn parse_billing_tz(raw: &str) -> anyhow::Result<chrono::FixedOffset> {
    let hours = |h: i32| chrono::FixedOffset::east_opt(h * 3600);
    let offset = match raw {
        "Asia/Seoul" | "KST" => hours(9),
        "UTC" | "Etc/UTC" => hours(0),
        other => other.parse::<chrono::FixedOffset>().ok(),
    };
    offset.with_context(|| {
        format!("BILLING_TZ must be Asia/Seoul, UTC or an offset such as +09:00, not {raw:?}")
    })
}

impl Settings {
    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> anyhow::Result<Self> {
        // A missing .env is the normal case.
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let num = |name: &str, default: u64| -> anyhow::Result<u64> {
            match get(name) {
                Some(v) => {
                    v.parse().with_context(|| format!("{name} must be a whole number, not {v:?}"))
                }
                None => Ok(default),
            }
        };
        let flag = |name: &str, default: bool| -> anyhow::Result<bool> {
            match get(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
                None => Ok(default),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some("0" | "false" | "no" | "off") => Ok(false),
                Some(v) => bail!("{name} must be true or false, not {v:?}"),
            }
        };
        let small = |name: &str, default: u32| -> anyhow::Result<u32> {
            u32::try_from(num(name, u64::from(default))?)
                .with_context(|| format!("{name} is too large"))
        };

        let env = match get("ONBOARD_ENV").as_deref() {
            None | Some("development" | "dev" | "test") => Environment::Development,
            Some("production" | "prod") => Environment::Production,
            Some(v) => bail!("ONBOARD_ENV must be development or production, not {v:?}"),
        };
        let storage = match (get("DATABASE_URL"), get("REDIS_URL")) {
            (None, None) => Storage::Memory,
            (Some(db), Some(redis)) => Storage::External {
                database_url: SecretString::from(db),
                redis_url: SecretString::from(redis),
            },
            (Some(_), None) => bail!(
                "DATABASE_URL is set but REDIS_URL is not: set both (Postgres + Redis) or neither (embedded mode)"
            ),
            (None, Some(_)) => bail!(
                "REDIS_URL is set but DATABASE_URL is not: set both (Postgres + Redis) or neither (embedded mode)"
            ),
        };
        let embedded = matches!(storage, Storage::Memory);

        let otp_length = num("OTP_LENGTH", 6)?;
        if !(4..=8).contains(&otp_length) {
            bail!("OTP_LENGTH must be between 4 and 8, not {otp_length}");
        }
        let otp_echo = flag("OTP_ECHO", embedded)?;
        let jwt_private_key_file = get("JWT_PRIVATE_KEY_FILE").map(PathBuf::from);
        if env == Environment::Production {
            if otp_echo {
                bail!(
                    "OTP_ECHO is on while ONBOARD_ENV=production: codes would be handed to any caller"
                );
            }
            if jwt_private_key_file.is_none() {
                bail!(
                    "JWT_PRIVATE_KEY_FILE is required when ONBOARD_ENV=production (a throwaway key would sign tokens)"
                );
            }
        }
        let default_region = get("DEFAULT_REGION")
            .map(|r| {
                Region::parse(&r)
                    .with_context(|| format!("DEFAULT_REGION {r:?} is not an ISO region"))
            })
            .transpose()?;

        let defaults = MembersConfig::default();
        let members = MembersConfig {
            otp_length: u8::try_from(otp_length).unwrap_or(6),
            otp_limits: OtpLimits {
                ttl_secs: num("OTP_TTL", defaults.otp_limits.ttl_secs)?,
                resend_interval_secs: num(
                    "OTP_RESEND_INTERVAL",
                    defaults.otp_limits.resend_interval_secs,
                )?,
                max_sends_per_hour: small(
                    "OTP_MAX_SENDS_PER_HOUR",
                    defaults.otp_limits.max_sends_per_hour,
                )?,
                max_attempts: small("OTP_MAX_ATTEMPTS", defaults.otp_limits.max_attempts)?.max(1),
                max_failures_per_hour: small(
                    "OTP_MAX_FAILURES_PER_HOUR",
                    defaults.otp_limits.max_failures_per_hour,
                )?,
            },
            max_sends_per_ip_hour: small(
                "OTP_MAX_SENDS_PER_IP_HOUR",
                defaults.max_sends_per_ip_hour,
            )?,
            max_verifies_per_ip: small("OTP_MAX_VERIFIES_PER_IP", defaults.max_verifies_per_ip)?,
            verify_ip_window_secs: num("OTP_VERIFY_IP_WINDOW", defaults.verify_ip_window_secs)?,
            access_ttl_secs: num("ACCESS_TOKEN_TTL", defaults.access_ttl_secs)?.max(1),
            refresh_ttl_secs: num("REFRESH_TOKEN_TTL", defaults.refresh_ttl_secs)?.max(1),
            refresh_grace_secs: num("REFRESH_REUSE_GRACE", defaults.refresh_grace_secs)?,
            otp_echo,
            profile_invitees: defaults.profile_invitees,
            personal_workspace: flag("PERSONAL_WORKSPACE", true)?,
            personal_workspace_name: get("PERSONAL_WORKSPACE_NAME")
                .unwrap_or(defaults.personal_workspace_name),
            otp_message: get("OTP_MESSAGE").unwrap_or(defaults.otp_message),
        };

        let groups = GroupsConfig {
            extra_permissions: Permission::parse_list(
                &get("EXTRA_PERMISSIONS").unwrap_or_default(),
            )
            .map_err(|e| anyhow::anyhow!("EXTRA_PERMISSIONS: {e}"))?,
        };

        let sms = match get("SMS_PROVIDER").as_deref().unwrap_or("log") {
            "log" => SmsSettings::Log { delay: parse_delay(get("SMS_LOG_DELAY_MS").as_deref())? },
            "sens" => SmsSettings::Sens(sens_settings(&get)?),
            "twilio" => SmsSettings::Twilio(twilio_settings(&get)?),
            other => bail!("SMS_PROVIDER {other:?} is not one of log, sens, twilio"),
        };

        // gateway
        let gateway = GatewaySettings::read(env, &get)?;

        Ok(Self {
            addr: get("ONBOARD_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            env,
            storage,
            redis_prefix: get("REDIS_KEY_PREFIX").unwrap_or_else(|| "onboard:".to_owned()),
            pg_pool_size: usize::try_from(num("DATABASE_POOL_SIZE", default_pg_pool())?)?.max(1),
            redis_pool_size: usize::try_from(num("REDIS_POOL_SIZE", 32)?)?.max(1),
            migrate_on_start: flag("MIGRATE_ON_START", true)?,
            jwt_private_key_file,
            jwt_issuer: get("JWT_ISSUER").unwrap_or_else(|| "onboard".to_owned()),
            jwt_audience: get("JWT_AUDIENCE").unwrap_or_else(|| "onboard-api".to_owned()),
            members,
            groups,
            invites: InvitesConfig {
                ttl_secs: num("INVITE_TTL", InvitesConfig::default().ttl_secs)?.max(1),
                ..InvitesConfig::default()
            },
            default_region,
            trust_proxy: flag("TRUST_PROXY", false)?,
            sms,
            workers: get("ONBOARD_WORKERS")
                .map(|w| w.parse())
                .transpose()
                .context("ONBOARD_WORKERS must be a whole number")?,
            // payments
            payments: {
                let defaults = PaymentsConfig::default();
                let pay_hour = small("BILLING_PAY_HOUR", defaults.pay_hour)?;
                if pay_hour > 23 {
                    bail!("BILLING_PAY_HOUR must be between 0 and 23, not {pay_hour}");
                }
                PaymentsConfig {
                    trial_days: i64::from(small("TRIAL_DAYS", 14)?),
                    pay_hour,
                    clock: match get("BILLING_TZ") {
                        Some(tz) => BillingClock { tz: parse_billing_tz(&tz)? },
                        None => defaults.clock,
                    },
                    ..defaults
                }
            },
            billing_tick: Duration::from_millis(num("BILLING_TICK_MS", 60_000)?.max(10)),
            payments_overrides: PaymentsOverrides::default(),
            service_tokens: {
                let tokens: Vec<String> = get("SERVICE_TOKENS")
                    .unwrap_or_default()
                    .split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect();
                if tokens.iter().any(|t| t.len() < 32) {
                    bail!("SERVICE_TOKENS: each token must be at least 32 characters");
                }
                tokens.into_iter().map(SecretString::from).collect()
            },
            // gateway
            gateway,
        })
    }
}

/// Two Postgres connections per core: more only queue inside Postgres, which shares the cores
/// (on 2 cores, 4 beat 16 by 10–20 % in throughput and a third in p99; docs/performance.md).
fn default_pg_pool() -> u64 {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    u64::try_from(cores * 2).unwrap_or(4).max(4)
}

/// `SMS_LOG_DELAY_MS`: `1000-2000` (a range) or `1500` (fixed).
fn parse_delay(raw: Option<&str>) -> anyhow::Result<Option<RangeInclusive<Duration>>> {
    let Some(raw) = raw else { return Ok(None) };
    let ms = |s: &str| -> anyhow::Result<Duration> {
        Ok(Duration::from_millis(
            s.trim()
                .parse()
                .with_context(|| format!("SMS_LOG_DELAY_MS: {s:?} is not milliseconds"))?,
        ))
    };
    let (lo, hi) = match raw.split_once('-') {
        Some((a, b)) => (ms(a)?, ms(b)?),
        None => (ms(raw)?, ms(raw)?),
    };
    if lo > hi {
        bail!("SMS_LOG_DELAY_MS: {raw:?} is an empty range");
    }
    Ok(Some(lo..=hi))
}

/// How long a request to an SMS provider may take (`SMS_TIMEOUT_MS`, 5 s by default).
fn sms_timeout(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Duration> {
    get("SMS_TIMEOUT_MS").map_or(Ok(Duration::from_secs(5)), |raw| {
        Ok(Duration::from_millis(
            raw.trim()
                .parse()
                .with_context(|| format!("SMS_TIMEOUT_MS: {raw:?} is not milliseconds"))?,
        ))
    })
}

fn required(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    why: &str,
) -> anyhow::Result<String> {
    match get(name) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => bail!("{name} is required with {why}"),
    }
}

/// `SENS_ACCESS_KEY`, `SENS_SECRET_KEY`, `SENS_SERVICE_ID` (SMS), `SENS_FROM` (the registered
/// caller number), optional `SENS_ALIMTALK_SERVICE_ID` with `SENS_PLUS_FRIEND_ID`, `SENS_API_URL`.
fn sens_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<onboard_sms::SensSettings> {
    let why = "SMS_PROVIDER=sens";
    let alimtalk = match (get("SENS_ALIMTALK_SERVICE_ID"), get("SENS_PLUS_FRIEND_ID")) {
        (Some(service_id), Some(plus_friend_id)) => {
            Some(onboard_sms::AlimtalkSettings { service_id, plus_friend_id })
        }
        (None, None) => None,
        _ => bail!("SENS_ALIMTALK_SERVICE_ID and SENS_PLUS_FRIEND_ID go together"),
    };
    Ok(onboard_sms::SensSettings {
        api_url: get("SENS_API_URL").unwrap_or_else(|| onboard_sms::sens::SENS_API_URL.to_owned()),
        access_key: required(get, "SENS_ACCESS_KEY", why)?,
        secret_key: required(get, "SENS_SECRET_KEY", why)?.into(),
        sms_service_id: required(get, "SENS_SERVICE_ID", why)?,
        from: required(get, "SENS_FROM", why)?.chars().filter(char::is_ascii_digit).collect(),
        alimtalk,
        timeout: sms_timeout(get)?,
    })
}

/// `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_FROM` (an E.164 number or a messaging
/// service sid), optional `TWILIO_API_URL`.
fn twilio_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<onboard_sms::TwilioSettings> {
    let why = "SMS_PROVIDER=twilio";
    Ok(onboard_sms::TwilioSettings {
        api_url: get("TWILIO_API_URL").unwrap_or_else(|| onboard_sms::TWILIO_API_URL.to_owned()),
        account_sid: required(get, "TWILIO_ACCOUNT_SID", why)?,
        auth_token: required(get, "TWILIO_AUTH_TOKEN", why)?.into(),
        from: required(get, "TWILIO_FROM", why)?,
        timeout: sms_timeout(get)?,
    })
}

// gateway
/// Which payment gateway serves billing.
#[derive(Debug, Clone)]
pub enum GatewaySettings {
    /// The in-process simulated gateway with test cards (`PAYMENT_GATEWAY=simulated`): the
    /// default outside production, refused in production.
    Simulated,
    /// PortOne v1 REST (`PAYMENT_GATEWAY=portone`, the default in production):
    /// `PORTONE_API_URL` (default `https://api.iamport.kr`), `PORTONE_IMP_KEY`,
    /// `PORTONE_IMP_SECRET`, `PORTONE_MERCHANT_ID` (required), `PORTONE_PG` (optional).
    PortOne(PortOneConfig),
}

impl GatewaySettings {
    fn read(env: Environment, get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let production = env == Environment::Production;
        let choice = get("PAYMENT_GATEWAY").map(|v| v.to_ascii_lowercase());
        match choice.as_deref() {
            Some("simulated") if production => bail!(
                "PAYMENT_GATEWAY=simulated while ONBOARD_ENV=production: test cards would stand in for real payments (use portone)"
            ),
            Some("simulated") => Ok(Self::Simulated),
            None if !production => Ok(Self::Simulated),
            None | Some("portone") => {
                let required = |name: &str| {
                    get(name).with_context(|| {
                        format!("{name} is required with the PortOne payment gateway (PAYMENT_GATEWAY=portone, the default in production)")
                    })
                };
                let api_url = get("PORTONE_API_URL")
                    .unwrap_or_else(|| PortOneConfig::DEFAULT_BASE_URL.to_owned());
                if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
                    bail!("PORTONE_API_URL must be an http(s) URL, not {api_url:?}");
                }
                let merchant_id = required("PORTONE_MERCHANT_ID")?;
                if !merchant_id.starts_with("imp") {
                    bail!(
                        "PORTONE_MERCHANT_ID is the merchant identification code (imp12345678), not {merchant_id:?}"
                    );
                }
                let mut config = PortOneConfig::new(
                    required("PORTONE_IMP_KEY")?,
                    SecretString::from(required("PORTONE_IMP_SECRET")?),
                    merchant_id,
                );
                config.base_url = api_url;
                config.pg = get("PORTONE_PG");
                Ok(Self::PortOne(config))
            }
            Some(other) => bail!("PAYMENT_GATEWAY must be simulated or portone, not {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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
        let s = settings(&[("DATABASE_URL", "postgres://x"), ("REDIS_URL", "redis://y")])
            .expect("valid");
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
                // gateway: production pays through PortOne
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
        let err = settings(&[("SMS_PROVIDER", "sens"), ("SENS_ACCESS_KEY", "ak")])
            .expect_err("incomplete");
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

    // gateway
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
        let production = [
            ("ONBOARD_ENV", "production"),
            ("OTP_ECHO", "false"),
            ("JWT_PRIVATE_KEY_FILE", "/k.pem"),
        ];
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

    // payments
    #[test]
    fn billing_settings_read_their_defaults_and_refuse_bad_values() {
        let s = settings(&[]).expect("defaults are valid");
        assert_eq!(s.payments.trial_days, 14);
        assert_eq!(s.payments.pay_hour, 10);
        assert_eq!(s.payments.clock.tz.local_minus_utc(), 9 * 3600);
        let s =
            settings(&[("BILLING_TZ", "+05:30"), ("TRIAL_DAYS", "7"), ("BILLING_PAY_HOUR", "0")])
                .expect("valid");
        assert_eq!(s.payments.clock.tz.local_minus_utc(), 5 * 3600 + 1800);
        assert_eq!((s.payments.trial_days, s.payments.pay_hour), (7, 0));
        assert!(settings(&[("BILLING_TZ", "Mars/Olympus")]).is_err());
        assert!(settings(&[("BILLING_PAY_HOUR", "24")]).is_err());
    }
}
