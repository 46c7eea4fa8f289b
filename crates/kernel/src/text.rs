//! How Korean carriers measure a text message: its length in EUC-KR bytes, which decides SMS
//! (up to 90 bytes) or LMS (up to 2,000). One rule for everyone who sends or prices a text
//! (the SMS adapters, group messages, billed invite SMS).
//!
//! ```
//! use onboard_kernel::text::{euc_kr_len, SMS_MAX_BYTES};
//!
//! assert_eq!(euc_kr_len("코드 1234"), 9);
//! assert!(euc_kr_len(&"가".repeat(45)) <= SMS_MAX_BYTES);
//! ```

/// The most bytes an SMS carries.
pub const SMS_MAX_BYTES: usize = 90;
/// The most bytes an LMS carries (the longest text message).
pub const LMS_MAX_BYTES: usize = 2_000;

/// The length of `text` in EUC-KR bytes, the way Korean carriers count: one byte for ASCII,
/// two for everything else (Hangul, Hanja, symbols).
#[must_use]
pub fn euc_kr_len(text: &str) -> usize {
    text.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}
