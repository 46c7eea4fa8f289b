//! Members, sessions, groups and invites in memory.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_groups::{Group, GroupName, Slug};
use onboard_invites::InviteId;
use onboard_kernel::events::Event;
use onboard_kernel::{Email, GroupId, MemberId, PhoneNumber, ReferralCode, SessionId};
use onboard_members::events::with_workspace_slug;
use onboard_members::ports::{
    MemberRepository, NewWorkspace, RefreshedSession, SignInRecord, SignInRequest,
};
use onboard_members::{
    DeleteMemberError, Member, MemberCard, MemberFilter, MemberList, MemberView, Profile,
    ProfilePatch, Session, SessionKind, SignInStoreError, TokenHash, UpdateProfileError,
};

mod admin;
pub(crate) mod billing_outbox;
mod groups;
mod invites;
mod messages;
mod notifications;
mod outbox;
mod referrals;
mod sessions;
mod sms_credit;
mod sms_credit_repo;
mod sso;
mod webhooks;

use groups::{GroupRow, GroupsOfDeleted};
use invites::InviteRow;

/// Members, their sessions, referrals, groups and invites behind one mutex: each call is one atomic
/// change, like the PostgreSQL adapter's transaction, with the same rules.
///
/// - Phones, e-mails and referral codes are unique. A deleted member's phone and e-mail are
///   free again; their referral code stays taken (and no longer redeemable).
/// - `sign_in` creates at most one member per phone, however many run at once. A taken
///   `new_referral_code` or a `referred_by` that names no live member writes nothing.
/// - Invitees are the live members a member referred, newest first (by `referred_at`, then id).
/// - A live session is neither revoked nor expired; sessions list newest first.
/// - `rotate`: the live token of a live `rotating` session rotates; a used token presented
///   again within the grace period with the same successor, while the session is not revoked,
///   is `Grace`; any other used token revokes its session (`Reused`); anything else is
///   `Invalid`. `refresh_lenient` follows the lenient kinds' rules (never revoking), and each
///   matches only sessions of its own kind.
/// - A sign-up with a personal workspace creates that group, with the new member its active
///   owner and the group their current one; a taken workspace slug is replaced by a fresh
///   [`Slug::personal`].
/// - Every member read carries the slug of their current group, and so does a refresh.
/// - `view` shows the full member to themself and to members who share an active group with
///   them, the card to anyone else.
/// - Deleting a member is refused ([`DeleteMemberError::LastOwner`], nothing changed) while
///   they are the only active owner of a group with other active members. Otherwise it deletes
///   the groups in which they are the only active member, all their memberships and join
///   requests, and revokes their live sessions (answering their ids).
/// - Groups ([`GroupRepository`](onboard_groups::ports::GroupRepository)): unique slugs and
///   custom role names, the last-owner rule, join requests decided once, the current group
///   set only by an active member and cleared when they leave or the group goes.
/// - Invites ([`InviteRepository`](onboard_invites::ports::InviteRepository)): at most one
///   live invite per group and phone or e-mail, none for an active member; an invite is
///   accepted once, into the same memberships the groups port sees; a group's invites go
///   with it.
/// - Referrals ([`ReferralRepository`](onboard_referrals::ports::ReferralRepository)): a
///   member redeems one live member's code, once, never their own, never one whose owner is
///   below them in the referral tree (deleted members stay in the tree); invitee pages follow
///   the same order as the profile's invitees.
/// - Administration ([`AdminRepository`](onboard_admin::ports::AdminRepository)): each action
///   appends its audit entry in the same call; a block revokes the member's live sessions,
///   and while it holds `sign_in` answers [`SignInStoreError::Blocked`] and `rotate`
///   [`RotateOutcome::Blocked`](onboard_members::ports::RotateOutcome::Blocked) for their
///   tokens.
#[derive(Debug)]
pub struct MemoryStore {
    /// Shared with the billing store (billnote), which notifies under this lock.
    state: std::sync::Arc<Mutex<State>>,
    /// The billing store beside it: the admin group listing reads plans from it (its lock is
    /// only ever taken after this store's, never the other way round).
    billing: std::sync::Arc<crate::MemoryBillingStore>,
}

