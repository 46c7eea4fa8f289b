//! Sign-ins vouched for by another check (single sign-on): the same sessions and tokens as a
//! code verification, written by the caller's own storage call.

use std::future::Future;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use onboard_kernel::{GroupId, MemberId, SessionId, random_bytes};

use super::{CODE_ATTEMPTS, MembersService, personal_slug, secs, token_hash};
use crate::error::SignInStoreError;
use crate::events;
use crate::model::{ClientInfo, RefreshToken, SessionKind, SignIn, TokenPair};
use crate::ports::{NewSession, NewWorkspace, SignInDraft, SignInRecord};

impl MembersService {
    /// Signs a member in after another check vouched for them (an identity provider), with the
    /// same session and tokens as [`MembersService::verify_otp`].
    ///
    /// `write` stores the sign-in in one consistent change: it picks (or creates, with the
    /// draft's id, referral code and personal workspace) the member and opens the draft's
    /// session for them. When it answers [`SignInStoreError::ReferralCodeCollision`] it is
    /// called again with a fresh referral code; any other error is returned as it is, and then
    /// no token is issued.
    ///
    /// The draft carries the events of a sign-up ([`events::signed_up`]), for `write` to store
    /// if, and only if, it creates the member.
    #[tracing::instrument(level = "debug", name = "members.sign_in_with", skip_all)]
    pub async fn sign_in_with<F, Fut>(
        &self,
        client: &ClientInfo,
        write: F,
    ) -> Result<SignIn, SignInStoreError>
    where
        F: FnMut(SignInDraft) -> Fut,
        Fut: Future<Output = Result<SignInRecord, SignInStoreError>>,
    {
        self.sign_in_referred_by(client, None, SessionKind::Rotating, write).await
    }

    /// [`Self::sign_in_with`] for a sign-in that, if it creates the member, makes `referrer`
    /// their referrer (the sign-up event names them), and opens a session of `kind`.
    pub(super) async fn sign_in_referred_by<F, Fut>(
        &self,
        client: &ClientInfo,
        referrer: Option<MemberId>,
        kind: SessionKind,
        mut write: F,
    ) -> Result<SignIn, SignInStoreError>
    where
        F: FnMut(SignInDraft) -> Fut,
        Fut: Future<Output = Result<SignInRecord, SignInStoreError>>,
    {
        let now = self.ports.clock.now();
        let refresh = RefreshToken::new(URL_SAFE_NO_PAD.encode(random_bytes::<32>()));
        let new_member_id = MemberId::new();
        let personal_workspace = self.config.personal_workspace.then(|| NewWorkspace {
            id: GroupId::new(),
            slug: personal_slug(),
            name: self.config.personal_workspace_name.clone(),
        });
        let created_events =
            events::signed_up(new_member_id, referrer, personal_workspace.as_ref(), now);
        let mut draft = SignInDraft {
            new_member_id,
            new_referral_code: (self.referral_codes)(),
            session: NewSession {
                id: SessionId::new(),
                kind,
                refresh_hash: token_hash(&refresh),
                user_agent: client.user_agent.clone(),
                expires_at: now + secs(self.config.refresh_ttl_secs),
            },
            personal_workspace,
            created_events,
            now,
        };
        let mut attempt = 1;
        let record = loop {
            match write(draft.clone()).await {
                Ok(record) => break record,
                Err(SignInStoreError::ReferralCodeCollision) if attempt < CODE_ATTEMPTS => {
                    attempt += 1;
                    draft.new_referral_code = (self.referral_codes)();
                }
                Err(SignInStoreError::ReferralCodeCollision) => {
                    return Err(anyhow::anyhow!(
                        "no free referral code after {CODE_ATTEMPTS} attempts"
                    )
                    .into());
                }
                Err(other) => return Err(other),
            }
        };
        let ttl = self.config.access_ttl(kind);
        let access = self.access_token(
            record.member.id,
            draft.session.id,
            record.member.current_group.clone(),
            now,
            ttl,
        )?;
        Ok(SignIn {
            tokens: TokenPair { access_token: access, refresh_token: refresh, expires_in: ttl },
            member: record.member,
            created: record.created,
        })
    }
}
