//! The plan-change table of payments.md as one pure function: both the preview and the change
//! call [`plan_change`], so a preview always tells exactly what the change would do.

use chrono::{DateTime, Duration, Utc};

use crate::config::PaymentsConfig;
use crate::model::{
    Billing, BillingStatus, Card, Catalogue, Charge, ChargeKind, ChargeStatus, Interval,
    MerchantUid, Money, Plan, PlanCode,
};

/// What a client asks for: a plan, its interval (required for a paid plan), its add-ons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRequest {
    pub plan: PlanCode,
    pub interval: Option<Interval>,
    pub addons: Vec<PlanCode>,
}

/// The merchant uids a change may use (drawn by the caller so that the function stays pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIds {
    /// For a charge made at once.
    pub charge_now: MerchantUid,
    /// For a charge scheduled.
    pub schedule: MerchantUid,
}

impl NewIds {
    pub fn generate() -> Self {
        Self { charge_now: MerchantUid::generate(), schedule: MerchantUid::generate() }
    }
}

/// The effects of a plan change, to carry out in this order: charge now (when a failure
/// means nothing changes), unschedule, schedule, then record `billing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChange {
    /// When the requested plan becomes (or, for a cancellation, stops being) current.
    pub effective_at: DateTime<Utc>,
    /// A charge to make at once; a decline means nothing changes.
    pub charge_now: Option<Charge>,
    /// The pending charge to cancel at the gateway.
    pub unschedule: Option<Charge>,
    /// The charge to schedule at the gateway (also `billing.next_charge`).
    pub schedule: Option<Charge>,
    /// The account afterwards (its `version` is the one read).
    pub billing: Billing,
    /// Nothing to do: the account already is (or will be) as asked.
    pub unchanged: bool,
}

/// Why a plan change is refused (nothing happens).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanRefusal {
    /// 400: no such plan in the catalogue.
    #[error("no such plan")]
    UnknownPlan,
    /// 400: the plan offers no such add-on.
    #[error("the plan offers no add-on {0}")]
    UnknownAddon(PlanCode),
    /// 400: a paid plan needs `interval`.
    #[error("a paid plan needs an interval (month or year)")]
    IntervalRequired,
    /// 409 `no_main_card`: the change must charge or schedule, and the group has no main card.
    #[error("the group has no main card")]
    NoMainCard,
    /// 409 `billing_busy`: a charge made at once is still being made.
    #[error("another plan change is being charged")]
    Busy,
}

fn same_choice(
    plan: &PlanCode,
    interval: Option<Interval>,
    addons: &[PlanCode],
    r: &PlanRequest,
) -> bool {
    plan == &r.plan && interval == r.interval && addons == r.addons.as_slice()
}

/// Judges a plan change: the current account, the main card, the request, the time, the
/// catalogue and settings in; the effects out. Pure: the same inputs give the same answer.
/// One method per current status holds that status's rows of the table.
pub fn plan_change(
    current: &Billing,
    main_card: Option<&Card>,
    request: &PlanRequest,
    now: DateTime<Utc>,
    catalogue: &Catalogue,
    config: &PaymentsConfig,
    ids: &NewIds,
) -> Result<PlanChange, PlanRefusal> {
    let plan = catalogue.plan(&request.plan).ok_or(PlanRefusal::UnknownPlan)?;
    let request = normalized(plan, request)?;
    if let Some(c) = &current.next_charge
        && c.kind == ChargeKind::Immediate
        && c.status == ChargeStatus::Scheduled
    {
        return Err(PlanRefusal::Busy);
    }
    let pending = current.next_charge.clone().filter(|c| c.status == ChargeStatus::Scheduled);
    let judge = Judge { current, main_card, request, plan, now, config, ids, pending };
    match current.status {
        BillingStatus::Free => judge.when_free(),
        BillingStatus::Trialing => judge.when_trialing(),
        BillingStatus::Active => judge.when_active(),
        BillingStatus::PastDue => judge.when_past_due(),
        BillingStatus::Canceling => judge.when_canceling(),
    }
}

