//! Configuration, read once from the environment (and an optional `.env` file) into typed
//! structs. Names and defaults are those of `shared/spec/product.md`.
//!
//! Each domain's section is read in its own file; [`Settings`] composes them.

mod admin;
mod compat;
mod gateway;
mod groups;
mod invites;
mod members;
mod messaging;
mod notifications;
mod payments;
mod sms;
mod sms_credit;
mod sso;
#[cfg(test)]
mod tests;
mod webhooks;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use onboard_groups::GroupsConfig;
use onboard_invites::InvitesConfig;
use onboard_kernel::{PhoneNumber, Region};
use onboard_members::MembersConfig;
use onboard_payments::PaymentsConfig;
use secrecy::SecretString;

pub use compat::{CompatApis, CompatRegions};
pub use gateway::GatewaySettings;
pub use messaging::{MessagingOverrides, MessagingSettings};
pub use payments::PaymentsOverrides;
pub use sms::SmsSettings;
pub use sso::{SsoProviderSettings, SsoSettings};
pub use webhooks::WebhooksSettings;

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
    /// The region each seed API reads national phone numbers in (`COMPAT_DEFAULT_REGION`).
    pub compat_regions: CompatRegions,
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
    /// Outgoing webhooks: `WEBHOOKS_ALLOW_PRIVATE`, `WEBHOOKS_RETRY_SCHEDULE`,
    /// `WEBHOOKS_LEASE`, `WEBHOOKS_POLL`.
    pub webhooks: WebhooksSettings,
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
        let env = Env { lookup: &lookup };
        let environment = Environment::read(&env)?;
        let storage = Storage::read(&env)?;
        let embedded = matches!(storage, Storage::Memory);
        let otp_length = members::otp_length(&env)?;
        let otp_echo = env.flag("OTP_ECHO", embedded)?;
        let jwt_private_key_file = env.get("JWT_PRIVATE_KEY_FILE").map(PathBuf::from);
        environment.refuse_unsafe(otp_echo, jwt_private_key_file.is_none())?;
        let default_region = default_region(&env)?;
        let members = members::read(&env, otp_length, otp_echo)?;
        let groups = groups::read(&env)?;
        let sms = SmsSettings::read(&env)?;
        let gateway = GatewaySettings::read(environment, &env)?;

        Ok(Self {
            addr: env.get("ONBOARD_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            env: environment,
            storage,
            redis_prefix: env.get("REDIS_KEY_PREFIX").unwrap_or_else(|| "onboard:".to_owned()),
            pg_pool_size: usize::try_from(env.num("DATABASE_POOL_SIZE", default_pg_pool())?)?
                .max(1),
            redis_pool_size: usize::try_from(env.num("REDIS_POOL_SIZE", 32)?)?.max(1),
            migrate_on_start: env.flag("MIGRATE_ON_START", true)?,
            jwt_private_key_file,
            jwt_issuer: env.get("JWT_ISSUER").unwrap_or_else(|| "onboard".to_owned()),
            jwt_audience: env.get("JWT_AUDIENCE").unwrap_or_else(|| "onboard-api".to_owned()),
            members,
            groups,
            invites: invites::read(&env)?,
            default_region,
            trust_proxy: env.flag("TRUST_PROXY", false)?,
            sms,
            workers: env
                .get("ONBOARD_WORKERS")
                .map(|w| w.parse())
                .transpose()
                .context("ONBOARD_WORKERS must be a whole number")?,
            payments: payments::read(&env)?,
            billing_tick: payments::billing_tick(&env)?,
            payments_overrides: PaymentsOverrides::default(),
            service_tokens: payments::service_tokens(&env)?,
            gateway,
            sso: SsoSettings::from_lookup(&|name| env.get(name))?,
            admin_phones: admin::parse_admin_phones(
                env.get("ADMIN_PHONES").as_deref(),
                default_region,
            )?,
            // Unset means all three; set but empty means none.
            compat_apis: CompatApis::parse(env.raw("COMPAT_APIS").as_deref())?,
            compat_regions: CompatRegions::parse(
                env.get("COMPAT_DEFAULT_REGION").as_deref(),
                default_region,
            )?,
            notifications: notifications::read(&env)?,
            sms_prices: sms_credit::prices(&env)?,
            bill_invite_sms: sms_credit::bill_invite_sms(&env)?,
            messaging: MessagingSettings::read(&env)?,
            messaging_overrides: MessagingOverrides::default(),
            webhooks: WebhooksSettings::read(&env, environment)?,
        })
    }
}

