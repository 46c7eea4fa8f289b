//! Wiring: builds the adapters chosen by the settings, the services, and the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use onboard_groups::GroupsService;
use onboard_groups::ports::GroupRepository;
use onboard_invites::InvitesService;
use onboard_invites::ports::{InviteCodeStore, InviteRepository};
use onboard_kernel::SystemClock;
use onboard_members::ports::SmsSender;
use onboard_members::{MembersPorts, MembersService, Secrets};
use onboard_notifications::ports::{
    NotificationBus, NotificationOutbox, NotificationRepository, StreamTicketStore,
};
use onboard_notifications::{NotificationsPorts, NotificationsService};
use onboard_referrals::ReferralsService;
use onboard_referrals::ports::ReferralRepository;
use onboard_sms::{LogSmsSender, QueuedSmsSender, SensClient, TwilioSmsSender};
use onboard_tokens::{JwtAccessTokens, SigningKeys};
use secrecy::ExposeSecret;
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::SwaggerUi;

use crate::compat;
use crate::config::{Settings, SmsSettings, Storage};
use crate::error::{self, ApiError};
use crate::openapi::ApiDoc;
use crate::routes::messages;
use crate::routes::sms_credit;
use crate::routes::{
    admin, auth, billing, groups, health, invites, members, notifications, referrals, sso,
};
use crate::state::{AppState, Backends};
use crate::telemetry;
use onboard_admin::ports::{AdminRepository, OtpStats};
use onboard_admin::{AdminConfig, AdminPorts, AdminService};

/// Request bodies above this size are refused.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A built server, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Application {
    /// Builds the adapters and binds the listener (`ONBOARD_ADDR`; port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        telemetry::init_metrics();
        let state = build_state(&settings).await?;
        let listener = TcpListener::bind(&settings.addr)
            .with_context(|| format!("cannot listen on {}", settings.addr))?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(state);
        let compat_apis = settings.compat_apis;
        let mut server = HttpServer::new(move || {
            let (app, api) = App::new()
                .into_utoipa_app()
                .openapi(ApiDoc::openapi())
                // Before the `/api/v1` scope, which would otherwise answer this path with a 404.
                .map(|app| app.route(OPENAPI_PATH, web::get().to(openapi_json)))
                .service(
                    scope::scope("/api/v1")
                        .service(auth::request_otp)
                        .service(auth::verify_otp)
                        .service(auth::refresh)
                        .service(auth::verify_token)
                        .service(auth::logout)
                        .service(auth::list_sessions)
                        .service(auth::revoke_session)
                        .service(members::me)
                        .service(members::update_me)
                        .service(members::delete_me)
                        .service(members::set_current_group)
                        .service(members::clear_current_group)
                        .service(members::get_member)
                        .service(referrals::referrals_me)
                        .service(referrals::invitees)
                        .service(referrals::redeem)
                        .service(groups::create_group)
                        .service(groups::my_groups)
                        .service(groups::get_group)
                        .service(groups::update_group)
                        .service(groups::delete_group)
                        .service(groups::roles)
                        .service(groups::standing)
                        .service(groups::create_role)
                        .service(groups::update_role)
                        .service(groups::delete_role)
                        .service(groups::members)
                        .service(groups::change_role)
                        .service(groups::remove_member)
                        .service(groups::join)
                        .service(groups::join_requests)
                        .service(groups::approve)
                        .service(groups::reject)
                        .service(invites::create_invite)
                        .service(invites::list_invites)
                        .service(invites::revoke_invite)
                        .service(invites::preview_invite)
                        .service(invites::accept_invite)
                        .service(billing::plans)
                        .service(billing::get_billing)
                        .service(billing::preview_plan)
                        .service(billing::change_plan)
                        .service(billing::prepare_card)
                        .service(billing::add_card)
                        .service(billing::list_cards)
                        .service(billing::set_main_card)
                        .service(billing::delete_card)
                        .service(billing::receipts)
                        .service(billing::usage)
                        .service(billing::record_usage)
                        .service(billing::portone_webhook)
                        .service(sms_credit::get_sms_credit)
                        .service(sms_credit::purchase_sms_credit)
                        .service(sms_credit::set_auto_topup)
                        .service(sms_credit::delete_auto_topup)
                        .service(sms_credit::sms_credit_ledger)
                        .service(sso::sso_start)
                        .service(sso::sso_callback)
                        .service(sso::sso_exchange)
                        .service(admin::search_members)
                        .service(admin::member)
                        .service(admin::block)
                        .service(admin::unblock)
                        .service(admin::groups)
                        .service(admin::stats)
                        .service(admin::audit)
                        .service(notifications::list)
                        .service(notifications::mark_read)
                        .service(notifications::snooze)
                        .service(notifications::delete)
                        .service(notifications::stream_ticket)
                        .service(notifications::stream)
                        .service(messages::send_messages)
                        .service(messages::list_messages)
                        .service(messages::get_message),
                )
                .service(health::live)
                .service(health::ready)
                .service(health::metrics)
                .service(health::jwks)
                // The seed APIs under `/compat/...` (documented in compat.md).
                .map(|app| app.configure(|cfg| compat::configure(cfg, compat_apis)))
                .split_for_parts();
            app.app_data(state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(BODY_LIMIT)
                        .error_handler(|e, _| error::json_error(e).into()),
                )
                .app_data(
                    web::PathConfig::default().error_handler(|e, _| error::path_error(e).into()),
                )
                .app_data(
                    web::QueryConfig::default().error_handler(|e, _| error::query_error(e).into()),
                )
                .app_data(web::PayloadConfig::new(BODY_LIMIT))
                .app_data(web::Data::new(api))
                .service(
                    SwaggerUi::new("/docs/{_:.*}")
                        .config(utoipa_swagger_ui::Config::from(OPENAPI_PATH)),
                )
                .service(web::redirect("/docs", "/docs/"))
                // The simulated gateway's test calls, only with it
                .configure(|cfg| {
                    if let Some(sim) = state.sim_gateway.clone() {
                        crate::routes::sim::configure(cfg, sim);
                    }
                })
                .default_service(web::to(not_found))
                .wrap(from_fn(telemetry::observe))
                .wrap(TracingLogger::default())
        })
        .listen(listener)?
        .shutdown_timeout(5);
        if let Some(workers) = settings.workers {
            server = server.workers(workers.max(1));
        }
        Ok(Self { port, server: server.run() })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Where the OpenAPI document is served.
