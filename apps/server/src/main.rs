//! `onboard`: the Onboard server and its operations commands.

use anyhow::bail;
use clap::{Parser, Subcommand};
use onboard_server::admin_cli::{self, AdminCommand};
use onboard_server::config::Storage;
use onboard_server::{Application, Settings, telemetry};
use secrecy::ExposeSecret;

#[derive(Debug, Parser)]
#[command(name = "onboard", version, about = "Membership and billing backend")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default). Configuration comes from the environment.
    Serve,
    /// Exit 0 when the server on this host (ONBOARD_ADDR) answers /health/ready with 200
    /// (the container's HEALTHCHECK), 1 otherwise.
    Health,
    /// Apply pending database migrations to DATABASE_URL and exit.
    Migrate,
    /// Grant or revoke platform admin (needs DATABASE_URL).
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Make the member with this phone a platform admin.
    Grant { phone: String },
    /// Take platform admin away from the member with this phone.
    Revoke { phone: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Health) = &cli.command {
        // A missing .env is the normal case.
        let _ = dotenvy::dotenv();
        let listen = std::env::var("ONBOARD_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
        let addr = onboard_server::healthcheck::local_address(&listen)?;
        onboard_server::healthcheck::check_ready(addr)?;
        println!("ready");
        return Ok(());
    }
    telemetry::init_tracing();
    // Needs only DATABASE_URL (and DEFAULT_REGION for national numbers).
    if let Some(Command::Admin { action }) = &cli.command {
        return admin(action).await;
    }
    let settings = Settings::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings.clone()).await?;
            telemetry::StartupSummary::new(&settings, app.port()).log();
            let served = app.run_until_stopped().await;
            // The exporter's last batch goes out from a blocking thread.
            tokio::task::spawn_blocking(telemetry::shutdown_traces).await?;
            served?;
        }
        Command::Migrate => {
            let Storage::External { database_url, .. } = &settings.storage else {
                bail!("migrate needs DATABASE_URL (and REDIS_URL)");
            };
            onboard_postgres::run_migrations(database_url.expose_secret()).await?;
            tracing::info!("migrations applied");
        }
        Command::Admin { .. } | Command::Health => {
            unreachable!("handled before the settings are read")
        }
    }
    Ok(())
}

/// `onboard admin grant|revoke <phone>`.
async fn admin(action: &AdminAction) -> anyhow::Result<()> {
    // A missing .env is the normal case.
    let _ = dotenvy::dotenv();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let region = env("DEFAULT_REGION")
        .map(|r| {
            onboard_kernel::Region::parse(r.trim())
                .map_err(|e| anyhow::anyhow!("DEFAULT_REGION {r:?}: {e}"))
        })
        .transpose()?;
    let (command, phone, done) = match action {
        AdminAction::Grant { phone } => (AdminCommand::Grant, phone, "is now a platform admin"),
        AdminAction::Revoke { phone } => {
            (AdminCommand::Revoke, phone, "is no longer a platform admin")
        }
    };
    let id = admin_cli::run(env("DATABASE_URL").as_deref(), region, command, phone).await?;
    println!("member {id} ({phone}) {done}");
    Ok(())
}
