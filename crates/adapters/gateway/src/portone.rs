//! PortOne (iamport) v1 REST: "non-authenticated recurring payments" with billing keys.
//!
//! Every answer of PortOne v1 is an envelope `{"code", "message", "response"}`: `code` 0 means
//! success, anything else is a refusal even with HTTP 200. Calls carry an access token from
//! `POST /users/getToken`, cached until shortly before its `expired_at`.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onboard_payments::gateway::{
    BillingKey, ChargeRequest, GatewayError, Payment, PaymentGateway, PaymentStatus,
    ScheduleRequest, Unscheduled,
};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// How to reach PortOne. `Debug` never shows the secret.
#[derive(Debug, Clone)]
pub struct PortOneConfig {
    /// The REST API root, `https://api.iamport.kr` by default (a wiremock server in tests).
    pub base_url: String,
    /// The REST API key (`imp_key`).
    pub imp_key: String,
    /// The REST API secret (`imp_secret`).
    pub imp_secret: SecretString,
    /// The merchant identification code the client SDK is initialised with (`imp12345678`).
    pub merchant_id: String,
    /// The `pg` the client SDK registers cards with (such as `nice.iamport00m`); `None` leaves
    /// the choice to PortOne's console settings.
    pub pg: Option<String>,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, answer included. A charge waits for the card
    /// issuer, so this is generous.
    pub request_timeout: Duration,
    /// A token is renewed this long before PortOne's `expired_at`.
    pub token_margin: Duration,
    /// Attempts of a request that is safe to repeat (reads, the token fetch, deleting a
    /// billing key) when PortOne is unavailable; at least 1.
    pub safe_attempts: u32,
    /// Wait before the first repeat; doubled before each further one.
    pub retry_backoff: Duration,
}

impl PortOneConfig {
    /// PortOne v1's production API root.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.iamport.kr";

    /// A configuration with the default URL, timeouts and retries.
    pub fn new(
        imp_key: impl Into<String>,
        imp_secret: SecretString,
        merchant_id: impl Into<String>,
    ) -> Self {
        Self {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            imp_key: imp_key.into(),
            imp_secret,
            merchant_id: merchant_id.into(),
            pg: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            token_margin: Duration::from_secs(60),
            safe_attempts: 3,
            retry_backoff: Duration::from_millis(200),
        }
    }
}

/// The PortOne v1 REST adapter.
///
/// Guarantees:
/// - one access token is fetched and shared by all calls until shortly before it expires; when
///   it is due, one caller fetches the next while the others wait for it; a call answered 401
///   drops its token and is repeated once with a fresh one;
/// - an envelope with `code != 0` is [`GatewayError::Rejected`] (except where the port defines
///   the refusal as an answer: an unknown billing key or payment is `None`, an unscheduled
///   charge with nothing to cancel is [`Unscheduled::NothingToCancel`]);
/// - network failures, timeouts, HTTP 5xx and 429, and answers that are not PortOne's envelope
///   (a proxy's error page, a wrong base URL) are [`GatewayError::Unavailable`];
/// - only requests that are safe to repeat are repeated (reads, the token fetch, and deleting
///   a billing key, which answers "absent" the second time). A charge or a schedule is never
///   repeated: after a timeout PortOne may have carried it out, and a blind repeat could charge
///   twice (`again`) or be refused as a duplicate `merchant_uid` (`schedule`), so the caller
///   decides after reading the state back;
/// - neither the secret, nor a token, nor a card number is ever logged.
#[derive(Debug)]
pub struct PortOneGateway {
    http: reqwest::Client,
    base: Url,
    config: PortOneConfig,
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: SecretString,
    fresh_until: Instant,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken").field("fresh_until", &self.fresh_until).finish()
    }
}

/// The request of one call.
enum Req {
    Get,
    Delete,
    Post(Value),
}

impl Req {
    fn name(&self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Delete => "DELETE",
            Self::Post(_) => "POST",
        }
    }
}

/// PortOne answered with its envelope, and refused (`code != 0`, or an HTTP 4xx).
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: i64,
    message: String,
}

impl Refusal {
    fn into_error(self) -> GatewayError {
        GatewayError::Rejected { code: self.code, message: self.message }
    }
}

/// What a call got back.
enum Answer<T> {
    Done(T),
    Refused(Refusal),
}

#[derive(Deserialize)]
struct Envelope {
    code: i64,
    message: Option<String>,
    response: Option<Value>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    /// PortOne's clock, unix seconds.
    now: i64,
    /// Unix seconds, on PortOne's clock.
    expired_at: i64,
}

