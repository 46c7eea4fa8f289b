//! The payments use cases.
//!
//! The service talks to the gateway outside any transaction and records each outcome with one
//! storage call; the billing account's version (optimistic concurrency) makes a change that
//! raced with another end as one consistent result, and what was done at the gateway for the
//! losing side is undone.

mod account;
mod cards;
mod change_plan;
mod gateway_cleanup;
mod idempotent_plan_change;
mod periodic;
mod usage;
mod usage_caller;
mod webhooks;

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use onboard_groups::{AuthorizeError, Group, GroupsService, Permission, Slug, ViewGroupError};
use onboard_kernel::events::Event;
use onboard_kernel::{Clock, GroupId, MemberId};

pub(crate) use change_plan::plan_access;
pub use idempotent_plan_change::PlanChangeOutcome;
pub use usage_caller::UsageCaller;

use crate::config::PaymentsConfig;
use crate::error::ViewBillingError;
use crate::events::{BillingEvent, status_events};
use crate::gateway::{GatewayError, Payment, PaymentGateway, ScheduleRequest};
use crate::idempotency::IdempotencyKeys;
use crate::model::{
    Billing, BillingStatus, Card, Catalogue, Charge, PlanCode, Receipt, ReceiptId, ReceiptKind,
    ReceiptStatus,
};
use crate::ports::{BillingRepository, CardRepository, IdempotencyRepository, UsageRepository};

pub use account::ReceiptPage;
pub use periodic::PeriodicReport;
pub use webhooks::WebhookOutcome;

/// How many times a use case judges again after a concurrent write.
const ATTEMPTS: usize = 5;

/// The storage and gateway ports the service needs.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct PaymentsPorts {
    pub billing: Arc<dyn BillingRepository>,
    pub cards: Arc<dyn CardRepository>,
    pub usage: Arc<dyn UsageRepository>,
    pub idempotency: Arc<dyn IdempotencyRepository>,
    pub gateway: Arc<dyn PaymentGateway>,
}

/// Plans, billing accounts, cards, charges, webhooks, receipts and usage.
#[derive(Clone)]
pub struct PaymentsService {
    ports: PaymentsPorts,
    groups: GroupsService,
    clock: Arc<dyn Clock>,
    config: PaymentsConfig,
}

impl std::fmt::Debug for PaymentsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentsService").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Logs a gateway that could not be reached.
fn unavailable(e: &GatewayError) {
    tracing::warn!(error = %e, "payment gateway");
}

fn warn(message: &str) {
    tracing::warn!("{message}");
}

impl PaymentsService {
    /// The largest page a list answers.
    pub const MAX_PAGE: u32 = 100;
    /// The page size when the client names none.
    pub const DEFAULT_PAGE: u32 = 20;

    pub fn new(
        ports: PaymentsPorts,
        groups: GroupsService,
        clock: Arc<dyn Clock>,
        config: PaymentsConfig,
    ) -> Self {
        Self { ports, groups, clock, config }
    }

    pub fn config(&self) -> &PaymentsConfig {
        &self.config
    }

    /// What the gateway's client SDK needs to register a card.
    pub fn gateway_client_config(&self) -> serde_json::Value {
        self.ports.gateway.client_config()
    }

    /// The idempotency keys the payments commands run under.
    pub(crate) fn idempotency_keys(&self) -> IdempotencyKeys {
        IdempotencyKeys::new(self.ports.idempotency.clone(), self.clock.clone())
    }

