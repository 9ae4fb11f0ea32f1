//! A bounded soak run: several clients push, pull and delete small images
//! for a fixed time while a collection runs every few seconds, and the
//! server's resident memory and open file descriptors are sampled from
//! /proc throughout. The verdict compares the last quarter of the run with
//! the quarter after the first (the warm-up): both must stay flat.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::measure::*;
use crate::payload::*;
use crate::target::*;

/// Memory may grow this much from the second quarter to the last (caches
/// fill, the allocator settles) and still count as flat.
const RSS_SLACK_KB: u64 = 8 << 10;
/// Open files may differ this much (connections come and go).
const FD_SLACK: u64 = 24;

#[derive(Default)]
struct Counts {
    pushed: AtomicU64,
    pulled: AtomicU64,
    deleted: AtomicU64,
    collections: AtomicU64,
    errors: AtomicU64,
}

fn open_fds(pid: u32) -> Option<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count() as u64)
}

/// One client's loop: push an image (config and one layer of 16 KiB to
/// 1 MiB, content unique to this push), pull it three times, delete it by
/// digest; until `until`.
async fn client(t: Arc<Target>, id: u64, until: Instant, counts: Arc<Counts>) {
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let seed = id << 32 | n;
        let repo = format!("soak/c{id}");
        let result: anyhow::Result<()> = async {
            let layer = data(16 << 10 << (n % 7), seed);
            let config = format!(r#"{{"os":"linux","seed":{seed}}}"#).into_bytes();
            let config_len = config.len();
            let layer_len = layer.len();
            let config_digest = t.push_blob(&repo, config).await?;
            let layer_digest = t.push_blob(&repo, layer).await?;
            let manifest = t
                .push_manifest(
                    &repo,
                    &format!("t{}", n % 5),
                    (&config_digest, config_len),
                    &[(layer_digest.clone(), layer_len)],
                )
                .await?;
            counts.pushed.fetch_add(1, Ordering::Relaxed);
            for _ in 0..3 {
                for path in [
                    format!("manifests/{manifest}"),
                    format!("blobs/{layer_digest}"),
                ] {
                    let r = t
                        .push_req(t.client.get(format!("{}/v2/{repo}/{path}", t.url)))
                        .send()
                        .await?;
                    anyhow::ensure!(r.status() == StatusCode::OK, "GET {path}: {}", r.status());
                    let body = r.bytes().await?;
                    if path.starts_with("blobs/") {
                        anyhow::ensure!(sha256(&body) == layer_digest, "blob content differs");
                    }
                }
                counts.pulled.fetch_add(1, Ordering::Relaxed);
            }
            let r = t
                .push_req(
                    t.client
                        .delete(format!("{}/v2/{repo}/manifests/{manifest}", t.url)),
                )
                .send()
                .await?;
            anyhow::ensure!(r.status() == StatusCode::ACCEPTED, "DELETE: {}", r.status());
            counts.deleted.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        .await;
        if let Err(e) = result {
            counts.errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak client {id}: {e:#}");
        }
    }
}

/// Start a collection every `every` until `until` (a run still going is
/// answered 409 and skipped).
async fn collector(t: Arc<Target>, every: Duration, until: Instant, counts: Arc<Counts>) {
    while Instant::now() + every < until {
        tokio::time::sleep(every).await;
        let r = t
            .push_req(t.client.post(format!("{}/api/v1/gc/runs", t.url)))
            .json(&json!({"dry_run": false}))
            .send()
            .await;
        match r.map(|r| r.status()) {
            Ok(StatusCode::ACCEPTED) => {
                counts.collections.fetch_add(1, Ordering::Relaxed);
            }
            Ok(StatusCode::CONFLICT) => {}
            other => {
                counts.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak collector: {other:?}");
            }
        }
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Run the soak and print one JSON line: the samples and the verdict.
/// Fails when memory or open files grew, or any request failed.
pub(crate) async fn soak(
    t: Target,
    pid: u32,
    seconds: u64,
    clients: u64,
    gc_every: u64,
) -> anyhow::Result<()> {
    let t = Arc::new(t);
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for id in 0..clients {
        tasks.push(tokio::spawn(client(t.clone(), id, until, counts.clone())));
    }
    tasks.push(tokio::spawn(collector(
        t.clone(),
        Duration::from_secs(gc_every),
        until,
        counts.clone(),
    )));
    let mut samples = Vec::new();
    while Instant::now() < until {
        let (rss, _) = rss_kb(Some(pid));
        let fds = open_fds(pid);
        let (Some(rss), Some(fds)) = (rss, fds) else {
            anyhow::bail!("the server (pid {pid}) is gone");
        };
        samples.push((start.elapsed().as_secs(), rss, fds));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for task in tasks {
        task.await?;
    }
    let q = samples.len() / 4;
    anyhow::ensure!(
        q >= 2,
        "too short a run to judge: {} samples",
        samples.len()
    );
    let quarter = |from: usize| samples[from..from + q].iter();
    let rss_early = median(quarter(q).map(|s| s.1).collect());
    let rss_late = median(quarter(samples.len() - q).map(|s| s.1).collect());
    let fds_early = median(quarter(q).map(|s| s.2).collect());
    let fds_late = median(quarter(samples.len() - q).map(|s| s.2).collect());
    let rss_flat = rss_late <= rss_early + RSS_SLACK_KB;
    let fds_flat = fds_late <= fds_early + FD_SLACK;
    let errors = counts.errors.load(Ordering::Relaxed);
    emit(
        "berth",
        "soak",
        json!({
            "seconds": seconds,
            "clients": clients,
            "images_pushed": counts.pushed.load(Ordering::Relaxed),
            "pulls": counts.pulled.load(Ordering::Relaxed),
            "deletes": counts.deleted.load(Ordering::Relaxed),
            "collections": counts.collections.load(Ordering::Relaxed),
            "errors": errors,
            "rss_kb_second_quarter": rss_early,
            "rss_kb_last_quarter": rss_late,
            "rss_kb_max": samples.iter().map(|s| s.1).max(),
            "fds_second_quarter": fds_early,
            "fds_last_quarter": fds_late,
            "fds_max": samples.iter().map(|s| s.2).max(),
            "flat": rss_flat && fds_flat,
            "samples": samples.iter().map(|s| [s.0, s.1, s.2]).collect::<Vec<_>>(),
        }),
    );
    anyhow::ensure!(errors == 0, "{errors} requests failed");
    anyhow::ensure!(
        rss_flat,
        "resident memory grew: {rss_early} kB in the second quarter, {rss_late} kB in the last"
    );
    anyhow::ensure!(
        fds_flat,
        "open files grew: {fds_early} in the second quarter, {fds_late} in the last"
    );
    Ok(())
}
