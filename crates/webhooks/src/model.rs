//! Endpoints, their secrets and filters, and deliveries.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use onboard_kernel::events::{Event, EventId};
use onboard_kernel::{GroupId, id_type};

use crate::catalog;

id_type!(
    /// An endpoint: where a group (or the platform) wants its events sent.
    EndpointId
);
id_type!(
    /// A delivery: one event (or test event) to one endpoint, however many attempts it takes.
    DeliveryId
);

/// Whose endpoint it is: a group's (it hears that group's events) or the platform's (it hears
/// every event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    Group(GroupId),
    Platform,
}

impl Scope {
    /// The group of a group endpoint; `None` for the platform.
    pub const fn group(&self) -> Option<GroupId> {
        match self {
            Self::Group(g) => Some(*g),
            Self::Platform => None,
        }
    }

    /// The scope stored as an optional group.
    pub const fn of(group: Option<GroupId>) -> Self {
        match group {
            Some(g) => Self::Group(g),
            None => Self::Platform,
        }
    }

    /// Whether an event belongs to this scope.
    pub fn covers(&self, event: &Event) -> bool {
        match self {
            Self::Group(g) => event.group == Some(*g),
            Self::Platform => true,
        }
    }
}

/// Why a URL is not an endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    #[error("not an absolute URL")]
    Malformed,
    #[error("only http and https URLs are accepted")]
    Scheme,
    #[error("only https URLs are accepted in production")]
    HttpsRequired,
    #[error("a URL may not carry a user name or password")]
    Credentials,
    #[error("longer than 2,048 characters")]
    TooLong,
    #[error("{0} is a loopback, private, link-local or metadata address")]
    PrivateAddress(IpAddr),
}

/// What an endpoint URL may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// Only `https` (`ONBOARD_ENV=production`).
    pub https_only: bool,
    /// Loopback, private, link-local and metadata addresses are allowed
    /// (`WEBHOOKS_ALLOW_PRIVATE`: tests and development).
    pub allow_private: bool,
}

/// An absolute `http(s)` URL without credentials, at most 2,048 characters; an IP literal must
/// be a public address unless the policy allows private ones. (A name is checked when it is
/// resolved, at each delivery.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    pub const MAX_LEN: usize = 2048;

    /// Reads a URL under `policy`.
    pub fn parse(raw: &str, policy: UrlPolicy) -> Result<Self, UrlError> {
        let raw = raw.trim();
        if raw.len() > Self::MAX_LEN {
            return Err(UrlError::TooLong);
        }
        let url = url::Url::parse(raw).map_err(|_| UrlError::Malformed)?;
        match url.scheme() {
            "https" => {}
            "http" if policy.https_only => return Err(UrlError::HttpsRequired),
            "http" => {}
            _ => return Err(UrlError::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        let ip = match url.host() {
            None => return Err(UrlError::Malformed),
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
        };
        if let Some(ip) = ip
            && !policy.allow_private
            && !is_public(ip)
        {
            return Err(UrlError::PrivateAddress(ip));
        }
        Ok(Self(url.to_string()))
    }

    /// A URL this system stored itself.
    pub fn from_trusted(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a delivery may go to `ip`: not loopback, private (RFC 1918, unique local),
/// link-local (cloud metadata services live at 169.254.169.254 and fd00:ec2::254), shared
/// (100.64/10), unspecified, broadcast, multicast, documentation or reserved. IPv4-mapped IPv6
/// addresses are judged as the IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}

/// Which events an endpoint wants: an exact type (`group.member_joined`), every type under a
/// prefix (`group.*`), or every type (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventFilter {
    Exact(String),
    /// The prefix with its dot (`group.`).
    Prefix(String),
    All,
}

/// The text is not a known event type or a prefix of some.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an event type, a prefix like \"group.*\", or \"*\"")]
pub struct FilterError(pub String);

impl EventFilter {
    /// Reads a filter, checked against the [catalog] of event types.
    pub fn parse(raw: &str) -> Result<Self, FilterError> {
        let raw = raw.trim();
        let filter = if raw == "*" {
            Self::All
        } else if let Some(prefix) = raw.strip_suffix('*') {
            if !prefix.ends_with('.') {
                return Err(FilterError(raw.to_owned()));
            }
            Self::Prefix(prefix.to_owned())
        } else {
            Self::Exact(raw.to_owned())
        };
        if catalog::EVENT_TYPES.iter().any(|t| filter.matches(t.name)) {
            Ok(filter)
        } else {
            Err(FilterError(raw.to_owned()))
        }
    }

    /// A filter this system stored itself.
    pub fn from_trusted(raw: &str) -> Self {
        if raw == "*" {
            Self::All
        } else if let Some(prefix) = raw.strip_suffix('*') {
            Self::Prefix(prefix.to_owned())
        } else {
            Self::Exact(raw.to_owned())
        }
    }

    /// Whether an event of type `event_type` passes.
    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            Self::Exact(t) => t == event_type,
            Self::Prefix(p) => event_type.starts_with(p.as_str()),
            Self::All => true,
        }
    }

    /// The filter as written (`group.*`).
    pub fn to_text(&self) -> String {
        match self {
            Self::Exact(t) => t.clone(),
            Self::Prefix(p) => format!("{p}*"),
            Self::All => "*".to_owned(),
        }
    }
}

