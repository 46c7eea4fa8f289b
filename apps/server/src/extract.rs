//! Request extractors: the authenticated caller and client details.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use onboard_members::{ClientInfo, Principal};

use crate::error::ApiError;
use crate::state::AppState;

/// The caller of an authenticated route: a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        let req = req.clone();
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("no app state")))?;
            let token = token.ok_or_else(ApiError::unauthorized)?;
            let principal = state.members.authenticate(&token).await?;
            crate::telemetry::record_member(&req, principal.member_id);
            Ok(Auth(principal))
        })
    }
}

/// The bearer token of the `Authorization` header, if any.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_owned())
}

/// Client IP and user agent. The IP comes from `X-Forwarded-For` only with `TRUST_PROXY`.
pub fn client_info(req: &HttpRequest, state: &AppState) -> ClientInfo {
    let forwarded = state
        .trust_proxy
        .then(|| {
            req.headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|ip| ip.trim().to_owned())
                .filter(|ip| !ip.is_empty())
        })
        .flatten();
    let ip = forwarded.or_else(|| req.peer_addr().map(|a| a.ip().to_string()));
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect());
    ClientInfo { ip, user_agent }
}

/// A JSON request body that must be an object. actix's `Json` (configured in `startup/mod.rs`:
/// size limit, content type, problem+json errors) reads it as raw JSON text; serde alone would
/// also accept an array of the fields in order (`["+7917…"]`), which no client means. Reading it
/// raw first checks the shape without building a tree of the whole body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let raw = web::Json::<Box<serde_json::value::RawValue>>::from_request(req, payload);
        Box::pin(async move {
            let raw = raw.await?.into_inner();
            // `null` goes on to serde: an optional body reads it as none, any other is a 400.
            if !raw.get().starts_with('{') && raw.get() != "null" {
                return Err(ApiError::bad_request("the body must be a JSON object").into());
            }
            serde_json::from_str(raw.get()).map(JsonBody).map_err(|e| {
                crate::error::json_error(actix_web::error::JsonPayloadError::Deserialize(e)).into()
            })
        })
    }
}