/// The request as it is judged: Free takes no interval or add-ons; a paid plan needs an
/// interval and add-ons it offers (sorted, once each).
fn normalized(plan: &Plan, request: &PlanRequest) -> Result<PlanRequest, PlanRefusal> {
    let mut request = request.clone();
    if plan.is_free() {
        request.interval = None;
        request.addons.clear();
        return Ok(request);
    }
    if request.interval.is_none() {
        return Err(PlanRefusal::IntervalRequired);
    }
    request.addons.sort();
    request.addons.dedup();
    if let Some(bad) = request.addons.iter().find(|a| !plan.addons.iter().any(|o| &o.code == *a)) {
        return Err(PlanRefusal::UnknownAddon(bad.clone()));
    }
    Ok(request)
}

/// One plan change being judged: its inputs, and the scheduled charge it may replace.
struct Judge<'a> {
    current: &'a Billing,
    main_card: Option<&'a Card>,
    request: PlanRequest,
    plan: &'a Plan,
    now: DateTime<Utc>,
    config: &'a PaymentsConfig,
    ids: &'a NewIds,
    pending: Option<Charge>,
}

impl Judge<'_> {
    /// Nothing to do; the answer says when the current choice holds.
    fn unchanged(&self, effective_at: DateTime<Utc>) -> PlanChange {
        PlanChange {
            effective_at,
            charge_now: None,
            unschedule: None,
            schedule: None,
            billing: self.current.clone(),
            unchanged: true,
        }
    }

    /// A change that schedules `schedule` (and charges `charge_now`) with the account after.
    fn change(
        &self,
        effective_at: DateTime<Utc>,
        charge_now: Option<Charge>,
        unschedule: Option<Charge>,
        schedule: Option<Charge>,
        billing: Billing,
    ) -> PlanChange {
        PlanChange { effective_at, charge_now, unschedule, schedule, billing, unchanged: false }
    }

    fn period_end_of(&self, start: DateTime<Utc>, interval: Interval) -> DateTime<Utc> {
        let clock = self.config.clock;
        clock.period_end(clock.day_of(start), interval, self.current.pay_hour)
    }

    /// A charge of the requested choice on the main card. Everything that is not a move to
    /// Free charges or schedules one.
    fn charge_for(
        &self,
        kind: ChargeKind,
        at: DateTime<Utc>,
        period_start: DateTime<Utc>,
        attempt: u32,
        uid: &MerchantUid,
    ) -> Result<Charge, PlanRefusal> {
        let card = self.main_card.ok_or(PlanRefusal::NoMainCard)?;
        let interval = self.request.interval.ok_or(PlanRefusal::IntervalRequired)?;
        Ok(Charge {
            merchant_uid: uid.clone(),
            group: self.current.group,
            card_id: card.id,
            customer_uid: card.customer_uid.clone(),
            money: Money::with_vat(self.plan.period_price(interval, &self.request.addons)),
            at,
            plan: self.request.plan.clone(),
            interval,
            addons: self.request.addons.clone(),
            period_start,
            kind,
            attempt,
            status: ChargeStatus::Scheduled,
            created_at: self.now,
        })
    }

    /// The account as the request chose it (plan, interval, add-ons).
    fn chosen(&self) -> Billing {
        let mut b = self.current.clone();
        b.plan = self.request.plan.clone();
        b.interval = self.request.interval;
        b.addons = self.request.addons.clone();
        b
    }

    fn is_requested(
        &self,
        plan: &PlanCode,
        interval: Option<Interval>,
        addons: &[PlanCode],
    ) -> bool {
        same_choice(plan, interval, addons, &self.request)
    }

    fn pending_is_requested(&self) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| self.is_requested(&p.plan, Some(p.interval), &p.addons))
    }

    fn current_is_requested(&self) -> bool {
        let c = self.current;
        self.is_requested(&c.plan, c.interval, &c.addons)
    }

    /// Free at once: the pending charge unscheduled, the period and trial gone.
    fn to_free_now(&self) -> PlanChange {
        let mut b = self.current.clone();
        b.plan = PlanCode::free();
        b.interval = None;
        b.addons.clear();
        b.status = BillingStatus::Free;
        b.trial_ends_at = None;
        b.current_period_start = None;
        b.current_period_end = None;
        b.cancel_at_period_end = false;
        b.next_charge = None;
        self.change(self.now, None, self.pending.clone(), None, b)
    }

    fn when_free(&self) -> Result<PlanChange, PlanRefusal> {
        if self.plan.is_free() {
            return Ok(self.unchanged(self.now));
        }
        let interval = self.request.interval.ok_or(PlanRefusal::IntervalRequired)?;
        let (now, ids) = (self.now, self.ids);
        let mut b = self.chosen();
        b.cancel_at_period_end = false;
        if !self.current.trial_used {
            // The trial: the new plan at once, the first charge at the trial's end.
            let clock = self.config.clock;
            let trial_end = clock.at_pay_hour(
                clock.day_of(now) + Duration::days(self.config.trial_days),
                self.current.pay_hour,
            );
            let first =
                self.charge_for(ChargeKind::TrialEnd, trial_end, trial_end, 0, &ids.schedule)?;
            b.status = BillingStatus::Trialing;
            b.trial_used = true;
            b.trial_ends_at = Some(trial_end);
            b.current_period_start = Some(now);
            b.current_period_end = Some(trial_end);
            b.next_charge = Some(first.clone());
            return Ok(self.change(now, None, None, Some(first), b));
        }
        // Trial used: a period charged now, the next one scheduled at its end.
        let end = self.period_end_of(now, interval);
        let now_charge = self.charge_for(ChargeKind::Immediate, now, now, 0, &ids.charge_now)?;
        let next = self.charge_for(ChargeKind::Renewal, end, end, 0, &ids.schedule)?;
        b.status = BillingStatus::Active;
        b.current_period_start = Some(now);
        b.current_period_end = Some(end);
        b.next_charge = Some(next.clone());
        Ok(self.change(now, Some(now_charge), None, Some(next), b))
    }

    fn when_trialing(&self) -> Result<PlanChange, PlanRefusal> {
        if self.plan.is_free() {
            return Ok(self.to_free_now());
        }
        if self.current_is_requested() && self.pending_is_requested() {
            return Ok(self.unchanged(self.now));
        }
        let c = self.current;
        let trial_end = c.trial_ends_at.or(c.current_period_end).unwrap_or(self.now);
        let first =
            self.charge_for(ChargeKind::TrialEnd, trial_end, trial_end, 0, &self.ids.schedule)?;
        let mut b = self.chosen();
        b.next_charge = Some(first.clone());
        Ok(self.change(self.now, None, self.pending.clone(), Some(first), b))
    }

    fn when_active(&self) -> Result<PlanChange, PlanRefusal> {
        let end = self.current.current_period_end.unwrap_or(self.now);
        if self.plan.is_free() {
            let mut b = self.current.clone();
            b.status = BillingStatus::Canceling;
            b.cancel_at_period_end = true;
            b.next_charge = None;
            return Ok(self.change(end, None, self.pending.clone(), None, b));
        }
        let next_choice = match &self.pending {
            Some(_) => self.pending_is_requested(),
            None => self.current_is_requested(),
        };
        if next_choice && self.pending.is_some() {
            return Ok(self.unchanged(end));
        }
        let at = self.pending.as_ref().map_or(end, |p| p.at);
        let next = self.charge_for(ChargeKind::Renewal, at, end, 0, &self.ids.schedule)?;
        let mut b = self.current.clone();
        b.next_charge = Some(next.clone());
        Ok(self.change(end, None, self.pending.clone(), Some(next), b))
    }

    fn when_past_due(&self) -> Result<PlanChange, PlanRefusal> {
        if self.plan.is_free() {
            return Ok(self.to_free_now());
        }
        // The pending retry is replaced by one for the new choice, at the same time.
        let Some(p) = self.pending.clone() else {
            return Ok(self.to_free_now());
        };
        if self.pending_is_requested() {
            return Ok(self.unchanged(p.at));
        }
        let retry = self.charge_for(p.kind, p.at, p.period_start, p.attempt, &self.ids.schedule)?;
        let mut b = self.current.clone();
        b.next_charge = Some(retry.clone());
        Ok(self.change(p.at, None, Some(p), Some(retry), b))
    }

    fn when_canceling(&self) -> Result<PlanChange, PlanRefusal> {
        let end = self.current.current_period_end.unwrap_or(self.now);
        if self.plan.is_free() {
            return Ok(self.unchanged(end));
        }
        let next = self.charge_for(ChargeKind::Renewal, end, end, 0, &self.ids.schedule)?;
        let mut b = self.current.clone();
        b.status = BillingStatus::Active;
        b.cancel_at_period_end = false;
        b.next_charge = Some(next.clone());
        let effective_at = if self.current_is_requested() { self.now } else { end };
        Ok(self.change(effective_at, None, None, Some(next), b))
    }
}