#[derive(Deserialize)]
struct CustomerAnswer {
    customer_uid: String,
    card_name: Option<String>,
    card_number: Option<String>,
}

#[derive(Deserialize)]
struct PaymentAnswer {
    imp_uid: String,
    merchant_uid: String,
    customer_uid: Option<String>,
    amount: serde_json::Number,
    status: String,
    fail_reason: Option<String>,
    paid_at: Option<serde_json::Number>,
}

impl PaymentAnswer {
    fn into_payment(self) -> Result<Payment, GatewayError> {
        let status = match self.status.as_str() {
            "ready" => PaymentStatus::Ready,
            "paid" => PaymentStatus::Paid,
            "failed" => PaymentStatus::Failed,
            "cancelled" => PaymentStatus::Cancelled,
            other => {
                return Err(GatewayError::Unavailable(format!(
                    "PortOne answered an unknown payment status {other:?}"
                )));
            }
        };
        let amount = whole(&self.amount).ok_or_else(|| {
            GatewayError::Unavailable(format!("PortOne answered an amount of {}", self.amount))
        })?;
        let paid_at = self
            .paid_at
            .as_ref()
            .and_then(whole)
            .filter(|s| *s > 0)
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
        Ok(Payment {
            imp_uid: self.imp_uid,
            merchant_uid: self.merchant_uid,
            customer_uid: self.customer_uid.filter(|c| !c.is_empty()),
            amount,
            failure_reason: self
                .fail_reason
                .filter(|r| !r.is_empty() && status == PaymentStatus::Failed),
            status,
            paid_at,
        })
    }
}

/// A JSON number as a whole number (PortOne writes integers; some fakes write `1000.0`).
fn whole(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64().filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64)
    })
}

/// Whether PortOne's (Korean) message says the thing asked for does not exist: "…존재하지
/// 않습니다" ("does not exist": "취소할 예약결제 기록이 존재하지 않습니다." for an unschedule with
/// nothing to cancel, "존재하지 않는 결제정보입니다." for an unknown payment) or "…찾을 수
/// 없습니다" ("cannot be found": an unknown `customer_uid`).
fn says_absent(message: &str) -> bool {
    message.contains("존재하지 않") || message.contains("찾을 수 없")
}

fn unavailable(e: &reqwest::Error) -> GatewayError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // The message says what failed, not where (paths carry ids only, but keep errors short).
    GatewayError::Unavailable(format!("PortOne {what}: {}", strip_url(e)))
}

fn strip_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "");
    }
    s
}