const OPENAPI_PATH: &str = "/api/v1/openapi.json";

async fn openapi_json(doc: web::Data<utoipa::openapi::OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!("no route for {} {}", req.method(), req.path())))
}

/// Builds every adapter and service the settings ask for.
pub async fn build_state(settings: &Settings) -> anyhow::Result<AppState> {
    let keys = match &settings.jwt_private_key_file {
        Some(path) => SigningKeys::from_pem_file(path)
            .with_context(|| format!("cannot read the signing key {}", path.display()))?,
        None => {
            tracing::warn!(
                "JWT_PRIVATE_KEY_FILE is not set: signing tokens with a throwaway key; tokens die with this process"
            );
            SigningKeys::generate()
        }
    };
    let tokens = Arc::new(JwtAccessTokens::new(
        &keys,
        settings.jwt_issuer.clone(),
        settings.jwt_audience.clone(),
    ));
    let secrets = Secrets::derive(&keys.master_secret());
    let sms: Arc<dyn SmsSender> = match &settings.sms {
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
    };
    let clock = Arc::new(SystemClock);

    // The embedded wiring's billing store (beside the memory store it shares data with).
    let mut memory_billing = None;
    // The embedded wiring's SMS credit store (the memory store itself).
    let mut memory_store = None;
    let (ports, repos, backends) = match &settings.storage {
        Storage::Memory => {
            tracing::warn!(
                "embedded mode: data lives in memory and is lost when the server stops (set DATABASE_URL and REDIS_URL for Postgres + Redis)"
            );
            // One store for every repository: memberships, current groups and deletions span them.
            // A test may hand in the store (to share it, or to top up SMS credit).
            let store = settings.messaging_overrides.memory_store.clone().unwrap_or_else(|| {
                Arc::new(
                    onboard_memory::MemoryStore::default()
                        .with_notification_ttl(settings.notifications.ttl),
                )
            });
            memory_billing = Some(store.billing());
            memory_store = Some(store.clone());
            // The OTP store also counts traffic for the admin stats.
            let otp = Arc::new(onboard_memory::MemoryOtpStore::default());
            let ports = MembersPorts {
                otp: otp.clone(),
                limiter: Arc::new(onboard_memory::MemoryRateLimiter::default()),
                members: store.clone(),
                sessions: store.clone(),
                revocations: Arc::new(onboard_memory::MemoryRevocationList::default()),
                tokens,
                sms: sms.clone(),
                clock,
            };
            let repos = Repositories {
                referrals: store.clone(),
                groups: store.clone(),
                invites: store.clone(),
                invite_codes: Arc::new(onboard_memory::MemoryInviteCodeStore::new()),
                identities: store.clone(),
                sso_states: Arc::new(onboard_memory::MemorySsoStateStore::new()),
                admin: store.clone(),
                otp_stats: otp,
                notifications: store.clone(),
                messages: store.clone(),
                notification_outbox: store,
                notification_bus: Arc::new(onboard_memory::MemoryNotificationBus::default()),
                stream_tickets: Arc::new(onboard_memory::MemoryStreamTicketStore::default()),
            };
            (ports, repos, Backends::Memory)
        }
        Storage::External { database_url, redis_url } => {
            let database_url = database_url.expose_secret();
            if settings.migrate_on_start {
                onboard_postgres::run_migrations(database_url)
                    .await
                    .context("migrations failed")?;
            }
            let pg = onboard_postgres::connect(database_url, settings.pg_pool_size)
                .await
                .context("cannot reach Postgres")?;
            let redis = onboard_redis::pool(redis_url.expose_secret(), settings.redis_pool_size)
                .context("cannot configure Redis")?;
            let prefix = settings.redis_prefix.clone();
            // The OTP store also counts traffic for the admin stats.
            let otp = Arc::new(onboard_redis::RedisOtpStore::new(redis.clone(), prefix.clone()));
            let notification_store =
                Arc::new(onboard_postgres::PgNotificationRepository::new(pg.clone()));
            let ports = MembersPorts {
                otp: otp.clone(),
                limiter: Arc::new(onboard_redis::RedisRateLimiter::new(
                    redis.clone(),
                    prefix.clone(),
                )),
                members: Arc::new(onboard_postgres::PgMemberRepository::new(pg.clone())),
                sessions: Arc::new(onboard_postgres::PgSessionRepository::new(pg.clone())),
                revocations: Arc::new(onboard_redis::RedisRevocationList::new(
                    redis.clone(),
                    prefix.clone(),
                )),
                tokens,
                sms: sms.clone(),
                clock,
            };
            let repos = Repositories {
                referrals: Arc::new(onboard_postgres::PgReferralRepository::new(pg.clone())),
                groups: Arc::new(
                    onboard_postgres::PgGroupRepository::new(pg.clone())
                        .with_notification_ttl(settings.notifications.ttl),
                ),
                invites: Arc::new(
                    onboard_postgres::PgInviteRepository::new(pg.clone())
                        .with_notification_ttl(settings.notifications.ttl),
                ),
                identities: Arc::new(onboard_postgres::PgIdentityRepository::new(pg.clone())),
                sso_states: Arc::new(onboard_redis::RedisSsoStateStore::new(
                    redis.clone(),
                    prefix.clone(),
                )),
                invite_codes: Arc::new(onboard_redis::RedisInviteCodeStore::new(
                    redis.clone(),
                    prefix.clone(),
                )),
                notifications: notification_store.clone(),
                notification_outbox: notification_store,
                messages: Arc::new(
                    onboard_postgres::PgMessageRepository::new(pg.clone())
                        .with_notification_ttl(settings.notifications.ttl),
                ),
                notification_bus: Arc::new(
                    onboard_redis::RedisNotificationBus::start(
                        redis_url.expose_secret(),
                        redis.clone(),
                        prefix.clone(),
                    )
                    .await
                    .context("cannot subscribe to notifications in Redis")?,
                ),
                stream_tickets: Arc::new(onboard_redis::RedisStreamTicketStore::new(
                    redis.clone(),
                    prefix,
                )),
                admin: Arc::new(onboard_postgres::PgAdminRepository::new(pg.clone())),
                otp_stats: otp,
            };
            tracing::info!("storage: Postgres + Redis");
            (ports, repos, Backends::External { pg, redis })
        }
    };
    let clock = ports.clock.clone();
    let revocations = ports.revocations.clone();
    let members = MembersService::new(ports, settings.members.clone(), secrets);
    let sso = build_sso(settings, &repos, members.clone(), clock.clone())?;
    let admin = AdminService::new(
        AdminPorts {
            repo: repos.admin,
            otp_stats: repos.otp_stats,
            revocations,
            clock: clock.clone(),
        },
        AdminConfig {
            admin_phones: settings.admin_phones.clone(),
            access_ttl_secs: settings.members.access_ttl_secs,
        },
    );
    let notifications = NotificationsService::new(
        NotificationsPorts {
            repo: repos.notifications,
            outbox: repos.notification_outbox,
            bus: repos.notification_bus,
            tickets: repos.stream_tickets,
            clock: clock.clone(),
        },
        settings.notifications.clone(),
    );
    crate::notify_worker::spawn(notifications.clone());
    let groups = GroupsService::new(repos.groups, settings.groups.clone(), clock.clone());
    let messaging = build_messaging(settings, repos.messages, groups.clone(), clock.clone())?;
    let (payments, sim_gateway, sms_credit) = build_payments(
        settings,
        groups.clone(),
        clock.clone(),
        &backends,
        memory_billing,
        memory_store, // credit
    )
    .await?;
    Ok(AppState {
        referrals: ReferralsService::new(repos.referrals, clock.clone()),
        invites: InvitesService::new(
            repos.invites,
            repos.invite_codes,
            groups.clone(),
            sms,
            clock,
            crate::credit::invites_config(settings), // credit
        ),
        groups,
        members,
        backends,
        jwks: keys.jwks(),
        default_region: settings.default_region,
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
    })
}

