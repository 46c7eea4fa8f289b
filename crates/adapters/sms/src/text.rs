//! How a text is sent and priced: SMS up to 90 bytes, LMS up to 2,000, counted as EUC-KR.

pub use onboard_kernel::text::{LMS_MAX_BYTES, SMS_MAX_BYTES, euc_kr_len};

/// The kind of text message a text needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Up to 90 bytes.
    Sms,
    /// 91 to 2,000 bytes.
    Lms,
}

/// The text is longer than an LMS may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the text is {bytes} bytes; a message holds at most 2000")]
pub struct TextTooLong {
    pub bytes: usize,
}

impl TextKind {
    /// SMS when the text fits 90 bytes, LMS up to 2,000 bytes.
    ///
    /// # Errors
    /// [`TextTooLong`] past 2,000 bytes.
    pub fn of(text: &str) -> Result<Self, TextTooLong> {
        match euc_kr_len(text) {
            n if n <= SMS_MAX_BYTES => Ok(Self::Sms),
            n if n <= LMS_MAX_BYTES => Ok(Self::Lms),
            bytes => Err(TextTooLong { bytes }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_counts_one_byte_and_hangul_two() {
        assert_eq!(euc_kr_len("abc 123"), 7);
        assert_eq!(euc_kr_len("인증번호"), 8);
        assert_eq!(euc_kr_len("코드 1234"), 9);
    }

    #[test]
    fn ninety_bytes_is_an_sms_and_ninety_one_an_lms() {
        assert_eq!(TextKind::of(&"a".repeat(90)), Ok(TextKind::Sms));
        assert_eq!(TextKind::of(&"a".repeat(91)), Ok(TextKind::Lms));
        assert_eq!(TextKind::of(&"가".repeat(45)), Ok(TextKind::Sms));
        assert_eq!(TextKind::of(&"가".repeat(46)), Ok(TextKind::Lms));
    }

    #[test]
    fn more_than_two_thousand_bytes_is_refused() {
        assert_eq!(TextKind::of(&"가".repeat(1000)), Ok(TextKind::Lms));
        assert_eq!(TextKind::of(&"가".repeat(1001)), Err(TextTooLong { bytes: 2002 }));
    }
}
