//! Vulnerabilities: what each image holds and which advisories affect it.
//! `job` says which pushes queue which job (an image's inventory, again
//! when an SBOM is attached to it, an advisory feed artifact's import) in
//! the push's transaction; `inventory` runs the inventory on the job queue
//! (each layer read once, the image's union kept with the SBOMs pipelines
//! attach, read by `attached`, then matched, and Berth's own SBOM attached
//! when the namespace asks, `publish`); `feed` runs the feed's imports;
//! `matching` decides findings with `berth-advisory`; this file imports
//! advisories (re-matching only the images that hold a package they name)
//! and answers what an image has.

mod attached;
mod feed;
mod import;
mod inventory;
mod job;
mod matching;
mod publish;
mod summary;

use berth_inventory::image::ImageInventory;
use berth_meta::vulnerability::FindingRow;
use berth_oci::{Digest, RepoName};

use crate::access::Principal;
use crate::clock::now_millis;
use crate::directory::Directory;
use crate::error::DirectoryError;
use crate::registry::Registry;

pub(crate) use feed::run_feed_job;
pub use import::ImportReport;
pub(crate) use inventory::run_job;
pub(crate) use job::{feed_job, inventory_job, sbom_subject, wants_inventory};
pub use job::{IMPORT_FEED_JOB, INVENTORY_IMAGE_JOB};
pub use summary::{Summary, SummaryStatus};

type DirResult<T> = std::result::Result<T, DirectoryError>;

/// Most documents one import takes.
pub const MAX_IMPORT: usize = 10_000;

/// An image's inventory and findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReport {
    /// The inventory, once made (`None`: pending).
    pub inventory: Option<ImageInventory>,
    /// Findings, most severe first.
    pub findings: Vec<FindingRow>,
}

/// Most images one question ("affected by", "holding") answers.
pub const MAX_ANSWER: usize = 1000;
/// Repositories looked at per image.
const REPOSITORIES_PER_IMAGE: i64 = 100;

/// An image in an answer: where it is, and the package that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageHit {
    /// The repository.
    pub repository: String,
    /// The manifest digest.
    pub digest: String,
    /// Its tags there.
    pub tags: Vec<String>,
    /// The package's ecosystem.
    pub ecosystem: String,
    /// The package.
    pub package: String,
    /// Its installed version.
    pub installed: String,
    /// The fixed version (advisory answers).
    pub fixed: Option<String>,
    /// The severity (advisory answers).
    pub severity: Option<String>,
}

/// An answer: the images the caller may pull, and whether more were left
/// out ([`MAX_ANSWER`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The images, by repository.
    pub images: Vec<ImageHit>,
    /// More matched than were looked at.
    pub truncated: bool,
}

/// The SBOM formats an inventory is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.5 JSON.
    CycloneDx,
}

/// The vulnerability service.
#[derive(Debug, Clone)]
pub struct Vulnerabilities {
    directory: Directory,
    registry: Registry,
}

fn severity_rank(s: &str) -> u8 {
    berth_advisory::Severity::parse(s).map_or(0, |s| s as u8)
}

impl Vulnerabilities {
    /// Over the directory (access) and the registry (blobs, store).
    pub fn new(directory: Directory, registry: Registry) -> Self {
        Vulnerabilities {
            directory,
            registry,
        }
    }

    /// Whether `actor` may import advisories (platform administrators).
    pub fn may_import(&self, actor: &Principal) -> DirResult<()> {
        if actor.is_platform_admin() {
            Ok(())
        } else {
            Err(DirectoryError::Forbidden(
                "advisories are imported by platform administrators".into(),
            ))
        }
    }

    /// Import OSV documents (platform administrators).
    pub async fn import(
        &self,
        actor: &Principal,
        documents: &[Vec<u8>],
    ) -> DirResult<ImportReport> {
        self.may_import(actor)?;
        let report = self.import_documents(documents).await?;
        self.directory
            .record(
                actor,
                "advisories.import",
                "platform",
                &format!(
                    "imported={} unchanged={} invalid={} images_matched={}",
                    report.imported,
                    report.unchanged,
                    report.invalid.len(),
                    report.images_matched
                ),
            )
            .await?;
        Ok(report)
    }

