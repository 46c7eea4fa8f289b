//! Groups, roles, memberships and the values that travel with them.
//!
//! Every value type here is parsed once at the edge and trusted afterwards: a [`Slug`] that
//! exists has the slug shape, a [`Permission`] that exists is a well-formed permission name, and
//! so on. The `from_trusted` constructors are for values read back from storage only.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use onboard_kernel::{GroupId, MemberId, PhoneNumber, random_bytes};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Slug
// ---------------------------------------------------------------------------------------------

/// A group's unique address: 3 to 40 characters of `a-z`, `0-9` and `-`, neither starting nor
/// ending with `-` (`acme`, `acme-2`, `ws-k3j9x0q2ma`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

/// The text is not a slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a slug is 3 to 40 characters of a-z, 0-9 and '-', not starting or ending with '-'")]
pub struct SlugError;

impl Slug {
    /// The shortest slug.
    pub const MIN_LEN: usize = 3;
    /// The longest slug.
    pub const MAX_LEN: usize = 40;
    /// Random characters appended by [`Slug::from_name`].
    const SUFFIX_LEN: usize = 6;

    /// Reads a slug exactly as given: no trimming, no case folding.
    pub fn parse(raw: &str) -> Result<Self, SlugError> {
        let ok = (Self::MIN_LEN..=Self::MAX_LEN).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if ok { Ok(Self(raw.to_owned())) } else { Err(SlugError) }
    }

