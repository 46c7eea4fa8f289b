//! What the machine spent during a scenario, from `/proc`: the server's peak resident memory and
//! CPU time; the CPU time of the Postgres backends serving the bench's database, of Redis
//! (shared: it counts every client's work) and of the generator itself; and how busy all the
//! cores were (the server shares them with all of those and anything else running).

use std::fs;
use std::time::Instant;

use anyhow::Context;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Watches the resident memory of one process on this machine.
#[derive(Debug, Clone, Copy)]
pub struct PeakRss {
    pid: u32,
}

impl PeakRss {
    /// Watches process `pid`.
    pub fn new(pid: u32) -> Self {
        Self { pid }
    }

    /// Starts a new peak at the current resident size (`clear_refs` 5, Linux 4.0+), so the next
    /// [`PeakRss::peak_mib`] tells this scenario's peak rather than the process's. Answers whether
    /// it could; if not, the peak keeps counting from the process's start.
    pub fn reset(&self) -> bool {
        fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// The peak resident size (`VmHWM`) in MiB.
    pub fn peak_mib(&self) -> anyhow::Result<f64> {
        let status =
            fs::read_to_string(format!("/proc/{}/status", self.pid)).with_context(|| {
                format!("reading /proc/{}/status (is the server running?)", self.pid)
            })?;
        vm_hwm_mib(&status).context("no VmHWM line in /proc/<pid>/status")
    }
}

/// The processes whose CPU time a [`CpuSample`] reads.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    /// The server's process id.
    pub server_pid: Option<u32>,
    /// The database whose Postgres backends count.
    pub database: Option<String>,
}

/// CPU counters at one instant.
#[derive(Debug, Clone)]
pub struct CpuSample {
    at: Instant,
    /// CPU seconds the server has used.
    server: Option<f64>,
    /// CPU seconds the Postgres backends of the database have used, by process id.
    postgres: Option<Vec<(u32, f64)>>,
    /// CPU seconds Redis has used.
    redis: Option<f64>,
    /// CPU seconds this generator has used.
    bench: Option<f64>,
    /// Busy and total ticks of all cores.
    machine: Option<(u64, u64)>,
}

/// CPU use between two samples, in percent: of one core for the processes, of all the cores
/// for the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub server_pct: Option<f64>,
    pub postgres_pct: Option<f64>,
    pub redis_pct: Option<f64>,
    pub bench_pct: Option<f64>,
    pub machine_pct: Option<f64>,
    /// Busy time of all the cores not accounted for by the processes above (other work on
    /// the machine, shared Postgres processes, the kernel), in percent of one core.
    pub other_pct: Option<f64>,
}

impl CpuSample {
    /// Reads the counters now (those that cannot be read are left out).
    pub fn now(watched: &Watched) -> Self {
        let mut postgres = watched.database.as_ref().map(|_| Vec::new());
        let mut redis = None;
        let needle = watched.database.as_ref().map(|db| format!(" {db} "));
        for pid in process_ids() {
            let Ok(comm) = fs::read_to_string(format!("/proc/{pid}/comm")) else { continue };
            match comm.trim_end() {
                "redis-server" => {
                    redis = Some(
                        redis.unwrap_or(0.0)
                            + process_cpu_secs(&format!("/proc/{pid}/stat")).unwrap_or(0.0),
                    );
                }
                "postgres" => {
                    let (Some(needle), Some(backends)) = (&needle, postgres.as_mut()) else {
                        continue;
                    };
                    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    if String::from_utf8_lossy(&cmdline).contains(needle.as_str())
                        && let Some(cpu) = process_cpu_secs(&format!("/proc/{pid}/stat"))
                    {
                        backends.push((pid, cpu));
                    }
                }
                _ => {}
            }
        }
        Self {
            at: Instant::now(),
            server: watched
                .server_pid
                .and_then(|pid| process_cpu_secs(&format!("/proc/{pid}/stat"))),
            postgres,
            redis,
            bench: process_cpu_secs("/proc/self/stat"),
            machine: fs::read_to_string("/proc/stat").ok().as_deref().and_then(machine_ticks),
        }
    }

