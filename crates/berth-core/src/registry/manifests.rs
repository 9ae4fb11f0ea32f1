//! Manifests: reads (from the read cache when it holds them), pushes (the
//! manifest, its references, tags and the work it triggers in one
//! transaction) and deletes.

use std::sync::Arc;

use berth_meta::{
    DeclaredSize, ManifestRecord, NewJob, NewManifest, NewSyncRecord, PutManifestOutcome, TagLimit,
};
use berth_oci::{Algorithm, Digest, ManifestKind, ParsedManifest, Reference, RepoName, Tag};
use serde_json::Value;

use crate::clock::now_millis;
use crate::RegistryError;

use super::{immutable_error, Registry};

type Result<T> = std::result::Result<T, RegistryError>;

/// A manifest push request.
#[derive(Debug)]
pub struct ManifestPush<'a> {
    /// Repository.
    pub repo: &'a RepoName,
    /// Tag or digest from the URL.
    pub reference: &'a Reference,
    /// Declared Content-Type.
    pub content_type: Option<&'a str>,
    /// The exact bytes.
    pub body: Vec<u8>,
    /// Extra tags from `?tag=` parameters (push by digest).
    pub extra_tags: Vec<Tag>,
    /// Who pushes (for the audit log).
    pub actor: &'a str,
    /// From where (for the audit log); `None` for Berth's own pushes
    /// (synchronization).
    pub client_addr: Option<&'a str>,
    /// A pull-through cache's copy of an upstream manifest: its blobs and
    /// children come later, on demand; it triggers no replication and no
    /// push event.
    pub cached: bool,
}

/// The result of a manifest push.
#[derive(Debug)]
pub struct PushedManifest {
    /// Digest of the stored bytes.
    pub digest: Digest,
    /// The subject it refers to, if any.
    pub subject: Option<Digest>,
    /// Tags that now point at it.
    pub tags: Vec<Tag>,
}

