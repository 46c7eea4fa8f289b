use std::fmt;

use rand_core::{OsRng, RngCore};

const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A member's referral code: six characters of `A-Z0-9` (`K49FJ5`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReferralCode(String);

/// The text is not a referral code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a referral code is 6 characters of A-Z and 0-9")]
pub struct ReferralCodeError;

impl ReferralCode {
    /// The length of every code.
    pub const LEN: usize = 6;

    /// Reads user input: case-insensitive, surrounding spaces ignored.
    pub fn parse(raw: &str) -> Result<Self, ReferralCodeError> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == Self::LEN && code.bytes().all(|b| ALPHABET.contains(&b)) {
            Ok(Self(code))
        } else {
            Err(ReferralCodeError)
        }
    }

    /// A fresh uniformly random code from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut out = String::with_capacity(Self::LEN);
        while out.len() < Self::LEN {
            let mut byte = [0u8; 1];
            OsRng.fill_bytes(&mut byte);
            // 252 = 7 * 36: reject the tail so that every character is equally likely.
            if byte[0] < 252 {
                out.push(ALPHABET[(byte[0] % 36) as usize] as char);
            }
        }
        Self(out)
    }

    /// Rebuilds a code read back from storage.
    pub fn from_trusted(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The code text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ReferralCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReferralCode").field(&self.0).finish()
    }
}

impl fmt::Display for ReferralCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_case_insensitive_and_trimmed() {
        assert_eq!(ReferralCode::parse("  k49fj5 ").expect("valid").as_str(), "K49FJ5");
    }

    #[test]
    fn wrong_lengths_and_characters_are_rejected() {
        for bad in ["", "K49FJ", "K49FJ55", "K49-J5", "К49FJ5"] {
            assert!(ReferralCode::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn generated_codes_are_valid_codes() {
        for _ in 0..200 {
            let c = ReferralCode::generate();
            assert_eq!(ReferralCode::parse(c.as_str()).expect("valid"), c);
        }
    }
}