#[derive(Debug, Default)]
struct State {
    members: HashMap<MemberId, MemberRow>,
    groups: HashMap<GroupId, GroupRow>,
    group_slugs: HashMap<Slug, GroupId>,
    by_phone: HashMap<PhoneNumber, MemberId>,
    by_email: HashMap<Email, MemberId>,
    /// Every code ever given out, deleted members' included.
    by_code: HashMap<ReferralCode, MemberId>,
    sessions: HashMap<SessionId, SessionRow>,
    /// The current refresh token of every session, revoked ones included.
    by_refresh: HashMap<TokenHash, SessionId>,
    used: HashMap<TokenHash, UsedToken>,
    /// Invites to groups, any status; a group's go with it.
    invites: HashMap<InviteId, InviteRow>,
    /// Provider identities (provider, subject) and the member each is linked to.
    sso_identities: HashMap<(String, String), MemberId>,
    /// Members granted platform admin.
    admins: HashSet<MemberId>,
    /// Blocked members and their blocks.
    blocked: HashMap<MemberId, onboard_admin::Block>,
    /// The admin audit trail, oldest first.
    admin_audit: Vec<onboard_admin::AuditEntry>,
    /// Members' notifications (notify).
    notifications: notifications::Notifications,
    /// Groups' SMS credit wallets and ledgers.
    sms_credit: sms_credit::SmsCredit,
    /// Groups' messages and their outbox.
    messages: messages::Messages,
    /// Domain events, recorded with the change they report.
    outbox: outbox::Outbox,
    /// Webhook endpoints and their deliveries.
    webhooks: webhooks::Webhooks,
}

#[derive(Debug, Clone)]
struct MemberRow {
    id: MemberId,
    phone: Option<PhoneNumber>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<Email>,
    referral_code: ReferralCode,
    referred_by: Option<MemberId>,
    referred_at: Option<DateTime<Utc>>,
    current_group: Option<GroupId>,
    created_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct SessionRow {
    id: SessionId,
    member_id: MemberId,
    kind: SessionKind,
    refresh_hash: TokenHash,
    user_agent: Option<String>,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy)]
struct UsedToken {
    session_id: SessionId,
    rotated_to: TokenHash,
    used_at: DateTime<Utc>,
}

impl SessionRow {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }

    fn to_session(&self) -> Session {
        Session {
            id: self.id,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            user_agent: self.user_agent.clone(),
        }
    }
}

impl State {
    fn live_member(&self, id: MemberId) -> Option<&MemberRow> {
        self.members.get(&id).filter(|m| m.deleted_at.is_none())
    }

    fn member(&self, row: &MemberRow) -> Member {
        Member {
            id: row.id,
            phone: row.phone.clone(),
            first_name: row.first_name.clone(),
            last_name: row.last_name.clone(),
            email: row.email.clone(),
            referral_code: row.referral_code.clone(),
            referred_by: row
                .referred_by
                .and_then(|r| self.members.get(&r))
                .map(|r| r.referral_code.clone()),
            current_group: row
                .current_group
                .and_then(|g| self.group_slug(g))
                .map(|s| s.as_str().to_owned()),
            created_at: row.created_at,
        }
    }

    /// A rotated session, with the slug of its member's current group.
    fn refreshed(&self, session: &SessionRow) -> RefreshedSession {
        RefreshedSession {
            session_id: session.id,
            member_id: session.member_id,
            current_group: self
                .members
                .get(&session.member_id)
                .and_then(|m| m.current_group)
                .and_then(|g| self.group_slug(g))
                .map(|s| s.as_str().to_owned()),
        }
    }

