//! What platform administration reads and writes.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use onboard_groups::Group;
use onboard_kernel::{MemberId, ReferralCode};
use onboard_members::Member;
use uuid::Uuid;

/// Who performed an admin action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A platform admin, through the HTTP API.
    Member(MemberId),
    /// The `onboard admin` command line (an operator with database access).
    Cli,
}

impl Actor {
    /// `member` or `cli`, as the audit trail stores it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Member(_) => "member",
            Self::Cli => "cli",
        }
    }

    /// The acting member, if a member acted.
    pub fn member_id(&self) -> Option<MemberId> {
        match self {
            Self::Member(id) => Some(*id),
            Self::Cli => None,
        }
    }

    /// Reads back what [`Self::kind`] and [`Self::member_id`] stored.
    pub fn from_stored(kind: &str, member: Option<MemberId>) -> Self {
        match (kind, member) {
            ("member", Some(id)) => Self::Member(id),
            _ => Self::Cli,
        }
    }
}

/// What an admin did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// Made a member a platform admin.
    Grant,
    /// Took platform admin away from a member.
    Revoke,
    /// Blocked a member (sessions revoked, sign-in refused).
    Block,
    /// Lifted a block.
    Unblock,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Revoke => "revoke",
            Self::Block => "block",
            Self::Unblock => "unblock",
        }
    }

    /// Reads back what [`Self::as_str`] stored.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "grant" => Self::Grant,
            "revoke" => Self::Revoke,
            "block" => Self::Block,
            "unblock" => Self::Unblock,
            _ => return None,
        })
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the audit trail, written in the same transaction as the action it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Time-ordered (v7): the newest entry has the greatest id.
    pub id: Uuid,
    pub actor: Actor,
    pub action: AuditAction,
    pub target: MemberId,
    /// Free text: the block reason, if any.
    pub details: Option<String>,
    pub at: DateTime<Utc>,
}

/// The reason given for a block: 1 to 500 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockReason(String);

/// The text is not a usable block reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a block reason is 1 to 500 characters")]
pub struct BlockReasonError;

impl BlockReason {
    pub fn parse(raw: &str) -> Result<Self, BlockReasonError> {
        let t = raw.trim();
        if (1..=500).contains(&t.chars().count()) {
            Ok(Self(t.to_owned()))
        } else {
            Err(BlockReasonError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A member's block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// What the admin member search looks for, read from `q`.
///
/// - empty: every member;
/// - `+` and digits (spaces, dashes and brackets ignored), or digits alone: a phone prefix
///   (E.164, the `+` implied);
/// - text with `@`: an e-mail prefix (case-insensitive);
/// - anything else: a first-name, last-name or e-mail prefix (case-insensitive), or an exact
///   referral code when the text is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberSearch {
    All,
    /// Starts with `+`.
    PhonePrefix(String),
    /// Lower case.
    EmailPrefix(String),
    /// `prefix` lower case: a name or e-mail prefix.
    NameOrCode {
        prefix: String,
        code: Option<ReferralCode>,
    },
}

/// A search text longer than 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a search is at most 100 characters")]
pub struct SearchError;

impl MemberSearch {
    pub fn parse(q: Option<&str>) -> Result<Self, SearchError> {
        let q = q.map(str::trim).unwrap_or_default();
        if q.chars().count() > 100 {
            return Err(SearchError);
        }
        if q.is_empty() {
            return Ok(Self::All);
        }
        let compact: String =
            q.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
        let digits = compact.strip_prefix('+').unwrap_or(&compact);
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            return Ok(Self::PhonePrefix(format!("+{digits}")));
        }
        if q.contains('@') {
            return Ok(Self::EmailPrefix(q.to_lowercase()));
        }
        Ok(Self::NameOrCode { prefix: q.to_lowercase(), code: ReferralCode::parse(q).ok() })
    }
}

/// What the admin group search looks for: every group, or a slug or name prefix
/// (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSearch {
    All,
    /// Lower case.
    Prefix(String),
}

impl GroupSearch {
    pub fn parse(q: Option<&str>) -> Result<Self, SearchError> {
        let q = q.map(str::trim).unwrap_or_default();
        if q.chars().count() > 100 {
            return Err(SearchError);
        }
        Ok(if q.is_empty() { Self::All } else { Self::Prefix(q.to_lowercase()) })
    }
}

/// A member as the admin search lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminMember {
    pub member: Member,
    /// Granted (stored) or listed in `ADMIN_PHONES`.
    pub is_admin: bool,
    pub blocked: bool,
}

