//! The single sign-on use cases.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use onboard_kernel::{Clock, random_bytes};
use onboard_members::{ClientInfo, MembersService, SignIn, SignInStoreError};
use sha2::{Digest, Sha256};

use crate::error::{CallbackError, ExchangeError, StartError};
use crate::model::{
    AuthorizationRequest, LoginGrant, PendingLogin, ProviderIdentity, ProviderName,
};
use crate::ports::{IdentityProviders, IdentityRepository, SsoStateStore};

/// Settings of single sign-on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoConfig {
    /// The app redirect URIs a login may end at, compared exactly.
    pub redirect_uris: BTreeSet<String>,
    /// How long a started login waits for the provider's callback (10 minutes by default).
    pub state_ttl_secs: u64,
    /// How long a login code may be exchanged (60 seconds by default).
    pub login_code_ttl_secs: u64,
}

impl Default for SsoConfig {
    fn default() -> Self {
        Self { redirect_uris: BTreeSet::new(), state_ttl_secs: 600, login_code_ttl_secs: 60 }
    }
}

/// The adapters single sign-on runs on.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct SsoPorts {
    pub providers: Arc<dyn IdentityProviders>,
    pub states: Arc<dyn SsoStateStore>,
    pub identities: Arc<dyn IdentityRepository>,
    pub clock: Arc<dyn Clock>,
}

/// OpenID Connect logins: start, callback, login code exchange.
#[derive(Clone)]
pub struct SsoService {
    ports: SsoPorts,
    members: MembersService,
    config: Arc<SsoConfig>,
}

impl std::fmt::Debug for SsoService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoService").field("config", &self.config).finish_non_exhaustive()
    }
}

impl SsoService {
    /// Sessions and tokens come from `members`, exactly as a code verification issues them.
    pub fn new(ports: SsoPorts, members: MembersService, config: SsoConfig) -> Self {
        Self { ports, members, config: Arc::new(config) }
    }

    pub fn config(&self) -> &SsoConfig {
        &self.config
    }

    /// Starts a login: answers the provider's authorization URL, with a fresh `state`, `nonce`
    /// and PKCE verifier kept (single use, [`SsoConfig::state_ttl_secs`]) for the callback.
    #[tracing::instrument(level = "debug", name = "sso.start", skip_all)]
    pub async fn start(&self, provider: &str, redirect_uri: &str) -> Result<String, StartError> {
        let provider = self.provider(provider).ok_or(StartError::UnknownProvider)?;
        if !self.config.redirect_uris.contains(redirect_uri) {
            return Err(StartError::RedirectUriNotAllowed);
        }
        let request =
            AuthorizationRequest { state: secret(), nonce: secret(), pkce_verifier: secret() };
        let url = self
            .ports
            .providers
            .authorization_url(&provider, &request)
            .await
            .map_err(StartError::Provider)?;
        let login = PendingLogin {
            provider,
            redirect_uri: redirect_uri.to_owned(),
            nonce: request.nonce,
            pkce_verifier: request.pkce_verifier,
        };
        let now = self.ports.clock.now();
        self.ports
            .states
            .put_login(&lookup_key(&request.state), &login, self.config.state_ttl_secs, now)
            .await?;
        Ok(url)
    }

    /// Finishes a login at the provider's callback: the `state` is used up (whatever happens
    /// next), the code exchanged and the ID token checked; answers the app's redirect URI with
    /// a `login_code` (single use, [`SsoConfig::login_code_ttl_secs`]). Nothing is created
    /// here: the member and session come with [`SsoService::exchange`].
    ///
    /// `code` is `None` when the provider answered with an error instead (`provider_error`).
    #[tracing::instrument(level = "debug", name = "sso.callback", skip_all)]
    pub async fn callback(
        &self,
        provider: &str,
        code: Option<&str>,
        state: Option<&str>,
        provider_error: Option<&str>,
    ) -> Result<String, CallbackError> {
        let provider = self.provider(provider).ok_or(CallbackError::UnknownProvider)?;
        let state = state.filter(|s| !s.is_empty()).ok_or(CallbackError::StateInvalid)?;
        let now = self.ports.clock.now();
        let login = self
            .ports
            .states
            .take_login(&lookup_key(state), now)
            .await?
            .filter(|login| login.provider == provider)
            .ok_or(CallbackError::StateInvalid)?;
        let Some(code) = code.filter(|c| !c.is_empty()) else {
            return Err(CallbackError::Provider(anyhow::anyhow!(
                "the provider answered {:?} instead of a code",
                provider_error.unwrap_or("nothing")
            )));
        };
        let claims = self
            .ports
            .providers
            .redeem(&provider, code, &login)
            .await
            .map_err(CallbackError::Provider)?;
        let login_code = secret();
        let grant = LoginGrant { provider, claims };
        self.ports
            .states
            .put_grant(&lookup_key(&login_code), &grant, self.config.login_code_ttl_secs, now)
            .await?;
        Ok(with_query(&login.redirect_uri, "login_code", &login_code))
    }

    /// Exchanges a login code (once) for a session: the identity is linked to a member (see
    /// [`IdentityRepository::sign_in`]) and the tokens are those of a code verification.
    #[tracing::instrument(level = "debug", name = "sso.exchange", skip_all)]
    pub async fn exchange(
        &self,
        login_code: &str,
        client: &ClientInfo,
    ) -> Result<SignIn, ExchangeError> {
        let now = self.ports.clock.now();
        let grant = self
            .ports
            .states
            .take_grant(&lookup_key(login_code), now)
            .await?
            .ok_or(ExchangeError::LoginCodeInvalid)?;
        let identity = ProviderIdentity::from_claims(grant.provider, grant.claims);
        // A blocked member is refused by storage, inside the transaction that resolves the
        // member (nothing written), and answered as `ExchangeError::Blocked`.
        let identities = self.ports.identities.clone();
        let signed_in = self
            .members
            .sign_in_with(client, |draft| {
                let identities = identities.clone();
                let identity = identity.clone();
                async move { identities.sign_in(&identity, &draft).await }
            })
            .await;
        match signed_in {
            Ok(signed_in) => Ok(signed_in),
            Err(SignInStoreError::Unexpected(e)) => Err(e.into()),
            Err(SignInStoreError::Blocked) => Err(ExchangeError::Blocked),
            Err(other) => Err(anyhow::Error::new(other).context("SSO sign-in").into()),
        }
    }

    fn provider(&self, raw: &str) -> Option<ProviderName> {
        ProviderName::parse(raw).ok().filter(|p| self.ports.providers.knows(p))
    }
}

/// 32 random bytes, base64url: a `state`, `nonce`, PKCE verifier or login code.
fn secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Where a secret's value is kept: its SHA-256, so storage never holds the secret itself.
fn lookup_key(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `uri` with `name=value` added to its query (before any fragment). `value` must be URL-safe.
fn with_query(uri: &str, name: &str, value: &str) -> String {
    let (base, fragment) = match uri.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (uri, None),
    };
    let sep = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    let mut out = format!("{base}{sep}{name}={value}");
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests;
