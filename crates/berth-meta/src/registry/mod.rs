//! The registry's contract ([`MetaStore`]): repositories, blob links,
//! manifests and their references, tags, upload sessions and pull
//! counters. A manifest push (manifest, references, tags, tag evictions,
//! and the jobs it triggers) is one transaction.

use std::fmt::Debug;

use async_trait::async_trait;
use berth_oci::{Digest, RepoName, Tag};

use crate::changes::ChangeFeed;
use crate::error::MetaResult;
use crate::events::NewEvent;
use crate::gc::UploadPin;
use crate::platform::{NewJob, NewSyncRecord};

/// A stored manifest.
#[derive(Debug, Clone)]
pub struct ManifestRecord {
    /// Digest of the exact bytes.
    pub digest: Digest,
    /// Media type it was pushed with.
    pub media_type: String,
    /// The exact bytes as pushed.
    pub content: Vec<u8>,
    /// Digest of the manifest it refers to, if any.
    pub subject: Option<Digest>,
}

/// A manifest to store, with what it references.
#[derive(Debug, Clone)]
pub struct NewManifest {
    /// Repository.
    pub repo: RepoName,
    /// Digest of the bytes.
    pub digest: Digest,
    /// Effective media type.
    pub media_type: String,
    /// The exact bytes.
    pub content: Vec<u8>,
    /// Blobs (config, layers) that must be linked in the repository.
    pub blobs: Vec<Digest>,
    /// Child manifests that must exist in the repository.
    pub children: Vec<Digest>,
    /// The sizes the manifest's descriptors declare, checked against the
    /// stored blobs and child manifests.
    pub declared_sizes: Vec<DeclaredSize>,
    /// The manifest this one refers to.
    pub subject: Option<Digest>,
    /// Artifact type for the referrers API.
    pub artifact_type: Option<String>,
    /// Top-level annotations, as JSON text.
    pub annotations: Option<String>,
    /// Tags to point at this manifest.
    pub tags: Vec<Tag>,
    /// The tag limit of the repository, if any.
    pub tag_limit: Option<TagLimit>,
    /// Patterns of tags that may not move once they exist (nor be evicted).
    pub immutable: Vec<String>,
    /// Who pushes (for the audit log: the push itself, evicted tags).
    pub actor: String,
    /// From where, for the audit log.
    pub client_addr: Option<String>,
    /// Push time, Unix milliseconds.
    pub now: i64,
    /// A pull-through cache's copy: its blobs and child manifests arrive
    /// later, when clients ask for them, so their presence is not checked.
    pub cached: bool,
    /// Jobs the push triggers (replication to other regions), queued in
    /// its transaction.
    pub jobs: Vec<NewJob>,
    /// Synchronizations the push triggers, recorded and queued in its
    /// transaction.
    pub syncs: Vec<NewSyncRecord>,
    /// Events the push causes, delivered to subscribed webhooks (queued in
    /// its transaction).
    pub events: Vec<NewEvent>,
}

/// A size a manifest's descriptor declares for a blob or child manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredSize {
    /// Which descriptor (`config`, `layers[2]`, `manifests[0]`).
    pub what: String,
    /// What it points at.
    pub digest: Digest,
    /// The size it declares.
    pub size: i64,
    /// A child manifest (else a blob).
    pub manifest: bool,
}

/// How many tags a repository may hold, and the service layer's rule for
/// which tags make room: the store runs it inside the push's transaction,
/// over the repository's tags as they are there, and deletes and audits
/// what it picks.
#[derive(Debug, Clone, Copy)]
pub struct TagLimit {
    /// Most tags per repository.
    pub max: i64,
    /// Picks the tags to evict (names), or `None` when too few may go.
    pub evict: fn(&Eviction<'_>) -> Option<Vec<String>>,
    /// The audit entry's detail of one eviction.
    pub audit_detail: fn(&EvictedTag<'_>) -> String,
    /// Passed to `evict` (for instance, when a tag counts as idle).
    pub idle_before: i64,
}

/// What [`TagLimit::evict`] decides on.
#[derive(Debug)]
pub struct Eviction<'a> {
    /// The repository's tags: name, digest, pushed at, last pulled at.
    pub tags: &'a [(String, String, i64, Option<i64>)],
    /// How many must go.
    pub needed: usize,
    /// The tags being pushed.
    pub pushing: &'a [Tag],
    /// The namespace's immutable tag patterns.
    pub immutable: &'a [String],
    /// The limit's `idle_before`.
    pub idle_before: i64,
}

/// One eviction, for its audit entry.
#[derive(Debug)]
pub struct EvictedTag<'a> {
    /// The limit.
    pub max: i64,
    /// The tag.
    pub tag: &'a str,
    /// The digest it pointed at.
    pub digest: &'a str,
    /// Whether its image went with it.
    pub image_deleted: bool,
}

