//! `bench/results.json` (one object per scenario and tier) and the table printed from it.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// One scenario at one tier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioResult {
    /// `10k`, `1M`: the seeded member count, short.
    pub tier: String,
    pub scenario: String,
    /// Successful operations per second.
    pub rps: f64,
    /// Latency quantiles of the successful operations.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// Failed operations: transport errors and unexpected (non-2xx) statuses.
    pub errors: u64,
    /// Members seeded in the database before the server started.
    pub members: u64,
    /// The server's peak resident memory during the scenario.
    pub server_rss_mib: f64,
    /// Successful operations.
    pub ok: u64,
    /// Seconds the scenario ran (less than asked when its input ran out).
    pub seconds: f64,
    pub concurrency: usize,
    /// CPU the server used during the scenario, in percent of one core.
    #[serde(default)]
    pub server_cpu_pct: Option<f64>,
    /// CPU the Postgres backends of the bench's database used, in percent of one core.
    #[serde(default)]
    pub postgres_cpu_pct: Option<f64>,
    /// CPU Redis used (all its clients, not only this server), in percent of one core.
    #[serde(default)]
    pub redis_cpu_pct: Option<f64>,
    /// CPU the load generator used, in percent of one core.
    #[serde(default)]
    pub bench_cpu_pct: Option<f64>,
    /// How busy all the machine's cores were (server, Postgres, Redis, generator, the rest).
    #[serde(default)]
    pub machine_cpu_pct: Option<f64>,
    /// Busy CPU not accounted for above (other work on the machine, shared Postgres
    /// processes, the kernel), in percent of one core.
    #[serde(default)]
    pub other_cpu_pct: Option<f64>,
}

/// The targets of the issue: at least `rps` operations per second with p99 at most `p99_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub rps: f64,
    pub p99_ms: f64,
}

/// The server's resident memory target.
pub const RSS_TARGET_MIB: f64 = 64.0;

/// The target of a scenario, if it has one.
pub fn target(scenario: &str) -> Option<Target> {
    let (rps, p99_ms) = match scenario {
        "otp_request" => (8_000.0, 15.0),
        "signin" => (1_000.0, 60.0),
        "refresh" => (3_000.0, 30.0),
        "me" => (6_000.0, 20.0),
        "redeem" => (2_000.0, 40.0),
        "invite_accept" => (800.0, 80.0),
        _ => return None,
    };
    Some(Target { rps, p99_ms })
}

/// `10k` for 10 000, `1M` for 1 000 000, the number itself otherwise.
pub fn tier_label(members: u64) -> String {
    match members {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The results in `path`, or none if there is no such file.
pub fn load(path: &Path) -> anyhow::Result<Vec<ScenarioResult>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes `results` to `path` as a pretty JSON array (through a temporary file, so a reader
/// never sees half a file).
pub fn save(path: &Path, results: &[ScenarioResult]) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_string_pretty(results)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The results as a text table, each figure marked against its target (`!` when missed).
pub fn table(results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<5} {:<14} {:>9} {:>8} {:>8} {:>9} {:>7} {:>8}  {:>19}   target (req/s, p99)",
        "tier",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "RSS MiB",
        "CPU srv/pg/rd/oth %",
    );
    for r in results {
        let goal = target(&r.scenario);
        let rps_mark = mark(goal.is_some_and(|t| r.rps < t.rps));
        let p99_mark = mark(goal.is_some_and(|t| r.p99_ms > t.p99_ms));
        let rss_mark = mark(r.server_rss_mib > RSS_TARGET_MIB);
        let err_mark = mark(r.errors > 0);
        let goal_text =
            goal.map(|t| format!(">= {:.0}/s, <= {:.0} ms", t.rps, t.p99_ms)).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<5} {:<14} {:>8.0}{} {:>8.2} {:>7.2}{} {:>9.2} {:>6}{} {:>7.1}{}  {:>19}   {}",
            r.tier,
            r.scenario,
            r.rps,
            rps_mark,
            r.p50_ms,
            r.p99_ms,
            p99_mark,
            r.p999_ms,
            r.errors,
            err_mark,
            r.server_rss_mib,
            rss_mark,
            cpu_text(r),
            goal_text
        );
    }
    let _ = writeln!(
        out,
        "! marks a missed target (RSS <= {RSS_TARGET_MIB:.0} MiB, no errors). Operations: signin = code \
         request + verify, invite_accept = create + accept.\nCPU in % of one core during the \
         scenario: the server, the Postgres backends of its database, Redis, and the rest of the \
         machine's busy time (other processes, the kernel)."
    );
    out
}

/// `56/75/6/40`: server, Postgres, Redis and other CPU, `?` where unknown.
fn cpu_text(r: &ScenarioResult) -> String {
    [r.server_cpu_pct, r.postgres_cpu_pct, r.redis_cpu_pct, r.other_cpu_pct]
        .map(|v| v.map_or_else(|| "?".to_owned(), |v| format!("{v:.0}")))
        .join("/")
}

fn mark(missed: bool) -> char {
    if missed { '!' } else { ' ' }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(scenario: &str, rps: f64, p99_ms: f64, rss: f64) -> ScenarioResult {
        ScenarioResult {
            tier: "10k".to_owned(),
            scenario: scenario.to_owned(),
            rps,
            p50_ms: 1.0,
            p99_ms,
            p999_ms: p99_ms * 2.0,
            errors: 0,
            members: 10_000,
            server_rss_mib: rss,
            ok: 1,
            seconds: 1.0,
            concurrency: 64,
            server_cpu_pct: Some(150.0),
            postgres_cpu_pct: Some(20.0),
            redis_cpu_pct: Some(10.0),
            bench_cpu_pct: Some(30.0),
            machine_cpu_pct: Some(100.0),
            other_cpu_pct: Some(20.0),
        }
    }

    #[test]
    fn tiers_are_labelled_by_their_member_count() {
        assert_eq!(tier_label(10_000), "10k");
        assert_eq!(tier_label(1_000_000), "1M");
        assert_eq!(tier_label(1_234), "1234");
    }

    #[test]
    fn the_table_marks_only_the_missed_targets() {
        let text = table(&[result("me", 7_000.0, 5.0, 30.0), result("signin", 500.0, 90.0, 80.0)]);
        let me = text.lines().find(|l| l.contains(" me ")).expect("a row for me");
        let signin = text.lines().find(|l| l.contains("signin ")).expect("a row for signin");
        assert!(!me.contains('!'), "{me}");
        assert_eq!(signin.matches('!').count(), 3, "{signin}");
    }

    #[test]
    fn results_survive_a_round_trip_through_the_file() {
        let dir = std::env::temp_dir().join(format!("onboard-bench-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("results.json");
        assert!(load(&path).expect("a missing file is no results").is_empty());
        let results = vec![result("me", 7_000.0, 5.0, 30.0)];
        save(&path, &results).expect("saved");
        assert_eq!(load(&path).expect("loaded"), results);
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
        for field in [
            "scenario",
            "rps",
            "p50_ms",
            "p99_ms",
            "p999_ms",
            "errors",
            "members",
            "server_rss_mib",
            "tier",
        ] {
            assert!(json[0].get(field).is_some(), "{field} is missing");
        }
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
