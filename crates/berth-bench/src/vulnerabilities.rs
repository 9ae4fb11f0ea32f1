//! The vulnerability scenario (Berth only): push `images` images that
//! share a few Debian base layers (real `dpkg` status stanzas of this
//! machine) and each add an application layer of npm packages, wait until
//! every image is inventoried, then import a batch of advisories and time
//! how long until every affected image is known (the import answers when
//! its re-match is done), and how soon a new push is matched. The answer is
//! checked: the findings the import reports must be exactly those the
//! scenario's own arithmetic expects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::json;

use crate::payload::*;
use crate::target::*;

/// Repositories the images are spread over.
const REPOSITORIES: usize = 100;
/// Debian packages per base layer (a slim Debian image has about 90).
const BASE_PACKAGES: usize = 100;
/// lodash patch releases the application layers pick from (4.17.0–21).
const LODASH: usize = 22;
/// The first lodash release the scenario's advisory calls fixed.
const LODASH_FIXED: usize = 11;

/// One tar entry.
fn add(tar: &mut tar::Builder<Vec<u8>>, path: &str, body: &[u8]) -> anyhow::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, path, body)?;
    Ok(())
}

/// The first `BASE_PACKAGES` installed stanzas of this machine's dpkg
/// status, as (stanza, package, version).
fn machine_packages() -> anyhow::Result<Vec<(String, String, String)>> {
    let status = std::fs::read_to_string("/var/lib/dpkg/status")
        .context("this scenario reads /var/lib/dpkg/status (a Debian machine)")?;
    let mut out = Vec::new();
    for stanza in status.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
        };
        let (Some(p), Some(v), Some(s)) = (field("Package:"), field("Version:"), field("Status:"))
        else {
            continue;
        };
        if s == "install ok installed" && !out.iter().any(|(_, q, _)| *q == p) {
            out.push((stanza.trim().to_owned(), p, v));
        }
        if out.len() == BASE_PACKAGES {
            break;
        }
    }
    Ok(out)
}

/// A base layer: Debian 12's os-release and a dpkg status of `packages`
/// plus one package telling the bases apart.
fn base_layer(packages: &[(String, String, String)], b: usize) -> anyhow::Result<Vec<u8>> {
    let mut status: Vec<&str> = packages.iter().map(|(s, _, _)| s.as_str()).collect();
    let own = format!(
        "Package: berth-bench-base\nStatus: install ok installed\nVersion: 1.{b}\nArchitecture: all"
    );
    status.push(&own);
    let mut tar = tar::Builder::new(Vec::new());
    add(
        &mut tar,
        "etc/os-release",
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    )?;
    add(
        &mut tar,
        "var/lib/dpkg/status",
        (status.join("\n\n") + "\n").as_bytes(),
    )?;
    Ok(tar.into_inner()?)
}

/// Image `i`'s application layer: lodash 4.17.(i mod 22) and its own package.
fn app_layer(i: usize) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let pkg = |name: &str, version: &str| json!({"name": name, "version": version}).to_string();
    add(
        &mut tar,
        "app/node_modules/lodash/package.json",
        pkg("lodash", &format!("4.17.{}", i % LODASH)).as_bytes(),
    )?;
    add(
        &mut tar,
        &format!("app/node_modules/bench-app-{i}/package.json"),
        pkg(&format!("bench-app-{i}"), "1.0.0").as_bytes(),
    )?;
    Ok(tar.into_inner()?)
}

/// Push image `i` (its base blobs already in its repository).
async fn push_image(t: &Target, i: usize, bases: &[(String, usize)]) -> anyhow::Result<String> {
    let repo = format!("bench/vuln-{}", i % REPOSITORIES);
    let base = &bases[i % bases.len()];
    let app = app_layer(i)?;
    let app_len = app.len();
    let app_digest = t.push_blob(&repo, app).await?;
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [base.0, app_digest]},
        "config": {"Labels": {"berth.bench.image": i.to_string()}},
    }))?;
    let config_len = config.len();
    let config_digest = t.push_blob(&repo, config).await?;
    t.push_manifest(
        &repo,
        &format!("i{i}"),
        (&config_digest, config_len),
        &[base.clone(), (app_digest, app_len)],
    )
    .await
}

