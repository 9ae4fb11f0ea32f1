//! `berth-bench`: drive an OCI registry (Berth or another) with fixed
//! scenarios and print one JSON line of results per scenario. The script
//! `bench/run.sh` runs it against Berth and the reference registry in
//! alternating rounds and tabulates the medians.
//!
//! Layering: a standalone client; it uses only `berth-oci` (digests) and
//! speaks HTTP to whatever registry it is pointed at.
//!
//! # In detail
//!
//! the benchmark client behind `bench/run.sh` and the other `bench/` scripts:
//! it speaks HTTP to any OCI registry with `berth-oci` (digests) and, for
//! `bench/remotes.sh`, `berth-client`. Besides the scenarios it measures the
//! machine's ceilings: loopback TCP, the disk with fdatasync, and a push's
//! own ceiling (module `ceiling`: a minimal program that receives, hashes and
//! durably writes the round's bodies with no HTTP and no database). Results
//! and their reading are in `docs/benchmarks.md`.

mod ceiling;
mod collect;
mod large;
mod lists;
mod loopback;
mod measure;
mod payload;
mod reads;
mod regions;
mod remotes;
mod soak;
mod target;
mod transfers;
mod vulnerabilities;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::lists::*;
use crate::loopback::*;
use crate::payload::*;
use crate::reads::*;
use crate::target::*;
use crate::transfers::*;

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
    /// Inventories and vulnerability matching at scale (Berth only): push
    /// images sharing Debian base layers, wait for their inventories, then
    /// time an advisory import's re-match and a new push's match.
    Vulnerabilities {
        #[command(flatten)]
        server: Server,
        /// Number of images.
        #[arg(long, default_value_t = 100_000)]
        images: usize,
        /// Distinct base layers.
        #[arg(long, default_value_t = 4)]
        bases: usize,
        /// Advisories in the imported batch.
        #[arg(long, default_value_t = 50)]
        advisories: usize,
        /// Pushes in flight.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
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
    /// Garbage collection's reclaim rate: push images of small unique
    /// blobs, delete them all, collect once and time it (the server needs
    /// `gc.grace_secs = 0`).
    Gc {
        #[command(flatten)]
        server: Server,
        /// Images to push and delete.
        #[arg(long, default_value_t = 1000)]
        images: u64,
        /// Images (the first pushed) kept: their blobs must survive.
        #[arg(long, default_value_t = 0)]
        keep: u64,
        /// Layers of 1 KiB per image (each image adds a config too).
        #[arg(long, default_value_t = 9)]
        blobs: u64,
        /// Concurrent pushing clients.
        #[arg(long, default_value_t = 16)]
        clients: u64,
        /// Only push and delete (for a registry whose own collector the
        /// caller times, as Distribution's `garbage-collect`).
        #[arg(long)]
        push_delete_only: bool,
    },
    /// Model-sized layers (bench/large.sh): one blob of `--gib` pushed
    /// monolithic, chunked and streamed, pulled whole and in ranges, with
    /// the server's extra memory during each.
    Large {
        #[command(flatten)]
        server: Server,
        /// Blob size in GiB.
        #[arg(long, default_value_t = 20)]
        gib: u64,
        /// Chunk size of the chunked push, in MiB.
        #[arg(long, default_value_t = 256)]
        chunk_mib: u64,
        /// Parallel range readers.
        #[arg(long, default_value_t = 4)]
        readers: u64,
        /// Push modes, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "monolithic,chunked,streamed"
        )]
        modes: Vec<String>,
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
        Cmd::Vulnerabilities {
            server,
            images,
            bases,
            advisories,
            concurrency,
        } => {
            let t = Target::new(&server.url, server.creds.as_deref(), false)?;
            vulnerabilities::vulnerabilities(
                &server.target,
                t,
                images,
                bases,
                advisories,
                concurrency,
            )
            .await
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
        Cmd::Gc {
            server,
            images,
            keep,
            blobs,
            clients,
            push_delete_only,
        } => {
            let t = Target::new(&server.url, server.creds.as_deref(), false)?;
            let (target, plan) = (&server.target, (images, keep, blobs, clients));
            collect::collect(t, target, plan, push_delete_only).await
        }
        Cmd::Large {
            server,
            gib,
            chunk_mib,
            readers,
            modes,
        } => {
            let t = Target::new(&server.url, server.creds.as_deref(), false)?;
            large::large(
                &server.target,
                &t,
                "bench/large",
                server.pid,
                gib << 30,
                chunk_mib << 20,
                readers,
                &modes,
            )
            .await
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
