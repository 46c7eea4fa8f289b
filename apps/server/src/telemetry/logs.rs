//! The process's log output: `LOG_FORMAT` (`text` or `json`), `RUST_LOG`, colours only on a
//! terminal, and the one start-up block.

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{Environment, GatewaySettings, Settings, SmsSettings, Storage};

/// How log lines are written to standard error (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// One human-readable line per event (the default); coloured only on a terminal.
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`: `text` (the default) or `json`; anything else is text, with a word said.
    fn from_env() -> (Self, Option<String>) {
        match std::env::var("LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Ok("json") => (Self::Json, None),
            Ok("text" | "") | Err(_) => (Self::Text, None),
            Ok(other) => (Self::Text, Some(other.to_owned())),
        }
    }
}

/// Whether text logs are coloured: only when standard error is a terminal and `NO_COLOR` is
/// not set (<https://no-color.org>).
fn colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Starts logging once per process: `RUST_LOG` filters (`info` by default), `LOG_FORMAT`
/// chooses text or JSON, lines go to standard error. When `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
/// spans are also exported over OTLP/HTTP (docs/operations.md).
pub fn init_tracing() {
    FORMAT.get_or_init(|| {
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
        let (format, unknown) = LogFormat::from_env();
        let output: Box<dyn Layer<Registry> + Send + Sync> = match format {
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(std::io::stderr)
                .with_filter(filter)
                .boxed(),
            LogFormat::Text => tracing_subscriber::fmt::layer()
                .with_ansi(colours())
                .fmt_fields(QuietFields)
                .with_writer(std::io::stderr)
                .with_filter(filter)
                .boxed(),
        };
        let (traces, failed) = match super::otel::layer() {
            Ok(traces) => (traces, None),
            Err(why) => (None, Some(why)),
        };
        let _ = tracing_subscriber::registry().with(output).with(traces).try_init();
        if let Some(unknown) = unknown {
            tracing::warn!(LOG_FORMAT = %unknown, "LOG_FORMAT is neither text nor json: writing text");
        }
        if let Some(why) = failed {
            tracing::warn!("traces are not exported: {why}");
        }
        format
    });
}

/// The format chosen by [`init_tracing`] (text when logging was not started).
static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Text logs: the event's fields as `name=value` and its message bare, leaving out the
/// `otel.*` fields (they name and classify spans for the trace exporter, not for a reader).
#[derive(Debug, Clone, Copy, Default)]
struct QuietFields;

impl<'w> FormatFields<'w> for QuietFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = QuietVisitor { writer, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct QuietVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for QuietVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("otel.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if name == "message" {
            write!(self.writer, "{separator}{value:?}")
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            write!(self.writer, "{separator}{name}={value:?}")
        };
    }
}

/// What the server runs on, said once at start: mode, address, storage, SMS provider, payment
/// gateway, and what would be unsafe in production (empty in a production set-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupSummary {
    pub mode: &'static str,
    pub address: String,
    pub storage: &'static str,
    pub sms: &'static str,
    pub gateway: &'static str,
    pub unsafe_for_production: Vec<&'static str>,
}

impl StartupSummary {
    /// The summary of `settings`, served on `port`.
    pub fn new(settings: &Settings, port: u16) -> Self {
        let host = settings.addr.rsplit_once(':').map_or(settings.addr.as_str(), |(h, _)| h);
        let mut unsafe_for_production = Vec::new();
        let storage = match settings.storage {
            Storage::Memory => {
                unsafe_for_production.push("embedded storage (data is lost when the server stops)");
                "embedded (in memory; set DATABASE_URL and REDIS_URL for PostgreSQL + Redis)"
            }
            Storage::External { .. } => "PostgreSQL + Redis",
        };
        if settings.members.otp_echo {
            unsafe_for_production.push("OTP_ECHO (codes are echoed as dev_code)");
        }
        if settings.jwt_private_key_file.is_none() {
            unsafe_for_production.push(
                "no JWT_PRIVATE_KEY_FILE (a throwaway signing key; tokens die with the process)",
            );
        }
        let sms = match settings.sms {
            SmsSettings::Log { .. } => {
                unsafe_for_production.push("SMS_PROVIDER=log (codes are only written to this log)");
                "log (messages and codes are written to this log)"
            }
            SmsSettings::Sens(_) => "Naver Cloud SENS",
            SmsSettings::Twilio(_) => "Twilio",
        };
        let gateway = match settings.gateway {
            GatewaySettings::Simulated => {
                unsafe_for_production.push("the simulated payment gateway (test cards only)");
                "simulated (test cards only, no real payments)"
            }
            GatewaySettings::PortOne(_) => "PortOne",
        };
        Self {
            mode: match settings.env {
                Environment::Development => "development",
                Environment::Production => "production",
            },
            address: format!("http://{host}:{port}"),
            storage,
            sms,
            gateway,
            unsafe_for_production,
        }
    }

    /// Logs the summary as one info event: a block of lines in text logs, fields in JSON.
    pub fn log(&self) {
        let unsafe_list = if self.unsafe_for_production.is_empty() {
            "nothing".to_owned()
        } else {
            self.unsafe_for_production.join("; ")
        };
        if FORMAT.get() == Some(&LogFormat::Json) {
            tracing::info!(
                mode = self.mode,
                address = %self.address,
                storage = self.storage,
                sms = self.sms,
                gateway = self.gateway,
                unsafe_for_production = %unsafe_list,
                "Onboard is listening"
            );
        } else {
            tracing::info!(
                "Onboard is listening on {address} (API docs at {address}/docs/)\n  \
                 mode:     {mode}\n  storage:  {storage}\n  sms:      {sms}\n  \
                 gateway:  {gateway}\n  unsafe for production: {unsafe_list}",
                address = self.address,
                mode = self.mode,
                storage = self.storage,
                sms = self.sms,
                gateway = self.gateway,
            );
        }
    }
}