    /// What was used from `self` to `later`.
    pub fn until(&self, later: &Self) -> CpuUse {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        let pct = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if wall > 0.0 => Some((b - a) / wall * 100.0),
            _ => None,
        };
        let machine_pct = match (self.machine, later.machine) {
            (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
                Some(busy1.saturating_sub(busy0) as f64 / (total1 - total0) as f64 * 100.0)
            }
            _ => None,
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        // Backends that started meanwhile count from zero; those that ended are lost.
        let postgres = match (&self.postgres, &later.postgres) {
            (Some(before), Some(after)) => {
                let used: f64 = after
                    .iter()
                    .map(|(pid, cpu)| {
                        let start = before.iter().find(|(p, _)| p == pid).map_or(0.0, |(_, c)| *c);
                        (cpu - start).max(0.0)
                    })
                    .sum();
                Some(used)
            }
            _ => None,
        };
        let mut used = CpuUse {
            server_pct: pct(self.server, later.server),
            postgres_pct: pct(postgres.map(|_| 0.0), postgres),
            redis_pct: pct(self.redis, later.redis),
            bench_pct: pct(self.bench, later.bench),
            machine_pct,
            other_pct: None,
        };
        used.other_pct = machine_pct.map(|m| {
            let ours: f64 = [used.server_pct, used.postgres_pct, used.redis_pct, used.bench_pct]
                .into_iter()
                .flatten()
                .sum();
            (m * cores - ours).max(0.0)
        });
        used
    }
}

/// The ids of the processes running now.
fn process_ids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// The `VmHWM:   12345 kB` line of a `/proc/<pid>/status`, in MiB.
fn vm_hwm_mib(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// User + system CPU seconds of the process whose `stat` file is at `path`.
fn process_cpu_secs(path: &str) -> Option<f64> {
    stat_cpu_secs(&fs::read_to_string(path).ok()?)
}

/// Fields 14 and 15 of `/proc/<pid>/stat` (utime, stime), counted after the command name,
/// which is in parentheses and may hold spaces.
fn stat_cpu_secs(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// Busy and total ticks from the `cpu` line of `/proc/stat` (idle and iowait are not busy;
/// guest time is already inside user time).
fn machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> =
        line.split_whitespace().skip(1).take(8).map(|v| v.parse().ok()).collect::<Option<_>>()?;
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_read_from_the_vm_hwm_line_in_mib() {
        let status =
            "Name:\tonboard\nVmPeak:\t  900000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   30000 kB\n";
        assert_eq!(vm_hwm_mib(status), Some(40.0));
        assert_eq!(vm_hwm_mib("Name:\tx\n"), None);
    }

    #[test]
    fn the_peak_of_this_process_can_be_read() {
        let peak = PeakRss::new(std::process::id()).peak_mib().expect("own status is readable");
        assert!(peak > 0.0);
    }

    #[test]
    fn process_cpu_time_is_user_plus_system_even_with_spaces_in_the_name() {
        let stat = "4242 (tokio (w 1)) S 1 2 3 0 -1 4194304 124 0 0 0 250 50 0 0 20 0";
        assert_eq!(stat_cpu_secs(stat), Some(3.0));
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(machine_ticks(stat), Some((150, 1000)));
    }

    #[test]
    fn cpu_use_between_two_samples_is_a_percentage() {
        let watched = Watched { server_pid: Some(std::process::id()), database: None };
        let start = CpuSample::now(&watched);
        let mut spin = 0_u64;
        while start.at.elapsed().as_millis() < 300 {
            spin = spin.wrapping_add(1);
        }
        let used = start.until(&CpuSample::now(&watched));
        assert!(spin > 0);
        let server = used.server_pct.expect("own stat is readable");
        assert!((0.0..=200.0).contains(&server), "{server}");
        assert!(used.machine_pct.is_some_and(|m| (0.0..=100.0).contains(&m)));
        assert!(used.postgres_pct.is_none(), "no database, no Postgres figure");
    }
}