/// Group messages on the wiring's repository and the configured provider, with this
/// instance's outbox worker running.
fn build_messaging(
    settings: &Settings,
    repo: Arc<dyn onboard_messaging::ports::MessageRepository>,
    groups: GroupsService,
    clock: Arc<dyn onboard_kernel::Clock>,
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

/// The repositories of the domains beyond members, from one wiring.
struct Repositories {
    referrals: Arc<dyn ReferralRepository>,
    groups: Arc<dyn GroupRepository>,
    invites: Arc<dyn InviteRepository>,
    invite_codes: Arc<dyn InviteCodeStore>,
    identities: Arc<dyn onboard_sso::ports::IdentityRepository>,
    sso_states: Arc<dyn onboard_sso::ports::SsoStateStore>,
    admin: Arc<dyn AdminRepository>,
    otp_stats: Arc<dyn OtpStats>,
    notifications: Arc<dyn NotificationRepository>,
    notification_outbox: Arc<dyn NotificationOutbox>,
    notification_bus: Arc<dyn NotificationBus>,
    stream_tickets: Arc<dyn StreamTicketStore>,
    messages: Arc<dyn onboard_messaging::ports::MessageRepository>,
}

/// Single sign-on: the configured providers over the wiring's state store and identities.
fn build_sso(
    settings: &Settings,
    repos: &Repositories,
    members: MembersService,
    clock: Arc<dyn onboard_kernel::Clock>,
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
        onboard_sso::SsoPorts {
            providers: Arc::new(providers),
            states: repos.sso_states.clone(),
            identities: repos.identities.clone(),
            clock,
        },
        members,
        onboard_sso::SsoConfig {
            redirect_uris: sso.redirect_uris.clone(),
            ..onboard_sso::SsoConfig::default()
        },
    ))
}

