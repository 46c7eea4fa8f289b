//! SMS credit (`shared/spec/payments.md`, "SMS credit"): a group's prepaid balance, its
//! purchases (charged to the main card at once), the auto top-up and the ledger.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use onboard_payments::sms_credit::{AutoTopup, CreditView, LedgerEntry, SmsPrices, Wallet};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::billing::{ReceiptDto, idempotency_key, outcome_response};
use super::{ListQuery, path_slug};
use crate::error::{ApiError, Problem};
use crate::extract::{Auth, JsonBody};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// The auto top-up: when a debit takes the balance below `below`, the main card is charged
/// `amount` once.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoTopupDto {
    /// KRW, 0 or more.
    #[schema(example = 1000, minimum = 0)]
    pub below: i64,
    /// KRW, at least 100.
    #[schema(example = 10000, minimum = 100)]
    pub amount: i64,
}

/// Unit prices by channel, KRW per message.
#[derive(Debug, Serialize, ToSchema)]
pub struct PricesDto {
    #[schema(example = 11)]
    pub sms: i64,
    #[schema(example = 37)]
    pub lms: i64,
    #[schema(example = 10)]
    pub alimtalk: i64,
}

impl From<SmsPrices> for PricesDto {
    fn from(p: SmsPrices) -> Self {
        Self { sms: p.sms, lms: p.lms, alimtalk: p.alimtalk }
    }
}

/// A group's SMS credit.
#[derive(Debug, Serialize, ToSchema)]
pub struct SmsCreditDto {
    /// KRW, never below 0.
    pub balance: i64,
    /// `null`: off.
    pub auto_topup: Option<AutoTopupDto>,
    pub prices: PricesDto,
}

impl SmsCreditDto {
    fn of(wallet: Wallet, prices: SmsPrices) -> Self {
        Self {
            balance: wallet.balance,
            auto_topup: wallet
                .auto_topup
                .map(|t| AutoTopupDto { below: t.below, amount: t.amount }),
            prices: prices.into(),
        }
    }
}

impl From<CreditView> for SmsCreditDto {
    fn from(v: CreditView) -> Self {
        Self::of(v.wallet, v.prices)
    }
}

/// A purchase's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseDto {
    /// The balance after.
    pub balance: i64,
    pub receipt: ReceiptDto,
}

/// One change of the balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryDto {
    /// Positive: added; negative: spent.
    pub delta: i64,
    /// The balance after the change.
    pub balance: i64,
    /// `purchase`, `auto_topup`, `message`, `refund` or `invite_sms`.
    pub reason: &'static str,
    pub at: DateTime<Utc>,
}

impl From<LedgerEntry> for LedgerEntryDto {
    fn from(e: LedgerEntry) -> Self {
        Self { delta: e.delta, balance: e.balance, reason: e.reason.as_str(), at: e.at }
    }
}

/// A page of the ledger, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerPageDto {
    pub items: Vec<LedgerEntryDto>,
    pub next_cursor: Option<String>,
}

/// Buy credit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    /// KRW, at least 100; charged to the main card at once.
    #[schema(example = 10000, minimum = 100)]
    pub amount: i64,
}

/// The group's SMS credit balance, auto top-up and unit prices (members).
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "SMS credit", body = SmsCreditDto),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/billing/sms-credit")]
pub async fn get_sms_credit(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<String>,
) -> Result<web::Json<SmsCreditDto>, ApiError> {
    let slug = path_slug(&path)?;
    Ok(web::Json(state.sms_credit.view(&slug, caller.member_id).await?.into()))
}

/// Buys credit, charging the main card at once (`Idempotency-Key`: a repeat with the same key
/// and body answers the first answer for 24 hours, and charges nothing).
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = PurchaseRequest,
    responses(
        (status = 201, description = "Bought", body = PurchaseDto),
        (status = 400, description = "`invalid_request` (below 100 KRW)", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "`payment_failed` (nothing added)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_main_card`, `idempotency_key_in_use`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`gateway_unavailable` (credited later if the card was charged)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/groups/{slug}/billing/sms-credit")]
pub async fn purchase_sms_credit(
    state: web::Data<AppState>,
    req: HttpRequest,
    Auth(caller): Auth,
    path: web::Path<String>,
    body: JsonBody<PurchaseRequest>,
) -> Result<HttpResponse, ApiError> {
    let slug = path_slug(&path)?;
    let key = idempotency_key(&req)?;
    let amount = body.into_inner().amount;
    let outcome = state
        .sms_credit
        .purchase_as(caller.member_id, &slug, amount, key.as_ref())
        .await?
        .into_outcome();
    let (status, body) = match outcome.into_result() {
        Ok(done) => {
            let dto = PurchaseDto { balance: done.balance, receipt: done.receipt.into() };
            (StatusCode::CREATED, serde_json::to_value(dto).unwrap_or_default())
        }
        Err(refused) => {
            let e = ApiError::from(refused);
            (e.status(), e.problem_json())
        }
    };
    Ok(outcome_response(status, body))
}

/// Turns the auto top-up on (`{"below", "amount"}`) or off (`null`).
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    request_body(content = Option<AutoTopupDto>, description = "`null` turns it off"),
    responses(
        (status = 200, description = "SMS credit after", body = SmsCreditDto),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/groups/{slug}/billing/sms-credit/auto-topup")]
pub async fn set_auto_topup(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<String>,
    body: JsonBody<Option<AutoTopupDto>>,
) -> Result<web::Json<SmsCreditDto>, ApiError> {
    let slug = path_slug(&path)?;
    let auto_topup = body.into_inner().map(|t| AutoTopup { below: t.below, amount: t.amount });
    auto_topup_to(&state, &slug, caller.member_id, auto_topup).await
}

/// Turns the auto top-up off.
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "SMS credit after", body = SmsCreditDto),
        (status = 403, description = "`forbidden`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/groups/{slug}/billing/sms-credit/auto-topup")]
pub async fn delete_auto_topup(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<String>,
) -> Result<web::Json<SmsCreditDto>, ApiError> {
    let slug = path_slug(&path)?;
    auto_topup_to(&state, &slug, caller.member_id, None).await
}

async fn auto_topup_to(
    state: &AppState,
    slug: &onboard_groups::Slug,
    caller: onboard_kernel::MemberId,
    auto_topup: Option<AutoTopup>,
) -> Result<web::Json<SmsCreditDto>, ApiError> {
    let wallet = state.sms_credit.set_auto_topup_as(caller, slug, auto_topup).await?;
    Ok(web::Json(SmsCreditDto::of(wallet, state.sms_credit.prices())))
}

/// The group's ledger, newest first (members).
#[utoipa::path(
    tag = "payments",
    security(("bearer" = [])),
    params(("slug" = String, Path), ListQuery),
    responses(
        (status = 200, description = "A page of the ledger", body = LedgerPageDto),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/groups/{slug}/billing/sms-credit/ledger")]
pub async fn sms_credit_ledger(
    state: web::Data<AppState>,
    Auth(caller): Auth,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<web::Json<LedgerPageDto>, ApiError> {
    let slug = path_slug(&path)?;
    let limit = query.limit()?;
    let after = query.after(|c| c.parse::<i64>().ok().filter(|id| *id > 0))?;
    let page = state.sms_credit.ledger(&slug, caller.member_id, after, limit).await?;
    Ok(web::Json(LedgerPageDto {
        items: page.items.into_iter().map(LedgerEntryDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Registers the SMS credit routes.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(get_sms_credit)
        .service(purchase_sms_credit)
        .service(set_auto_topup)
        .service(delete_auto_topup)
        .service(sms_credit_ledger);
}