impl Registry {
    /// Fetch a manifest. `count_pull` counts it as a pull (a GET, not a HEAD).
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        count_pull: bool,
    ) -> Result<Arc<ManifestRecord>> {
        let cached = match reference {
            Reference::Tag(tag) => self.cache.manifest_by_tag(repo.as_str(), tag.as_str()),
            Reference::Digest(d) => self.cache.manifest_by_digest(repo.as_str(), d.as_str()),
        };
        let found = match cached {
            Some(m) => Some(m),
            None => {
                let ticket = self.cache.ticket();
                let (found, tag) = match reference {
                    Reference::Tag(tag) => (
                        self.meta.manifest_by_tag(repo, tag).await?,
                        Some(tag.as_str()),
                    ),
                    Reference::Digest(d) => (self.meta.manifest_by_digest(repo, d).await?, None),
                };
                found.map(|m| {
                    let m = Arc::new(m);
                    self.cache
                        .put_manifest(ticket, repo.as_str(), tag, m.clone());
                    m
                })
            }
        };
        let Some(record) = found else {
            return Err(if self.meta.repository_exists(repo).await? {
                RegistryError::ManifestUnknown(reference.to_string())
            } else {
                RegistryError::NameUnknown(repo.to_string())
            });
        };
        if count_pull {
            let tag = match reference {
                Reference::Tag(t) => Some(t.as_str()),
                Reference::Digest(_) => None,
            };
            self.pulls
                .record(repo.as_str(), record.digest.as_str(), tag, now_millis());
        }
        Ok(record)
    }

    /// Validate and store a manifest with its tags.
    pub async fn put_manifest(&self, push: ManifestPush<'_>) -> Result<PushedManifest> {
        self.check_room()?;
        if push.body.len() as u64 > self.config.max_manifest_bytes {
            return Err(RegistryError::TooLarge {
                what: "manifest",
                limit: self.config.max_manifest_bytes,
            });
        }
        let parsed = ParsedManifest::parse(&push.body, push.content_type)?;
        let (digest, mut tags) = match push.reference {
            Reference::Tag(tag) => (
                Digest::of_bytes(Algorithm::Sha256, &push.body),
                vec![tag.clone()],
            ),
            Reference::Digest(expected) => {
                let actual = Digest::of_bytes(expected.algorithm(), &push.body);
                if &actual != expected {
                    return Err(RegistryError::DigestInvalid(format!(
                        "manifest digest {actual} does not match {expected} in the URL"
                    )));
                }
                (actual, Vec::new())
            }
        };
        for t in push.extra_tags {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let blobs: Vec<Digest> = parsed
            .blob_references()
            .filter(|d| !d.is_non_distributable())
            .map(|d| d.digest.clone())
            .collect();
        let children: Vec<Digest> = parsed.manifests.iter().map(|d| d.digest.clone()).collect();
        let declared_sizes = declared_sizes(&parsed);
        let subject = parsed.subject.as_ref().map(|s| s.digest.clone());
        let policy = self.policy(push.repo.namespace()).await?;
        let (mut jobs, syncs) = if push.cached {
            (Vec::new(), Vec::new())
        } else {
            self.triggered_work(push.repo, &digest, &tags, push.actor)
                .await?
        };
        // Advisories pushed to the feed repository are imported in the
        // background; what an image holds is read in the background too,
        // never in the push.
        let feed = self.config.advisory_feed.as_deref() == Some(push.repo.as_str());
        if feed && parsed.kind == berth_oci::ManifestKind::Image {
            jobs.push(crate::vulnerabilities::feed_job(
                push.repo.as_str(),
                digest.as_str(),
                &self.regions.local().name,
                now_millis(),
            ));
        } else if crate::vulnerabilities::wants_inventory(&parsed) {
            jobs.push(crate::vulnerabilities::inventory_job(
                push.repo.as_str(),
                digest.as_str(),
                &self.regions.local().name,
                now_millis(),
                None,
            ));
        } else if let Some(image) = crate::vulnerabilities::sbom_subject(&parsed) {
            // An SBOM attached to an image: the image's inventory takes it in.
            jobs.push(crate::vulnerabilities::inventory_job(
                push.repo.as_str(),
                image.as_str(),
                &self.regions.local().name,
                now_millis(),
                Some(digest.as_str()),
            ));
        }
        // Webhooks hear of the push in its transaction.
        let events = match push.cached {
            false => vec![crate::events::Event::new(
                crate::events::kind::IMAGE_PUSH,
                Some(push.repo.namespace()),
            )
            .actor(push.actor)
            .client_address(push.client_addr)
            .with("repository", push.repo.as_str())
            .with("digest", digest.as_str())
            .with("media_type", parsed.media_type.as_str())
            .with("size", push.body.len())
            .with(
                "tags",
                tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            )
            .build()],
            true => Vec::new(),
        };
        // Deliveries are found by the worker's next poll; replication and
        // synchronization wake it now.
        let queues_work = !jobs.is_empty() || !syncs.is_empty();
        let record = NewManifest {
            repo: push.repo.clone(),
            digest: digest.clone(),
            media_type: parsed.media_type.clone(),
            content: push.body,
            blobs,
            children,
            declared_sizes,
            subject: subject.clone(),
            artifact_type: parsed.artifact_type.clone(),
            annotations: parsed
                .annotations
                .as_ref()
                .map(|a| Value::Object(a.clone()).to_string()),
            tags: tags.clone(),
            tag_limit: (self.config.tags_per_repository > 0 && !tags.is_empty()).then(|| {
                TagLimit {
                    max: self.config.tags_per_repository,
                    evict: crate::policy::tags_to_evict,
                    audit_detail: crate::policy::eviction_detail,
                    idle_before: now_millis() - self.config.tag_idle.as_millis() as i64,
                }
            }),
            immutable: policy.immutable_tags,
            actor: push.actor.to_owned(),
            client_addr: push.client_addr.map(str::to_owned),
            now: now_millis(),
            cached: push.cached,
            jobs,
            syncs,
            events,
        };
        let outcome = self.meta.put_manifest(&record).await;
        // This node's clients read their own writes at once; other nodes
        // hear of it through the change feed.
        self.cache.forget_repository(push.repo.as_str());
        match outcome? {
            PutManifestOutcome::Stored(evicted) => {
                if queues_work {
                    self.jobs_queued.notify_one();
                }
                for (tag, d, image) in &evicted {
                    tracing::info!(repo = %push.repo, tag, digest = d, image_deleted = image, "evicted an idle tag to stay within the tag limit");
                }
                Ok(PushedManifest {
                    digest,
                    subject,
                    tags,
                })
            }
            PutManifestOutcome::TagLimit(max) => Err(RegistryError::Denied(format!(
                "repository {} already holds {max} tags, its limit, and none has been idle long enough to make room; delete tags first",
                push.repo
            ))),
            PutManifestOutcome::MissingBlobs(missing) => {
                Err(RegistryError::ManifestBlobUnknown(missing))
            }
            PutManifestOutcome::Immutable { tag, pattern } => Err(immutable_error(
                push.repo, &tag, &pattern, "overwritten",
            )),
            PutManifestOutcome::SizeMismatch { declared, stored } => {
                Err(RegistryError::ManifestInvalid(format!(
                    "descriptor {} ({}) declares {} bytes, but the stored {} has {stored}",
                    declared.what,
                    declared.digest,
                    declared.size,
                    if declared.manifest { "manifest" } else { "blob" },
                )))
            }
            PutManifestOutcome::MissingManifests(missing) => {
                if parsed.kind == ManifestKind::Index {
                    Err(RegistryError::ManifestChildUnknown(missing))
                } else {
                    Err(RegistryError::ManifestBlobUnknown(missing))
                }
            }
        }
    }

    /// The work a manifest push triggers, to queue in its transaction:
    /// replication of the image to the other regions its namespace
    /// replicates to, the synchronizations the repository's rules ask for
    /// each pushed tag, and the tasks of on-push replication rules.
    async fn triggered_work(
        &self,
        repo: &RepoName,
        digest: &Digest,
        tags: &[Tag],
        actor: &str,
    ) -> Result<(Vec<NewJob>, Vec<NewSyncRecord>)> {
        let now = now_millis();
        let mut jobs = Vec::new();
        if self.regions.is_multi() {
            for region in self.region_copy_targets(repo.namespace()).await? {
                if region != self.regions.local().name {
                    jobs.push(super::region_copies::replicate_job(
                        repo.as_str(),
                        digest.as_str(),
                        &region,
                        now,
                    ));
                }
            }
        }
        let syncs = self
            .triggers
            .pushed(repo, digest, tags, actor, &self.regions.local().name)
            .await?;
        Ok((jobs, syncs))
    }

    /// Delete a manifest by digest (with its tags), or only a tag.
    pub async fn delete_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<()> {
        self.check_deletes()?;
        let policy = self.policy(repo.namespace()).await?;
        if !policy.immutable_tags.is_empty() {
            let tags = match reference {
                Reference::Tag(tag) => vec![tag.to_string()],
                Reference::Digest(d) => self.meta.manifest_tags(repo, d).await?,
            };
            for tag in tags {
                if let Some(pattern) = policy.immutable(&tag) {
                    return Err(immutable_error(repo, &tag, pattern, "deleted"));
                }
            }
        }
        let deleted = self
            .freeing(|| async {
                Ok::<_, RegistryError>(match reference {
                    Reference::Tag(tag) => self.meta.delete_tag(repo, tag).await?,
                    Reference::Digest(d) => self.meta.delete_manifest(repo, d).await?,
                })
            })
            .await;
        self.cache.forget_repository(repo.as_str());
        let deleted = deleted?;
        if deleted {
            Ok(())
        } else if self.meta.repository_exists(repo).await? {
            Err(RegistryError::ManifestUnknown(reference.to_string()))
        } else {
            Err(RegistryError::NameUnknown(repo.to_string()))
        }
    }
}

/// The sizes a manifest's descriptors declare for what must be stored
/// (config, distributable layers, child manifests), named as in the JSON.
fn declared_sizes(parsed: &ParsedManifest) -> Vec<DeclaredSize> {
    let blob = |what: String, d: &berth_oci::Descriptor| DeclaredSize {
        what,
        digest: d.digest.clone(),
        size: d.size,
        manifest: false,
    };
    let config = parsed.config.iter().map(|d| blob("config".to_owned(), d));
    let layers = parsed
        .layers
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.is_non_distributable())
        .map(|(i, d)| blob(format!("layers[{i}]"), d));
    let children = parsed
        .manifests
        .iter()
        .enumerate()
        .map(|(i, d)| DeclaredSize {
            what: format!("manifests[{i}]"),
            digest: d.digest.clone(),
            size: d.size,
            manifest: true,
        });
    config.chain(layers).chain(children).collect()
}
