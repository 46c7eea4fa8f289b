//! # onboard-oidc
//!
//! OpenID Connect identity providers for Onboard's single sign-on ([`OidcProviders`], the
//! [`IdentityProviders`] port of `onboard-sso`), on the `openidconnect` crate with a rustls
//! HTTP client.
//!
//! Each provider is configured by name with its issuer, client id and secret. Its discovery
//! document (and JWK set) is fetched when first needed, kept for [`OidcConfig::discovery_ttl`],
//! and fetched again after that, after a failed fetch, when the token endpoint fails, or once
//! when an ID token's signature does not check out (the provider may have rotated its keys).
//! The callback every provider redirects to is `{public_url}/api/v1/auth/sso/{name}/callback`.
//!
//! ```
//! use std::time::Duration;
//! use onboard_oidc::{OidcConfig, OidcProviderConfig, OidcProviders};
//! use onboard_sso::ProviderName;
//! use onboard_sso::ports::IdentityProviders;
//!
//! let providers = OidcProviders::new(OidcConfig {
//!     public_url: "https://onboard.example.com".into(),
//!     discovery_ttl: Duration::from_secs(3600),
//!     providers: vec![OidcProviderConfig {
//!         name: ProviderName::parse("google")?,
//!         issuer: "https://accounts.google.com".into(),
//!         client_id: "client".into(),
//!         client_secret: Some("secret".into()),
//!     }],
//! })?;
//! assert!(providers.knows(&ProviderName::parse("google")?));
//! assert_eq!(
//!     providers.callback_url(&ProviderName::parse("google")?),
//!     "https://onboard.example.com/api/v1/auth/sso/google/callback"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use onboard_sso::ports::IdentityProviders;
use onboard_sso::{AuthorizationRequest, IdentityClaims, PendingLogin, ProviderName};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse as _, reqwest,
};
use tokio::sync::RwLock;

/// One provider's settings.
#[derive(Clone)]
pub struct OidcProviderConfig {
    pub name: ProviderName,
    /// The issuer URL; discovery is read from `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// `None` for a public client.
    pub client_secret: Option<String>,
}

impl fmt::Debug for OidcProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProviderConfig")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Settings of every provider.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// This server's public base URL (scheme, host, port), without a trailing slash.
    pub public_url: String,
    /// How long a discovery document is trusted before it is fetched again.
    pub discovery_ttl: Duration,
    pub providers: Vec<OidcProviderConfig>,
}

/// The ID token signature algorithms accepted (never `none` nor a shared-secret MAC).
const ALGORITHMS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// How long one HTTP call to a provider may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

struct Provider {
    config: OidcProviderConfig,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    discovery: RwLock<Option<(CoreProviderMetadata, Instant)>>,
}

/// The configured OpenID Connect providers ([`IdentityProviders`]).
pub struct OidcProviders {
    http: reqwest::Client,
    public_url: String,
    ttl: Duration,
    providers: HashMap<ProviderName, Provider>,
}

impl fmt::Debug for OidcProviders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.providers.keys().map(ProviderName::as_str).collect();
        names.sort_unstable();
        f.debug_struct("OidcProviders")
            .field("public_url", &self.public_url)
            .field("providers", &names)
            .finish_non_exhaustive()
    }
}

impl OidcProviders {
    /// Providers from their settings; nothing is fetched yet.
    ///
    /// # Errors
    /// An issuer or the public URL is not a URL, or the HTTP client cannot be built.
    pub fn new(config: OidcConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            // Following redirects would let a provider's answer steer requests elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()
            .context("cannot build the OIDC HTTP client")?;
        let public_url = config.public_url.trim_end_matches('/').to_owned();
        let mut providers = HashMap::new();
        for p in config.providers {
            let issuer = IssuerUrl::new(p.issuer.clone())
                .with_context(|| format!("SSO provider {}: issuer {:?}", p.name, p.issuer))?;
            let redirect = RedirectUrl::new(callback_url(&public_url, &p.name))
                .with_context(|| format!("SSO provider {}: public URL {public_url:?}", p.name))?;
            providers.insert(
                p.name.clone(),
                Provider { config: p, issuer, redirect, discovery: RwLock::new(None) },
            );
        }
        Ok(Self { http, public_url, ttl: config.discovery_ttl, providers })
    }

    /// Where `provider` sends the browser back: this server's callback for it.
    pub fn callback_url(&self, provider: &ProviderName) -> String {
        callback_url(&self.public_url, provider)
    }

    fn provider(&self, name: &ProviderName) -> anyhow::Result<&Provider> {
        self.providers.get(name).ok_or_else(|| anyhow!("no SSO provider {name}"))
    }

    /// The provider's discovery document and when it was fetched: the cached one while fresh,
    /// else fetched now.
    async fn metadata(&self, p: &Provider) -> anyhow::Result<(CoreProviderMetadata, Instant)> {
        if let Some((metadata, at)) = p.discovery.read().await.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok((metadata.clone(), *at));
        }
        self.refetch(p, None).await
    }

    /// Fetches the discovery document again, unless another caller did so after `seen` (the
    /// fetch time of the document the caller found wanting) or, with no `seen`, while this
    /// one waited for the lock and it is still fresh.
    async fn refetch(
        &self,
        p: &Provider,
        seen: Option<Instant>,
    ) -> anyhow::Result<(CoreProviderMetadata, Instant)> {
        let mut cached = p.discovery.write().await;
        if let Some((metadata, at)) = cached.as_ref() {
            let newer = match seen {
                Some(seen) => *at > seen,
                None => at.elapsed() < self.ttl,
            };
            if newer {
                return Ok((metadata.clone(), *at));
            }
        }
        *cached = None;
        let metadata = CoreProviderMetadata::discover_async(p.issuer.clone(), &self.http)
            .await
            .with_context(|| format!("discovery of SSO provider {} failed", p.config.name))?;
        let at = Instant::now();
        *cached = Some((metadata.clone(), at));
        Ok((metadata, at))
    }

    /// Forgets the provider's discovery document.
    async fn forget(&self, p: &Provider) {
        *p.discovery.write().await = None;
    }
}

