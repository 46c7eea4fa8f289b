//! The one place where the wiring is chosen: every port the services need, from memory or
//! from PostgreSQL + Redis.

use std::sync::Arc;

use anyhow::Context;
use onboard_admin::ports::{AdminRepository, OtpStats};
use onboard_groups::ports::GroupRepository;
use onboard_invites::ports::{InviteCodeStore, InviteRepository};
use onboard_kernel::jobs::JobQueue;
use onboard_members::ports::{
    MemberRepository, OtpStore, RateLimiter, RevocationList, SessionRepository,
};
use onboard_messaging::ports::MessageRepository;
use onboard_notifications::ports::{
    NotificationBus, NotificationOutbox, NotificationRepository, StreamTicketStore,
};
use onboard_payments::ports::{
    BillingRepository, CardRepository, IdempotencyRepository, UsageRepository,
};
use onboard_payments::sms_credit::SmsCreditRepository;
use onboard_referrals::ports::ReferralRepository;
use onboard_sso::ports::{IdentityRepository, SsoStateStore};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Settings, Storage};
use crate::state::Backends;

/// The adapters of one wiring, each behind the port it implements.
pub(super) struct Adapters {
    /// The OTP store; it also counts traffic for the admin stats (`otp_stats`).
    pub otp: Arc<dyn OtpStore>,
    pub limiter: Arc<dyn RateLimiter>,
    pub members: Arc<dyn MemberRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub revocations: Arc<dyn RevocationList>,
    pub referrals: Arc<dyn ReferralRepository>,
    pub groups: Arc<dyn GroupRepository>,
    pub invites: Arc<dyn InviteRepository>,
    pub invite_codes: Arc<dyn InviteCodeStore>,
    pub identities: Arc<dyn IdentityRepository>,
    pub sso_states: Arc<dyn SsoStateStore>,
    pub admin: Arc<dyn AdminRepository>,
    pub otp_stats: Arc<dyn OtpStats>,
    pub notifications: Arc<dyn NotificationRepository>,
    /// The outbox of domain events, as its consumers read it.
    pub events: Arc<dyn onboard_kernel::events::EventFeed>,
    pub notification_outbox: Arc<dyn NotificationOutbox>,
    pub notification_bus: Arc<dyn NotificationBus>,
    pub stream_tickets: Arc<dyn StreamTicketStore>,
    pub messages: Arc<dyn MessageRepository>,
    pub payments: PaymentsStores,
    pub webhooks: WebhookStores,
    /// The backends themselves: readiness checks, and work one instance does at a time.
    pub backends: Backends,
}

/// The payments domain's stores (SMS credit's among them) and the queue its periodic work runs
/// on.
pub(super) struct PaymentsStores {
    pub billing: Arc<dyn BillingRepository>,
    pub cards: Arc<dyn CardRepository>,
    pub usage: Arc<dyn UsageRepository>,
    pub idempotency: Arc<dyn IdempotencyRepository>,
    pub sms_credit: Arc<dyn SmsCreditRepository>,
    pub jobs: Arc<dyn JobQueue>,
}

/// Webhook endpoints, their deliveries, and the outbox as the events API reads it.
pub(super) struct WebhookStores {
    pub endpoints: Arc<dyn onboard_webhooks::ports::EndpointRepository>,
    pub deliveries: Arc<dyn onboard_webhooks::ports::DeliveryRepository>,
    pub events: Arc<dyn onboard_webhooks::ports::EventLog>,
}

