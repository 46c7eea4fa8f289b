//! Configuration, read once from the environment (and an optional `.env` file) into typed
//! structs. Names and defaults are those of `shared/spec/product.md`.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use onboard_groups::{GroupsConfig, Permission};
use onboard_invites::InvitesConfig;
use onboard_kernel::{PhoneNumber, Region};
use onboard_members::MembersConfig;
use onboard_members::ports::OtpLimits;
use secrecy::SecretString;
use std::sync::Arc;

use onboard_gateway::PortOneConfig;
use onboard_kernel::Clock;
use onboard_payments::PaymentsConfig;
use onboard_payments::gateway::PaymentGateway;
use onboard_payments::period::BillingClock;

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
    /// The payment gateway (`PAYMENT_GATEWAY`).
    pub gateway: GatewaySettings,
    /// Single sign-on providers and the app redirect URIs.
    pub sso: SsoSettings,
    /// `ADMIN_PHONES`: members with these phones are platform admins.
    pub admin_phones: Vec<PhoneNumber>,
    /// Which seed APIs are served under `/compat/...` (`COMPAT_APIS`).
    pub compat_apis: CompatApis,
    /// Notifications (notify): `NOTIFICATION_TTL` seconds (14 days).
    pub notifications: onboard_notifications::NotificationsConfig,
    /// `SMS_PRICE_SMS`, `SMS_PRICE_LMS`, `SMS_PRICE_ALIMTALK`: unit prices in KRW debited from a
    /// group's SMS credit (11, 37, 10).
    pub sms_prices: onboard_payments::sms_credit::SmsPrices,
    /// `BILL_INVITE_SMS`: invite SMS are debited from the inviting group's SMS credit (false).
    pub bill_invite_sms: bool,
    /// Group messages: `ALIMTALK_CHECK_DELAY`, `SMS_LOG_ALIMTALK_FAILURE`.
    pub messaging: MessagingSettings,
    /// Test hooks, never read from the environment.
    pub messaging_overrides: MessagingOverrides,
}

/// How group messages are sent and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingSettings {
    /// `ALIMTALK_CHECK_DELAY`: the first alimtalk delivery check runs this long after the send
    /// (`2s`, `2000ms`, or a bare number of seconds; 2 s).
    pub check_delay: Duration,
    /// How long a worker's claim on a message holds before another worker may take it over
    /// (60 s; longer than a provider call may take).
    pub lease: Duration,
    /// How often each instance's messaging worker looks for due messages (250 ms).
    pub poll: Duration,
    /// `SMS_LOG_ALIMTALK_FAILURE`: with `SMS_PROVIDER=log`, every alimtalk fails its delivery
    /// check with this code (`3018`, say), to demonstrate the SMS failover. Unset: delivered.
    pub log_alimtalk_failure: Option<String>,
}

impl Default for MessagingSettings {
    fn default() -> Self {
        Self {
            check_delay: Duration::from_secs(2),
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(250),
            log_alimtalk_failure: None,
        }
    }
}

/// What tests may put in place of the messaging provider and the embedded store.
#[derive(Clone, Default)]
pub struct MessagingOverrides {
    /// The provider every message goes through.
    pub provider: Option<Arc<dyn onboard_messaging::ports::MessageProvider>>,
    /// The embedded wiring's store (to share it between two apps, or to top up SMS credit).
    pub memory_store: Option<Arc<onboard_memory::MemoryStore>>,
    /// Start no messaging worker (a test drives it).
    pub no_worker: bool,
}

impl std::fmt::Debug for MessagingOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagingOverrides")
            .field("provider", &self.provider.is_some())
            .field("memory_store", &self.memory_store.is_some())
            .field("no_worker", &self.no_worker)
            .finish()
    }
}

