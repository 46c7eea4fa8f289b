//! Payments (`shared/spec/payments.md`): plans, a group's billing, cards, receipts, usage and
//! the gateway's webhook.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use onboard_payments::gateway::WebhookNotice;
use onboard_payments::{
    Billing, Card, CardId, Charge, CustomerUid, IdempotencyKey, Interval, Money, Plan, PlanChange,
    PlanCode, PlanRequest, Receipt, ReceiptCursor, UsageCaller, VAT_PERCENT, WebhookOutcome,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ListQuery, Page, path_slug};
pub use crate::dto::UsageDto;
use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::{Auth, JsonBody};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

// ---------------------------------------------------------------------------------------------
// DTOs
// ---------------------------------------------------------------------------------------------

/// An add-on's prices on a plan: KRW per month, VAT excluded (`vat_included` has them with it).
#[derive(Debug, Serialize, ToSchema)]
pub struct AddonDto {
    #[schema(example = "analytics")]
    pub code: String,
    /// KRW per month, VAT excluded.
    pub monthly_price: i64,
    /// KRW per month when billed yearly (×12), VAT excluded.
    pub yearly_price: i64,
    /// The same prices with VAT.
    pub vat_included: PricesWithVat,
}

/// Prices with VAT ([`VAT_PERCENT`] % of the net price, rounded half up to the won): what a
/// card is charged per month (a yearly charge is 12 × the net `yearly_price` plus VAT on that
/// sum, so it may differ from 12 × this `yearly_price` by rounding).
#[derive(Debug, Serialize, ToSchema)]
pub struct PricesWithVat {
    #[schema(example = 83380)]
    pub monthly_price: i64,
    #[schema(example = 74800)]
    pub yearly_price: i64,
}

impl PricesWithVat {
    fn of(monthly: i64, yearly: i64) -> Self {
        Self {
            monthly_price: Money::with_vat(monthly).amount,
            yearly_price: Money::with_vat(yearly).amount,
        }
    }
}

/// A plan of the catalogue. `monthly_price` and `yearly_price` are KRW per month **without
/// VAT** (`yearly_price` is billed ×12); `vat_included` has them with VAT, as charged.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDto {
    #[schema(example = "pro")]
    pub code: String,
    pub name: String,
    /// KRW per month, VAT excluded.
    #[schema(example = 75800)]
    pub monthly_price: i64,
    /// KRW per month when billed yearly (×12), VAT excluded.
    #[schema(example = 68000)]
    pub yearly_price: i64,
    /// The same prices with VAT: what the card is charged.
    pub vat_included: PricesWithVat,
    #[schema(example = "KRW")]
    pub currency: &'static str,
    /// Metric → the most one billing period may count (`null`: unlimited).
    pub limits: BTreeMap<String, Option<i64>>,
    pub addons: Vec<AddonDto>,
}

impl From<Plan> for PlanDto {
    fn from(p: Plan) -> Self {
        Self {
            code: p.code.to_string(),
            name: p.name,
            monthly_price: p.monthly_price,
            yearly_price: p.yearly_price,
            vat_included: PricesWithVat::of(p.monthly_price, p.yearly_price),
            currency: "KRW",
            limits: p.limits,
            addons: p
                .addons
                .into_iter()
                .map(|a| AddonDto {
                    code: a.code.to_string(),
                    monthly_price: a.monthly_price,
                    yearly_price: a.yearly_price,
                    vat_included: PricesWithVat::of(a.monthly_price, a.yearly_price),
                })
                .collect(),
        }
    }
}

/// The catalogue. Prices exclude VAT (`prices_include_vat` is false); charges and receipts
/// include it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanList {
    pub items: Vec<PlanDto>,
    /// Always false: `monthly_price` and `yearly_price` are net; see `vat_included`.
    pub prices_include_vat: bool,
    /// The VAT rate added to the net prices, in percent.
    #[schema(example = 10)]
    pub vat_rate_percent: i64,
}

/// The charge Onboard scheduled next.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextChargeDto {
    /// KRW, VAT included.
    pub amount: i64,
    pub at: DateTime<Utc>,
    pub merchant_uid: String,
    pub card_id: Uuid,
    /// The plan this charge pays for.
    pub plan: String,
    #[schema(example = "month")]
    pub interval: String,
}

