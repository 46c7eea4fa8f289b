//! Shared value types of Onboard.
//!
//! Every type here is parsed once at the edge and trusted afterwards: a [`PhoneNumber`] that
//! exists is a valid E.164 number, an [`Email`] that exists has valid syntax, a
//! [`ReferralCode`] is six characters of `A-Z0-9`.
//!
//! ```
//! use onboard_kernel::{PhoneNumber, Region};
//!
//! let kr = Region::parse("KR").unwrap();
//! let phone = PhoneNumber::parse("010-1234-5678", Some(kr)).unwrap();
//! assert_eq!(phone.as_e164(), "+821012345678");
//! assert_eq!(phone.masked(), "+82******5678");
//! ```

mod clock;
mod email;
pub mod events;
mod ids;
pub mod jobs;
mod phone;
mod referral_code;
mod secret;
pub mod text;
pub mod trace_context;

#[cfg(any(test, feature = "mocks"))]
pub use clock::MockClock;
pub use clock::{Clock, SystemClock};
pub use email::{Email, EmailError};
pub use ids::{GroupId, MemberId, SessionId};
pub use phone::{PhoneNumber, PhoneNumberError, Region, RegionError};
pub use referral_code::{ReferralCode, ReferralCodeError};
pub use secret::random_bytes;

/// What [`id_type!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use uuid::{self, Uuid};
}
