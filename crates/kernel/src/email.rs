use std::fmt;
use std::str::FromStr;

/// An e-mail address with valid syntax (RFC 5322 addr-spec), kept lower-cased so that
/// uniqueness does not depend on case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// The text is not an e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid e-mail address")]
pub struct EmailError;

impl Email {
    /// Parses an address; surrounding spaces are ignored.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let raw = raw.trim();
        if raw.len() > 254 {
            return Err(EmailError);
        }
        let parsed = email_address::EmailAddress::from_str(raw).map_err(|_| EmailError)?;
        // A display-name form ("A <a@b>") is not an address field's value.
        if parsed.email() != raw || !parsed.domain().contains('.') {
            return Err(EmailError);
        }
        Ok(Self(raw.to_lowercase()))
    }

    /// Rebuilds an address that this system stored itself.
    pub fn from_trusted(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The address text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.0).finish()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lower_cased_and_trimmed() {
        assert_eq!(Email::parse("  Ann@Example.COM ").expect("valid").as_str(), "ann@example.com");
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@@example.com",
            "Ann <ann@example.com>",
            "ann@localhost",
            "ann @example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
