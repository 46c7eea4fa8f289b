//! The OpenAPI document: paths are collected from the handlers' `#[utoipa::path]`; this adds
//! the info, the security scheme and the error schemas.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorCode, FieldError, Problem};
use crate::routes::webhooks::openapi::WebhookEvents;

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Onboard API",
        version = "1.0.0",
        description = "Phone sign-in, sessions and profiles. Errors are RFC 9457 problem+json with a stable `code` (see the ErrorCode schema)."
    ),
    components(schemas(Problem, ErrorCode, FieldError)),
    modifiers(&BearerAuth, &WebhookEvents),
    tags(
        (name = "auth", description = "One-time codes, tokens, sessions"),
        (name = "members", description = "Profiles"),
        (name = "referrals", description = "Referral codes and invitees"),
        (name = "groups", description = "Workspaces, role templates, members, join requests"),
        (name = "invites", description = "Invitations with single-use codes"),
        (name = "operations", description = "Health and metrics"),
        (name = "payments", description = "Plans, billing, cards, receipts, usage, gateway webhooks"),
        (name = "admin", description = "Platform administration (platform admins only)"),
        (name = "notifications", description = "In-app notifications and their live stream"),
        (name = "messages", description = "Messages a group sends (SMS, LMS, alimtalk), paid from its SMS credit"),
        (name = "webhooks", description = "Outgoing webhooks (Standard Webhooks) and the events API; the event types and their payloads are the document's `webhooks`"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

/// The answers every operation of a kind can give, whatever its handler does, added to the
/// collected document where the handler's annotation does not already name them (its own
/// description is more precise): actix's extractors and the shared `Auth` answer these before
/// the handler runs, so they are stated here once rather than on every route.
///
/// - a bearer-secured operation: 401 `unauthorized`;
/// - a JSON body: 400 (malformed, unknown field, not an object), 413 (over 64 KiB), 415 (not
///   `application/json`);
/// - a query string: 400 (unknown parameter, `limit` outside 1–100, not a cursor);
/// - a path parameter: 404 (no such thing, or a slug that names none) and, for a typed one
///   (uuid, number), 400 when it does not parse;
/// - every `/api/v1` operation: 503 `service_unavailable` with `Retry-After` when the backends are
///   saturated (no pooled connection in time).
pub fn complete(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let api = path.starts_with("/api/v1/");
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
        ]
        .into_iter()
        .flatten()
        {
            // `JsonBody` refuses an empty body (415): every body is required, `null` included
            // where the schema takes it.
            if let Some(RefOr::T(body)) = op.request_body.as_mut() {
                body.required = Some(Required::True);
            }
            for (status, description) in generic_answers(op, api) {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem_response(description, status == "503"));
            }
        }
    }
}

/// The statuses (and their descriptions) `op` answers whatever its handler does.
fn generic_answers(op: &Operation, api: bool) -> Vec<(&'static str, &'static str)> {
    let params = op.parameters.iter().flatten().filter_map(|p| match p {
        RefOr::T(p) => Some(p),
        RefOr::Ref(_) => None,
    });
    let (mut query, mut path, mut typed_path) = (false, false, false);
    for p in params {
        match p.parameter_in {
            ParameterIn::Query => query = true,
            ParameterIn::Path => {
                path = true;
                typed_path |= !is_plain_string(p.schema.as_ref());
            }
            _ => {}
        }
    }
    let mut answers = Vec::new();
    if op.request_body.is_some() {
        answers.push((
            "400",
            "`invalid_request`: the body is not a JSON object of the fields described",
        ));
        answers.push(("413", "`invalid_request`: the body is over 64 KiB"));
        answers.push(("415", "`invalid_request`: the body is not `application/json`"));
    }
    if query {
        answers
            .push(("400", "`invalid_request`: an unknown query parameter or a value out of range"));
    }
    if typed_path {
        answers.push(("400", "`invalid_request`: a path parameter does not parse"));
    }
    if path {
        answers.push(("404", "`not_found`: nothing at this path"));
    }
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        answers.push(("401", "`unauthorized`: missing, invalid, expired or revoked access token"));
    }
    if api {
        answers.push((
            "503",
            "`service_unavailable`: the backends are saturated; try again after `Retry-After`",
        ));
    }
    answers
}

/// Whether a parameter's schema is a string without a format (any text parses).
fn is_plain_string(schema: Option<&RefOr<Schema>>) -> bool {
    match schema {
        Some(RefOr::T(Schema::Object(o))) => {
            matches!(&o.schema_type, SchemaType::Type(Type::String)) && o.format.is_none()
        }
        _ => false,
    }
}

/// A problem+json answer; `retry` adds the `Retry-After` header.
fn problem_response(description: &str, retry: bool) -> RefOr<Response> {
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/problem+json", Content::new(Some(Ref::from_schema_name("Problem"))));
    if retry {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                .description(Some("Seconds to wait"))
                .build(),
        );
    }
    RefOr::T(response.build())
}
