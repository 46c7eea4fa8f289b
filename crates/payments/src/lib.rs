//! # onboard-payments
//!
//! Workspace billing as a pure domain: plans, trials, cards held as gateway billing keys,
//! scheduled recurring charges, receipts and usage limits. The crate does no I/O itself; it
//! talks to the world through the traits in [`gateway`] (the payment gateway) and [`ports`]
//! (storage).

pub mod gateway;
pub mod model;
pub mod ports;
