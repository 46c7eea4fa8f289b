//! One error enum per use case. The HTTP layer maps each variant to a status and a stable code.

/// [`crate::MembersService::request_otp`].
#[derive(Debug, thiserror::Error)]
pub enum RequestOtpError {
    #[error("too many code requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::MembersService::verify_otp`].
#[derive(Debug, thiserror::Error)]
pub enum VerifyOtpError {
    #[error("referral code not found")]
    ReferralCodeNotFound,
    #[error("wrong code; {attempts_left} attempts left")]
    InvalidCode { attempts_left: u32 },
    #[error("no live code for this phone")]
    Expired,
    #[error("too many failed attempts")]
    TooManyAttempts { retry_after_secs: Option<u64> },
    #[error("too many verifications from this client; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
    #[error("the member is blocked")]
    Blocked,
}

/// What [`crate::ports::MemberRepository::sign_in`] may refuse.
#[derive(Debug, thiserror::Error)]
pub enum SignInStoreError {
    #[error("the new member's referral code is taken")]
    ReferralCodeCollision,
    #[error("referral code not found")]
    ReferralCodeNotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
    /// The member holding the phone is blocked: no session opened.
    #[error("the member is blocked")]
    Blocked,
}

/// [`crate::MembersService::refresh`].
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("refresh token invalid")]
    Invalid,
    #[error("refresh token reused; the session is revoked")]
    Reused,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
    #[error("the member is blocked")]
    Blocked,
}

/// [`crate::MembersService::authenticate`] and [`crate::MembersService::verify_token`].
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing, invalid, expired or revoked token")]
    Unauthorized,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::MembersService::revoke_session`] and [`crate::MembersService::get_member`].
#[derive(Debug, thiserror::Error)]
pub enum NotFoundError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::MembersService::update_me`].
#[derive(Debug, thiserror::Error)]
pub enum UpdateProfileError {
    #[error("the e-mail belongs to another member")]
    EmailTaken,
    #[error("member not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// [`crate::MembersService::delete_me`].
#[derive(Debug, thiserror::Error)]
pub enum DeleteMemberError {
    #[error("sole owner of a group that has other members")]
    LastOwner,
    #[error("member not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
