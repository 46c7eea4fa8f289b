//! EdDSA (Ed25519) JWT access tokens for Onboard, and the JWK set that lets other services
//! check them without sharing a secret.
//!
//! ```
//! use onboard_kernel::{MemberId, SessionId};
//! use onboard_members::AccessClaims;
//! use onboard_members::ports::AccessTokens;
//! use onboard_tokens::{JwtAccessTokens, SigningKeys};
//!
//! let keys = SigningKeys::generate();
//! let tokens = JwtAccessTokens::new(&keys, "onboard".into(), "onboard-api".into());
//! let now = std::time::SystemTime::now()
//!     .duration_since(std::time::UNIX_EPOCH)
//!     .unwrap()
//!     .as_secs() as i64;
//! let claims = AccessClaims {
//!     sub: MemberId::new(),
//!     sid: SessionId::new(),
//!     grp: None,
//!     iat: now,
//!     exp: now + 900,
//!     jti: uuid::Uuid::now_v7(),
//! };
//! let token = tokens.issue(&claims).unwrap();
//! assert_eq!(tokens.verify(&token).unwrap(), claims);
//! ```

mod access;
mod keys;

pub use access::JwtAccessTokens;
pub use keys::SigningKeys;
