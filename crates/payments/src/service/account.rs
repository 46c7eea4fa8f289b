//! The billing account and its receipts, as members see them.

use onboard_groups::Slug;
use onboard_kernel::MemberId;

use crate::error::ViewBillingError;
use crate::model::{Billing, Receipt, ReceiptCursor};

use super::PaymentsService;

/// A page of receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptPage {
    pub items: Vec<Receipt>,
    pub next_cursor: Option<String>,
}

impl PaymentsService {
    /// The group's billing account as a member sees it (Free when it never had one).
    #[tracing::instrument(level = "debug", name = "payments.billing", skip_all)]
    pub async fn billing(
        &self,
        slug: &Slug,
        caller: MemberId,
    ) -> Result<Billing, ViewBillingError> {
        let group = self.member_of(slug, caller).await?;
        Ok(self.load(group.id).await?)
    }

    /// A page of the group's receipts, newest first; `limit` clamped to 1..=100.
    #[tracing::instrument(level = "debug", name = "payments.receipts", skip_all)]
    pub async fn receipts(
        &self,
        slug: &Slug,
        caller: MemberId,
        after: Option<ReceiptCursor>,
        limit: u32,
    ) -> Result<ReceiptPage, ViewBillingError> {
        let group = self.member_of(slug, caller).await?;
        let limit = limit.clamp(1, Self::MAX_PAGE);
        let mut items = self.ports.billing.receipts(group.id, after, limit + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| ReceiptCursor { created_at: r.created_at, id: r.id }.encode())
        } else {
            None
        };
        Ok(ReceiptPage { items, next_cursor })
    }
}
