//! What the billing and SMS credit notifications say, from the payments domain's events.
//!
//! Bodies name the group with `{group}` (its name) and links with `{slug}`; the consumer fills
//! them in ([`BillingText::render`]).

use onboard_payments::events::BillingEvent;

use crate::model::NotificationType;

/// Where billing notifications take the member.
const BILLING_LINK: &str = "/groups/{slug}/billing";

/// The type, title and texts of one billing notification, with `{group}` in the body and
/// `{slug}` in the link still to fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingText {
    pub kind: NotificationType,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
}

impl BillingText {
    /// The body and link with the group's name and slug filled in.
    pub fn render(&self, group_name: &str, slug: &str) -> (String, Option<String>) {
        (
            self.body.replace("{group}", group_name),
            self.link.as_ref().map(|l| l.replace("{slug}", slug)),
        )
    }
}

/// KRW with thousands separators: `83,380 KRW`.
fn won(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    let sign = if amount < 0 { "-" } else { "" };
    format!("{sign}{out} KRW")
}

fn days(n: u32) -> String {
    if n == 1 { "1 day".to_owned() } else { format!("{n} days") }
}

/// The notification a billing event brings to the holders of `billing.manage`; `None` for
/// the events nobody is told of (a plan change by itself, a purchase).
pub fn text_of(event: &BillingEvent) -> Option<BillingText> {
    use NotificationType as T;
    let billing = |kind, title: &str, body: String| BillingText {
        kind,
        title: title.to_owned(),
        body,
        link: Some(BILLING_LINK.to_owned()),
    };
    Some(match event {
        BillingEvent::TrialStarted { plan, ends_on, .. } => billing(
            T::BillingTrialStarted,
            "Trial started",
            format!("{{group}} is trying {plan} until {ends_on}"),
        ),
        BillingEvent::TrialEnding { plan, days: n, ends_on, .. } => billing(
            T::BillingTrialEnding,
            "Trial ending soon",
            format!("The {plan} trial of {{group}} ends in {}, on {ends_on}", days(*n)),
        ),
        BillingEvent::PaymentSucceeded { plan, amount, .. } => billing(
            T::BillingPaymentSucceeded,
            "Payment received",
            format!("{{group}} paid {} for {plan}", won(*amount)),
        ),
        BillingEvent::PaymentFailed { plan, amount, reason, retry_on, .. } => {
            let next = match retry_on {
                Some(day) => format!("; it is tried again on {day}"),
                None => String::new(),
            };
            billing(
                T::BillingPaymentFailed,
                "Payment failed",
                format!(
                    "A charge of {} for {plan} of {{group}} failed: {reason}{next}",
                    won(*amount)
                ),
            )
        }
        BillingEvent::Downgraded { from, .. } => billing(
            T::BillingDowngraded,
            "Moved to the Free plan",
            format!("{{group}} is no longer on {from}: it is on the Free plan now"),
        ),
        BillingEvent::UsageThreshold { metric, percent, used, limit, .. } => billing(
            T::UsageThreshold,
            &format!("Usage at {percent} %"),
            format!("{{group}} has used {used} of {limit} {metric} this period"),
        ),
        BillingEvent::SmsCreditLow { balance, .. } => BillingText {
            kind: T::SmsCreditLow,
            title: "SMS credit is running low".to_owned(),
            body: format!("{balance} KRW of SMS credit is left."),
            link: None,
        },
        BillingEvent::SmsCreditTopupFailed { amount, reason, .. } => BillingText {
            kind: T::SmsCreditTopupFailed,
            title: "SMS credit auto top-up failed".to_owned(),
            body: format!("The auto top-up of {amount} KRW could not be charged: {reason}."),
            link: None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use onboard_kernel::GroupId;

    use super::*;

    #[test]
    fn texts_name_the_group_and_link_to_its_billing() {
        let group_id = GroupId::new();
        let failed = BillingEvent::PaymentFailed {
            group_id,
            plan: "Pro".into(),
            amount: 83_380,
            reason: "card declined".into(),
            retry_at: None,
            retry_on: NaiveDate::from_ymd_opt(2026, 12, 16),
        };
        let text = text_of(&failed).expect("told");
        assert_eq!(text.kind, NotificationType::BillingPaymentFailed);
        assert_eq!(text.title, "Payment failed");
        let (body, link) = text.render("Acme", "acme");
        assert_eq!(
            body,
            "A charge of 83,380 KRW for Pro of Acme failed: card declined; it is tried again on 2026-12-16"
        );
        assert_eq!(link.as_deref(), Some("/groups/acme/billing"));
        let ending = BillingEvent::TrialEnding {
            group_id,
            plan: "Pro".into(),
            days: 1,
            ends_on: NaiveDate::from_ymd_opt(2026, 12, 15).expect("a day"),
        };
        assert_eq!(
            text_of(&ending).expect("told").render("Acme", "acme").0,
            "The Pro trial of Acme ends in 1 day, on 2026-12-15"
        );
        let usage = BillingEvent::UsageThreshold {
            group_id,
            metric: "consultations".into(),
            percent: 80,
            used: 33,
            limit: 40,
        };
        let text = text_of(&usage).expect("told");
        assert_eq!(text.title, "Usage at 80 %");
        assert_eq!(
            text.render("Acme", "acme").0,
            "Acme has used 33 of 40 consultations this period"
        );
        assert_eq!(won(1_234_567), "1,234,567 KRW");
        assert_eq!(won(100), "100 KRW");
    }

    #[test]
    fn sms_credit_texts_have_no_link_and_a_plan_change_tells_nobody() {
        let group_id = GroupId::new();
        let low = text_of(&BillingEvent::SmsCreditLow { group_id, balance: 968 }).expect("told");
        assert_eq!(
            (low.kind, low.title.as_str()),
            (NotificationType::SmsCreditLow, "SMS credit is running low")
        );
        assert_eq!(low.render("Acme", "acme"), ("968 KRW of SMS credit is left.".to_owned(), None));
        let changed = BillingEvent::PlanChanged { group_id, from: "free".into(), to: "pro".into() };
        assert_eq!(text_of(&changed), None);
    }
}
