//! # onboard-sso
//!
//! Single sign-on with OpenID Connect providers, as a pure domain: the crate does no I/O
//! itself. A login goes
//!
//! 1. [`SsoService::start`]: the provider's authorization URL (authorization code flow, PKCE
//!    S256, fresh `state` and `nonce` kept single use for 10 minutes);
//! 2. [`SsoService::callback`]: the `state` is used up, the code exchanged, the ID token
//!    checked; the app's redirect URI comes back with a `login_code` (single use, 60 s);
//! 3. [`SsoService::exchange`]: the login code becomes a session of the member linked to the
//!    provider's subject (an existing link, else the member with the verified phone, else the
//!    verified e-mail, else a new member), with the tokens of
//!    [`MembersService`](onboard_members::MembersService).
//!
//! The outside world comes in through [`ports`]: the providers ([`ports::IdentityProviders`],
//! `onboard-oidc`), the single-use values ([`ports::SsoStateStore`], Redis or memory) and the
//! links ([`ports::IdentityRepository`], PostgreSQL or memory).
//!
//! ```
//! use std::collections::BTreeSet;
//! use onboard_sso::{IdentityClaims, ProviderIdentity, ProviderName, SsoConfig};
//!
//! let config = SsoConfig {
//!     redirect_uris: BTreeSet::from(["https://app.example.com/sso".to_owned()]),
//!     ..SsoConfig::default()
//! };
//! assert_eq!(config.state_ttl_secs, 600);
//!
//! // An e-mail the provider did not verify never links a login to a member.
//! let identity = ProviderIdentity::from_claims(
//!     ProviderName::parse("google")?,
//!     IdentityClaims {
//!         subject: "10769150350006150715113082367".into(),
//!         email: Some("ann@example.com".into()),
//!         email_verified: Some(false),
//!         ..IdentityClaims::default()
//!     },
//! );
//! assert!(identity.verified_email.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod error;
pub mod model;
pub mod ports;
mod service;

pub use error::*;
pub use model::*;
pub use service::{SsoConfig, SsoPorts, SsoService};
