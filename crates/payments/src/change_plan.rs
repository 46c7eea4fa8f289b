//! Changing a group's plan on a member's request, at most once per idempotency key.

use onboard_groups::Slug;
use onboard_kernel::MemberId;
use serde::{Deserialize, Serialize};

use crate::error::ChangePlanError;
use crate::idempotency::{Answer, Fingerprint, IdempotencyKey};
use crate::model::Billing;
use crate::plan_change::{PlanRefusal, PlanRequest};
use crate::service::{PaymentsService, plan_access};

/// What a plan change came to, as kept for a repeat of its idempotency key: every outcome
/// here is final (nothing is left to try again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanChangeOutcome {
    /// The plan changed (or already was as asked): the account after.
    Changed(Billing),
    /// Refused as [`PlanRefusal`] says; nothing changed.
    Refused(PlanRefusal),
    /// The charge made at once was declined (the gateway's reason); nothing changed.
    PaymentFailed(String),
    /// The account changed while this change was carried out; nothing changed.
    Busy,
}

impl PlanChangeOutcome {
    /// The outcome to keep of a plan change's result, or the error after which the change may
    /// run again (the key is then released): the gateway could not be reached before anything
    /// was charged, or an unexpected failure.
    ///
    /// # Errors
    /// Every [`ChangePlanError`] that is not a final outcome.
    pub fn settle(result: Result<Billing, ChangePlanError>) -> Result<Self, ChangePlanError> {
        match result {
            Ok(billing) => Ok(Self::Changed(billing)),
            Err(ChangePlanError::Refused(r)) => Ok(Self::Refused(r)),
            Err(ChangePlanError::PaymentFailed(reason)) => Ok(Self::PaymentFailed(reason)),
            Err(ChangePlanError::Busy) => Ok(Self::Busy),
            Err(e) => Err(e),
        }
    }

    /// The account after, or the refusal as the change's error.
    ///
    /// # Errors
    /// [`ChangePlanError::Refused`], [`ChangePlanError::PaymentFailed`] or
    /// [`ChangePlanError::Busy`].
    pub fn into_result(self) -> Result<Billing, ChangePlanError> {
        match self {
            Self::Changed(billing) => Ok(billing),
            Self::Refused(r) => Err(ChangePlanError::Refused(r)),
            Self::PaymentFailed(reason) => Err(ChangePlanError::PaymentFailed(reason)),
            Self::Busy => Err(ChangePlanError::Busy),
        }
    }
}

/// The fingerprint of a plan change request as understood (so formatting does not matter).
fn fingerprint(request: &PlanRequest) -> Fingerprint {
    Fingerprint::of(
        format!("{:?}|{:?}|{:?}", request.plan, request.interval, request.addons).as_bytes(),
    )
}

impl PaymentsService {
    /// Changes the plan of the group `slug` for `caller`, who needs `billing.manage` there, as
    /// [`Self::change_plan`] does. Under an idempotency `key` the change runs once: a repeat
    /// with the same request answers the first [`PlanChangeOutcome`] for 24 hours.
    ///
    /// # Errors
    /// [`ChangePlanError::NotFound`] and [`ChangePlanError::Forbidden`] (nothing claimed);
    /// [`ChangePlanError::Key`] when the key was used with another request or its first request
    /// still runs; [`ChangePlanError::GatewayUnavailable`] and unexpected failures (the key is
    /// released).
    pub async fn change_plan_as(
        &self,
        caller: MemberId,
        slug: &Slug,
        request: &PlanRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Answer<PlanChangeOutcome>, ChangePlanError> {
        let group = self.manager_of(slug, caller).await.map_err(plan_access)?;
        self.idempotency_keys()
            .run(group.id, key, &fingerprint(request), || async {
                PlanChangeOutcome::settle(self.change_plan(&group, request).await)
            })
            .await
    }
}
