//! Pricing by byte count: an SMS text holds 90 bytes (EUC-KR count), an LMS 2,000.
//!
//! ```
//! use onboard_messaging::pricing::{price, text_bytes};
//! use onboard_messaging::Channel;
//! use onboard_payments::sms_credit::SmsPrices;
//!
//! let prices = SmsPrices::default(); // SMS 11, LMS 37, alimtalk 10
//! assert_eq!(text_bytes("코드 1234"), 9);
//! assert_eq!(price(Channel::Sms, "Hello", &prices), Ok((Channel::Sms, 11)));
//! // Longer than 90 bytes: an LMS, priced as one.
//! assert_eq!(price(Channel::Sms, &"가".repeat(46), &prices), Ok((Channel::Lms, 37)));
//! ```

use onboard_payments::sms_credit::SmsPrices;

use crate::model::Channel;

/// The most bytes an SMS carries, and any message (an LMS; an alimtalk must fit one to be
/// resent).
pub use onboard_kernel::text::{LMS_MAX_BYTES, SMS_MAX_BYTES};

/// The text is longer than any message may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the text is {bytes} bytes; a message holds at most 2000")]
pub struct TextTooLong {
    /// Its EUC-KR length.
    pub bytes: usize,
}

/// The length of `text` in EUC-KR bytes ([`onboard_kernel::text::euc_kr_len`]).
pub use onboard_kernel::text::euc_kr_len as text_bytes;

/// The text channel `text` needs: SMS up to 90 bytes, LMS up to 2,000.
///
/// # Errors
/// [`TextTooLong`] past 2,000 bytes.
pub fn text_channel(text: &str) -> Result<Channel, TextTooLong> {
    match text_bytes(text) {
        n if n <= SMS_MAX_BYTES => Ok(Channel::Sms),
        n if n <= LMS_MAX_BYTES => Ok(Channel::Lms),
        bytes => Err(TextTooLong { bytes }),
    }
}

/// The unit price of `channel`.
#[must_use]
pub const fn unit_price(channel: Channel, prices: &SmsPrices) -> i64 {
    match channel {
        Channel::Sms => prices.sms,
        Channel::Lms => prices.lms,
        Channel::Alimtalk => prices.alimtalk,
    }
}

/// The channel a message of `text` asked for `requested` goes by, and its price: an SMS or
/// LMS by the byte count (an SMS text over 90 bytes is an LMS; an LMS text of 90 bytes or less
/// stays an LMS, as asked); an alimtalk as alimtalk.
///
/// # Errors
/// [`TextTooLong`] past 2,000 bytes, on every channel.
pub fn price(
    requested: Channel,
    text: &str,
    prices: &SmsPrices,
) -> Result<(Channel, i64), TextTooLong> {
    let needed = text_channel(text)?;
    let channel = match (requested, needed) {
        (Channel::Sms, needed) => needed,
        (other, _) => other,
    };
    Ok((channel, unit_price(channel, prices)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices() -> SmsPrices {
        SmsPrices { sms: 11, lms: 37, alimtalk: 10 }
    }

    #[test]
    fn ascii_counts_one_byte_and_hangul_two() {
        assert_eq!(text_bytes("abc 123"), 7);
        assert_eq!(text_bytes("인증번호"), 8);
    }

    #[test]
    fn an_sms_of_ninety_bytes_is_priced_as_sms_and_of_ninety_one_as_lms() {
        assert_eq!(price(Channel::Sms, &"a".repeat(90), &prices()), Ok((Channel::Sms, 11)));
        assert_eq!(price(Channel::Sms, &"a".repeat(91), &prices()), Ok((Channel::Lms, 37)));
        assert_eq!(price(Channel::Sms, &"가".repeat(45), &prices()), Ok((Channel::Sms, 11)));
        assert_eq!(price(Channel::Sms, &"가".repeat(46), &prices()), Ok((Channel::Lms, 37)));
    }

    #[test]
    fn an_lms_asked_for_stays_an_lms_even_when_short() {
        assert_eq!(price(Channel::Lms, "short", &prices()), Ok((Channel::Lms, 37)));
    }

    #[test]
    fn an_alimtalk_is_priced_as_alimtalk_whatever_its_length() {
        assert_eq!(price(Channel::Alimtalk, "hi", &prices()), Ok((Channel::Alimtalk, 10)));
        assert_eq!(
            price(Channel::Alimtalk, &"a".repeat(500), &prices()),
            Ok((Channel::Alimtalk, 10))
        );
    }

    #[test]
    fn more_than_two_thousand_bytes_is_refused_on_every_channel() {
        let long = "가".repeat(1001);
        for channel in Channel::ALL {
            assert_eq!(price(channel, &long, &prices()), Err(TextTooLong { bytes: 2002 }));
        }
        assert_eq!(price(Channel::Sms, &"가".repeat(1000), &prices()), Ok((Channel::Lms, 37)));
    }

    #[test]
    fn configured_prices_are_used() {
        let p = SmsPrices { sms: 20, lms: 50, alimtalk: 8 };
        assert_eq!(price(Channel::Sms, "x", &p), Ok((Channel::Sms, 20)));
        assert_eq!(price(Channel::Sms, &"x".repeat(100), &p), Ok((Channel::Lms, 50)));
        assert_eq!(price(Channel::Alimtalk, "x", &p), Ok((Channel::Alimtalk, 8)));
    }
}
