//! `/api/v1/auth/sso/...`: OpenID Connect login (start, the provider's callback, and the
//! login code exchange).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::SignInResponse;
use crate::error::{ApiError, Problem, login_code_invalid};
use crate::extract::{JsonBody, client_info};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// A 302 to `location` that no cache keeps (it carries single-use values).
fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// Where the browser goes back to with `?login_code=`: one of `SSO_REDIRECT_URIS`, exactly.
    pub redirect_uri: Option<String>,
}

/// Starts a login with a provider: a redirect to its authorization page (authorization code
/// flow, PKCE S256, `state` and `nonce` single use for 10 minutes).
#[utoipa::path(
    tag = "auth",
    params(("provider" = String, Path, description = "A configured provider (`SSO_PROVIDERS`)"), StartQuery),
    responses(
        (status = 302, description = "To the provider's authorization page (`Location`)"),
        (status = 400, description = "`redirect_uri_not_allowed`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`sso_provider_unknown`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`sso_provider_error` (the provider's discovery failed)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/auth/sso/{provider}/start")]
pub async fn sso_start(
    state: web::Data<AppState>,
    provider: web::Path<String>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, ApiError> {
    let redirect_uri = query.redirect_uri.as_deref().unwrap_or_default();
    let url = state.sso.start(&provider, redirect_uri).await?;
    Ok(found(&url))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` the login started with.
    pub state: Option<String>,
    /// The provider's error, instead of a code (`access_denied`, ...).
    pub error: Option<String>,
}

/// Where the provider sends the browser back: the `state` is used up, the code exchanged and
/// the ID token checked (signature, issuer, audience, expiry, nonce); then a redirect to the
/// app's `redirect_uri` with `?login_code=` (single use, 60 s). Nothing is created before the
/// exchange.
#[utoipa::path(
    tag = "auth",
    params(("provider" = String, Path, description = "A configured provider"), CallbackQuery),
    responses(
        (status = 302, description = "To the app's redirect URI with `login_code`"),
        (status = 401, description = "`sso_state_invalid` (unknown, used or expired state)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`sso_provider_unknown`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`sso_provider_error` (exchange, signature, claims or nonce failure)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/auth/sso/{provider}/callback")]
pub async fn sso_callback(
    state: web::Data<AppState>,
    provider: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let to = state
        .sso
        .callback(&provider, query.code.as_deref(), query.state.as_deref(), query.error.as_deref())
        .await?;
    Ok(found(&to))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    /// The `login_code` the callback handed to the app.
    pub login_code: String,
}

/// Exchanges a login code (once) for tokens: the provider's subject is linked to a member (an
/// existing link; else the member with the same verified phone; else the same verified
/// e-mail; else a new member, whose phone may be null).
#[utoipa::path(
    tag = "auth",
    request_body = ExchangeRequest,
    responses(
        (status = 200, description = "Signed in", body = SignInResponse),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`login_code_invalid` (unknown, used or expired)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`member_blocked`: a platform admin blocked the member", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/sso/exchange")]
pub async fn sso_exchange(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<ExchangeRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = body.into_inner().login_code;
    if code.is_empty() || code.len() > 256 {
        return Err(login_code_invalid());
    }
    let sign_in = state.sso.exchange(&code, &client_info(&req, &state)).await?;
    Ok(HttpResponse::Ok().json(SignInResponse {
        tokens: sign_in.tokens.into(),
        member: sign_in.member.into(),
        created: sign_in.created,
    }))
}

/// Registers the single sign-on routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(sso_start).service(sso_callback).service(sso_exchange);
}
