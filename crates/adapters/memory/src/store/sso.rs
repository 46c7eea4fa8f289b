//! [`IdentityRepository`] in memory: provider identities linked to members.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::MemberId;
use onboard_members::SignInStoreError;
use onboard_members::events::with_workspace_slug;
use onboard_members::ports::{NewSession, SignInDraft, SignInRecord};
use onboard_sso::ProviderIdentity;
use onboard_sso::ports::IdentityRepository;

use super::{MemberRow, MemoryStore, SessionRow, State, personal_workspace};

impl State {
    /// The live member `identity` signs in as: its link, else the verified phone's member,
    /// else the verified e-mail's.
    fn sso_member(&self, identity: &ProviderIdentity) -> Option<MemberId> {
        let live = |id: &MemberId| self.live_member(*id).is_some();
        let key = (identity.provider.as_str().to_owned(), identity.subject.clone());
        self.sso_identities
            .get(&key)
            .filter(|id| live(id))
            .or_else(|| {
                identity
                    .verified_phone
                    .as_ref()
                    .and_then(|p| self.by_phone.get(p))
                    .filter(|id| live(id))
            })
            .or_else(|| {
                identity
                    .verified_email
                    .as_ref()
                    .and_then(|e| self.by_email.get(e))
                    .filter(|id| live(id))
            })
            .copied()
    }

    fn open_sso_session(&mut self, s: &NewSession, now: DateTime<Utc>, member_id: MemberId) {
        self.by_refresh.insert(s.refresh_hash, s.id);
        self.sessions.insert(
            s.id,
            SessionRow {
                id: s.id,
                member_id,
                kind: s.kind,
                refresh_hash: s.refresh_hash,
                user_agent: s.user_agent.clone(),
                created_at: now,
                last_used_at: now,
                expires_at: s.expires_at,
                revoked_at: None,
            },
        );
    }
}

/// The rules of the PostgreSQL twin: an existing link, else the live member with the verified
/// phone, else with the verified e-mail, else a new member (with that phone, e-mail and names,
/// and the personal workspace); then the link (moved off a deleted member) and the session.
/// All under the store's one lock, so concurrent first logins of one identity make one member.
#[async_trait]
impl IdentityRepository for MemoryStore {
    async fn sign_in(
        &self,
        identity: &ProviderIdentity,
        draft: &SignInDraft,
    ) -> Result<SignInRecord, SignInStoreError> {
        let mut state = self.state();
        if state.sessions.contains_key(&draft.session.id)
            || state.by_refresh.contains_key(&draft.session.refresh_hash)
        {
            return Err(anyhow::anyhow!("session id or refresh token hash already in use").into());
        }
        let (id, created) = match state.sso_member(identity) {
            Some(id) => (id, false),
            None => {
                if state.by_code.contains_key(&draft.new_referral_code) {
                    return Err(SignInStoreError::ReferralCodeCollision);
                }
                if state.members.contains_key(&draft.new_member_id) {
                    return Err(anyhow::anyhow!("member id already in use").into());
                }
                let workspace = match &draft.personal_workspace {
                    Some(w) => Some(personal_workspace(&state, w, draft.now)?),
                    None => None,
                };
                let row = MemberRow {
                    id: draft.new_member_id,
                    phone: identity.verified_phone.clone(),
                    first_name: identity.first_name.as_ref().map(|n| n.as_str().to_owned()),
                    last_name: identity.last_name.as_ref().map(|n| n.as_str().to_owned()),
                    email: identity.verified_email.clone(),
                    referral_code: draft.new_referral_code.clone(),
                    referred_by: None,
                    referred_at: None,
                    current_group: workspace.as_ref().map(|w| w.id),
                    created_at: draft.now,
                    deleted_at: None,
                };
                let id = row.id;
                let events = match (&workspace, &draft.personal_workspace) {
                    (Some(stored), Some(asked)) if stored.slug.as_str() != asked.slug => {
                        with_workspace_slug(&draft.created_events, stored.id, stored.slug.as_str())
                    }
                    _ => draft.created_events.clone(),
                };
                if let Some(phone) = &row.phone {
                    state.by_phone.insert(phone.clone(), id);
                }
                if let Some(email) = &row.email {
                    state.by_email.insert(email.clone(), id);
                }
                state.by_code.insert(row.referral_code.clone(), id);
                state.members.insert(id, row);
                if let Some(workspace) = workspace {
                    // Checked above: the slug and id are free and the owner exists.
                    state.insert_group(workspace, id).map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                state.outbox.record(&events);
                (id, true)
            }
        };
        if state.is_blocked(id) {
            return Err(SignInStoreError::Blocked);
        }
        state
            .sso_identities
            .insert((identity.provider.as_str().to_owned(), identity.subject.clone()), id);
        state.open_sso_session(&draft.session, draft.now, id);
        let member = state
            .live_member(id)
            .map(|m| state.member(m))
            .ok_or_else(|| anyhow::anyhow!("the member vanished under the lock"))?;
        Ok(SignInRecord { member, created })
    }
}
