//! Importing OSV documents: store what is new or changed, then re-match
//! only the images holding a package those advisories name (found through
//! the store's name → layer → manifest index).

use std::collections::HashSet;
use std::sync::Arc;

use berth_advisory::Advisory;
use tokio::task::JoinHandle;

use berth_inventory::image::ImageInventory;
use berth_meta::vulnerability::{AdvisoryRow, ImageFindings};
use berth_meta::MetaError;

use super::{inventory, matching};
use crate::clock::now_millis;
use crate::registry::Registry;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Advisories new or changed.
    pub imported: usize,
    /// Advisories already stored as they are.
    pub unchanged: usize,
    /// Documents refused: (position, why).
    pub invalid: Vec<(usize, String)>,
    /// Images re-matched.
    pub images_matched: usize,
    /// Findings that are new.
    pub new_findings: usize,
}

/// Images matched per batch: one read of their inventories, one
/// transaction for their findings.
const BATCH: usize = 500;

/// Import `documents` (each checked on its own: a bad one is reported by
/// position, the others stored).
pub(crate) async fn import_documents(
    registry: &Registry,
    documents: &[Vec<u8>],
) -> Result<ImportReport, MetaError> {
    let mut report = ImportReport::default();
    let mut rows = Vec::new();
    let mut parsed = Vec::new();
    for (i, d) in documents.iter().enumerate() {
        match berth_advisory::parse(d) {
            Ok(a) => {
                rows.push(AdvisoryRow {
                    names: matching::advisory_names(&a),
                    id: a.id.clone(),
                    modified: a.modified.clone(),
                    document: String::from_utf8_lossy(d).into_owned(),
                });
                parsed.push(a);
            }
            Err(e) => report.invalid.push((i, e.to_string())),
        }
    }
    let meta = registry.meta();
    let changed = meta.put_advisories(&rows, now_millis()).await?;
    report.imported = changed.len();
    report.unchanged = rows.len() - changed.len();
    if changed.is_empty() {
        return Ok(report);
    }
    let changed_ids: HashSet<&str> = changed.iter().map(String::as_str).collect();
    parsed.retain(|a| changed_ids.contains(a.id.as_str()));
    let mut names: Vec<String> = parsed.iter().flat_map(matching::advisory_names).collect();
    names.sort();
    names.dedup();
    let advisories = Arc::new(parsed);
    let digests = meta.images_holding(&names).await?;
    // A pipeline: while one batch's findings are written, the next is read
    // and matched on a blocking thread (SQLite has one writer; matching
    // takes the other core).
    let mut matching: Option<JoinHandle<Vec<ImageFindings>>> = None;
    for batch in digests.chunks(BATCH).map(Some).chain([None]) {
        let next = match batch {
            Some(batch) => {
                let inventories = meta.image_inventories(batch).await?;
                report.images_matched += inventories.len();
                Some(tokio::task::spawn_blocking({
                    let advisories = Arc::clone(&advisories);
                    move || match_batch(&advisories, inventories)
                }))
            }
            None => None,
        };
        let Some(done) = std::mem::replace(&mut matching, next) else {
            continue;
        };
        let images = match done.await {
            Ok(images) => images,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => return Ok(report),
        };
        let new = meta.replace_findings(Some(&changed), &images).await?;
        report.new_findings += new.len();
        inventory::announce(registry, &new, &advisories).await?;
    }
    Ok(report)
}

/// Parse and match one batch of (digest, inventory JSON).
fn match_batch(advisories: &[Advisory], inventories: Vec<(String, String)>) -> Vec<ImageFindings> {
    let index = matching::AdvisoryIndex::new(advisories);
    let now = now_millis();
    inventories
        .into_iter()
        .filter_map(|(digest, json)| {
            let image = serde_json::from_str::<ImageInventory>(&json).ok()?;
            let findings = matching::findings(&digest, &image, &index, now);
            Some(ImageFindings { digest, findings })
        })
        .collect()
}
