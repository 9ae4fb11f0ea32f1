//! Regions (bench/regions.sh): images pushed in one region, replication
//! to another timed until its backlog drains, replication lag of images
//! pushed at a steady rate, and the first pull of an image the region does
//! not hold yet (on demand) against a pull of one it holds.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::measure::*;
use crate::payload::*;
use crate::target::*;

/// Push `images` images of one `size`-byte layer as tags `v0…` of `repo`.
pub async fn push(
    t: &Target,
    repo: &str,
    images: usize,
    size: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    for i in 0..images {
        push_one(t, repo, &format!("v{i}"), size, seed * 1_000_000 + i as u64).await?;
    }
    emit(
        "berth",
        &format!("regions_push_{repo}"),
        json!({"images": images, "bytes": images * size, "seconds": started.elapsed().as_secs_f64()}),
    );
    Ok(())
}

/// Push one image; returns the layer's digest.
async fn push_one(
    t: &Target,
    repo: &str,
    tag: &str,
    size: usize,
    seed: u64,
) -> anyhow::Result<String> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
    let config_len = config.len();
    let layer = data(size, seed);
    let config_digest = t.push_blob(repo, config).await?;
    let layer_digest = t.push_blob(repo, layer).await?;
    t.push_manifest(
        repo,
        tag,
        (&config_digest, config_len),
        &[(layer_digest.clone(), size)],
    )
    .await?;
    Ok(layer_digest)
}

/// Jobs of `region` not done yet, by `GET /api/v1/regions`.
async fn backlog(t: &Target, region: &str) -> anyhow::Result<i64> {
    let (user, password) = t.creds.clone().context("credentials")?;
    let v: Value = t
        .client
        .get(format!("{}/api/v1/regions", t.url))
        .basic_auth(user, Some(password))
        .send()
        .await?
        .json()
        .await?;
    let r = v
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == region))
        .with_context(|| format!("region {region} in {v}"))?;
    if r["jobs_failed"].as_i64().unwrap_or(0) > 0 {
        bail!("replication jobs failed: {r}");
    }
    Ok(r["jobs_waiting"].as_i64().unwrap_or(0) + r["jobs_running"].as_i64().unwrap_or(0))
}

/// Wait until `region`'s backlog is empty; emit the time since `since`
/// (Unix seconds, when the region's worker started) and the rate.
pub async fn drain(
    t: &Target,
    region: &str,
    label: &str,
    since: f64,
    images: usize,
    bytes: u64,
) -> anyhow::Result<()> {
    loop {
        if backlog(t, region).await? == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    let secs = now - since;
    emit(
        "berth",
        &format!("regions_replicate_{label}"),
        json!({"seconds": secs, "images_s": images as f64 / secs, "mb_s": bytes as f64 / 1e6 / secs}),
    );
    Ok(())
}

/// Whether `region` holds every blob of `repo:tag`, by the tag list.
async fn whole_in(t: &Target, repo: &str, tag: &str, region: &str) -> anyhow::Result<bool> {
    let (ns, image) = repo.split_once('/').context("namespace/image")?;
    let (user, password) = t.creds.clone().context("credentials")?;
    let v: Value = t
        .client
        .get(format!(
            "{}/api/v1/namespaces/{ns}/repositories/{}/tags?q={tag}",
            t.url,
            image.replace('/', "%2F")
        ))
        .basic_auth(user, Some(password))
        .send()
        .await?
        .json()
        .await?;
    Ok(v["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == tag))
        .and_then(|i| i["regions"].as_array())
        .is_some_and(|rs| {
            rs.iter()
                .any(|r| r["region"] == region && r["available"] == true)
        }))
}

/// Push 1 MB images at `rate` per second for `secs`; each one's lag is
/// from its push's end to its being whole in `region` (polled every 5 ms).
pub async fn lag(north: &Target, region: &str, rate: f64, secs: u64) -> anyhow::Result<()> {
    let every = Duration::from_secs_f64(1.0 / rate);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut waits = Vec::new();
    let mut i = 0u64;
    let mut next = Instant::now();
    while Instant::now() < end {
        tokio::time::sleep_until(next.into()).await;
        next += every;
        let tag = format!("lag{i}");
        push_one(north, "bench/lag", &tag, 1_000_000, 50_000_000 + i).await?;
        let pushed = Instant::now();
        let t = north.clone();
        let region = region.to_owned();
        waits.push(tokio::spawn(async move {
            loop {
                match whole_in(&t, "bench/lag", &tag, &region).await {
                    Ok(true) => return Ok(pushed.elapsed().as_secs_f64() * 1000.0),
                    Ok(false) => {}
                    Err(e) => return Err(e),
                }
                if pushed.elapsed() > Duration::from_secs(120) {
                    bail!("{tag} not replicated after 120 s");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
        i += 1;
    }
    let mut lags = Vec::new();
    for w in waits {
        lags.push(w.await??);
    }
    lags.sort_by(f64::total_cmp);
    emit(
        "berth",
        "regions_lag_1m",
        json!({"images": lags.len(), "rate_s": rate, "p50_ms": percentile(&lags, 0.5),
               "p99_ms": percentile(&lags, 0.99), "max_ms": lags.last().copied().unwrap_or(0.0)}),
    );
    Ok(())
}

/// Push `images` 1 MB images in the north; pull each one's layer from a
/// node of a region that does not hold it yet (on demand), then again
/// (local).
pub async fn first_pull(north: &Target, cold: &Target, images: usize) -> anyhow::Result<()> {
    let mut first = Vec::new();
    let mut local = Vec::new();
    for i in 0..images {
        let digest = push_one(
            north,
            "bench/cold",
            &format!("c{i}"),
            1_000_000,
            70_000_000 + i as u64,
        )
        .await?;
        let url = format!("{}/v2/bench/cold/blobs/{digest}", cold.url);
        for times in [&mut first, &mut local] {
            let started = Instant::now();
            let body = cold
                .anon
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            if sha256(&body) != digest {
                bail!("wrong bytes for {digest}");
            }
        }
    }
    first.sort_by(f64::total_cmp);
    local.sort_by(f64::total_cmp);
    emit(
        "berth",
        "regions_first_pull_1m",
        json!({"images": images, "on_demand_p50_ms": percentile(&first, 0.5),
               "on_demand_p99_ms": percentile(&first, 0.99), "local_p50_ms": percentile(&local, 0.5),
               "local_p99_ms": percentile(&local, 0.99)}),
    );
    Ok(())
}
