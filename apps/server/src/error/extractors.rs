//! actix's own extractor errors (JSON, path, query, payload) as 4xx problems.

use actix_web::http::StatusCode;

use super::{ApiError, ErrorCode, FieldError};

/// actix's own extractor errors (JSON, path, query) as 4xx problems.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidRequest,
            format!("request body over {limit} bytes"),
        ),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidRequest,
            "the body must be application/json",
        ),
        E::Deserialize(e) => {
            let field = unknown_field(&e.to_string());
            let mut api = ApiError::bad_request(format!("invalid JSON body: {e}"));
            if let Some(field) = field {
                api.0.problem.errors =
                    Some(vec![FieldError { field, message: "unknown field".to_owned() }]);
            }
            api
        }
        other => ApiError::bad_request(format!("invalid JSON body: {other}")),
    }
}

/// serde names an unknown field as "unknown field `x`, expected ...".
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

pub fn path_error(err: actix_web::error::PathError) -> ApiError {
    ApiError::bad_request(format!("invalid path parameter: {err}"))
}

pub fn query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::bad_request(format!("invalid query string: {err}"))
}

pub fn payload_error(err: actix_web::error::PayloadError) -> ApiError {
    match err {
        actix_web::error::PayloadError::Overflow => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidRequest,
            "request body too large",
        ),
        other => ApiError::bad_request(format!("invalid body: {other}")),
    }
}