/// Whether `filters` let `event_type` through: every type when there are none.
pub fn passes(filters: &[EventFilter], event_type: &str) -> bool {
    filters.is_empty() || filters.iter().any(|f| f.matches(event_type))
}

/// An endpoint's signing secret: `whsec_` and the base64 of 32 random bytes. Shown once, when
/// it is made; never in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    pub const PREFIX: &'static str = "whsec_";

    /// A fresh secret from the operating system's random source.
    pub fn generate() -> Self {
        let bytes = onboard_kernel::random_bytes::<32>();
        Self(format!("{}{}", Self::PREFIX, STANDARD.encode(bytes)))
    }

    /// A secret this system stored itself (or a test vector's).
    pub fn from_trusted(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The secret as shown to its owner (`whsec_...`).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the bytes the base64 after `whsec_` stands for.
    pub fn key(&self) -> Vec<u8> {
        let encoded = self.0.strip_prefix(Self::PREFIX).unwrap_or(&self.0);
        STANDARD.decode(encoded).unwrap_or_else(|_| encoded.as_bytes().to_vec())
    }
}

/// The secret a rotation replaced, still signing until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    pub secret: WebhookSecret,
    pub expires_at: DateTime<Utc>,
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub scope: Scope,
    pub url: EndpointUrl,
    pub description: String,
    /// Empty: every event of the scope.
    pub filters: Vec<EventFilter>,
    pub enabled: bool,
    pub secret: WebhookSecret,
    pub previous_secret: Option<PreviousSecret>,
    /// Since when every attempt has failed (cleared by a success); after
    /// [`crate::WebhooksConfig::disable_after`] the endpoint is disabled.
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    /// Whether this endpoint wants `event`: in its scope and through its filters.
    pub fn wants(&self, event: &Event) -> bool {
        self.scope.covers(event) && passes(&self.filters, &event.event_type)
    }

    /// The secrets that sign at `now`: the current one, and the previous one until it
    /// expires.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&WebhookSecret> {
        let mut secrets = vec![&self.secret];
        if let Some(previous) = &self.previous_secret
            && previous.expires_at > now
        {
            secrets.push(&previous.secret);
        }
        secrets
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answered.
    Succeeded,
    /// Every attempt of the schedule failed.
    Failed,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A delivery to store: pending, due at `due_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: DeliveryId,
    pub endpoint: EndpointId,
    /// The event's id: the `webhook-id` of every attempt (`msg_<id>`).
    pub event_id: EventId,
    pub event_type: String,
    /// The request body, `{"type", "timestamp", "data"}`, the same on every attempt.
    pub body: String,
    pub due_at: DateTime<Utc>,
}

impl NewDelivery {
    /// The delivery of `event` to `endpoint`.
    pub fn of(event: &Event, endpoint: EndpointId, now: DateTime<Utc>) -> Self {
        Self {
            id: DeliveryId::new(),
            endpoint,
            event_id: event.id,
            event_type: event.event_type.clone(),
            body: body_of(event),
            due_at: now,
        }
    }
}

/// The body of an event's deliveries (Standard Webhooks): `{"type", "timestamp", "data"}`.
pub fn body_of(event: &Event) -> String {
    serde_json::json!({
        "type": event.event_type,
        "timestamp": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": event.payload,
    })
    .to_string()
}

/// The `webhook-id` of an event's deliveries.
pub fn webhook_id(event: EventId) -> String {
    format!("msg_{}", event.as_uuid().simple())
}

/// A delivery and its last attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub endpoint: EndpointId,
    pub event_id: EventId,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending ones).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt: Option<Attempt>,
    pub created_at: DateTime<Utc>,
}

/// What one attempt met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The HTTP status; `None` when no answer came (refused address, timeout, connection).
    pub response_status: Option<u16>,
    pub latency_ms: u32,
    /// The answer's body, or why there was none, truncated to 4 KiB.
    pub response: String,
}

/// A delivery a worker claimed: its attempt goes out now, under `lease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: DeliveryId,
    pub lease: uuid::Uuid,
    pub event_id: EventId,
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub endpoint: Endpoint,
}

/// What the endpoint's record becomes with an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointHealth {
    /// A success: it is not failing.
    Healthy,
    /// A failure: failing since the stored instant, or this one if none is stored.
    Failing(DateTime<Utc>),
    /// A failure after failing long enough: disabled (once).
    Disable(DateTime<Utc>),
}

/// An attempt's outcome, as storage records it on the claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub status: DeliveryStatus,
    /// Attempts made, this one included.
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempt: Attempt,
    pub health: EndpointHealth,
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// A page of the events API: the events and the cursor after the last (the request's own when
/// there was none, so a poller keeps its place).
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub next: onboard_kernel::events::FeedPosition,
}
