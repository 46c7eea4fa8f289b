//! The OpenAPI document: paths are collected from the handlers' `#[utoipa::path]`; this adds
//! the info, the security scheme and the error schemas.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
