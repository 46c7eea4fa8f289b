//! Settings of the members domain.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::SessionKind;
use crate::ports::OtpLimits;

/// Tunables of sign-in and sessions. [`MembersConfig::default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersConfig {
    /// Digits per code, 4 to 8 (6 by default; 4 for compatibility with older clients).
    pub otp_length: u8,
    pub otp_limits: OtpLimits,
    /// Codes sent per client IP per rolling hour.
    pub max_sends_per_ip_hour: u32,
    /// Verifications per client IP per window.
    pub max_verifies_per_ip: u32,
    pub verify_ip_window_secs: u64,
    /// Access-token lifetime of `/api/v1` sessions ([`SessionKind::Rotating`]).
    pub access_ttl_secs: u64,
    /// Access-token lifetime of [`SessionKind::Fixed`] sessions (referral-api's clients: 600
    /// minutes, the seed's example settings).
    pub fixed_access_ttl_secs: u64,
    /// Access-token lifetime of [`SessionKind::RotatingKeepsOld`] sessions (connect-hub's
    /// clients: 60 minutes, the seed's settings).
    pub keeps_old_access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// How long a rotated refresh token may still be presented by a concurrent request.
    pub refresh_grace_secs: u64,
    /// Return the code in the answer (`dev_code`): local trials and tests only.
    pub otp_echo: bool,
    /// Invitees shown with a profile.
    pub profile_invitees: u32,
    /// Give every new member a personal workspace (owner, current group).
    pub personal_workspace: bool,
    /// The name of personal workspaces.
    pub personal_workspace_name: String,
    /// The SMS text; `{code}` is replaced by the code.
    pub otp_message: String,
}

impl Default for MembersConfig {
    fn default() -> Self {
        Self {
            otp_length: 6,
            otp_limits: OtpLimits {
                ttl_secs: 300,
                resend_interval_secs: 60,
                max_sends_per_hour: 5,
                max_attempts: 5,
                max_failures_per_hour: 10,
            },
            max_sends_per_ip_hour: 30,
            max_verifies_per_ip: 30,
            verify_ip_window_secs: 300,
            access_ttl_secs: 900,
            fixed_access_ttl_secs: 36_000,
            keeps_old_access_ttl_secs: 3_600,
            refresh_ttl_secs: 1_209_600,
            refresh_grace_secs: 10,
            otp_echo: false,
            profile_invitees: 20,
            personal_workspace: true,
            personal_workspace_name: "Personal workspace".to_owned(),
            otp_message: "Your Onboard code: {code}".to_owned(),
        }
    }
}

impl MembersConfig {
    /// How long access tokens of sessions of `kind` live.
    pub fn access_ttl(&self, kind: SessionKind) -> u64 {
        match kind {
            SessionKind::Rotating => self.access_ttl_secs,
            SessionKind::Fixed => self.fixed_access_ttl_secs,
            SessionKind::RotatingKeepsOld => self.keeps_old_access_ttl_secs,
        }
    }

    /// How long a revocation must be remembered: the longest access-token lifetime of any kind
    /// of session, so that no revoked access token outlives its revocation.
    pub fn revocation_ttl_secs(&self) -> u64 {
        self.access_ttl_secs.max(self.fixed_access_ttl_secs).max(self.keeps_old_access_ttl_secs)
    }
}

/// Keys for the keyed hashes of codes and the derivation of rotated refresh tokens. Every
/// server instance of one deployment must hold the same secrets.
#[derive(Clone)]
pub struct Secrets {
    pub(crate) otp_key: [u8; 32],
    pub(crate) refresh_key: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// Derives both keys from one master secret (for instance the token signing key).
    pub fn derive(master: &[u8]) -> Self {
        let derive = |label: &[u8]| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            mac.update(label);
            let out: [u8; 32] = mac.finalize().into_bytes().into();
            out
        };
        Self { otp_key: derive(b"onboard/otp-code"), refresh_key: derive(b"onboard/refresh-token") }
    }
}
