//! Sign-in and sessions: one-time codes, their limits, token lifetimes, the personal workspace.

use anyhow::bail;
use onboard_members::MembersConfig;
use onboard_members::ports::OtpLimits;

use super::Env;

/// `OTP_LENGTH`: 4 to 8 digits (6).
pub(super) fn otp_length(env: &Env<'_>) -> anyhow::Result<u8> {
    let otp_length = env.num("OTP_LENGTH", 6)?;
    if !(4..=8).contains(&otp_length) {
        bail!("OTP_LENGTH must be between 4 and 8, not {otp_length}");
    }
    Ok(u8::try_from(otp_length).unwrap_or(6))
}

/// `OTP_*` limits, `ACCESS_TOKEN_TTL`, `COMPAT_REFERRAL_API_ACCESS_TTL`,
/// `COMPAT_CONNECT_HUB_ACCESS_TTL`, `REFRESH_TOKEN_TTL`, `REFRESH_REUSE_GRACE`,
/// `PERSONAL_WORKSPACE`, `PERSONAL_WORKSPACE_NAME`, `OTP_MESSAGE`; `OTP_LENGTH` and `OTP_ECHO`
/// are read (and checked against the environment) before.
pub(super) fn read(env: &Env<'_>, otp_length: u8, otp_echo: bool) -> anyhow::Result<MembersConfig> {
    let defaults = MembersConfig::default();
    Ok(MembersConfig {
        otp_length,
        otp_limits: OtpLimits {
            ttl_secs: env.num("OTP_TTL", defaults.otp_limits.ttl_secs)?,
            resend_interval_secs: env
                .num("OTP_RESEND_INTERVAL", defaults.otp_limits.resend_interval_secs)?,
            max_sends_per_hour: env
                .small("OTP_MAX_SENDS_PER_HOUR", defaults.otp_limits.max_sends_per_hour)?,
            max_attempts: env.small("OTP_MAX_ATTEMPTS", defaults.otp_limits.max_attempts)?.max(1),
            max_failures_per_hour: env
                .small("OTP_MAX_FAILURES_PER_HOUR", defaults.otp_limits.max_failures_per_hour)?,
        },
        max_sends_per_ip_hour: env
            .small("OTP_MAX_SENDS_PER_IP_HOUR", defaults.max_sends_per_ip_hour)?,
        max_verifies_per_ip: env.small("OTP_MAX_VERIFIES_PER_IP", defaults.max_verifies_per_ip)?,
        verify_ip_window_secs: env.num("OTP_VERIFY_IP_WINDOW", defaults.verify_ip_window_secs)?,
        access_ttl_secs: env.num("ACCESS_TOKEN_TTL", defaults.access_ttl_secs)?.max(1),
        // The seeds' own lifetimes by default (referral-api's example settings: 600 minutes;
        // connect-hub's: 60), which their clients expect; revocation is checked on every
        // request whatever the lifetime.
        fixed_access_ttl_secs: env
            .num("COMPAT_REFERRAL_API_ACCESS_TTL", defaults.fixed_access_ttl_secs)?
            .max(1),
        keeps_old_access_ttl_secs: env
            .num("COMPAT_CONNECT_HUB_ACCESS_TTL", defaults.keeps_old_access_ttl_secs)?
            .max(1),
        refresh_ttl_secs: env.num("REFRESH_TOKEN_TTL", defaults.refresh_ttl_secs)?.max(1),
        refresh_grace_secs: env.num("REFRESH_REUSE_GRACE", defaults.refresh_grace_secs)?,
        otp_echo,
        profile_invitees: defaults.profile_invitees,
        personal_workspace: env.flag("PERSONAL_WORKSPACE", true)?,
        personal_workspace_name: env
            .get("PERSONAL_WORKSPACE_NAME")
            .unwrap_or(defaults.personal_workspace_name),
        otp_message: env.get("OTP_MESSAGE").unwrap_or(defaults.otp_message),
    })
}
