//! Referrals in memory: [`ReferralRepository`] for [`MemoryStore`].
//!
//! The rules are those of the PostgreSQL adapter: a member redeems one live member's code,
//! once, never their own, never one whose owner is below them in the referral tree. Every
//! call runs under the store's one mutex, so two redeems that together would close a cycle
//! run one after the other, and the second sees the first.

use std::cmp::Reverse;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_kernel::{MemberId, PhoneNumber, ReferralCode};
use onboard_members::{Member, MemberCard};
use onboard_referrals::events::RedeemEvents;
use onboard_referrals::ports::{RedeemRefusal, ReferralRepository};
use onboard_referrals::{Cursor, ReferralSummary, Referrer};

use super::{MemberRow, MemoryStore, State};

/// Whether `ancestor` is above `member` in the referral tree (or is `member`).
enum Lineage {
    Descends,
    Unrelated,
}

impl State {
    /// Climbs `referred_by` from `member` (deleted members included: they stay in the tree)
    /// looking for `ancestor`.
    ///
    /// # Errors
    /// When the climb takes more steps than there are members: the links loop, which redeems
    /// never let happen.
    fn lineage(&self, member: MemberId, ancestor: MemberId) -> anyhow::Result<Lineage> {
        let mut current = Some(member);
        for _ in 0..=self.members.len() {
            match current {
                Some(id) if id == ancestor => return Ok(Lineage::Descends),
                Some(id) => current = self.members.get(&id).and_then(|m| m.referred_by),
                None => return Ok(Lineage::Unrelated),
            }
        }
        anyhow::bail!("the referral links above {member} loop")
    }

    /// The owner of `code` when `member` may redeem it now, or the refusal.
    fn judge_redeem(
        &self,
        member: MemberId,
        code: &ReferralCode,
    ) -> Result<MemberId, RedeemRefusal> {
        let Some(redeemer) = self.live_member(member) else {
            return Err(anyhow::anyhow!("the redeemer {member} is not a live member").into());
        };
        if redeemer.referred_by.is_some() {
            return Err(RedeemRefusal::AlreadyRedeemed);
        }
        let owner = self.live_code_owner(code).ok_or(RedeemRefusal::NotFound)?;
        if owner == member {
            return Err(RedeemRefusal::OwnCode);
        }
        if let Lineage::Descends = self.lineage(owner, member)? {
            return Err(RedeemRefusal::Cycle);
        }
        Ok(owner)
    }
}

/// What a member's invitee list shows of them, and where it is in the list.
fn invitee_card(row: &MemberRow, referred_at: DateTime<Utc>) -> (MemberCard, Cursor) {
    let card = MemberCard {
        id: row.id,
        first_name: row.first_name.clone(),
        last_name: row.last_name.clone(),
        phone_masked: row.phone.as_ref().map(PhoneNumber::masked),
    };
    (card, Cursor { referred_at, id: row.id })
}

#[async_trait]
impl ReferralRepository for MemoryStore {
    async fn redeem(
        &self,
        member: MemberId,
        code: &ReferralCode,
        now: DateTime<Utc>,
        events: &RedeemEvents,
    ) -> Result<Member, RedeemRefusal> {
        let mut state = self.state();
        let owner = state.judge_redeem(member, code)?;
        let row = state
            .members
            .get_mut(&member)
            .ok_or_else(|| anyhow::anyhow!("the member vanished under the lock"))?;
        row.referred_by = Some(owner);
        row.referred_at = Some(now);
        let row = row.clone();
        state.outbox.record(&events.for_referrer(owner));
        Ok(state.member(&row))
    }

    async fn check_redeem(
        &self,
        member: MemberId,
        code: &ReferralCode,
    ) -> Result<(), RedeemRefusal> {
        self.state().judge_redeem(member, code).map(|_| ())
    }

    async fn summary(&self, member: MemberId) -> anyhow::Result<Option<ReferralSummary>> {
        let state = self.state();
        let Some(row) = state.live_member(member) else {
            return Ok(None);
        };
        let referred_by = row
            .referred_by
            .and_then(|id| state.members.get(&id))
            .map(|r| Referrer { code: r.referral_code.clone(), member_id: r.id });
        let invitees = state
            .members
            .values()
            .filter(|m| m.referred_by == Some(member) && m.deleted_at.is_none())
            .count();
        Ok(Some(ReferralSummary {
            code: row.referral_code.clone(),
            referred_by,
            invitees_count: u64::try_from(invitees).unwrap_or(u64::MAX),
        }))
    }

    async fn invitees(
        &self,
        member: MemberId,
        after: Option<Cursor>,
        limit: u32,
    ) -> anyhow::Result<Vec<(MemberCard, Cursor)>> {
        let state = self.state();
        let before = after.map(|c| (c.referred_at, c.id));
        let mut page: Vec<(DateTime<Utc>, &MemberRow)> = state
            .members
            .values()
            .filter(|m| m.referred_by == Some(member) && m.deleted_at.is_none())
            .filter_map(|m| m.referred_at.map(|at| (at, m)))
            .filter(|(at, m)| before.is_none_or(|before| (*at, m.id) < before))
            .collect();
        page.sort_by_key(|(at, m)| Reverse((*at, m.id)));
        page.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(page.into_iter().map(|(at, m)| invitee_card(m, at)).collect())
    }
}

#[cfg(test)]
mod tests;