impl PortOneGateway {
    /// Builds the adapter; fails when the base URL is not an http(s) URL or the HTTP client
    /// cannot be built.
    pub fn new(config: PortOneConfig) -> anyhow::Result<Self> {
        let base = Url::parse(&config.base_url)
            .map_err(|e| anyhow::anyhow!("PortOne base URL {:?}: {e}", config.base_url))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            anyhow::bail!("PortOne base URL {:?} is not an http(s) URL", config.base_url);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("onboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        Ok(Self { http, base, config, token: tokio::sync::Mutex::new(None) })
    }

    /// `base` + the segments, each percent-encoded (ids from outside cannot change the path).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A valid access token: the cached one, or a new one (one fetch at a time).
    async fn token(&self) -> Result<SecretString, GatewayError> {
        let mut slot = self.token.lock().await;
        if let Some(cached) = slot.as_ref()
            && Instant::now() < cached.fresh_until
        {
            return Ok(cached.value.clone());
        }
        let fetched = self.fetch_token().await?;
        let value = fetched.value.clone();
        *slot = Some(fetched);
        Ok(value)
    }

    /// Drops the cached token if it is still `used` (another caller may have renewed it).
    async fn forget(&self, used: &SecretString) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|c| c.value.expose_secret() == used.expose_secret()) {
            *slot = None;
        }
    }

    async fn fetch_token(&self) -> Result<CachedToken, GatewayError> {
        let url = self.url(&["users", "getToken"]);
        let body = json!({
            "imp_key": self.config.imp_key,
            "imp_secret": self.config.imp_secret.expose_secret(),
        });
        let answer: TokenAnswer = self
            .with_retries(true, || async {
                let response = traced(self.http.post(url.clone()))
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| unavailable(&e))?;
                read_envelope(response).await
            })
            .await?
            .done()?;
        let lifetime = Duration::from_secs(
            u64::try_from(answer.expired_at.saturating_sub(answer.now)).unwrap_or(0),
        );
        tracing::debug!(
            target: "onboard::gateway",
            lifetime_secs = lifetime.as_secs(),
            "PortOne access token fetched"
        );
        Ok(CachedToken {
            value: SecretString::from(answer.access_token),
            fresh_until: Instant::now() + lifetime.saturating_sub(self.config.token_margin),
        })
    }

    /// Runs `attempt` once, or (when `safe`) up to `safe_attempts` times while PortOne is
    /// unavailable, with a doubling backoff.
    async fn with_retries<T, F, Fut>(&self, safe: bool, attempt: F) -> Result<T, GatewayError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, GatewayError>>,
    {
        let attempts = if safe { self.config.safe_attempts.max(1) } else { 1 };
        let mut backoff = self.config.retry_backoff;
        let mut tried = 1;
        loop {
            match attempt().await {
                Err(GatewayError::Unavailable(why)) if tried < attempts => {
                    tracing::debug!(target: "onboard::gateway", %why, tried, "PortOne unavailable; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    tried += 1;
                }
                other => return other,
            }
        }
    }

    /// One authenticated call: repeated once with a fresh token after a 401, and (when `safe`)
    /// repeated while PortOne is unavailable.
    async fn call<T: DeserializeOwned>(
        &self,
        req: Req,
        segments: &[&str],
        safe: bool,
    ) -> Result<Answer<T>, GatewayError> {
        let url = self.url(segments);
        tracing::debug!(target: "onboard::gateway", method = req.name(), path = url.path(), "PortOne call");
        self.with_retries(safe, || async {
            let token = self.token().await?;
            let mut response = self.send(&req, &url, &token).await?;
            if response.status() == StatusCode::UNAUTHORIZED {
                self.forget(&token).await;
                let token = self.token().await?;
                response = self.send(&req, &url, &token).await?;
            }
            read_envelope(response).await
        })
        .await
    }

    async fn send(
        &self,
        req: &Req,
        url: &Url,
        token: &SecretString,
    ) -> Result<reqwest::Response, GatewayError> {
        let builder = match req {
            Req::Get => self.http.get(url.clone()),
            Req::Delete => self.http.delete(url.clone()),
            Req::Post(body) => self.http.post(url.clone()).json(body),
        };
        traced(builder).bearer_auth(token.expose_secret()).send().await.map_err(|e| unavailable(&e))
    }
}

/// `request` with the current trace context (`traceparent`), when the application exports
/// traces.
fn traced(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    onboard_kernel::trace_context::outbound_headers()
        .into_iter()
        .fold(request, |request, (name, value)| request.header(name, value))
}

impl<T> Answer<T> {
    /// The result, or the refusal as [`GatewayError::Rejected`].
    fn done(self) -> Result<T, GatewayError> {
        match self {
            Self::Done(t) => Ok(t),
            Self::Refused(r) => Err(r.into_error()),
        }
    }
}

/// Reads PortOne's envelope from an answer.
async fn read_envelope<T: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<Answer<T>, GatewayError> {
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(GatewayError::Unavailable(format!("PortOne answered HTTP {status}")));
    }
    let body = response.bytes().await.map_err(|e| unavailable(&e))?;
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(envelope) => envelope,
        // Not PortOne speaking (a proxy, a wrong PORTONE_API_URL): the gateway was not asked.
        Err(_) => {
            return Err(GatewayError::Unavailable(format!(
                "PortOne answered HTTP {status} without its envelope"
            )));
        }
    };
    if envelope.code != 0 || !status.is_success() {
        let code = if envelope.code != 0 { envelope.code } else { i64::from(status.as_u16()) };
        return Ok(Answer::Refused(Refusal {
            status,
            code,
            message: envelope.message.unwrap_or_else(|| format!("HTTP {status}")),
        }));
    }
    serde_json::from_value(envelope.response.unwrap_or(Value::Null)).map(Answer::Done).map_err(
        |e| GatewayError::Unavailable(format!("PortOne answered an unexpected shape: {e}")),
    )
}

