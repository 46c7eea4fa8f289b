//! What the two Django seeds (referral-api, connect-hub) share: Django REST Framework's error
//! bodies (`{"field": ["..."]}`, `{"detail": "..."}`, simplejwt's `"code": "token_not_valid"`)
//! and its reading of request fields.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Map, Value, json};

use super::{AuthFailure, BodyError, read_object};

/// The texts a seed's clients read in its error bodies, in the seed's language: what Django,
/// Django REST Framework, simplejwt and django-phonenumber-field print under its
/// `LANGUAGE_CODE` (`docs/compat.md` lists every one).
#[derive(Debug)]
pub struct DrfTexts {
    /// "This field is required."
    pub required: &'static str,
    /// "This field may not be blank."
    pub blank: &'static str,
    /// "Not a valid string."
    pub not_a_string: &'static str,
    /// "A valid integer is required."
    pub integer: &'static str,
    /// "Enter a valid email address."
    pub email: &'static str,
    /// The phone field's error.
    pub phone: &'static str,
    /// "Authentication credentials were not provided."
    pub not_authenticated: &'static str,
    /// simplejwt: "Given token not valid for any token type".
    pub bad_access_token: &'static str,
    /// simplejwt: "Token is invalid or expired".
    pub token_not_valid: &'static str,
    /// simplejwt: "User is inactive".
    pub user_inactive: &'static str,
    /// DRF: "User inactive or deleted." (a blocked member signing in).
    pub blocked: &'static str,
    /// "You do not have permission to perform this action."
    pub permission_denied: &'static str,
    /// "Not found."
    pub not_found: &'static str,
    /// "A server error occurred."
    pub server_error: &'static str,
    /// `Method "{method}" not allowed.`
    pub method_not_allowed: &'static str,
    /// "Request was throttled." (DRF adds "Expected available in N seconds." untranslated).
    pub throttled: &'static str,
    /// "Invalid data. Expected a dictionary, but got {datatype}."
    pub not_a_dict: &'static str,
}

impl DrfTexts {
    /// referral-api: `LANGUAGE_CODE = 'ru'`. Django's own catalogue for what it shares with
    /// DRF (as the seed answered: "Обязательное поле."), DRF's, simplejwt's `ru_RU` and
    /// django-phonenumber-field's for the rest; DRF leaves "Not a valid string.", "JSON parse
    /// error" and the throttle's wait untranslated.
    pub const REFERRAL_API: Self = Self {
        required: "Обязательное поле.",
        blank: "Это поле не может быть пустым.",
        not_a_string: "Not a valid string.",
        integer: "Требуется целочисленное значение.",
        email: "Введите правильный адрес электронной почты.",
        phone: "Введите корректный номер телефона.",
        not_authenticated: "Учетные данные не были предоставлены.",
        bad_access_token: "Данный токен недействителен для любого типа токена",
        token_not_valid: "Токен недействителен или просрочен",
        user_inactive: "Пользователь неактивен",
        blocked: "Пользователь неактивен или удален.",
        permission_denied: "У вас нет прав для выполнения этой операции.",
        not_found: "Не найдено.",
        server_error: "Произошла ошибка сервера.",
        method_not_allowed: "Метод \"{method}\" не разрешен.",
        throttled: "Запрос был проигнорирован.",
        not_a_dict: "Недопустимые данные. Ожидался dictionary, но был получен {datatype}.",
    };

    /// connect-hub: `LANGUAGE_CODE = 'en-us'`; the phone error is the seed's own validator's.
    pub const CONNECT_HUB: Self = Self {
        required: "This field is required.",
        blank: "This field may not be blank.",
        not_a_string: "Not a valid string.",
        integer: "A valid integer is required.",
        email: "Enter a valid email address.",
        phone: "Please enter a valid phone number that starts with \"+\"",
        not_authenticated: "Authentication credentials were not provided.",
        bad_access_token: "Given token not valid for any token type",
        token_not_valid: "Token is invalid or expired",
        user_inactive: "User is inactive",
        blocked: "User inactive or deleted.",
        permission_denied: "You do not have permission to perform this action.",
        not_found: "Not found.",
        server_error: "A server error occurred.",
        method_not_allowed: "Method \"{method}\" not allowed.",
        throttled: "Request was throttled.",
        not_a_dict: "Invalid data. Expected a dictionary, but got {datatype}.",
    };
}

/// An error answer in Django REST Framework's shape.
#[derive(Debug)]
pub struct DrfError {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
    /// `Allow` of a 405.
    allow: Option<String>,
    /// The cause of a 500, logged and never shown.
    cause: Option<anyhow::Error>,
}