/// One group a member belongs to (active or pending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberGroup {
    pub slug: String,
    pub name: String,
    pub role: String,
    /// `active` or `pending`.
    pub status: String,
}

/// Everything an admin sees of one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDetail {
    pub member: Member,
    pub is_admin: bool,
    pub block: Option<Block>,
    pub groups: Vec<MemberGroup>,
    pub sessions_active: u64,
    pub invitees_count: u64,
}

/// A group as the admin listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminGroup {
    pub group: Group,
    /// Active members.
    pub members_count: u64,
    /// The billing plan; `free` for a group without a billing account.
    pub plan: String,
}

/// What storage knows about a member's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub phone: Option<onboard_kernel::PhoneNumber>,
    /// Granted through `onboard admin grant` (not counting `ADMIN_PHONES`).
    pub is_admin: bool,
    pub blocked: bool,
}

/// The counts storage keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredCounts {
    /// Live members.
    pub members: u64,
    pub groups: u64,
    /// Sessions opened since the given time.
    pub sign_ins: u64,
    /// Live members who redeemed a referral code.
    pub referrals_redeemed: u64,
}

/// One-time code traffic over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OtpCounts {
    /// Codes issued (sent).
    pub sends: u64,
    /// Wrong codes presented.
    pub failures: u64,
}

/// The platform at a glance; `*_24h` cover the last 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub members: u64,
    pub groups: u64,
    pub sign_ins_24h: u64,
    pub otp_sends_24h: u64,
    pub otp_failures_24h: u64,
    pub referrals_redeemed: u64,
}

/// One page of a list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more may follow.
    pub next_cursor: Option<String>,
}

/// A position in an admin list: the id (time-ordered v7) of the last item seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdCursor(pub Uuid);

impl IdCursor {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// Reads a cursor a client sent back; `None` when it is not one of ours.
    pub fn decode(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
        Uuid::from_slice(&bytes).ok().map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_text_says_what_it_looks_for() {
        assert_eq!(MemberSearch::parse(None), Ok(MemberSearch::All));
        assert_eq!(MemberSearch::parse(Some("  ")), Ok(MemberSearch::All));
        assert_eq!(
            MemberSearch::parse(Some("+7 917-44")),
            Ok(MemberSearch::PhonePrefix("+791744".into()))
        );
        assert_eq!(
            MemberSearch::parse(Some("7917")),
            Ok(MemberSearch::PhonePrefix("+7917".into()))
        );
        assert_eq!(
            MemberSearch::parse(Some("Ann@Example")),
            Ok(MemberSearch::EmailPrefix("ann@example".into()))
        );
        assert_eq!(
            MemberSearch::parse(Some("Ann")),
            Ok(MemberSearch::NameOrCode { prefix: "ann".into(), code: None })
        );
        let Ok(MemberSearch::NameOrCode { prefix, code: Some(code) }) =
            MemberSearch::parse(Some("k49fj5"))
        else {
            panic!("a referral code");
        };
        assert_eq!(prefix, "k49fj5");
        assert_eq!(code.as_str(), "K49FJ5");
        assert!(MemberSearch::parse(Some(&"a".repeat(101))).is_err());
    }

    #[test]
    fn a_cursor_round_trips_and_junk_is_not_one() {
        let c = IdCursor(Uuid::now_v7());
        assert_eq!(IdCursor::decode(&c.encode()), Some(c));
        assert_eq!(IdCursor::decode("nope!"), None);
    }

    #[test]
    fn block_reasons_are_trimmed_and_bounded() {
        assert_eq!(BlockReason::parse("  spam ").map(|r| r.as_str().to_owned()), Ok("spam".into()));
        assert!(BlockReason::parse("   ").is_err());
        assert!(BlockReason::parse(&"x".repeat(501)).is_err());
    }
}
