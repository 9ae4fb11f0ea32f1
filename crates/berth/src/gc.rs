//! `berth gc`: collect garbage once, directly on the configured database and
//! storage. Safe while servers are running: the collector never needs them
//! to stop or turn read-only.

use anyhow::bail;
use std::sync::Arc;

use berth_core::platform::RuleTriggers;
use berth_core::{Collector, GcCause, GcOptions, Registry};

use crate::server::open_stores;
use crate::Config;

/// Run one collection and print what it did (or, with `dry_run`, would do).
pub async fn run(config: &Config, dry_run: bool, full_sweep: bool) -> anyhow::Result<()> {
    let (meta, directory, _management, gc, platform) = open_stores(config).await?;
    let regions = config.open_regions(meta.clone())?;
    let blobs = regions.local().blobs.clone();
    let mut registry = Registry::new(meta, platform.clone(), regions, config.registry.to_core())
        .with_triggers(Arc::new(RuleTriggers::new(platform)));
    if let Some(reserve) = config.space_reserve() {
        registry = registry.with_reserve(reserve);
    }
    let collector = Collector::new(registry, gc, blobs, directory, config.gc.to_core());
    let run = collector
        .run(GcOptions {
            dry_run,
            full_sweep,
            cause: GcCause::Cli,
            actor: "cli".into(),
        })
        .await?;
    let c = run.counts;
    let verb = if dry_run { "would delete" } else { "deleted" };
    println!(
        "garbage collection run {} {} in {:.1} s",
        run.id,
        run.status,
        run.finished_at
            .unwrap_or(run.updated_at)
            .saturating_sub(run.started_at) as f64
            / 1000.0
    );
    println!("  expired upload sessions: {}", c.uploads_expired);
    println!("  untagged manifests {verb}: {}", c.manifests_deleted);
    println!("  unreferenced links {verb}: {}", c.links_deleted);
    println!("  blobs {verb}: {}", c.blobs_deleted);
    if full_sweep {
        println!("  orphaned storage objects {verb}: {}", c.orphans_deleted);
    }
    println!(
        "  bytes {}: {}",
        if dry_run { "reclaimable" } else { "reclaimed" },
        c.bytes_reclaimed
    );
    if let Some(error) = run.error {
        bail!("garbage collection failed: {error}");
    }
    Ok(())
}
