//! The OpenAPI document's `webhooks` (OpenAPI 3.1): one entry per event type of
//! [`onboard_webhooks::catalog`], the request Onboard sends for it (Standard Webhooks headers,
//! `{"type", "timestamp", "data"}` with that type's fields).

use onboard_webhooks::catalog::{EVENT_TYPES, EventType, Field, FieldType};
use utoipa::Modify;
use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{ContentBuilder, HttpMethod, PathItem, PathsBuilder, Required};

/// Adds the `webhooks` section.
#[derive(Debug)]
pub struct WebhookEvents;

fn string(format: Option<&str>, nullable: bool) -> Schema {
    let kind = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        Type::String.into()
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .format(format.map(|f| SchemaFormat::Custom(f.to_owned())))
        .build()
        .into()
}

fn field_schema(field: &Field) -> Schema {
    let scalar = |t: Type| -> Schema {
        let kind = if field.nullable { SchemaType::from_iter([t, Type::Null]) } else { t.into() };
        ObjectBuilder::new().schema_type(kind).build().into()
    };
    match field.kind {
        FieldType::Id => string(Some("uuid"), field.nullable),
        FieldType::DateTime => string(Some("date-time"), field.nullable),
        FieldType::Date => string(Some("date"), field.nullable),
        FieldType::Integer => scalar(Type::Integer),
        FieldType::Boolean => scalar(Type::Boolean),
        FieldType::StringList => {
            ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)).build().into()
        }
        _ => string(None, field.nullable),
    }
}

fn body_schema(event: &EventType) -> Schema {
    let data = event.fields.iter().fold(ObjectBuilder::new().schema_type(Type::Object), |o, f| {
        o.property(f.name, field_schema(f)).required(f.name)
    });
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "type",
            ObjectBuilder::new().schema_type(Type::String).enum_values(Some([event.name])).build(),
        )
        .required("type")
        .property("timestamp", string(Some("date-time"), false))
        .required("timestamp")
        .property("data", data.build())
        .required("data")
        .build()
        .into()
}

fn header(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(string(None, false)))
        .build()
}

fn operation(event: &EventType) -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .tag("webhooks")
        .summary(Some(event.summary))
        .description(Some(
            "Sent to each enabled endpoint whose scope and event types take it. At least once, in no promised order; a 2xx within 10 s acknowledges it, anything else is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h with the same `webhook-id`.",
        ))
        .parameter(header("webhook-id", "`msg_` and the event id: the same on every attempt (deduplicate on it)"))
        .parameter(header("webhook-timestamp", "Seconds since the Unix epoch when this attempt was signed"))
        .parameter(header(
            "webhook-signature",
            "`v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` keyed by the secret's decoded bytes; space-separated when a rotated secret still signs",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", ContentBuilder::new().schema(Some(body_schema(event))).build())
                .required(Some(Required::True))
                .build(),
        ))
        .response("2XX", Response::new("Received"))
        .build()
}

impl Modify for WebhookEvents {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = EVENT_TYPES.iter().fold(PathsBuilder::new(), |paths, event| {
            paths.path(event.name, PathItem::new(HttpMethod::Post, operation(event)))
        });
        openapi.webhooks = Some(paths.build());
    }
}
