//! The HTTP APIs of the three services Onboard replaces (`shared/spec/compat.md`), each under
//! its own prefix and switched by `COMPAT_APIS`: thin routes over the same domain services as
//! `/api/v1`, answering in each seed's own shapes (Django REST Framework and simplejwt for
//! referral-api and connect-hub, Spring for member_invitation) instead of problem+json.

pub mod connect_hub;
pub mod django;
pub mod member_invitation;
pub mod referral_api;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, Handler, HttpRequest, Responder, web};
use onboard_members::{AuthError, Principal};
use serde_json::{Map, Value};

use crate::config::CompatApis;
use crate::extract::bearer;
use crate::state::AppState;

/// Mounts the seed APIs `apis` names.
pub fn configure(cfg: &mut web::ServiceConfig, apis: CompatApis) {
    if apis.referral_api {
        cfg.service(web::scope(Seed::ReferralApi.prefix()).configure(referral_api::routes));
    }
    if apis.connect_hub {
        cfg.service(web::scope(Seed::ConnectHub.prefix()).configure(connect_hub::routes));
    }
    if apis.member_invitation {
        cfg.service(
            web::scope(Seed::MemberInvitation.prefix()).configure(member_invitation::routes),
        );
    }
}

/// The seed API a route belongs to (the shape of its 405 answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    ReferralApi,
    ConnectHub,
    MemberInvitation,
}

impl Seed {
    /// The prefix it is served under.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::ReferralApi => "/compat/referral-api",
            Self::ConnectHub => "/compat/connect-hub",
            Self::MemberInvitation => "/compat/member-invitation",
        }
    }
}

/// Where a seed API's routes go: the app, which serves them, or a [`RouteList`], which names
/// them (for the 405 answers, from the very list the app serves).
pub trait Routes {
    /// Routes `method path` (relative to the API's prefix) to `handler`.
    fn add<F, Args>(&mut self, method: Method, path: &str, handler: F)
    where
        F: Handler<Args> + Clone,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static;
}

impl Routes for web::ServiceConfig {
    fn add<F, Args>(&mut self, method: Method, path: &str, handler: F)
    where
        F: Handler<Args> + Clone,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(path, web::method(method).to(handler));
    }
}

/// The methods and paths of a seed API's routes.
#[derive(Debug, Default)]
pub struct RouteList(pub Vec<(Method, String)>);

impl Routes for RouteList {
    fn add<F, Args>(&mut self, method: Method, path: &str, _handler: F)
    where
        F: Handler<Args> + Clone,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.0.push((method, path.to_owned()));
    }
}

/// Every route of the seed APIs `apis` names: the seed, the method and the full path.
pub fn route_list(apis: CompatApis) -> Vec<(Seed, Method, String)> {
    let mut all = Vec::new();
    let mut take = |seed: Seed, routes: fn(&mut RouteList)| {
        let mut list = RouteList::default();
        routes(&mut list);
        all.extend(list.0.into_iter().map(|(m, p)| (seed, m, format!("{}{p}", seed.prefix()))));
    };
    if apis.referral_api {
        take(Seed::ReferralApi, referral_api::routes);
    }
    if apis.connect_hub {
        take(Seed::ConnectHub, connect_hub::routes);
    }
    if apis.member_invitation {
        take(Seed::MemberInvitation, member_invitation::routes);
    }
    all
}

/// Routes `method path` with and without a trailing slash: Django's URLs end in one, and
/// clients send either.
pub fn slash_optional<R, F, Args>(r: &mut R, method: Method, path: &str, handler: F)
where
    R: Routes,
    F: Handler<Args> + Clone,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    let bare = path.trim_end_matches('/');
    r.add(method.clone(), bare, handler.clone());
    r.add(method, &format!("{bare}/"), handler);
}

/// Why a request body is not an object of fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON (or not a form) at all.
    Malformed(String),
    /// JSON, but not an object: the name of what it is (`list`, `str`, ...).
    NotAnObject(&'static str),
}

