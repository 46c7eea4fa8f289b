//! Settings of the groups domain.

use crate::model::{Permission, PermissionCatalog};

/// Tunables of the groups domain. [`GroupsConfig::default`] gives the documented defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupsConfig {
    /// The deployment's own permissions (`EXTRA_PERMISSIONS`), on top of the built-ins: role
    /// templates may hold them, and `owner` and `admin` hold them all. Empty by default.
    pub extra_permissions: Vec<Permission>,
}

impl GroupsConfig {
    /// The catalog of permissions this configuration declares.
    pub fn catalog(&self) -> PermissionCatalog {
        PermissionCatalog::new(self.extra_permissions.iter().cloned())
    }
}
