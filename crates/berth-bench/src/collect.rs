//! Garbage collection's reclaim rate: push images of several small unique
//! blobs (concurrently), delete every image but the first `keep` (their
//! blobs stay, interleaved in digest order with those to reclaim, as in a
//! registry where half the images were deleted), then start one collection
//! through the API and time it until it reports done: blobs deleted per
//! second, as the run itself reports them (and the run's own duration).
//! One client keeps pushing small images meanwhile, and before, idle: the
//! push latency p99 during the collection against without it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::measure::*;
use crate::payload::*;
use crate::target::*;

/// Push `images` images of `blobs` layers (1 KiB each) plus a config,
/// `clients` at a time, delete all but the first `keep`, collect once;
/// print one JSON line.
pub(crate) async fn collect(
    t: Target,
    target: &str,
    (images, keep, blobs, clients): (u64, u64, u64, u64),
    push_delete_only: bool,
) -> anyhow::Result<()> {
    let t = Arc::new(t);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while i < images {
                let repo = format!("bench/gc{}", i % 100);
                let mut layers = Vec::new();
                for b in 0..blobs {
                    let body = data(1024, i << 16 | b);
                    let len = body.len();
                    layers.push((t.push_blob(&repo, body).await?, len));
                }
                let config = format!(r#"{{"os":"linux","image":{i}}}"#).into_bytes();
                let config_len = config.len();
                let cd = t.push_blob(&repo, config).await?;
                let digest = t
                    .push_manifest(&repo, &format!("t{i}"), (&cd, config_len), &layers)
                    .await?;
                if i < keep {
                    i += clients;
                    continue;
                }
                let r = t
                    .push_req(
                        t.client
                            .delete(format!("{}/v2/{repo}/manifests/{digest}", t.url)),
                    )
                    .send()
                    .await?;
                ensure!(r.status() == StatusCode::ACCEPTED, "DELETE: {}", r.status());
                i += clients;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let pushed_s = start.elapsed().as_secs_f64();
    let kept = keep.min(images) * (blobs + 1);
    let objects = images * (blobs + 1) - kept;
    if push_delete_only {
        // Another registry's own collector is timed by the caller.
        emit(
            target,
            "gc_push_delete",
            json!({"images": images, "objects": objects, "kept": kept, "push_s": pushed_s}),
        );
        return Ok(());
    }

    // Push latency without a collection, then during one.
    let stop = Arc::new(AtomicBool::new(false));
    let idle = tokio::spawn(push_loop(t.clone(), "idle", stop.clone()));
    tokio::time::sleep(PUSH_SAMPLE).await;
    stop.store(true, Ordering::Relaxed);
    let (idle_ms, _) = idle.await??;
    let stop = Arc::new(AtomicBool::new(false));
    let busy = tokio::spawn(push_loop(t.clone(), "during", stop.clone()));

    let started = Instant::now();
    let r = t
        .push_req(t.client.post(format!("{}/api/v1/gc/runs", t.url)))
        .json(&json!({"dry_run": false}))
        .send()
        .await?;
    if r.status() != StatusCode::ACCEPTED {
        bail!("gc: {} {}", r.status(), r.text().await.unwrap_or_default());
    }
    let run: Value = r.json().await?;
    let id = run["id"].as_i64().context("the run's id")?;
    let done = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let v: Value = t
            .push_req(t.client.get(format!("{}/api/v1/gc/runs/{id}", t.url)))
            .send()
            .await?
            .json()
            .await?;
        if v["status"] != "running" {
            break v;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "gc still running after an hour"
        );
    };
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (busy_ms, refused) = busy.await??;
    ensure!(done["status"] == "finished", "gc ended {done}");
    let deleted = done["blobs_deleted"].as_u64().unwrap_or(0);
    ensure!(
        deleted >= objects,
        "gc deleted {deleted} blobs of the {objects} pushed: {done}"
    );
    for i in 0..keep.min(images).min(20) {
        kept_image_whole(&t, i).await?;
    }
    emit(
        target,
        "gc_reclaim",
        json!({"images": images, "objects": objects, "kept": kept, "push_s": pushed_s,
            "blobs_deleted": deleted, "bytes_reclaimed": done["bytes_reclaimed"],
            "seconds": seconds, "run_seconds": done["duration_seconds"],
            "objects_per_s": deleted as f64 / seconds,
            "progress": done["progress"],
            "push_idle_n": idle_ms.len(), "push_idle_p50_ms": percentile(&idle_ms, 0.5),
            "push_idle_p99_ms": percentile(&idle_ms, 0.99),
            "push_during_n": busy_ms.len(), "push_during_p50_ms": percentile(&busy_ms, 0.5),
            "push_during_p99_ms": percentile(&busy_ms, 0.99),
            "push_during_refused": refused}),
    );
    Ok(())
}

/// A kept image still has its manifest and every blob it references.
async fn kept_image_whole(t: &Target, i: u64) -> anyhow::Result<()> {
    let repo = format!("bench/gc{}", i % 100);
    let r = t
        .push_req(t.client.get(format!("{}/v2/{repo}/manifests/t{i}", t.url)))
        .header("accept", MANIFEST_TYPE)
        .send()
        .await?;
    ensure!(
        r.status() == StatusCode::OK,
        "kept image {i}: {}",
        r.status()
    );
    let m: Value = r.json().await?;
    let layers = m["layers"].as_array().context("layers")?;
    for d in layers.iter().chain([&m["config"]]) {
        let d = d["digest"].as_str().context("a digest")?;
        let r = t
            .push_req(t.client.head(format!("{}/v2/{repo}/blobs/{d}", t.url)))
            .send()
            .await?;
        ensure!(
            r.status() == StatusCode::OK,
            "kept image {i}, blob {d}: {}",
            r.status()
        );
    }
    Ok(())
}

/// How long the idle push latency is sampled.
const PUSH_SAMPLE: Duration = Duration::from_secs(10);

/// Push small images (a 1 KiB layer, a config, the manifest) one after
/// another until `stop`: each whole push's milliseconds, sorted, and how
/// many a collection refused (a layer it took before its manifest came,
/// with `gc.grace_secs = 0`; the client pushes again).
async fn push_loop(
    t: Arc<Target>,
    label: &'static str,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let mut times = Vec::new();
    let mut refused = 0;
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let repo = "bench/gc-pushes";
        let at = Instant::now();
        let layer = data(1024, 1 << 40 | n);
        let layer = (t.push_blob(repo, layer).await?, 1024);
        let config = format!(r#"{{"os":"linux","push":"{label}-{n}"}}"#).into_bytes();
        let config_len = config.len();
        let cd = t.push_blob(repo, config).await?;
        match t
            .push_manifest(repo, &format!("{label}-{n}"), (&cd, config_len), &[layer])
            .await
        {
            Ok(_) => times.push(at.elapsed().as_secs_f64() * 1000.0),
            Err(e) if e.to_string().contains("MANIFEST_BLOB_UNKNOWN") => refused += 1,
            Err(e) => return Err(e),
        }
    }
    times.sort_by(f64::total_cmp);
    ensure!(
        !times.is_empty(),
        "no push completed while sampling ({label})"
    );
    Ok((times, refused))
}
