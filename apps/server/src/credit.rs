//! Wiring of SMS credit: its store on the chosen backend, its service on the payments
//! domain's cards and gateway, and its periodic job.

use std::sync::Arc;

use onboard_payments::sms_credit::{SmsCreditPorts, SmsCreditRepository, SmsCreditService};

use crate::config::Settings;
use crate::state::Backends;

/// The SMS credit service on the wiring's storage, sharing the payments ports' cards and
/// gateway.
pub fn build(
    settings: &Settings,
    payments: &onboard_payments::PaymentsPorts,
    groups: onboard_groups::GroupsService,
    clock: Arc<dyn onboard_kernel::Clock>,
    backends: &Backends,
    memory_store: Option<Arc<onboard_memory::MemoryStore>>,
) -> SmsCreditService {
    let credit: Arc<dyn SmsCreditRepository> = match backends {
        Backends::Memory => memory_store.unwrap_or_default(),
        Backends::External { pg, .. } => Arc::new(
            onboard_postgres::PgSmsCreditStore::new(pg.clone())
                .with_notification_ttl(settings.notifications.ttl),
        ),
    };
    SmsCreditService::new(
        SmsCreditPorts { credit, cards: payments.cards.clone(), gateway: payments.gateway.clone() },
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
