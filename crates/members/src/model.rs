//! Members, sessions and the values that travel with them.

use std::fmt;

use chrono::{DateTime, Utc};
use onboard_kernel::{Email, MemberId, PhoneNumber, ReferralCode, SessionId};

/// A member of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: MemberId,
    /// `None` only for members created through single sign-on without a verified phone.
    pub phone: Option<PhoneNumber>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<Email>,
    pub referral_code: ReferralCode,
    /// The code this member redeemed, if any.
    pub referred_by: Option<ReferralCode>,
    /// Slug of the member's current group, if any.
    pub current_group: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What anyone who may see a member at all sees of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberCard {
    pub id: MemberId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Country code and last four digits: `+7******4435`.
    pub phone_masked: Option<String>,
}

impl From<&Member> for MemberCard {
    fn from(m: &Member) -> Self {
        Self {
            id: m.id,
            first_name: m.first_name.clone(),
            last_name: m.last_name.clone(),
            phone_masked: m.phone.as_ref().map(PhoneNumber::masked),
        }
    }
}

/// A member with the members they referred (newest first) and how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub member: Member,
    pub invitees: Vec<MemberCard>,
    pub invitees_count: u64,
}

/// What a caller may see of another member: everything when it is themself or when they share
/// a group, the card otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberView {
    Full(Member),
    Card(MemberCard),
}

/// A first or last name: 1 to 100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

/// The text is not a usable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a name is 1 to 100 characters")]
pub struct PersonNameError;

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, PersonNameError> {
        let t = raw.trim();
        let n = t.chars().count();
        if (1..=100).contains(&n) && !t.chars().any(char::is_control) {
            Ok(Self(t.to_owned()))
        } else {
            Err(PersonNameError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A change to a member's own profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilePatch {
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub email: Option<Email>,
}

/// A sign-in session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub user_agent: Option<String>,
}

/// How a session treats its refresh tokens, fixed when it opens by the API that signed the
/// member in. Storage refreshes a session only as its own kind, so a token of one kind can never
/// be refreshed under another kind's (laxer or stricter) rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionKind {
    /// `/api/v1`: every refresh rotates the token; a used token presented again after the grace
    /// period is taken for theft and ends the session.
    #[default]
    Rotating,
    /// simplejwt without `ROTATE_REFRESH_TOKENS` (the referral-api seed): a refresh answers an
    /// access token only, and the one refresh token stays valid for the session's life.
    Fixed,
    /// simplejwt rotating without a blacklist (the connect-hub seed): a refresh rotates, and the
    /// session's earlier tokens keep working while it lives (for at most the refresh lifetime
    /// after they were used).
    RotatingKeepsOld,
}

impl SessionKind {
    /// The name storage keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rotating => "rotating",
            Self::Fixed => "fixed",
            Self::RotatingKeepsOld => "rotating_keeps_old",
        }
    }

    /// Whether a used token presented again is taken for theft (and ends the session).
    pub fn reuse_is_theft(self) -> bool {
        matches!(self, Self::Rotating)
    }

    /// Whether a refresh rotates the token.
    pub fn rotates(self) -> bool {
        !matches!(self, Self::Fixed)
    }
}

/// An opaque refresh token, shown to the client once and stored only as a hash.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// The token text, to hand to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(..)")
    }
}

/// SHA-256 of a refresh token: what storage keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

/// Keyed hash of a one-time code (HMAC-SHA256 over the phone and the code): what storage keeps.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeHash(pub [u8; 32]);

impl fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHash(..)")
    }
}

/// An access token and a refresh token, as handed to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// The claims of an access token that the domain relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub sub: MemberId,
    pub sid: SessionId,
    /// Slug of the current group when the token was issued.
    pub grp: Option<String>,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    pub jti: uuid::Uuid,
}

/// An authenticated caller: a live session of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub member_id: MemberId,
    pub session_id: SessionId,
    pub current_group: Option<String>,
}

/// The answer to a code request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpIssued {
    pub phone: PhoneNumber,
    /// Seconds the code stays valid.
    pub expires_in: u64,
    /// Seconds before another code may be requested.
    pub resend_in: u64,
    /// The code itself, only when echo is on (local trials and tests).
    pub dev_code: Option<String>,
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub tokens: TokenPair,
    pub member: Member,
    pub created: bool,
}

/// What `verify_token` tells another service about an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub member_id: MemberId,
    pub session_id: SessionId,
    pub expires_at: DateTime<Utc>,
}

/// The client a request came from, as far as the edge can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Client IP, used for per-IP limits.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

// The seed referral-api's users list (filters, offset pages, a count).

/// Which members a directory listing answers: every given field must match exactly (phone in
/// E.164, e-mail lower-cased, codes upper-cased: parse them first); `search` matches members
/// whose phone, e-mail, first or last name starts with it (case-insensitive), or whose referral
/// code is it. `None` everywhere lists every live member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberFilter {
    pub email: Option<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<PhoneNumber>,
    pub referral_code: Option<ReferralCode>,
    /// The referral code the members redeemed.
    pub referred_by: Option<ReferralCode>,
    pub search: Option<String>,
}

/// One offset page of a directory listing, oldest member first, and how many match in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberList {
    pub count: u64,
    pub items: Vec<Member>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_must_not_be_blank_or_too_long() {
        assert_eq!(PersonName::parse("  Ann ").expect("valid").as_str(), "Ann");
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"я".repeat(100)).is_ok());
        assert!(PersonName::parse(&"я".repeat(101)).is_err());
        assert!(PersonName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn a_refresh_token_is_never_printed() {
        let t = RefreshToken::new("secret-value".into());
        assert!(!format!("{t:?}").contains("secret"));
    }
}
