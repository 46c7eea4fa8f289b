//! The webhooks API's request and answer bodies.

use chrono::{DateTime, Utc};
use onboard_kernel::events::{Event, FeedPosition};
use onboard_webhooks::{Delivery, Endpoint, EndpointPatch, NewEndpoint, webhook_id};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// Where events are POSTed (`https` only in production; no loopback, private or
    /// link-local address).
    #[schema(example = "https://crm.example.com/hooks/onboard")]
    pub url: String,
    /// Up to 500 characters.
    #[serde(default)]
    pub description: String,
    /// Exact types (`group.member_joined`), prefixes (`group.*`) or `*`; empty or absent: every
    /// event of the group (of the platform for admin endpoints).
    #[schema(example = json!(["group.*", "invite.accepted"]))]
    #[serde(default)]
    pub event_types: Vec<String>,
    /// True by default.
    pub enabled: Option<bool>,
}

impl From<CreateEndpointRequest> for NewEndpoint {
    fn from(r: CreateEndpointRequest) -> Self {
        Self {
            url: r.url,
            description: r.description,
            event_types: r.event_types,
            enabled: r.enabled.unwrap_or(true),
        }
    }
}

/// Changes to an endpoint; absent fields stay as they are. Enabling a disabled endpoint
/// resumes its pending deliveries.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchEndpointRequest {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

impl From<PatchEndpointRequest> for EndpointPatch {
    fn from(r: PatchEndpointRequest) -> Self {
        Self {
            url: r.url,
            description: r.description,
            event_types: r.event_types,
            enabled: r.enabled,
        }
    }
}

/// An endpoint (its secret is shown only when it is made or rotated).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointDto {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Since when every attempt has failed (null when the last one succeeded); after 5 days
    /// the endpoint is disabled.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret a rotation replaced still signs beside the new one.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for EndpointDto {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id.as_uuid(),
            url: e.url.as_str().to_owned(),
            description: e.description,
            event_types: e.filters.iter().map(|f| f.to_text()).collect(),
            enabled: e.enabled,
            failing_since: e.failing_since,
            previous_secret_expires_at: e.previous_secret.map(|p| p.expires_at),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its signing secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointWithSecretDto {
    #[serde(flatten)]
    pub endpoint: EndpointDto,
    /// `whsec_` and the base64 of 32 random bytes: the HMAC key is the decoded bytes.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

impl From<Endpoint> for EndpointWithSecretDto {
    fn from(e: Endpoint) -> Self {
        let secret = e.secret.expose().to_owned();
        Self { endpoint: e.into(), secret }
    }
}

/// The scope's endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointsDto {
    pub items: Vec<EndpointDto>,
}

/// The last attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptDto {
    pub at: DateTime<Utc>,
    /// The endpoint's HTTP status; null when no answer came (refused address, timeout,
    /// connection error).
    pub response_status: Option<u16>,
    pub latency_ms: u32,
    /// The answer's body, or why there was none, truncated to 4 KiB.
    pub response: String,
}

/// One event's delivery to the endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    pub id: Uuid,
    pub event_id: Uuid,
    /// The `webhook-id` header of every attempt.
    #[schema(example = "msg_0193a0c4e2b87c3d9f1e2a3b4c5d6e7f")]
    pub webhook_id: String,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: &'static str,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt: Option<AttemptDto>,
    pub created_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryDto {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id.as_uuid(),
            event_id: d.event_id.as_uuid(),
            webhook_id: webhook_id(d.event_id),
            event_type: d.event_type,
            status: d.status.as_str(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_attempt: d.last_attempt.map(|a| AttemptDto {
                at: a.at,
                response_status: a.response_status,
                latency_ms: a.latency_ms,
                response: a.response,
            }),
            created_at: d.created_at,
        }
    }
}

/// A time range to deliver again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Events that occurred at or after this instant…
    pub from: DateTime<Utc>,
    /// …and before this one.
    pub to: DateTime<Utc>,
}

/// How many deliveries were queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedDto {
    pub queued: u64,
}

/// The queued test delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestDeliveryDto {
    pub delivery_id: Uuid,
}

/// An event, as webhooks carry it, with its id.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDto {
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(example = "group.member_joined")]
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    /// The event's fields (see the OpenAPI document's `webhooks`).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<Event> for EventDto {
    fn from(e: Event) -> Self {
        Self {
            id: e.id.as_uuid(),
            event_type: e.event_type,
            timestamp: e.occurred_at,
            data: e.payload,
        }
    }
}

/// A page of events, oldest first. `next_cursor` is always set: pass it as `after` to read on
/// (it is the request's own when nothing new has happened).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsPageDto {
    pub items: Vec<EventDto>,
    pub next_cursor: String,
}

/// `?after=&types=&limit=` of the events API.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// `next_cursor` of the previous page; absent: from the oldest event kept (30 days).
    pub after: Option<String>,
    /// Comma-separated types or prefixes (`group.*,invite.accepted`); absent: every type.
    pub types: Option<String>,
    /// 1 to 100, default 100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl EventsQuery {
    /// The cursor; 400 when it is not one.
    pub fn after(&self) -> Result<Option<FeedPosition>, ApiError> {
        let Some(raw) = self.after.as_deref() else { return Ok(None) };
        let bad = || {
            ApiError::invalid_field(ErrorCode::InvalidRequest, "after", "not a cursor of this list")
        };
        let (txid, seq) = raw.split_once('.').ok_or_else(bad)?;
        let txid = txid.parse().map_err(|_| bad())?;
        let seq = seq.parse().map_err(|_| bad())?;
        Ok(Some(FeedPosition { txid, seq }))
    }

    /// The types asked for.
    pub fn types(&self) -> Vec<String> {
        self.types
            .as_deref()
            .map(|t| {
                t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
            })
            .unwrap_or_default()
    }

    /// The page size, 400 outside 1..=100 (as every list).
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(n @ 1..=100) => Ok(n),
            Some(_) => Err(ApiError::invalid_field(
                ErrorCode::InvalidRequest,
                "limit",
                "between 1 and 100",
            )),
        }
    }
}

/// A feed position as a cursor.
pub fn cursor(position: FeedPosition) -> String {
    format!("{}.{}", position.txid, position.seq)
}
