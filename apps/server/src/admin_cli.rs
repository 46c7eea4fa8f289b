//! `onboard admin grant|revoke <phone>`: platform admins from the command line, straight
//! against the deployment's database (`DATABASE_URL`), each change audited with the actor
//! `cli`.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use onboard_admin::{Actor, AdminConfig, AdminPorts, AdminService, GrantError};
use onboard_kernel::{MemberId, PhoneNumber, Region, SystemClock};

/// What the command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCommand {
    /// Make the member a platform admin.
    Grant,
    /// Take platform admin away from the member.
    Revoke,
}

/// Runs `onboard admin <command> <phone>` against the Postgres database at `database_url`
/// (migrated, with the member already signed up) and answers the member's id.
///
/// # Errors
/// Without a database URL, for a phone that does not parse, when no member has the phone,
/// and when the database cannot be reached.
pub async fn run(
    database_url: Option<&str>,
    region: Option<Region>,
    command: AdminCommand,
    phone: &str,
) -> anyhow::Result<MemberId> {
    let Some(database_url) = database_url.map(str::trim).filter(|u| !u.is_empty()) else {
        bail!(
            "onboard admin needs DATABASE_URL: platform admins are stored in the Postgres database (the embedded mode has only ADMIN_PHONES)"
        );
    };
    let phone = PhoneNumber::parse(phone, region)
        .map_err(|e| anyhow::anyhow!("{phone:?} is not a phone number: {e}"))?;
    let pool = onboard_postgres::connect(database_url, 1).await.context("cannot reach Postgres")?;
    let service = AdminService::new(
        AdminPorts {
            repo: Arc::new(onboard_postgres::PgAdminRepository::new(pool)),
            // Grant and revoke use neither: in-process stand-ins.
            otp_stats: Arc::new(onboard_memory::MemoryOtpStore::default()),
            revocations: Arc::new(onboard_memory::MemoryRevocationList::default()),
            clock: Arc::new(SystemClock),
        },
        AdminConfig::default(),
    );
    let done = match command {
        AdminCommand::Grant => service.grant(&phone, Actor::Cli).await,
        AdminCommand::Revoke => service.revoke(&phone, Actor::Cli).await,
    };
    match done {
        Ok(id) => Ok(id),
        Err(GrantError::NotFound) => {
            bail!("no member has the phone {phone}: they must sign in once first")
        }
        Err(GrantError::Unexpected(e)) => Err(e),
    }
}
