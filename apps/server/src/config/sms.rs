//! Which SMS provider delivers codes: `SMS_PROVIDER` and its `SENS_*` or `TWILIO_*`.

use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::{Context, bail};

use super::Env;

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

impl SmsSettings {
    /// `SMS_PROVIDER`: `log` (the default), `sens` or `twilio`, with that provider's variables.
    pub(super) fn read(env: &Env<'_>) -> anyhow::Result<Self> {
        Ok(match env.get("SMS_PROVIDER").as_deref().unwrap_or("log") {
            "log" => Self::Log { delay: parse_delay(env.get("SMS_LOG_DELAY_MS").as_deref())? },
            "sens" => Self::Sens(sens_settings(env)?),
            "twilio" => Self::Twilio(twilio_settings(env)?),
            other => bail!("SMS_PROVIDER {other:?} is not one of log, sens, twilio"),
        })
    }
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
fn sms_timeout(env: &Env<'_>) -> anyhow::Result<Duration> {
    env.get("SMS_TIMEOUT_MS").map_or(Ok(Duration::from_secs(5)), |raw| {
        Ok(Duration::from_millis(
            raw.trim()
                .parse()
                .with_context(|| format!("SMS_TIMEOUT_MS: {raw:?} is not milliseconds"))?,
        ))
    })
}

fn required(env: &Env<'_>, name: &str, why: &str) -> anyhow::Result<String> {
    match env.get(name) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => bail!("{name} is required with {why}"),
    }
}

/// `SENS_ACCESS_KEY`, `SENS_SECRET_KEY`, `SENS_SERVICE_ID` (SMS), `SENS_FROM` (the registered
/// caller number), optional `SENS_ALIMTALK_SERVICE_ID` with `SENS_PLUS_FRIEND_ID`, `SENS_API_URL`.
fn sens_settings(env: &Env<'_>) -> anyhow::Result<onboard_sms::SensSettings> {
    let why = "SMS_PROVIDER=sens";
    let alimtalk = match (env.get("SENS_ALIMTALK_SERVICE_ID"), env.get("SENS_PLUS_FRIEND_ID")) {
        (Some(service_id), Some(plus_friend_id)) => {
            Some(onboard_sms::AlimtalkSettings { service_id, plus_friend_id })
        }
        (None, None) => None,
        _ => bail!("SENS_ALIMTALK_SERVICE_ID and SENS_PLUS_FRIEND_ID go together"),
    };
    Ok(onboard_sms::SensSettings {
        api_url: env
            .get("SENS_API_URL")
            .unwrap_or_else(|| onboard_sms::sens::SENS_API_URL.to_owned()),
        access_key: required(env, "SENS_ACCESS_KEY", why)?,
        secret_key: required(env, "SENS_SECRET_KEY", why)?.into(),
        sms_service_id: required(env, "SENS_SERVICE_ID", why)?,
        from: required(env, "SENS_FROM", why)?.chars().filter(char::is_ascii_digit).collect(),
        alimtalk,
        timeout: sms_timeout(env)?,
    })
}

/// `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_FROM` (an E.164 number or a messaging
/// service sid), optional `TWILIO_API_URL`.
fn twilio_settings(env: &Env<'_>) -> anyhow::Result<onboard_sms::TwilioSettings> {
    let why = "SMS_PROVIDER=twilio";
    Ok(onboard_sms::TwilioSettings {
        api_url: env
            .get("TWILIO_API_URL")
            .unwrap_or_else(|| onboard_sms::TWILIO_API_URL.to_owned()),
        account_sid: required(env, "TWILIO_ACCOUNT_SID", why)?,
        auth_token: required(env, "TWILIO_AUTH_TOKEN", why)?.into(),
        from: required(env, "TWILIO_FROM", why)?,
        timeout: sms_timeout(env)?,
    })
}