/// `ALIMTALK_CHECK_DELAY`: `250ms`, `2s`, or a bare number of seconds.
fn parse_check_delay(raw: Option<&str>) -> anyhow::Result<Duration> {
    let Some(raw) = raw else { return Ok(MessagingSettings::default().check_delay) };
    let number = |s: &str| -> anyhow::Result<u64> {
        s.trim().parse().with_context(|| {
            format!("ALIMTALK_CHECK_DELAY must be like 2s, 2000ms or 2, not {raw:?}")
        })
    };
    let delay = if let Some(ms) = raw.strip_suffix("ms") {
        Duration::from_millis(number(ms)?)
    } else if let Some(s) = raw.strip_suffix('s') {
        Duration::from_secs(number(s)?)
    } else {
        Duration::from_secs(number(raw)?)
    };
    if delay.is_zero() {
        bail!("ALIMTALK_CHECK_DELAY must be above 0");
    }
    Ok(delay)
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
            gateway,
            sso: SsoSettings::from_lookup(&get)?,
            admin_phones: parse_admin_phones(get("ADMIN_PHONES").as_deref(), default_region)?,
            // Unset means all three; set but empty means none.
            compat_apis: CompatApis::parse(lookup("COMPAT_APIS").as_deref())?,
            notifications: onboard_notifications::NotificationsConfig {
                ttl: Duration::from_secs(
                    num(
                        "NOTIFICATION_TTL",
                        onboard_notifications::NotificationsConfig::default().ttl.as_secs(),
                    )?
                    .max(1),
                ),
                ..onboard_notifications::NotificationsConfig::default()
            },
            sms_prices: {
                let defaults = onboard_payments::sms_credit::SmsPrices::default();
                let price = |name: &str, default: i64| -> anyhow::Result<i64> {
                    let price = num(name, u64::try_from(default).unwrap_or(0))?;
                    i64::try_from(price).ok().filter(|p| *p > 0).with_context(|| {
                        format!("{name} must be a whole number of KRW above 0, not {price}")
                    })
                };
                onboard_payments::sms_credit::SmsPrices {
                    sms: price("SMS_PRICE_SMS", defaults.sms)?,
                    lms: price("SMS_PRICE_LMS", defaults.lms)?,
                    alimtalk: price("SMS_PRICE_ALIMTALK", defaults.alimtalk)?,
                }
            },
            bill_invite_sms: flag("BILL_INVITE_SMS", false)?,
            messaging: MessagingSettings {
                check_delay: parse_check_delay(get("ALIMTALK_CHECK_DELAY").as_deref())?,
                log_alimtalk_failure: get("SMS_LOG_ALIMTALK_FAILURE"),
                ..MessagingSettings::default()
            },
            messaging_overrides: MessagingOverrides::default(),
        })
    }
}

/// Two Postgres connections per core: more only queue inside Postgres, which shares the cores
/// (on 2 cores, 4 beat 16 by 10–20 % in throughput and a third in p99; docs/performance.md).
fn default_pg_pool() -> u64 {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    u64::try_from(cores * 2).unwrap_or(4).max(4)
}

/// `ADMIN_PHONES`: a comma-separated list of phones (E.164, or national with `DEFAULT_REGION`).
fn parse_admin_phones(
    raw: Option<&str>,
    region: Option<Region>,
) -> anyhow::Result<Vec<PhoneNumber>> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            PhoneNumber::parse(p, region)
                .map_err(|e| anyhow::anyhow!("ADMIN_PHONES: {p:?} is not a phone number: {e}"))
        })
        .collect()
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

/// One OpenID Connect provider: `SSO_<NAME>_ISSUER`, `SSO_<NAME>_CLIENT_ID`,
/// `SSO_<NAME>_CLIENT_SECRET` (optional: a public client).
#[derive(Debug, Clone)]
pub struct SsoProviderSettings {
    pub name: onboard_sso::ProviderName,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
}

/// Single sign-on: `SSO_PROVIDERS`, `SSO_REDIRECT_URIS`, `PUBLIC_URL`, `SSO_DISCOVERY_TTL`.
#[derive(Debug, Clone)]
pub struct SsoSettings {
    pub providers: Vec<SsoProviderSettings>,
    /// The app redirect URIs a login may end at (exact match).
    pub redirect_uris: std::collections::BTreeSet<String>,
    /// This server's public base URL: providers send the browser back to
    /// `{PUBLIC_URL}/api/v1/auth/sso/{provider}/callback`. Required with providers.
    pub public_url: Option<String>,
    /// Seconds a provider's discovery document is kept (3600 by default).
    pub discovery_ttl_secs: u64,
}