/// Jobs queued or running, from `/metrics` (every node sees the same).
async fn jobs_left(t: &Target) -> anyhow::Result<u64> {
    let text = t
        .client
        .get(format!("{}/metrics", t.url))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("berth_jobs{")
                && (l.contains("state=\"waiting\"") || l.contains("state=\"running\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

async fn wait_for_jobs(t: &Target) -> anyhow::Result<()> {
    loop {
        if jobs_left(t).await? == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn advisory(id: &str, ecosystem: &str, name: &str, fixed: &str) -> serde_json::Value {
    json!({
        "schema_version": "1.6.0", "id": id, "modified": "2026-12-01T00:00:00Z",
        "summary": format!("berth-bench advisory for {name}"),
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
    })
}

/// Import advisories through the management API; its answer.
async fn import(t: &Target, advisories: &[serde_json::Value]) -> anyhow::Result<serde_json::Value> {
    let r = t
        .push_req(t.client.post(format!("{}/api/v1/advisories", t.url)))
        .timeout(Duration::from_secs(3600))
        .json(&json!({ "advisories": advisories }))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!(
            "import: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    Ok(r.json().await?)
}

/// The scenario; prints one JSON line per measurement.
pub(crate) async fn vulnerabilities(
    target: &str,
    t: Target,
    images: usize,
    bases: usize,
    advisories: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let packages = machine_packages()?;
    let t = Arc::new(t);
    let mut base_blobs = Vec::new();
    for b in 0..bases {
        let layer = Bytes::from(base_layer(&packages, b)?);
        let digest = sha256(&layer);
        for r in 0..REPOSITORIES {
            t.push_blob_as(&format!("bench/vuln-{r}"), layer.clone(), &digest)
                .await?;
        }
        base_blobs.push((digest, layer.len()));
    }
    let base_blobs = Arc::new(base_blobs);

    // Every image pushed, then every inventory made.
    let start = Instant::now();
    stream::iter(0..images)
        .map(|i| {
            let (t, bases) = (Arc::clone(&t), Arc::clone(&base_blobs));
            async move { push_image(&t, i, &bases).await }
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let pushed = start.elapsed().as_secs_f64();
    wait_for_jobs(&t).await?;
    let inventoried = start.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"target": target, "scenario": "vuln_inventory", "images": images,
            "push_s": pushed, "inventoried_s": inventoried,
            "images_per_s": images as f64 / inventoried})
    );

    // A batch of advisories: one per base package (every image affected by
    // each), and lodash below 4.17.11 (half the application layers).
    // Debian advisories name source packages, so a package that is another
    // one's source would hit that one too: left out, to keep the count exact.
    let sources: Vec<String> = packages
        .iter()
        .filter_map(|(stanza, p, _)| {
            let s = stanza.lines().find_map(|l| l.strip_prefix("Source:"))?;
            let s = s.split_whitespace().next()?;
            (s != p).then(|| s.to_owned())
        })
        .collect();
    let mut batch: Vec<serde_json::Value> = packages
        .iter()
        .filter(|(_, p, _)| !sources.contains(p))
        .take(advisories.saturating_sub(1))
        .enumerate()
        .map(|(n, (_, p, v))| {
            advisory(
                &format!("BENCH-DEB-{n}"),
                "Debian:12",
                p,
                &format!("{v}+bench1"),
            )
        })
        .collect();
    batch.push(advisory(
        "BENCH-NPM-LODASH",
        "npm",
        "lodash",
        &format!("4.17.{LODASH_FIXED}"),
    ));
    if batch.len() < advisories.saturating_sub(1) {
        bail!("too few installed packages here for {advisories} advisories");
    }
    let lodash_hits = (0..images).filter(|i| i % LODASH < LODASH_FIXED).count();
    let expected = images * (batch.len() - 1) + lodash_hits;
    let start = Instant::now();
    let answer = import(&t, &batch).await?;
    let rematch = start.elapsed().as_secs_f64();
    let found = answer["new_findings"].as_u64().unwrap_or(0) as usize;
    if found != expected || answer["images_matched"].as_u64() != Some(images as u64) {
        bail!("the import found {found} (expected {expected}): {answer}");
    }
    println!(
        "{}",
        json!({"target": target, "scenario": "vuln_rematch", "images": images,
            "advisories": batch.len(), "findings": found, "seconds": rematch})
    );

    // A new push, matched once its inventory is made.
    let i = images;
    let start = Instant::now();
    let digest = push_image(&t, i, &base_blobs).await?;
    let url = format!(
        "{}/api/v1/namespaces/bench/repositories/vuln-{}/manifests/{digest}/vulnerabilities",
        t.url,
        i % REPOSITORIES
    );
    loop {
        let r = t.push_req(t.client.get(&url)).send().await?;
        if r.status().is_success() {
            let v: serde_json::Value = r.json().await?;
            if v["findings"].as_array().is_some_and(|f| !f.is_empty()) {
                break;
            }
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("the new image was not matched in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{}",
        json!({"target": target, "scenario": "vuln_new_push_matched",
            "seconds": start.elapsed().as_secs_f64()})
    );
    Ok(())
}
