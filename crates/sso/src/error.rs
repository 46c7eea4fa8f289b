//! One error enum per use case. The HTTP layer maps each variant to a status and a stable code.

/// [`crate::SsoService::start`].
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no identity provider by this name")]
    UnknownProvider,
    #[error("this redirect URI is not allowed")]
    RedirectUriNotAllowed,
    /// The provider could not be reached or described itself wrongly (discovery).
    #[error("identity provider failure")]
    Provider(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::SsoService::callback`].
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("no identity provider by this name")]
    UnknownProvider,
    /// Unknown, used or expired `state`, or one issued for another provider.
    #[error("unknown, used or expired state")]
    StateInvalid,
    /// The code exchange failed, or the ID token's signature or claims (issuer, audience,
    /// expiry, nonce) did not check out. Nothing was created.
    #[error("identity provider failure")]
    Provider(#[source] anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::SsoService::exchange`].
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Unknown, used or expired login code.
    #[error("unknown, used or expired login code")]
    LoginCodeInvalid,
    /// The identity belongs to a member a platform admin blocked; nothing was written.
    #[error("the member is blocked")]
    Blocked,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
