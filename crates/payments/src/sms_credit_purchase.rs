//! Buying SMS credit and setting the auto top-up on a member's request; a purchase runs at
//! most once per idempotency key.

use onboard_groups::Slug;
use onboard_kernel::MemberId;
use serde::{Deserialize, Serialize};

use crate::credit::{AutoTopup, Purchased, SmsCreditError, SmsCreditService, Wallet};
use crate::idempotency::{Answer, Fingerprint, IdempotencyKey};

/// The refusal of an amount below [`crate::sms_credit::MIN_PURCHASE`], as
/// [`SmsCreditService::purchase`] words it.
const BELOW_MINIMUM: &str = "amount: at least 100 KRW";

/// What a purchase came to, as kept for a repeat of its idempotency key: every outcome here
/// is final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseOutcome {
    /// Charged and credited.
    Bought(Purchased),
    /// The amount is below [`crate::sms_credit::MIN_PURCHASE`]; nothing was charged.
    BelowMinimum,
    /// The group has no main card; nothing was charged.
    NoMainCard,
    /// Declined (the gateway's reason); nothing was added.
    PaymentFailed(String),
    /// The gateway could not be reached: whether the card was charged is unknown. Final all
    /// the same: a repeat must never charge again, and reconciliation credits the purchase if
    /// it was charged.
    GatewayUnavailable,
}

impl PurchaseOutcome {
    /// The outcome to keep of a purchase's result, or the error after which the purchase may
    /// run again (the key is then released): an unexpected failure.
    ///
    /// # Errors
    /// Every [`SmsCreditError`] that is not a final outcome.
    pub fn settle(result: Result<Purchased, SmsCreditError>) -> Result<Self, SmsCreditError> {
        match result {
            Ok(done) => Ok(Self::Bought(done)),
            // The only amount a purchase refuses as invalid is one below the minimum.
            Err(SmsCreditError::Invalid(_)) => Ok(Self::BelowMinimum),
            Err(SmsCreditError::NoMainCard) => Ok(Self::NoMainCard),
            Err(SmsCreditError::PaymentFailed(reason)) => Ok(Self::PaymentFailed(reason)),
            Err(SmsCreditError::GatewayUnavailable) => Ok(Self::GatewayUnavailable),
            Err(e) => Err(e),
        }
    }

    /// What was bought, or the refusal as the purchase's error.
    ///
    /// # Errors
    /// [`SmsCreditError::Invalid`], [`SmsCreditError::NoMainCard`],
    /// [`SmsCreditError::PaymentFailed`] or [`SmsCreditError::GatewayUnavailable`].
    pub fn into_result(self) -> Result<Purchased, SmsCreditError> {
        match self {
            Self::Bought(done) => Ok(done),
            Self::BelowMinimum => Err(SmsCreditError::Invalid(BELOW_MINIMUM)),
            Self::NoMainCard => Err(SmsCreditError::NoMainCard),
            Self::PaymentFailed(reason) => Err(SmsCreditError::PaymentFailed(reason)),
            Self::GatewayUnavailable => Err(SmsCreditError::GatewayUnavailable),
        }
    }
}

impl SmsCreditService {
    /// Buys `amount` KRW of credit for the group `slug` on `caller`'s request (who needs
    /// `billing.manage` there), as [`Self::purchase`] does. Under an idempotency `key` the
    /// purchase runs once: a repeat with the same amount answers the first
    /// [`PurchaseOutcome`] for 24 hours and charges nothing.
    ///
    /// # Errors
    /// [`SmsCreditError::NotFound`] and [`SmsCreditError::Forbidden`] (nothing claimed);
    /// [`SmsCreditError::Key`] when the key was used with another amount or its first request
    /// still runs; unexpected failures (the key is released).
    pub async fn purchase_as(
        &self,
        caller: MemberId,
        slug: &Slug,
        amount: i64,
        key: Option<&IdempotencyKey>,
    ) -> Result<Answer<PurchaseOutcome>, SmsCreditError> {
        let group = self.manager_of(slug, caller).await?;
        let fingerprint = Fingerprint::of(format!("sms-credit|{amount}").as_bytes());
        self.idempotency_keys()
            .run(group, key, &fingerprint, || async {
                PurchaseOutcome::settle(self.purchase(group, amount).await)
            })
            .await
    }

    /// Turns the auto top-up of the group `slug` on or off on `caller`'s request (who needs
    /// `billing.manage` there), as [`Self::set_auto_topup`] does.
    ///
    /// # Errors
    /// [`SmsCreditError::NotFound`], [`SmsCreditError::Forbidden`], and those of
    /// [`Self::set_auto_topup`].
    pub async fn set_auto_topup_as(
        &self,
        caller: MemberId,
        slug: &Slug,
        auto_topup: Option<AutoTopup>,
    ) -> Result<Wallet, SmsCreditError> {
        let group = self.manager_of(slug, caller).await?;
        self.set_auto_topup(group, auto_topup).await
    }
}
