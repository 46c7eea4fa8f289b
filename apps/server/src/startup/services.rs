//! The services, built once on the chosen adapters; the same for every wiring.

use std::sync::Arc;

use anyhow::Context;
use onboard_admin::{AdminConfig, AdminPorts, AdminService};
use onboard_groups::GroupsService;
use onboard_invites::InvitesService;
use onboard_kernel::{Clock, SystemClock};
use onboard_members::ports::SmsSender;
use onboard_members::{MembersPorts, MembersService, Secrets};
use onboard_notifications::{NotificationsPorts, NotificationsService};
use onboard_payments::sms_credit::SmsCreditService;
use onboard_payments::{PaymentsPorts, PaymentsService};
use onboard_referrals::ReferralsService;
use onboard_sms::{LogSmsSender, QueuedSmsSender, SensClient, TwilioSmsSender};
use onboard_tokens::{JwtAccessTokens, SigningKeys};
use secrecy::ExposeSecret;

use super::adapters::{Adapters, PaymentsStores};
use crate::config::{Settings, SmsSettings};
use crate::state::{AppState, Backends};

/// Builds every adapter and service the settings ask for.
pub async fn build_state(settings: &Settings) -> anyhow::Result<AppState> {
    let keys = signing_keys(settings)?;
    let sms = sms_sender(settings)?;
    let adapters = Adapters::build(settings).await?;
    services(settings, adapters, &keys, sms).await
}

/// `JWT_PRIVATE_KEY_FILE`, or a throwaway key.
fn signing_keys(settings: &Settings) -> anyhow::Result<SigningKeys> {
    Ok(match &settings.jwt_private_key_file {
        Some(path) => SigningKeys::from_pem_file(path)
            .with_context(|| format!("cannot read the signing key {}", path.display()))?,
        // Said in the start-up summary (`telemetry::StartupSummary`).
        None => SigningKeys::generate(),
    })
}

/// The configured SMS provider, behind a queue.
fn sms_sender(settings: &Settings) -> anyhow::Result<Arc<dyn SmsSender>> {
    Ok(match &settings.sms {
        SmsSettings::Log { delay } => {
            Arc::new(QueuedSmsSender::spawn(Arc::new(LogSmsSender::new(delay.clone())), 10_000))
        }
        SmsSettings::Sens(sens) => {
            Arc::new(QueuedSmsSender::spawn(Arc::new(SensClient::new(sens.clone())?), 10_000))
        }
        SmsSettings::Twilio(twilio) => Arc::new(QueuedSmsSender::spawn(
            Arc::new(TwilioSmsSender::new(twilio.clone())?),
            10_000,
        )),
    })
}

/// Every service on the adapters, with this instance's workers running.
async fn services(
    settings: &Settings,
    a: Adapters,
    keys: &SigningKeys,
    sms: Arc<dyn SmsSender>,
) -> anyhow::Result<AppState> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let tokens =
        JwtAccessTokens::new(keys, settings.jwt_issuer.clone(), settings.jwt_audience.clone());
    let members = MembersService::new(
        MembersPorts {
            otp: a.otp,
            limiter: a.limiter,
            members: a.members,
            sessions: a.sessions,
            revocations: a.revocations.clone(),
            tokens: Arc::new(tokens),
            sms: sms.clone(),
            clock: clock.clone(),
        },
        settings.members.clone(),
        Secrets::derive(&keys.master_secret()),
    );
    let sso = build_sso(settings, a.sso_states, a.identities, members.clone(), clock.clone())?;
    let admin = AdminService::new(
        AdminPorts {
            repo: a.admin,
            otp_stats: a.otp_stats,
            revocations: a.revocations,
            clock: clock.clone(),
        },
        admin_config(settings),
    );
    let notifications = NotificationsService::new(
        NotificationsPorts {
            repo: a.notifications.clone(),
            outbox: a.notification_outbox,
            bus: a.notification_bus,
            tickets: a.stream_tickets,
            clock: clock.clone(),
        },
        settings.notifications.clone(),
    );
    let groups = GroupsService::new(a.groups, settings.groups.clone(), clock.clone());
    let consumer = onboard_notifications::NotificationsConsumer::new(
        a.events.clone(),
        a.notifications,
        Arc::new(groups.clone()),
        settings.notifications.ttl,
    );
    crate::notify_worker::spawn(notifications.clone(), consumer, a.events.clone());
    let webhooks = build_webhooks(settings, a.webhooks, &a.events, &groups, &admin, &clock)?;
    let messaging = build_messaging(settings, a.messages, groups.clone(), clock.clone())?;
    let (payments, sim_gateway, sms_credit) =
        build_payments(settings, a.payments, groups.clone(), clock.clone(), &a.backends).await?;
    Ok(AppState {
        referrals: ReferralsService::new(a.referrals, clock.clone()),
        invites: InvitesService::new(
            a.invites,
            a.invite_codes,
            groups.clone(),
            sms,
            clock,
            crate::sms_credit::invites_config(settings),
        ),
        groups,
        members,
        backends: a.backends,
        jwks: keys.jwks(),
        default_region: settings.default_region,
        compat_regions: settings.compat_regions,
        trust_proxy: settings.trust_proxy,
        payments,
        service_tokens: crate::state::ServiceTokens::new(
            settings.service_tokens.iter().map(|t| t.expose_secret()),
        ),
        sim_gateway,
        sso,
        admin,
        notifications,
        sms_credit,
        messaging,
        webhooks,
    })
}