    /// The groups the payments use cases authorize callers in.
    pub(crate) const fn groups(&self) -> &GroupsService {
        &self.groups
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    async fn member_of(&self, slug: &Slug, caller: MemberId) -> Result<Group, ViewBillingError> {
        match self.groups.group(slug, caller).await {
            Ok(g) => Ok(g.group),
            Err(ViewGroupError::NotFound) => Err(ViewBillingError::NotFound),
            Err(ViewGroupError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// The group, when the caller holds `billing.manage` in it.
    pub(crate) async fn manager_of(
        &self,
        slug: &Slug,
        caller: MemberId,
    ) -> Result<Group, AuthorizeError> {
        self.groups.authorize(slug, caller, &Permission::BILLING_MANAGE).await.map(|(g, _)| g)
    }

    /// The plan catalogue.
    #[tracing::instrument(level = "debug", name = "payments.catalogue", skip_all)]
    pub async fn catalogue(&self) -> anyhow::Result<Catalogue> {
        self.ports.billing.catalogue().await
    }

    async fn load(&self, group: GroupId) -> anyhow::Result<Billing> {
        Ok(self
            .ports
            .billing
            .billing(group)
            .await?
            .unwrap_or_else(|| Billing::free(group, self.config.pay_hour)))
    }

    async fn main_card(&self, group: GroupId) -> anyhow::Result<Option<Card>> {
        Ok(self.ports.cards.cards(group).await?.into_iter().find(|c| c.main))
    }

    /// Cancels `charge` at the gateway, logging a failure (a clean-up, not a use case step).
    async fn unschedule_quietly(&self, charge: &Charge) {
        if let Err(e) = self
            .ports
            .gateway
            .unschedule(charge.customer_uid.as_str(), charge.merchant_uid.as_str())
            .await
        {
            warn(&format!(
                "could not cancel the scheduled charge {} at the gateway: {e}",
                charge.merchant_uid
            ));
        }
    }

    /// What a change of the account tells by itself (see [`status_events`]).
    fn status_events(
        &self,
        before: &Billing,
        after: &Billing,
        catalogue: &Catalogue,
    ) -> Vec<BillingEvent> {
        status_events(
            before,
            after,
            |code| plan_name(catalogue, &PlanCode::from_trusted(code)),
            &self.config.clock,
        )
    }

    /// The records of a change's events, as it happens now.
    fn records(&self, events: &[BillingEvent]) -> Vec<Event> {
        Event::records(events, self.now())
    }
}

/// The display name of a plan (its code when the catalogue lacks it).
fn plan_name(catalogue: &Catalogue, code: &PlanCode) -> String {
    catalogue.plan(code).map_or_else(|| code.as_str().to_owned(), |p| p.name.clone())
}

/// Puts the account back on Free, with nothing scheduled.
fn to_free(b: &mut Billing) {
    b.plan = PlanCode::free();
    b.interval = None;
    b.addons.clear();
    b.status = BillingStatus::Free;
    b.trial_ends_at = None;
    b.current_period_start = None;
    b.current_period_end = None;
    b.cancel_at_period_end = false;
    b.next_charge = None;
}

/// The receipt of a charge the gateway reports paid.
fn paid_receipt(charge: &Charge, payment: &Payment, now: DateTime<Utc>) -> Receipt {
    Receipt {
        id: ReceiptId::new(),
        group: charge.group,
        kind: ReceiptKind::Subscription,
        money: charge.money,
        status: ReceiptStatus::Paid,
        imp_uid: payment.imp_uid.clone(),
        merchant_uid: charge.merchant_uid.clone(),
        card_id: Some(charge.card_id),
        paid_at: Some(payment.paid_at.unwrap_or(now)),
        failure_reason: None,
        created_at: now,
    }
}

/// The name of a charge at the gateway.
fn charge_name(charge: &Charge) -> String {
    let interval = match charge.interval {
        crate::model::Interval::Month => "monthly",
        crate::model::Interval::Year => "yearly",
    };
    format!("Onboard {} ({interval})", charge.plan)
}

/// The gateway request that schedules `charge`.
fn schedule_request(charge: &Charge) -> ScheduleRequest {
    ScheduleRequest {
        customer_uid: charge.customer_uid.to_string(),
        merchant_uid: charge.merchant_uid.to_string(),
        at: charge.at.trunc_subsecs(0),
        amount: charge.money.amount,
        name: charge_name(charge),
    }
}

#[cfg(test)]
mod tests;
