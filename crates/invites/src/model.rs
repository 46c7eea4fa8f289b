//! Invites and the values that travel with them.
//!
//! Every value type here is parsed once at the edge and trusted afterwards: an [`InviteCode`]
//! that exists has the code shape, an [`InviteeName`] that exists is a usable name. The
//! `from_trusted` constructors are for values read back from storage only.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use onboard_groups::{GroupName, MyGroup, RoleName, Slug};
use onboard_kernel::{Email, GroupId, MemberId, PhoneNumber, random_bytes};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// InviteId
// ---------------------------------------------------------------------------------------------

/// Identifies an invite: a time-ordered UUID (v7). Serialised as the bare UUID.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct InviteId(Uuid);

impl InviteId {
    /// A new, time-ordered (v7) id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an id read back from storage.
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for InviteId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for InviteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for InviteId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl From<Uuid> for InviteId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

// ---------------------------------------------------------------------------------------------
// InviteCode
// ---------------------------------------------------------------------------------------------

/// The single-use secret that accepts an invite: [`InviteCode::generate`] makes 128 random
/// bits in unpadded base64url (22 characters); [`InviteCode::parse`] reads any text of 16 to 64
/// characters of `A-Z`, `a-z`, `0-9`, `-` and `_`.
///
/// `Debug` shows only the first four characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct InviteCode(String);

/// The text is not an invite code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an invite code is 16 to 64 characters of A-Z, a-z, 0-9, '-' and '_'")]
pub struct InviteCodeError;

impl InviteCode {
    /// The shortest code [`InviteCode::parse`] accepts.
    pub const MIN_LEN: usize = 16;
    /// The longest code [`InviteCode::parse`] accepts.
    pub const MAX_LEN: usize = 64;

    /// A fresh code: 128 bits from the OS CSPRNG, base64url without padding.
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random_bytes::<16>()))
    }

    /// Reads a code exactly as given: no trimming, no case folding.
    pub fn parse(raw: &str) -> Result<Self, InviteCodeError> {
        let ok = (Self::MIN_LEN..=Self::MAX_LEN).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok { Ok(Self(raw.to_owned())) } else { Err(InviteCodeError) }
    }

    /// The code text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII, so any byte index is a character boundary.
        write!(f, "InviteCode(\"{}…\")", &self.0[..4.min(self.0.len())])
    }
}

impl fmt::Display for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// InviteeName
// ---------------------------------------------------------------------------------------------

/// The name of the person invited, as the inviter wrote it: 1 to 100 characters after
/// trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InviteeName(String);

/// The text is not a usable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a name is 1 to 100 characters, without control characters")]
pub struct InviteeNameError;

impl InviteeName {
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Reads a name; surrounding white space is dropped.
    pub fn parse(raw: &str) -> Result<Self, InviteeNameError> {
        let t = raw.trim();
        let n = t.chars().count();
        if (1..=Self::MAX_CHARS).contains(&n) && !t.chars().any(char::is_control) {
            Ok(Self(t.to_owned()))
        } else {
            Err(InviteeNameError)
        }
    }

    /// Rebuilds a name that this system stored itself.
    pub fn from_trusted(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The name text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InviteeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// InviteStatus
// ---------------------------------------------------------------------------------------------

/// Where an invite stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InviteStatus {
    /// Waiting to be accepted, and not expired: its code works.
    Pending,
    /// Accepted by a member; its code is used up.
    Accepted,
    /// Revoked by someone with `invites.manage`; its code does not work.
    Revoked,
    /// Never accepted before its expiry. Derived, never stored as such: an invite is expired
    /// when it is pending and its `expires_at` is at or before now (see
    /// [`InviteStatus::as_of`]).
    Expired,
}

impl InviteStatus {
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    /// Reads `pending`, `accepted`, `revoked` or `expired`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "accepted" => Some(Self::Accepted),
            "revoked" => Some(Self::Revoked),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }

    /// The status at `now` of an invite stored with this status that expires at `expires_at`:
    /// a pending invite whose `expires_at` is at or before `now` is [`Self::Expired`]; every
    /// other status stays as it is.
    pub fn as_of(self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        if self == Self::Pending && expires_at <= now { Self::Expired } else { self }
    }
}

impl fmt::Display for InviteStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Entities
// ---------------------------------------------------------------------------------------------

/// An invite to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: InviteId,
    pub group: GroupId,
    pub group_slug: Slug,
    /// The invited person's name, as the inviter wrote it.
    pub name: InviteeName,
    /// When present, only the member with this phone may accept.
    pub phone: Option<PhoneNumber>,
    pub email: Option<Email>,
    /// The role the invitee gets on joining.
    pub role: RoleName,
    pub status: InviteStatus,
    pub invited_by: MemberId,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl Invite {
    /// The invite with its status as of `now` (see [`InviteStatus::as_of`]).
    #[must_use]
    pub fn as_of(mut self, now: DateTime<Utc>) -> Self {
        self.status = self.status.as_of(self.expires_at, now);
        self
    }
}

/// A new invite and its code: the only time the code is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedInvite {
    pub invite: Invite,
    pub code: InviteCode,
}

/// An invite to create, as the inviter asked for it. At least one of `phone` and `email` is
/// needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateInvite {
    pub name: InviteeName,
    pub phone: Option<PhoneNumber>,
    pub email: Option<Email>,
    /// The role to grant; `None` grants `member`.
    pub role: Option<RoleName>,
}

/// What anyone holding a live code may see of its invite (no sign-in needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitePreview {
    pub group_slug: Slug,
    pub group_name: GroupName,
    /// The inviter's first name, when they have one (and still exist).
    pub inviter_first_name: Option<String>,
    /// The invited person's name, as the inviter wrote it.
    pub name: InviteeName,
    pub expires_at: DateTime<Utc>,
    /// As stored; the service answers only pending, unexpired invites.
    pub status: InviteStatus,
}

/// How accepting an invite ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcceptOutcome {
    /// The member is now an active member with the invite's role.
    Joined,
    /// The member was already an active member; their role did not change.
    AlreadyMember,
    /// The group requires approval: the member's join request waits (as `member`) for someone
    /// with `members.manage`.
    PendingApproval,
}

impl AcceptOutcome {
    /// `joined`, `already_member` or `pending_approval`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::AlreadyMember => "already_member",
            Self::PendingApproval => "pending_approval",
        }
    }
}

impl fmt::Display for AcceptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An accepted invite: the outcome and the group as the member now sees it (`my_role` is
/// their role: the invite's, their earlier one when already a member, `member` when pending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptRecord {
    pub outcome: AcceptOutcome,
    pub group: MyGroup,
}

// ---------------------------------------------------------------------------------------------
// Cursor
// ---------------------------------------------------------------------------------------------

/// A position in a group's list of invites, which runs newest first: by creation time, then by
/// id, both descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteCursor {
    pub created_at: DateTime<Utc>,
    pub invite_id: InviteId,
}

impl InviteCursor {
    /// The position of `invite` in the list.
    pub fn of(invite: &Invite) -> Self {
        Self { created_at: invite.created_at, invite_id: invite.id }
    }

    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "i:{}:{}",
            self.created_at.timestamp_micros(),
            self.invite_id.as_uuid()
        ))
    }

    /// Reads a cursor a client sent back; `None` when it is not a cursor of this list.
    pub fn decode(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, ':');
        if parts.next()? != "i" {
            return None;
        }
        let created_at = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
        let invite_id = InviteId::from_uuid(Uuid::parse_str(parts.next()?).ok()?);
        Some(Self { created_at, invite_id })
    }
}

#[cfg(test)]
mod tests;