impl From<Charge> for NextChargeDto {
    fn from(c: Charge) -> Self {
        Self {
            amount: c.money.amount,
            at: c.at,
            merchant_uid: c.merchant_uid.to_string(),
            card_id: c.card_id.as_uuid(),
            plan: c.plan.to_string(),
            interval: c.interval.as_str().to_owned(),
        }
    }
}

/// A group's billing account.
#[derive(Debug, Serialize, ToSchema)]
pub struct BillingDto {
    #[schema(example = "free")]
    pub plan: String,
    /// `month`, `year` or null (Free).
    pub interval: Option<String>,
    pub addons: Vec<String>,
    /// `free`, `trialing`, `active`, `past_due` or `canceling`.
    pub status: String,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub current_period_start: Option<DateTime<Utc>>,
    /// When the current period ends (exclusive): the next period's charge time.
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub next_charge: Option<NextChargeDto>,
    pub trial_used: bool,
}

fn pending(charge: Option<Charge>) -> Option<NextChargeDto> {
    charge
        .filter(|c| {
            c.status == onboard_payments::ChargeStatus::Scheduled
                && c.kind != onboard_payments::ChargeKind::Immediate
        })
        .map(NextChargeDto::from)
}

impl From<Billing> for BillingDto {
    fn from(b: Billing) -> Self {
        Self {
            plan: b.plan.to_string(),
            interval: b.interval.map(|i| i.as_str().to_owned()),
            addons: b.addons.iter().map(ToString::to_string).collect(),
            status: b.status.as_str().to_owned(),
            trial_ends_at: b.trial_ends_at,
            current_period_start: b.current_period_start,
            current_period_end: b.current_period_end,
            cancel_at_period_end: b.cancel_at_period_end,
            next_charge: pending(b.next_charge),
            trial_used: b.trial_used,
        }
    }
}

/// What a plan change would do.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewDto {
    pub effective_at: DateTime<Utc>,
    /// KRW charged at once (VAT included), 0 when nothing is.
    pub charge_now: i64,
    pub status_after: String,
    pub next_charge: Option<NextChargeDto>,
}

impl From<PlanChange> for PreviewDto {
    fn from(c: PlanChange) -> Self {
        Self {
            effective_at: c.effective_at,
            charge_now: c.charge_now.map_or(0, |n| n.money.amount),
            status_after: c.billing.status.as_str().to_owned(),
            next_charge: pending(c.billing.next_charge),
        }
    }
}

/// A card held as a billing key (never its number).
#[derive(Debug, Serialize, ToSchema)]
pub struct CardDto {
    pub id: Uuid,
    pub card_name: String,
    #[schema(example = "424242******4242")]
    pub number_masked: String,
    pub main: bool,
    pub created_at: DateTime<Utc>,
}

