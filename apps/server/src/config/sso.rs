//! Single sign-on providers and the app redirect URIs.

use anyhow::{Context, bail};
use secrecy::SecretString;

/// One OpenID Connect provider: `SSO_<NAME>_ISSUER`, `SSO_<NAME>_CLIENT_ID`,
/// `SSO_<NAME>_CLIENT_SECRET` (optional: a public client).
#[derive(Debug, Clone)]
pub struct SsoProviderSettings {
    pub name: onboard_sso::ProviderName,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
}

/// Single sign-on: `SSO_PROVIDERS`, `SSO_REDIRECT_URIS`, `PUBLIC_URL`, `SSO_DISCOVERY_TTL`.
#[derive(Debug, Clone)]
pub struct SsoSettings {
    pub providers: Vec<SsoProviderSettings>,
    /// The app redirect URIs a login may end at (exact match).
    pub redirect_uris: std::collections::BTreeSet<String>,
    /// This server's public base URL: providers send the browser back to
    /// `{PUBLIC_URL}/api/v1/auth/sso/{provider}/callback`. Required with providers.
    pub public_url: Option<String>,
    /// Seconds a provider's discovery document is kept (3600 by default).
    pub discovery_ttl_secs: u64,
}

impl SsoSettings {
    /// Reads the SSO variables through `get` (trimmed, empty as unset).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let list = |name: &str| -> Vec<String> {
            get(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut names: Vec<onboard_sso::ProviderName> = Vec::new();
        for raw in list("SSO_PROVIDERS") {
            let name = onboard_sso::ProviderName::parse(&raw).map_err(|e| {
                anyhow::anyhow!("SSO_PROVIDERS: {raw:?} is not a provider name ({e})")
            })?;
            if names.contains(&name) {
                bail!("SSO_PROVIDERS names {name} twice");
            }
            names.push(name);
        }
        let mut providers = Vec::new();
        for name in names {
            let var = |suffix: &str| {
                format!("SSO_{}_{suffix}", name.as_str().to_ascii_uppercase().replace('-', "_"))
            };
            let required = |suffix: &str| -> anyhow::Result<String> {
                let v = var(suffix);
                get(&v).with_context(|| format!("{v} is required for SSO provider {name}"))
            };
            let issuer = required("ISSUER")?;
            if !is_http_url(&issuer) {
                bail!("{} must be an http(s) URL, not {issuer:?}", var("ISSUER"));
            }
            providers.push(SsoProviderSettings {
                issuer,
                client_id: required("CLIENT_ID")?,
                client_secret: get(&var("CLIENT_SECRET")).map(SecretString::from),
                name,
            });
        }
        let redirect_uris = list("SSO_REDIRECT_URIS");
        if let Some(bad) =
            redirect_uris.iter().find(|u| !u.contains("://") || u.contains(char::is_whitespace))
        {
            bail!("SSO_REDIRECT_URIS: {bad:?} is not an absolute URI");
        }
        let public_url = get("PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned());
        match &public_url {
            Some(u) if !is_http_url(u) => bail!("PUBLIC_URL must be an http(s) URL, not {u:?}"),
            None if !providers.is_empty() => bail!(
                "PUBLIC_URL is required with SSO_PROVIDERS: providers send the browser back to {{PUBLIC_URL}}/api/v1/auth/sso/{{provider}}/callback"
            ),
            _ => {}
        }
        let discovery_ttl_secs = match get("SSO_DISCOVERY_TTL") {
            Some(v) => v
                .parse::<u64>()
                .with_context(|| format!("SSO_DISCOVERY_TTL must be a whole number, not {v:?}"))?
                .max(1),
            None => 3600,
        };
        Ok(Self {
            providers,
            redirect_uris: redirect_uris.into_iter().collect(),
            public_url,
            discovery_ttl_secs,
        })
    }
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() > "https://".len()
        && !s.contains(char::is_whitespace)
}
