//! Notifications.

use std::time::Duration;

use onboard_notifications::NotificationsConfig;

use super::Env;

/// `NOTIFICATION_TTL`: seconds a notification lives (14 days).
pub(super) fn read(env: &Env<'_>) -> anyhow::Result<NotificationsConfig> {
    Ok(NotificationsConfig {
        ttl: Duration::from_secs(
            env.num("NOTIFICATION_TTL", NotificationsConfig::default().ttl.as_secs())?.max(1),
        ),
        ..NotificationsConfig::default()
    })
}
