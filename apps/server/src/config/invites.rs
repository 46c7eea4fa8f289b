//! Invitations.

use onboard_invites::InvitesConfig;

use super::Env;

/// `INVITE_TTL`: seconds an invite lives.
pub(super) fn read(env: &Env<'_>) -> anyhow::Result<InvitesConfig> {
    Ok(InvitesConfig {
        ttl_secs: env.num("INVITE_TTL", InvitesConfig::default().ttl_secs)?.max(1),
        ..InvitesConfig::default()
    })
}
