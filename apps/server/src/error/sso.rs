//! Single sign-on.

use actix_web::http::StatusCode;

use super::members::member_blocked;
use super::{ApiError, ErrorCode};

use onboard_sso as sso;

fn sso_provider_unknown() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::SsoProviderUnknown,
        "no SSO provider by this name",
    )
}

/// 502 `sso_provider_error`; the cause is logged with the request (the provider's fault, or an
/// attacker's forged callback), never shown.
fn sso_provider_error(cause: anyhow::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        ErrorCode::SsoProviderError,
        "the identity provider's answer could not be used (code exchange, signature or claims)",
    )
    .with_cause(cause)
}

/// 401 `login_code_invalid`.
pub fn login_code_invalid() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::LoginCodeInvalid,
        "unknown, used or expired login code",
    )
}

map_errors! {
    sso::StartError {
        UnknownProvider => sso_provider_unknown(),
        RedirectUriNotAllowed => ApiError::invalid_field(
            ErrorCode::RedirectUriNotAllowed,
            "redirect_uri",
            "not one of the allowed redirect URIs (SSO_REDIRECT_URIS, exact match)",
        ),
        Provider(cause) => sso_provider_error(cause),
    }
    sso::CallbackError {
        UnknownProvider => sso_provider_unknown(),
        StateInvalid => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::SsoStateInvalid,
            "unknown, used or expired state: start the login again",
        ),
        Provider(cause) => sso_provider_error(cause),
    }
    sso::ExchangeError { LoginCodeInvalid => login_code_invalid(), Blocked => member_blocked() }
}
