//! Push and pull scenarios: rates and latencies of concurrent transfers,
//! memory per transfer, storage, several nodes, and `run`, one round of the
//! registry scenarios.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use berth_oci::Algorithm;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Client;
use serde_json::json;

use crate::ceiling;
use crate::measure::*;
use crate::payload::*;
use crate::reads::*;
use crate::target::*;

/// Push a single-layer image of `layer_len` fresh bytes as `repo:tag`, and,
/// when `pull`, pull its manifest and layer back.
pub(crate) async fn push_pull_once(
    t: &Target,
    repo: &str,
    tag: &str,
    layer_len: usize,
    seed: u64,
    pull: bool,
) -> anyhow::Result<()> {
    let layer = data(layer_len, seed);
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
    let config_len = config.len();
    let cd = t.push_blob(repo, config).await?;
    let ld = t.push_blob(repo, layer).await?;
    t.push_manifest(repo, tag, (&cd, config_len), &[(ld.clone(), layer_len)])
        .await?;
    if pull {
        let r = t
            .anon
            .get(format!("{}/v2/{repo}/manifests/{tag}", t.url))
            .header("accept", MANIFEST_TYPE)
            .send()
            .await?
            .error_for_status()?;
        r.bytes().await?;
        let body = t
            .anon
            .get(format!("{}/v2/{repo}/blobs/{ld}", t.url))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        if body.len() != layer_len {
            bail!("pulled {} bytes of a {layer_len}-byte layer", body.len());
        }
    }
    Ok(())
}

/// `c` clients pushing (and pulling back) images for `secs`; `repo_of`
/// names each client's repository. Returns (images/s, p50 ms, p99 ms,
/// errors, highest RSS of `pid` seen meanwhile in kB).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn push_loop(
    t: &Arc<Target>,
    c: usize,
    secs: u64,
    round: u32,
    layer_len: usize,
    pull: bool,
    repo_of: fn(usize) -> String,
    pid: Option<u32>,
) -> (f64, f64, f64, u64, Option<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = RssSampler::start(pid, stop.clone(), Duration::from_millis(20));
    let mut tasks = Vec::new();
    for task in 0..c {
        let t = t.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let repo = repo_of(task);
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // Fresh content every time: no push is deduplicated.
                let seed = (u64::from(round) << 40) + SEEDS.fetch_add(1, Ordering::Relaxed);
                let tag = format!("r{round}-c{task}-{i}");
                let start = Instant::now();
                match push_pull_once(&t, &repo, &tag, layer_len, seed, pull).await {
                    Ok(()) => lat.push(start.elapsed().as_secs_f64() * 1000.0),
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let (rate, p50, p99, errors) = gather(tasks, &stop, secs).await;
    let peak = sampler.peak().await;
    (rate, p50, p99, errors, peak)
}

/// Sizes of the blobs whose transfers' memory is compared.
pub(crate) const MEMORY_SIZES: [(usize, &str); 3] = [
    (10 << 20, "10mib"),
    (100 << 20, "100mib"),
    (1 << 30, "1gib"),
];

/// Memory per transfer whatever the blob's size: the server's extra
/// resident memory during one streamed push (a body of unknown length, as
/// `docker push` sends) and one download of blobs of 10 MiB, 100 MiB and 1 GiB.
/// Run once after the rounds: 2.2 GiB written and fsynced would push this
/// machine's disk into its slow phase for the next round's push scenarios.
pub(crate) async fn transfer_memory(
    cli_target: &str,
    t: &Target,
    repo: &str,
    pid: Option<u32>,
) -> anyhow::Result<()> {
    // A small push first: the first verification of a password (argon2id,
    // 19 MiB) would otherwise count as the first upload's memory.
    t.push_blob(repo, data(1024, 4999)).await?;
    for (len, label) in MEMORY_SIZES {
        let seed = 5000 + len as u64;
        let mut hasher = berth_oci::Hasher::new(Algorithm::Sha256);
        for piece in pieces(len, seed) {
            hasher.update(&piece);
        }
        let digest = hasher.finish().to_string();
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces(len, seed).map(Ok::<_, std::io::Error>),
        ));
        let push = rss_during(pid, t.push_blob_as(repo, body, &digest)).await?;
        let url = format!("{}/v2/{repo}/blobs/{digest}", t.url);
        let get = rss_during(pid, async {
            let mut s = t
                .anon
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .bytes_stream();
            let mut n = 0usize;
            while let Some(chunk) = s.next().await {
                n += chunk?.len();
            }
            if n != len {
                bail!("blob GET returned {n} of {len} bytes");
            }
            Ok(())
        })
        .await?;
        emit(
            cli_target,
            &format!("memory_transfer_{label}"),
            json!({"push_extra_rss_kb": push, "get_extra_rss_kb": get}),
        );
    }
    Ok(())
}