fn callback_url(public_url: &str, provider: &ProviderName) -> String {
    format!("{public_url}/api/v1/auth/sso/{provider}/callback")
}

fn client_of(
    p: &Provider,
    metadata: CoreProviderMetadata,
) -> openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
> {
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.config.client_id.clone()),
        p.config.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(p.redirect.clone())
}

/// The claims of a checked ID token, completed by the userinfo answer.
fn claims_of(
    id: &openidconnect::core::CoreIdTokenClaims,
    info: Option<&CoreUserInfoClaims>,
) -> IdentityClaims {
    let given = |c: Option<&openidconnect::LocalizedClaim<openidconnect::EndUserGivenName>>| {
        c.and_then(|c| c.get(None)).map(|n| n.as_str().to_owned())
    };
    let family = |c: Option<&openidconnect::LocalizedClaim<openidconnect::EndUserFamilyName>>| {
        c.and_then(|c| c.get(None)).map(|n| n.as_str().to_owned())
    };
    let phone = id
        .phone_number()
        .map(|p| (p.as_str().to_owned(), id.phone_number_verified()))
        .or_else(|| {
            info.and_then(|i| {
                i.phone_number().map(|p| (p.as_str().to_owned(), i.phone_number_verified()))
            })
        });
    let email = id.email().map(|e| (e.as_str().to_owned(), id.email_verified())).or_else(|| {
        info.and_then(|i| i.email().map(|e| (e.as_str().to_owned(), i.email_verified())))
    });
    IdentityClaims {
        subject: id.subject().as_str().to_owned(),
        phone_number: phone.as_ref().map(|(p, _)| p.clone()),
        phone_number_verified: phone.and_then(|(_, v)| v),
        email: email.as_ref().map(|(e, _)| e.clone()),
        email_verified: email.and_then(|(_, v)| v),
        given_name: given(id.given_name()).or_else(|| given(info.and_then(|i| i.given_name()))),
        family_name: family(id.family_name())
            .or_else(|| family(info.and_then(|i| i.family_name()))),
    }
}

#[async_trait]
impl IdentityProviders for OidcProviders {
    fn knows(&self, provider: &ProviderName) -> bool {
        self.providers.contains_key(provider)
    }

    async fn authorization_url(
        &self,
        provider: &ProviderName,
        request: &AuthorizationRequest,
    ) -> anyhow::Result<String> {
        let p = self.provider(provider)?;
        let client = client_of(p, self.metadata(p).await?.0);
        let state = request.state.clone();
        let nonce = request.nonce.clone();
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            request.pkce_verifier.clone(),
        ));
        let (url, _, _) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("phone".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(url.to_string())
    }

    async fn redeem(
        &self,
        provider: &ProviderName,
        code: &str,
        login: &PendingLogin,
    ) -> anyhow::Result<IdentityClaims> {
        let p = self.provider(provider)?;
        let (metadata, fetched_at) = self.metadata(p).await?;
        let client = client_of(p, metadata);
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .context("the provider has no token endpoint")?
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()));
        let tokens = match request.request_async(&self.http).await {
            Ok(tokens) => tokens,
            Err(e) => {
                // Perhaps the endpoints moved: the next login reads the discovery again.
                self.forget(p).await;
                return Err(anyhow::Error::new(e).context("the code exchange failed"));
            }
        };
        let id_token = tokens.id_token().context("the token answer has no ID token")?;
        let nonce = Nonce::new(login.nonce.clone());
        let verified = {
            let verifier = client.id_token_verifier().set_allowed_algs(ALGORITHMS);
            id_token.claims(&verifier, &nonce).cloned()
        };
        let id_claims = match verified {
            Ok(claims) => claims,
            Err(ClaimsVerificationError::SignatureVerification(first)) => {
                // The provider may have rotated its keys: read them again, once.
                let fresh = client_of(p, self.refetch(p, Some(fetched_at)).await?.0);
                let verifier = fresh.id_token_verifier().set_allowed_algs(ALGORITHMS);
                id_token.claims(&verifier, &nonce).cloned().with_context(|| {
                    format!("the ID token's signature does not check out ({first})")
                })?
            }
            Err(e) => return Err(anyhow::Error::new(e).context("the ID token does not check out")),
        };
        let info = match client.user_info(tokens.access_token().clone(), Some(id_claims.subject().clone())) {
            Ok(request) => Some(
                request
                    .request_async::<openidconnect::EmptyAdditionalClaims, _, openidconnect::core::CoreGenderClaim>(&self.http)
                    .await
                    .context("the userinfo call failed")?,
            ),
            // No userinfo endpoint: the ID token says it all.
            Err(_) => None,
        };
        Ok(claims_of(&id_claims, info.as_ref()))
    }
}
