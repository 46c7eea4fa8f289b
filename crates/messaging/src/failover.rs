//! What follows an alimtalk's result code: delivered, resent as SMS/LMS, or failed.
//!
//! The codes are SENS's (KakaoTalk Biz Message) `messageStatusCode` of a delivery check, or
//! its `requestStatusCode` when the send itself was refused:
//!
//! | code | meaning | with `failover` |
//! | --- | --- | --- |
//! | `0000` | delivered | — (`delivered`) |
//! | `3005` | KakaoTalk did not acknowledge in time: it may have been delivered | `failed`, not resent (a resend could deliver twice) |
//! | `3008` | invalid phone number | `failed`, not resent (an SMS cannot reach it either) |
//! | `3018` | cannot be delivered: no KakaoTalk, blocked the channel, or not reachable | resent as SMS/LMS |
//! | any other code (`3015` template not found, `3016` text does not match the template, `3019`, `3022` outside sending hours, `3024`–`3027` template or button errors, `1xxx` sender profile errors, `9999` …) | not delivered | resent as SMS/LMS |
//! | `not_configured` | the provider sends no alimtalk (Twilio) | resent as SMS/LMS |
//!
//! Without `failover` every non-delivery is `failed`. The resend is SMS or LMS by the text's
//! byte count ([`crate::pricing::text_channel`]).
//!
//! ```
//! use onboard_messaging::failover::{Decision, decide};
//! use onboard_messaging::Channel;
//!
//! assert_eq!(decide("0000", true, "hi"), Decision::Delivered);
//! assert_eq!(decide("3018", true, "hi"), Decision::Resend(Channel::Sms));
//! assert_eq!(decide("3018", false, "hi"), Decision::Fail);
//! assert_eq!(decide("3005", true, "hi"), Decision::Fail);
//! ```

use crate::model::Channel;
use crate::pricing::text_channel;

/// The code of a delivered alimtalk.
pub const DELIVERED: &str = "0000";

/// The code of a recipient who cannot receive the alimtalk (blocked, no KakaoTalk).
pub const NOT_DELIVERABLE: &str = "3018";

/// Codes after which the alimtalk may still have reached the recipient: never resent.
pub const MAYBE_DELIVERED: &[&str] = &["3005"];

/// Codes after which no channel can reach the number: never resent.
pub const UNREACHABLE_NUMBER: &[&str] = &["3008"];

/// The code recorded when the provider sends no alimtalk at all.
pub const NOT_CONFIGURED: &str = "not_configured";

/// What to do with an alimtalk after its result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It arrived.
    Delivered,
    /// It did not arrive: refund it and resend it by this channel (charged).
    Resend(Channel),
    /// It did not arrive (or may have): `failed`.
    Fail,
}

/// Whether `code` says the alimtalk did not and will not arrive (so that resending it cannot
/// deliver the text twice).
#[must_use]
pub fn is_non_delivery(code: &str) -> bool {
    code != DELIVERED && !MAYBE_DELIVERED.contains(&code)
}

/// What follows an alimtalk of `text` whose result is `code`, `failover` asked or not.
#[must_use]
pub fn decide(code: &str, failover: bool, text: &str) -> Decision {
    if code == DELIVERED {
        return Decision::Delivered;
    }
    if !failover || !is_non_delivery(code) || UNREACHABLE_NUMBER.contains(&code) {
        return Decision::Fail;
    }
    text_channel(text).map_or(Decision::Fail, Decision::Resend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_recipient_with_failover_is_resent_by_sms_or_lms_by_byte_count() {
        assert_eq!(decide("3018", true, "short"), Decision::Resend(Channel::Sms));
        assert_eq!(decide("3018", true, &"가".repeat(46)), Decision::Resend(Channel::Lms));
    }

    #[test]
    fn without_failover_a_non_delivery_fails() {
        for code in ["3018", "3015", "3016", "9999", NOT_CONFIGURED] {
            assert_eq!(decide(code, false, "hi"), Decision::Fail, "{code}");
        }
    }

    #[test]
    fn template_sender_and_unknown_errors_are_resent_with_failover() {
        for code in ["3015", "3016", "3019", "3022", "3024", "1021", "9999", NOT_CONFIGURED] {
            assert_eq!(decide(code, true, "hi"), Decision::Resend(Channel::Sms), "{code}");
        }
    }

    #[test]
    fn an_unacknowledged_alimtalk_is_never_resent_because_it_may_have_arrived() {
        assert!(!is_non_delivery("3005"));
        assert_eq!(decide("3005", true, "hi"), Decision::Fail);
    }

    #[test]
    fn an_invalid_number_is_not_resent() {
        assert_eq!(decide("3008", true, "hi"), Decision::Fail);
    }

    #[test]
    fn a_delivered_alimtalk_is_delivered_with_or_without_failover() {
        assert_eq!(decide("0000", true, "hi"), Decision::Delivered);
        assert_eq!(decide("0000", false, "hi"), Decision::Delivered);
    }
}
