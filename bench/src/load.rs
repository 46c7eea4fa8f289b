//! The closed-loop load engine: a fixed number of workers, each with its own connection,
//! each sending its next operation as soon as the previous one is answered, until the
//! scenario's time is up (or its input runs out).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use reqwest::Client;

use crate::api::Failure;

/// Latencies are recorded in microseconds, up to a minute, with three significant digits.
const MAX_LATENCY_US: u64 = 60_000_000;

/// The failures of one kind, with the first one's message as an example.
#[derive(Debug, Clone)]
pub struct FailureCount {
    pub count: u64,
    pub example: String,
}

/// What one worker saw. Workers get one from [`drive`] and hand it back when they stop.
#[derive(Debug)]
pub struct Recorder {
    deadline: Instant,
    latencies: Histogram<u64>,
    ok: u64,
    errors: u64,
    failures: BTreeMap<String, FailureCount>,
    exhausted: bool,
}

impl Recorder {
    fn new(deadline: Instant) -> anyhow::Result<Self> {
        Ok(Self {
            deadline,
            latencies: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .context("histogram bounds")?,
            ok: 0,
            errors: 0,
            failures: BTreeMap::new(),
            exhausted: false,
        })
    }

    /// Whether the worker should start another operation.
    pub fn running(&self) -> bool {
        !self.exhausted && Instant::now() < self.deadline
    }

    /// Records the operation that began at `started`: its latency when it succeeded, one error
    /// otherwise. [`Failure::Exhausted`] stops the worker and counts nothing.
    pub fn record<T>(&mut self, started: Instant, result: &Result<T, Failure>) {
        match result {
            Ok(_) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.latencies.saturating_record(micros.max(1));
                self.ok += 1;
            }
            Err(Failure::Exhausted) => self.exhausted = true,
            Err(failure) => {
                self.errors += 1;
                self.failures
                    .entry(failure.kind())
                    .or_insert_with(|| FailureCount { count: 0, example: failure.to_string() })
                    .count += 1;
            }
        }
    }
}

/// What all the workers of a run saw together.
#[derive(Debug)]
pub struct Measured {
    /// Successful operations.
    pub ok: u64,
    /// Failed operations (transport errors and unexpected statuses).
    pub errors: u64,
    /// From the start to the last worker's stop.
    pub elapsed: Duration,
    /// Latencies of the successful operations, in microseconds.
    pub latencies: Histogram<u64>,
    pub failures: BTreeMap<String, FailureCount>,
    /// Whether some worker ran out of input before the time was up.
    pub exhausted: bool,
}

impl Measured {
    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }

    /// The latency at `quantile` (0 to 1), in milliseconds.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        self.latencies.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// One line per kind of failure, most frequent first.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut kinds: Vec<_> = self.failures.iter().collect();
        kinds.sort_by_key(|(_, f)| std::cmp::Reverse(f.count));
        kinds.into_iter().map(|(kind, f)| format!("{kind} x{}: {}", f.count, f.example)).collect()
    }
}

/// Runs `worker` once per client, all at once, for `duration`, and merges what they recorded.
///
/// `worker(index, client, recorder)` loops while `recorder.running()`, timing each operation
/// with `recorder.record`, and hands the recorder back along with any output of its own.
pub async fn drive<W, Fut, T>(
    clients: &[Client],
    duration: Duration,
    worker: W,
) -> anyhow::Result<(Measured, Vec<T>)>
where
    W: Fn(usize, Client, Recorder) -> Fut,
    Fut: Future<Output = (Recorder, T)> + Send + 'static,
    T: Send + 'static,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients.len());
    for (index, client) in clients.iter().enumerate() {
        tasks.push(tokio::spawn(worker(index, client.clone(), Recorder::new(deadline)?)));
    }
    let mut merged = Recorder::new(deadline)?;
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (recorder, output) = task.await.context("a worker panicked")?;
        merged.latencies.add(&recorder.latencies).context("merging histograms")?;
        merged.ok += recorder.ok;
        merged.errors += recorder.errors;
        merged.exhausted |= recorder.exhausted;
        for (kind, f) in recorder.failures {
            merged
                .failures
                .entry(kind)
                .or_insert_with(|| FailureCount { count: 0, example: f.example })
                .count += f.count;
        }
        outputs.push(output);
    }
    let measured = Measured {
        ok: merged.ok,
        errors: merged.errors,
        elapsed: start.elapsed(),
        latencies: merged.latencies,
        failures: merged.failures,
        exhausted: merged.exhausted,
    };
    Ok((measured, outputs))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn clients(n: usize) -> Vec<Client> {
        (0..n).map(|_| Client::new()).collect()
    }

    #[tokio::test]
    async fn every_worker_runs_until_its_input_is_exhausted_and_the_counts_add_up() {
        let left = Arc::new(AtomicU64::new(100));
        let (measured, outputs) =
            drive(&clients(4), Duration::from_secs(30), |index, _, mut rec| {
                let left = Arc::clone(&left);
                async move {
                    let mut mine = 0_u64;
                    while rec.running() {
                        let started = Instant::now();
                        let result =
                            match left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                n.checked_sub(1)
                            }) {
                                Err(_) => Err(Failure::Exhausted),
                                Ok(n) if n % 10 == 0 => Err(Failure::Transport("reset".to_owned())),
                                Ok(_) => Ok(()),
                            };
                        if result.is_ok() {
                            mine += 1;
                        }
                        rec.record(started, &result);
                    }
                    (rec, (index, mine))
                }
            })
            .await
            .expect("the run completes");
        assert_eq!(measured.ok, 90);
        assert_eq!(measured.errors, 10);
        assert!(measured.exhausted);
        assert_eq!(measured.latencies.len(), 90);
        assert_eq!(outputs.iter().map(|(_, mine)| mine).sum::<u64>(), 90);
        assert_eq!(measured.failures["transport"].count, 10);
    }

    #[tokio::test]
    async fn workers_stop_when_the_time_is_up() {
        let started = Instant::now();
        let (measured, _) = drive(&clients(2), Duration::from_millis(200), |_, _, mut rec| async {
            while rec.running() {
                let began = Instant::now();
                tokio::time::sleep(Duration::from_millis(10)).await;
                rec.record::<()>(began, &Ok(()));
            }
            (rec, ())
        })
        .await
        .expect("the run completes");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(measured.ok >= 2 && measured.ok <= 60, "{} operations", measured.ok);
        assert!(measured.quantile_ms(0.5) >= 10.0);
        assert!(!measured.exhausted);
    }
}
