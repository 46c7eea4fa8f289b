//! Settings of the invites domain.

/// Tunables of invites. [`InvitesConfig::default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitesConfig {
    /// Seconds an invite and its code live (`INVITE_TTL`; 259 200, that is 72 h, by default).
    pub ttl_secs: u64,
    /// The SMS sent to an invite's phone: `{code}` is replaced by the code and `{group}` by the
    /// group's name.
    pub sms_text: String,
    /// `BILL_INVITE_SMS=true`: each invite SMS is paid from the inviting group's SMS credit at
    /// these prices, debited in the transaction that stores the invite (`None`: free).
    pub sms_billing: Option<InviteSmsPrices>,
}

/// What one invite SMS costs (KRW), by its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteSmsPrices {
    /// A text of up to 90 bytes (EUC-KR count: 1 per ASCII character, 2 per other).
    pub sms: i64,
    /// A longer text.
    pub lms: i64,
}

impl InviteSmsPrices {
    /// The longest SMS, in EUC-KR bytes; longer texts go as LMS.
    pub const SMS_MAX_BYTES: usize = onboard_kernel::text::SMS_MAX_BYTES;

    /// The price of sending `text`.
    #[must_use]
    pub fn of(&self, text: &str) -> i64 {
        let bytes = onboard_kernel::text::euc_kr_len(text);
        if bytes <= Self::SMS_MAX_BYTES { self.sms } else { self.lms }
    }
}

impl Default for InvitesConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 259_200,
            sms_text: "You are invited to {group} on Onboard. Your invite code: {code}".to_owned(),
            sms_billing: None,
        }
    }
}
