//! The members use cases.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use onboard_kernel::events::Event;
use onboard_kernel::{Clock, MemberId, PhoneNumber, ReferralCode, SessionId};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::config::{MembersConfig, Secrets};
use crate::error::{
    AuthError, DeleteMemberError, NotFoundError, RefreshError, RequestOtpError, SignInStoreError,
    UpdateProfileError, VerifyOtpError,
};
use crate::events::{self, MemberEvent};
use crate::model::{
    AccessClaims, ClientInfo, CodeHash, Member, MemberFilter, MemberList, MemberView, OtpIssued,
    Principal, Profile, ProfilePatch, RefreshToken, Session, SessionKind, SignIn, TokenHash,
    TokenInfo, TokenPair,
};
use crate::ports::{
    AccessTokens, IssueOutcome, MemberRepository, OtpStore, RateDecision, RateLimiter,
    RevocationList, RotateOutcome, SessionRepository, SignInRequest, SmsSender, VerifyOutcome,
};

/// Makes the referral code of a new member. [`ReferralCode::generate`] unless a test says
/// otherwise.
pub type ReferralCodeGenerator = Arc<dyn Fn() -> ReferralCode + Send + Sync>;

/// How many fresh referral codes a sign-up tries before giving up.
const CODE_ATTEMPTS: usize = 8;

/// The adapters the service runs on.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct MembersPorts {
    pub otp: Arc<dyn OtpStore>,
    pub limiter: Arc<dyn RateLimiter>,
    pub members: Arc<dyn MemberRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub revocations: Arc<dyn RevocationList>,
    pub tokens: Arc<dyn AccessTokens>,
    pub sms: Arc<dyn SmsSender>,
    pub clock: Arc<dyn Clock>,
}

/// A code verification request, parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOtp {
    pub phone: PhoneNumber,
    /// The code as typed; a code of the wrong shape is simply a wrong code.
    pub code: String,
    /// A referral code to redeem if this verification creates the member.
    pub referral_code: Option<ReferralCode>,
}

/// A session as listed to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionListing {
    pub session: Session,
    /// Whether it is the session of the calling token.
    pub current: bool,
}

/// Sign-in, sessions and profiles.
#[derive(Clone)]
pub struct MembersService {
    ports: MembersPorts,
    config: Arc<MembersConfig>,
    secrets: Secrets,
    referral_codes: ReferralCodeGenerator,
}

impl std::fmt::Debug for MembersService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MembersService").field("config", &self.config).finish_non_exhaustive()
    }
}

impl MembersService {
    pub fn new(ports: MembersPorts, config: MembersConfig, secrets: Secrets) -> Self {
        Self {
            ports,
            config: Arc::new(config),
            secrets,
            referral_codes: Arc::new(ReferralCode::generate),
        }
    }

    /// Replaces the generator of new members' referral codes.
    #[must_use]
    pub fn with_referral_code_generator(mut self, generator: ReferralCodeGenerator) -> Self {
        self.referral_codes = generator;
        self
    }

    pub fn config(&self) -> &MembersConfig {
        &self.config
    }

    /// Sends a fresh code to `phone`, replacing any previous one, within the per-phone and
    /// per-IP send limits. The answer does not depend on whether the phone is registered.
    #[tracing::instrument(level = "debug", name = "members.request_otp", skip_all)]
    pub async fn request_otp(
        &self,
        phone: PhoneNumber,
        client: &ClientInfo,
    ) -> Result<OtpIssued, RequestOtpError> {
        let now = self.ports.clock.now();
        let limits = &self.config.otp_limits;
        if let Some(ip) = &client.ip {
            let key = format!("otp-send-ip:{ip}");
            if let RateDecision::Limited { retry_after_secs } =
                self.ports.limiter.hit(&key, self.config.max_sends_per_ip_hour, 3600, now).await?
            {
                return Err(RequestOtpError::RateLimited { retry_after_secs });
            }
        }
        let code = new_code(self.config.otp_length);
        let hash = self.code_hash(&phone, &code);
        match self.ports.otp.issue(&phone, &hash, now, limits).await? {
            IssueOutcome::Issued => {}
            IssueOutcome::Limited { retry_after_secs } => {
                return Err(RequestOtpError::RateLimited { retry_after_secs });
            }
        }
        let text = self.config.otp_message.replace("{code}", &code);
        self.ports.sms.send(&phone, &text).await?;
        Ok(OtpIssued {
            phone,
            expires_in: limits.ttl_secs,
            resend_in: limits.resend_interval_secs,
            dev_code: self.config.otp_echo.then_some(code),
        })
    }