/// Why a manifest could not be stored.
#[derive(Debug)]
pub enum PutManifestOutcome {
    /// Stored (or already present) and tagged; idle tags evicted to make
    /// room are listed as (tag, digest, whether its image went with it).
    Stored(Vec<(String, String, bool)>),
    /// The tag limit would be exceeded and not enough tags are idle.
    TagLimit(i64),
    /// Referenced blobs are not in the repository.
    MissingBlobs(Vec<Digest>),
    /// Referenced child manifests are not in the repository.
    MissingManifests(Vec<Digest>),
    /// A descriptor's size differs from the stored content's.
    SizeMismatch {
        /// The descriptor and what it declares.
        declared: DeclaredSize,
        /// The stored content's size.
        stored: i64,
    },
    /// The tag exists, points elsewhere and matches this immutable pattern.
    Immutable {
        /// The tag.
        tag: String,
        /// The pattern it matches.
        pattern: String,
    },
}

/// What linking a blob into a repository did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Linked (or already linked).
    Linked,
    /// The garbage collector is deleting a blob with this digest.
    Collecting,
    /// The namespace's storage quota would be exceeded.
    OverQuota {
        /// Bytes the namespace uses now.
        used: i64,
    },
    /// The storage quota of the namespace's project group would be
    /// exceeded.
    OverGroupQuota {
        /// The group.
        group: String,
        /// Bytes the group's namespaces use now.
        used: i64,
        /// The group's quota.
        quota: i64,
    },
}

/// A namespace's policies as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRecord {
    /// Patterns of tags that cannot be overwritten or deleted.
    pub immutable_tags: Vec<String>,
    /// Most bytes of distinct blobs the namespace may hold.
    pub quota_bytes: Option<i64>,
    /// Retention rules, as JSON text (the services layer owns their shape).
    pub retention: String,
    /// Whether Berth attaches each image's SBOM as a referrer.
    pub attach_sbom: bool,
}

/// A tag with what retention decides by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFacts {
    /// Repository.
    pub repo: String,
    /// Tag.
    pub tag: String,
    /// Manifest digest.
    pub digest: String,
    /// Last push, Unix milliseconds.
    pub pushed_at: i64,
    /// Last pull, Unix milliseconds.
    pub last_pulled_at: Option<i64>,
}

/// One manifest in a referrers listing.
#[derive(Debug, Clone)]
pub struct Referrer {
    /// Digest of the referring manifest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: i64,
    /// Its artifact type.
    pub artifact_type: Option<String>,
    /// Its annotations as JSON text.
    pub annotations: Option<String>,
}

/// An upload session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// Session id (also the storage key).
    pub id: String,
    /// Repository it uploads into.
    pub repo: String,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last activity, Unix milliseconds.
    pub updated_at: i64,
}

/// Pulls of one manifest (and possibly one tag) to add to the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullIncrement {
    /// Repository.
    pub repo: String,
    /// Manifest digest pulled.
    pub digest: String,
    /// Tag it was pulled by, if any.
    pub tag: Option<String>,
    /// Number of pulls.
    pub count: i64,
    /// Time of the latest pull, Unix milliseconds.
    pub last: i64,
}

/// Pull statistics of a tag or manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullStats {
    /// When it was pushed, Unix milliseconds.
    pub pushed_at: i64,
    /// How often it was pulled.
    pub pull_count: i64,
    /// When it was last pulled, Unix milliseconds.
    pub last_pulled_at: Option<i64>,
}

/// Whose catalog: the repositories a caller may pull are those of public
/// namespaces and the platform namespace, plus, for an account, those of
/// namespaces it is a member of (by project group or namespace role) and
/// those it holds a permission on, and for a registry user those of
/// namespaces it holds a grant on. Platform administrators see all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogScope<'a> {
    /// Everything.
    pub all: bool,
    /// An account's id.
    pub account: Option<i64>,
    /// A registry user's id.
    pub registry_user: Option<i64>,
    /// The platform namespace's name.
    pub platform: Option<&'a str>,
}

/// The metadata store contract, implemented by each database backend
/// (what images hold and what advisories say of them come with it).
#[async_trait]
pub trait MetaStore: crate::vulnerability::VulnerabilityStore + Send + Sync + Debug {
    /// Whether the database answers.
    async fn ping(&self) -> MetaResult<()>;
    /// The schema version the database is at: its latest applied migration.
    async fn schema_version(&self) -> MetaResult<i64>;
    /// Subscribe to the change feed (what in-memory read caches must drop).
    fn change_feed(&self) -> Box<dyn ChangeFeed>;

