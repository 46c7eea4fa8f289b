//! `onboard`: the Onboard server and its operations commands.

use anyhow::bail;
use clap::{Parser, Subcommand};
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
    /// Apply pending database migrations to DATABASE_URL and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_tracing();
    let settings = Settings::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings.clone()).await?;
            tracing::info!(addr = %settings.addr, port = app.port(), "Onboard is listening; API docs at /docs");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let Storage::External { database_url, .. } = &settings.storage else {
                bail!("migrate needs DATABASE_URL (and REDIS_URL)");
            };
            onboard_postgres::run_migrations(database_url.expose_secret()).await?;
            tracing::info!("migrations applied");
        }
    }
    Ok(())
}
