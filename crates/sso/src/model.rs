//! Providers, pending logins, login grants and the identities they vouch for.

use std::fmt;

use onboard_kernel::{Email, PhoneNumber};
use onboard_members::PersonName;
use serde::{Deserialize, Serialize};

/// The name a provider is configured under (`sparcs`, `google`): 1 to 32 characters of
/// `a-z0-9_-`, lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderName(String);

/// The text is not a provider name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a provider name is 1 to 32 characters of a-z, 0-9, _ and -")]
pub struct ProviderNameError;

impl ProviderName {
    /// Reads a name; upper case is folded to lower case (`SSO_PROVIDERS=Google` names `google`).
    pub fn parse(raw: &str) -> Result<Self, ProviderNameError> {
        let name = raw.trim().to_ascii_lowercase();
        let ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok { Ok(Self(name)) } else { Err(ProviderNameError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ProviderName {
    type Error = ProviderNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ProviderName> for String {
    fn from(p: ProviderName) -> Self {
        p.0
    }
}

/// What the provider's authorization URL carries, made fresh for each login.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The `state` parameter: the key of the pending login, and the hijack guard.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier; the URL carries its S256 challenge.
    pub pkce_verifier: String,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthorizationRequest(..)")
    }
}

/// A login between its start and the provider's callback, kept under its `state`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub provider: ProviderName,
    /// The app's redirect URI (one of the allowed ones), where the callback sends the browser.
    pub redirect_uri: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("provider", &self.provider)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The claims of a checked ID token (and the provider's userinfo), as the provider stated them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityClaims {
    /// `sub`: the provider's stable id of the person.
    pub subject: String,
    pub phone_number: Option<String>,
    pub phone_number_verified: Option<bool>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

/// A login the provider vouched for, waiting for the app to exchange its login code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginGrant {
    pub provider: ProviderName,
    pub claims: IdentityClaims,
}

/// A person as a provider vouched for them, with only what may link them to a member: a phone
/// or an e-mail the provider says it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderIdentity {
    pub provider: ProviderName,
    pub subject: String,
    /// The phone, in E.164, when the provider verified it.
    pub verified_phone: Option<PhoneNumber>,
    /// The e-mail, when the provider verified it.
    pub verified_email: Option<Email>,
    /// Names for a member this login creates.
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
}

impl ProviderIdentity {
    /// Keeps a phone only when `phone_number_verified` is true and it reads as E.164, and an
    /// e-mail only when `email_verified` is true and it is an address; names that are not
    /// names are dropped.
    pub fn from_claims(provider: ProviderName, claims: IdentityClaims) -> Self {
        let verified_phone = claims
            .phone_number
            .filter(|_| claims.phone_number_verified == Some(true))
            .and_then(|p| PhoneNumber::parse(&p, None).ok());
        let verified_email = claims
            .email
            .filter(|_| claims.email_verified == Some(true))
            .and_then(|e| Email::parse(&e).ok());
        let name = |n: Option<String>| n.and_then(|n| PersonName::parse(&n).ok());
        Self {
            provider,
            subject: claims.subject,
            verified_phone,
            verified_email,
            first_name: name(claims.given_name),
            last_name: name(claims.family_name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> ProviderName {
        ProviderName::parse("sparcs").expect("a name")
    }

    #[test]
    fn provider_names_are_short_lower_case_words() {
        assert_eq!(ProviderName::parse(" Google ").expect("valid").as_str(), "google");
        assert!(ProviderName::parse("").is_err());
        assert!(ProviderName::parse("a b").is_err());
        assert!(ProviderName::parse("../x").is_err());
        assert!(ProviderName::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn only_verified_contacts_can_link_an_identity() {
        let claims = IdentityClaims {
            subject: "s-1".into(),
            phone_number: Some("+79174445566".into()),
            phone_number_verified: Some(false),
            email: Some("Ann@Example.com".into()),
            email_verified: None,
            given_name: Some("Ann".into()),
            family_name: Some("  ".into()),
        };
        let identity = ProviderIdentity::from_claims(provider(), claims.clone());
        assert_eq!(identity.verified_phone, None);
        assert_eq!(identity.verified_email, None);
        assert_eq!(identity.first_name.as_ref().map(PersonName::as_str), Some("Ann"));
        assert_eq!(identity.last_name, None);

        let verified = IdentityClaims {
            phone_number_verified: Some(true),
            email_verified: Some(true),
            ..claims
        };
        let identity = ProviderIdentity::from_claims(provider(), verified);
        assert_eq!(
            identity.verified_phone.map(|p| p.as_e164().to_owned()).as_deref(),
            Some("+79174445566")
        );
        assert_eq!(
            identity.verified_email.map(|e| e.as_str().to_owned()).as_deref(),
            Some("ann@example.com")
        );
    }

    #[test]
    fn a_verified_phone_that_is_not_a_phone_is_ignored() {
        let claims = IdentityClaims {
            subject: "s".into(),
            phone_number: Some("call me".into()),
            phone_number_verified: Some(true),
            ..IdentityClaims::default()
        };
        assert_eq!(ProviderIdentity::from_claims(provider(), claims).verified_phone, None);
    }
}
