//! Outgoing webhooks and the events API.

use super::{ApiError, ErrorCode, conflict, forbidden, group_not_found};

fn endpoint_not_found() -> ApiError {
    ApiError::not_found("no such webhook endpoint")
}

fn webhooks_forbidden() -> ApiError {
    forbidden("managing webhooks needs webhooks.manage (platform webhooks: a platform admin)")
}

map_errors! {
    onboard_webhooks::AccessError {
        NotFound => group_not_found(),
        Forbidden => webhooks_forbidden(),
    }
    onboard_webhooks::WriteEndpointError {
        NotFound => group_not_found(),
        Forbidden => webhooks_forbidden(),
        EndpointNotFound => endpoint_not_found(),
        InvalidUrl(e) => Self::invalid_field(ErrorCode::InvalidRequest, "url", e.to_string()),
        InvalidFilter(e) => {
            Self::invalid_field(ErrorCode::InvalidRequest, "event_types", e.to_string())
        },
        DescriptionTooLong => {
            Self::invalid_field(ErrorCode::InvalidRequest, "description", "at most 500 characters")
        },
        TooManyEndpoints(n) => conflict(
            ErrorCode::WebhookLimitReached,
            &format!("at most {n} webhook endpoints; delete one first"),
        ),
    }
    onboard_webhooks::EndpointError {
        NotFound => group_not_found(),
        Forbidden => webhooks_forbidden(),
        EndpointNotFound => endpoint_not_found(),
    }
    onboard_webhooks::RetryError {
        NotFound => group_not_found(),
        Forbidden => webhooks_forbidden(),
        EndpointNotFound => endpoint_not_found(),
        DeliveryNotFound => ApiError::not_found("no such delivery"),
    }
    onboard_webhooks::ReplayError {
        NotFound => group_not_found(),
        Forbidden => webhooks_forbidden(),
        EndpointNotFound => endpoint_not_found(),
        InvalidRange => ApiError::invalid_field(ErrorCode::InvalidRequest, "to", "from must be before to"),
    }
    onboard_webhooks::EventsError {
        NotFound => group_not_found(),
        Forbidden => forbidden("reading events needs webhooks.manage (every event: a platform admin)"),
        InvalidFilter(e) => ApiError::invalid_field(ErrorCode::InvalidRequest, "types", e.to_string()),
    }
}
