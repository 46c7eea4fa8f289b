//! The invites use cases.
//!
//! Permission checks go through the groups domain ([`GroupsService::authorize`] and
//! [`GroupsService::grantable_role`]); storage settles what only it can settle atomically (see
//! [`crate::ports`]).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use onboard_groups::{Group, GroupsService, Page, Permission, RoleName, Slug};
use onboard_kernel::events::Event;
use onboard_kernel::{Clock, MemberId};
use onboard_members::ports::SmsSender;

use crate::config::InvitesConfig;
use crate::error::{
    AcceptInviteError, AcceptRefusal, CreateInviteError, CreateInviteRefusal, ListInvitesError,
    PreviewInviteError, RevokeInviteError,
};
use crate::events::{AcceptEvents, InviteEvent};
use crate::model::{
    AcceptRecord, CreateInvite, CreatedInvite, Invite, InviteCode, InviteCursor, InviteId,
    InvitePreview, InviteStatus,
};
use crate::ports::{InviteCodeStore, InviteRepository, NewInvite, SmsCharge};

/// Invites to groups: create, list, revoke, preview and accept.
#[derive(Clone)]
pub struct InvitesService {
    repo: Arc<dyn InviteRepository>,
    codes: Arc<dyn InviteCodeStore>,
    groups: GroupsService,
    sms: Arc<dyn SmsSender>,
    clock: Arc<dyn Clock>,
    config: Arc<InvitesConfig>,
}

impl std::fmt::Debug for InvitesService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitesService").field("config", &self.config).finish_non_exhaustive()
    }
}

impl InvitesService {
    /// The largest page a list answers.
    pub const MAX_PAGE: u32 = 100;
    /// The page size when the client names none.
    pub const DEFAULT_PAGE: u32 = 20;

    pub fn new(
        repo: Arc<dyn InviteRepository>,
        codes: Arc<dyn InviteCodeStore>,
        groups: GroupsService,
        sms: Arc<dyn SmsSender>,
        clock: Arc<dyn Clock>,
        config: InvitesConfig,
    ) -> Self {
        Self { repo, codes, groups, sms, clock, config: Arc::new(config) }
    }

    pub fn config(&self) -> &InvitesConfig {
        &self.config
    }

    /// Invites a person, by phone and/or e-mail, to the group with a role (`member` unless
    /// named); needs `invites.manage`, and the role must be one the caller may grant (`owner`
    /// only by an owner). The invite is stored pending for the configured TTL, its code goes to
    /// the code store, and an SMS with the code goes to the phone, if any. The answer is the
    /// only place the code is shown.
    ///
    /// When the SMS cannot be handed over, the invite is revoked and its code deleted, so the
    /// caller may simply try again.
    #[tracing::instrument(level = "debug", name = "invites.create", skip_all)]
    pub async fn create(
        &self,
        slug: &Slug,
        caller: MemberId,
        request: CreateInvite,
    ) -> Result<CreatedInvite, CreateInviteError> {
        let (group, caller_role) =
            self.groups.authorize(slug, caller, &Permission::INVITES_MANAGE).await?;
        if request.phone.is_none() && request.email.is_none() {
            return Err(CreateInviteError::ContactRequired);
        }
        let role = request.role.clone().unwrap_or(RoleName::MEMBER);
        self.groups.grantable_role(&group, &caller_role, &role).await?;

        let now = self.clock.now();
        let code = InviteCode::generate();
        let sms_text = request.phone.as_ref().map(|_| {
            self.config
                .sms_text
                .replace("{group}", group.name.as_str())
                .replace("{code}", code.as_str())
        });
        let new = self.new_invite(&group, caller, request, role, sms_text.as_deref(), now);
        let events = Event::records(&[InviteEvent::created(&new)], now);
        // The code first: once the invite is stored it always has one. A code whose invite
        // was never stored names nothing, and expires.
        self.codes.put(&code, new.id, self.config.ttl_secs).await?;
        let refused = match self.repo.create(&new, &events).await {
            Ok(()) => None,
            Err(CreateInviteRefusal::AlreadyMember) => Some(CreateInviteError::AlreadyMember),
            Err(CreateInviteRefusal::InvitePending) => Some(CreateInviteError::InvitePending),
            Err(CreateInviteRefusal::InsufficientCredit) => {
                Some(CreateInviteError::InsufficientSmsCredit)
            }
            // The invite may or may not have been written: the code stays, as it may be its.
            Err(CreateInviteRefusal::Unexpected(e)) => return Err(e.into()),
        };
        if let Some(refused) = refused {
            // Tidying only: a failure here leaves behind a code that names no invite.
            let _ = self.codes.delete(new.id).await;
            return Err(refused);
        }

        if let (Some(phone), Some(text)) = (&new.phone, &sms_text)
            && let Err(e) = self.sms.send(phone, text).await
        {
            let e = e.context("sending the invite SMS");
            return Err(match self.withdraw(&new, now).await {
                Ok(()) => e,
                Err(undo) => e.context(format!("and withdrawing the invite failed: {undo:#}")),
            }
            .into());
        }

        let invite = Invite {
            id: new.id,
            group: group.id,
            group_slug: group.slug,
            name: new.name,
            phone: new.phone,
            email: new.email,
            role: new.role,
            status: InviteStatus::Pending,
            invited_by: caller,
            expires_at: new.expires_at,
            created_at: now,
        };
        Ok(CreatedInvite { invite, code })
    }