    /// Checks a code and signs the member in, creating them when the phone is new.
    ///
    /// A referral code is checked before the code is: an unknown referral code leaves the
    /// one-time code valid and counts no attempt.
    #[tracing::instrument(level = "debug", name = "members.verify_otp", skip_all)]
    pub async fn verify_otp(
        &self,
        request: VerifyOtp,
        client: &ClientInfo,
    ) -> Result<SignIn, VerifyOtpError> {
        self.verify_otp_as(request, client, SessionKind::Rotating).await
    }

    /// [`Self::verify_otp`], opening a session of `kind` (the kind of the API signing in: see
    /// [`SessionKind`]).
    pub async fn verify_otp_as(
        &self,
        request: VerifyOtp,
        client: &ClientInfo,
        kind: SessionKind,
    ) -> Result<SignIn, VerifyOtpError> {
        let now = self.ports.clock.now();
        if let Some(ip) = &client.ip {
            let key = format!("otp-verify-ip:{ip}");
            if let RateDecision::Limited { retry_after_secs } = self
                .ports
                .limiter
                .hit(&key, self.config.max_verifies_per_ip, self.config.verify_ip_window_secs, now)
                .await?
            {
                return Err(VerifyOtpError::RateLimited { retry_after_secs });
            }
        }
        // The referrer, when this verification may create the member: its sign-up event names
        // them.
        let mut referrer = None;
        if let Some(code) = &request.referral_code
            && self.ports.members.find_by_phone(&request.phone).await?.is_none()
        {
            referrer = self.ports.members.referral_code_owner(code).await?;
            if referrer.is_none() {
                return Err(VerifyOtpError::ReferralCodeNotFound);
            }
        }
        let candidate = self.code_hash(&request.phone, &request.code);
        match self
            .ports
            .otp
            .verify(&request.phone, &candidate, now, &self.config.otp_limits)
            .await?
        {
            VerifyOutcome::Valid => {}
            VerifyOutcome::Invalid { attempts_left } => {
                return Err(VerifyOtpError::InvalidCode { attempts_left });
            }
            VerifyOutcome::NoCode => return Err(VerifyOtpError::Expired),
            VerifyOutcome::Burned => {
                return Err(VerifyOtpError::TooManyAttempts { retry_after_secs: None });
            }
            VerifyOutcome::Locked { retry_after_secs } => {
                return Err(VerifyOtpError::TooManyAttempts {
                    retry_after_secs: Some(retry_after_secs),
                });
            }
        }

        // The session, tokens and referral-code retries are those of every sign-in.
        let (phone, referred_by) = (request.phone, request.referral_code);
        let members = &self.ports.members;
        let signed_in = self
            .sign_in_referred_by(client, referrer, kind, |draft| {
                let request = SignInRequest {
                    phone: phone.clone(),
                    new_member_id: draft.new_member_id,
                    new_referral_code: draft.new_referral_code,
                    referred_by: referred_by.clone(),
                    session: draft.session,
                    personal_workspace: draft.personal_workspace,
                    created_events: draft.created_events,
                    now: draft.now,
                };
                async move { members.sign_in(request).await }
            })
            .await;
        signed_in.map_err(|e| match e {
            SignInStoreError::ReferralCodeNotFound => VerifyOtpError::ReferralCodeNotFound,
            SignInStoreError::Blocked => VerifyOtpError::Blocked,
            SignInStoreError::Unexpected(e) => e.into(),
            SignInStoreError::ReferralCodeCollision => {
                anyhow::anyhow!("a referral code collision reached verify_otp").into()
            }
        })
    }