impl DrfError {
    /// Any status with any body.
    pub fn new(status: StatusCode, body: Value) -> Self {
        Self { status, body, retry_after: None, allow: None, cause: None }
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
    pub fn throttled(t: &DrfTexts, retry_after_secs: u64) -> Self {
        let secs = retry_after_secs.max(1);
        let wait = if secs == 1 {
            "Expected available in 1 second.".to_owned()
        } else {
            format!("Expected available in {secs} seconds.")
        };
        let mut e = Self::detail(StatusCode::TOO_MANY_REQUESTS, format!("{} {wait}", t.throttled));
        e.retry_after = Some(secs);
        e
    }

    /// 401 for a call without credentials.
    pub fn not_authenticated(t: &DrfTexts) -> Self {
        Self::detail(StatusCode::UNAUTHORIZED, t.not_authenticated)
    }

    /// 401 simplejwt's answer to a bad access token on an authenticated call.
    pub fn bad_access_token(t: &DrfTexts) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            json!({ "detail": t.bad_access_token, "code": "token_not_valid" }),
        )
    }

    /// 401 simplejwt's answer from its verify and refresh views.
    pub fn token_not_valid(t: &DrfTexts) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            json!({ "detail": t.token_not_valid, "code": "token_not_valid" }),
        )
    }

    /// 403 for a blocked member signing in.
    pub fn blocked(t: &DrfTexts) -> Self {
        Self::detail(StatusCode::FORBIDDEN, t.blocked)
    }

    /// 401 simplejwt's answer to a refresh for an inactive (blocked) user.
    pub fn user_inactive(t: &DrfTexts) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            json!({ "detail": t.user_inactive, "code": "user_inactive" }),
        )
    }

    /// 403 as DRF's permission checks answer it.
    pub fn permission_denied(t: &DrfTexts) -> Self {
        Self::detail(StatusCode::FORBIDDEN, t.permission_denied)
    }

    /// 404 as DRF's generic views answer it.
    pub fn not_found(t: &DrfTexts) -> Self {
        Self::detail(StatusCode::NOT_FOUND, t.not_found)
    }

    /// 405 as DRF answers a method the view has no handler for; `Allow` names those it has.
    pub fn method_not_allowed(t: &DrfTexts, method: &str, allow: String) -> Self {
        let mut e = Self::detail(
            StatusCode::METHOD_NOT_ALLOWED,
            t.method_not_allowed.replace("{method}", method),
        );
        e.allow = Some(allow);
        e
    }

    /// 500: the cause is logged, the client learns nothing of it.
    pub fn unexpected(cause: anyhow::Error) -> Self {
        // Logged, never shown: the generic text is the same in every language the seeds
        // speak only by accident, so the English one stands.
        let mut e = Self::detail(StatusCode::INTERNAL_SERVER_ERROR, "A server error occurred.");
        e.cause = Some(cause);
        e
    }

    /// A body that is no object of fields.
    pub fn body(t: &DrfTexts, e: BodyError) -> Self {
        match e {
            BodyError::Malformed(why) => {
                Self::detail(StatusCode::BAD_REQUEST, format!("JSON parse error - {why}"))
            }
            BodyError::NotAnObject(kind) => Self::new(
                StatusCode::BAD_REQUEST,
                json!({ "non_field_errors": [t.not_a_dict.replace("{datatype}", kind)] }),
            ),
        }
    }

    /// The same error from a failed authentication.
    pub fn auth(t: &DrfTexts, e: AuthFailure) -> Self {
        match e {
            AuthFailure::Missing => Self::not_authenticated(t),
            AuthFailure::Invalid => Self::bad_access_token(t),
            AuthFailure::Unexpected(e) => Self::unexpected(e),
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
        if let Some(allow) = &self.allow {
            response.insert_header((header::ALLOW, allow.clone()));
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

/// The fields of a request body, read one by one as a DRF serializer does: every field error
/// is collected, and [`Fields::check`] answers them together.
#[derive(Debug)]
pub struct Fields {
    data: Map<String, Value>,
    errors: Map<String, Value>,
    texts: &'static DrfTexts,
}

impl Fields {
    /// Reads the body of `req`; errors speak `texts`.
    pub fn read(
        req: &HttpRequest,
        body: &web::Bytes,
        texts: &'static DrfTexts,
    ) -> Result<Self, DrfError> {
        let data = read_object(req.headers(), body).map_err(|e| DrfError::body(texts, e))?;
        Ok(Self { data, errors: Map::new(), texts })
    }

    /// The texts errors speak.
    pub fn texts(&self) -> &'static DrfTexts {
        self.texts
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
                self.error(name, self.texts.not_a_string);
                None
            }
        }
    }

    /// A string field that must be there.
    pub fn required_text(&mut self, name: &str) -> Option<String> {
        let present = self.data.get(name).is_some_and(|v| !v.is_null());
        let value = self.text(name);
        if value.is_none() && !self.errors.contains_key(name) {
            self.error(name, if present { self.texts.blank } else { self.texts.required });
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
