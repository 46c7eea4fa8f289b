//! Test calls of the simulated payment gateway, mounted only with `PAYMENT_GATEWAY=simulated`
//! (never in production): register a test card as PortOne's own billing-key call would, run a
//! scheduled charge now, and inject faults. Not part of the API document.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use onboard_gateway::{Op, SimCard, SimOutcome, SimulatedGateway};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::ApiError;
use crate::extract::JsonBody;

/// Mounts the test calls under `/sim/portone`, served by `sim`.
pub fn configure(cfg: &mut web::ServiceConfig, sim: Arc<SimulatedGateway>) {
    cfg.app_data(web::Data::new(sim)).service(
        web::scope("/sim/portone")
            .route("/subscribe/customers/{customer_uid}", web::post().to(register_card))
            .route("/schedules/{merchant_uid}/execute", web::post().to(execute))
            .route("/faults", web::post().to(faults)),
    );
}

/// PortOne's `POST /subscribe/customers/{customer_uid}` body (other PortOne fields, such as
/// `customer_name`, are accepted and ignored, as PortOne would store them).
#[derive(Debug, Deserialize)]
pub struct CardBody {
    card_number: String,
    expiry: String,
    birth: String,
    pwd_2digit: Option<String>,
}

/// `POST /sim/portone/subscribe/customers/{customer_uid}`: registers a test card and answers in
/// PortOne's envelope `{"code": 0, "message": null, "response": {customer_uid, card_name,
/// card_number}}` (the number masked).
pub async fn register_card(
    sim: web::Data<Arc<SimulatedGateway>>,
    customer_uid: web::Path<String>,
    body: JsonBody<CardBody>,
) -> Result<HttpResponse, ApiError> {
    let CardBody { card_number, expiry, birth, pwd_2digit } = body.into_inner();
    let key =
        sim.register_card(&customer_uid, SimCard { card_number, expiry, birth, pwd_2digit })?;
    Ok(HttpResponse::Ok().json(json!({
        "code": 0,
        "message": null,
        "response": {
            "customer_uid": key.customer_uid,
            "card_name": key.card_name,
            "card_number": key.number_masked,
        },
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteBody {
    /// `paid` or `failed`; absent: by the card (the paying or the declining test card).
    outcome: Option<SimOutcome>,
}

/// `POST /sim/portone/schedules/{merchant_uid}/execute`: runs that scheduled charge now,
/// delivers the webhook, and answers the payment.
pub async fn execute(
    sim: web::Data<Arc<SimulatedGateway>>,
    merchant_uid: web::Path<String>,
    body: JsonBody<ExecuteBody>,
) -> Result<HttpResponse, ApiError> {
    let payment = match body.outcome {
        Some(outcome) => sim.execute(&merchant_uid, outcome).await?,
        None => sim.execute_by_card(&merchant_uid).await?,
    };
    Ok(HttpResponse::Ok().json(payment))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultBody {
    /// `schedule`, `unschedule` or `charge`.
    fail_next: Op,
}

/// `POST /sim/portone/faults`: the next call of that kind answers "gateway unavailable" and
/// does nothing.
pub async fn faults(
    sim: web::Data<Arc<SimulatedGateway>>,
    body: JsonBody<FaultBody>,
) -> Result<HttpResponse, ApiError> {
    sim.fail_next(body.fail_next);
    Ok(HttpResponse::Ok().json(&*body))
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::{App, test};
    use chrono::Utc;
    use onboard_kernel::SystemClock;
    use onboard_payments::gateway::{GatewayError, PaymentGateway, ScheduleRequest};
    use serde_json::{Value, json};

    use super::*;

    async fn call(
        sim: &Arc<SimulatedGateway>,
        path: &str,
        body: Value,
    ) -> (StatusCode, Option<String>, Value) {
        let sim = sim.clone();
        let app = test::init_service(
            App::new()
                .app_data(
                    web::JsonConfig::default()
                        .error_handler(|e, _| crate::error::json_error(e).into()),
                )
                .configure(move |cfg| configure(cfg, sim)),
        )
        .await;
        let response = test::call_service(
            &app,
            test::TestRequest::post().uri(path).set_json(body).to_request(),
        )
        .await;
        let status = response.status();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = test::read_body(response).await;
        (status, content_type, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn sim() -> Arc<SimulatedGateway> {
        Arc::new(SimulatedGateway::new(Arc::new(SystemClock)))
    }

    const CARD_PATH: &str = "/sim/portone/subscribe/customers/cust_1";

    #[actix_web::test]
    async fn registering_a_test_card_answers_in_portones_envelope() {
        let sim = sim();
        let (status, _, body) = call(
            &sim,
            CARD_PATH,
            json!({"card_number": "4242 4242 4242 4242", "expiry": "2030-12", "birth": "900101", "pwd_2digit": "12"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"code": 0, "message": null, "response": {
                "customer_uid": "cust_1", "card_name": "Test Card", "card_number": "424242******4242"
            }})
        );
        assert!(sim.billing_key("cust_1").await.expect("answers").is_some());
    }

    #[actix_web::test]
    async fn another_card_or_a_malformed_body_is_a_400_problem() {
        let sim = sim();
        let (status, content_type, body) = call(
            &sim,
            CARD_PATH,
            json!({"card_number": "5555 5555 5555 4444", "expiry": "2030-12", "birth": "900101"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        assert_eq!(body["code"], "invalid_request");
        assert_eq!(body["errors"][0]["field"], "card_number");

        let (status, _, body) = call(
            &sim,
            CARD_PATH,
            json!({"card_number": "4242424242424242", "expiry": "12/30", "birth": "900101"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["errors"][0]["field"], "expiry");

        let (status, _, _) =
            call(&sim, CARD_PATH, json!({"card_number": "4242424242424242"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _, _) = call(&sim, CARD_PATH, json!(["4242424242424242"])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(sim.billing_key("cust_1").await.expect("answers").is_none());
    }

    async fn scheduled(sim: &Arc<SimulatedGateway>, merchant_uid: &str) {
        sim.register_card("cust_1", SimCard::new("4242424242424242", "2030-12", "900101", None))
            .expect("registers");
        sim.schedule(&ScheduleRequest {
            customer_uid: "cust_1".into(),
            merchant_uid: merchant_uid.into(),
            at: Utc::now() + chrono::Duration::days(14),
            amount: 83_380,
            name: "Onboard Pro (monthly)".into(),
        })
        .await
        .expect("scheduled");
    }

    #[actix_web::test]
    async fn executing_a_schedule_answers_the_payment() {
        let sim = sim();
        scheduled(&sim, "m_1").await;
        let (status, _, body) =
            call(&sim, "/sim/portone/schedules/m_1/execute", json!({"outcome": "failed"})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["merchant_uid"], "m_1");
        assert_eq!(body["status"], "failed");
        assert_eq!(body["amount"], 83_380);
        let imp_uid = body["imp_uid"].as_str().expect("an imp_uid");
        assert!(sim.payment(imp_uid).await.expect("answers").is_some());

        let (status, _, body) =
            call(&sim, "/sim/portone/schedules/m_1/execute", json!({"outcome": "paid"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "it already ran");
        assert_eq!(body["code"], "not_found");
    }

    #[actix_web::test]
    async fn executing_without_an_outcome_goes_by_the_card() {
        let sim = sim();
        scheduled(&sim, "m_1").await;
        let (status, _, body) = call(&sim, "/sim/portone/schedules/m_1/execute", json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "paid");
        let (status, _, _) =
            call(&sim, "/sim/portone/schedules/m_2/execute", json!({"outcome": "maybe"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[actix_web::test]
    async fn an_injected_fault_makes_the_next_call_unavailable() {
        let sim = sim();
        scheduled(&sim, "m_1").await;
        let (status, _, body) =
            call(&sim, "/sim/portone/faults", json!({"fail_next": "unschedule"})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"fail_next": "unschedule"}));
        assert!(matches!(sim.unschedule("cust_1", "m_1").await, Err(GatewayError::Unavailable(_))));
        let (status, _, _) =
            call(&sim, "/sim/portone/faults", json!({"fail_next": "refund"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
