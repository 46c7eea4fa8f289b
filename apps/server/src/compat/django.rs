//! What the two Django seeds (referral-api, connect-hub) share: Django REST Framework's error
//! bodies (`{"field": ["..."]}`, `{"detail": "..."}`, simplejwt's `"code": "token_not_valid"`)
//! and its reading of request fields.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Map, Value, json};

use super::{AuthFailure, BodyError, read_object};

/// An error answer in Django REST Framework's shape.
#[derive(Debug)]
pub struct DrfError {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
    /// The cause of a 500, logged and never shown.
    cause: Option<anyhow::Error>,
}

impl DrfError {
    /// Any status with any body.
    pub fn new(status: StatusCode, body: Value) -> Self {
        Self { status, body, retry_after: None, cause: None }
    }

    /// 400 `{"<field>": ["<message>"]}`: a serializer's field error.
    pub fn field(name: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, json!({ name: [message.into()] }))
    }

    /// `{"detail": "<message>"}`.
    pub fn detail(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, json!({ "detail": message.into() }))
    }

    /// 429 `{"detail": ...}` with `Retry-After`, as DRF's throttles answer.
    pub fn throttled(retry_after_secs: u64) -> Self {
        let secs = retry_after_secs.max(1);
        let mut e = Self::detail(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Request was throttled. Expected available in {secs} seconds."),
        );
        e.retry_after = Some(secs);
        e
    }

    /// 401 for a call without credentials.
    pub fn not_authenticated() -> Self {
        Self::detail(StatusCode::UNAUTHORIZED, "Authentication credentials were not provided.")
    }

    /// 401 simplejwt's answer to a bad access token on an authenticated call.
    pub fn bad_access_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            json!({
                "detail": "Given token not valid for any token type",
                "code": "token_not_valid",
            }),
        )
    }

    /// 401 simplejwt's answer from its verify and refresh views.
    pub fn token_not_valid() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            json!({ "detail": "Token is invalid or expired", "code": "token_not_valid" }),
        )
    }

    /// 403 for a blocked member signing in.
    pub fn blocked() -> Self {
        Self::detail(StatusCode::FORBIDDEN, "This account is blocked.")
    }

    /// 401 simplejwt's answer to a refresh for an inactive (blocked) user.
    pub fn user_inactive() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            json!({ "detail": "User is inactive", "code": "user_inactive" }),
        )
    }

    /// 404 as DRF's generic views answer it.
    pub fn not_found() -> Self {
        Self::detail(StatusCode::NOT_FOUND, "Not found.")
    }

    /// 500: the cause is logged, the client learns nothing of it.
    pub fn unexpected(cause: anyhow::Error) -> Self {
        let mut e = Self::detail(StatusCode::INTERNAL_SERVER_ERROR, "A server error occurred.");
        e.cause = Some(cause);
        e
    }

    /// A body that is no object of fields.
    pub fn body(e: BodyError) -> Self {
        match e {
            BodyError::Malformed(why) => {
                Self::detail(StatusCode::BAD_REQUEST, format!("JSON parse error - {why}"))
            }
            BodyError::NotAnObject(kind) => Self::new(
                StatusCode::BAD_REQUEST,
                json!({
                    "non_field_errors": [format!("Invalid data. Expected a dictionary, but got {kind}.")]
                }),
            ),
        }
    }
}

impl DrfError {
    /// The cause of a 500 (the access log writes it once).
    pub fn cause(&self) -> Option<&anyhow::Error> {
        self.cause.as_ref()
    }
}

impl fmt::Display for DrfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.body)
    }
}

impl ResponseError for DrfError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"api\""),
            ));
        }
        response.json(&self.body)
    }
}

impl From<anyhow::Error> for DrfError {
    fn from(e: anyhow::Error) -> Self {
        Self::unexpected(e)
    }
}

impl From<AuthFailure> for DrfError {
    fn from(e: AuthFailure) -> Self {
        match e {
            AuthFailure::Missing => Self::not_authenticated(),
            AuthFailure::Invalid => Self::bad_access_token(),
            AuthFailure::Unexpected(e) => Self::unexpected(e),
        }
    }
}

/// The fields of a request body, read one by one as a DRF serializer does: every field error
/// is collected, and [`Fields::check`] answers them together.
#[derive(Debug)]
pub struct Fields {
    data: Map<String, Value>,
    errors: Map<String, Value>,
}

impl Fields {
    /// Reads the body of `req`.
    pub fn read(req: &HttpRequest, body: &web::Bytes) -> Result<Self, DrfError> {
        let data = read_object(req.headers(), body).map_err(DrfError::body)?;
        Ok(Self { data, errors: Map::new() })
    }

    /// The raw value of a field (null counts as absent).
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.data.get(name).filter(|v| !v.is_null())
    }

    /// Records an error for `name` (the first one per field).
    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.entry(name.to_owned()).or_insert_with(|| json!([message.into()]));
    }

    /// A string field (a number is taken as its text); `None` when absent, null or blank.
    pub fn text(&mut self, name: &str) -> Option<String> {
        match super::text(self.data.get(name)) {
            Ok(v) => v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
            Err(super::NotText) => {
                self.error(name, "Not a valid string.");
                None
            }
        }
    }

    /// A string field that must be there.
    pub fn required_text(&mut self, name: &str) -> Option<String> {
        let present = self.data.get(name).is_some_and(|v| !v.is_null());
        let value = self.text(name);
        if value.is_none() && !self.errors.contains_key(name) {
            self.error(
                name,
                if present { "This field may not be blank." } else { "This field is required." },
            );
        }
        value
    }

    /// 400 with every field error recorded, if any.
    pub fn check(&mut self) -> Result<(), DrfError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(DrfError::new(
                StatusCode::BAD_REQUEST,
                Value::Object(std::mem::take(&mut self.errors)),
            ))
        }
    }
}
