//! `berth fsck`: check integrity once, directly on the configured database
//! and storage (safe while servers run): re-hash every blob in every region
//! that claims it, find dangling references and orphaned objects, and with
//! `--repair` copy damaged or missing blobs back from another region.

use std::sync::Arc;

use anyhow::bail;
use berth_core::integrity::{CheckOptions, Integrity};
use berth_core::Registry;
use berth_meta::integrity::IntegrityStore;

use crate::server::open_stores;
use crate::Config;

/// Run one check and print what it found. Fails when a problem is left
/// (orphaned objects only waste space: they are reported, not failed on).
pub async fn run(config: &Config, repair: bool, rate_mib: Option<u64>) -> anyhow::Result<()> {
    let (meta, directory, _management, gc, platform) = open_stores(config).await?;
    let regions = config.open_regions(meta.clone())?;
    let registry = Registry::new(meta, platform, regions, config.registry.to_core());
    let store: Arc<dyn IntegrityStore> = gc;
    let integrity = Integrity::new(store, registry, directory, config.integrity.to_core());
    let run = integrity
        .check(CheckOptions {
            repair,
            bytes_per_sec: rate_mib.map(|m| m << 20),
            cause: "cli".into(),
            actor: "cli".into(),
        })
        .await?;
    let c = &run.counts;
    println!(
        "integrity check {}: {} blobs ({} bytes) re-hashed",
        run.id, c.blobs_checked, c.bytes_checked
    );
    println!("  damaged blobs: {}", c.damaged);
    println!("  missing blobs: {}", c.missing);
    println!("  repaired: {}", c.repaired);
    println!("  dangling references: {}", c.dangling);
    println!("  orphaned objects: {}", c.orphans);
    for p in &run.problems {
        let region = if p.region.is_empty() {
            String::new()
        } else {
            format!(" in region {}", p.region)
        };
        println!("  {} {}{region}: {}", p.kind, p.digest, p.detail);
    }
    let left = c.damaged + c.missing - c.repaired + c.dangling;
    if left > 0 {
        bail!("{left} integrity problem(s) left (see above)");
    }
    Ok(())
}
