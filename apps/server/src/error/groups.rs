//! Groups, roles and memberships.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode, conflict, forbidden, forbidden_code, group_not_found};

pub(super) fn last_owner() -> ApiError {
    conflict(
        ErrorCode::LastOwner,
        "the last owner can be neither demoted nor removed, and cannot leave",
    )
}

/// 404 `role_not_found`.
pub fn role_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::RoleNotFound,
        "the group has no role by this name",
    )
}

fn role_builtin() -> ApiError {
    conflict(ErrorCode::RoleBuiltin, "owner, admin and member are built-in roles")
}

fn unknown_permission(name: &str) -> ApiError {
    ApiError::invalid_field(
        ErrorCode::InvalidRequest,
        "permissions",
        format!("unknown permission {name:?}"),
    )
}
use onboard_groups as g;

map_errors! {
    g::CreateGroupError { SlugTaken => conflict(ErrorCode::SlugTaken, "another group has this slug") }
    g::ViewGroupError { NotFound => group_not_found() }
    g::UpdateGroupError {
        NotFound => group_not_found(),
        Forbidden => forbidden("changing the group needs the group.manage permission"),
    }
    g::DeleteGroupError {
        NotFound => group_not_found(),
        Forbidden => forbidden("only an owner may delete the group"),
    }
    g::CreateRoleError {
        NotFound => group_not_found(),
        Forbidden => forbidden("creating this role needs group.manage and every permission it holds"),
        RoleBuiltin => role_builtin(),
        RoleExists => conflict(ErrorCode::RoleExists, "the group already has a role by this name"),
        UnknownPermission(name) => unknown_permission(&name),
    }
    g::UpdateRoleError {
        NotFound => group_not_found(),
        Forbidden => forbidden("changing this role needs group.manage and every permission it holds"),
        RoleBuiltin => role_builtin(),
        RoleNotFound => role_not_found(),
        UnknownPermission(name) => unknown_permission(&name),
    }
    g::DeleteRoleError {
        NotFound => group_not_found(),
        Forbidden => forbidden("deleting this role needs group.manage and every permission it holds"),
        RoleBuiltin => role_builtin(),
        RoleNotFound => role_not_found(),
    }
    g::ListMembersError {
        NotFound => group_not_found(),
        Forbidden => forbidden("listing join requests needs the members.manage permission"),
    }
    g::ChangeRoleError {
        NotFound => group_not_found(),
        MemberNotFound => ApiError::not_found("no such active member in this group"),
        Forbidden => forbidden("you may not give this member this role"),
        CannotChangeOwnRole => conflict(ErrorCode::CannotChangeOwnRole, "nobody changes their own role"),
        LastOwner => last_owner(),
        UnknownRole => ApiError::invalid_field(ErrorCode::InvalidRequest, "role", "the group has no such role"),
    }
    g::RemoveMemberError {
        NotFound => group_not_found(),
        MemberNotFound => ApiError::not_found("no such active member in this group"),
        Forbidden => forbidden("you may not remove this member"),
        LastOwner => last_owner(),
    }
    g::JoinError {
        NotFound => group_not_found(),
        AlreadyMember => conflict(ErrorCode::AlreadyMember, "already a member of this group"),
    }
    g::DecideRequestError {
        NotFound => group_not_found(),
        Forbidden => forbidden("deciding join requests needs the members.manage permission"),
        RequestNotFound => ApiError::not_found("no pending join request from this member"),
    }
    g::SetCurrentGroupError {
        NotFound => group_not_found(),
        NotAMember => forbidden_code(ErrorCode::NotAMember, "not an active member of this group"),
    }
}