impl Environment {
    /// `ONBOARD_ENV`: `development` (the default; also `dev`, `test`) or `production` (`prod`).
    fn read(env: &Env<'_>) -> anyhow::Result<Self> {
        match env.get("ONBOARD_ENV").as_deref() {
            None | Some("development" | "dev" | "test") => Ok(Self::Development),
            Some("production" | "prod") => Ok(Self::Production),
            Some(v) => bail!("ONBOARD_ENV must be development or production, not {v:?}"),
        }
    }

    /// Production refuses to hand out codes (`OTP_ECHO`) and to sign with a throwaway key.
    fn refuse_unsafe(self, otp_echo: bool, no_key_file: bool) -> anyhow::Result<()> {
        if self == Self::Production {
            if otp_echo {
                bail!(
                    "OTP_ECHO is on while ONBOARD_ENV=production: codes would be handed to any caller"
                );
            }
            if no_key_file {
                bail!(
                    "JWT_PRIVATE_KEY_FILE is required when ONBOARD_ENV=production (a throwaway key would sign tokens)"
                );
            }
        }
        Ok(())
    }
}

/// `DEFAULT_REGION`: the ISO region of national phone numbers (none by default).
fn default_region(env: &Env<'_>) -> anyhow::Result<Option<Region>> {
    env.get("DEFAULT_REGION")
        .map(|r| {
            Region::parse(&r).with_context(|| format!("DEFAULT_REGION {r:?} is not an ISO region"))
        })
        .transpose()
}

impl Storage {
    /// `DATABASE_URL` and `REDIS_URL`: both (Postgres + Redis) or neither (in memory).
    fn read(env: &Env<'_>) -> anyhow::Result<Self> {
        match (env.get("DATABASE_URL"), env.get("REDIS_URL")) {
            (None, None) => Ok(Self::Memory),
            (Some(db), Some(redis)) => Ok(Self::External {
                database_url: SecretString::from(db),
                redis_url: SecretString::from(redis),
            }),
            (Some(_), None) => bail!(
                "DATABASE_URL is set but REDIS_URL is not: set both (Postgres + Redis) or neither (embedded mode)"
            ),
            (None, Some(_)) => bail!(
                "REDIS_URL is set but DATABASE_URL is not: set both (Postgres + Redis) or neither (embedded mode)"
            ),
        }
    }
}

/// Two Postgres connections per core: more only queue inside Postgres, which shares the cores
/// (on 2 cores, 4 beat 16 by 10–20 % in throughput and a third in p99; docs/performance.md).
fn default_pg_pool() -> u64 {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    u64::try_from(cores * 2).unwrap_or(4).max(4)
}

/// The variables as the settings read them: trimmed, an empty value as unset.
struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    /// The value as set, untrimmed (an empty value stays set).
    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// The trimmed value; unset when empty.
    fn get(&self, name: &str) -> Option<String> {
        self.raw(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A whole number, `default` when unset.
    fn num(&self, name: &str, default: u64) -> anyhow::Result<u64> {
        match self.get(name) {
            Some(v) => {
                v.parse().with_context(|| format!("{name} must be a whole number, not {v:?}"))
            }
            None => Ok(default),
        }
    }

    /// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`, `default` when unset.
    fn flag(&self, name: &str, default: bool) -> anyhow::Result<bool> {
        match self.get(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(v) => bail!("{name} must be true or false, not {v:?}"),
        }
    }

    /// A whole number that fits 32 bits, `default` when unset.
    fn small(&self, name: &str, default: u32) -> anyhow::Result<u32> {
        u32::try_from(self.num(name, u64::from(default))?)
            .with_context(|| format!("{name} is too large"))
    }
}