    /// A fresh slug derived from a group name: its runs of ASCII letters and digits,
    /// lower-cased and joined by `-`, cut to fit, then `-` and six random characters of
    /// `a-z0-9` so that two groups of the same name do not clash (`"Acme Corp."` becomes
    /// `acme-corp-x81kq2`). A name with no ASCII letter or digit gives `group-` and six random
    /// characters.
    pub fn from_name(name: &str) -> Self {
        let mut base = String::new();
        for run in name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|r| !r.is_empty()) {
            if !base.is_empty() {
                base.push('-');
            }
            base.push_str(&run.to_ascii_lowercase());
        }
        // Only ASCII is left, so any byte index is a character boundary.
        base.truncate(Self::MAX_LEN - Self::SUFFIX_LEN - 1);
        let base = base.trim_end_matches('-');
        let base = if base.is_empty() { "group" } else { base };
        Self(format!("{base}-{}", random_alphanumerics(Self::SUFFIX_LEN)))
    }

    /// A fresh slug for a personal workspace: `ws-` and ten random characters of `a-z0-9`
    /// (about 51 bits, so a clash is a retryable rarity).
    pub fn personal() -> Self {
        Self(format!("ws-{}", random_alphanumerics(10)))
    }

    /// Rebuilds a slug that this system stored itself.
    pub fn from_trusted(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Slug").field(&self.0).finish()
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Slug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// `n` uniformly random characters of `a-z0-9` from the OS CSPRNG.
fn random_alphanumerics(n: usize) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes::<16>() {
            // 252 = 7 * 36: reject the tail so that every character is equally likely.
            if b < 252 && out.len() < n {
                out.push(char::from(ALPHABET[usize::from(b % 36)]));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// GroupName
// ---------------------------------------------------------------------------------------------

/// A group's display name: 1 to 100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupName(String);

/// The text is not a usable group name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a group name is 1 to 100 characters, without control characters")]
pub struct GroupNameError;

impl GroupName {
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Reads a name; surrounding white space is dropped.
    pub fn parse(raw: &str) -> Result<Self, GroupNameError> {
        let t = raw.trim();
        let n = t.chars().count();
        if (1..=Self::MAX_CHARS).contains(&n) && !t.chars().any(char::is_control) {
            Ok(Self(t.to_owned()))
        } else {
            Err(GroupNameError)
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

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Permission and the catalog
// ---------------------------------------------------------------------------------------------

/// The name of something a role allows: `[a-z][a-z0-9_.-]{0,63}` (`members.manage`,
/// `customer_read`). Whether a deployment knows it is the [`PermissionCatalog`]'s business.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission(Cow<'static, str>);

/// The text is not a permission name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a permission name (a-z first, then up to 63 of a-z, 0-9, '_', '.', '-')")]
pub struct PermissionError(pub String);

impl Permission {
    /// The longest name.
    pub const MAX_LEN: usize = 64;
    /// Change the group's name and settings, and its custom roles.
    pub const GROUP_MANAGE: Self = Self(Cow::Borrowed("group.manage"));
    /// Change members' roles, remove members, decide join requests, see pending members.
    pub const MEMBERS_MANAGE: Self = Self(Cow::Borrowed("members.manage"));
    /// Invite people, list and revoke invites.
    pub const INVITES_MANAGE: Self = Self(Cow::Borrowed("invites.manage"));
    /// The group's plan, cards and credit.
    pub const BILLING_MANAGE: Self = Self(Cow::Borrowed("billing.manage"));
    /// Send messages billed to the group.
    pub const MESSAGES_SEND: Self = Self(Cow::Borrowed("messages.send"));
    /// The group's outgoing webhooks and its events feed.
    pub const WEBHOOKS_MANAGE: Self = Self(Cow::Borrowed("webhooks.manage"));
    /// Every permission Onboard itself defines.
    pub const BUILTIN: [Self; 6] = [
        Self::GROUP_MANAGE,
        Self::MEMBERS_MANAGE,
        Self::INVITES_MANAGE,
        Self::BILLING_MANAGE,
        Self::MESSAGES_SEND,
        Self::WEBHOOKS_MANAGE,
    ];

    /// Reads a permission name exactly as given.
    pub fn parse(raw: &str) -> Result<Self, PermissionError> {
        let mut bytes = raw.bytes();
        let ok = raw.len() <= Self::MAX_LEN
            && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
            && bytes.all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
            });
        if ok { Ok(Self(Cow::Owned(raw.to_owned()))) } else { Err(PermissionError(raw.to_owned())) }
    }

    /// Reads a comma-separated list (the `EXTRA_PERMISSIONS` setting): white space around the
    /// names and empty entries are ignored.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, PermissionError> {
        raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Self::parse).collect()
    }

    /// Rebuilds a permission name that this system stored itself.
    pub fn from_trusted(s: impl Into<String>) -> Self {
        Self(Cow::Owned(s.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Permission").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name that is not a permission of this deployment (or not a permission name at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}")]
pub struct UnknownPermission(pub String);

/// The permissions this deployment knows: the built-ins plus its own extras
/// (`EXTRA_PERMISSIONS`). Roles may hold only these; `owner` and `admin` hold all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionCatalog {
    all: BTreeSet<Permission>,
}

impl Default for PermissionCatalog {
    /// The built-ins alone.
    fn default() -> Self {
        Self::new([])
    }
}

impl PermissionCatalog {
    /// The built-ins plus `extras` (an extra that repeats a built-in counts once).
    pub fn new(extras: impl IntoIterator<Item = Permission>) -> Self {
        Self { all: Permission::BUILTIN.into_iter().chain(extras).collect() }
    }

    /// Every permission of the deployment, in name order.
    pub fn all(&self) -> &BTreeSet<Permission> {
        &self.all
    }

    /// Whether the deployment knows `permission`.
    pub fn contains(&self, permission: &Permission) -> bool {
        self.all.contains(permission)
    }

    /// Reads one name as a permission of this deployment.
    pub fn parse(&self, name: &str) -> Result<Permission, UnknownPermission> {
        Permission::parse(name)
            .ok()
            .filter(|p| self.contains(p))
            .ok_or_else(|| UnknownPermission(name.to_owned()))
    }

    /// Reads names as a set of this deployment's permissions (repeats collapse); the error
    /// names the first name that is not one.
    pub fn parse_set<I>(&self, names: I) -> Result<BTreeSet<Permission>, UnknownPermission>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        names.into_iter().map(|n| self.parse(n.as_ref())).collect()
    }

    /// What a member holding `role` may do: everything for `owner` and `admin`, nothing for
    /// `member`, and for a custom role the permissions stored for it that the deployment still
    /// knows (`stored`; ignored for the built-ins).
    pub fn permissions_of(
        &self,
        role: &RoleName,
        stored: &BTreeSet<Permission>,
    ) -> BTreeSet<Permission> {
        if role.is_owner() || role.is_admin() {
            self.all.clone()
        } else if role.is_builtin() {
            BTreeSet::new()
        } else {
            stored.intersection(&self.all).cloned().collect()
        }
    }

    /// The roles of a group that hold `permission`: `owner` and `admin` always, and each of
    /// the group's `custom` roles whose permissions ([`Self::permissions_of`]) include it.
    /// The one rule of who holds a permission, for everything that must reach its holders
    /// (those who decide join requests, those told of billing changes).
    pub fn roles_holding(&self, permission: &Permission, custom: &[Role]) -> Vec<RoleName> {
        let mut roles = vec![RoleName::OWNER, RoleName::ADMIN];
        roles.extend(
            custom
                .iter()
                .filter(|r| !r.name.is_builtin())
                .filter(|r| self.permissions_of(&r.name, &r.permissions).contains(permission))
                .map(|r| r.name.clone()),
        );
        roles
    }
}

// ---------------------------------------------------------------------------------------------
// RoleName
// ---------------------------------------------------------------------------------------------

/// The name of a role in a group: 1 to 40 characters of `a-z`, `0-9`, `_` and `-`.
///
/// `owner`, `admin` and `member` are built into every group; any other name is a custom role
/// of one group.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleName(Cow<'static, str>);

/// The text is not a role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a role name is 1 to 40 characters of a-z, 0-9, '_' and '-'")]
pub struct RoleNameError;

impl RoleName {
    /// The longest name.
    pub const MAX_LEN: usize = 40;
    /// Every permission, plus the owner-only powers: deleting the group, granting `owner`,
    /// changing the role of or removing an owner.
    pub const OWNER: Self = Self(Cow::Borrowed("owner"));
    /// Every permission, without the owner-only powers.
    pub const ADMIN: Self = Self(Cow::Borrowed("admin"));
    /// No permission: an ordinary member.
    pub const MEMBER: Self = Self(Cow::Borrowed("member"));
    /// The built-in roles, in order of power.
    pub const BUILTIN: [Self; 3] = [Self::OWNER, Self::ADMIN, Self::MEMBER];

    /// Reads a role name exactly as given.
    pub fn parse(raw: &str) -> Result<Self, RoleNameError> {
        let ok = (1..=Self::MAX_LEN).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
        if ok { Ok(Self(Cow::Owned(raw.to_owned()))) } else { Err(RoleNameError) }
    }

    /// Rebuilds a role name that this system stored itself.
    pub fn from_trusted(s: impl Into<String>) -> Self {
        Self(Cow::Owned(s.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `owner`, `admin` or `member`.
    pub fn is_builtin(&self) -> bool {
        Self::BUILTIN.contains(self)
    }

    /// Whether this is `owner`: the role with the owner-only powers.
    pub fn is_owner(&self) -> bool {
        *self == Self::OWNER
    }

    /// Whether this is `admin`.
    pub fn is_admin(&self) -> bool {
        *self == Self::ADMIN
    }
}

impl fmt::Debug for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RoleName").field(&self.as_str()).finish()
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// MembershipStatus
// ---------------------------------------------------------------------------------------------

/// Where a member stands in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MembershipStatus {
    /// A member with the powers of their role.
    Active,
    /// A join request waiting for someone with `members.manage`; not a member anywhere else.
    Pending,
}

impl MembershipStatus {
    /// `active` or `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
        }
    }

    /// Reads `active` or `pending`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "pending" => Some(Self::Pending),
            _ => None,
        }
    }
}

