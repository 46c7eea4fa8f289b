//! # onboard-gateway
//!
//! Adapters for the payment gateway port of `onboard-payments`
//! ([`PaymentGateway`](onboard_payments::gateway::PaymentGateway)):
//!
//! - [`PortOneGateway`]: PortOne (iamport) v1 REST, "non-authenticated recurring payments"
//!   (billing keys, `subscribe/payments/again`, `schedule`, `unschedule`, `payments/{imp_uid}`),
//!   with a cached access token.
//! - [`SimulatedGateway`]: an in-process gateway for the embedded mode and the tests: test cards,
//!   schedules it runs itself, webhooks delivered to a [`WebhookSink`](onboard_payments::gateway::WebhookSink),
//!   and injected faults.
//!
//! ```
//! use std::sync::Arc;
//!
//! use onboard_gateway::{SimCard, SimulatedGateway};
//! use onboard_kernel::SystemClock;
//! use onboard_payments::gateway::{ChargeRequest, PaymentGateway, PaymentStatus};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let sim = SimulatedGateway::new(Arc::new(SystemClock));
//! sim.register_card("cust_1", SimCard::new("4242 4242 4242 4242", "2030-12", "900101", Some("12")))
//!     .unwrap();
//! let key = sim.billing_key("cust_1").await.unwrap().unwrap();
//! assert_eq!(key.number_masked, "424242******4242");
//!
//! let payment = sim
//!     .charge(&ChargeRequest {
//!         customer_uid: "cust_1".into(),
//!         merchant_uid: "order_1".into(),
//!         amount: 83_380,
//!         name: "Onboard Pro (monthly)".into(),
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(payment.status, PaymentStatus::Paid);
//! # });
//! ```

mod portone;
mod simulated;

pub use portone::{PortOneConfig, PortOneGateway};
pub use simulated::{
    ExecuteError, Op, RegisterCardError, ScheduledCharge, SimCard, SimOutcome, SimulatedGateway,
};
