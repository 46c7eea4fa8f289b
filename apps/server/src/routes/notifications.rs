//! In-app notifications: `/api/v1/notifications/...`, and their live stream (Server-Sent
//! Events).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use onboard_kernel::MemberId;
use onboard_notifications::{
    LiveStream, MarkRead, Notification, NotificationId, SnoozeMinutes, StreamTicket,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::{Auth, JsonBody};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// How often a stream sends a comment line, so that proxies keep it open and clients notice a
/// dead connection.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// The most ids one read call may name.
const MAX_IDS: usize = 1000;

/// A notification.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDto {
    pub id: Uuid,
    /// The dotted type, e.g. `join_request.created`.
    #[serde(rename = "type")]
    #[schema(example = "join_request.created")]
    pub kind: String,
    pub title: String,
    pub body: String,
    /// The slug of the group it is about.
    pub group: Option<String>,
    /// Where an app takes the member.
    pub link: Option<String>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<Notification> for NotificationDto {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id.as_uuid(),
            kind: n.kind.as_str().to_owned(),
            title: n.title,
            body: n.body,
            group: n.group,
            link: n.link,
            read: n.read,
            created_at: n.created_at,
            expires_at: n.expires_at,
        }
    }
}

/// A page of notifications, newest first, with the member's unread count.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPageDto {
    pub items: Vec<NotificationDto>,
    pub next_cursor: Option<String>,
    /// All the member's unread notifications (not only this page's).
    pub unread_count: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationsQuery {
    /// Only unread ones.
    pub unread: Option<bool>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The caller's notifications, newest first, with their unread count. Snoozed and expired
/// notifications are not listed.
#[utoipa::path(
    tag = "notifications",
    security(("bearer" = [])),
    params(NotificationsQuery),
    responses(
        (status = 200, description = "A page", body = NotificationPageDto),
        (status = 400, description = "`invalid_request` (limit, cursor)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/notifications")]
pub async fn list(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    query: web::Query<NotificationsQuery>,
) -> Result<web::Json<NotificationPageDto>, ApiError> {
    let limit = super::ListQuery { limit: query.limit, cursor: None }.limit()?;
    let cursor = super::ListQuery { limit: None, cursor: query.cursor.clone() }
        .after(NotificationId::parse)?;
    let page = state
        .notifications
        .list(caller.member_id, query.unread.unwrap_or(false), cursor, limit)
        .await?;
    Ok(web::Json(NotificationPageDto {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
        unread_count: page.unread_count,
    }))
}

/// `{"ids": [...]}` or `{"all": true}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkReadRequest {
    /// The notifications to mark read; ids that are not the caller's are ignored.
    pub ids: Option<Vec<String>>,
    /// `true`: every notification of the caller.
    pub all: Option<bool>,
}

impl MarkReadRequest {
    fn into_domain(self) -> Result<MarkRead, ApiError> {
        match (self.ids, self.all) {
            (Some(ids), None | Some(false)) => {
                if ids.len() > MAX_IDS {
                    return Err(ApiError::invalid_field(
                        ErrorCode::InvalidRequest,
                        "ids",
                        format!("at most {MAX_IDS} ids"),
                    ));
                }
                let ids = ids
                    .iter()
                    .map(|id| NotificationId::parse(id))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        ApiError::invalid_field(ErrorCode::InvalidRequest, "ids", "not UUIDs")
                    })?;
                Ok(MarkRead::Ids(ids))
            }
            (None, Some(true)) => Ok(MarkRead::All),
            _ => Err(ApiError::invalid_field(
                ErrorCode::InvalidRequest,
                "ids",
                "send either ids or \"all\": true",
            )),
        }
    }
}

/// Marks the caller's notifications read: the listed ones, or all.
#[utoipa::path(
    tag = "notifications",
    security(("bearer" = [])),
    request_body = MarkReadRequest,
    responses(
        (status = 204, description = "Marked (others' ids ignored)"),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/notifications/read")]
pub async fn mark_read(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    body: JsonBody<MarkReadRequest>,
) -> Result<HttpResponse, ApiError> {
    let which = body.into_inner().into_domain()?;
    state.notifications.mark_read(caller.member_id, &which).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `{"minutes"}`: 1 to 10080 (a week).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeRequest {
    /// 1 to 10,080 (a week).
    #[schema(minimum = 1, maximum = 10_080)]
    pub minutes: i64,
}

fn path_id(raw: &str) -> Result<NotificationId, ApiError> {
    NotificationId::parse(raw).ok_or_else(|| ApiError::not_found("no such notification"))
}

/// Hides a notification for `minutes`; after that it is back, unread (the time is stored, so
/// this survives restarts).
#[utoipa::path(
    tag = "notifications",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = SnoozeRequest,
    responses(
        (status = 200, description = "The snoozed notification", body = NotificationDto),
        (status = 400, description = "`invalid_request` (minutes)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`, also for another member's", body = Problem, content_type = "application/problem+json"),
    )
)]
// `{id}` never reads as the literal sibling routes (`read`, `stream`, `stream-ticket`): an id
// has a character other than a-z and '-', so another method on those paths is a 405.
#[post("/notifications/{id:[^/]*[^a-z/-][^/]*}/snooze")]
pub async fn snooze(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
    body: JsonBody<SnoozeRequest>,
) -> Result<web::Json<NotificationDto>, ApiError> {
    let id = path_id(&id)?;
    let minutes = SnoozeMinutes::parse(body.minutes).map_err(|e| {
        ApiError::invalid_field(ErrorCode::InvalidRequest, "minutes", e.to_string())
    })?;
    let snoozed = state.notifications.snooze(caller.member_id, id, minutes).await?;
    Ok(web::Json(snoozed.into()))
}

