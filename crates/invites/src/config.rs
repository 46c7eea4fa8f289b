//! Settings of the invites domain.

/// Tunables of invites. [`InvitesConfig::default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitesConfig {
    /// Seconds an invite and its code live (`INVITE_TTL`; 259 200, that is 72 h, by default).
    pub ttl_secs: u64,
    /// The SMS sent to an invite's phone: `{code}` is replaced by the code and `{group}` by the
    /// group's name.
    pub sms_text: String,
}

impl Default for InvitesConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 259_200,
            sms_text: "You are invited to {group} on Onboard. Your invite code: {code}".to_owned(),
        }
    }
}
