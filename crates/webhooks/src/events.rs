//! The events of the webhooks domain.

use onboard_kernel::GroupId;
use onboard_kernel::events::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::model::EndpointId;

/// A change to a webhook endpoint that the rest of the system hears of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[non_exhaustive]
pub enum WebhookEvent {
    /// Every attempt to the endpoint failed for [`crate::WebhooksConfig::disable_after`]: it
    /// was disabled. The group's holders of `webhooks.manage` are told.
    #[serde(rename = "webhook.endpoint_disabled")]
    EndpointDisabled { endpoint_id: EndpointId, group_id: Option<GroupId>, url: String },
}

impl DomainEvent for WebhookEvent {
    fn aggregate(&self) -> Aggregate {
        match self {
            Self::EndpointDisabled { endpoint_id, .. } => {
                Aggregate::new("webhook_endpoint", endpoint_id.as_uuid())
            }
        }
    }

    fn group(&self) -> Option<GroupId> {
        match self {
            Self::EndpointDisabled { group_id, .. } => *group_id,
        }
    }
}