    /// Size of a blob linked in `repo`.
    async fn repo_blob_size(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Option<i64>>;
    /// Size of a blob known anywhere in the registry.
    async fn blob_size(&self, digest: &Digest) -> MetaResult<Option<i64>>;
    /// Record a stored blob and link it into `repo` (creating the
    /// repository). Links nothing while the garbage collector is deleting a
    /// blob with this digest, or when the blob is new to the namespace and
    /// would take it past `quota` bytes. `upload`, the session the blob was
    /// uploaded in, is forgotten in the same transaction, unless the blob
    /// is being collected (one commit, not two, at the end of every push).
    async fn link_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: i64,
        now: i64,
        quota: Option<i64>,
        upload: Option<&str>,
    ) -> MetaResult<LinkOutcome>;
    /// Bytes of the distinct blobs linked in a namespace's repositories.
    async fn namespace_usage(&self, namespace: &str) -> MetaResult<i64>;
    /// A namespace's policies (empty when none were set).
    async fn namespace_policy(&self, namespace: &str) -> MetaResult<PolicyRecord>;
    /// Replace a namespace's policies. Returns false for an unknown namespace.
    async fn set_namespace_policy(
        &self,
        namespace: &str,
        policy: &PolicyRecord,
        now: i64,
    ) -> MetaResult<bool>;
    /// Namespaces that have retention rules.
    async fn retention_namespaces(&self) -> MetaResult<Vec<String>>;
    /// Every tag of a namespace's repositories.
    async fn namespace_tags(&self, namespace: &str) -> MetaResult<Vec<TagFacts>>;
    /// Tags pointing at a manifest.
    async fn manifest_tags(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Vec<String>>;
    /// Indexes of `repo` that list `digest` as a child (at most 16).
    async fn manifest_parents(&self, repo: &RepoName, digest: &Digest) -> MetaResult<Vec<Digest>>;
    /// Repositories a blob is linked in, by name, at most `limit`.
    async fn blob_repositories(&self, digest: &Digest, limit: i64) -> MetaResult<Vec<String>>;
    /// Remove a blob's link from `repo`. Returns whether it was linked.
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> MetaResult<bool>;

    /// Record a new upload session.
    async fn create_upload(&self, upload: &UploadRecord) -> MetaResult<()>;
    /// Look up an upload session.
    async fn get_upload(&self, id: &str) -> MetaResult<Option<UploadRecord>>;
    /// Mark activity on an upload session.
    async fn touch_upload(&self, id: &str, now: i64) -> MetaResult<()>;
    /// Forget an upload session. Returns whether it existed.
    async fn delete_upload(&self, id: &str) -> MetaResult<bool>;
    /// The blob storage's saved state of an upload session with its
    /// version, or `None` when there is no such session.
    async fn upload_state(&self, id: &str) -> MetaResult<Option<(i64, Option<String>)>>;
    /// Save the blob storage's state of an upload session if its version is
    /// still `version` (bumping it). Returns false when it is not, or when
    /// the session is gone.
    async fn save_upload_state(&self, id: &str, version: i64, state: &str) -> MetaResult<bool>;
    /// Pin the digest an upload session is about to commit, so the garbage
    /// collector leaves a blob with that digest alone while the session
    /// lives.
    async fn pin_upload(&self, id: &str, digest: &Digest) -> MetaResult<UploadPin>;
    /// Take (or renew) the lease `name` for `owner` until `until`, unless
    /// another owner holds it past `now`. Returns whether `owner` holds it.
    async fn try_lease(&self, name: &str, owner: &str, now: i64, until: i64) -> MetaResult<bool>;
    /// Give up the lease `name` if `owner` holds it.
    async fn release_lease(&self, name: &str, owner: &str) -> MetaResult<()>;
    /// Number of upload sessions in progress.
    async fn upload_count(&self) -> MetaResult<i64>;
    /// Upload sessions idle since before `before`.
    async fn idle_uploads(&self, before: i64) -> MetaResult<Vec<String>>;

    /// Store a manifest, its references and its tags in one transaction,
    /// after checking that everything it references is in the repository.
    async fn put_manifest(&self, manifest: &NewManifest) -> MetaResult<PutManifestOutcome>;
    /// A manifest by digest.
    async fn manifest_by_digest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<ManifestRecord>>;
    /// The manifest a tag points at.
    async fn manifest_by_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> MetaResult<Option<ManifestRecord>>;
    /// Delete a manifest and the tags pointing at it. Returns whether it existed.
    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> MetaResult<bool>;
    /// Delete a tag only. Returns whether it existed.
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> MetaResult<bool>;
    /// Whether the repository exists.
    async fn repository_exists(&self, repo: &RepoName) -> MetaResult<bool>;
    /// Tags in lexical order after `last`, at most `limit`; `None` for an unknown repository.
    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: i64,
    ) -> MetaResult<Option<Vec<String>>>;
    /// Repository names in lexical order after `last`, at most `limit`.
    async fn catalog(&self, last: Option<&str>, limit: i64) -> MetaResult<Vec<String>>;
    /// The names of [`MetaStore::catalog`] that `scope` may pull, chosen
    /// by the database (a caller who sees little costs little).
    async fn catalog_visible(
        &self,
        scope: &CatalogScope<'_>,
        last: Option<&str>,
        limit: i64,
    ) -> MetaResult<Vec<String>>;
    /// Manifests in `repo` whose subject is `digest`, optionally of one artifact type.
    async fn referrers(
        &self,
        repo: &RepoName,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> MetaResult<Vec<Referrer>>;

    /// Add batched pull counts.
    async fn record_pulls(&self, pulls: &[PullIncrement]) -> MetaResult<()>;
    /// Pull statistics of a tag.
    async fn tag_stats(&self, repo: &RepoName, tag: &Tag) -> MetaResult<Option<PullStats>>;
    /// Pull statistics of a manifest.
    async fn manifest_stats(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> MetaResult<Option<PullStats>>;
}
