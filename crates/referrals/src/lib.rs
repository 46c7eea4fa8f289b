//! # onboard-referrals
//!
//! Every member owns a six-character referral code (given at sign-up by `onboard-members`).
//! This crate holds the rules for redeeming one: at most once per member, ever; never one's own
//! code; never a code whose owner is already below the redeemer in the referral tree (no
//! cycles, at any depth); case-insensitive, surrounding spaces ignored. It also pages through
//! the members one referred, newest first.
//!
//! The rules that need the whole tree (the cycle check and its race with a concurrent redeem)
//! are the contract of [`ports::ReferralRepository::redeem`]; the service parses input and maps
//! outcomes.
//!
//! ```
//! use std::sync::Arc;
//! use onboard_kernel::MemberId;
//! use onboard_referrals::{ReferralsService, RedeemError};
//! # #[cfg(feature = "mocks")]
//! use onboard_referrals::ports::{MockReferralRepository, RedeemRefusal};
//!
//! # #[cfg(feature = "mocks")]
//! # async fn demo() {
//! let mut repo = MockReferralRepository::new();
//! repo.expect_redeem().returning(|_, _, _, _| Err(RedeemRefusal::Cycle));
//! let service = ReferralsService::new(Arc::new(repo), Arc::new(onboard_kernel::SystemClock));
//! let err = service.redeem(MemberId::new(), " k49fj5 ").await.unwrap_err();
//! assert!(matches!(err, RedeemError::Cycle));
//! # }
//! ```

pub mod events;
pub mod ports;
mod profile;
mod service;

pub use profile::ProfileUpdateError;
pub use service::{Cursor, InviteePage, RedeemError, ReferralSummary, ReferralsService, Referrer};