    /// Import OSV documents (the command line, a watched artifact): store
    /// what is new or changed, then re-match only the images holding a
    /// package those advisories name.
    pub async fn import_documents(&self, documents: &[Vec<u8>]) -> DirResult<ImportReport> {
        if documents.len() > MAX_IMPORT {
            return Err(DirectoryError::Invalid(format!(
                "at most {MAX_IMPORT} advisories at once"
            )));
        }
        Ok(import::import_documents(&self.registry, documents).await?)
    }

    /// An image's inventory and findings, for someone who may pull it.
    pub async fn image(
        &self,
        actor: &Principal,
        repo: &RepoName,
        digest: &Digest,
    ) -> DirResult<ImageReport> {
        if !self.directory.actions(actor, repo).await?.pull {
            return Err(DirectoryError::NotFound(format!("image {repo}")));
        }
        match self
            .registry
            .get_manifest(repo, &berth_oci::Reference::Digest(digest.clone()), false)
            .await
        {
            Ok(m) => {
                let parsed = berth_oci::ParsedManifest::parse(&m.content, Some(&m.media_type));
                if !parsed.as_ref().is_ok_and(job::wants_inventory) {
                    // Never "pending": nothing will ever be read.
                    return Err(DirectoryError::Invalid(format!(
                        "manifest {digest} is not an image with filesystem layers (an index \
                         or an artifact) and has no inventory; ask for one of its images"
                    )));
                }
            }
            Err(
                crate::RegistryError::ManifestUnknown(_) | crate::RegistryError::NameUnknown(_),
            ) => {
                return Err(DirectoryError::NotFound(format!(
                    "manifest {digest} in {repo}"
                )))
            }
            Err(e) => return Err(e.into()),
        }
        let meta = self.registry.meta();
        let inventory = meta
            .image_inventory(digest.as_str())
            .await?
            .and_then(|j| serde_json::from_str(&j).ok());
        let mut findings = meta.findings(digest.as_str()).await?;
        findings.sort_by(|a, b| {
            severity_rank(&b.severity)
                .cmp(&severity_rank(&a.severity))
                .then_with(|| a.advisory_id.cmp(&b.advisory_id))
        });
        Ok(ImageReport {
            inventory,
            findings,
        })
    }

    /// The images an advisory affects, in the repositories `actor` may
    /// pull from (across namespaces).
    pub async fn affected_by(&self, actor: &Principal, advisory_id: &str) -> DirResult<Answer> {
        if matches!(actor, Principal::Anonymous) {
            return Err(DirectoryError::AuthenticationFailed);
        }
        let meta = self.registry.meta();
        if meta.advisory(advisory_id).await?.is_none() {
            return Err(DirectoryError::NotFound(format!("advisory {advisory_id}")));
        }
        let findings = meta.findings_of_advisory(advisory_id).await?;
        let mut digests: Vec<&str> = findings
            .iter()
            .map(|f| f.manifest_digest.as_str())
            .collect();
        digests.dedup();
        let truncated = digests.len() > MAX_ANSWER;
        let mut images = Vec::new();
        for digest in digests.into_iter().take(MAX_ANSWER) {
            let hits: Vec<ImageHit> = findings
                .iter()
                .filter(|f| f.manifest_digest == digest)
                .map(|f| ImageHit {
                    repository: String::new(),
                    digest: digest.to_owned(),
                    tags: Vec::new(),
                    ecosystem: f.ecosystem.clone(),
                    package: f.package.clone(),
                    installed: f.version.clone(),
                    fixed: f.fixed.clone(),
                    severity: Some(f.severity.clone()),
                })
                .collect();
            self.place(actor, digest, hits, &mut images).await?;
        }
        Ok(Answer { images, truncated })
    }

