//! How the scenarios measure: request loops run for a while and their
//! rates and percentiles; a process's CPU seconds, run-queue waits and
//! resident memory from /proc; the disk's write speed; and the JSON line
//! each scenario prints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::json;

use crate::payload::*;

/// Flush whatever earlier scenarios left dirty in the page cache (the
/// reference registry does not fsync what it stores), so that a push timed
/// next waits for its own data and not for the writeback of someone else's.
pub(crate) fn settle_disk() {
    if let Err(e) = std::process::Command::new("sync").status() {
        eprintln!("sync: {e}");
    }
}

/// MB/s of writing 256 MiB in 1 MiB blocks to a new file in `dir`, then
/// fdatasync, as `dd conv=fdatasync` does.
pub(crate) fn disk_write_speed(dir: &std::path::Path) -> anyhow::Result<f64> {
    use std::io::Write;
    let path = dir.join("disk-probe.tmp");
    let block = data(1 << 20, 7);
    let start = Instant::now();
    let mut f = std::fs::File::create(&path)?;
    for _ in 0..256 {
        f.write_all(&block)?;
    }
    f.sync_data()?;
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok((256u64 << 20) as f64 / 1e6 / secs)
}

/// CPU seconds (user + system) a process has used, from /proc.
pub(crate) fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Jiffies the machine's CPUs spent busy (user, nice, system, irq,
/// softirq, steal) and in all, from the first line of /proc/stat.
pub(crate) fn machine_cpu() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = f.get(..3)?.iter().sum::<u64>() + f.get(5..8)?.iter().sum::<u64>();
    Some((busy, f.get(..8)?.iter().sum()))
}

/// Nanoseconds each thread of a process has spent runnable but waiting for
/// a CPU (/proc/PID/task/TID/schedstat), by thread id.
pub(crate) fn runqueue_waits(pid: Option<u32>) -> Option<HashMap<String, u64>> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", pid?)).ok()?;
    let mut waits = HashMap::new();
    for task in tasks.flatten() {
        let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = s.split_whitespace().nth(1).and_then(|v| v.parse().ok()) {
            waits.insert(task.file_name().to_string_lossy().into_owned(), ns);
        }
    }
    Some(waits)
}

/// Seconds a process's threads waited for a CPU between two `runqueue_waits`
/// (a thread that exited in between is not counted).
pub(crate) fn runqueue_seconds(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> f64 {
    let ns: u64 = after
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    ns as f64 / 1e9
}

/// Resident memory and its peak (kB) of a process.
pub(crate) fn rss_kb(pid: Option<u32>) -> (Option<u64>, Option<u64>) {
    let Some(pid) = pid else { return (None, None) };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Percentiles of sorted latencies.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

/// Samples a process's resident memory until `stop` is set, keeping the peak.
pub(crate) struct RssSampler {
    task: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    pub(crate) fn start(pid: Option<u32>, stop: Arc<AtomicBool>, every: Duration) -> Self {
        let task = tokio::spawn(async move {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                if let (Some(rss), _) = rss_kb(pid) {
                    peak = peak.max(rss);
                }
                tokio::time::sleep(every).await;
            }
            peak
        });
        RssSampler { task }
    }

    /// The peak seen (kB), once the sampler has noticed `stop`.
    pub(crate) async fn peak(self) -> Option<u64> {
        self.task.await.ok().filter(|&p| p > 0)
    }
}

/// The extra resident memory (kB) of the server while `transfer` runs: its
/// peak, sampled every 10 ms, above the resident set just before.
pub(crate) async fn rss_during<F: std::future::Future<Output = anyhow::Result<()>>>(
    pid: Option<u32>,
    transfer: F,
) -> anyhow::Result<Option<u64>> {
    let (before, _) = rss_kb(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = RssSampler::start(pid, stop.clone(), Duration::from_millis(10));
    let result = transfer.await;
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.peak().await;
    result?;
    Ok(peak.zip(before).map(|(p, b)| p.saturating_sub(b)))
}

/// CPU seconds (user + system) a process has used so far.
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

pub(crate) fn emit(target: &str, scenario: &str, mut fields: serde_json::Value) {
    fields["target"] = json!(target);
    fields["scenario"] = json!(scenario);
    println!("{fields}");
}

/// Run `c` concurrent loops of one request kind for `secs`; returns (rps, p50 ms, p99 ms, errors).
pub(crate) async fn rate(
    client: &Client,
    c: usize,
    secs: u64,
    make: Arc<dyn Fn(&Client) -> reqwest::RequestBuilder + Send + Sync>,
) -> (f64, f64, f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..c {
        let client = client.clone();
        let make = make.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match make(&client).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    gather(tasks, &stop, secs).await
}

/// Let `tasks` (each returning its latencies in ms and its error count) run
/// for `secs`, stop them, and return (operations/s, p50 ms, p99 ms, errors).
pub(crate) async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(Vec<f64>, u64)>>,
    stop: &AtomicBool,
    secs: u64,
) -> (f64, f64, f64, u64) {
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            all.extend(l);
            errors += e;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    (
        all.len() as f64 / elapsed,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        errors,
    )
}