impl From<Card> for CardDto {
    fn from(c: Card) -> Self {
        Self {
            id: c.id.as_uuid(),
            card_name: c.card_name,
            number_masked: c.number_masked,
            main: c.main,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CardList {
    pub items: Vec<CardDto>,
}

/// The record of one payment outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptDto {
    pub id: Uuid,
    /// `subscription` or `sms_credit`.
    pub kind: String,
    /// KRW, VAT included.
    pub amount: i64,
    pub vat: i64,
    /// `paid`, `failed` or `cancelled`.
    pub status: String,
    pub imp_uid: String,
    pub merchant_uid: String,
    pub card_id: Option<Uuid>,
    pub paid_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
}

impl From<Receipt> for ReceiptDto {
    fn from(r: Receipt) -> Self {
        Self {
            id: r.id.as_uuid(),
            kind: r.kind.as_str().to_owned(),
            amount: r.money.amount,
            vat: r.money.vat,
            status: r.status.as_str().to_owned(),
            imp_uid: r.imp_uid,
            merchant_uid: r.merchant_uid.to_string(),
            card_id: r.card_id.map(|c| c.as_uuid()),
            paid_at: r.paid_at,
            failure_reason: r.failure_reason,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageList {
    pub items: Vec<UsageDto>,
}

/// Where to register a card.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreparedCard {
    /// Register the card at the gateway under this id, then add it with it.
    pub customer_uid: String,
    /// The gateway client SDK's settings, such as `{"merchant_id": "imp12345678"}`.
    #[schema(value_type = Object)]
    pub gateway: serde_json::Value,
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChangeRequest {
    #[schema(example = "pro")]
    pub plan: String,
    /// `month` or `year`; required for a paid plan.
    #[schema(pattern = "^(month|year)$")]
    pub interval: Option<String>,
    #[serde(default)]
    pub addons: Vec<String>,
}

impl PlanChangeRequest {
    fn into_domain(self) -> Result<PlanRequest, ApiError> {
        let bad = |field: &str, message: &str| {
            ApiError::invalid_field(ErrorCode::InvalidRequest, field, message)
        };
        let plan = PlanCode::parse(&self.plan).map_err(|_| bad("plan", "no such plan"))?;
        let interval = self
            .interval
            .map(|i| Interval::parse(&i).ok_or_else(|| bad("interval", "month or year")))
            .transpose()?;
        let addons = self
            .addons
            .iter()
            .map(|a| PlanCode::parse(a).map_err(|_| bad("addons", "not an add-on code")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PlanRequest { plan, interval, addons })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCardRequest {
    /// The id `cards/prepare` issued, under which the card was registered at the gateway.
    pub customer_uid: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRequest {
    /// 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub delta: i64,
}

/// A gateway notification (PortOne's webhook body), JSON or form-encoded.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WebhookBody {
    pub imp_uid: String,
    pub merchant_uid: String,
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// `applied`, `duplicate` or `ignored`.
    pub outcome: &'static str,
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/// The plan catalogue. Prices are KRW per month without VAT; each plan and add-on also has
/// them with VAT (`vat_included`), which is what a card is charged.
#[utoipa::path(tag = "payments", responses((status = 200, description = "The plans: prices without VAT, and with it in `vat_included`", body = PlanList)))]
#[get("/plans")]
pub async fn plans(state: web::Data<AppState>) -> Result<web::Json<PlanList>, ApiError> {
    let catalogue = state.payments.catalogue().await?;
    Ok(web::Json(PlanList {
        items: catalogue.plans.into_iter().map(PlanDto::from).collect(),
        prices_include_vat: false,
        vat_rate_percent: VAT_PERCENT,
    }))
}

/// The group's billing account (members).
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "Billing", body = BillingDto),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/billing")]
pub async fn get_billing(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<String>,
) -> Result<web::Json<BillingDto>, ApiError> {
    let slug = path_slug(&path)?;
    Ok(web::Json(state.payments.billing(&slug, caller.member_id).await?.into()))
}

/// What a plan change would do; nothing changes.
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    request_body = PlanChangeRequest,
    responses(
        (status = 200, description = "Preview", body = PreviewDto),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_main_card`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/billing/plan/preview")]
pub async fn preview_plan(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<String>,
    body: JsonBody<PlanChangeRequest>,
) -> Result<web::Json<PreviewDto>, ApiError> {
    let slug = path_slug(&path)?;
    let request = body.into_inner().into_domain()?;
    Ok(web::Json(state.payments.preview(&slug, caller.member_id, &request).await?.into()))
}

/// The request's `Idempotency-Key`, if it has one.
pub(crate) fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else { return Ok(None) };
    match value.to_str().ok().map(IdempotencyKey::parse) {
        Some(Ok(key)) => Ok(Some(key)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "Idempotency-Key: 1 to 255 visible ASCII characters",
        )),
    }
}

/// The answer of an idempotent command's outcome, the same whether it ran now or is answered
/// again: `status` with `body` (`application/problem+json` for a refusal).
pub(crate) fn outcome_response(status: StatusCode, body: serde_json::Value) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if status.is_client_error() || status.is_server_error() {
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
    } else {
        response
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
    }
    response.body(serde_json::to_vec(&body).unwrap_or_default())
}

/// Changes the plan (`Idempotency-Key`: a repeat with the same key and body answers the first
/// answer for 24 hours).
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = PlanChangeRequest,
    responses(
        (status = 200, description = "Billing after the change", body = BillingDto),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "`payment_failed` (nothing changed)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_main_card`, `idempotency_key_in_use`, `billing_busy`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`gateway_unavailable` (nothing changed)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/groups/{slug}/billing/plan")]
pub async fn change_plan(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<String>,
    body: JsonBody<Box<serde_json::value::RawValue>>,
) -> Result<HttpResponse, ApiError> {
    let slug = path_slug(&path)?;
    let key = idempotency_key(&req)?;
    let raw = body.into_inner();
    let request: PlanChangeRequest = serde_json::from_str(raw.get()).map_err(|e| {
        crate::error::json_error(actix_web::error::JsonPayloadError::Deserialize(e))
    })?;
    let request = request.into_domain()?;
    let outcome = state
        .payments
        .change_plan_as(caller.member_id, &slug, &request, key.as_ref())
        .await?
        .into_outcome();
    let (status, body) = match outcome.into_result() {
        Ok(billing) => {
            (StatusCode::OK, serde_json::to_value(BillingDto::from(billing)).unwrap_or_default())
        }
        Err(refused) => {
            let e = ApiError::from(refused);
            (e.status(), e.problem_json())
        }
    };
    Ok(outcome_response(status, body))
}

/// Issues a customer_uid for the gateway's client SDK to register a card under.
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 201, description = "Prepared", body = PreparedCard),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/billing/cards/prepare")]
pub async fn prepare_card(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = path_slug(&path)?;
    let uid = state.payments.prepare_card(&slug, caller.member_id).await?;
    Ok(HttpResponse::Created().json(PreparedCard {
        customer_uid: uid.to_string(),
        gateway: state.payments.gateway_client_config(),
    }))
}

/// Adds the card registered at the gateway; the group's first card becomes main.
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    request_body = AddCardRequest,
    responses(
        (status = 201, description = "The card", body = CardDto),
        (status = 400, description = "`card_not_found_at_gateway`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`card_exists`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`gateway_unavailable` (nothing changed)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/billing/cards")]
pub async fn add_card(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<String>,
    body: JsonBody<AddCardRequest>,
) -> Result<HttpResponse, ApiError> {
    let slug = path_slug(&path)?;
    let uid = CustomerUid::parse(&body.customer_uid).map_err(|_| {
        ApiError::invalid_field(
            ErrorCode::CardNotFoundAtGateway,
            "customer_uid",
            "not a customer_uid issued by cards/prepare",
        )
    })?;
    let card = state.payments.add_card(&slug, caller.member_id, &uid).await?;
    Ok(HttpResponse::Created().json(CardDto::from(card)))
}

/// The group's cards.
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, description = "Cards", body = CardList))
)]
#[get("/groups/{slug}/billing/cards")]
pub async fn list_cards(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<String>,
) -> Result<web::Json<CardList>, ApiError> {
    let slug = path_slug(&path)?;
    let cards = state.payments.cards(&slug, caller.member_id).await?;
    Ok(web::Json(CardList { items: cards.into_iter().map(CardDto::from).collect() }))
}

fn path_card(raw: &str) -> Result<CardId, ApiError> {
    Uuid::parse_str(raw).map(CardId::from_uuid).map_err(|_| {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::CardNotFound, "no such card in this group")
    })
}

/// Makes a card main: the pending charge moves to it under a new merchant_uid, all or nothing.
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = Uuid, Path)),
    responses(
        (status = 200, description = "Billing", body = BillingDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`card_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`gateway_unavailable` (nothing changed)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`billing_busy` (another main-card change is under way)", body = Problem, content_type = "application/problem+json"),
    )
)]
// `{id}` never reads as `prepare` (an id has a character other than a-z and '-'), so another
// method on `cards/prepare` is a 405.
#[put("/groups/{slug}/billing/cards/{id:[^/]*[^a-z/-][^/]*}/main")]
pub async fn set_main_card(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<web::Json<BillingDto>, ApiError> {
    let (slug, id) = path.into_inner();
    let slug = path_slug(&slug)?;
    let id = path_card(&id)?;
    Ok(web::Json(state.payments.set_main_card(&slug, caller.member_id, id).await?.into()))
}

/// Deletes a card and its billing key at the gateway.
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "`main_card_in_use`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`; `card_not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
// `{id}` never reads as `prepare` (an id has a character other than a-z and '-'), so another
// method on `cards/prepare` is a 405.
#[delete("/groups/{slug}/billing/cards/{id:[^/]*[^a-z/-][^/]*}")]
pub async fn delete_card(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, id) = path.into_inner();
    let slug = path_slug(&slug)?;
    let id = path_card(&id)?;
    state.payments.delete_card(&slug, caller.member_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The group's receipts, newest first.
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path), ListQuery),
    responses((status = 200, description = "A page of Receipt", body = Page<ReceiptDto>))
)]
#[get("/groups/{slug}/billing/receipts")]
pub async fn receipts(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<web::Json<Page<ReceiptDto>>, ApiError> {
    let slug = path_slug(&path)?;
    let limit = query.limit()?;
    let after = query.after(ReceiptCursor::decode)?;
    let page = state.payments.receipts(&slug, caller.member_id, after, limit).await?;
    Ok(web::Json(Page::of(page.items, page.next_cursor)))
}

/// Every limited metric's count in the current period.
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, description = "Usage", body = UsageList))
)]
#[get("/groups/{slug}/usage")]
pub async fn usage(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<String>,
) -> Result<web::Json<UsageList>, ApiError> {
    let slug = path_slug(&path)?;
    let items = state.payments.usage(&slug, caller.member_id).await?;
    Ok(web::Json(UsageList { items: items.into_iter().map(UsageDto::from).collect() }))
}

/// Counts usage against the current plan's limit (needs `billing.manage`, or a service token
/// of `SERVICE_TOKENS`).
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("metric" = String, Path)),
    request_body = UsageRequest,
    responses(
        (status = 200, description = "Usage after counting", body = UsageDto),
        (status = 402, description = "`plan_limit_reached` (nothing counted)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`metric_not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/usage/{metric}")]
pub async fn record_usage(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: JsonBody<UsageRequest>,
) -> Result<web::Json<UsageDto>, ApiError> {
    let (slug, metric) = path.into_inner();
    let slug = path_slug(&slug)?;
    if !(1..=1_000_000).contains(&body.delta) {
        return Err(ApiError::invalid_field(
            ErrorCode::InvalidRequest,
            "delta",
            "between 1 and 1000000",
        ));
    }
    let token = crate::extract::bearer(&req).ok_or_else(ApiError::unauthorized)?;
    let caller = if state.service_tokens.contains(&token) {
        UsageCaller::Service
    } else {
        UsageCaller::Member(state.members.authenticate(&token).await?.member_id)
    };
    let counted = state.payments.record_usage_as(caller, &slug, &metric, body.delta).await?;
    Ok(web::Json(counted.into()))
}

/// PortOne's payment notification: handled once; the payment is re-read from the gateway.
#[utoipa::path(
    tag = "payments",
    request_body = WebhookBody,
    responses(
        (status = 200, description = "Handled (applied, duplicate or ignored)", body = WebhookAnswer),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`gateway_unavailable`: try again", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/billing/webhooks/portone")]
pub async fn portone_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<web::Json<WebhookAnswer>, ApiError> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let parsed: WebhookBody = if form {
        serde_urlencoded::from_bytes(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid form body: {e}")))?
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    if parsed.imp_uid.is_empty() || parsed.merchant_uid.is_empty() {
        return Err(ApiError::bad_request("imp_uid and merchant_uid are required"));
    }
    let notice = WebhookNotice {
        imp_uid: parsed.imp_uid,
        merchant_uid: parsed.merchant_uid,
        status: parsed.status,
    };
    let outcome = state.payments.handle_webhook(&notice).await?;
    Ok(web::Json(WebhookAnswer {
        outcome: match outcome {
            WebhookOutcome::Applied => "applied",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Ignored => "ignored",
        },
    }))
}

/// Registers the plans, billing, cards, receipts, usage and the gateway webhook routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(plans)
        .service(get_billing)
        .service(preview_plan)
        .service(change_plan)
        .service(prepare_card)
        .service(add_card)
        .service(list_cards)
        .service(set_main_card)
        .service(delete_card)
        .service(receipts)
        .service(usage)
        .service(record_usage)
        .service(portone_webhook);
}