    /// Rotates a refresh token of an `/api/v1` session: the answer carries a new pair, and the
    /// presented token is used up. A used token presented again revokes its session, unless it
    /// comes from a concurrent request within the grace period, which gets the same new pair.
    #[tracing::instrument(level = "debug", name = "members.refresh", skip_all)]
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, RefreshError> {
        self.refresh_as(token, SessionKind::Rotating).await
    }

    /// Refreshes a session of `kind` by that kind's rule ([`SessionKind`]): only sessions of
    /// `kind` are refreshed here; another kind's token is [`RefreshError::Invalid`].
    ///
    /// - [`SessionKind::Rotating`]: as [`Self::refresh`].
    /// - [`SessionKind::Fixed`]: a new access token; the answer's refresh token is the one
    ///   presented, which stays valid until the session ends.
    /// - [`SessionKind::RotatingKeepsOld`]: a new pair; the presented token, and every earlier
    ///   one of the session, keeps working (answering the pair it was rotated to) while the
    ///   session lives, for at most the refresh lifetime after it was used.
    ///
    /// Whatever the kind, logout, session revocation, deletion and blocks end the session at
    /// once: its refresh tokens are refused and its access tokens fail on the next request.
    #[tracing::instrument(level = "debug", name = "members.refresh_as", skip_all)]
    pub async fn refresh_as(
        &self,
        token: &str,
        kind: SessionKind,
    ) -> Result<TokenPair, RefreshError> {
        let now = self.ports.clock.now();
        let old = RefreshToken::new(token.to_owned());
        let new = if kind.rotates() { self.child_token(&old) } else { old.clone() };
        let expires_at = now + secs(self.config.refresh_ttl_secs);
        let sessions = &self.ports.sessions;
        let (old_hash, new_hash) = (token_hash(&old), token_hash(&new));
        let outcome = if kind.reuse_is_theft() {
            sessions
                .rotate(&old_hash, &new_hash, now, self.config.refresh_grace_secs, expires_at)
                .await?
        } else {
            let used_since = now - secs(self.config.refresh_ttl_secs);
            sessions
                .refresh_lenient(kind, &old_hash, &new_hash, now, used_since, expires_at)
                .await?
        };
        let session = match outcome {
            RotateOutcome::Rotated(s) | RotateOutcome::Grace(s) => s,
            RotateOutcome::Reused { member_id, session_id } => {
                self.ports
                    .revocations
                    .revoke_sessions(member_id, &[session_id], self.config.revocation_ttl_secs())
                    .await?;
                return Err(RefreshError::Reused);
            }
            RotateOutcome::Invalid => return Err(RefreshError::Invalid),
            RotateOutcome::Blocked => return Err(RefreshError::Blocked),
        };
        let ttl = self.config.access_ttl(kind);
        let access = self.access_token(
            session.member_id,
            session.session_id,
            session.current_group,
            now,
            ttl,
        )?;
        Ok(TokenPair { access_token: access, refresh_token: new, expires_in: ttl })
    }