/// Push and pull of fresh 100 MiB images (one client) and 1 MB images
/// (four clients) for `secs` each: images/s, MB/s, p50 and p99.
pub(crate) async fn storage(
    cli_target: &str,
    t: Target,
    pid: Option<u32>,
    secs: u64,
    round: u32,
) -> anyhow::Result<()> {
    let t = Arc::new(t);
    for (label, len, c) in [("100m_c1", BIG, 1usize), ("1m_c4", 1_000_000, 4)] {
        let (images, p50, p99, errors, peak) = push_loop(
            &t,
            c,
            secs,
            round,
            len,
            false,
            |task| format!("bench/storage{task}"),
            pid,
        )
        .await;
        emit(
            cli_target,
            &format!("storage_push_{label}"),
            json!({"images_s": images, "mb_s": images * len as f64 / 1e6, "p50_ms": p50,
                   "p99_ms": p99, "errors": errors, "peak_rss_kb": peak}),
        );
        // Pull: one image per client, read again and again.
        let mut urls = Vec::new();
        for task in 0..c {
            let repo = format!("bench/storage{task}");
            let layer = data(len, 7_000_000 + task as u64 + u64::from(round) * 100);
            let digest = t.push_blob(&repo, layer).await?;
            urls.push(format!("{}/v2/{repo}/blobs/{digest}", t.url));
        }
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (pulls, p50, p99, errors) = rate(
            &t.anon,
            c,
            secs,
            Arc::new(move |client: &Client| {
                let i = next.fetch_add(1, Ordering::Relaxed) % urls.len();
                client.get(&urls[i])
            }),
        )
        .await;
        emit(
            cli_target,
            &format!("storage_pull_{label}"),
            json!({"images_s": pulls, "mb_s": pulls * len as f64 / 1e6, "p50_ms": p50,
                   "p99_ms": p99, "errors": errors}),
        );
    }
    Ok(())
}

