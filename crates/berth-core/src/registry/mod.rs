//! The registry service: OCI Distribution operations over metadata and
//! blobs. `Registry` is wired here (its stores, regions and caches);
//! each concern has a file: `uploads` (sessions, chunks, commits),
//! `blobs` (reads, with on-demand fetches from other regions, mounts and
//! links), `manifests` (reads, pushes in one transaction, deletes),
//! `listings` (tags, the catalog, referrers) and `space` (the space
//! reserve kept for deletes on a full disk).

mod blobs;
mod listings;
mod manifests;
mod region_copies;
mod regions;
mod space;
mod triggers;
mod uploads;

pub use blobs::BlobRead;
pub use manifests::{ManifestPush, PushedManifest};
pub(crate) use region_copies::channel_stream;
pub use region_copies::{CopyCounts, RegionAvailability, REPLICATE_IMAGE_JOB};
pub use regions::{LagHistogram, PlatformStats, Region, Regions, DEFAULT_REGION, LAG_BUCKETS};
pub use triggers::{NoTriggers, Triggers};
pub use uploads::{Chunk, UploadState};

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_blob::BlobStore;
use berth_meta::MetaStore;
use berth_oci::RepoName;
use serde_json::{json, Value};

use std::collections::HashMap;
use std::sync::Mutex;

use berth_meta::PlatformStore;
use tokio::sync::{watch, Notify};

use crate::clock::now_millis;
use crate::policy::NamespacePolicy;
use crate::read_cache::ReadCache;
use crate::reserve::SpaceReserve;
use crate::{PullCounter, RegistryError};

type Result<T> = std::result::Result<T, RegistryError>;

/// Rules of the registry that configuration can change.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: u64,
    /// Largest blob accepted, in bytes.
    pub max_blob_bytes: u64,
    /// Idle upload sessions older than this are discarded.
    pub upload_expiry: Duration,
    /// Whether manifest, tag and blob deletion is allowed.
    pub deletes_enabled: bool,
    /// Most tags per repository (0: no limit).
    pub tags_per_repository: i64,
    /// Tags neither pushed nor pulled for this long may be evicted to make room.
    pub tag_idle: Duration,
    /// The repository whose pushed artifacts are imported as advisories.
    pub advisory_feed: Option<String>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            max_manifest_bytes: 4 << 20,
            max_blob_bytes: 5 << 30,
            upload_expiry: Duration::from_secs(24 * 3600),
            deletes_enabled: true,
            tags_per_repository: 800,
            tag_idle: Duration::from_secs(30 * 86_400),
            advisory_feed: None,
        }
    }
}

/// The registry service.
#[derive(Debug, Clone)]
pub struct Registry {
    pub(crate) meta: Arc<dyn MetaStore>,
    /// The local region's blob storage.
    pub(crate) blobs: Arc<dyn BlobStore>,
    config: Arc<RegistryConfig>,
    pulls: Arc<PullCounter>,
    reserve: Option<Arc<SpaceReserve>>,
    /// This node's name in leases: random per process.
    pub(crate) node_id: Arc<str>,
    /// Every region's storage, and which is this node's.
    pub(crate) regions: Arc<Regions>,
    /// Blob locations, jobs and synchronization rules; absent only where a
    /// registry is built without them (some unit tests).
    pub(crate) platform: Arc<dyn PlatformStore>,
    /// The work rules attach to pushes and deletions.
    triggers: Arc<dyn Triggers>,
    /// On-demand fetches from other regions in progress, by digest: later
    /// pulls of the same blob wait for the first instead of fetching again.
    fetches: Arc<Mutex<HashMap<String, watch::Receiver<bool>>>>,
    pub(crate) stats: Arc<PlatformStats>,
    /// Woken when a push queued jobs, so this node's worker starts at once.
    pub(crate) jobs_queued: Arc<Notify>,
    /// When this node last told webhooks a namespace's quota was reached
    /// (at most once per [`QUOTA_EVENT_EVERY`] per namespace and node).
    quota_events: Arc<Mutex<HashMap<String, Instant>>>,
    /// Hot manifests and tag lists (off unless given one that follows the
    /// change feed).
    pub(crate) cache: Arc<ReadCache>,
}