    /// The images holding a package (by ecosystem when given, below a
    /// version when given), in the repositories `actor` may pull from.
    pub async fn holding(
        &self,
        actor: &Principal,
        ecosystem: Option<&str>,
        name: &str,
        below: Option<&str>,
    ) -> DirResult<Answer> {
        if matches!(actor, Principal::Anonymous) {
            return Err(DirectoryError::AuthenticationFailed);
        }
        if name.trim().is_empty() {
            return Err(DirectoryError::Invalid("name the package".into()));
        }
        let wanted = berth_advisory::normalise_name(ecosystem.unwrap_or_default(), name);
        let meta = self.registry.meta();
        let digests = meta.images_holding(std::slice::from_ref(&wanted)).await?;
        let truncated = digests.len() > MAX_ANSWER;
        let mut images = Vec::new();
        for digest in digests.iter().take(MAX_ANSWER) {
            let Some(inventory) = meta
                .image_inventory(digest)
                .await?
                .and_then(|j| serde_json::from_str::<ImageInventory>(&j).ok())
            else {
                continue;
            };
            let hits: Vec<ImageHit> = inventory
                .packages
                .iter()
                .filter(|p| berth_advisory::normalise_name(&p.ecosystem, &p.name) == wanted)
                .filter(|p| {
                    ecosystem.is_none_or(|e| {
                        p.ecosystem == e || p.ecosystem.split(':').next() == Some(e)
                    })
                })
                .filter(|p| {
                    below.is_none_or(|b| {
                        let scheme = berth_advisory::Scheme::of(&p.ecosystem);
                        berth_advisory::compare(scheme, &p.version, b)
                            == Some(std::cmp::Ordering::Less)
                    })
                })
                .map(|p| ImageHit {
                    repository: String::new(),
                    digest: digest.clone(),
                    tags: Vec::new(),
                    ecosystem: p.ecosystem.clone(),
                    package: p.name.clone(),
                    installed: p.version.clone(),
                    fixed: None,
                    severity: None,
                })
                .collect();
            if !hits.is_empty() {
                self.place(actor, digest, hits, &mut images).await?;
            }
        }
        Ok(Answer { images, truncated })
    }

    /// Copy `hits` of one image into `out` for each repository holding it
    /// that `actor` may pull from, with its tags there.
    async fn place(
        &self,
        actor: &Principal,
        digest: &str,
        hits: Vec<ImageHit>,
        out: &mut Vec<ImageHit>,
    ) -> DirResult<()> {
        let meta = self.registry.meta();
        let Ok(d) = Digest::parse(digest) else {
            return Ok(());
        };
        for repo in meta
            .manifest_repositories(digest, REPOSITORIES_PER_IMAGE)
            .await?
        {
            let Ok(name) = RepoName::parse(&repo) else {
                continue;
            };
            if !self.directory.actions(actor, &name).await?.pull {
                continue;
            }
            let tags = meta.manifest_tags(&name, &d).await?;
            for h in &hits {
                out.push(ImageHit {
                    repository: repo.clone(),
                    tags: tags.clone(),
                    ..h.clone()
                });
            }
        }
        Ok(())
    }

    /// An image's (or an index's) findings counted per severity, for
    /// someone who may pull it (tag lists).
    pub async fn summary(
        &self,
        actor: &Principal,
        repo: &RepoName,
        digest: &Digest,
    ) -> DirResult<Summary> {
        if !self.directory.actions(actor, repo).await?.pull {
            return Err(DirectoryError::NotFound(format!("image {repo}")));
        }
        match summary::summarize(&self.registry, repo, digest).await {
            Ok(s) => Ok(s),
            Err(
                crate::RegistryError::ManifestUnknown(_) | crate::RegistryError::NameUnknown(_),
            ) => Err(DirectoryError::NotFound(format!(
                "manifest {digest} in {repo}"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// An image's inventory as an SBOM, for someone who may pull it;
    /// `None` while the inventory is not made.
    pub async fn sbom(
        &self,
        actor: &Principal,
        repo: &RepoName,
        digest: &Digest,
        format: SbomFormat,
    ) -> DirResult<Option<serde_json::Value>> {
        let Some(inventory) = self.image(actor, repo, digest).await?.inventory else {
            return Ok(None);
        };
        let created = crate::token::rfc3339(now_millis() / 1000);
        let subject = berth_inventory::sbom::Subject {
            repository: repo.as_str(),
            digest: digest.as_str(),
            created: &created,
            tool_version: env!("CARGO_PKG_VERSION"),
        };
        Ok(Some(match format {
            SbomFormat::Spdx => berth_inventory::sbom::spdx(subject, &inventory),
            SbomFormat::CycloneDx => berth_inventory::sbom::cyclonedx(subject, &inventory),
        }))
    }

    /// An advisory's document, when stored.
    pub async fn advisory(&self, id: &str) -> DirResult<Option<berth_advisory::Advisory>> {
        Ok(self
            .registry
            .meta()
            .advisory(id)
            .await?
            .and_then(|d| berth_advisory::parse(d.as_bytes()).ok()))
    }
}