impl Adapters {
    /// The adapters the settings' storage asks for (migrating first when configured to).
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        match &settings.storage {
            Storage::Memory => Ok(Self::memory(settings)),
            Storage::External { database_url, redis_url } => {
                Self::external(settings, database_url, redis_url).await
            }
        }
    }

    /// Everything in one in-process store: nothing survives a restart.
    fn memory(settings: &Settings) -> Self {
        // One store for every repository: memberships, current groups and deletions span them.
        // A test may hand in the store (to share it, or to top up SMS credit).
        let store = settings.messaging_overrides.memory_store.clone().unwrap_or_default();
        // The billing store lives beside the memory store it shares data with.
        let billing = store.billing();
        let otp = Arc::new(onboard_memory::MemoryOtpStore::default());
        Self {
            otp: otp.clone(),
            limiter: Arc::new(onboard_memory::MemoryRateLimiter::default()),
            members: store.clone(),
            sessions: store.clone(),
            revocations: Arc::new(onboard_memory::MemoryRevocationList::default()),
            referrals: store.clone(),
            groups: store.clone(),
            invites: store.clone(),
            invite_codes: Arc::new(onboard_memory::MemoryInviteCodeStore::new()),
            identities: store.clone(),
            sso_states: Arc::new(onboard_memory::MemorySsoStateStore::new()),
            admin: store.clone(),
            otp_stats: otp,
            notifications: store.clone(),
            events: store.clone(),
            notification_outbox: store.clone(),
            notification_bus: Arc::new(onboard_memory::MemoryNotificationBus::default()),
            stream_tickets: Arc::new(onboard_memory::MemoryStreamTicketStore::default()),
            messages: store.clone(),
            webhooks: WebhookStores {
                endpoints: store.clone(),
                deliveries: store.clone(),
                events: store.clone(),
            },
            payments: PaymentsStores {
                billing: billing.clone(),
                cards: billing.clone(),
                usage: billing.clone(),
                idempotency: billing,
                sms_credit: store,
                jobs: Arc::new(onboard_memory::MemoryJobQueue::default()),
            },
            backends: Backends::Memory,
        }
    }

    /// PostgreSQL for what must last, Redis for what expires and for the notification bus.
    async fn external(
        settings: &Settings,
        database_url: &SecretString,
        redis_url: &SecretString,
    ) -> anyhow::Result<Self> {
        let database_url = database_url.expose_secret();
        if settings.migrate_on_start {
            onboard_postgres::run_migrations(database_url).await.context("migrations failed")?;
        }
        let pg = onboard_postgres::connect(database_url, settings.pg_pool_size)
            .await
            .context("cannot reach Postgres")?;
        let redis = onboard_redis::pool(redis_url.expose_secret(), settings.redis_pool_size)
            .context("cannot configure Redis")?;
        let prefix = settings.redis_prefix.clone();
        let notification_bus = onboard_redis::RedisNotificationBus::start(
            redis_url.expose_secret(),
            redis.clone(),
            prefix.clone(),
        )
        .await
        .context("cannot subscribe to notifications in Redis")?;
        let adapters = Self::external_on(pg, redis, prefix, Arc::new(notification_bus));
        tracing::info!("storage: Postgres + Redis");
        Ok(adapters)
    }

    /// The PostgreSQL and Redis adapters on their pools.
    fn external_on(
        pg: onboard_postgres::PgPool,
        redis: deadpool_redis::Pool,
        prefix: String,
        notification_bus: Arc<dyn NotificationBus>,
    ) -> Self {
        use onboard_postgres as postgres;
        use onboard_redis as r;

        let otp = Arc::new(r::RedisOtpStore::new(redis.clone(), prefix.clone()));
        let notifications = Arc::new(postgres::PgNotificationRepository::new(pg.clone()));
        let billing = Arc::new(postgres::PgBillingStore::new(pg.clone()));
        let webhooks = Arc::new(postgres::PgWebhookStore::new(pg.clone()));
        Self {
            otp: otp.clone(),
            limiter: Arc::new(r::RedisRateLimiter::new(redis.clone(), prefix.clone())),
            members: Arc::new(postgres::PgMemberRepository::new(pg.clone())),
            sessions: Arc::new(postgres::PgSessionRepository::new(pg.clone())),
            revocations: Arc::new(r::RedisRevocationList::new(redis.clone(), prefix.clone())),
            referrals: Arc::new(postgres::PgReferralRepository::new(pg.clone())),
            groups: Arc::new(postgres::PgGroupRepository::new(pg.clone())),
            events: Arc::new(postgres::PgEventFeed::new(pg.clone())),
            invites: Arc::new(postgres::PgInviteRepository::new(pg.clone())),
            invite_codes: Arc::new(r::RedisInviteCodeStore::new(redis.clone(), prefix.clone())),
            identities: Arc::new(postgres::PgIdentityRepository::new(pg.clone())),
            sso_states: Arc::new(r::RedisSsoStateStore::new(redis.clone(), prefix.clone())),
            admin: Arc::new(postgres::PgAdminRepository::new(pg.clone())),
            otp_stats: otp,
            notifications: notifications.clone(),
            notification_outbox: notifications,
            notification_bus,
            stream_tickets: Arc::new(r::RedisStreamTicketStore::new(redis.clone(), prefix)),
            messages: Arc::new(postgres::PgMessageRepository::new(pg.clone())),
            webhooks: WebhookStores {
                endpoints: webhooks.clone(),
                deliveries: webhooks.clone(),
                events: webhooks,
            },
            payments: PaymentsStores {
                billing: billing.clone(),
                cards: billing.clone(),
                usage: billing.clone(),
                idempotency: billing,
                sms_credit: Arc::new(postgres::PgSmsCreditStore::new(pg.clone())),
                jobs: Arc::new(postgres::PgJobQueue::new(pg.clone())),
            },
            backends: Backends::External { pg, redis },
        }
    }
}

impl Backends {
    /// Runs `work` on one instance at a time: under a PostgreSQL advisory lock (`key`) with
    /// Postgres; in memory there is only this instance.
    pub(super) async fn exclusively<T>(
        &self,
        key: i64,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        match self {
            Self::Memory => work.await,
            Self::External { pg, .. } => {
                onboard_postgres::exclusively(pg, key, work).await.and_then(|r| r)
            }
        }
    }
}
