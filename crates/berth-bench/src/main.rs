//! `berth-bench`: drive an OCI registry (Berth or another) with fixed
//! scenarios and print one JSON line of results per scenario. The script
//! `bench/run.sh` runs it against Berth and the reference registry in
//! alternating rounds and tabulates the medians.
//!
//! Layering: a standalone client; it uses only `berth-oci` (digests) and
//! speaks HTTP to whatever registry it is pointed at.

mod ceiling;
mod regions;
mod remotes;
mod soak;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use berth_oci::{Algorithm, Digest};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::json;

#[derive(Parser)]
#[command(about = "Benchmark an OCI registry")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// The registry under test, as the scenarios of `run` and
/// `transfer-memory` address it.
#[derive(clap::Args)]
struct Server {
    /// Base URL, e.g. http://127.0.0.1:5101
    #[arg(long)]
    url: String,
    /// Label for the output (berth, reference).
    #[arg(long)]
    target: String,
    /// Basic credentials user:password for pushes (none: anonymous).
    #[arg(long)]
    creds: Option<String>,
    /// Server process id, for its CPU seconds and memory from /proc.
    #[arg(long)]
    pid: Option<u32>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the registry scenarios against one target.
    Run {
        #[command(flatten)]
        server: Server,
        /// Whether the target issues bearer tokens at /auth/token.
        #[arg(long)]
        token_auth: bool,
        /// Seconds per request-rate scenario.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Round number (makes pushed content unique per round).
        #[arg(long, default_value_t = 0)]
        round: u32,
        /// A directory on the registry's disk: the disk's write speed with
        /// fdatasync is measured there right before the push scenarios, as
        /// this machine's disk speed varies from minute to minute.
        #[arg(long)]
        disk_probe: Option<std::path::PathBuf>,
        /// Write the bytes the read scenarios fetch (manifest, tag list,
        /// layer and the 100 MiB blob) under this directory as static
        /// files, for `static-files` (nginx's ceiling).
        #[arg(long)]
        mirror: Option<std::path::PathBuf>,
    },
    /// The read scenarios of `run` against a static file server (nginx)
    /// holding what `run --mirror DIR` wrote: the ceiling of HTTP itself.
    StaticFiles {
        #[command(flatten)]
        server: Server,
        /// Seconds per request-rate scenario.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// The directory `run --mirror` wrote.
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// Tag one image 100,000 times and time pages of its tag list through
    /// the management API (Berth only: the reference has no such API).
    TagList {
        /// Base URL.
        #[arg(long)]
        url: String,
        /// Account credentials user:password.
        #[arg(long)]
        creds: String,
        /// Namespace (must exist and allow the pushes).
        #[arg(long, default_value = "bench")]
        namespace: String,
        /// Number of tags.
        #[arg(long, default_value_t = 100_000)]
        tags: usize,
        /// Seconds of reading.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Push 100,000 images into ten namespaces and time pages of the image
    /// list across namespaces ("My images") through the management API
    /// (Berth only).
    ImageList {
        /// Base URL.
        #[arg(long)]
        url: String,
        /// Account credentials user:password (a platform administrator).
        #[arg(long)]
        creds: String,
        /// Number of images.
        #[arg(long, default_value_t = 100_000)]
        images: usize,
        /// Seconds of reading per kind of page.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// The server's extra memory during one streamed push and one download
    /// of blobs of 10 MiB, 100 MiB and 1 GiB (run once, after the rounds).
    TransferMemory {
        #[command(flatten)]
        server: Server,
    },
    /// Push and pull throughput of 100 MiB and 1 MB images, for comparing
    /// storage backends (S3): scenarios prefixed `storage_`.
    Storage {
        #[command(flatten)]
        server: Server,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 0)]
        round: u32,
    },
    /// Manifest GET by tag (c=32), with the CPU seconds the given processes
    /// used per request (`--pids` comma-separated), for one node against
    /// several behind a load balancer.
    Nodes {
        #[arg(long)]
        url: String,
        #[arg(long)]
        target: String,
        #[arg(long)]
        creds: String,
        #[arg(long, value_delimiter = ',')]
        pids: Vec<u32>,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// A bounded soak run: mixed pushes, pulls, deletes and collections
    /// while the server's memory and open files are sampled; fails unless
    /// both stay flat and every request succeeded.
    Soak {
        #[command(flatten)]
        server: Server,
        /// Seconds to run.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 4)]
        clients: u64,
        /// Seconds between collections.
        #[arg(long, default_value_t = 15)]
        gc_every: u64,
    },
    /// Regions (bench/regions.sh): `push` images into the north, `drain`
    /// (time until a region's replication backlog is empty), `lag` (1 MB
    /// images at a steady rate until whole in a region), `first-pull` (on
    /// demand against local, from `--cold`, a node of a region without a
    /// worker).
    /// Other registries (bench/remotes.sh): `push` images to a registry,
    /// or time a `pull` of one image from it, through berth-client.
    Remotes {
        /// push or pull.
        #[arg(long)]
        phase: String,
        /// The registry.
        #[arg(long)]
        url: String,
        /// Credentials user:password, if it needs them.
        #[arg(long)]
        creds: Option<String>,
        /// Repository.
        #[arg(long)]
        repo: String,
        /// Tag (pull).
        #[arg(long, default_value = "v0")]
        tag: String,
        /// Images (push).
        #[arg(long, default_value_t = 1)]
        images: usize,
        /// Layer bytes (push).
        #[arg(long, default_value_t = BIG)]
        size: usize,
        /// Seed of the layers' bytes (push).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Who is measured (pull).
        #[arg(long, default_value = "berth")]
        target: String,
        /// Scenario name (pull).
        #[arg(long, default_value = "pull")]
        scenario: String,
    },
    Regions {
        /// push, drain, lag or first-pull.
        #[arg(long)]
        phase: String,
        /// A node of the pushing region (north).
        #[arg(long)]
        url: String,
        /// Account credentials user:password.
        #[arg(long)]
        creds: String,
        /// The other region's name.
        #[arg(long, default_value = "south")]
        region: String,
        /// A node of a region that runs no jobs (first-pull).
        #[arg(long)]
        cold: Option<String>,
        /// Repository (push).
        #[arg(long, default_value = "bench/big")]
        repo: String,
        /// Images (push, drain, first-pull).
        #[arg(long, default_value_t = 5)]
        images: usize,
        /// Layer bytes (push, drain).
        #[arg(long, default_value_t = BIG)]
        size: usize,
        /// Label of the drain's scenario.
        #[arg(long, default_value = "100m")]
        label: String,
        /// When the region's worker started, Unix seconds (drain).
        #[arg(long, default_value_t = 0.0)]
        since: f64,
        /// Images per second (lag).
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
        /// Seconds (lag).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Content seed (push).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Measure loopback TCP throughput (a physical ceiling).
    Loopback {
        /// Bytes to transfer.
        #[arg(long, default_value_t = 4 << 30)]
        bytes: u64,
    },
}

const BIG: usize = 100 << 20;
const CHUNK: usize = 5 << 20;
/// 100 MiB pushes of each kind per round.
const PUSHES: usize = 3;
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Deterministic pseudo-random bytes (xorshift), distinct per seed.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Flush whatever earlier scenarios left dirty in the page cache (the
/// reference registry does not fsync what it stores), so that a push timed
/// next waits for its own data and not for the writeback of someone else's.
fn settle_disk() {
    if let Err(e) = std::process::Command::new("sync").status() {
        eprintln!("sync: {e}");
    }
}

/// MB/s of writing 256 MiB in 1 MiB blocks to a new file in `dir`, then
/// fdatasync, as `dd conv=fdatasync` does.
fn disk_write_speed(dir: &std::path::Path) -> anyhow::Result<f64> {
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

fn sha256(b: &[u8]) -> String {
    Digest::of_bytes(Algorithm::Sha256, b).to_string()
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Jiffies the machine's CPUs spent busy (user, nice, system, irq,
/// softirq, steal) and in all, from the first line of /proc/stat.
fn machine_cpu() -> Option<(u64, u64)> {
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
fn runqueue_waits(pid: Option<u32>) -> Option<HashMap<String, u64>> {
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
fn runqueue_seconds(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> f64 {
    let ns: u64 = after
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    ns as f64 / 1e9
}

/// Resident memory and its peak (kB) of a process.
fn rss_kb(pid: Option<u32>) -> (Option<u64>, Option<u64>) {
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

#[derive(Clone)]
struct Target {
    url: String,
    client: Client,
    anon: Client,
    creds: Option<(String, String)>,
    token_auth: bool,
}

impl Target {
    /// A target at `url`, pushing with `creds` ("user:password") if given.
    fn new(url: &str, creds: Option<&str>, token_auth: bool) -> anyhow::Result<Self> {
        let creds = creds.map(|c| {
            let (u, p) = c.split_once(':').unwrap_or((c, ""));
            (u.to_owned(), p.to_owned())
        });
        let client = Client::builder().pool_max_idle_per_host(64).build()?;
        Ok(Target {
            url: url.trim_end_matches('/').to_owned(),
            anon: client.clone(),
            client,
            creds,
            token_auth,
        })
    }

    fn push_req(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.creds {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    async fn push_blob(&self, repo: &str, body: Vec<u8>) -> anyhow::Result<String> {
        let digest = sha256(&body);
        self.push_blob_as(repo, Bytes::from(body), &digest).await?;
        Ok(digest)
    }

    /// Monolithic upload (POST, then PUT with the whole body) of content
    /// whose digest the caller already knows, so that timing it measures the
    /// transfer alone.
    async fn push_blob_as(
        &self,
        repo: &str,
        body: impl Into<reqwest::Body>,
        digest: &str,
    ) -> anyhow::Result<()> {
        let r = self
            .push_req(
                self.client
                    .post(format!("{}/v2/{repo}/blobs/uploads/", self.url)),
            )
            .send()
            .await?;
        if r.status() != StatusCode::ACCEPTED {
            bail!("start upload: {}", r.status());
        }
        let loc = location(&self.url, &r)?;
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = self
            .push_req(self.client.put(format!("{loc}{sep}digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await?;
        if r.status() != StatusCode::CREATED {
            bail!(
                "finish upload: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Chunked upload (PATCH of `CHUNK` bytes each, then PUT) of content
    /// whose digest the caller already knows.
    async fn push_chunked(&self, repo: &str, body: &Bytes, digest: &str) -> anyhow::Result<()> {
        let r = self
            .push_req(
                self.client
                    .post(format!("{}/v2/{repo}/blobs/uploads/", self.url)),
            )
            .send()
            .await?;
        let mut loc = location(&self.url, &r)?;
        for start in (0..body.len()).step_by(CHUNK) {
            let chunk = body.slice(start..(start + CHUNK).min(body.len()));
            let r = self
                .push_req(self.client.patch(&loc))
                .header("content-type", "application/octet-stream")
                .header(
                    "content-range",
                    format!("{start}-{}", start + chunk.len() - 1),
                )
                .body(chunk.clone())
                .send()
                .await?;
            if r.status() != StatusCode::ACCEPTED {
                bail!("chunk: {}", r.status());
            }
            loc = location(&self.url, &r)?;
        }
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = self
            .push_req(self.client.put(format!("{loc}{sep}digest={digest}")))
            .send()
            .await?;
        if r.status() != StatusCode::CREATED {
            bail!("close: {}", r.status());
        }
        Ok(())
    }

    async fn push_manifest(
        &self,
        repo: &str,
        tag: &str,
        config: (&str, usize),
        layers: &[(String, usize)],
    ) -> anyhow::Result<String> {
        let m = manifest_body(config, layers)?;
        self.put_manifest(repo, tag, m).await
    }

    async fn put_manifest(&self, repo: &str, tag: &str, m: Vec<u8>) -> anyhow::Result<String> {
        let r = self
            .push_req(
                self.client
                    .put(format!("{}/v2/{repo}/manifests/{tag}", self.url)),
            )
            .header("content-type", MANIFEST_TYPE)
            .body(m.clone())
            .send()
            .await?;
        if r.status() != StatusCode::CREATED {
            bail!(
                "manifest: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        Ok(sha256(&m))
    }

    /// A bearer token for `scope` (Berth), or none (the reference registry).
    async fn bearer(&self, scope: &str) -> anyhow::Result<Option<String>> {
        if !self.token_auth {
            return Ok(None);
        }
        let r = self
            .anon
            .get(format!(
                "{}/auth/token?service=berth&scope={scope}",
                self.url
            ))
            .send()
            .await?;
        let v: serde_json::Value = r.json().await?;
        Ok(v["token"].as_str().map(str::to_owned))
    }
}

/// An OCI image manifest of a config and layers.
fn manifest_body(config: (&str, usize), layers: &[(String, usize)]) -> anyhow::Result<Vec<u8>> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, s)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}))
        .collect();
    Ok(serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers,
    }))?)
}

/// Tag one image `tags` times in `namespace/tags100k` (skipping tags that
/// exist), then read pages of its tag list through the management API:
/// the first, a middle one and the last, in turn, for `secs`.
async fn tag_list(t: Target, namespace: &str, tags: usize, secs: u64) -> anyhow::Result<()> {
    let repo = format!("{namespace}/tags100k");
    let t = Arc::new(t);
    let base = t.url.clone();
    let (user, pass) = t.creds.clone().unwrap_or_default();
    let list = |page: usize| {
        format!("{base}/api/v1/namespaces/{namespace}/repositories/tags100k/tags?per_page=100&page={page}")
    };
    let have: usize = match t
        .client
        .get(list(1))
        .basic_auth(&user, Some(&pass))
        .send()
        .await?
    {
        r if r.status().is_success() => r.json::<serde_json::Value>().await?["total"]
            .as_u64()
            .unwrap_or(0) as usize,
        _ => 0,
    };
    if have < tags {
        let config = data(512, 77);
        let layer = data(4096, 78);
        let cd = t.push_blob(&repo, config.clone()).await?;
        let ld = t.push_blob(&repo, layer.clone()).await?;
        let body = manifest_body((&cd, config.len()), &[(ld, layer.len())])?;
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(have));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (t, next, body, repo) = (t.clone(), next.clone(), body.clone(), repo.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= tags {
                        return anyhow::Ok(());
                    }
                    t.put_manifest(&repo, &format!("t{i:06}"), body.clone())
                        .await?;
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        emit(
            "berth",
            "tag_100k_setup",
            json!({"tags_per_s": (tags - have) as f64 / start.elapsed().as_secs_f64()}),
        );
    }
    read_tag_pages(&t.client, list, tags, &user, &pass, secs).await
}

async fn read_tag_pages(
    client: &Client,
    list: impl Fn(usize) -> String,
    tags: usize,
    user: &str,
    pass: &str,
    secs: u64,
) -> anyhow::Result<()> {
    let last = tags.div_ceil(100);
    let pages = [1, last / 2, last];
    let urls: Arc<Vec<String>> = Arc::new(pages.iter().map(|p| list(*p)).collect());
    let (user, pass) = (user.to_owned(), pass.to_owned());
    let i = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let make: Arc<dyn Fn(&Client) -> reqwest::RequestBuilder + Send + Sync> =
        Arc::new(move |c: &Client| {
            let n = i.fetch_add(1, Ordering::Relaxed);
            c.get(&urls[n % urls.len()]).basic_auth(&user, Some(&pass))
        });
    let (rps, p50, p99, errors) = rate(client, 1, secs, make).await;
    emit(
        "berth",
        "api_tag_list_100k_page",
        json!({"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors}),
    );
    Ok(())
}

/// Namespaces of the image-list benchmark.
const IMAGE_LIST_NAMESPACES: usize = 10;

/// Push `images` images, `imglist-<k>/img<nnnnnn>`, spread over ten
/// namespaces (skipping a run that has them), each an empty image index
/// (one request, nothing to upload), then read pages of the list across
/// namespaces for `secs` each: by name (the first, a middle and the last
/// page), by last push and by pulls (first pages), and one namespace with
/// a name search.
async fn image_list(t: Target, images: usize, secs: u64) -> anyhow::Result<()> {
    let t = Arc::new(t);
    let base = t.url.clone();
    let (user, pass) = t.creds.clone().unwrap_or_default();
    let api = |path: &str| format!("{base}/api/v1/repositories{path}");
    let have = t
        .client
        .get(api("?all=true&q=imglist-&per_page=1"))
        .basic_auth(&user, Some(&pass))
        .send()
        .await?
        .error_for_status()?
        .json::<serde_json::Value>()
        .await?["total"]
        .as_u64()
        .unwrap_or(0) as usize;
    if have < images {
        // Their own project group, with room for ten namespaces.
        let call = |method: reqwest::Method, path: &str, body: serde_json::Value| {
            t.client
                .request(method, format!("{base}/api/v1{path}"))
                .basic_auth(&user, Some(&pass))
                .json(&body)
                .send()
        };
        let steps = [
            (
                reqwest::Method::POST,
                "/project-groups".to_owned(),
                json!({"name": "imglist", "admin": user}),
            ),
            (
                reqwest::Method::PATCH,
                "/project-groups/imglist".to_owned(),
                json!({"namespace_limit": IMAGE_LIST_NAMESPACES}),
            ),
        ]
        .into_iter()
        .chain((0..IMAGE_LIST_NAMESPACES).map(|k| {
            (
                reqwest::Method::POST,
                "/namespaces".to_owned(),
                json!({"name": format!("imglist-{k}"), "project_group": "imglist"}),
            )
        }));
        for (method, path, body) in steps {
            let r = call(method, &path, body).await?;
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            // Made by an earlier run: fine.
            let exists = status == StatusCode::CONFLICT && text.contains("\"code\":\"conflict\"");
            if !status.is_success() && !exists {
                bail!("{path}: {status} {text}");
            }
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        }))?;
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(have));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (t, next, index) = (t.clone(), next.clone(), index.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= images {
                        return anyhow::Ok(());
                    }
                    let repo = format!("imglist-{}/img{i:06}", i % IMAGE_LIST_NAMESPACES);
                    let r = t
                        .push_req(t.client.put(format!("{}/v2/{repo}/manifests/v1", t.url)))
                        .header("content-type", "application/vnd.oci.image.index.v1+json")
                        .body(index.clone())
                        .send()
                        .await?;
                    if r.status() != StatusCode::CREATED {
                        bail!(
                            "index: {} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        );
                    }
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        emit(
            "berth",
            "image_100k_setup",
            json!({"images_per_s": (images - have) as f64 / start.elapsed().as_secs_f64()}),
        );
    }
    let last = images.div_ceil(20);
    let kinds: [(&str, Vec<String>); 3] = [
        (
            "api_image_list_100k_page",
            [1, last / 2, last]
                .iter()
                .map(|p| api(&format!("?all=true&page={p}")))
                .collect(),
        ),
        (
            "api_image_list_100k_sorted",
            vec![
                api("?all=true&sort=-updated"),
                api("?all=true&sort=-pull_count"),
            ],
        ),
        (
            "api_image_list_100k_filtered",
            vec![api("?all=true&namespace=imglist-3&q=img0")],
        ),
    ];
    for (scenario, urls) in kinds {
        let urls = Arc::new(urls);
        let (user, pass) = (user.clone(), pass.clone());
        let i = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let make: Arc<dyn Fn(&Client) -> reqwest::RequestBuilder + Send + Sync> =
            Arc::new(move |c: &Client| {
                let n = i.fetch_add(1, Ordering::Relaxed);
                c.get(&urls[n % urls.len()]).basic_auth(&user, Some(&pass))
            });
        let (rps, p50, p99, errors) = rate(&t.client, 1, secs, make).await;
        emit(
            "berth",
            scenario,
            json!({"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors}),
        );
    }
    Ok(())
}

fn location(base: &str, r: &reqwest::Response) -> anyhow::Result<String> {
    let l = r
        .headers()
        .get("location")
        .context("no Location header")?
        .to_str()?;
    Ok(if l.starts_with("http") {
        l.to_owned()
    } else {
        format!("{base}{l}")
    })
}

/// Run `c` concurrent loops of one request kind for `secs`; returns (rps, p50 ms, p99 ms, errors).
async fn rate(
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
async fn gather(
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

/// Source of distinct content seeds within one run.
static SEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 20);

/// Percentiles of sorted latencies.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

/// Push a single-layer image of `layer_len` fresh bytes as `repo:tag`, and,
/// when `pull`, pull its manifest and layer back.
async fn push_pull_once(
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
async fn push_loop(
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

/// Samples a process's resident memory until `stop` is set, keeping the peak.
struct RssSampler {
    task: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: Option<u32>, stop: Arc<AtomicBool>, every: Duration) -> Self {
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
    async fn peak(self) -> Option<u64> {
        self.task.await.ok().filter(|&p| p > 0)
    }
}

/// A blob of `len` bytes in 1 MiB pieces, each distinct (per seed and
/// position), made as they are consumed so the client never holds the blob.
fn pieces(len: usize, seed: u64) -> impl Iterator<Item = Bytes> {
    const PIECE: usize = 1 << 20;
    let base = data(PIECE, seed);
    (0..len.div_ceil(PIECE)).map(move |i| {
        let mut piece = base[..PIECE.min(len - i * PIECE)].to_vec();
        let tag = (i as u64).to_le_bytes();
        let n = tag.len().min(piece.len());
        piece[..n].copy_from_slice(&tag[..n]);
        Bytes::from(piece)
    })
}

/// The extra resident memory (kB) of the server while `transfer` runs: its
/// peak, sampled every 10 ms, above the resident set just before.
async fn rss_during<F: std::future::Future<Output = anyhow::Result<()>>>(
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

/// Sizes of the blobs whose transfers' memory is compared.
const MEMORY_SIZES: [(usize, &str); 3] = [
    (10 << 20, "10mib"),
    (100 << 20, "100mib"),
    (1 << 30, "1gib"),
];

/// Memory per transfer whatever the blob's size: the server's extra
/// resident memory during one streamed push (a body of unknown length, as
/// `docker push` sends) and one download of blobs of 10 MiB, 100 MiB and 1 GiB.
/// Run once after the rounds: 2.2 GiB written and fsynced would push this
/// machine's disk into its slow phase for the next round's push scenarios.
async fn transfer_memory(
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
async fn storage(
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

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Manifest GET by tag at c=32 with a bearer token, and the CPU the given
/// processes (the nodes and the load balancer) spent per request.
async fn nodes(cli_target: &str, t: Target, pids: &[u32], secs: u64) -> anyhow::Result<()> {
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

fn emit(target: &str, scenario: &str, mut fields: serde_json::Value) {
    fields["target"] = json!(target);
    fields["scenario"] = json!(scenario);
    println!("{fields}");
}

async fn run(
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

/// The request-rate scenarios of small reads: manifests by tag (anonymous,
/// with a bearer token when there is one), HEAD, the tag list and a blob
/// HEAD.
#[allow(clippy::too_many_arguments)]
async fn read_scenarios(
    cli_target: &str,
    anon: &Client,
    base: &str,
    repo: &str,
    ld: &str,
    bearer: Option<String>,
    pid: Option<u32>,
    secs: u64,
) {
    let reads: Vec<(&str, usize, bool, String, bool)> = vec![
        // (scenario, concurrency, head, path, with bearer)
        (
            "manifest_get_anon_c1",
            1,
            false,
            format!("/v2/{repo}/manifests/v1"),
            false,
        ),
        (
            "manifest_get_anon_c32",
            32,
            false,
            format!("/v2/{repo}/manifests/v1"),
            false,
        ),
        (
            "manifest_get_token_c1",
            1,
            false,
            format!("/v2/{repo}/manifests/v1"),
            true,
        ),
        (
            "manifest_get_token_c32",
            32,
            false,
            format!("/v2/{repo}/manifests/v1"),
            true,
        ),
        (
            "manifest_head_c32",
            32,
            true,
            format!("/v2/{repo}/manifests/v1"),
            false,
        ),
        (
            "tags_list_c32",
            32,
            false,
            format!("/v2/{repo}/tags/list"),
            false,
        ),
        (
            "blob_head_c32",
            32,
            true,
            format!("/v2/{repo}/blobs/{ld}"),
            false,
        ),
    ];
    for (name, c, head, path, with_bearer) in reads {
        let url = format!("{base}{path}");
        let auth = if with_bearer { bearer.clone() } else { None };
        let make: Arc<dyn Fn(&Client) -> reqwest::RequestBuilder + Send + Sync> =
            Arc::new(move |c: &Client| {
                let r = if head { c.head(&url) } else { c.get(&url) };
                let r = r.header("accept", MANIFEST_TYPE);
                match &auth {
                    Some(tok) => r.bearer_auth(tok),
                    None => r,
                }
            });
        let cpu0 = cpu_seconds(pid);
        let (rps, p50, p99, errors) = rate(anon, c, secs, make).await;
        let cpu = cpu_seconds(pid).zip(cpu0).map(|(a, b)| a - b);
        let per_1k = cpu.map(|c| c / (rps * secs as f64) * 1000.0);
        emit(
            cli_target,
            name,
            json!({"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors, "cpu_s_per_1k_req": per_1k}),
        );
    }
}

/// 1 and 4 streams each downloading a 100 MiB blob again and again.
async fn blob_gets(
    cli_target: &str,
    anon: &Client,
    url: &str,
    pid: Option<u32>,
    secs: u64,
) -> anyhow::Result<()> {
    let me = Some(std::process::id());
    for c in [1usize, 4] {
        let cpu0 = cpu_seconds(pid);
        let client0 = cpu_seconds(me);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..c {
            let client = anon.clone();
            let url = url.to_owned();
            // Each stream downloads the blob again and again for the
            // scenario's seconds (at least once), checking every length.
            tasks.push(tokio::spawn(async move {
                let mut total = 0usize;
                loop {
                    let mut n = 0usize;
                    let mut s = client
                        .get(&url)
                        .send()
                        .await?
                        .error_for_status()?
                        .bytes_stream();
                    while let Some(chunk) = s.next().await {
                        n += chunk?.len();
                    }
                    if n != BIG {
                        bail!("blob GET returned {n} bytes");
                    }
                    total += n;
                    if start.elapsed().as_secs() >= secs {
                        break anyhow::Ok(total);
                    }
                }
            }));
        }
        let mut total = 0usize;
        for task in tasks {
            total += task.await??;
        }
        let secs_get = start.elapsed().as_secs_f64();
        let gb = total as f64 / 1e9;
        let cpu = cpu_seconds(pid).zip(cpu0).map(|(a, b)| a - b);
        // The client's own CPU too: on a small machine the two share the cores.
        let client_cpu = cpu_seconds(me).zip(client0).map(|(a, b)| a - b);
        emit(
            cli_target,
            &format!("blob_get_100mib_c{c}"),
            json!({
                "mb_s": total as f64 / 1e6 / secs_get,
                "cpu_s_per_gb": cpu.map(|x| x / gb),
                "client_cpu_s_per_gb": client_cpu.map(|x| x / gb),
            }),
        );
    }
    Ok(())
}

/// Write `bytes` at `path` under `dir`, creating directories.
fn mirror_file(dir: &std::path::Path, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let file = dir.join(path);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&file, bytes)?;
    Ok(())
}

/// Loopback TCP throughput, one stream, sending 1 MiB writes taken in turn
/// from a source buffer of `source` bytes.
async fn loopback_once(bytes: u64, source: usize) -> anyhow::Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const WRITE: usize = 1 << 20;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut buf = vec![0u8; WRITE];
        let mut n = 0u64;
        loop {
            let r = s.read(&mut buf).await?;
            if r == 0 {
                break;
            }
            n += r as u64;
        }
        anyhow::Ok(n)
    });
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let src = data(source.max(WRITE), 7);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        for piece in src.chunks_exact(WRITE) {
            s.write_all(piece).await?;
            sent += WRITE as u64;
        }
    }
    s.shutdown().await?;
    let got = reader.await??;
    Ok(got as f64 / 1e6 / start.elapsed().as_secs_f64())
}

/// Loopback TCP throughput, one stream, the sender handing the kernel a
/// cached 100 MiB file with `sendfile` (no copy on the sending side): the
/// zero-copy path a file server can take.
fn loopback_sendfile(bytes: u64) -> anyhow::Result<f64> {
    use std::io::{Read, Write};
    let path = std::env::temp_dir().join(format!("berth-bench-{}.blob", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    file.write_all(&data(BIG, 9))?;
    file.sync_all()?;
    drop(file);
    let file = std::fs::File::open(&path)?;
    std::fs::remove_file(&path)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let r = s.read(&mut buf)?;
            if r == 0 {
                break;
            }
            n += r as u64;
        }
        Ok(n)
    });
    let s = std::net::TcpStream::connect(addr)?;
    let size = BIG as u64;
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let mut offset = 0u64;
        while offset < size {
            let n = sendfile(&s, &file, offset, size - offset)?;
            if n == 0 {
                bail!("sendfile sent nothing at offset {offset}");
            }
            offset += n;
            sent += n;
        }
    }
    s.shutdown(std::net::Shutdown::Write)?;
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("loopback reader panicked"))??;
    Ok(got as f64 / 1e6 / start.elapsed().as_secs_f64())
}

/// `sendfile(2)`: up to `len` bytes of `file` from `offset` into `out`.
#[allow(unsafe_code)]
fn sendfile(
    out: &std::net::TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: u64,
) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut off = libc::off_t::try_from(offset).map_err(std::io::Error::other)?;
    let count = usize::try_from(len.min(1 << 30)).map_err(std::io::Error::other)?;
    // SAFETY: both descriptors stay open while borrowed, and `off` outlives
    // the call; no other memory is passed.
    let n = unsafe { libc::sendfile(out.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    u64::try_from(n).map_err(std::io::Error::other)
}

/// The loopback ceiling three ways: from one 1 MiB buffer, which stays in
/// the CPU's cache (what iperf-like tools measure); from a 100 MiB buffer
/// like a blob, whose bytes come from memory on every pass; and from a
/// cached 100 MiB file with `sendfile`.
async fn loopback(bytes: u64) -> anyhow::Result<()> {
    let hot = loopback_once(bytes, 1 << 20).await?;
    emit("machine", "loopback_tcp", json!({"mb_s": hot}));
    let big = loopback_once(bytes, BIG).await?;
    emit(
        "machine",
        "loopback_tcp_100mib_source",
        json!({"mb_s": big}),
    );
    let sendfile = tokio::task::spawn_blocking(move || loopback_sendfile(bytes)).await??;
    emit(
        "machine",
        "loopback_tcp_sendfile_100mib",
        json!({"mb_s": sendfile}),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Run {
            server,
            token_auth,
            seconds,
            round,
            disk_probe,
            mirror,
        } => {
            let t = Target::new(&server.url, server.creds.as_deref(), token_auth)?;
            run(
                &server.target,
                t,
                server.pid,
                seconds,
                round,
                disk_probe,
                mirror,
            )
            .await
        }
        Cmd::StaticFiles {
            server,
            seconds,
            dir,
        } => {
            let paths: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("paths.json"))?)?;
            let field = |k: &str| paths[k].as_str().unwrap_or_default().to_owned();
            let (repo, layer, blob) = (field("repo"), field("layer"), field("blob"));
            let t = Target::new(&server.url, None, false)?;
            let base = t.url.clone();
            read_scenarios(
                &server.target,
                &t.anon,
                &base,
                &repo,
                &layer,
                None,
                server.pid,
                seconds,
            )
            .await;
            blob_gets(
                &server.target,
                &t.anon,
                &format!("{base}/v2/{repo}/blobs/{blob}"),
                server.pid,
                seconds,
            )
            .await
        }
        Cmd::TagList {
            url,
            creds,
            namespace,
            tags,
            seconds,
        } => {
            let t = Target::new(&url, Some(&creds), true)?;
            tag_list(t, &namespace, tags, seconds).await
        }
        Cmd::ImageList {
            url,
            creds,
            images,
            seconds,
        } => {
            let t = Target::new(&url, Some(&creds), true)?;
            image_list(t, images, seconds).await
        }
        Cmd::TransferMemory { server } => {
            let t = Target::new(&server.url, server.creds.as_deref(), false)?;
            transfer_memory(&server.target, &t, "bench/app", server.pid).await
        }
        Cmd::Storage {
            server,
            seconds,
            round,
        } => {
            let t = Target::new(&server.url, server.creds.as_deref(), false)?;
            storage(&server.target, t, server.pid, seconds, round).await
        }
        Cmd::Nodes {
            url,
            target,
            creds,
            pids,
            seconds,
        } => {
            let t = Target::new(&url, Some(&creds), true)?;
            nodes(&target, t, &pids, seconds).await
        }
        Cmd::Soak {
            server,
            seconds,
            clients,
            gc_every,
        } => {
            let pid = server.pid.context("soak needs --pid")?;
            let t = Target::new(&server.url, server.creds.as_deref(), false)?;
            soak::soak(t, pid, seconds, clients, gc_every).await
        }
        Cmd::Regions {
            phase,
            url,
            creds,
            region,
            cold,
            repo,
            images,
            size,
            label,
            since,
            rate,
            seconds,
            seed,
        } => {
            let t = Target::new(&url, Some(&creds), false)?;
            match phase.as_str() {
                "push" => regions::push(&t, &repo, images, size, seed).await,
                "drain" => {
                    let bytes = (images * size) as u64;
                    regions::drain(&t, &region, &label, since, images, bytes).await
                }
                "lag" => regions::lag(&t, &region, rate, seconds).await,
                "first-pull" => {
                    let cold = Target::new(&cold.context("--cold")?, Some(&creds), false)?;
                    regions::first_pull(&t, &cold, images).await
                }
                other => bail!("unknown phase {other}: push, drain, lag or first-pull"),
            }
        }
        Cmd::Remotes {
            phase,
            url,
            creds,
            repo,
            tag,
            images,
            size,
            seed,
            target,
            scenario,
        } => {
            let c = remotes::client(&url, creds.as_deref())?;
            match phase.as_str() {
                "push" => remotes::push(&c, &repo, images, size, seed).await,
                "pull" => remotes::pull(&c, &repo, &tag, &target, &scenario).await,
                other => bail!("unknown phase {other}: push or pull"),
            }
        }
        Cmd::Loopback { bytes } => loopback(bytes).await,
    }
}
