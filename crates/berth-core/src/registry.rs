//! The registry service: OCI Distribution operations over metadata and blobs.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_blob::{BlobStore, ByteStream};
use berth_meta::{
    DeclaredSize, LinkOutcome, ManifestRecord, MetaStore, NewManifest, PutManifestOutcome,
    TagLimit, UploadPin, UploadRecord,
};
use berth_oci::{
    media_types, Algorithm, Digest, ManifestKind, ParsedManifest, Reference, RepoName, Tag,
};
use serde_json::{json, Map, Value};

use std::collections::HashMap;
use std::sync::Mutex;

use berth_meta::{NewJob, NewSyncRecord, PlatformStore};
use tokio::sync::{mpsc, watch, Notify};

use crate::error::storage_full;
use crate::platform::{channel_stream, PlatformStats, Region, Regions};
use crate::policy::NamespacePolicy;
use crate::read_cache::ReadCache;
use crate::reserve::SpaceReserve;
use crate::{Fault, PullCounter, RegistryError};

type Result<T> = std::result::Result<T, RegistryError>;

/// Current time in Unix milliseconds.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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
        }
    }
}

/// A blob opened for reading.
pub struct BlobRead {
    /// Full size of the blob.
    pub total: u64,
    /// The inclusive byte range served, when a range was asked for.
    pub range: Option<(u64, u64)>,
    /// The bytes (of the range, if any), in chunks.
    pub body: ByteStream,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobRead({} bytes, range {:?})", self.total, self.range)
    }
}

impl std::fmt::Debug for UploadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UploadState({}, {} bytes)", self.id, self.size)
    }
}

/// Where an upload session stands.
pub struct UploadState {
    /// Session id.
    pub id: String,
    /// Bytes received.
    pub size: u64,
}

/// A chunk of upload data as the client sent it.
pub struct Chunk {
    /// `Content-Range` (inclusive), if given.
    pub range: Option<(u64, u64)>,
    /// `Content-Length`, if given.
    pub length: Option<u64>,
    /// The bytes.
    pub body: ByteStream,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({:?}, {:?})", self.range, self.length)
    }
}

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
    pub(crate) platform: Option<Arc<dyn PlatformStore>>,
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

/// Errors that may say the disk is full (see [`Registry::freeing`]).
pub(crate) trait FaultOf {
    fn fault_of(&self) -> Option<Fault>;
}

impl FaultOf for RegistryError {
    fn fault_of(&self) -> Option<Fault> {
        self.fault()
    }
}

impl FaultOf for berth_meta::MetaError {
    fn fault_of(&self) -> Option<Fault> {
        crate::error::meta_fault(self)
    }
}

impl FaultOf for crate::DirectoryError {
    fn fault_of(&self) -> Option<Fault> {
        self.fault()
    }
}

impl FaultOf for crate::GcError {
    fn fault_of(&self) -> Option<Fault> {
        self.fault()
    }
}

