//! The trace context outbound HTTP calls carry (W3C `traceparent`, `tracestate`).
//!
//! Adapters that call other services (SMS providers, the payment gateway) add
//! [`outbound_headers`] to each request. The headers come from whatever the application
//! registered with [`set_outbound_headers`] (the server does when it exports traces); without
//! one there are none, so the adapters need no tracing library of their own.

use std::sync::OnceLock;

/// Gives the trace-context headers of the current span, as `(name, value)` pairs.
pub type OutboundHeaders = fn() -> Vec<(&'static str, String)>;

static SOURCE: OnceLock<OutboundHeaders> = OnceLock::new();

/// Registers where [`outbound_headers`] comes from (once per process; later calls are ignored).
pub fn set_outbound_headers(source: OutboundHeaders) {
    let _ = SOURCE.set(source);
}

/// The trace-context headers an outbound request of the current span carries (none when no
/// source is registered).
pub fn outbound_headers() -> Vec<(&'static str, String)> {
    SOURCE.get().map(|source| source()).unwrap_or_default()
}
