//! An image's findings in a line, for tag lists: advisories counted per
//! severity, and whether the inventory is ready. An index sums its
//! images' (an advisory counted once), ready when all of them are.

use berth_advisory::Severity;
use berth_oci::{ManifestKind, ParsedManifest, Reference, RepoName};

use super::wants_inventory;
use crate::error::RegistryError;
use crate::registry::Registry;

/// Images of an index looked at.
const MAX_CHILDREN: usize = 64;

/// Where an image's inventory stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryStatus {
    /// Inventoried and matched.
    Ready,
    /// Not inventoried yet (an index: some of its images).
    Pending,
    /// Not an image with filesystem layers (an artifact): nothing to read.
    NotApplicable,
}

/// Advisories affecting an image, counted per severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Where its inventory stands.
    pub status: SummaryStatus,
    /// Critical advisories.
    pub critical: usize,
    /// High.
    pub high: usize,
    /// Medium.
    pub medium: usize,
    /// Low.
    pub low: usize,
    /// Unknown severity.
    pub unknown: usize,
    /// Of all, those with a fixed version known.
    pub fixable: usize,
}

/// Summarise the manifest `digest` of `repo` (already known readable).
pub(crate) async fn summarize(
    registry: &Registry,
    repo: &RepoName,
    digest: &berth_oci::Digest,
) -> Result<Summary, RegistryError> {
    let record = registry
        .get_manifest(repo, &Reference::Digest(digest.clone()), false)
        .await?;
    let parsed = ParsedManifest::parse(&record.content, Some(&record.media_type)).ok();
    let images: Vec<String> = match &parsed {
        Some(m) if m.kind == ManifestKind::Index => m
            .manifests
            .iter()
            .take(MAX_CHILDREN)
            .map(|d| d.digest.to_string())
            .collect(),
        Some(m) if wants_inventory(m) => vec![digest.to_string()],
        _ => Vec::new(),
    };
    let meta = registry.meta();
    let mut status = if images.is_empty() {
        SummaryStatus::NotApplicable
    } else {
        SummaryStatus::Ready
    };
    let mut seen: Vec<(String, Severity, bool)> = Vec::new();
    for image in &images {
        if !meta.inventoried(image).await? {
            // An index's children that are not images (attestations) have
            // no inventory and do not hold it back.
            if images.len() == 1 || is_image(registry, repo, image).await? {
                status = SummaryStatus::Pending;
            }
            continue;
        }
        for f in meta.findings(image).await? {
            let severity = Severity::parse(&f.severity).unwrap_or(Severity::Unknown);
            match seen.iter_mut().find(|(id, ..)| *id == f.advisory_id) {
                Some(s) => {
                    s.1 = s.1.max(severity);
                    s.2 |= f.fixed.is_some();
                }
                None => seen.push((f.advisory_id, severity, f.fixed.is_some())),
            }
        }
    }
    let count = |s: Severity| seen.iter().filter(|x| x.1 == s).count();
    Ok(Summary {
        status,
        critical: count(Severity::Critical),
        high: count(Severity::High),
        medium: count(Severity::Medium),
        low: count(Severity::Low),
        unknown: count(Severity::Unknown),
        fixable: seen.iter().filter(|x| x.2).count(),
    })
}

async fn is_image(
    registry: &Registry,
    repo: &RepoName,
    digest: &str,
) -> Result<bool, RegistryError> {
    let Ok(d) = berth_oci::Digest::parse(digest) else {
        return Ok(false);
    };
    match registry
        .get_manifest(repo, &Reference::Digest(d), false)
        .await
    {
        Ok(r) => Ok(ParsedManifest::parse(&r.content, Some(&r.media_type))
            .is_ok_and(|m| wants_inventory(&m))),
        Err(RegistryError::ManifestUnknown(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
