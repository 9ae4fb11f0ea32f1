//! Importing OSV documents: store what is new or changed, then re-match
//! only the images holding a package those advisories name (found through
//! the store's name → layer → manifest index).

use berth_inventory::image::ImageInventory;
use berth_meta::vulnerability::AdvisoryRow;
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

/// Import `documents` (each checked on its own: a bad one is reported by
/// position, the others stored).
pub(crate) async fn import_documents(
    registry: &Registry,
    documents: &[Vec<u8>],
) -> Result<ImportReport, MetaError> {
    let mut report = ImportReport::default();
    let mut rows = Vec::new();
    for (i, d) in documents.iter().enumerate() {
        match berth_advisory::parse(d) {
            Ok(a) => rows.push(AdvisoryRow {
                names: matching::advisory_names(&a),
                id: a.id,
                modified: a.modified,
                document: String::from_utf8_lossy(d).into_owned(),
            }),
            Err(e) => report.invalid.push((i, e.to_string())),
        }
    }
    let meta = registry.meta();
    let changed = meta.put_advisories(&rows, now_millis()).await?;
    report.imported = changed.len();
    report.unchanged = rows.len() - changed.len();
    let mut names: Vec<String> = rows
        .iter()
        .filter(|r| changed.contains(&r.id))
        .flat_map(|r| r.names.iter().cloned())
        .collect();
    names.sort();
    names.dedup();
    for digest in meta.images_holding(&names).await? {
        let Some(json) = meta.image_inventory(&digest).await? else {
            continue;
        };
        let Ok(image) = serde_json::from_str::<ImageInventory>(&json) else {
            continue;
        };
        report.new_findings +=
            inventory::match_image(registry, &digest, &image, Some(&changed)).await?;
        report.images_matched += 1;
    }
    Ok(report)
}