/// Reads a request body the way the seeds' frameworks do: a JSON object, or an
/// `application/x-www-form-urlencoded` form (fields as strings). An empty body has no fields.
pub fn read_object(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/x-www-form-urlencoded"));
    if form {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| BodyError::Malformed(e.to_string()))?;
        return Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body).map_err(|e| BodyError::Malformed(e.to_string()))? {
        Value::Object(map) => Ok(map),
        Value::Array(_) => Err(BodyError::NotAnObject("list")),
        Value::String(_) => Err(BodyError::NotAnObject("str")),
        Value::Number(n) if n.is_f64() => Err(BodyError::NotAnObject("float")),
        Value::Number(_) => Err(BodyError::NotAnObject("int")),
        Value::Bool(_) => Err(BodyError::NotAnObject("bool")),
        Value::Null => Err(BodyError::NotAnObject("NoneType")),
    }
}

/// A field that should be text holds something else (an object, a list, a boolean).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotText;

/// The text of a field that the seeds read as a string: a JSON string, or a number (Django's
/// `CharField` takes both). `Ok(None)` when absent or null.
pub fn text(value: Option<&Value>) -> Result<Option<String>, NotText> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(NotText),
    }
}

/// A one-time code as the seeds' clients send it: a JSON number or a string of digits. The
/// seeds read codes as integers, so a code with leading zeros arrives shorter (`0123` as
/// `123`): anything shorter than `len` digits is left-padded with zeros. `None` when the value
/// cannot be a code (another type, a negative or fractional number, a non-digit string).
pub fn otp_code(value: &Value, len: u8) -> Option<String> {
    let digits = match value {
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.to_owned()
        }
        _ => return None,
    };
    Some(format!("{digits:0>width$}", width = usize::from(len)))
}

/// Why a compat call is not authenticated.
#[derive(Debug)]
pub enum AuthFailure {
    /// No `Authorization: Bearer ...` header.
    Missing,
    /// A token that is invalid, expired or revoked.
    Invalid,
    Unexpected(anyhow::Error),
}

/// The caller of a compat call, by the same check as `/api/v1` (the `Auth` extractor).
pub async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Principal, AuthFailure> {
    let token = bearer(req).ok_or(AuthFailure::Missing)?;
    state.members.authenticate(&token).await.map_err(|e| match e {
        AuthError::Unauthorized => AuthFailure::Invalid,
        AuthError::Unexpected(e) => AuthFailure::Unexpected(e),
    })
}

/// Whether the caller is a platform admin (who alone may list every user and see every user
/// whole).
pub async fn is_platform_admin(state: &AppState, caller: &Principal) -> anyhow::Result<bool> {
    state.admin.is_platform_admin(caller.member_id).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn a_code_sent_as_a_number_gets_its_leading_zeros_back() {
        assert_eq!(otp_code(&json!(123), 4).as_deref(), Some("0123"));
        assert_eq!(otp_code(&json!(7), 4).as_deref(), Some("0007"));
        assert_eq!(otp_code(&json!(4321), 4).as_deref(), Some("4321"));
        assert_eq!(otp_code(&json!(12345), 6).as_deref(), Some("012345"));
        assert_eq!(otp_code(&json!("123"), 4).as_deref(), Some("0123"));
        assert_eq!(otp_code(&json!(" 0123 "), 4).as_deref(), Some("0123"));
    }

    #[test]
    fn a_longer_code_stays_as_sent_and_a_code_must_be_digits() {
        assert_eq!(otp_code(&json!(123_456), 4).as_deref(), Some("123456"));
        for bad in [json!(-1), json!(1.5), json!("12a4"), json!(""), json!(null), json!([1])] {
            assert_eq!(otp_code(&bad, 4), None, "{bad}");
        }
    }

    #[test]
    fn bodies_are_json_objects_or_forms() {
        let json_headers = HeaderMap::new();
        assert_eq!(read_object(&json_headers, b"").unwrap(), Map::new());
        assert_eq!(read_object(&json_headers, br#"{"a":1}"#).unwrap()["a"], json!(1));
        assert_eq!(read_object(&json_headers, b"[1]"), Err(BodyError::NotAnObject("list")));
        assert!(matches!(read_object(&json_headers, b"{"), Err(BodyError::Malformed(_))));
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let map = read_object(&form, b"phone=%2B79174445566&code=0123").unwrap();
        assert_eq!(map["phone"], json!("+79174445566"));
        assert_eq!(map["code"], json!("0123"));
    }
}
