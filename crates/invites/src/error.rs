//! One error enum per use case, and the refusals storage may answer. The HTTP layer maps each
//! use-case variant to a status and a stable code (noted on each variant).
//!
//! `NotFound` on the group-scoped calls means "no such group *for the caller*" (unknown, not a
//! member, or pending), as in the groups domain: nobody learns that a group exists by being
//! refused.

// ---------------------------------------------------------------------------------------------
// Use cases
// ---------------------------------------------------------------------------------------------

/// [`crate::InvitesService::create`].
#[derive(Debug, thiserror::Error)]
pub enum CreateInviteError {
    /// 404: no such group for the caller.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: the caller lacks `invites.manage`, or may not grant the role (`owner`
    /// by a non-owner, or a role holding a permission the caller lacks).
    #[error("you may not invite with this role here")]
    Forbidden,
    /// 400 `invalid_request`: neither a phone nor an e-mail.
    #[error("an invite needs a phone or an e-mail")]
    ContactRequired,
    /// 400 `unknown_role`: the group has no such role.
    #[error("the group has no such role")]
    UnknownRole,
    /// 409 `already_member`: the person (by phone or e-mail) is an active member already.
    #[error("already an active member of this group")]
    AlreadyMember,
    /// 409 `invite_pending`: a pending, unexpired invite to this group names the same phone or
    /// e-mail.
    #[error("a pending invite to this group names the same phone or e-mail")]
    InvitePending,
    /// 402 `insufficient_sms_credit`: `BILL_INVITE_SMS=true` and the group's SMS credit does
    /// not cover the invite SMS; nothing was created and nothing sent.
    #[error("the group's SMS credit does not cover the invite SMS")]
    InsufficientSmsCredit,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::InvitesService::list`].
#[derive(Debug, thiserror::Error)]
pub enum ListInvitesError {
    /// 404: no such group for the caller.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: the caller lacks `invites.manage`.
    #[error("listing invites needs the invites.manage permission")]
    Forbidden,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::InvitesService::revoke`].
#[derive(Debug, thiserror::Error)]
pub enum RevokeInviteError {
    /// 404: no such group for the caller.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: the caller lacks `invites.manage`.
    #[error("revoking invites needs the invites.manage permission")]
    Forbidden,
    /// 404 `invite_not_found`: the group has no invite with this id.
    #[error("invite not found")]
    InviteNotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::InvitesService::preview`].
#[derive(Debug, thiserror::Error)]
pub enum PreviewInviteError {
    /// 404 `invite_not_found`: the code is unknown, used, revoked or expired.
    #[error("invite not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::InvitesService::accept`].
#[derive(Debug, thiserror::Error)]
pub enum AcceptInviteError {
    /// 404 `invite_not_found`: the code is unknown, used, revoked or expired (or another
    /// accept of it won).
    #[error("invite not found")]
    NotFound,
    /// 403 `invite_phone_mismatch`: the invite names a phone that is not the caller's. The
    /// code stays usable.
    #[error("the invite is for another phone")]
    PhoneMismatch,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

// ---------------------------------------------------------------------------------------------
// Storage refusals
// ---------------------------------------------------------------------------------------------

/// What [`crate::ports::InviteRepository::create`] may refuse. A refusal writes nothing.
#[derive(Debug, thiserror::Error)]
pub enum CreateInviteRefusal {
    /// A live member with the invite's phone or e-mail is an active member of the group.
    #[error("already an active member of this group")]
    AlreadyMember,
    /// A pending, unexpired invite to the group names the same phone or e-mail.
    #[error("a pending invite to this group names the same phone or e-mail")]
    InvitePending,
    /// The group's SMS credit does not cover the invite SMS (`BILL_INVITE_SMS=true`).
    #[error("the group's SMS credit does not cover the invite SMS")]
    InsufficientCredit,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What [`crate::ports::InviteRepository::accept`] may refuse. A refusal writes nothing.
#[derive(Debug, thiserror::Error)]
pub enum AcceptRefusal {
    /// No such invite, or it is no longer pending, or it has expired.
    #[error("no pending, unexpired invite with this id")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

// ---------------------------------------------------------------------------------------------
// From the groups domain's gate
// ---------------------------------------------------------------------------------------------

impl From<onboard_groups::AuthorizeError> for CreateInviteError {
    fn from(e: onboard_groups::AuthorizeError) -> Self {
        match e {
            onboard_groups::AuthorizeError::NotFound => Self::NotFound,
            onboard_groups::AuthorizeError::Forbidden(_) => Self::Forbidden,
            onboard_groups::AuthorizeError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<onboard_groups::GrantRoleError> for CreateInviteError {
    fn from(e: onboard_groups::GrantRoleError) -> Self {
        match e {
            onboard_groups::GrantRoleError::UnknownRole => Self::UnknownRole,
            onboard_groups::GrantRoleError::Forbidden => Self::Forbidden,
            onboard_groups::GrantRoleError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<onboard_groups::AuthorizeError> for ListInvitesError {
    fn from(e: onboard_groups::AuthorizeError) -> Self {
        match e {
            onboard_groups::AuthorizeError::NotFound => Self::NotFound,
            onboard_groups::AuthorizeError::Forbidden(_) => Self::Forbidden,
            onboard_groups::AuthorizeError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<onboard_groups::AuthorizeError> for RevokeInviteError {
    fn from(e: onboard_groups::AuthorizeError) -> Self {
        match e {
            onboard_groups::AuthorizeError::NotFound => Self::NotFound,
            onboard_groups::AuthorizeError::Forbidden(_) => Self::Forbidden,
            onboard_groups::AuthorizeError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}