/// Outgoing webhooks on the wiring's stores, sent over HTTP, with this instance's worker
/// (fan-out from the outbox, then delivery) running.
fn build_webhooks(
    settings: &Settings,
    stores: super::adapters::WebhookStores,
    feed: &Arc<dyn onboard_kernel::events::EventFeed>,
    groups: &GroupsService,
    admin: &AdminService,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<onboard_webhooks::WebhooksService> {
    let s = &settings.webhooks;
    let sender = onboard_webhook_http::HttpWebhookSender::new(onboard_webhook_http::SenderConfig {
        timeout: s.timeout,
        allow_private: s.config.urls.allow_private,
        body_limit: s.config.response_limit,
    })
    .context("cannot build the webhooks HTTP client")?;
    let service = onboard_webhooks::WebhooksService::new(
        onboard_webhooks::WebhooksPorts {
            endpoints: stores.endpoints.clone(),
            deliveries: stores.deliveries.clone(),
            events: stores.events,
            sender: Arc::new(sender),
            groups: Arc::new(groups.clone()),
            admins: Arc::new(admin.clone()),
            clock: clock.clone(),
        },
        s.config.clone(),
    );
    let consumer = onboard_webhooks::consumer::WebhooksConsumer::new(
        feed.clone(),
        stores.endpoints,
        stores.deliveries,
        clock.clone(),
    );
    if !s.no_worker {
        crate::webhooks_worker::spawn(service.clone(), consumer, s.poll);
    }
    Ok(service)
}
/// `ADMIN_PHONES`, and the access token lifetime (how long a block refuses earlier tokens).
fn admin_config(settings: &Settings) -> AdminConfig {
    AdminConfig {
        admin_phones: settings.admin_phones.clone(),
        // A block's revocations must outlive the longest-lived access token of any API.
        access_ttl_secs: settings.members.revocation_ttl_secs(),
    }
}

/// Group messages on the wiring's repository and the configured provider, with this
/// instance's outbox worker running.
fn build_messaging(
    settings: &Settings,
    repo: Arc<dyn onboard_messaging::ports::MessageRepository>,
    groups: GroupsService,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<onboard_messaging::MessagingService> {
    use onboard_messaging::ports::MessageProvider;

    let provider: Arc<dyn MessageProvider> = match &settings.messaging_overrides.provider {
        Some(provider) => provider.clone(),
        None => match &settings.sms {
            SmsSettings::Log { delay } => Arc::new(onboard_sms::LogMessageProvider::new(
                delay.as_ref().map_or(std::time::Duration::ZERO, |d| *d.end()),
                settings.messaging.log_alimtalk_failure.clone(),
            )),
            SmsSettings::Sens(sens) => Arc::new(SensClient::new(sens.clone())?),
            SmsSettings::Twilio(twilio) => Arc::new(TwilioSmsSender::new(twilio.clone())?),
        },
    };
    let messaging = onboard_messaging::MessagingService::new(
        onboard_messaging::MessagingPorts { repo, provider, gate: Arc::new(groups), clock },
        onboard_messaging::MessagingConfig {
            prices: settings.sms_prices,
            check_delay: settings.messaging.check_delay,
            lease: settings.messaging.lease,
            ..onboard_messaging::MessagingConfig::default()
        },
    );
    if !settings.messaging_overrides.no_worker {
        crate::messaging_worker::spawn(messaging.clone(), settings.messaging.poll);
    }
    Ok(messaging)
}

/// Single sign-on: the configured providers over the wiring's state store and identities.
fn build_sso(
    settings: &Settings,
    states: Arc<dyn onboard_sso::ports::SsoStateStore>,
    identities: Arc<dyn onboard_sso::ports::IdentityRepository>,
    members: MembersService,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<onboard_sso::SsoService> {
    let sso = &settings.sso;
    let providers = onboard_oidc::OidcProviders::new(onboard_oidc::OidcConfig {
        public_url: sso.public_url.clone().unwrap_or_default(),
        discovery_ttl: std::time::Duration::from_secs(sso.discovery_ttl_secs),
        providers: sso
            .providers
            .iter()
            .map(|p| onboard_oidc::OidcProviderConfig {
                name: p.name.clone(),
                issuer: p.issuer.clone(),
                client_id: p.client_id.clone(),
                client_secret: p.client_secret.as_ref().map(|s| s.expose_secret().to_owned()),
            })
            .collect(),
    })
    .context("cannot configure the SSO providers")?;
    if !sso.providers.is_empty() {
        tracing::info!(providers = ?providers, "single sign-on");
    }
    Ok(onboard_sso::SsoService::new(
        onboard_sso::SsoPorts { providers: Arc::new(providers), states, identities, clock },
        members,
        onboard_sso::SsoConfig {
            redirect_uris: sso.redirect_uris.clone(),
            ..onboard_sso::SsoConfig::default()
        },
    ))
}

/// The payments service on the wiring's stores and the settings' gateway, recovered
/// (unfinished main-card changes settled) and with its periodic work running on an interval;
/// SMS credit on the same cards and gateway.
async fn build_payments(
    settings: &Settings,
    stores: PaymentsStores,
    groups: GroupsService,
    clock: Arc<dyn Clock>,
    backends: &Backends,
) -> anyhow::Result<(
    PaymentsService,
    Option<Arc<onboard_gateway::SimulatedGateway>>,
    SmsCreditService,
)> {
    // The job queue keeps the wall clock (see `crate::jobs`).
    let queue_clock = clock.clone();
    let clock = settings.payments_overrides.clock.clone().unwrap_or(clock);
    let (gateway, sim) = match &settings.payments_overrides.gateway {
        Some(g) => (g.clone(), None),
        None => crate::gateway::build_gateway(&settings.gateway, clock.clone())?,
    };
    let ports = PaymentsPorts {
        billing: stores.billing,
        cards: stores.cards,
        usage: stores.usage,
        idempotency: stores.idempotency,
        gateway,
    };
    let sms_credit = crate::sms_credit::build(
        settings,
        &ports,
        groups.clone(),
        clock.clone(),
        stores.sms_credit,
    );
    let payments = PaymentsService::new(ports, groups, clock, settings.payments.clone());
    // One instance at a time settles the journal (the others then find it settled).
    match backends.exclusively(PAYMENTS_RECOVERY_LOCK, payments.recover()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(settled = n, "main-card changes recovered"),
        Err(e) => tracing::warn!(error = ?e, "main-card change recovery failed"),
    }
    if let Some(sim) = &sim {
        sim.set_webhook_sink(Arc::new(PaymentsWebhookSink(payments.clone())));
        sim.spawn_executor(SIM_EXECUTOR_PERIOD);
    }
    // The periodic work runs once across instances, through the job queue.
    let tick = settings.billing_tick;
    let every = chrono::TimeDelta::from_std(tick).unwrap_or(chrono::TimeDelta::minutes(1));
    crate::jobs::payments_runner(stores.jobs, queue_clock, payments.clone(), every)
        .every(
            crate::jobs::SMS_CREDIT_PERIODIC,
            every,
            crate::sms_credit::periodic(sms_credit.clone()),
        )
        .spawn(tick);
    Ok((payments, sim, sms_credit))
}

/// How often the simulated gateway runs the charges that are due.
const SIM_EXECUTOR_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// The advisory lock key under which start-up recovery of main-card changes runs (the bytes of
/// `onboard` and 0x10).
const PAYMENTS_RECOVERY_LOCK: i64 = 0x6f6e_626f_6172_6410;

/// Hands the simulated gateway's notifications to the payments service, as the webhook route
/// does for PortOne's.
#[derive(Debug, Clone)]
pub struct PaymentsWebhookSink(pub onboard_payments::PaymentsService);

#[async_trait::async_trait]
impl onboard_payments::gateway::WebhookSink for PaymentsWebhookSink {
    async fn deliver(
        &self,
        notice: onboard_payments::gateway::WebhookNotice,
    ) -> anyhow::Result<()> {
        self.0.handle_webhook(&notice).await.map(|_| ()).map_err(anyhow::Error::from)
    }
}
