//! The payment gateway port: billing keys, charges and schedules at the gateway (PortOne v1
//! "non-authenticated recurring payments", or the simulated gateway).
//!
//! Card numbers never reach Onboard: the client SDK registers a card at the gateway under a
//! `customer_uid` that Onboard issued; Onboard then only reads the billing key back, charges it,
//! and schedules charges on it. Money is integer KRW, VAT included in every amount here.
//!
//! A declined charge is not an error: it is a [`Payment`] with [`PaymentStatus::Failed`].
//! [`GatewayError`] means the gateway could not be asked or refused the request itself.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A billing key as the gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingKey {
    pub customer_uid: String,
    /// The issuer's card name, such as "BC카드" or "Test Card".
    pub card_name: String,
    /// The masked card number the gateway reports, such as "424242******4242".
    pub number_masked: String,
}

/// A charge to make now on a billing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRequest {
    pub customer_uid: String,
    /// Onboard's id for this payment: unique, with a random part of at least 96 bits.
    pub merchant_uid: String,
    /// KRW, VAT included.
    pub amount: i64,
    /// What the customer sees on the statement, such as "Onboard Pro (monthly)".
    pub name: String,
}

/// A charge for the gateway to make later on a billing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRequest {
    pub customer_uid: String,
    pub merchant_uid: String,
    /// When the gateway runs the charge (whole seconds).
    pub at: DateTime<Utc>,
    /// KRW, VAT included.
    pub amount: i64,
    pub name: String,
}

/// The outcome of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Not yet run (a scheduled payment the gateway has not executed), or awaiting the result.
    Ready,
    Paid,
    Failed,
    Cancelled,
}

/// A payment as the gateway reports it: the only source of truth about money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The gateway's id of the payment.
    pub imp_uid: String,
    pub merchant_uid: String,
    pub customer_uid: Option<String>,
    /// KRW actually charged (or attempted).
    pub amount: i64,
    pub status: PaymentStatus,
    /// The gateway's reason when `status` is `Failed`.
    pub failure_reason: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// What `unschedule` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unscheduled {
    /// The schedule existed and is now cancelled.
    Cancelled,
    /// There was nothing to cancel (never scheduled, already run, or already cancelled). Not an
    /// error: unscheduling is idempotent.
    NothingToCancel,
}

/// The gateway could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Network failure, timeout, HTTP 5xx, or a fault injected into the simulated gateway. The
    /// request may or may not have been carried out.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
    /// The gateway answered and refused the request (PortOne: an envelope with `code != 0`).
    #[error("payment gateway refused the request (code {code}): {message}")]
    Rejected { code: i64, message: String },
}

/// The payment gateway.
///
/// Every method is a single request to the gateway (plus, for PortOne, a cached access token).
/// Adapters retry only what is safe to repeat (reads, and writes the gateway de-duplicates by
/// `merchant_uid`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Reads the billing key registered under `customer_uid`; `None` when there is none.
    async fn billing_key(&self, customer_uid: &str) -> Result<Option<BillingKey>, GatewayError>;

    /// Deletes the billing key; deleting one that does not exist is not an error.
    async fn delete_billing_key(&self, customer_uid: &str) -> Result<(), GatewayError>;

    /// Charges the billing key now. A decline answers `Ok` with a failed [`Payment`].
    async fn charge(&self, request: &ChargeRequest) -> Result<Payment, GatewayError>;

    /// Schedules a charge. Scheduling a `merchant_uid` that is already scheduled is refused.
    async fn schedule(&self, request: &ScheduleRequest) -> Result<(), GatewayError>;

    /// Cancels the scheduled charge `merchant_uid` on `customer_uid`.
    async fn unschedule(
        &self,
        customer_uid: &str,
        merchant_uid: &str,
    ) -> Result<Unscheduled, GatewayError>;

    /// Reads a payment by the gateway's id; `None` when the gateway knows no such payment.
    async fn payment(&self, imp_uid: &str) -> Result<Option<Payment>, GatewayError>;

    /// Reads a payment by Onboard's id (PortOne: `GET /payments/find/{merchant_uid}`); `None`
    /// when the gateway knows no payment with it (for a scheduled charge: not run yet).
    /// Reconciliation of lost webhooks uses it. Added by the payments area; the default answers
    /// `Unavailable`, so an adapter that does not implement it only loses reconciliation.
    async fn payment_by_merchant_uid(
        &self,
        merchant_uid: &str,
    ) -> Result<Option<Payment>, GatewayError> {
        let _ = merchant_uid;
        Err(GatewayError::Unavailable("payment_by_merchant_uid is not supported".to_owned()))
    }

    /// What the client SDK needs to register a card (PortOne: `{"merchant_id": "imp12345678",
    /// "pg": "..."}`), returned by `POST .../billing/cards/prepare` as `gateway`.
    fn client_config(&self) -> serde_json::Value;
}

/// A payment notification as a gateway sends it (PortOne's webhook body). Never trusted: the
/// handler re-reads the payment by `imp_uid` from the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookNotice {
    pub imp_uid: String,
    pub merchant_uid: String,
    /// PortOne's status word: "paid", "failed", "cancelled", "ready".
    pub status: String,
}

/// Where the simulated gateway delivers its notifications (in the real deployment PortOne posts
/// them to `POST /api/v1/billing/webhooks/portone`, which hands them to the same handler).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookSink: Send + Sync {
    /// Delivers one notification; the answer is whether the receiver handled it.
    async fn deliver(&self, notice: WebhookNotice) -> anyhow::Result<()>;
}
