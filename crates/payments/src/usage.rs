//! Counting usage on behalf of a member or a trusted service.

use onboard_groups::{AuthorizeError, Slug};
use onboard_kernel::MemberId;

use crate::error::UsageError;
use crate::model::Usage;
use crate::service::PaymentsService;

/// Who asks to count usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageCaller {
    /// A trusted service (it presented one of the configured service tokens): it may count
    /// for any group.
    Service,
    /// A member: needs `billing.manage` in the group.
    Member(MemberId),
}

impl PaymentsService {
    /// Counts `delta` of `metric` for the group `slug` as [`Self::record_usage`] does, when
    /// `caller` may: a trusted service always, a member holding `billing.manage` in it.
    ///
    /// # Errors
    /// [`UsageError::NotFound`] (no such group, or the member is not in it),
    /// [`UsageError::Forbidden`], and those of [`Self::record_usage`].
    pub async fn record_usage_as(
        &self,
        caller: UsageCaller,
        slug: &Slug,
        metric: &str,
        delta: i64,
    ) -> Result<Usage, UsageError> {
        let group = match caller {
            UsageCaller::Service => {
                self.groups().find_by_slug(slug).await?.ok_or(UsageError::NotFound)?
            }
            UsageCaller::Member(member) => {
                self.manager_of(slug, member).await.map_err(|e| match e {
                    AuthorizeError::NotFound => UsageError::NotFound,
                    AuthorizeError::Forbidden(_) => UsageError::Forbidden,
                    AuthorizeError::Unexpected(e) => UsageError::Unexpected(e),
                })?
            }
        };
        self.record_usage(&group, metric, delta).await
    }
}
