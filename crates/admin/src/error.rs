//! One error enum per use case. The HTTP layer maps each variant to a status and a stable code.

/// The admin reads: [`crate::AdminService::require_admin`], `search_members`, `groups`,
/// `stats`, `audit`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("platform admins only")]
    Forbidden,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The calls on one member: `member`, `block`, `unblock`.
#[derive(Debug, thiserror::Error)]
pub enum AdminMemberError {
    #[error("platform admins only")]
    Forbidden,
    #[error("member not found")]
    NotFound,
    /// An admin may not block themself (they would lock themselves out).
    #[error("you cannot block yourself")]
    OwnAccount,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<AdminError> for AdminMemberError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Forbidden => Self::Forbidden,
            AdminError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

/// What a storage call on one member may refuse.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("member not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<TargetError> for AdminMemberError {
    fn from(e: TargetError) -> Self {
        match e {
            TargetError::NotFound => Self::NotFound,
            TargetError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

/// [`crate::AdminService::grant`] and [`crate::AdminService::revoke`] (the command line).
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("no member has this phone")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<TargetError> for GrantError {
    fn from(e: TargetError) -> Self {
        match e {
            TargetError::NotFound => Self::NotFound,
            TargetError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}
