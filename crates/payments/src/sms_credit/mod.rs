//! Prepaid SMS credit: a wallet in KRW per group, debited by every message the group sends and
//! never below 0, with a ledger of every change (payments.md, "SMS credit").
//!
//! Storage keeps the balance and the ledger together: one call applies a change and appends
//! its ledger entry, in the transaction of whatever the change pays for (a message row, an
//! invite). A debit the balance does not cover changes nothing. Whoever stores a debit (the
//! invites and messages adapters included) MUST store, in the debit's transaction, the events
//! of [`crate::events::low_credit_events`]`(group, balance before, balance after)`: the
//! `sms_credit.low` event when the debit crossed below [`LOW_CREDIT_THRESHOLD`]
//! ([`crossed_below`]). One that crosses below the wallet's auto top-up line marks the wallet
//! for the top-up job ([`SmsCreditRepository::due_topups`]).
//!
//! The use cases ([`SmsCreditService`]): the balance and ledger as a member sees them, purchases
//! charged to the main card at once, the auto top-up, and the recovery of purchases whose
//! outcome was not recorded.
//!
//! A purchase follows the payments saga: its merchant_uid is recorded as a pending purchase
//! BEFORE the gateway is asked; the outcome is then recorded with one storage call (credit,
//! ledger entry and receipt together). A crash or an unreachable gateway in between leaves the
//! purchase pending, and [`SmsCreditService::reconcile`] reads it back from the gateway by its
//! merchant_uid and settles it, so money charged is never lost and never credited twice.
//!
//! An auto top-up's merchant_uid is derived from the group and the moment the top-up was
//! requested ([`topup_merchant_uid`]): a run that retries after a crash finds the same payment.
//!
//! ```
//! use onboard_payments::sms_credit::{CreditReason, SmsPrices, crossed_below};
//!
//! let prices = SmsPrices::default();
//! assert_eq!((prices.sms, prices.lms, prices.alimtalk), (11, 37, 10));
//! assert_eq!(CreditReason::Refund.as_str(), "refund");
//! // 1,005 KRW less an LMS (37) crosses below the 1,000 KRW warning line; the next one does not.
//! assert!(crossed_below(1_005, 968, 1_000));
//! assert!(!crossed_below(968, 931, 1_000));
//! ```

mod error;
mod model;
mod ports;
mod purchase;
mod service;

pub use error::SmsCreditError;
pub use model::*;
pub use ports::*;
pub use purchase::PurchaseOutcome;
pub use service::{
    CreditReport, CreditView, LedgerPage, Purchased, SmsCreditPorts, SmsCreditService,
};

#[cfg(test)]
mod tests;
