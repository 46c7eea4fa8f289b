//! Use cases the seed APIs (`/compat/...`) need beyond `/api/v1`'s: simplejwt's verify of any
//! token, and a profile completed from what an invite said.

use onboard_kernel::Email;

use super::{MembersService, token_hash};
use crate::error::{AuthError, UpdateProfileError};
use crate::model::{Member, PersonName, Principal, ProfilePatch, RefreshToken};

impl MembersService {
    /// Whether `token` is a live token of any kind, as simplejwt's verify view tells: an
    /// access token that [`Self::authenticate`] would take, or the live refresh token of a
    /// live session of a member who is not blocked. Changes nothing.
    pub async fn verify_any_token(&self, token: &str) -> Result<(), AuthError> {
        match self.verify_token(token).await {
            Ok(_) => return Ok(()),
            Err(AuthError::Unexpected(e)) => return Err(e.into()),
            Err(AuthError::Unauthorized) => {}
        }
        let hash = token_hash(&RefreshToken::new(token.to_owned()));
        let now = self.ports.clock.now();
        if self.ports.sessions.is_live(&hash, now).await? {
            Ok(())
        } else {
            Err(AuthError::Unauthorized)
        }
    }

    /// Completes the caller's profile with what someone else said of them (the name and
    /// e-mail of an invite they accepted): each field is set only where the member has none
    /// (a name only when they have neither first nor last name), never overwriting what they
    /// chose. An e-mail that another member holds is left out, and the rest still applied.
    pub async fn fill_blank_profile(
        &self,
        principal: &Principal,
        name: Option<PersonName>,
        email: Option<Email>,
    ) -> Result<Member, UpdateProfileError> {
        let member = self
            .ports
            .members
            .get(principal.member_id)
            .await?
            .ok_or(UpdateProfileError::NotFound)?;
        let mut patch = ProfilePatch::default();
        if member.first_name.is_none() && member.last_name.is_none() {
            patch.first_name = name;
        }
        if member.email.is_none() {
            patch.email = email;
        }
        if patch == ProfilePatch::default() {
            return Ok(member);
        }
        match self.update_me(principal, &patch).await {
            Err(UpdateProfileError::EmailTaken) => {
                patch.email = None;
                if patch == ProfilePatch::default() {
                    return Ok(member);
                }
                self.update_me(principal, &patch).await
            }
            other => other,
        }
    }
}
