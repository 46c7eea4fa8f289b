//! What every handler can reach.

use onboard_groups::GroupsService;
use onboard_invites::InvitesService;
use onboard_kernel::Region;
use onboard_members::MembersService;
use onboard_payments::PaymentsService;
use onboard_referrals::ReferralsService;

/// The backends, for readiness checks.
#[derive(Clone)]
pub enum Backends {
    Memory,
    External { pg: onboard_postgres::PgPool, redis: deadpool_redis::Pool },
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory => "Backends::Memory",
            Self::External { .. } => "Backends::External",
        })
    }
}

impl Backends {
    /// Whether every backend answers.
    pub async fn ready(&self) -> bool {
        match self {
            Self::Memory => true,
            Self::External { pg, redis } => {
                let (pg, redis) =
                    tokio::join!(onboard_postgres::ping(pg), onboard_redis::ping(redis));
                pg && redis
            }
        }
    }
}

/// Shared application state: the domain services and edge settings.
#[derive(Debug, Clone)]
pub struct AppState {
    pub members: MembersService,
    pub referrals: ReferralsService,
    pub groups: GroupsService,
    pub invites: InvitesService,
    pub backends: Backends,
    /// The public JWK set served at `/.well-known/jwks.json`.
    pub jwks: serde_json::Value,
    pub default_region: Option<Region>,
    /// The region each seed API reads national phone numbers in.
    pub compat_regions: crate::config::CompatRegions,
    pub trust_proxy: bool,
    pub payments: PaymentsService,
    /// `SERVICE_TOKENS`, as SHA-256 digests.
    pub service_tokens: ServiceTokens,
    /// The simulated gateway, when it is the one in use (its `/sim/portone` test calls).
    pub sim_gateway: Option<std::sync::Arc<onboard_gateway::SimulatedGateway>>,
    pub sso: onboard_sso::SsoService,
    pub admin: onboard_admin::AdminService,
    /// Notifications: lists, marks, snoozes and live streams.
    pub notifications: onboard_notifications::NotificationsService,
    /// SMS credit: balance, purchases, auto top-up, ledger.
    pub sms_credit: onboard_payments::sms_credit::SmsCreditService,
    /// Group messages.
    pub messaging: onboard_messaging::MessagingService,
    /// Outgoing webhooks and the events API.
    pub webhooks: onboard_webhooks::WebhooksService,
}

/// The bearer tokens of other services, kept as SHA-256 digests and compared in constant time.
#[derive(Clone, Default)]
pub struct ServiceTokens(Vec<[u8; 32]>);

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceTokens({} tokens)", self.0.len())
    }
}

impl ServiceTokens {
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Self(tokens.into_iter().map(digest).collect())
    }

    /// Whether `token` is one of them.
    pub fn contains(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        let d = digest(token);
        self.0.iter().fold(false, |found, t| found | bool::from(t.ct_eq(&d)))
    }
}

fn digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}