    /// Checks an access token: signature, claims, expiry, and that its session is not revoked.
    #[tracing::instrument(level = "debug", name = "members.authenticate", skip_all)]
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.checked_claims(token).await?;
        Ok(Principal { member_id: claims.sub, session_id: claims.sid, current_group: claims.grp })
    }

    /// What [`Self::authenticate`] checks, told to another service.
    #[tracing::instrument(level = "debug", name = "members.verify_token", skip_all)]
    pub async fn verify_token(&self, token: &str) -> Result<TokenInfo, AuthError> {
        let claims = self.checked_claims(token).await?;
        Ok(TokenInfo {
            member_id: claims.sub,
            session_id: claims.sid,
            expires_at: Utc.timestamp_opt(claims.exp, 0).single().ok_or(AuthError::Unauthorized)?,
        })
    }

    /// Ends the caller's session: its access and refresh tokens stop working at once.
    /// Idempotent: a concurrent logout (or revocation) of the same session is not an error.
    #[tracing::instrument(level = "debug", name = "members.logout", skip_all)]
    pub async fn logout(&self, principal: &Principal) -> anyhow::Result<()> {
        match self.revoke_session(principal, principal.session_id).await {
            Ok(()) | Err(NotFoundError::NotFound) => Ok(()),
            Err(NotFoundError::Unexpected(e)) => Err(e),
        }
    }

    /// The caller's live sessions, newest first.
    #[tracing::instrument(level = "debug", name = "members.list_sessions", skip_all)]
    pub async fn list_sessions(
        &self,
        principal: &Principal,
    ) -> anyhow::Result<Vec<SessionListing>> {
        let now = self.ports.clock.now();
        let sessions = self.ports.sessions.list(principal.member_id, now).await?;
        Ok(sessions
            .into_iter()
            .map(|s| SessionListing { current: s.id == principal.session_id, session: s })
            .collect())
    }

    /// Revokes one of the caller's sessions.
    #[tracing::instrument(level = "debug", name = "members.revoke_session", skip_all)]
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session: SessionId,
    ) -> Result<(), NotFoundError> {
        let now = self.ports.clock.now();
        // The revocation list first: once this returns, the session's access tokens are dead
        // even if the database step below fails and the client retries.
        self.ports
            .revocations
            .revoke_sessions(principal.member_id, &[session], self.config.revocation_ttl_secs())
            .await?;
        if self.ports.sessions.revoke(principal.member_id, session, now).await? {
            Ok(())
        } else {
            Err(NotFoundError::NotFound)
        }
    }

    /// The caller's profile with their newest invitees.
    #[tracing::instrument(level = "debug", name = "members.me", skip_all)]
    pub async fn me(&self, principal: &Principal) -> Result<Profile, AuthError> {
        self.ports
            .members
            .profile(principal.member_id, self.config.profile_invitees)
            .await?
            .ok_or(AuthError::Unauthorized)
    }

    /// Changes the caller's names or e-mail.
    #[tracing::instrument(level = "debug", name = "members.update_me", skip_all)]
    pub async fn update_me(
        &self,
        principal: &Principal,
        patch: &ProfilePatch,
    ) -> Result<Member, UpdateProfileError> {
        let fields = events::patched_fields(patch);
        let events = if fields.is_empty() {
            Vec::new()
        } else {
            let changed = MemberEvent::ProfileUpdated { member_id: principal.member_id, fields };
            vec![Event::record(&changed, self.ports.clock.now())]
        };
        self.ports.members.update_profile(principal.member_id, patch, &events).await
    }

    /// Deletes the caller: every session ends at once and the phone may sign up again.
    #[tracing::instrument(level = "debug", name = "members.delete_me", skip_all)]
    pub async fn delete_me(&self, principal: &Principal) -> Result<(), DeleteMemberError> {
        let now = self.ports.clock.now();
        // The database first: it refuses atomically (last owner) and then nothing else happens,
        // so a refused deletion leaves the caller signed in. Its sessions can no longer be
        // refreshed once it commits; the revocation list then kills the live access tokens.
        let deleted = Event::record(&MemberEvent::Deleted { member_id: principal.member_id }, now);
        self.ports.members.delete(principal.member_id, now, &[deleted]).await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .ports
                .revocations
                .revoke_member(
                    principal.member_id,
                    now.timestamp(),
                    self.config.revocation_ttl_secs(),
                )
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= 3 => return Err(e.into()),
                Err(_) => {}
            }
        }
    }

    /// A member as the caller may see them.
    #[tracing::instrument(level = "debug", name = "members.get_member", skip_all)]
    pub async fn get_member(
        &self,
        principal: &Principal,
        id: MemberId,
    ) -> Result<MemberView, NotFoundError> {
        self.ports.members.view(principal.member_id, id).await?.ok_or(NotFoundError::NotFound)
    }

    // Calls the seed APIs need (`/compat/...`).

    /// The live member with this phone, if any (the seed APIs tell "already registered" and
    /// "no such user" apart).
    #[tracing::instrument(level = "debug", name = "members.find_by_phone", skip_all)]
    pub async fn find_by_phone(&self, phone: &PhoneNumber) -> anyhow::Result<Option<Member>> {
        self.ports.members.find_by_phone(phone).await
    }

    /// The largest page [`Self::list_members`] answers.
    pub const MAX_LIST_PAGE: u32 = 100;

    /// A page of the live members matching `filter`, oldest first, with their count; `limit`
    /// is clamped to 1..=100. Answers every member's phone and e-mail: callers let only
    /// platform admins see it.
    #[tracing::instrument(level = "debug", name = "members.list_members", skip_all)]
    pub async fn list_members(
        &self,
        filter: &MemberFilter,
        offset: u64,
        limit: u32,
    ) -> anyhow::Result<MemberList> {
        let limit = limit.clamp(1, Self::MAX_LIST_PAGE);
        self.ports.members.list_members(filter, offset, limit).await
    }

    async fn checked_claims(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let claims = self.ports.tokens.verify(token).map_err(|_| AuthError::Unauthorized)?;
        if self.ports.revocations.is_revoked(claims.sub, claims.sid, claims.iat).await? {
            return Err(AuthError::Unauthorized);
        }
        Ok(claims)
    }

    fn access_token(
        &self,
        member: MemberId,
        session: SessionId,
        group: Option<String>,
        now: DateTime<Utc>,
        ttl_secs: u64,
    ) -> anyhow::Result<String> {
        let iat = now.timestamp();
        self.ports.tokens.issue(&AccessClaims {
            sub: member,
            sid: session,
            grp: group,
            iat,
            exp: iat + i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
            jti: uuid::Uuid::now_v7(),
        })
    }

    fn code_hash(&self, phone: &PhoneNumber, code: &str) -> CodeHash {
        let mut mac = hmac(&self.secrets.otp_key);
        mac.update(phone.as_e164().as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        CodeHash(mac.finalize().into_bytes().into())
    }

    /// The token a refresh rotates `parent` to: keyed, so only this deployment can compute it,
    /// and deterministic, so concurrent refreshes within the grace period get the same one.
    fn child_token(&self, parent: &RefreshToken) -> RefreshToken {
        let mut mac = hmac(&self.secrets.refresh_key);
        mac.update(parent.expose().as_bytes());
        RefreshToken::new(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

/// `ws-` and ten random characters of `a-z0-9`: about 51 bits, so a clash is a retryable rarity.
fn personal_slug() -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut slug = String::from("ws-");
    while slug.len() < 13 {
        let b = (OsRng.next_u32() & 0xff) as u8;
        if b < 252 {
            slug.push(ALPHABET[usize::from(b % 36)] as char);
        }
    }
    slug
}

fn hmac(key: &[u8; 32]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

/// SHA-256 of a refresh token, as storage keeps it.
pub fn token_hash(token: &RefreshToken) -> TokenHash {
    TokenHash(Sha256::digest(token.expose().as_bytes()).into())
}

fn secs(s: u64) -> Duration {
    Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

/// `len` uniformly random decimal digits from the OS CSPRNG.
fn new_code(len: u8) -> String {
    let len = u32::from(len.clamp(4, 9));
    let modulus = 10u32.pow(len);
    let zone = u32::MAX - u32::MAX % modulus;
    loop {
        let n = OsRng.next_u32();
        if n < zone {
            return format!("{:0width$}", n % modulus, width = len as usize);
        }
    }
}

#[cfg(test)]
mod tests;

mod seeds;
mod sso;