#[async_trait]
impl PaymentGateway for PortOneGateway {
    async fn billing_key(&self, customer_uid: &str) -> Result<Option<BillingKey>, GatewayError> {
        if customer_uid.is_empty() {
            return Ok(None);
        }
        let answer: Answer<CustomerAnswer> =
            self.call(Req::Get, &["subscribe", "customers", customer_uid], true).await?;
        match answer {
            Answer::Done(c) => Ok(Some(BillingKey {
                customer_uid: c.customer_uid,
                card_name: c.card_name.unwrap_or_default(),
                number_masked: c.card_number.unwrap_or_default(),
            })),
            // PortOne: HTTP 404, code 1, "요청하신 customer_uid(…)로 등록된 정보를 찾을 수 없습니다."
            Answer::Refused(r) if r.status == StatusCode::NOT_FOUND || says_absent(&r.message) => {
                Ok(None)
            }
            Answer::Refused(r) => Err(r.into_error()),
        }
    }

    async fn delete_billing_key(&self, customer_uid: &str) -> Result<(), GatewayError> {
        if customer_uid.is_empty() {
            return Ok(());
        }
        let answer: Answer<Value> =
            self.call(Req::Delete, &["subscribe", "customers", customer_uid], true).await?;
        match answer {
            Answer::Done(_) => Ok(()),
            Answer::Refused(r) if r.status == StatusCode::NOT_FOUND || says_absent(&r.message) => {
                Ok(())
            }
            Answer::Refused(r) => Err(r.into_error()),
        }
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<Payment, GatewayError> {
        let body = json!({
            "customer_uid": request.customer_uid,
            "merchant_uid": request.merchant_uid,
            "amount": request.amount,
            "name": request.name,
        });
        // A declined card answers code 0 and a payment with status "failed".
        let payment: PaymentAnswer =
            self.call(Req::Post(body), &["subscribe", "payments", "again"], false).await?.done()?;
        payment.into_payment()
    }

    async fn schedule(&self, request: &ScheduleRequest) -> Result<(), GatewayError> {
        let body = json!({
            "customer_uid": request.customer_uid,
            "schedules": [{
                "merchant_uid": request.merchant_uid,
                "schedule_at": request.at.timestamp(),
                "amount": request.amount,
                "name": request.name,
            }],
        });
        let _: Value = self
            .call(Req::Post(body), &["subscribe", "payments", "schedule"], false)
            .await?
            .done()?;
        Ok(())
    }

    async fn unschedule(
        &self,
        customer_uid: &str,
        merchant_uid: &str,
    ) -> Result<Unscheduled, GatewayError> {
        let body = json!({ "customer_uid": customer_uid, "merchant_uid": [merchant_uid] });
        let answer: Answer<Value> =
            self.call(Req::Post(body), &["subscribe", "payments", "unschedule"], false).await?;
        match answer {
            Answer::Done(Value::Array(revoked)) if revoked.is_empty() => {
                Ok(Unscheduled::NothingToCancel)
            }
            Answer::Done(_) => Ok(Unscheduled::Cancelled),
            Answer::Refused(r) if says_absent(&r.message) => Ok(Unscheduled::NothingToCancel),
            Answer::Refused(r) => Err(r.into_error()),
        }
    }

    async fn payment(&self, imp_uid: &str) -> Result<Option<Payment>, GatewayError> {
        if imp_uid.is_empty() {
            return Ok(None);
        }
        let answer: Answer<PaymentAnswer> =
            self.call(Req::Get, &["payments", imp_uid], true).await?;
        match answer {
            Answer::Done(p) => p.into_payment().map(Some),
            // PortOne: HTTP 404, code -1, "존재하지 않는 결제정보입니다."
            Answer::Refused(r) if r.status == StatusCode::NOT_FOUND || says_absent(&r.message) => {
                Ok(None)
            }
            Answer::Refused(r) => Err(r.into_error()),
        }
    }

    /// `GET /payments/find/{merchant_uid}`: PortOne's latest payment under that id.
    async fn payment_by_merchant_uid(
        &self,
        merchant_uid: &str,
    ) -> Result<Option<Payment>, GatewayError> {
        if merchant_uid.is_empty() {
            return Ok(None);
        }
        let answer: Answer<PaymentAnswer> =
            self.call(Req::Get, &["payments", "find", merchant_uid], true).await?;
        match answer {
            Answer::Done(p) => p.into_payment().map(Some),
            Answer::Refused(r) if r.status == StatusCode::NOT_FOUND || says_absent(&r.message) => {
                Ok(None)
            }
            Answer::Refused(r) => Err(r.into_error()),
        }
    }

    fn client_config(&self) -> Value {
        let mut config = json!({ "merchant_id": self.config.merchant_id });
        if let Some(pg) = &self.config.pg {
            config["pg"] = json!(pg);
        }
        config
    }
}