/// How often a namespace that keeps hitting its quota causes an event.
const QUOTA_EVENT_EVERY: Duration = Duration::from_secs(600);

impl Registry {
    /// Wire a registry over its stores: metadata, the platform's tables,
    /// and every region's blob storage (this node's region's is where
    /// uploads go).
    pub fn new(
        meta: Arc<dyn MetaStore>,
        platform: Arc<dyn PlatformStore>,
        regions: Regions,
        config: RegistryConfig,
    ) -> Self {
        Registry {
            meta,
            config: Arc::new(config),
            pulls: Arc::new(PullCounter::default()),
            reserve: None,
            node_id: uuid::Uuid::new_v4().simple().to_string().into(),
            blobs: regions.local().blobs.clone(),
            regions: Arc::new(regions),
            platform,
            triggers: Arc::new(NoTriggers),
            fetches: Arc::default(),
            stats: Arc::default(),
            jobs_queued: Arc::default(),
            quota_events: Arc::default(),
            cache: Arc::default(),
        }
    }

    /// Queue the work rules attach to pushes and deletions
    /// (`platform::RuleTriggers`).
    pub fn with_triggers(mut self, triggers: Arc<dyn Triggers>) -> Self {
        self.triggers = triggers;
        self
    }

    /// The read cache.
    pub fn read_cache(&self) -> &ReadCache {
        &self.cache
    }

    /// Serve hot reads from `cache`, shared with the directory and following
    /// the change feed.
    pub fn with_read_cache(mut self, cache: Arc<ReadCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The platform's regions.
    pub fn regions(&self) -> &Regions {
        &self.regions
    }

    /// The platform's tables.
    pub fn platform(&self) -> &Arc<dyn PlatformStore> {
        &self.platform
    }

    /// Deliver events to the webhooks subscribed to them, and queue what
    /// rules attach to them. Returns how many deliveries were queued.
    pub async fn emit(&self, events: &[berth_meta::NewEvent]) -> Result<usize> {
        let queued = self.platform.emit_events(events, now_millis()).await?;
        let records = self
            .triggers
            .happened(events, &self.regions.local().name)
            .await?;
        let mut tasks = 0;
        if !records.is_empty() {
            tasks = self
                .platform
                .start_syncs(&records, now_millis())
                .await?
                .len();
        }
        if queued + tasks > 0 {
            self.jobs_queued.notify_one();
        }
        Ok(queued)
    }

    /// Tell webhooks a push was refused for the namespace's quota, at most
    /// once per [`QUOTA_EVENT_EVERY`] per namespace on this node.
    async fn quota_reached(&self, repo: &RepoName, used: i64, quota: i64) {
        let ns = repo.namespace();
        {
            let mut last = self.quota_events.lock().unwrap_or_else(|p| p.into_inner());
            if last
                .get(ns)
                .is_some_and(|t| t.elapsed() < QUOTA_EVENT_EVERY)
            {
                return;
            }
            last.insert(ns.to_owned(), Instant::now());
        }
        let event = crate::events::Event::new(crate::events::kind::QUOTA_REACHED, Some(ns))
            .with("repository", repo.as_str())
            .with("used_bytes", used)
            .with("quota_bytes", quota)
            .build();
        if let Err(e) = self.emit(&[event]).await {
            tracing::warn!(error = %e, namespace = ns, "could not queue a quota event for webhooks");
        }
    }

    /// What moved between regions.
    pub fn platform_stats(&self) -> &PlatformStats {
        &self.stats
    }

    /// This node's name in leases.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The configuration in force.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The metadata store.
    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        &self.meta
    }

    /// Take or renew the lease `name` for this node for `ttl`: scheduled
    /// work that one node at a time should do runs only where this is true.
    pub async fn try_lease(&self, name: &str, ttl: Duration) -> Result<bool> {
        let now = now_millis();
        Ok(self
            .meta
            .try_lease(name, &self.node_id, now, now + ttl.as_millis() as i64)
            .await?)
    }

