//! Wiring of SMS credit: its service on the wiring's store and the payments domain's cards
//! and gateway, and its periodic job.

use std::sync::Arc;

use onboard_payments::sms_credit::{SmsCreditPorts, SmsCreditRepository, SmsCreditService};

use crate::config::Settings;

/// The SMS credit service on the wiring's store `credit`, sharing the payments ports' cards and
/// gateway.
pub fn build(
    settings: &Settings,
    payments: &onboard_payments::PaymentsPorts,
    groups: onboard_groups::GroupsService,
    clock: Arc<dyn onboard_kernel::Clock>,
    credit: Arc<dyn SmsCreditRepository>,
) -> SmsCreditService {
    SmsCreditService::new(
        SmsCreditPorts {
            credit,
            cards: payments.cards.clone(),
            gateway: payments.gateway.clone(),
            idempotency: payments.idempotency.clone(),
        },
        groups,
        clock,
        settings.sms_prices,
        settings.payments.reconcile_after,
    )
}

/// The periodic job's handler.
pub fn periodic(
    service: SmsCreditService,
) -> impl Fn(onboard_kernel::jobs::Job) -> crate::jobs::JobFuture + Send + Sync + 'static {
    move |_| {
        let service = service.clone();
        Box::pin(async move {
            let report = service.run_periodic().await?;
            if report != onboard_payments::sms_credit::CreditReport::default() {
                tracing::info!(?report, "periodic SMS credit work");
            }
            Ok(())
        })
    }
}

/// The invites settings, with the invite SMS billed at the SMS prices when `BILL_INVITE_SMS`
/// is on.
pub fn invites_config(settings: &Settings) -> onboard_invites::InvitesConfig {
    onboard_invites::InvitesConfig {
        sms_billing: settings.bill_invite_sms.then_some(onboard_invites::InviteSmsPrices {
            sms: settings.sms_prices.sms,
            lms: settings.sms_prices.lms,
        }),
        ..settings.invites.clone()
    }
}
