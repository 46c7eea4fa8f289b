//! Answer bodies that both handlers and error answers carry.

use chrono::{DateTime, Utc};
use onboard_payments::Usage;
use serde::Serialize;
use utoipa::ToSchema;

/// One metric's count in the current period.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageDto {
    pub metric: String,
    pub used: i64,
    /// `null`: unlimited.
    pub limit: Option<i64>,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
}

impl From<Usage> for UsageDto {
    fn from(u: Usage) -> Self {
        Self {
            metric: u.metric,
            used: u.used,
            limit: u.limit,
            period_start: u.period_start,
            period_end: u.period_end,
        }
    }
}

impl UsageDto {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}