    fn live_code_owner(&self, code: &ReferralCode) -> Option<MemberId> {
        self.by_code.get(code).copied().filter(|id| self.live_member(*id).is_some())
    }

    fn open_session(&mut self, request: &SignInRequest, member_id: MemberId) {
        let s = &request.session;
        self.by_refresh.insert(s.refresh_hash, s.id);
        self.sessions.insert(
            s.id,
            SessionRow {
                id: s.id,
                member_id,
                kind: s.kind,
                refresh_hash: s.refresh_hash,
                user_agent: s.user_agent.clone(),
                created_at: request.now,
                last_used_at: request.now,
                expires_at: s.expires_at,
                revoked_at: None,
            },
        );
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        let state = std::sync::Arc::new(Mutex::new(State::default()));
        // The billing store records its events under this store's lock, taken before its own
        // (the one lock order of the two).
        let outbox = billing_outbox::BillingOutbox::new(state.clone());
        let billing = std::sync::Arc::new(crate::MemoryBillingStore::recording(outbox));
        Self { state, billing }
    }
}

impl MemoryStore {
    /// The billing store that shares this store's data (the payments ports of the embedded
    /// wiring).
    pub fn billing(&self) -> std::sync::Arc<crate::MemoryBillingStore> {
        self.billing.clone()
    }

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change is checked before anything is written, so a poisoned lock still guards
        // consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl MemberRepository for MemoryStore {
    async fn find_by_phone(&self, phone: &PhoneNumber) -> anyhow::Result<Option<Member>> {
        let state = self.state();
        Ok(state.by_phone.get(phone).and_then(|id| state.live_member(*id)).map(|m| state.member(m)))
    }

    async fn referral_code_owner(&self, code: &ReferralCode) -> anyhow::Result<Option<MemberId>> {
        Ok(self.state().live_code_owner(code))
    }