/// Manifest GET by tag at c=32 with a bearer token, and the CPU the given
/// processes (the nodes and the load balancer) spent per request.
pub(crate) async fn nodes(
    cli_target: &str,
    t: Target,
    pids: &[u32],
    secs: u64,
) -> anyhow::Result<()> {
    let repo = "bench/nodes";
    let config = data(512, 11);
    let layer = data(4096, 12);
    let cd = t.push_blob(repo, config.clone()).await?;
    let ld = t.push_blob(repo, layer.clone()).await?;
    t.push_manifest(repo, "v1", (&cd, config.len()), &[(ld, layer.len())])
        .await?;
    let bearer = t.bearer(&format!("repository:{repo}:pull")).await?;
    let url = format!("{}/v2/{repo}/manifests/v1", t.url);
    let cpu_before: Vec<Option<f64>> = pids.iter().map(|&p| cpu_secs(p)).collect();
    let started = Instant::now();
    let (rps, p50, p99, errors) = rate(
        &t.anon,
        32,
        secs,
        Arc::new(move |client: &Client| {
            let mut r = client.get(&url).header("accept", MANIFEST_TYPE);
            if let Some(b) = &bearer {
                r = r.bearer_auth(b);
            }
            r
        }),
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu: f64 = pids
        .iter()
        .zip(cpu_before)
        .filter_map(|(&p, before)| Some(cpu_secs(p)? - before?))
        .sum();
    let requests = rps * elapsed;
    emit(
        cli_target,
        "nodes_manifest_get_token_c32",
        json!({"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors,
               "cpu_us_per_request": if requests > 0.0 { cpu / requests * 1e6 } else { f64::NAN },
               "processes": pids.len()}),
    );
    Ok(())
}

pub(crate) async fn run(
    cli_target: &str,
    t: Target,
    pid: Option<u32>,
    secs: u64,
    round: u32,
    disk_probe: Option<std::path::PathBuf>,
    mirror: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    // Idle means before any load: only the first round measures it.
    let (rss, _) = rss_kb(pid);
    let name = if round <= 1 {
        "rss_idle"
    } else {
        "rss_start_of_round"
    };
    emit(cli_target, name, json!({"rss_kb": rss}));
    // A small public image to read.
    let repo = "bench/app";
    let config = data(512, 1);
    let layer = data(4096, 2);
    let cd = t.push_blob(repo, config.clone()).await?;
    let ld = t.push_blob(repo, layer.clone()).await?;
    t.push_manifest(
        repo,
        "v1",
        (&cd, config.len()),
        &[(ld.clone(), layer.len())],
    )
    .await?;
    let base = t.url.clone();

    let bearer = t.bearer(&format!("repository:{repo}:pull")).await?;
    if bearer.is_none() && t.token_auth {
        bail!("no token");
    }
    if let Some(dir) = &mirror {
        // The same bytes as static files, for nginx's ceiling.
        let manifest = t
            .anon
            .get(format!("{base}/v2/{repo}/manifests/v1"))
            .header("accept", MANIFEST_TYPE)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let tags = t
            .anon
            .get(format!("{base}/v2/{repo}/tags/list"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        mirror_file(dir, &format!("v2/{repo}/manifests/v1"), &manifest)?;
        mirror_file(dir, &format!("v2/{repo}/tags/list"), &tags)?;
        mirror_file(dir, &format!("v2/{repo}/blobs/{ld}"), &layer)?;
    }
    read_scenarios(cli_target, &t.anon, &base, repo, &ld, bearer, pid, secs).await;

    // 100 MiB blobs: monolithic pushes, chunked pushes, then GETs at c=1 and
    // c=4. Contents and digests are prepared before the clock starts, and
    // each figure sums several transfers, so that it measures the server's
    // steady state rather than one request's start-up.
    let contents = |base: u64| {
        (0..PUSHES as u64)
            .map(|i| {
                let body = data(BIG, base + 10 * u64::from(round) + i);
                let digest = sha256(&body);
                (Bytes::from(body), digest)
            })
            .collect::<Vec<_>>()
    };
    let pushed_bytes = (BIG * PUSHES) as f64;
    let monolithic = contents(1000);
    settle_disk();
    if let Some(dir) = disk_probe {
        let probe = dir.clone();
        let mb_s = tokio::task::spawn_blocking(move || disk_write_speed(&probe)).await??;
        emit("machine", "disk_write_fdatasync", json!({"mb_s": mb_s}));
        // What a minimal program reaches with the same bodies on the same
        // cores and disk: received, hashed and made durable, then received
        // and hashed alone (module `ceiling`).
        let bodies = monolithic.clone();
        let (durable, hashed) = tokio::task::spawn_blocking(move || {
            anyhow::Ok((
                ceiling::push_ceiling(Some(&dir), &bodies)?,
                ceiling::push_ceiling(None, &bodies)?,
            ))
        })
        .await??;
        emit("machine", "push_ceiling_durable", json!({"mb_s": durable}));
        emit("machine", "push_ceiling_hash", json!({"mb_s": hashed}));
    }
    // Besides the rate: the server's and this client's CPU per GB, how long
    // the server's threads waited for a CPU, and how busy the machine was
    // (they share its cores).
    let me = Some(std::process::id());
    let (cpu0, client0, waits0, machine0) = (
        cpu_seconds(pid),
        cpu_seconds(me),
        runqueue_waits(pid),
        machine_cpu(),
    );
    let start = Instant::now();
    for (body, digest) in &monolithic {
        t.push_blob_as(repo, body.clone(), digest).await?;
    }
    let secs_push = start.elapsed().as_secs_f64();
    let gb = pushed_bytes / 1e9;
    let delta = |now: Option<f64>, then: Option<f64>| now.zip(then).map(|(a, b)| (a - b) / gb);
    let waited = runqueue_waits(pid)
        .zip(waits0)
        .map(|(after, before)| runqueue_seconds(&before, &after) / gb);
    let busy = machine_cpu()
        .zip(machine0)
        .and_then(|((b1, a1), (b0, a0))| {
            (a1 > a0).then(|| 100.0 * (b1 - b0) as f64 / (a1 - a0) as f64)
        });
    emit(
        cli_target,
        "push_monolithic_100mib",
        json!({
            "mb_s": pushed_bytes / 1e6 / secs_push,
            "cpu_s_per_gb": delta(cpu_seconds(pid), cpu0),
            "client_cpu_s_per_gb": delta(cpu_seconds(me), client0),
            "runqueue_wait_s_per_gb": waited,
            "machine_busy_pct": busy,
        }),
    );
    let chunked = contents(2000);
    settle_disk();
    let start = Instant::now();
    for (body, digest) in &chunked {
        t.push_chunked(repo, body, digest).await?;
    }
    emit(
        cli_target,
        "push_chunked_100mib_5mib",
        json!({"mb_s": pushed_bytes / 1e6 / start.elapsed().as_secs_f64()}),
    );
    let bd = monolithic[0].1.clone();
    if let Some(dir) = &mirror {
        mirror_file(dir, &format!("v2/{repo}/blobs/{bd}"), &monolithic[0].0)?;
        let paths = json!({"repo": repo, "layer": ld, "blob": bd});
        std::fs::write(dir.join("paths.json"), paths.to_string())?;
    }
    drop((monolithic, chunked));
    blob_gets(
        cli_target,
        &t.anon,
        &format!("{base}/v2/{repo}/blobs/{bd}"),
        pid,
        secs,
    )
    .await?;
    // Push then pull a 1 MB single-layer image: the whole cycle's latency;
    // at c=64 the server's memory is sampled throughout.
    let t = Arc::new(t);
    for c in [1usize, 8, 64] {
        let (ops, p50, p99, errors, peak) = push_loop(
            &t,
            c,
            secs,
            round,
            1_000_000,
            true,
            |task| format!("bench/pp{task}"),
            pid,
        )
        .await;
        emit(
            cli_target,
            &format!("push_pull_1mb_c{c}"),
            json!({"ops_s": ops, "p50_ms": p50, "p99_ms": p99, "errors": errors}),
        );
        if c == 64 {
            emit(cli_target, "rss_during_c64", json!({"rss_kb": peak}));
        }
    }
    // Eight clients pushing small images into one repository, then each into its own.
    for (name, repo_of) in [
        (
            "push_c8_one_repo",
            (|_| "bench/shared".to_owned()) as fn(usize) -> String,
        ),
        ("push_c8_distinct_repos", |task| format!("bench/own{task}")),
    ] {
        let (ops, p50, p99, errors, _) =
            push_loop(&t, 8, secs, round, 16 << 10, false, repo_of, pid).await;
        emit(
            cli_target,
            name,
            json!({"ops_s": ops, "p50_ms": p50, "p99_ms": p99, "errors": errors}),
        );
    }
    let (rss, peak) = rss_kb(pid);
    emit(
        cli_target,
        "rss_after",
        json!({"rss_kb": rss, "peak_rss_kb": peak}),
    );
    Ok(())
}