impl fmt::Display for MembershipStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Entities
// ---------------------------------------------------------------------------------------------

/// A group (workspace, company).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub slug: Slug,
    pub name: GroupName,
    /// Whether a join request waits for approval (`pending`) instead of joining at once.
    pub approval_required: bool,
    pub created_at: DateTime<Utc>,
}

/// A group as one of its members sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyGroup {
    pub group: Group,
    pub my_role: RoleName,
}

/// A role of a group with what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: RoleName,
    pub permissions: BTreeSet<Permission>,
    /// `owner`, `admin` and `member`: present in every group, never changed or deleted.
    pub builtin: bool,
}

/// A member of a group (active) or a join request (pending), as the group lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: MemberId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<PhoneNumber>,
    pub role: RoleName,
    pub status: MembershipStatus,
    /// When the member joined (active) or asked to (pending).
    pub joined_at: DateTime<Utc>,
}

/// A member's own standing in a group (`GET /groups/{slug}/me`). A pending member has the
/// `member` role and no permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub role: RoleName,
    pub permissions: BTreeSet<Permission>,
    pub status: MembershipStatus,
}

/// A member's membership row, as storage keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub role: RoleName,
    pub status: MembershipStatus,
    /// The permissions stored for `role` when it is a custom role of the group; empty for the
    /// built-in roles (their permissions come from the [`PermissionCatalog`]).
    pub role_permissions: BTreeSet<Permission>,
}

/// A group to create, as the caller asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateGroup {
    pub name: GroupName,
    /// The slug asked for; `None` derives one from the name.
    pub slug: Option<Slug>,
    pub approval_required: bool,
}

/// A change to a group's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupPatch {
    pub name: Option<GroupName>,
    pub approval_required: Option<bool>,
}

impl GroupPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.approval_required.is_none()
    }
}

// ---------------------------------------------------------------------------------------------
// Pages and cursors
// ---------------------------------------------------------------------------------------------

/// One page of a list and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more may follow; hand it back as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// A position in a member's list of groups, which runs in join order: when the member joined
/// the group, then the group's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCursor {
    pub joined_at: DateTime<Utc>,
    pub group_id: GroupId,
}

impl GroupCursor {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        encode_cursor('g', self.joined_at, self.group_id.as_uuid())
    }

    /// Reads a cursor a client sent back; `None` when it is not a cursor of this list.
    pub fn decode(raw: &str) -> Option<Self> {
        let (joined_at, id) = decode_cursor('g', raw)?;
        Some(Self { joined_at, group_id: GroupId::from_uuid(id) })
    }
}

/// A position in a group's list of members (or join requests), which runs in join order: when
/// the member joined (or asked to), then the member's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberCursor {
    pub joined_at: DateTime<Utc>,
    pub member_id: MemberId,
}

impl MemberCursor {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        encode_cursor('m', self.joined_at, self.member_id.as_uuid())
    }

    /// Reads a cursor a client sent back; `None` when it is not a cursor of this list.
    pub fn decode(raw: &str) -> Option<Self> {
        let (joined_at, id) = decode_cursor('m', raw)?;
        Some(Self { joined_at, member_id: MemberId::from_uuid(id) })
    }
}

fn encode_cursor(kind: char, at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{}:{id}", at.timestamp_micros()))
}

fn decode_cursor(kind: char, raw: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(3, ':');
    if parts.next()? != kind.encode_utf8(&mut [0; 4]) {
        return None;
    }
    let at = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
    let id = Uuid::parse_str(parts.next()?).ok()?;
    Some((at, id))
}

#[cfg(test)]
mod tests;
