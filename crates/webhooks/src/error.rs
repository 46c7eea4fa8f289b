//! One error enum per use case (or family of use cases that fail alike). Exhaustive: the app
//! maps every variant to an answer.

use crate::model::{FilterError, UrlError};

/// Reaching a scope: the group's webhooks (`webhooks.manage`) or the platform's (platform
/// admins). Also the error of listing endpoints and reading events.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No such group for the caller (unknown, not a member, or pending).
    #[error("group not found")]
    NotFound,
    /// The caller may not manage these webhooks.
    #[error("managing webhooks needs webhooks.manage (platform webhooks: a platform admin)")]
    Forbidden,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Creating or changing an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum WriteEndpointError {
    #[error("group not found")]
    NotFound,
    #[error("managing webhooks needs webhooks.manage (platform webhooks: a platform admin)")]
    Forbidden,
    /// No such endpoint in the scope (a change).
    #[error("endpoint not found")]
    EndpointNotFound,
    #[error("url: {0}")]
    InvalidUrl(#[from] UrlError),
    #[error("event_types: {0}")]
    InvalidFilter(#[from] FilterError),
    #[error("description: at most 500 characters")]
    DescriptionTooLong,
    /// The scope has its maximum of endpoints.
    #[error("at most {0} endpoints")]
    TooManyEndpoints(usize),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Reading, deleting, rotating, testing an endpoint, or listing its deliveries.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("group not found")]
    NotFound,
    #[error("managing webhooks needs webhooks.manage (platform webhooks: a platform admin)")]
    Forbidden,
    #[error("endpoint not found")]
    EndpointNotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Retrying one delivery.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("group not found")]
    NotFound,
    #[error("managing webhooks needs webhooks.manage (platform webhooks: a platform admin)")]
    Forbidden,
    #[error("endpoint not found")]
    EndpointNotFound,
    #[error("delivery not found")]
    DeliveryNotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Replaying a time range to an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("group not found")]
    NotFound,
    #[error("managing webhooks needs webhooks.manage (platform webhooks: a platform admin)")]
    Forbidden,
    #[error("endpoint not found")]
    EndpointNotFound,
    /// `from` is not before `to`.
    #[error("from must be before to")]
    InvalidRange,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Reading the events API.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("group not found")]
    NotFound,
    #[error("reading events needs webhooks.manage (every event: a platform admin)")]
    Forbidden,
    #[error("types: {0}")]
    InvalidFilter(#[from] FilterError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

macro_rules! from_access {
    ($($ty:ty),*) => {$(
        impl From<AccessError> for $ty {
            fn from(e: AccessError) -> Self {
                match e {
                    AccessError::NotFound => Self::NotFound,
                    AccessError::Forbidden => Self::Forbidden,
                    AccessError::Unexpected(e) => Self::Unexpected(e),
                }
            }
        }
    )*};
}

from_access!(WriteEndpointError, EndpointError, RetryError, ReplayError, EventsError);

macro_rules! from_endpoint {
    ($($ty:ty),*) => {$(
        impl From<EndpointError> for $ty {
            fn from(e: EndpointError) -> Self {
                match e {
                    EndpointError::NotFound => Self::NotFound,
                    EndpointError::Forbidden => Self::Forbidden,
                    EndpointError::EndpointNotFound => Self::EndpointNotFound,
                    EndpointError::Unexpected(e) => Self::Unexpected(e),
                }
            }
        }
    )*};
}

from_endpoint!(WriteEndpointError, RetryError, ReplayError);
