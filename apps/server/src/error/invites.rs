//! Invitations.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode, conflict, forbidden, forbidden_code, group_not_found};

use onboard_invites as inv;

/// 404 `invite_not_found`: unknown, used, revoked or expired alike.
pub fn invite_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::InviteNotFound,
        "no live invite has this code (unknown, used, revoked or expired)",
    )
}

map_errors! {
    inv::CreateInviteError {
        NotFound => group_not_found(),
        Forbidden => forbidden("inviting needs invites.manage, and owner invites need an owner"),
        ContactRequired => ApiError::invalid_field(ErrorCode::InvalidRequest, "phone", "an invite needs a phone or an e-mail"),
        UnknownRole => ApiError::invalid_field(ErrorCode::InvalidRequest, "role", "the group has no such role"),
        AlreadyMember => conflict(ErrorCode::AlreadyMember, "this person is already a member of the group"),
        InvitePending => conflict(ErrorCode::InvitePending, "this person already has a pending invite to the group"),
        InsufficientSmsCredit => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            ErrorCode::InsufficientSmsCredit,
            "the group's SMS credit does not cover the invite SMS; nothing was created or sent",
        ),
    }
    inv::ListInvitesError {
        NotFound => group_not_found(),
        Forbidden => forbidden("listing invites needs invites.manage"),
    }
    inv::RevokeInviteError {
        NotFound => group_not_found(),
        Forbidden => forbidden("revoking invites needs invites.manage"),
        InviteNotFound => ApiError::not_found("no such invite in this group"),
    }
    inv::PreviewInviteError { NotFound => invite_not_found() }
    inv::AcceptInviteError {
        NotFound => invite_not_found(),
        PhoneMismatch => forbidden_code(ErrorCode::InvitePhoneMismatch, "this invite is for another phone number"),
    }
}
