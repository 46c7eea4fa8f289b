//! Groups: the permissions beyond the built-in ones.

use onboard_groups::{GroupsConfig, Permission};

use super::Env;

/// `EXTRA_PERMISSIONS`: a comma-separated list of permission names.
pub(super) fn read(env: &Env<'_>) -> anyhow::Result<GroupsConfig> {
    Ok(GroupsConfig {
        extra_permissions: Permission::parse_list(
            &env.get("EXTRA_PERMISSIONS").unwrap_or_default(),
        )
        .map_err(|e| anyhow::anyhow!("EXTRA_PERMISSIONS: {e}"))?,
    })
}
