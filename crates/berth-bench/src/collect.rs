//! Garbage collection's reclaim rate: push images of several small unique
//! blobs (concurrently), delete every image, then start one collection
//! through the API and time it until it reports done: blobs deleted per
//! second, as the run itself reports them (and the run's own duration).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::measure::*;
use crate::payload::*;
use crate::target::*;

/// Push `images` images of `blobs` layers (1 KiB each) plus a config,
/// `clients` at a time, delete them, collect once; print one JSON line.
pub(crate) async fn collect(
    t: Target,
    target: &str,
    images: u64,
    blobs: u64,
    clients: u64,
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
    let objects = images * (blobs + 1);

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
    ensure!(done["status"] == "finished", "gc ended {done}");
    let deleted = done["blobs_deleted"].as_u64().unwrap_or(0);
    ensure!(
        deleted >= objects,
        "gc deleted {deleted} blobs of the {objects} pushed: {done}"
    );
    emit(
        target,
        "gc_reclaim",
        json!({"images": images, "objects": objects, "push_s": pushed_s,
            "blobs_deleted": deleted, "bytes_reclaimed": done["bytes_reclaimed"],
            "seconds": seconds, "run_seconds": done["duration_seconds"],
            "objects_per_s": deleted as f64 / seconds}),
    );
    Ok(())
}