/// Deletes one of the caller's notifications.
#[utoipa::path(
    tag = "notifications",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`, also for another member's", body = Problem, content_type = "application/problem+json"),
    )
)]
// `{id}` never reads as the literal sibling routes (`read`, `stream`, `stream-ticket`): an id
// has a character other than a-z and '-', so another method on those paths is a 405.
#[delete("/notifications/{id:[^/]*[^a-z/-][^/]*}")]
pub async fn delete(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.notifications.delete(caller.member_id, path_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketDto {
    /// Opens one stream within 30 seconds.
    pub ticket: String,
}

/// A single-use ticket (30 s) for the stream: `EventSource` cannot send an `Authorization`
/// header, so the stream takes a ticket in its URL instead.
#[utoipa::path(
    tag = "notifications",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The ticket", body = TicketDto),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/notifications/stream-ticket")]
pub async fn stream_ticket(
    state: web::Data<AppState>,
    Auth(caller): Auth,
) -> Result<HttpResponse, ApiError> {
    let ticket = state.notifications.issue_ticket(caller.member_id).await?;
    Ok(HttpResponse::Created().json(TicketDto { ticket: ticket.as_str().to_owned() }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// From `POST /notifications/stream-ticket`; single use.
    pub ticket: String,
    /// For clients that cannot send the `Last-Event-ID` header (the header wins).
    pub last_event_id: Option<String>,
}

/// Server-Sent Events: `id` = notification id, `event` = type, `data` = the notification as
/// JSON. With `Last-Event-ID` it first replays what came after that id; a comment line every
/// 15 seconds keeps the connection alive.
#[utoipa::path(
    tag = "notifications",
    params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "The last id received")),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 401, description = "`stream_ticket_invalid` (unknown, used or expired)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/notifications/stream")]
pub async fn stream(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let ticket = StreamTicket::parse(&query.ticket)
        .ok_or_else(|| ApiError::from(onboard_notifications::OpenStreamError::TicketInvalid))?;
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.last_event_id.clone())
        .and_then(|raw| NotificationId::parse(&raw));
    let live = state.notifications.open_stream(&ticket, last_event_id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(events(live, last_event_id)))
}

/// The state of one stream.
struct Events {
    member: MemberId,
    greeted: bool,
    replay: VecDeque<Notification>,
    live: tokio::sync::broadcast::Receiver<Notification>,
    /// The client's `Last-Event-ID`: it has seen everything up to there.
    seen_up_to: Option<NotificationId>,
    /// The ids replayed, which the live channel may carry again.
    replayed: HashSet<NotificationId>,
    heartbeat: tokio::time::Interval,
}

/// The stream's bytes: a greeting comment, the replay, then live notifications of the member
/// with heartbeats, until the client goes or the stream falls too far behind (the client then
/// reconnects with `Last-Event-ID`).
fn events(
    live: LiveStream,
    last_event_id: Option<NotificationId>,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    let start = tokio::time::Instant::now() + HEARTBEAT;
    let state = Events {
        member: live.member,
        greeted: false,
        replay: live.replay.into(),
        live: live.live,
        seen_up_to: last_event_id,
        replayed: HashSet::new(),
        heartbeat: tokio::time::interval_at(start, HEARTBEAT),
    };
    futures_util::stream::unfold(state, |mut s| async move {
        if !s.greeted {
            s.greeted = true;
            return Some((Ok(Bytes::from_static(b"retry: 2000\n: connected\n\n")), s));
        }
        if let Some(n) = s.replay.pop_front() {
            s.replayed.insert(n.id);
            return Some((Ok(event(n)), s));
        }
        loop {
            tokio::select! {
                _ = s.heartbeat.tick() => {
                    return Some((Ok(Bytes::from_static(b": heartbeat\n\n")), s));
                }
                received = s.live.recv() => match received {
                    Ok(n) if n.member == s.member
                        && s.seen_up_to.is_none_or(|seen| n.id > seen)
                        && !s.replayed.contains(&n.id) =>
                    {
                        return Some((Ok(event(n)), s));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
                }
            }
        }
    })
}

/// One SSE event.
fn event(n: Notification) -> Bytes {
    let (id, kind) = (n.id, n.kind);
    let data = serde_json::to_string(&NotificationDto::from(n)).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("id: {id}\nevent: {kind}\ndata: {data}\n\n"))
}

/// Registers the notifications and their live stream routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(list)
        .service(mark_read)
        .service(snooze)
        .service(delete)
        .service(stream_ticket)
        .service(stream);
}
