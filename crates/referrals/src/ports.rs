//! What the referrals domain needs from storage.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::{MemberId, ReferralCode};
use onboard_members::{Member, MemberCard};

use crate::events::RedeemEvents;
use crate::service::{Cursor, ReferralSummary};

/// Why storage refused a redeem. Every refusal writes nothing.
#[derive(Debug, thiserror::Error)]
pub enum RedeemRefusal {
    #[error("no live member has this code")]
    NotFound,
    #[error("the code is the redeemer's own")]
    OwnCode,
    #[error("the redeemer already redeemed a code")]
    AlreadyRedeemed,
    #[error("the code's owner is below the redeemer in the referral tree")]
    Cycle,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Referral storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReferralRepository: Send + Sync {
    /// Makes the owner of `code` the referrer of `member`, in one transaction, and answers the
    /// updated member. In that transaction it MUST store `events.for_referrer(owner)` (the
    /// events the use case decided, for the owner it found); a refused redeem stores none.
    ///
    /// # Errors
    /// MUST refuse with [`RedeemRefusal::NotFound`], [`RedeemRefusal::OwnCode`],
    /// [`RedeemRefusal::AlreadyRedeemed`] or [`RedeemRefusal::Cycle`] as their names say. Two
    /// redeems that together would close a cycle, running at the same moment, MUST NOT both
    /// succeed.
    async fn redeem(
        &self,
        member: MemberId,
        code: &ReferralCode,
        now: DateTime<Utc>,
        events: &RedeemEvents,
    ) -> Result<Member, RedeemRefusal>;

    /// Whether `member` may redeem `code` as things stand, changing nothing: the refusals of
    /// [`Self::redeem`], judged now. A concurrent change may still make a later `redeem` refuse;
    /// callers use it to fail early before other work they cannot undo.
    async fn check_redeem(
        &self,
        member: MemberId,
        code: &ReferralCode,
    ) -> Result<(), RedeemRefusal>;

    /// The member's code, referrer and invitee count; `None` for an unknown member.
    async fn summary(&self, member: MemberId) -> anyhow::Result<Option<ReferralSummary>>;

    /// Up to `limit` members referred by `member`, newest first, strictly after `after`, each
    /// with the cursor that points at it.
    async fn invitees(
        &self,
        member: MemberId,
        after: Option<Cursor>,
        limit: u32,
    ) -> anyhow::Result<Vec<(MemberCard, Cursor)>>;
}
