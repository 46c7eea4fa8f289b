//! One error enum per use case, and the refusals storage may answer. The HTTP layer maps each
//! use-case variant to a status and a stable code (noted on each variant).
//!
//! Everywhere, `NotFound` means "no such group *for the caller*": the group does not exist, or
//! the caller is not an active member of it (a pending member is a member nowhere). Nobody
//! learns that a group exists by being refused.

// ---------------------------------------------------------------------------------------------
// Use cases
// ---------------------------------------------------------------------------------------------

/// [`crate::GroupsService::create_group`]; also what
/// [`crate::ports::GroupRepository::create`] answers.
#[derive(Debug, thiserror::Error)]
pub enum CreateGroupError {
    /// 409 `slug_taken`.
    #[error("another group has this slug")]
    SlugTaken,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::group`], [`crate::GroupsService::roles`] and
/// [`crate::GroupsService::standing`].
#[derive(Debug, thiserror::Error)]
pub enum ViewGroupError {
    /// 404.
    #[error("group not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::update_group`].
#[derive(Debug, thiserror::Error)]
pub enum UpdateGroupError {
    /// 404.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: the caller lacks `group.manage`.
    #[error("changing the group needs the group.manage permission")]
    Forbidden,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::delete_group`].
#[derive(Debug, thiserror::Error)]
pub enum DeleteGroupError {
    /// 404.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: only an owner deletes a group.
    #[error("only an owner may delete the group")]
    Forbidden,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::create_role`].
#[derive(Debug, thiserror::Error)]
pub enum CreateRoleError {
    /// 404.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: the caller lacks `group.manage`, or the role would hold a permission
    /// the caller does not hold.
    #[error("creating this role needs group.manage and every permission it holds")]
    Forbidden,
    /// 409 `role_builtin`.
    #[error("owner, admin and member are built-in roles")]
    RoleBuiltin,
    /// 409 `role_exists`.
    #[error("the group already has a role by this name")]
    RoleExists,
    /// 400, naming the permission.
    #[error("unknown permission {0:?}")]
    UnknownPermission(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::update_role`].
#[derive(Debug, thiserror::Error)]
pub enum UpdateRoleError {
    /// 404.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: the caller lacks `group.manage`, or the role holds (or would hold) a
    /// permission the caller does not hold.
    #[error("changing this role needs group.manage and every permission it holds")]
    Forbidden,
    /// 409 `role_builtin`.
    #[error("built-in roles cannot be changed")]
    RoleBuiltin,
    /// 404 `role_not_found`.
    #[error("the group has no role by this name")]
    RoleNotFound,
    /// 400, naming the permission.
    #[error("unknown permission {0:?}")]
    UnknownPermission(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::delete_role`].
#[derive(Debug, thiserror::Error)]
pub enum DeleteRoleError {
    /// 404.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: the caller lacks `group.manage`, or the role holds a permission the
    /// caller does not hold.
    #[error("deleting this role needs group.manage and every permission it holds")]
    Forbidden,
    /// 409 `role_builtin`.
    #[error("built-in roles cannot be deleted")]
    RoleBuiltin,
    /// 404 `role_not_found`.
    #[error("the group has no role by this name")]
    RoleNotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::members`] and [`crate::GroupsService::join_requests`].
#[derive(Debug, thiserror::Error)]
pub enum ListMembersError {
    /// 404.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: pending members (join requests) are listed only to `members.manage`.
    #[error("listing join requests needs the members.manage permission")]
    Forbidden,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::change_role`].
#[derive(Debug, thiserror::Error)]
pub enum ChangeRoleError {
    /// 404: no such group for the caller.
    #[error("group not found")]
    NotFound,
    /// 404 `member_not_found`: the target is not an active member of the group.
    #[error("no such active member in this group")]
    MemberNotFound,
    /// 403 `forbidden`: the caller lacks `members.manage`; or grants `owner`, or changes an
    /// owner's role, without being an owner; or grants or takes away a role holding a
    /// permission the caller does not hold.
    #[error("you may not change this member's role to this role")]
    Forbidden,
    /// 409 `cannot_change_own_role`.
    #[error("nobody changes their own role")]
    CannotChangeOwnRole,
    /// 409 `last_owner`: the target is the group's last owner.
    #[error("the last owner cannot be demoted")]
    LastOwner,
    /// 400 `unknown_role`.
    #[error("the group has no such role")]
    UnknownRole,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::remove_member`] and [`crate::GroupsService::leave`].
#[derive(Debug, thiserror::Error)]
pub enum RemoveMemberError {
    /// 404: no such group for the caller.
    #[error("group not found")]
    NotFound,
    /// 404 `member_not_found`: the target is not an active member of the group.
    #[error("no such active member in this group")]
    MemberNotFound,
    /// 403 `forbidden`: removing another member needs `members.manage`; removing an owner
    /// needs the caller to be an owner; removing a member whose role holds a permission the
    /// caller does not hold is refused.
    #[error("you may not remove this member")]
    Forbidden,
    /// 409 `last_owner`: the last owner can neither be removed nor leave.
    #[error("the last owner can neither be removed nor leave")]
    LastOwner,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::join`].
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// 404: no group has this slug.
    #[error("group not found")]
    NotFound,
    /// 409 `already_member`.
    #[error("already an active member of this group")]
    AlreadyMember,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::approve`] and [`crate::GroupsService::reject`].
#[derive(Debug, thiserror::Error)]
pub enum DecideRequestError {
    /// 404: no such group for the caller.
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: deciding join requests needs `members.manage`.
    #[error("deciding join requests needs the members.manage permission")]
    Forbidden,
    /// 404 `join_request_not_found`: the member has no pending request (any more: a
    /// concurrent decision may have settled it).
    #[error("no pending join request from this member")]
    RequestNotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::set_current_group`]; also what
