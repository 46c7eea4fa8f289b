//! The events of the referrals domain. [`crate::ReferralsService::redeem`] decides them; the
//! [`ReferralRepository`](crate::ports::ReferralRepository) stores them with the redeem, in its
//! transaction (the outbox). Payloads carry member ids, never the code.
//!
//! ```
//! use chrono::Utc;
//! use onboard_kernel::MemberId;
//! use onboard_kernel::events::Event;
//! use onboard_referrals::events::ReferralEvent;
//!
//! let redeemed = ReferralEvent::Redeemed { member_id: MemberId::new(), referrer_id: MemberId::new() };
//! let record = Event::record(&redeemed, Utc::now());
//! assert_eq!(record.event_type, "referral.redeemed");
//! assert_eq!(record.decode::<ReferralEvent>(), Some(redeemed));
//! ```

use std::fmt;
use std::sync::Arc;

use onboard_kernel::events::{Aggregate, DomainEvent, Event};
use onboard_kernel::{GroupId, MemberId};
use serde::{Deserialize, Serialize};

/// A change to who referred whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[non_exhaustive]
pub enum ReferralEvent {
    /// `member_id` redeemed the code of `referrer_id`, who is now their referrer.
    #[serde(rename = "referral.redeemed")]
    Redeemed { member_id: MemberId, referrer_id: MemberId },
}

impl DomainEvent for ReferralEvent {
    fn aggregate(&self) -> Aggregate {
        match self {
            Self::Redeemed { member_id, .. } => Aggregate::member(*member_id),
        }
    }

    fn group(&self) -> Option<GroupId> {
        None
    }
}

/// The events of a redeem, as the use case decides them, for the referrer storage finds: the
/// code's owner is known only to storage, which calls [`Self::for_referrer`] with them and
/// stores the answer with the redeem.
#[derive(Clone)]
pub struct RedeemEvents(Arc<dyn Fn(MemberId) -> Vec<Event> + Send + Sync>);

impl RedeemEvents {
    /// The events `decide` answers for a referrer.
    pub fn new(decide: impl Fn(MemberId) -> Vec<Event> + Send + Sync + 'static) -> Self {
        Self(Arc::new(decide))
    }

    /// No events, whoever the referrer.
    pub fn none() -> Self {
        Self::new(|_| Vec::new())
    }

    /// The events of a redeem that made `referrer` the redeemer's referrer.
    pub fn for_referrer(&self, referrer: MemberId) -> Vec<Event> {
        (self.0)(referrer)
    }
}

impl fmt::Debug for RedeemEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedeemEvents")
    }
}
