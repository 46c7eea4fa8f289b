//! # onboard-payments
//!
//! Workspace billing as a pure domain: plans, trials, cards held as gateway billing keys,
//! scheduled recurring charges, receipts and usage limits. The crate does no I/O itself; it
//! talks to the world through the traits in [`gateway`] (the payment gateway) and [`ports`]
//! (storage).
//!
//! ## The rules
//!
//! - Every group without a stored billing account is on Free ([`Billing::free`]).
//! - The plan-change table of the contract is one pure function, [`plan_change::plan_change`]:
//!   the preview answers what it judges, the change carries out exactly that.
//! - Periods run from a day to the same day next month (or year) minus one day, clamped to the
//!   month's end ([`period`]); charges run at the group's `pay_hour` in the billing time zone.
//! - Money is integer KRW; VAT is 10 % of the net price rounded half up ([`Money::with_vat`]).
//! - The gateway is asked outside any transaction; storage records each outcome in one call,
//!   conditional on the account's version, so races end in one consistent result.
//! - Webhooks are never trusted: the payment is read back from the gateway and must match a
//!   charge Onboard scheduled; it is applied once (unique `imp_uid`).
//! - The events of a change ([`events::BillingEvent`]) are decided here and stored by storage
//!   in the transaction of the change they report (the outbox); trial-ending ones by the
//!   periodic run, once per (group, trial end, days). The notifications domain turns them
//!   into notifications for the holders of `billing.manage`.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use onboard_kernel::GroupId;
//! use onboard_payments::plan_change::{plan_change, NewIds, PlanRequest};
//! use onboard_payments::{Billing, BillingStatus, Catalogue, Interval, PaymentsConfig, PlanCode};
//!
//! let free = Billing::free(GroupId::new(), 10);
//! let request = PlanRequest { plan: PlanCode::free(), interval: None, addons: vec![] };
//! let now = Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).unwrap();
//! let change = plan_change(&free, None, &request, now, &Catalogue::seed(),
//!     &PaymentsConfig::default(), &NewIds::generate()).unwrap();
//! assert!(change.unchanged);
//! assert_eq!(change.billing.status, BillingStatus::Free);
//!
//! // A paid plan needs a main card.
//! let pro = PlanRequest { plan: PlanCode::parse("pro").unwrap(), interval: Some(Interval::Month), addons: vec![] };
//! assert!(plan_change(&free, None, &pro, now, &Catalogue::seed(),
//!     &PaymentsConfig::default(), &NewIds::generate()).is_err());
//! ```

mod config;
mod error;
pub mod events;
pub mod gateway;
mod idempotency;
pub mod model;
pub mod period;
pub mod plan_change;
pub mod ports;
mod service;
pub mod sms_credit;

pub use config::PaymentsConfig;
pub use error::{
    CardError, ChangePlanError, IdempotencyError, UsageError, ViewBillingError, WebhookError,
};
pub use idempotency::{Answer, Fingerprint, IdempotencyKey, IdempotencyKeyError, IdempotencyKeys};
pub use model::*;
pub use plan_change::{PlanChange, PlanRefusal, PlanRequest};
pub use service::PlanChangeOutcome;
pub use service::{
    PaymentsPorts, PaymentsService, PeriodicReport, ReceiptPage, UsageCaller, WebhookOutcome,
};
pub use sms_credit::PurchaseOutcome;