    async fn sign_in(&self, request: SignInRequest) -> Result<SignInRecord, SignInStoreError> {
        let mut state = self.state();
        if state.sessions.contains_key(&request.session.id)
            || state.by_refresh.contains_key(&request.session.refresh_hash)
        {
            return Err(anyhow::anyhow!("session id or refresh token hash already in use").into());
        }

        if let Some(id) = state.by_phone.get(&request.phone).copied() {
            if state.is_blocked(id) {
                return Err(SignInStoreError::Blocked);
            }
            state.open_session(&request, id);
            let member = state
                .live_member(id)
                .map(|m| state.member(m))
                .ok_or_else(|| anyhow::anyhow!("phone index names a deleted member"))?;
            return Ok(SignInRecord { member, created: false });
        }

        if state.by_code.contains_key(&request.new_referral_code) {
            return Err(SignInStoreError::ReferralCodeCollision);
        }
        let referrer = match &request.referred_by {
            Some(code) => {
                Some(state.live_code_owner(code).ok_or(SignInStoreError::ReferralCodeNotFound)?)
            }
            None => None,
        };
        if state.members.contains_key(&request.new_member_id) {
            return Err(anyhow::anyhow!("member id already in use").into());
        }
        let workspace = match &request.personal_workspace {
            Some(w) => Some(personal_workspace(&state, w, request.now)?),
            None => None,
        };

        let row = MemberRow {
            id: request.new_member_id,
            phone: Some(request.phone.clone()),
            first_name: None,
            last_name: None,
            email: None,
            referral_code: request.new_referral_code.clone(),
            referred_by: referrer,
            referred_at: referrer.map(|_| request.now),
            current_group: workspace.as_ref().map(|w| w.id),
            created_at: request.now,
            deleted_at: None,
        };
        let id = row.id;
        let events = match (&workspace, &request.personal_workspace) {
            (Some(stored), Some(asked)) if stored.slug.as_str() != asked.slug => {
                with_workspace_slug(&request.created_events, stored.id, stored.slug.as_str())
            }
            _ => request.created_events.clone(),
        };
        state.by_phone.insert(request.phone.clone(), id);
        state.by_code.insert(row.referral_code.clone(), id);
        state.members.insert(id, row);
        if let Some(workspace) = workspace {
            // Checked above: the slug and id are free and the owner exists.
            state.insert_group(workspace, id).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        state.outbox.record(&events);
        let member = state
            .live_member(id)
            .map(|m| state.member(m))
            .ok_or_else(|| anyhow::anyhow!("the new member vanished under the lock"))?;
        state.open_session(&request, member.id);
        Ok(SignInRecord { member, created: true })
    }

    async fn get(&self, id: MemberId) -> anyhow::Result<Option<Member>> {
        let state = self.state();
        Ok(state.live_member(id).map(|m| state.member(m)))
    }

    async fn profile(&self, id: MemberId, invitees: u32) -> anyhow::Result<Option<Profile>> {
        let state = self.state();
        let Some(row) = state.live_member(id) else {
            return Ok(None);
        };
        let mut referred: Vec<&MemberRow> = state
            .members
            .values()
            .filter(|m| m.referred_by == Some(id) && m.deleted_at.is_none())
            .collect();
        referred.sort_by_key(|m| Reverse((m.referred_at, m.id)));
        let invitees_count = u64::try_from(referred.len()).unwrap_or(u64::MAX);
        let shown = usize::try_from(invitees).unwrap_or(usize::MAX);
        Ok(Some(Profile {
            member: state.member(row),
            invitees: referred
                .into_iter()
                .take(shown)
                .map(|m| MemberCard::from(&state.member(m)))
                .collect(),
            invitees_count,
        }))
    }

    async fn view(&self, viewer: MemberId, id: MemberId) -> anyhow::Result<Option<MemberView>> {
        let state = self.state();
        Ok(state.live_member(id).map(|row| {
            let member = state.member(row);
            if viewer == id || state.share_an_active_group(viewer, id) {
                MemberView::Full(member)
            } else {
                MemberView::Card(MemberCard::from(&member))
            }
        }))
    }

    async fn update_profile(
        &self,
        id: MemberId,
        patch: &ProfilePatch,
        events: &[Event],
    ) -> Result<Member, UpdateProfileError> {
        let mut state = self.state();
        let Some(row) = state.live_member(id) else {
            return Err(UpdateProfileError::NotFound);
        };
        let old_email = row.email.clone();
        if let Some(email) = &patch.email
            && state.by_email.get(email).is_some_and(|owner| *owner != id)
        {
            return Err(UpdateProfileError::EmailTaken);
        }
        if let Some(email) = &patch.email {
            if let Some(old) = &old_email {
                state.by_email.remove(old);
            }
            state.by_email.insert(email.clone(), id);
        }
        let row = state
            .members
            .get_mut(&id)
            .ok_or_else(|| anyhow::anyhow!("the member vanished under the lock"))?;
        if let Some(name) = &patch.first_name {
            row.first_name = Some(name.as_str().to_owned());
        }
        if let Some(name) = &patch.last_name {
            row.last_name = Some(name.as_str().to_owned());
        }
        if let Some(email) = &patch.email {
            row.email = Some(email.clone());
        }
        let row = row.clone();
        state.outbox.record(events);
        Ok(state.member(&row))
    }

    async fn delete(
        &self,
        id: MemberId,
        now: DateTime<Utc>,
        events: &[Event],
    ) -> Result<Vec<SessionId>, DeleteMemberError> {
        let mut state = self.state();
        if state.live_member(id).is_none() {
            return Err(DeleteMemberError::NotFound);
        }
        let solo = match state.groups_of_deleted(id) {
            GroupsOfDeleted::LastOwner => return Err(DeleteMemberError::LastOwner),
            GroupsOfDeleted::Solo(solo) => solo,
        };
        for group in solo {
            state.delete_group(group);
            // The billing lock is taken after this store's, as everywhere.
            self.billing.group_deleted(group);
        }
        state.remove_memberships(id);
        let Some(row) = state.members.get_mut(&id) else {
            return Err(anyhow::anyhow!("the member vanished under the lock").into());
        };
        row.deleted_at = Some(now);
        row.current_group = None;
        let phone = row.phone.take();
        let email = row.email.take();
        if let Some(phone) = phone {
            state.by_phone.remove(&phone);
        }
        if let Some(email) = email {
            state.by_email.remove(&email);
        }
        let mut revoked = Vec::new();
        for session in state.sessions.values_mut() {
            if session.member_id == id && session.is_live(now) {
                session.revoked_at = Some(now);
                revoked.push(session.id);
            }
        }
        revoked.sort();
        state.outbox.record(events);
        Ok(revoked)
    }

    // The seed referral-api's users list.
    async fn list_members(
        &self,
        filter: &MemberFilter,
        offset: u64,
        limit: u32,
    ) -> anyhow::Result<MemberList> {
        let state = self.state();
        let mut rows: Vec<Member> = state
            .members
            .values()
            .filter(|m| m.deleted_at.is_none())
            .map(|m| state.member(m))
            .filter(|m| matches_filter(m, filter))
            .collect();
        rows.sort_by_key(|m| (m.created_at, m.id));
        let count = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let items = rows.into_iter().skip(skip).take(limit as usize).collect();
        Ok(MemberList { count, items })
    }
}

// The filter of the seed referral-api's users list.
/// Whether `m` passes `filter`, as [`MemberRepository::list_members`] says.
fn matches_filter(m: &Member, filter: &MemberFilter) -> bool {
    fn same<T: PartialEq>(wanted: Option<&T>, actual: Option<&T>) -> bool {
        wanted.is_none_or(|w| actual == Some(w))
    }
    let starts = |field: Option<&str>, prefix: &str| {
        field.is_some_and(|f| f.to_lowercase().starts_with(prefix))
    };
    let search = filter.search.as_deref().map(str::to_lowercase);
    same(filter.email.as_ref(), m.email.as_ref())
        && same(filter.first_name.as_ref(), m.first_name.as_ref())
        && same(filter.last_name.as_ref(), m.last_name.as_ref())
        && same(filter.phone.as_ref(), m.phone.as_ref())
        && same(filter.referral_code.as_ref(), Some(&m.referral_code))
        && same(filter.referred_by.as_ref(), m.referred_by.as_ref())
        && search.is_none_or(|q| {
            starts(m.phone.as_ref().map(PhoneNumber::as_e164), &q)
                || starts(m.email.as_ref().map(Email::as_str), &q)
                || starts(m.first_name.as_deref(), &q)
                || starts(m.last_name.as_deref(), &q)
                || m.referral_code.as_str().eq_ignore_ascii_case(&q)
        })
}

/// The personal workspace of a new member as a group to store: the asked slug, or a fresh
/// [`Slug::personal`] when that one is taken (as the PostgreSQL adapter retries).
fn personal_workspace(
    state: &State,
    workspace: &NewWorkspace,
    now: DateTime<Utc>,
) -> anyhow::Result<Group> {
    if state.groups.contains_key(&workspace.id) {
        anyhow::bail!("group id {} already in use", workspace.id);
    }
    let mut slug = Slug::parse(&workspace.slug)
        .map_err(|e| anyhow::anyhow!("personal workspace slug {:?}: {e}", workspace.slug))?;
    while state.group_slugs.contains_key(&slug) {
        slug = Slug::personal();
    }
    let name = GroupName::parse(&workspace.name)
        .map_err(|e| anyhow::anyhow!("personal workspace name {:?}: {e}", workspace.name))?;
    Ok(Group { id: workspace.id, slug, name, approval_required: false, created_at: now })
}

#[cfg(test)]
mod tests;