/// [`crate::ports::GroupRepository::set_current_group`] answers.
#[derive(Debug, thiserror::Error)]
pub enum SetCurrentGroupError {
    /// 404: no group has this slug.
    #[error("group not found")]
    NotFound,
    /// 403 `not_a_member`: the caller is not an active member (pending counts as not).
    #[error("not an active member of this group")]
    NotAMember,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::authorize`]: the check other domains (invites, billing, messaging)
/// make before acting in a group.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// 404: no such group for the caller (unknown, not a member, or pending).
    #[error("group not found")]
    NotFound,
    /// 403 `forbidden`: an active member without the permission.
    #[error("this needs the {0} permission")]
    Forbidden(crate::model::Permission),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::GroupsService::grantable_role`].
#[derive(Debug, thiserror::Error)]
pub enum GrantRoleError {
    /// 400 `unknown_role`: the group has no such role.
    #[error("the group has no such role")]
    UnknownRole,
    /// 403 `forbidden`: `owner` is granted only by an owner, and a role holding a permission
    /// the granter does not hold is not theirs to give.
    #[error("you may not grant this role")]
    Forbidden,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

// ---------------------------------------------------------------------------------------------
// Storage refusals
// ---------------------------------------------------------------------------------------------

/// What the custom-role methods of [`crate::ports::GroupRepository`] may refuse. A refusal
/// writes nothing.
#[derive(Debug, thiserror::Error)]
pub enum RoleRefusal {
    /// The group already has a role by this name (create).
    #[error("the group already has a role by this name")]
    Exists,
    /// The group has no custom role by this name (update, delete).
    #[error("the group has no custom role by this name")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What [`crate::ports::GroupRepository::change_role`] may refuse. A refusal writes nothing.
#[derive(Debug, thiserror::Error)]
pub enum ChangeRoleRefusal {
    /// The target is not an active member of the group.
    #[error("no such active member")]
    MemberNotFound,
    /// The target's role is no longer the one the service judged (a concurrent change).
    #[error("the member's role changed meanwhile")]
    RoleChanged,
    /// The new role is neither built in nor a custom role of the group.
    #[error("the group has no such role")]
    UnknownRole,
    /// The change would leave the group without an active owner.
    #[error("the group's last owner")]
    LastOwner,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What [`crate::ports::GroupRepository::remove`] may refuse. A refusal writes nothing.
#[derive(Debug, thiserror::Error)]
pub enum RemoveRefusal {
    /// The target is not an active member of the group.
    #[error("no such active member")]
    MemberNotFound,
    /// The target's role is no longer the one the service judged (a concurrent change).
    #[error("the member's role changed meanwhile")]
    RoleChanged,
    /// The removal would leave the group without an active owner.
    #[error("the group's last owner")]
    LastOwner,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