/// The payments service on the settings' storage and gateway, recovered (unfinished main-card
/// changes settled) and with its periodic work running on an interval.
async fn build_payments(
    settings: &Settings,
    groups: GroupsService,
    clock: Arc<dyn onboard_kernel::Clock>,
    backends: &Backends,
    memory_billing: Option<Arc<onboard_memory::MemoryBillingStore>>,
    memory_store: Option<Arc<onboard_memory::MemoryStore>>, // credit
) -> anyhow::Result<(
    onboard_payments::PaymentsService,
    Option<Arc<onboard_gateway::SimulatedGateway>>,
    onboard_payments::sms_credit::SmsCreditService, // credit
)> {
    use onboard_payments::PaymentsService;

    // The job queue keeps the wall clock (see `crate::jobs`).
    let queue_clock = clock.clone();
    let clock = settings.payments_overrides.clock.clone().unwrap_or(clock);
    // Billing storage and the job queue on the wiring's backends.
    let (store, queue): (_, Arc<dyn onboard_kernel::jobs::JobQueue>) = match backends {
        Backends::Memory => (
            BillingStore::Memory(memory_billing.unwrap_or_default()),
            Arc::new(onboard_memory::MemoryJobQueue::default()),
        ),
        Backends::External { pg, .. } => (
            // Its billing notifications live NOTIFICATION_TTL.
            BillingStore::Pg(Arc::new(
                onboard_postgres::PgBillingStore::new(pg.clone())
                    .with_notification_ttl(settings.notifications.ttl),
            )),
            Arc::new(onboard_postgres::PgJobQueue::new(pg.clone())),
        ),
    };
    let (gateway, sim) = match &settings.payments_overrides.gateway {
        Some(g) => (g.clone(), None),
        None => crate::gateway::build_gateway(&settings.gateway, clock.clone())?,
    };
    let ports = store.ports(gateway);
    // SMS credit on the same cards and gateway.
    let sms_credit = crate::credit::build(
        settings,
        &ports,
        groups.clone(),
        clock.clone(),
        backends,
        memory_store,
    );
    let payments = PaymentsService::new(ports, groups, clock, settings.payments.clone());
    // One instance at a time settles the journal (the others then find it settled).
    let recovered = match backends {
        Backends::Memory => payments.recover().await,
        Backends::External { pg, .. } => {
            onboard_postgres::exclusively(pg, PAYMENTS_RECOVERY_LOCK, payments.recover())
                .await
                .and_then(|r| r)
        }
    };
    match recovered {
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
    crate::jobs::payments_runner(queue, queue_clock, payments.clone(), every)
        .every(crate::jobs::SMS_CREDIT_PERIODIC, every, crate::credit::periodic(sms_credit.clone())) // credit
        .spawn(tick);
    Ok((payments, sim, sms_credit))
}

/// How often the simulated gateway runs the charges that are due.
const SIM_EXECUTOR_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// The advisory lock key under which start-up recovery of main-card changes runs (the bytes of
/// `onboard` and 0x10).
const PAYMENTS_RECOVERY_LOCK: i64 = 0x6f6e_626f_6172_6410;

/// The payments storage of one wiring: one value implements every storage port.
enum BillingStore {
    Memory(Arc<onboard_memory::MemoryBillingStore>),
    Pg(Arc<onboard_postgres::PgBillingStore>),
}

impl BillingStore {
    fn ports(
        self,
        gateway: Arc<dyn onboard_payments::gateway::PaymentGateway>,
    ) -> onboard_payments::PaymentsPorts {
        match self {
            Self::Memory(s) => onboard_payments::PaymentsPorts {
                billing: s.clone(),
                cards: s.clone(),
                usage: s.clone(),
                idempotency: s,
                gateway,
            },
            Self::Pg(s) => onboard_payments::PaymentsPorts {
                billing: s.clone(),
                cards: s.clone(),
                usage: s.clone(),
                idempotency: s,
                gateway,
            },
        }
    }
}

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
