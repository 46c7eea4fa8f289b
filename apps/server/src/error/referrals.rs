//! Referral codes.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode};

impl From<onboard_referrals::RedeemError> for ApiError {
    fn from(e: onboard_referrals::RedeemError) -> Self {
        use onboard_referrals::RedeemError as E;
        match e {
            E::NotFound => Self::new(
                StatusCode::NOT_FOUND,
                ErrorCode::ReferralCodeNotFound,
                "no member has this referral code",
            ),
            E::OwnCode => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::ReferralSelf,
                "you cannot redeem your own referral code",
            ),
            E::AlreadyRedeemed => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::ReferralAlreadyRedeemed,
                "you have already redeemed a referral code",
            ),
            E::Cycle => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::ReferralCycle,
                "this code's owner was referred, directly or not, by you",
            ),
            E::Unexpected(e) => Self::unexpected(e),
        }
    }
}

impl From<onboard_referrals::ProfileUpdateError> for ApiError {
    fn from(e: onboard_referrals::ProfileUpdateError) -> Self {
        use onboard_members::UpdateProfileError;
        use onboard_referrals::ProfileUpdateError as E;
        match e {
            E::EmailTaken => UpdateProfileError::EmailTaken.into(),
            E::NotFound => UpdateProfileError::NotFound.into(),
            E::Redeem(e) => e.into(),
            E::Unexpected(e) => Self::unexpected(e),
        }
    }
}