    /// The blob storage.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// Pending pull counts.
    pub fn pulls(&self) -> &PullCounter {
        &self.pulls
    }

    /// Write pending pull counts to the database.
    /// Webhooks get one `image.pull` event per namespace and flush, with
    /// the counts, rather than one request per pull.
    pub async fn flush_pulls(&self) -> Result<usize> {
        let written = self.pulls.flush(self.meta.as_ref()).await?;
        if !written.is_empty() {
            let mut by_namespace: std::collections::BTreeMap<&str, Vec<Value>> = Default::default();
            for p in &written {
                let ns = p.repo.split('/').next().unwrap_or_default();
                by_namespace.entry(ns).or_default().push(json!({
                    "repository": p.repo,
                    "digest": p.digest,
                    "tag": p.tag,
                    "count": p.count,
                    "last_pulled_at": crate::token::rfc3339(p.last / 1000),
                }));
            }
            let events: Vec<_> = by_namespace
                .into_iter()
                .map(|(ns, pulls)| {
                    crate::events::Event::new(crate::events::kind::IMAGE_PULL, Some(ns))
                        .with("pulls", pulls)
                        .build()
                })
                .collect();
            // The counts are stored; a lost batch of pull events is logged.
            if let Err(e) = self.emit(&events).await {
                tracing::warn!(error = %e, "could not queue pull events for webhooks");
            }
        }
        Ok(written.len())
    }

    /// Whether database and storage answer.
    pub async fn ready(&self) -> Result<()> {
        self.meta.ping().await?;
        self.blobs.ping().await?;
        Ok(())
    }

    /// A namespace's policies.
    pub async fn policy(&self, namespace: &str) -> Result<NamespacePolicy> {
        let record = self.meta.namespace_policy(namespace).await?;
        NamespacePolicy::from_record(record)
            .map_err(|e| RegistryError::Meta(berth_meta::MetaError::Corrupt(e)))
    }

    /// The first immutable tag of an image, with the pattern it matches.
    pub async fn immutable_tag(&self, repo: &RepoName) -> Result<Option<(String, String)>> {
        let policy = self.policy(repo.namespace()).await?;
        if policy.immutable_tags.is_empty() {
            return Ok(None);
        }
        let mut last: Option<String> = None;
        loop {
            let Some(page) = self.meta.list_tags(repo, last.as_deref(), 1000).await? else {
                return Ok(None);
            };
            for tag in &page {
                if let Some(p) = policy.immutable(tag) {
                    return Ok(Some((tag.clone(), p.to_owned())));
                }
            }
            if page.len() < 1000 {
                return Ok(None);
            }
            last = page.last().cloned();
        }
    }

    fn check_deletes(&self) -> Result<()> {
        if self.config.deletes_enabled {
            Ok(())
        } else {
            Err(RegistryError::Unsupported(
                "deletion is disabled on this registry".into(),
            ))
        }
    }
}

fn immutable_error(repo: &RepoName, tag: &str, pattern: &str, what: &str) -> RegistryError {
    RegistryError::Denied(format!(
        "tag {tag} in {repo} is immutable (namespace {} protects tags matching {pattern:?}) and cannot be {what}",
        repo.namespace()
    ))
}

fn quota_error(repo: &RepoName, used: i64, quota: i64, size: i64) -> RegistryError {
    RegistryError::Denied(format!(
        "storage quota of namespace {} exceeded: it uses {used} of {quota} bytes and this blob needs {size} more; delete images or ask for a larger quota",
        repo.namespace()
    ))
}

fn group_quota_error(group: &str, used: i64, quota: i64, size: i64) -> RegistryError {
    RegistryError::Denied(format!(
        "storage quota of project group {group} exceeded: its namespaces use {used} of {quota} bytes and this blob needs {size} more; delete images or ask a platform administrator for a larger quota"
    ))
}