    /// The invite to store: pending until the configured TTL, with the SMS it pays for when
    /// invite SMS are billed.
    fn new_invite(
        &self,
        group: &Group,
        caller: MemberId,
        request: CreateInvite,
        role: RoleName,
        sms_text: Option<&str>,
        now: DateTime<Utc>,
    ) -> NewInvite {
        let id = InviteId::new();
        NewInvite {
            id,
            group: group.id,
            name: request.name,
            phone: request.phone,
            email: request.email,
            role,
            invited_by: caller,
            created_at: now,
            expires_at: now
                .checked_add_signed(secs(self.config.ttl_secs))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            sms_charge: self.config.sms_billing.zip(sms_text).map(|(prices, text)| SmsCharge {
                group: group.id,
                amount: prices.of(text),
                invite: id,
            }),
        }
    }

    /// A page of the group's invites, newest first, optionally of one status (`expired` as of
    /// now); needs `invites.manage`. `limit` is clamped to 1..=100.
    #[tracing::instrument(level = "debug", name = "invites.list", skip_all)]
    pub async fn list(
        &self,
        slug: &Slug,
        caller: MemberId,
        status: Option<InviteStatus>,
        after: Option<InviteCursor>,
        limit: u32,
    ) -> Result<Page<Invite>, ListInvitesError> {
        let (group, _) = self.groups.authorize(slug, caller, &Permission::INVITES_MANAGE).await?;
        let now = self.clock.now();
        let limit = limit.clamp(1, Self::MAX_PAGE);
        // One more than asked tells whether another page follows, without a count query.
        let mut rows = self.repo.list(group.id, status, after, limit + 1, now).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(|(_, c)| c.encode()) } else { None };
        Ok(Page {
            items: rows.into_iter().map(|(invite, _)| invite.as_of(now)).collect(),
            next_cursor,
        })
    }

    /// Revokes one of the group's invites: its code stops working at once. Needs
    /// `invites.manage`. Revoking an invite that is no longer pending changes nothing (and is
    /// not an error). Records `invite.revoked` when the invite was pending (expired or not).
    #[tracing::instrument(level = "debug", name = "invites.revoke", skip_all)]
    pub async fn revoke(
        &self,
        slug: &Slug,
        caller: MemberId,
        invite: InviteId,
    ) -> Result<(), RevokeInviteError> {
        let (group, _) = self.groups.authorize(slug, caller, &Permission::INVITES_MANAGE).await?;
        // Storage first: once the record says revoked, the code is refused even if deleting it
        // below fails (and a retry deletes it).
        let now = self.clock.now();
        let revoked = InviteEvent::Revoked { invite_id: invite, group_id: group.id, by: caller };
        let events = Event::records(&[revoked], now);
        if !self.repo.revoke(group.id, invite, now, &events).await? {
            return Err(RevokeInviteError::InviteNotFound);
        }
        self.codes.delete(invite).await?;
        Ok(())
    }

    /// What a live code's invite shows, to anyone holding the code. Unknown, used, revoked and
    /// expired codes are all simply not found.
    #[tracing::instrument(level = "debug", name = "invites.preview", skip_all)]
    pub async fn preview(&self, code: &InviteCode) -> Result<InvitePreview, PreviewInviteError> {
        let id = self.codes.get(code).await?.ok_or(PreviewInviteError::NotFound)?;
        let preview = self.repo.preview(id).await?.ok_or(PreviewInviteError::NotFound)?;
        let status = preview.status.as_of(preview.expires_at, self.clock.now());
        if status == InviteStatus::Pending {
            Ok(InvitePreview { status, ..preview })
        } else {
            Err(PreviewInviteError::NotFound)
        }
    }

    /// Accepts an invite by its code for the caller: they join the group with the invite's
    /// role (or wait for approval, or were a member already). Records `invite.accepted`, and
    /// the group's `group.member_joined` (via an invite) or `group.join_requested` when the
    /// membership changed ([`AcceptEvents`]).
    ///
    /// An invite naming a phone is only for the member with that phone; anyone else is
    /// refused and the code stays usable. A code works once: of concurrent accepts, exactly
    /// one wins and the others find nothing. If storage fails after the code was used up, the
    /// code is put back for the rest of its life.
    #[tracing::instrument(level = "debug", name = "invites.accept", skip_all)]
    pub async fn accept(
        &self,
        code: &InviteCode,
        caller: MemberId,
    ) -> Result<AcceptRecord, AcceptInviteError> {
        self.accept_described(code, caller).await.map(|(record, _)| record)
    }

    /// [`Self::accept`], answering also the invite that was accepted (as it read before the
    /// accept: who it named, with which contact), for callers that complete the member from it.
    pub async fn accept_described(
        &self,
        code: &InviteCode,
        caller: MemberId,
    ) -> Result<(AcceptRecord, Invite), AcceptInviteError> {
        let now = self.clock.now();
        let id = self.codes.get(code).await?.ok_or(AcceptInviteError::NotFound)?;
        // The invite and the caller's phone in one read.
        let (invite, caller_phone) =
            self.repo.for_accept(id, caller).await?.ok_or(AcceptInviteError::NotFound)?;
        let invite = invite.as_of(now);
        if invite.status != InviteStatus::Pending {
            return Err(AcceptInviteError::NotFound);
        }
        if let Some(phone) = &invite.phone
            && caller_phone.as_ref() != Some(phone)
        {
            return Err(AcceptInviteError::PhoneMismatch);
        }
        if !self.codes.consume(code, id).await? {
            return Err(AcceptInviteError::NotFound);
        }
        let events = AcceptEvents {
            invite: id,
            group: invite.group,
            invited_by: invite.invited_by,
            member: caller,
            role: invite.role.clone(),
            at: now,
        };
        match self.repo.accept(id, caller, now, &events).await {
            Ok(record) => Ok((record, invite)),
            // Revoked or expired meanwhile: the code had no use left anyway.
            Err(AcceptRefusal::NotFound) => Err(AcceptInviteError::NotFound),
            Err(AcceptRefusal::Unexpected(e)) => {
                Err(match self.restore(code, id, invite.expires_at, now).await {
                    Ok(()) => e,
                    Err(undo) => {
                        e.context(format!("and putting the invite code back failed: {undo:#}"))
                    }
                }
                .into())
            }
        }
    }

    /// Undoes a created invite whose SMS could not be sent: it is revoked by its inviter.
    async fn withdraw(&self, invite: &NewInvite, now: DateTime<Utc>) -> anyhow::Result<()> {
        let revoked = InviteEvent::Revoked {
            invite_id: invite.id,
            group_id: invite.group,
            by: invite.invited_by,
        };
        self.repo.revoke(invite.group, invite.id, now, &Event::records(&[revoked], now)).await?;
        // The SMS was paid for and not sent.
        if let Some(charge) = &invite.sms_charge {
            self.repo.refund_sms(charge, now, &[]).await?;
        }
        self.codes.delete(invite.id).await
    }

    /// Puts a consumed code back for what is left of its invite's life.
    async fn restore(
        &self,
        code: &InviteCode,
        invite: InviteId,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let left_ms = (expires_at - now).num_milliseconds();
        if left_ms <= 0 {
            return Ok(());
        }
        let left_secs = u64::try_from(left_ms).unwrap_or(u64::MAX).div_ceil(1000);
        self.codes.restore(code, invite, left_secs).await
    }
}

/// `s` seconds, capped at the longest span chrono represents.
fn secs(s: u64) -> Duration {
    Duration::try_seconds(i64::try_from(s).unwrap_or(i64::MAX)).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests;