impl Registry {
    /// Wire a registry over its stores.
    pub fn new(
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        config: RegistryConfig,
    ) -> Self {
        Registry {
            meta,
            config: Arc::new(config),
            pulls: Arc::new(PullCounter::default()),
            reserve: None,
            node_id: uuid::Uuid::new_v4().simple().to_string().into(),
            regions: Arc::new(Regions::single(blobs.clone())),
            blobs,
            platform: None,
            fetches: Arc::default(),
            stats: Arc::default(),
            jobs_queued: Arc::default(),
            quota_events: Arc::default(),
            cache: Arc::default(),
        }
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

    /// Give the registry the platform's tables and its regions (this
    /// node's region's storage becomes the one uploads go to).
    pub fn with_platform(mut self, platform: Arc<dyn PlatformStore>, regions: Regions) -> Self {
        self.blobs = regions.local().blobs.clone();
        self.regions = Arc::new(regions);
        self.platform = Some(platform);
        self
    }

    /// The platform's regions.
    pub fn regions(&self) -> &Regions {
        &self.regions
    }

    /// The platform's tables, when configured.
    pub fn platform(&self) -> Option<&Arc<dyn PlatformStore>> {
        self.platform.as_ref()
    }

    /// Deliver events to the webhooks subscribed to them (a no-op without
    /// the platform tables). Returns how many deliveries were queued.
    pub async fn emit(&self, events: &[berth_meta::NewEvent]) -> Result<usize> {
        let Some(platform) = &self.platform else {
            return Ok(0);
        };
        let queued = platform.emit_events(events, now_millis()).await?;
        // Deletions are replicated by the push rules that ask for it.
        let deletions: Vec<_> = events
            .iter()
            .filter_map(crate::platform::Deletion::of)
            .collect();
        let mut tasks = 0;
        if !deletions.is_empty() {
            let rules = platform.replication_rules().await?;
            let records =
                crate::platform::deletion_tasks(&rules, &deletions, &self.regions.local().name);
            if !records.is_empty() {
                tasks = platform.start_syncs(&records, now_millis()).await?.len();
            }
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

    /// Keep a space reserve on the database's disk (the embedded default),
    /// given up for deletes when the disk is full.
    pub fn with_reserve(mut self, reserve: SpaceReserve) -> Self {
        self.reserve = Some(Arc::new(reserve));
        self
    }

    /// Run an operation that frees space (a delete, a collection): when it
    /// meets a full disk, give the space reserve up and run it once more.
    pub(crate) async fn freeing<T, E, Fut>(
        &self,
        mut op: impl FnMut() -> Fut,
    ) -> std::result::Result<T, E>
    where
        E: FaultOf,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
    {
        match op().await {
            Err(e) if e.fault_of() == Some(Fault::StorageFull) && self.release_reserve().await => {
                op().await
            }
            other => other,
        }
    }

    async fn release_reserve(&self) -> bool {
        let Some(reserve) = self.reserve.clone() else {
            return false;
        };
        tokio::task::spawn_blocking(move || reserve.release())
            .await
            .unwrap_or(false)
    }

    /// Write the space reserve again if it was given up and there is room
    /// now (after a collection, and periodically).
    pub async fn restore_reserve(&self) {
        let Some(reserve) = self.reserve.clone() else {
            return;
        };
        let was_released = reserve.is_released();
        match tokio::task::spawn_blocking(move || reserve.restore()).await {
            Ok(Ok(true)) if was_released => {
                tracing::info!("space is free again: uploads are accepted")
            }
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not write the space reserve"),
            Err(e) => tracing::error!(error = %e, "writing the space reserve panicked"),
        }
    }

    /// Refuse to store more while the space reserve is given up: the room
    /// is for deletes.
    fn check_room(&self) -> Result<()> {
        match &self.reserve {
            Some(r) if r.is_released() => Err(storage_full(
                "storage is full: space is being kept for deletes; delete images or tags and run garbage collection",
            )),
            _ => Ok(()),
        }
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
        if self.platform.is_some() && !written.is_empty() {
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

    // ---- blobs -------------------------------------------------------------

    /// Size of a blob linked in `repo`.
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<u64> {
        match self.meta.repo_blob_size(repo, digest).await? {
            Some(size) => Ok(size as u64),
            None => Err(RegistryError::BlobUnknown(digest.to_string())),
        }
    }

    /// Open a blob linked in `repo`, optionally a byte range of it.
    /// `range` is `(start, end)` where `end` may be open (`None`), or a suffix
    /// length given as `(None, Some(n))`. `chunk` gives the size of the
    /// chunks to read for a body of so many bytes.
    /// Where the client may download a blob of `repo` directly (a presigned
    /// URL of the bucket), when storage offers it; `None` to stream it.
    pub async fn blob_download_url(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        self.blob_size(repo, digest).await?;
        Ok(self.blobs.download_url(digest).await?)
    }

    pub async fn open_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: Option<(Option<u64>, Option<u64>)>,
        chunk: impl FnOnce(u64) -> usize,
    ) -> Result<BlobRead> {
        let total = self.blob_size(repo, digest).await?;
        let range = match range {
            None => None,
            Some(r) => Some(resolve_range(r, total)?),
        };
        let len = range.map_or(total, |(start, end)| end - start + 1);
        let chunk = chunk(len);
        if let Some(body) = self.blobs.open_chunks(digest, range, chunk).await? {
            return Ok(BlobRead { total, range, body });
        }
        if self.regions.is_multi() {
            if let Some(body) = self
                .open_elsewhere(repo, digest, total, range, chunk)
                .await?
            {
                return Ok(BlobRead { total, range, body });
            }
        }
        tracing::error!(%digest, "blob is in the metadata but missing from storage");
        Err(RegistryError::BlobUnknown(digest.to_string()))
    }

    /// The regions to fetch a blob from, best first: those recorded as
    /// holding it, then the others (a location may be unrecorded).
    pub(crate) async fn sources(&self, digest: &Digest, except: &str) -> Result<Vec<Region>> {
        let recorded = match &self.platform {
            Some(p) => p.blob_locations(digest.as_str()).await?,
            None => Vec::new(),
        };
        let mut sources: Vec<Region> = recorded
            .iter()
            .filter_map(|name| self.regions.get(name))
            .filter(|r| r.name != except)
            .cloned()
            .collect();
        for r in self.regions.all() {
            if r.name != except && !sources.iter().any(|s| s.name == r.name) {
                sources.push(r.clone());
            }
        }
        Ok(sources)
    }

    /// Serve a blob this region does not hold yet from one that does. A
    /// whole-blob read is kept here as it passes (one fetch however many
    /// clients ask at once: later ones wait for it, then read it here); a
    /// range is streamed from there while a fetch runs in the background.
    async fn open_elsewhere(
        &self,
        repo: &RepoName,
        digest: &Digest,
        total: u64,
        range: Option<(u64, u64)>,
        chunk: usize,
    ) -> Result<Option<ByteStream>> {
        if self.platform.is_none() {
            return Ok(None);
        }
        let local = self.regions.local().clone();
        let sources = self.sources(digest, &local.name).await?;
        // Who fetches: the first request; the others wait for it.
        let waiting = self
            .fetches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest.as_str())
            .cloned();
        if let Some(mut rx) = waiting {
            if range.is_none() {
                let _ = rx.wait_for(|done| *done).await;
                if let Some(body) = self.blobs.open_chunks(digest, None, chunk).await? {
                    return Ok(Some(body));
                }
            }
            return self.stream_from(&sources, digest, range, chunk).await;
        }
        // Find a region that has it before starting the fetch.
        let mut last_error = None;
        let mut source = None;
        for s in &sources {
            match s.blobs.stat(digest).await {
                Ok(Some(_)) => {
                    source = Some(s.clone());
                    break;
                }
                Ok(None) => {}
                Err(e) => last_error = Some(e),
            }
        }
        let Some(source) = source else {
            return match last_error {
                Some(e) => Err(e.into()),
                None => Ok(None),
            };
        };
        let (done_tx, done_rx) = watch::channel(false);
        let started_meanwhile = {
            let mut fetches = self.fetches.lock().unwrap_or_else(|e| e.into_inner());
            let taken = fetches.contains_key(digest.as_str());
            if !taken {
                fetches.insert(digest.to_string(), done_rx);
            }
            taken
        };
        if started_meanwhile {
            return self.stream_from(&sources, digest, range, chunk).await;
        }
        self.stats
            .on_demand_fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(%digest, from = %source.name, to = %local.name, "fetching a blob from another region on demand");
        let (client_tx, client_rx) = mpsc::channel(4);
        let client = range.is_none().then_some(client_tx);
        let registry = self.clone();
        let repo_name = repo.to_string();
        let fetched = digest.clone();
        let from = source.clone();
        tokio::spawn(async move {
            let result = registry
                .copy_blob(&repo_name, &fetched, total, &from, &local, client)
                .await;
            if let Err(e) = &result {
                tracing::warn!(digest = %fetched, from = %from.name, error = %e, "on-demand fetch failed");
            }
            registry
                .fetches
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(fetched.as_str());
            let _ = done_tx.send(true);
        });
        if range.is_none() {
            return Ok(Some(channel_stream(client_rx)));
        }
        self.stream_from(&[source], digest, range, chunk).await
    }

    /// Stream a blob (or a range) from the first of `sources` that has it.
    async fn stream_from(
        &self,
        sources: &[Region],
        digest: &Digest,
        range: Option<(u64, u64)>,
        chunk: usize,
    ) -> Result<Option<ByteStream>> {
        let mut last_error = None;
        for s in sources {
            match s.blobs.open_chunks(digest, range, chunk).await {
                Ok(Some(body)) => return Ok(Some(body)),
                Ok(None) => {}
                Err(e) => last_error = Some(e),
            }
        }
        match last_error {
            Some(e) => Err(e.into()),
            None => Ok(None),
        }
    }

    /// Record that this node's region holds a blob (with several regions).
    async fn record_local(&self, digest: &Digest) -> Result<()> {
        if let (true, Some(p)) = (self.regions.is_multi(), &self.platform) {
            p.add_blob_location(digest.as_str(), &self.regions.local().name, now_millis())
                .await?;
        }
        Ok(())
    }

    /// Whether some region's storage holds a blob.
    async fn stored_anywhere(&self, digest: &Digest) -> Result<bool> {
        if self.blobs.stat(digest).await?.is_some() {
            return Ok(true);
        }
        if !self.regions.is_multi() {
            return Ok(false);
        }
        for s in self.sources(digest, &self.regions.local().name).await? {
            if let Ok(Some(_)) = s.blobs.stat(digest).await {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Unlink a blob from a repository.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        self.check_deletes()?;
        let unlinked = self
            .freeing(|| async {
                Ok::<_, RegistryError>(self.meta.unlink_blob(repo, digest).await?)
            })
            .await?;
        if unlinked {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(digest.to_string()))
        }
    }

    /// Repositories that link a blob (for mounts without `from`).
    pub async fn blob_repositories(&self, digest: &Digest, limit: i64) -> Result<Vec<String>> {
        Ok(self.meta.blob_repositories(digest, limit).await?)
    }

    /// Link a blob of `from` into `repo` (a mount). The caller has checked
    /// that whoever asks may pull `from`: knowing a digest is never enough.
    /// Returns whether it was mounted.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: &RepoName,
    ) -> Result<bool> {
        match self.meta.repo_blob_size(from, digest).await? {
            Some(size) => self.link_existing(repo, digest, size).await,
            None => Ok(false),
        }
    }

    /// Link a blob held anywhere here into `repo`, for a remote registry's
    /// content that the remote has just shown it holds too
    /// (`platform::confirm`): never on a digest alone.
    pub(crate) async fn link_confirmed(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        match self.meta.blob_size(digest).await? {
            Some(size) => self.link_existing(repo, digest, size).await,
            None => Ok(false),
        }
    }

    async fn link_existing(&self, repo: &RepoName, digest: &Digest, size: i64) -> Result<bool> {
        // The bytes must really be there: metadata alone is not enough.
        if !self.stored_anywhere(digest).await? {
            return Ok(false);
        }
        let quota = self.policy(repo.namespace()).await?.quota_bytes;
        match self
            .meta
            .link_blob(repo, digest, size, now_millis(), quota, None)
            .await?
        {
            LinkOutcome::Linked => Ok(true),
            // Being collected: the client then uploads it.
            LinkOutcome::Collecting => Ok(false),
            LinkOutcome::OverQuota { used } => {
                self.quota_reached(repo, used, quota.unwrap_or(0)).await;
                Err(quota_error(repo, used, quota.unwrap_or(0), size))
            }
            LinkOutcome::OverGroupQuota { group, used, quota } => {
                Err(group_quota_error(&group, used, quota, size))
            }
        }
    }

    // ---- uploads -----------------------------------------------------------

    /// Open a new upload session.
    pub async fn start_upload(&self, repo: &RepoName, algorithm: Algorithm) -> Result<UploadState> {
        self.check_room()?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = now_millis();
        let record = UploadRecord {
            id: id.clone(),
            repo: repo.to_string(),
            created_at: now,
            updated_at: now,
        };
        // The row first: a backend that keeps its upload state in the
        // database (S3) writes it there.
        self.meta.create_upload(&record).await?;
        if let Err(e) = self.blobs.upload_create(&id, algorithm).await {
            let _ = self.meta.delete_upload(&id).await;
            return Err(e.into());
        }
        Ok(UploadState { id, size: 0 })
    }

    async fn check_upload(&self, repo: &RepoName, id: &str) -> Result<UploadRecord> {
        match self.meta.get_upload(id).await? {
            Some(u) if u.repo == repo.as_str() => Ok(u),
            _ => Err(RegistryError::BlobUploadUnknown(id.to_owned())),
        }
    }

    /// How stale an upload's recorded activity may get before a chunk
    /// refreshes it: a minute, or a tenth of the expiry if that is shorter.
    /// Each refresh is a database commit (an fsync with SQLite), which a
    /// chunked push of 5 MiB chunks paid on every chunk.
    fn touch_interval_ms(&self) -> i64 {
        let tenth = self.config.upload_expiry.as_millis() / 10;
        i64::try_from(tenth.min(60_000)).unwrap_or(60_000)
    }

    /// Bytes received by an upload session.
    pub async fn upload_status(&self, repo: &RepoName, id: &str) -> Result<UploadState> {
        self.check_upload(repo, id).await?;
        // A write that failed after its chunk was answered is reported here.
        let size = self
            .blobs
            .upload_size(id)
            .await
            .map_err(RegistryError::from);
        match self.discard_if_full(id, size).await? {
            Some(size) => Ok(UploadState {
                id: id.to_owned(),
                size,
            }),
            None => Err(RegistryError::BlobUploadUnknown(id.to_owned())),
        }
    }

    /// Append a chunk. `range` is the inclusive `Content-Range` if the client
    /// sent one; without it the body is appended at the end (streamed upload).
    pub async fn upload_chunk(
        &self,
        repo: &RepoName,
        id: &str,
        chunk: Chunk,
    ) -> Result<UploadState> {
        let upload = self.check_upload(repo, id).await?;
        self.append_chunk(&upload, chunk).await
    }

    /// Append a chunk to `upload`, a session already checked.
    async fn append_chunk(&self, upload: &UploadRecord, chunk: Chunk) -> Result<UploadState> {
        let result = self.append_chunk_to(upload, chunk).await;
        self.discard_if_full(&upload.id, result).await
    }

    /// An upload that failed on a full disk is removed at once, its data
    /// with it: the client cannot finish it, and it holds space.
    async fn discard_if_full<T>(&self, id: &str, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.fault() == Some(Fault::StorageFull) {
                tracing::warn!(
                    upload = id,
                    "upload refused on a full disk; its data is removed"
                );
                self.discard_upload(id).await;
            }
        }
        result
    }

    async fn append_chunk_to(&self, upload: &UploadRecord, chunk: Chunk) -> Result<UploadState> {
        self.check_room()?;
        let id = upload.id.as_str();
        let Chunk {
            range,
            length,
            body,
        } = chunk;
        if let Some((start, end)) = range.filter(|(s, e)| e < s) {
            return Err(RegistryError::BlobUploadInvalid(format!(
                "Content-Range {start}-{end} ends before it starts"
            )));
        }
        // Where the chunk starts, and the most the upload may hold after it.
        // A ranged chunk may not run past its range's end. A body of known
        // length is placed at the size just read, as a ranged chunk would
        // be, so that a large one goes to the blob store's large blocks
        // from its first byte rather than after its first megabytes. A body
        // of unknown length may grow the upload up to the limit.
        let max = self.config.max_blob_bytes;
        let (offset, limit) = match (range, length) {
            (Some((start, end)), _) => (Some(start), end.saturating_add(1)),
            (None, Some(len)) => {
                let current = self.blobs.upload_size(id).await?.unwrap_or(0);
                (Some(current), current.saturating_add(len))
            }
            (None, None) => (None, max),
        };
        // A chunk that announces more than the limit is refused before any of it is read.
        if offset.is_some() && limit > max {
            self.discard_upload(id).await;
            return Err(RegistryError::TooLarge {
                what: "blob",
                limit: max,
            });
        }
        let result = self.blobs.upload_append(id, offset, body, limit).await;
        let now = now_millis();
        if now - upload.updated_at >= self.touch_interval_ms() {
            self.meta.touch_upload(id, now).await?;
        }
        let size = match result {
            Ok(size) => size,
            Err(berth_blob::BlobError::TooLarge { .. }) if range.is_some() => {
                return Err(RegistryError::SizeInvalid(
                    "chunk is longer than its Content-Range".into(),
                ))
            }
            Err(e @ berth_blob::BlobError::TooLarge { .. }) => {
                self.discard_upload(id).await;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        if let Some((_, end)) = range {
            if size != end + 1 {
                return Err(RegistryError::SizeInvalid(format!(
                    "chunk ended at byte {size} but Content-Range said {}",
                    end + 1
                )));
            }
        }
        Ok(UploadState {
            id: id.to_owned(),
            size,
        })
    }

    /// Close an upload: append an optional last chunk, verify the digest,
    /// store the blob and link it into the repository.
    pub async fn finish_upload(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        last_chunk: Option<Chunk>,
    ) -> Result<()> {
        let upload = self.check_upload(repo, id).await?;
        let result = self.finish_checked(repo, &upload, digest, last_chunk).await;
        self.discard_if_full(id, result).await
    }

    async fn finish_checked(
        &self,
        repo: &RepoName,
        upload: &UploadRecord,
        digest: &Digest,
        last_chunk: Option<Chunk>,
    ) -> Result<()> {
        let id = upload.id.as_str();
        match last_chunk {
            // The digest is pinned while the last chunk arrives: the pin is a
            // database commit the push would otherwise wait for after it.
            // The chunk's failure, if any, is the one reported.
            Some(chunk) => {
                let (appended, pinned) = tokio::join!(
                    self.append_chunk_to(upload, chunk),
                    self.pin_upload(id, digest)
                );
                appended?;
                pinned?;
            }
            None => self.pin_upload(id, digest).await?,
        }
        // The quota is checked exactly when the blob is linked (a blob the
        // namespace already holds costs nothing); refused bytes stay unlinked
        // and garbage collection reclaims them.
        let quota = self.policy(repo.namespace()).await?.quota_bytes;
        let committed = self.blobs.upload_commit(id, digest).await;
        if matches!(committed, Err(berth_blob::BlobError::DigestMismatch { .. })) {
            // The content is gone; so is the session.
            self.meta.delete_upload(id).await?;
        }
        let size = committed?;
        let outcome = self
            .meta
            .link_blob(repo, digest, size as i64, now_millis(), quota, Some(id))
            .await?;
        match outcome {
            LinkOutcome::Linked => self.record_local(digest).await,
            // The pin keeps the collector away, so this does not happen.
            LinkOutcome::Collecting => {
                self.meta.delete_upload(id).await?;
                Err(RegistryError::Busy(format!(
                    "blob {digest} is being deleted by garbage collection; upload it again"
                )))
            }
            LinkOutcome::OverQuota { used } => {
                self.quota_reached(repo, used, quota.unwrap_or(0)).await;
                Err(quota_error(repo, used, quota.unwrap_or(0), size as i64))
            }
            LinkOutcome::OverGroupQuota { group, used, quota } => {
                Err(group_quota_error(&group, used, quota, size as i64))
            }
        }
    }

    /// Pin the digest an upload is about to commit. While the collector is
    /// deleting a blob with that digest, wait (a deletion takes moments);
    /// the bytes are moved into place only after it is gone.
    pub(crate) async fn pin_upload(&self, id: &str, digest: &Digest) -> Result<()> {
        const WAIT: Duration = Duration::from_millis(100);
        const ATTEMPTS: u32 = 300;
        for _ in 0..ATTEMPTS {
            match self.meta.pin_upload(id, digest).await? {
                UploadPin::Pinned => return Ok(()),
                UploadPin::NoSession => {
                    return Err(RegistryError::BlobUploadUnknown(id.to_owned()))
                }
                UploadPin::Collecting => tokio::time::sleep(WAIT).await,
            }
        }
        Err(RegistryError::Busy(format!(
            "blob {digest} is being deleted by garbage collection; retry the upload shortly"
        )))
    }

    /// Cancel an upload session.
    pub async fn cancel_upload(&self, repo: &RepoName, id: &str) -> Result<()> {
        self.check_upload(repo, id).await?;
        self.blobs.upload_delete(id).await?;
        self.meta.delete_upload(id).await?;
        Ok(())
    }

    async fn discard_upload(&self, id: &str) {
        if let Err(e) = self.blobs.upload_delete(id).await {
            tracing::warn!(upload = id, error = %e, "could not remove upload data");
        }
        if let Err(e) = self.meta.delete_upload(id).await {
            tracing::warn!(upload = id, error = %e, "could not remove upload record");
        }
    }

    /// Discard upload sessions idle for longer than the expiry, and upload
    /// data no session owns. Returns how many were removed.
    pub async fn expire_uploads(&self) -> Result<usize> {
        let cutoff = now_millis() - self.config.upload_expiry.as_millis() as i64;
        let idle = self.meta.idle_uploads(cutoff).await?;
        let mut removed = 0;
        for id in &idle {
            self.discard_upload(id).await;
            removed += 1;
        }
        let cutoff_time = SystemTime::now() - self.config.upload_expiry;
        for (id, modified) in self.blobs.list_uploads().await? {
            if modified < cutoff_time && self.meta.get_upload(&id).await?.is_none() {
                self.discard_upload(&id).await;
                removed += 1;
            }
        }
        Ok(removed)
    }

    // ---- manifests ---------------------------------------------------------

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
        let (jobs, syncs) = if push.cached {
            (Vec::new(), Vec::new())
        } else {
            self.triggered_work(push.repo, &digest, &tags, push.actor)
                .await?
        };
        // Webhooks hear of the push in its transaction.
        let events = match &self.platform {
            Some(_) if !push.cached => vec![crate::events::Event::new(
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
            _ => Vec::new(),
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
        let Some(platform) = &self.platform else {
            return Ok((Vec::new(), Vec::new()));
        };
        let now = now_millis();
        let mut jobs = Vec::new();
        if self.regions.is_multi() {
            for region in self.replication_targets(repo.namespace()).await? {
                if region != self.regions.local().name {
                    jobs.push(crate::platform::replicate_job(
                        repo.as_str(),
                        digest.as_str(),
                        &region,
                        now,
                    ));
                }
            }
        }
        let mut syncs = Vec::new();
        if !tags.is_empty() {
            let rules = platform.replication_rules().await?;
            syncs.extend(crate::platform::push_tasks(
                &rules,
                repo,
                digest,
                tags,
                actor,
                &self.regions.local().name,
            ));
            for rule in platform.sync_rules(repo.as_str()).await? {
                for tag in tags {
                    syncs.push(NewSyncRecord {
                        rule_id: rule.id,
                        repo: repo.to_string(),
                        tag: tag.to_string(),
                        digest: digest.to_string(),
                        target_region: rule.target_region.clone(),
                        target_namespace: rule.target_namespace.clone(),
                        overwrite: rule.overwrite,
                        trigger: "automatic".to_owned(),
                        operator: actor.to_owned(),
                        replication: None,
                    });
                }
            }
        }
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

    // ---- listings ----------------------------------------------------------

    /// A page of tags; `NameUnknown` for a repository that does not exist.
    pub async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        n: i64,
    ) -> Result<Vec<String>> {
        let all = match self.cache.tag_list(repo.as_str()) {
            Some(all) => all,
            None => {
                let ticket = self.cache.ticket();
                let limit = crate::read_cache::MAX_CACHED_TAGS as i64;
                // A first page of a short list is the whole list: keep it.
                let page = self
                    .meta
                    .list_tags(
                        repo,
                        last,
                        if last.is_none() { limit.max(n) + 1 } else { n },
                    )
                    .await?
                    .ok_or_else(|| RegistryError::NameUnknown(repo.to_string()))?;
                if last.is_some() || page.len() as i64 > limit {
                    return Ok(page.into_iter().take(n.max(0) as usize).collect());
                }
                let all = Arc::new(page);
                self.cache.put_tag_list(ticket, repo.as_str(), all.clone());
                all
            }
        };
        // Tags sort as the database sorts them (bytewise).
        let start = match last {
            Some(last) => all.partition_point(|t| t.as_str() <= last),
            None => 0,
        };
        Ok(all
            .iter()
            .skip(start)
            .take(n.max(0) as usize)
            .cloned()
            .collect())
    }

    /// A page of repository names.
    pub async fn catalog(&self, last: Option<&str>, n: i64) -> Result<Vec<String>> {
        Ok(self.meta.catalog(last, n).await?)
    }

    /// A page of the repository names `principal` may pull (`platform` is
    /// the platform namespace, which everyone may), as
    /// [`crate::access::allowed`] decides, chosen by the database.
    pub async fn visible_catalog(
        &self,
        principal: &crate::access::Principal,
        platform: &str,
        last: Option<&str>,
        n: i64,
    ) -> Result<Vec<String>> {
        use crate::access::Principal;
        let scope = berth_meta::CatalogScope {
            all: principal.is_platform_admin(),
            account: match principal {
                Principal::Account { id, .. } => Some(*id),
                _ => None,
            },
            registry_user: match principal {
                Principal::RegistryUser { id, .. } => Some(*id),
                _ => None,
            },
            platform: Some(platform),
        };
        Ok(self.meta.catalog_visible(&scope, last, n).await?)
    }

    /// The referrers of `digest` as an OCI image index (JSON bytes).
    pub async fn referrers(
        &self,
        repo: &RepoName,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<u8>> {
        let rows = self.meta.referrers(repo, digest, artifact_type).await?;
        let manifests: Vec<Value> = rows
            .into_iter()
            .map(|r| {
                let mut d = Map::new();
                d.insert("mediaType".into(), json!(r.media_type));
                d.insert("digest".into(), json!(r.digest.as_str()));
                d.insert("size".into(), json!(r.size));
                if let Some(t) = r.artifact_type {
                    d.insert("artifactType".into(), json!(t));
                }
                if let Some(a) = r
                    .annotations
                    .and_then(|a| serde_json::from_str::<Value>(&a).ok())
                {
                    d.insert("annotations".into(), a);
                }
                Value::Object(d)
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_INDEX,
            "manifests": manifests,
        });
        Ok(index.to_string().into_bytes())
    }
}

/// Resolve an HTTP byte range against a blob of `total` bytes into an
/// inclusive `(start, end)`.
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

fn resolve_range((start, end): (Option<u64>, Option<u64>), total: u64) -> Result<(u64, u64)> {
    let unsatisfiable = RegistryError::RangeNotSatisfiable { size: total };
    let (s, e) = match (start, end) {
        (Some(s), Some(e)) if s <= e => (s, e.min(total.saturating_sub(1))),
        (Some(s), None) => (s, total.saturating_sub(1)),
        (None, Some(n)) if n > 0 => (total.saturating_sub(n), total.saturating_sub(1)),
        _ => return Err(unsatisfiable),
    };
    if total == 0 || s >= total {
        return Err(unsatisfiable);
    }
    Ok((s, e))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(resolve_range((Some(0), Some(9)), 100).ok(), Some((0, 9)));
        assert_eq!(
            resolve_range((Some(90), Some(200)), 100).ok(),
            Some((90, 99))
        );
        assert_eq!(resolve_range((Some(10), None), 100).ok(), Some((10, 99)));
        assert_eq!(resolve_range((None, Some(10)), 100).ok(), Some((90, 99)));
        assert_eq!(resolve_range((None, Some(500)), 100).ok(), Some((0, 99)));
        assert!(resolve_range((Some(100), None), 100).is_err());
        assert!(resolve_range((Some(5), Some(4)), 100).is_err());
        assert!(resolve_range((None, Some(0)), 100).is_err());
        assert!(resolve_range((Some(0), None), 0).is_err());
    }
}
