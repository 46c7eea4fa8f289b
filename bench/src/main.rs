//! `onboard-bench`: the load generator of `make bench` (`scripts/bench.sh` starts the server,
//! seeds it and calls `run` once per member tier, then `table`).

mod api;
mod identities;
mod load;
mod process;
mod report;
mod scenarios;
mod webhooks;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::api::Api;
use crate::process::{CpuSample, PeakRss, Watched};
use crate::report::ScenarioResult;
use crate::scenarios::{Bench, Plan, Scenario};

#[derive(Debug, Parser)]
#[command(
    name = "onboard-bench",
    about = "Fixed-concurrency load scenarios against an Onboard server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenarios against a running server and add their results to the results file.
    Run(RunArgs),
    /// The fan-out of outgoing webhooks against a running server (`WEBHOOKS_ALLOW_PRIVATE=true`):
    /// `events` events to `endpoints` endpoints at a receiver in this process.
    Webhooks {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value_t = 1_000)]
        events: usize,
        #[arg(long, default_value_t = 10)]
        endpoints: usize,
    },
    /// Print the results file as a table.
    Table {
        #[arg(long, default_value = "bench/results.json")]
        results: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The server's origin.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The server's process id, to read its peak RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's database, to count the CPU time of its Postgres backends.
    #[arg(long)]
    database: Option<String>,
    /// Members seeded in the server's database (bench/seed.sql).
    #[arg(long)]
    members: u64,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Members signed in before refresh, me and invite_accept (not measured).
    #[arg(long, default_value_t = 2_000)]
    pool: usize,
    /// Fresh members to have before redeem (those signin created count); each redeems once.
    /// By default enough for 2 500/s, or for 1.1 times the rate `me` reached if it ran.
    #[arg(long)]
    redeemers: Option<usize>,
    /// Comma-separated scenarios, in order; all by default.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<Scenario>,
    /// The results file: this run's results replace those of the same tier and scenario.
    #[arg(long, default_value = "bench/results.json")]
    results: PathBuf,
    /// Threads of the load generator (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads.max(1))
            .enable_all()
            .build()?
            .block_on(run(args)),
        Command::Webhooks { url, events, endpoints } => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?
            .block_on(async {
                let r = webhooks::fan_out(&url, events, endpoints).await?;
                println!(
                    "webhooks fan-out: {} events x {} endpoints = {} deliveries in {:.2} s ({:.0} deliveries/s; writes took {:.2} s); write p50 {:.2} ms without endpoints, {:.2} ms with",
                    r.events,
                    r.endpoints,
                    r.deliveries,
                    r.seconds,
                    r.deliveries_per_second(),
                    r.writes_seconds,
                    r.write_p50_ms_without,
                    r.write_p50_ms_with
                );
                Ok(())
            }),
        Command::Table { results } => {
            let results = report::load(&results)?;
            if results.is_empty() {
                bail!("no results yet: run `make bench`");
            }
            print!("{}", report::table(&results));
            Ok(())
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.url);
    let clients = (0..args.concurrency.max(1))
        .map(|_| api::worker_client())
        .collect::<Result<Vec<_>, _>>()?;
    wait_until_ready(&api, &clients[0]).await?;

    let scenarios = if args.scenarios.is_empty() { Scenario::ALL.to_vec() } else { args.scenarios };
    let plan = Plan {
        duration: Duration::from_secs(args.seconds.max(1)),
        seeded: args.members,
        pool: args.pool,
        redeemers: args.redeemers,
    };
    let tier = report::tier_label(args.members);
    let rss = args.server_pid.map(PeakRss::new);
    let watched = Watched { server_pid: args.server_pid, database: args.database.clone() };
    let mut bench = Bench::new(api, clients, plan)?;
    let mut results = report::load(&args.results)?;

    for scenario in scenarios {
        eprintln!("[{tier}] {scenario}");
        bench.prepare(scenario).await.with_context(|| format!("preparing {scenario}"))?;
        let per_scenario_peak = rss.as_ref().is_some_and(PeakRss::reset);
        let cpu_before = CpuSample::now(&watched);
        let measured =
            bench.measure(scenario).await.with_context(|| format!("running {scenario}"))?;
        let cpu = cpu_before.until(&CpuSample::now(&watched));
        let server_rss_mib = match &rss {
            Some(rss) => rss.peak_mib()?,
            None => 0.0,
        };
        let result = ScenarioResult {
            tier: tier.clone(),
            scenario: scenario.name().to_owned(),
            rps: round(measured.rate(), 1),
            p50_ms: round(measured.quantile_ms(0.5), 3),
            p99_ms: round(measured.quantile_ms(0.99), 3),
            p999_ms: round(measured.quantile_ms(0.999), 3),
            errors: measured.errors,
            members: args.members,
            server_rss_mib: round(server_rss_mib, 1),
            ok: measured.ok,
            seconds: round(measured.elapsed.as_secs_f64(), 2),
            concurrency: args.concurrency,
            server_cpu_pct: cpu.server_pct.map(|v| round(v, 0)),
            postgres_cpu_pct: cpu.postgres_pct.map(|v| round(v, 0)),
            redis_cpu_pct: cpu.redis_pct.map(|v| round(v, 0)),
            bench_cpu_pct: cpu.bench_pct.map(|v| round(v, 0)),
            machine_cpu_pct: cpu.machine_pct.map(|v| round(v, 0)),
            other_cpu_pct: cpu.other_pct.map(|v| round(v, 0)),
        };
        eprintln!(
            "  {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, {} ok, {} errors, server peak RSS {:.1} MiB{}",
            result.rps,
            result.p50_ms,
            result.p99_ms,
            result.p999_ms,
            result.ok,
            result.errors,
            result.server_rss_mib,
            if per_scenario_peak { "" } else { " (since start)" }
        );
        eprintln!(
            "  CPU (of one core): server {}, Postgres {}, Redis {}, generator {}, other {}; all cores {} busy",
            percent(result.server_cpu_pct),
            percent(result.postgres_cpu_pct),
            percent(result.redis_cpu_pct),
            percent(result.bench_cpu_pct),
            percent(result.other_cpu_pct),
            percent(result.machine_cpu_pct)
        );
        if measured.exhausted {
            eprintln!(
                "  input ran out after {:.1} s (raise --redeemers or --pool)",
                result.seconds
            );
        }
        for line in measured.failure_lines() {
            eprintln!("  failures: {line}");
        }
        results.retain(|r| !(r.tier == result.tier && r.scenario == result.scenario));
        results.push(result);
        report::save(&args.results, &results)?;
    }
    Ok(())
}

/// Polls `/health/ready` for up to a minute.
async fn wait_until_ready(api: &Api, client: &reqwest::Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !api.ready(client).await {
        if Instant::now() > deadline {
            bail!("the server did not answer /health/ready within a minute");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "?".to_owned(), |v| format!("{v:.0}%"))
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10_f64.powi(decimals);
    (value * scale).round() / scale
}
