use std::fmt;
use std::str::FromStr;

use phonenumber::Mode;
use phonenumber::country::Id as CountryId;

/// An ISO 3166-1 region used to read national-format numbers (`KR`, `US`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(CountryId);

/// The text is not an ISO 3166-1 alpha-2 region known to the numbering plan.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown region {0:?}")]
pub struct RegionError(String);

impl Region {
    /// Parses a two-letter region code, case-insensitively.
    pub fn parse(raw: &str) -> Result<Self, RegionError> {
        CountryId::from_str(&raw.trim().to_ascii_uppercase())
            .map(Region)
            .map_err(|_| RegionError(raw.to_owned()))
    }
}

/// A valid phone number, kept in E.164 form (`+821012345678`).
///
/// The only way to get one is [`PhoneNumber::parse`] (input) or
/// [`PhoneNumber::from_trusted_e164`] (storage), so holding one means the number is valid.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

/// Why a text is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    /// The text does not read as a phone number at all.
    #[error("not a phone number")]
    Unparsable,
    /// It reads as a number, but no such number can exist in its country's plan.
    #[error("not a valid phone number")]
    Invalid,
}

impl PhoneNumber {
    /// Parses E.164 input (`+79174445566`), or national input (`010-1234-5678`) when a
    /// default region is given.
    pub fn parse(raw: &str, region: Option<Region>) -> Result<Self, PhoneNumberError> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > 32 {
            return Err(PhoneNumberError::Unparsable);
        }
        let region = if raw.starts_with('+') { None } else { region.map(|r| r.0) };
        if region.is_none() && !raw.starts_with('+') {
            return Err(PhoneNumberError::Unparsable);
        }
        let parsed = phonenumber::parse(region, raw).map_err(|_| PhoneNumberError::Unparsable)?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneNumberError::Invalid);
        }
        Ok(Self(parsed.format().mode(Mode::E164).to_string()))
    }

    /// Rebuilds a number that this system stored in E.164 form itself.
    ///
    /// No check is made beyond the shape: use it only for values read back from storage.
    pub fn from_trusted_e164(e164: impl Into<String>) -> Self {
        Self(e164.into())
    }

    /// The E.164 text, `+` and digits.
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// The number with everything but the country code and the last four digits hidden:
    /// `+79174444435` becomes `+7******4435`.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let cc_len = country_code_len(digits);
        let national = &digits[cc_len..];
        let keep = national.len().min(4);
        let hidden = national.len() - keep;
        format!("+{}{}{}", &digits[..cc_len], "*".repeat(hidden), &national[hidden..])
    }

    /// The country calling code, digits only: `82` for `+821012345678`.
    pub fn country_code(&self) -> &str {
        let digits = &self.0[1..];
        &digits[..country_code_len(digits)]
    }

    /// The national significant number, digits only, without the country code or a trunk
    /// prefix: `1012345678` for `+821012345678`.
    pub fn national_number(&self) -> &str {
        let digits = &self.0[1..];
        &digits[country_code_len(digits)..]
    }
}

/// Length of the E.164 country calling code at the start of `digits` (ITU-T E.164 assignments).
fn country_code_len(digits: &str) -> usize {
    match phonenumber::parse(None, format!("+{digits}")) {
        Ok(n) => n.code().value().to_string().len(),
        Err(_) => 1,
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PhoneNumber").field(&self.masked()).finish()
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kr() -> Option<Region> {
        Some(Region::parse("kr").expect("KR is a region"))
    }

    #[test]
    fn e164_input_is_kept_as_is() {
        let p = PhoneNumber::parse("+79174445566", None).expect("valid");
        assert_eq!(p.as_e164(), "+79174445566");
    }

    #[test]
    fn national_input_is_read_with_the_default_region() {
        let p = PhoneNumber::parse("010-1234-5678", kr()).expect("valid");
        assert_eq!(p.as_e164(), "+821012345678");
    }

    #[test]
    fn a_number_splits_into_country_code_and_national_number() {
        let kr = PhoneNumber::parse("+821012345678", None).expect("valid");
        assert_eq!((kr.country_code(), kr.national_number()), ("82", "1012345678"));
        let us = PhoneNumber::parse("+12025550143", None).expect("valid");
        assert_eq!((us.country_code(), us.national_number()), ("1", "2025550143"));
        let ru = PhoneNumber::parse("+79174445566", None).expect("valid");
        assert_eq!((ru.country_code(), ru.national_number()), ("7", "9174445566"));
    }

    #[test]
    fn national_input_without_a_region_is_rejected() {
        assert_eq!(PhoneNumber::parse("010-1234-5678", None), Err(PhoneNumberError::Unparsable));
    }

    #[test]
    fn garbage_and_impossible_numbers_are_rejected() {
        assert!(PhoneNumber::parse("", None).is_err());
        assert!(PhoneNumber::parse("hello", kr()).is_err());
        assert!(PhoneNumber::parse("+1", None).is_err());
        assert!(PhoneNumber::parse("+7000", None).is_err());
        assert!(PhoneNumber::parse(&"9".repeat(200), kr()).is_err());
    }

    #[test]
    fn a_masked_number_keeps_the_country_code_and_last_four_digits() {
        let p = PhoneNumber::parse("+79174444435", None).expect("valid");
        assert_eq!(p.masked(), "+7******4435");
        let p = PhoneNumber::parse("+821012345678", None).expect("valid");
        assert_eq!(p.masked(), "+82******5678");
    }

    #[test]
    fn debug_output_never_shows_the_whole_number() {
        let p = PhoneNumber::parse("+79174444435", None).expect("valid");
        assert!(!format!("{p:?}").contains("9174444435"));
    }

    #[test]
    fn unknown_regions_are_rejected() {
        assert!(Region::parse("XX").is_err());
    }
}