/// When the retry number `attempt` (1-based) of a charge first due at `first_at` runs; `None`
/// after the last retry.
pub fn retry_at(
    first_at: DateTime<Utc>,
    attempt: u32,
    config: &PaymentsConfig,
) -> Option<DateTime<Utc>> {
    let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
    config.retry_days.get(index).map(|days| first_at + Duration::days(*days))
}

/// When the first attempt of a charge was due, from one of its attempts.
pub fn first_attempt_at(charge: &Charge, config: &PaymentsConfig) -> DateTime<Utc> {
    match charge.attempt {
        0 => charge.at,
        n => {
            let days = usize::try_from(n)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| config.retry_days.get(i))
                .copied()
                .unwrap_or(0);
            charge.at - Duration::days(days)
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use onboard_kernel::GroupId;

    use super::*;
    use crate::model::{CardId, CustomerUid};

    fn now() -> DateTime<Utc> {
        // 2026-11-27 14:00 in Seoul.
        Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).single().expect("a time")
    }

    fn seoul(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().expect("a time") - Duration::hours(9)
    }

    fn card(group: GroupId) -> Card {
        Card {
            id: CardId::new(),
            group,
            customer_uid: CustomerUid::generate(),
            card_name: "Test Card".into(),
            number_masked: "424242******4242".into(),
            main: true,
            created_at: now(),
        }
    }

    fn req(plan: &str, interval: Option<Interval>, addons: &[&str]) -> PlanRequest {
        PlanRequest {
            plan: PlanCode::from_trusted(plan),
            interval,
            addons: addons.iter().map(|a| PlanCode::from_trusted(*a)).collect(),
        }
    }

    fn pro_month() -> PlanRequest {
        req("pro", Some(Interval::Month), &[])
    }

    fn judge(b: &Billing, card: Option<&Card>, r: &PlanRequest) -> Result<PlanChange, PlanRefusal> {
        plan_change(b, card, r, now(), &Catalogue::seed(), &PaymentsConfig::default(), &ids())
    }

    fn ids() -> NewIds {
        NewIds {
            charge_now: MerchantUid::from_trusted("ob_now"),
            schedule: MerchantUid::from_trusted("ob_next"),
        }
    }

    fn free() -> Billing {
        Billing::free(GroupId::new(), 10)
    }

    /// A group in its trial on Starter (monthly), the first charge at the trial's end.
    fn trialing(c: &Card) -> Billing {
        let b = Billing::free(c.group, 10);
        let mut b = judge(&b, Some(c), &req("starter", Some(Interval::Month), &[]))
            .expect("a trial")
            .billing;
        b.version = 3;
        b
    }

    /// A group on Starter (monthly) after its trial, the renewal scheduled.
    fn active(c: &Card) -> Billing {
        let mut b = Billing::free(c.group, 10);
        b.trial_used = true;
        let mut b =
            judge(&b, Some(c), &req("starter", Some(Interval::Month), &[])).expect("paid").billing;
        b.version = 5;
        b
    }

    #[test]
    fn free_to_paid_with_the_trial_unused_starts_a_trial_and_schedules_the_first_charge_at_its_end()
    {
        let b = free();
        let c = card(b.group);
        let change = judge(&b, Some(&c), &pro_month()).expect("allowed");
        let trial_end = seoul(2026, 12, 11, 10);
        assert_eq!(change.billing.status, BillingStatus::Trialing);
        assert_eq!(change.billing.plan.as_str(), "pro");
        assert!(change.billing.trial_used);
        assert_eq!(change.billing.trial_ends_at, Some(trial_end));
        assert_eq!(change.effective_at, now());
        assert_eq!(change.charge_now, None);
        let first = change.schedule.expect("a first charge");
        assert_eq!(first.at, trial_end);
        assert_eq!(first.kind, ChargeKind::TrialEnd);
        assert_eq!(first.money, Money { amount: 83_380, vat: 7_580 });
        assert_eq!(first.card_id, c.id);
        assert_eq!(change.billing.next_charge, Some(first));
    }

    #[test]
    fn free_to_paid_needs_a_main_card() {
        assert_eq!(judge(&free(), None, &pro_month()), Err(PlanRefusal::NoMainCard));
        let mut used = free();
        used.trial_used = true;
        assert_eq!(judge(&used, None, &pro_month()), Err(PlanRefusal::NoMainCard));
    }

    #[test]
    fn free_to_paid_with_the_trial_used_charges_a_period_now_and_schedules_the_next() {
        let mut b = free();
        b.trial_used = true;
        let c = card(b.group);
        let change =
            judge(&b, Some(&c), &req("team", Some(Interval::Year), &["chat"])).expect("allowed");
        let now_charge = change.charge_now.expect("a charge now");
        // (112,000 + 135,000) × 12 = 2,964,000 net; VAT 296,400.
        assert_eq!(now_charge.money, Money { amount: 3_260_400, vat: 296_400 });
        assert_eq!(now_charge.kind, ChargeKind::Immediate);
        assert_eq!(now_charge.merchant_uid.as_str(), "ob_now");
        assert_eq!(change.billing.status, BillingStatus::Active);
        assert_eq!(change.billing.current_period_start, Some(now()));
        let end = seoul(2027, 11, 27, 10);
        assert_eq!(change.billing.current_period_end, Some(end));
        let next = change.schedule.expect("the next charge");
        assert_eq!((next.at, next.kind, next.money), (end, ChargeKind::Renewal, now_charge.money));
    }

    #[test]
    fn trialing_to_another_paid_plan_applies_at_once_and_replaces_the_charge_at_the_same_trial_end()
    {
        let c = card(GroupId::new());
        let b = trialing(&c);
        let change = judge(&b, Some(&c), &req("pro", Some(Interval::Year), &["analytics"]))
            .expect("allowed");
        assert_eq!(change.effective_at, now());
        assert_eq!(change.billing.plan.as_str(), "pro");
        assert_eq!(change.billing.trial_ends_at, b.trial_ends_at);
        assert_eq!(change.unschedule, b.next_charge);
        let next = change.schedule.expect("a new charge");
        assert_eq!(Some(next.at), b.trial_ends_at);
        assert_eq!(next.money, Money::with_vat((68_000 + 54_000) * 12));
        assert_eq!(change.billing.status, BillingStatus::Trialing);
    }

    #[test]
    fn trialing_to_free_applies_at_once_and_cancels_the_charge() {
        let c = card(GroupId::new());
        let b = trialing(&c);
        let change = judge(&b, Some(&c), &req("free", None, &[])).expect("allowed");
        assert_eq!(change.billing.status, BillingStatus::Free);
        assert_eq!(change.billing.plan, PlanCode::free());
        assert!(change.billing.trial_used, "the trial stays used");
        assert_eq!(change.unschedule, b.next_charge);
        assert_eq!(change.schedule, None);
        assert_eq!(change.billing.next_charge, None);
    }

    #[test]
    fn active_to_free_is_canceling_until_the_period_end() {
        let c = card(GroupId::new());
        let b = active(&c);
        let change = judge(&b, Some(&c), &req("free", None, &[])).expect("allowed");
        assert_eq!(change.billing.status, BillingStatus::Canceling);
        assert!(change.billing.cancel_at_period_end);
        assert_eq!(change.billing.plan.as_str(), "starter", "the plan stays until the period end");
        assert_eq!(change.effective_at, b.current_period_end.expect("a period"));
        assert_eq!(change.unschedule, b.next_charge);
        assert_eq!(change.billing.next_charge, None);
    }

    #[test]
    fn active_to_another_paid_plan_takes_effect_at_the_next_period_with_the_new_amount() {
        let c = card(GroupId::new());
        let b = active(&c);
        let change =
            judge(&b, Some(&c), &req("company", Some(Interval::Month), &[])).expect("allowed");
        assert_eq!(change.billing.plan.as_str(), "starter");
        assert_eq!(change.billing.status, BillingStatus::Active);
        assert_eq!(change.effective_at, b.current_period_end.expect("a period"));
        let next = change.schedule.expect("a new charge");
        assert_eq!(next.plan.as_str(), "company");
        assert_eq!(next.money, Money::with_vat(227_200));
        assert_eq!(Some(next.at), b.next_charge.as_ref().map(|n| n.at));
        assert_eq!(change.unschedule, b.next_charge);
    }

    #[test]
    fn canceling_to_paid_withdraws_the_cancellation_and_schedules_again() {
        let c = card(GroupId::new());
        let cancel =
            judge(&active(&c), Some(&c), &req("free", None, &[])).expect("allowed").billing;
        let change =
            judge(&cancel, Some(&c), &req("starter", Some(Interval::Month), &[])).expect("allowed");
        assert_eq!(change.billing.status, BillingStatus::Active);
        assert!(!change.billing.cancel_at_period_end);
        assert_eq!(change.effective_at, now(), "the same plan: withdrawn at once");
        let next = change.schedule.expect("scheduled again");
        assert_eq!(Some(next.at), cancel.current_period_end);
        assert_eq!(change.unschedule, None);
    }

    #[test]
    fn asking_for_what_is_already_there_changes_nothing() {
        let c = card(GroupId::new());
        assert!(judge(&free(), None, &req("free", None, &[])).expect("ok").unchanged);
        let t = trialing(&c);
        assert!(
            judge(&t, Some(&c), &req("starter", Some(Interval::Month), &[])).expect("ok").unchanged
        );
        let a = active(&c);
        assert!(
            judge(&a, Some(&c), &req("starter", Some(Interval::Month), &[])).expect("ok").unchanged
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        let c = card(GroupId::new());
        assert_eq!(
            judge(&free(), Some(&c), &req("gold", Some(Interval::Month), &[])),
            Err(PlanRefusal::UnknownPlan)
        );
        assert_eq!(
            judge(&free(), Some(&c), &req("pro", None, &[])),
            Err(PlanRefusal::IntervalRequired)
        );
        assert_eq!(
            judge(&free(), Some(&c), &req("starter", Some(Interval::Month), &["white_label"])),
            Err(PlanRefusal::UnknownAddon(PlanCode::from_trusted("white_label")))
        );
    }

    #[test]
    fn a_change_is_refused_while_a_charge_made_at_once_is_under_way() {
        let mut b = free();
        b.trial_used = true;
        let c = card(b.group);
        let change = judge(&b, Some(&c), &pro_month()).expect("allowed");
        let mut marked = b.clone();
        marked.next_charge = change.charge_now;
        assert_eq!(judge(&marked, Some(&c), &pro_month()), Err(PlanRefusal::Busy));
    }

    #[test]
    fn the_same_inputs_give_the_same_change() {
        let c = card(GroupId::new());
        for b in [free(), trialing(&c), active(&c)] {
            assert_eq!(judge(&b, Some(&c), &pro_month()), judge(&b, Some(&c), &pro_month()));
        }
    }

    #[test]
    fn retries_run_one_three_and_seven_days_after_the_first_attempt_then_stop() {
        let config = PaymentsConfig::default();
        let first = now();
        assert_eq!(retry_at(first, 1, &config), Some(first + Duration::days(1)));
        assert_eq!(retry_at(first, 2, &config), Some(first + Duration::days(3)));
        assert_eq!(retry_at(first, 3, &config), Some(first + Duration::days(7)));
        assert_eq!(retry_at(first, 4, &config), None);
        let c = card(GroupId::new());
        let mut charge = active(&c).next_charge.expect("a charge");
        charge.attempt = 2;
        charge.at = first + Duration::days(3);
        assert_eq!(first_attempt_at(&charge, &config), first);
    }

    #[test]
    fn vat_is_ten_percent_rounded_half_up() {
        assert_eq!(Money::with_vat(43_000), Money { amount: 47_300, vat: 4_300 });
        assert_eq!(Money::with_vat(15), Money { amount: 17, vat: 2 });
        assert_eq!(Money::with_vat(14), Money { amount: 15, vat: 1 });
    }
}
