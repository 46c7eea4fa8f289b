//! The SMS credit model: prices, the ledger, wallets and purchases.

use chrono::{DateTime, Utc};
use onboard_kernel::GroupId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{CardId, CustomerUid, MerchantUid};

/// Below this balance (KRW) the holders of `billing.manage` are told, once per crossing
/// (`sms_credit.low`).
pub const LOW_CREDIT_THRESHOLD: i64 = 1_000;

/// The smallest purchase or auto top-up amount (KRW).
pub const MIN_PURCHASE: i64 = 100;

/// Unit prices by channel, in KRW (configurable; SMS 11, LMS 37, alimtalk 10 by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsPrices {
    /// A short message (up to 90 bytes, EUC-KR count).
    pub sms: i64,
    /// A long message (up to 2,000 bytes).
    pub lms: i64,
    /// A KakaoTalk alimtalk message.
    pub alimtalk: i64,
}

impl Default for SmsPrices {
    fn default() -> Self {
        Self { sms: 11, lms: 37, alimtalk: 10 }
    }
}

/// Why the balance changed: the ledger's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditReason {
    /// Bought with the main card.
    Purchase,
    /// Bought by the auto top-up.
    AutoTopup,
    /// A message the group sent (or a failover resend).
    Message,
    /// A message's charge given back (provider error, failed alimtalk resent as SMS/LMS).
    Refund,
    /// An invite SMS (`BILL_INVITE_SMS=true`).
    InviteSms,
}

impl CreditReason {
    /// Every reason.
    pub const ALL: [Self; 5] =
        [Self::Purchase, Self::AutoTopup, Self::Message, Self::Refund, Self::InviteSms];

    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::AutoTopup => "auto_topup",
            Self::Message => "message",
            Self::Refund => "refund",
            Self::InviteSms => "invite_sms",
        }
    }

    /// The reason stored as `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// One change of a group's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Increasing per change: the ledger's keyset cursor.
    pub id: i64,
    /// Positive: added; negative: spent.
    pub delta: i64,
    /// The balance after the change.
    pub balance: i64,
    /// Why.
    pub reason: CreditReason,
    /// What it is for: a message id, a receipt's merchant_uid, an invite id.
    pub reference: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Whether a change from `before` to `after` crossed below `line` (at or above it before,
/// below it after): warnings and auto top-ups fire once per crossing.
#[must_use]
pub const fn crossed_below(before: i64, after: i64, line: i64) -> bool {
    before >= line && after < line
}

/// The balance after `delta`, or `None` when it would go below 0 (the debit is refused and
/// nothing changes).
#[must_use]
pub const fn apply(balance: i64, delta: i64) -> Option<i64> {
    match balance.checked_add(delta) {
        Some(after) if after >= 0 => Some(after),
        _ => None,
    }
}

/// The auto top-up of a wallet: when a debit takes the balance below `below`, the main card is
/// charged `amount` (at least [`MIN_PURCHASE`]) once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoTopup {
    /// The threshold (KRW, ≥ 0).
    pub below: i64,
    /// What one top-up buys (KRW, ≥ 100).
    pub amount: i64,
}

/// A group's SMS credit wallet (a group that never had one has a zero wallet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wallet {
    /// KRW, never below 0.
    pub balance: i64,
    /// `None`: off.
    pub auto_topup: Option<AutoTopup>,
    /// Set when a debit crossed below the auto top-up threshold and the top-up has not run yet.
    pub topup_requested_at: Option<DateTime<Utc>>,
}

/// Where a purchase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseStatus {
    /// Recorded before the gateway was asked; its outcome is not recorded yet.
    Pending,
    /// Charged and credited (with its receipt).
    Paid,
    /// Declined, never charged, or no main card: nothing was credited.
    Failed,
}

impl PurchaseStatus {
    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Failed => "failed",
        }
    }

    /// The status stored as `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Paid, Self::Failed].into_iter().find(|s| s.as_str() == name)
    }
}

/// One charge of the main card for SMS credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditPurchase {
    /// Onboard's id of the payment: unique.
    pub merchant_uid: MerchantUid,
    pub group: GroupId,
    /// KRW, VAT included: what the card is charged and what is credited.
    pub amount: i64,
    /// [`CreditReason::Purchase`] or [`CreditReason::AutoTopup`].
    pub reason: CreditReason,
    /// The main card charged; `None` when the group had none.
    pub card: Option<(CardId, CustomerUid)>,
    pub status: PurchaseStatus,
    pub created_at: DateTime<Utc>,
}

/// A wallet waiting for its auto top-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTopup {
    pub group: GroupId,
    /// What the top-up buys.
    pub amount: i64,
    /// When the debit that crossed the threshold happened.
    pub requested_at: DateTime<Utc>,
}

/// The merchant_uid of the auto top-up requested for `group` at `requested_at`: the same for
/// every run that handles that request, different for every other request.
#[must_use]
pub fn topup_merchant_uid(group: GroupId, requested_at: DateTime<Utc>) -> MerchantUid {
    let digest = Sha256::digest(
        format!("sms-credit-topup|{}|{}", group, requested_at.timestamp_micros()).as_bytes(),
    );
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    MerchantUid::from_trusted(format!("ob_{hex}"))
}

/// The VAT part of an amount that includes 10 % VAT, rounded half up to the won.
#[must_use]
pub const fn vat_included(amount: i64) -> i64 {
    (amount * 10 + 55) / 110
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debit_the_balance_covers_leaves_the_rest() {
        assert_eq!(apply(100, -37), Some(63));
        assert_eq!(apply(37, -37), Some(0));
    }

    #[test]
    fn a_debit_beyond_the_balance_is_refused() {
        assert_eq!(apply(36, -37), None);
        assert_eq!(apply(0, -10), None);
        assert_eq!(apply(i64::MIN + 1, -10), None);
    }

    #[test]
    fn a_credit_adds_to_the_balance() {
        assert_eq!(apply(0, 10_000), Some(10_000));
    }

    #[test]
    fn a_line_is_crossed_only_from_at_or_above_it_to_below_it() {
        assert!(crossed_below(1_000, 999, 1_000));
        assert!(!crossed_below(999, 990, 1_000));
        assert!(!crossed_below(2_000, 1_000, 1_000));
        assert!(!crossed_below(500, 2_000, 1_000));
    }

    #[test]
    fn every_reason_round_trips_through_its_stored_name() {
        for reason in CreditReason::ALL {
            assert_eq!(CreditReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(CreditReason::parse("gift"), None);
    }
}
