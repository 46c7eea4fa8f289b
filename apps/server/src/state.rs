//! What every handler can reach.

use onboard_groups::GroupsService;
use onboard_invites::InvitesService;
use onboard_kernel::Region;
use onboard_members::MembersService;
use onboard_referrals::ReferralsService;
// payments
use onboard_payments::PaymentsService;

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
    pub trust_proxy: bool,
    // payments
    pub payments: PaymentsService,
}