impl SsoSettings {
    /// Reads the SSO variables through `get` (trimmed, empty as unset).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let list = |name: &str| -> Vec<String> {
            get(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut names: Vec<onboard_sso::ProviderName> = Vec::new();
        for raw in list("SSO_PROVIDERS") {
            let name = onboard_sso::ProviderName::parse(&raw).map_err(|e| {
                anyhow::anyhow!("SSO_PROVIDERS: {raw:?} is not a provider name ({e})")
            })?;
            if names.contains(&name) {
                bail!("SSO_PROVIDERS names {name} twice");
            }
            names.push(name);
        }
        let mut providers = Vec::new();
        for name in names {
            let var = |suffix: &str| {
                format!("SSO_{}_{suffix}", name.as_str().to_ascii_uppercase().replace('-', "_"))
            };
            let required = |suffix: &str| -> anyhow::Result<String> {
                let v = var(suffix);
                get(&v).with_context(|| format!("{v} is required for SSO provider {name}"))
            };
            let issuer = required("ISSUER")?;
            if !is_http_url(&issuer) {
                bail!("{} must be an http(s) URL, not {issuer:?}", var("ISSUER"));
            }
            providers.push(SsoProviderSettings {
                issuer,
                client_id: required("CLIENT_ID")?,
                client_secret: get(&var("CLIENT_SECRET")).map(SecretString::from),
                name,
            });
        }
        let redirect_uris = list("SSO_REDIRECT_URIS");
        if let Some(bad) =
            redirect_uris.iter().find(|u| !u.contains("://") || u.contains(char::is_whitespace))
        {
            bail!("SSO_REDIRECT_URIS: {bad:?} is not an absolute URI");
        }
        let public_url = get("PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned());
        match &public_url {
            Some(u) if !is_http_url(u) => bail!("PUBLIC_URL must be an http(s) URL, not {u:?}"),
            None if !providers.is_empty() => bail!(
                "PUBLIC_URL is required with SSO_PROVIDERS: providers send the browser back to {{PUBLIC_URL}}/api/v1/auth/sso/{{provider}}/callback"
            ),
            _ => {}
        }
        let discovery_ttl_secs = match get("SSO_DISCOVERY_TTL") {
            Some(v) => v
                .parse::<u64>()
                .with_context(|| format!("SSO_DISCOVERY_TTL must be a whole number, not {v:?}"))?
                .max(1),
            None => 3600,
        };
        Ok(Self {
            providers,
            redirect_uris: redirect_uris.into_iter().collect(),
            public_url,
            discovery_ttl_secs,
        })
    }
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() > "https://".len()
        && !s.contains(char::is_whitespace)
}

// `COMPAT_APIS`.
/// The seed APIs served under `/compat/...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompatApis {
    /// `/compat/referral-api`.
    pub referral_api: bool,
    /// `/compat/connect-hub`.
    pub connect_hub: bool,
    /// `/compat/member-invitation`.
    pub member_invitation: bool,
}

impl CompatApis {
    /// Every seed API (the default).
    pub const ALL: Self = Self { referral_api: true, connect_hub: true, member_invitation: true };
    /// No seed API.
    pub const NONE: Self =
        Self { referral_api: false, connect_hub: false, member_invitation: false };

    /// Reads `COMPAT_APIS`: unset is every API, an empty list none; names are
    /// `referral-api`, `connect-hub` and `member-invitation`.
    pub fn parse(raw: Option<&str>) -> anyhow::Result<Self> {
        let Some(raw) = raw else { return Ok(Self::ALL) };
        let mut apis = Self::NONE;
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().replace('_', "-").as_str() {
                "referral-api" => apis.referral_api = true,
                "connect-hub" => apis.connect_hub = true,
                "member-invitation" => apis.member_invitation = true,
                _ => bail!(
                    "COMPAT_APIS: unknown API {name:?} (known: referral-api, connect-hub, member-invitation)"
                ),
            }
        }
        Ok(apis)
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
}
