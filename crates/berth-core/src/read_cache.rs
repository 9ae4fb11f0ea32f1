//! The read cache: what a hot read needs, kept in this node's memory so
//! that a manifest GET or HEAD, a tag list or an access check does not ask
//! the database: tag → manifest, digest → manifest, a repository's tag
//! list, which blobs it links (with their sizes, for blob HEAD and GET), a
//! namespace's record, and a caller's access facts on a repository.
//!
//! Never stale beyond the change feed's delay. Every change such an entry
//! depends on is announced by database triggers ([`berth_meta::changes`]);
//! [`ReadCache::follow`] drops the entries a change touches as its
//! announcement arrives (PostgreSQL: at commit; SQLite: within 100 ms), and
//! this node's own writes drop theirs as they commit, so a client reads its
//! own writes at once. While the feed is down, the cache is off and empty.
//!
//! A read that missed takes a [`Ticket`] before asking the database and
//! stores what it got only if nothing was dropped meanwhile: a read that
//! raced with a change cannot put the old value back.
//!
//! Bounded by a memory budget (entries are weighed by their bytes); past
//! it, entries not used since the last sweep go first (a clock sweep).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_meta::changes::{Change, ChangeFeed};
use berth_meta::{ManifestRecord, Namespace};

use crate::access::{Facts, Principal};

/// Who a cached access fact is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactsKey {
    /// Anyone without credentials.
    Anonymous,
    /// A console account.
    Account(i64),
    /// A registry user.
    RegistryUser(i64),
}

impl FactsKey {
    /// The key of a principal whose facts are worth caching.
    pub fn of(principal: &Principal) -> Option<FactsKey> {
        match principal {
            Principal::Anonymous => Some(FactsKey::Anonymous),
            Principal::Account { id, .. } => Some(FactsKey::Account(*id)),
            Principal::RegistryUser { id, .. } => Some(FactsKey::RegistryUser(*id)),
            Principal::System => None,
        }
    }
}

/// Another in-memory cache that follows the same change feed (the pull
/// policies' verdicts): told each change, and when the feed connects or
/// breaks, so that one subscription serves every cache of a node.
pub trait ChangeListener: Send + Sync + std::fmt::Debug {
    /// A change was announced.
    fn changed(&self, change: &Change);
    /// The feed connected (`true`: caching may start) or broke (`false`:
    /// drop everything and hold nothing until it is back).
    fn connected(&self, on: bool);
}

/// The cache's generation when a read began (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    /// Reads answered from memory.
    pub hits: u64,
    /// Reads that went to the database.
    pub misses: u64,
    /// Times the change feed was lost (and the cache dropped).
    pub feed_losses: u64,
    /// Bytes held (by the entries' weights).
    pub bytes: u64,
    /// Whether the cache is on (its change feed is connected).
    pub enabled: bool,
}

/// Tag lists longer than this are not cached.
pub const MAX_CACHED_TAGS: usize = 1000;

/// Fixed cost per entry (keys, map slots, `Arc` headers).
const ENTRY: usize = 96;

#[derive(Debug, Default)]
struct RepoEntry {
    tags: HashMap<Box<str>, Arc<ManifestRecord>>,
    digests: HashMap<Box<str>, Arc<ManifestRecord>>,
    tag_list: Option<Arc<Vec<String>>>,
    /// Blobs the repository links, with their sizes.
    blobs: HashMap<Box<str>, u64>,
    bytes: usize,
    used: bool,
}

#[derive(Debug, Default)]
struct Inner {
    enabled: bool,
    bytes: usize,
    repos: HashMap<Box<str>, RepoEntry>,
    namespaces: HashMap<Box<str>, Arc<Namespace>>,
    facts: HashMap<FactsKey, HashMap<Box<str>, Facts>>,
    /// Bytes of `namespaces` and `facts`.
    access_bytes: usize,
}

/// See the module docs.
#[derive(Debug)]
pub struct ReadCache {
    inner: Mutex<Inner>,
    budget: usize,
    /// Bumped (under the lock) whenever anything is dropped.
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    feed_losses: AtomicU64,
    listeners: Mutex<Vec<Arc<dyn ChangeListener>>>,
}

impl Default for ReadCache {
    /// A cache that never holds anything.
    fn default() -> Self {
        ReadCache::new(0)
    }
}

impl ReadCache {
    /// A cache of at most `budget` bytes. It stays off until
    /// [`follow`](Self::follow) has connected its change feed.
    pub fn new(budget: usize) -> Self {
        ReadCache {
            inner: Mutex::new(Inner::default()),
            budget,
            generation: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            feed_losses: AtomicU64::new(0),
            listeners: Mutex::new(Vec::new()),
        }
    }

    /// Tell `listener` what this cache's change feed announces.
    pub fn listen(&self, listener: Arc<dyn ChangeListener>) {
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(listener);
    }

    fn listeners(&self) -> Vec<Arc<dyn ChangeListener>> {
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Take before reading the database what is to be stored here.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    /// The lock, if `ticket` is still current and the cache is on.
    fn lock_for_insert(&self, ticket: Ticket) -> Option<MutexGuard<'_, Inner>> {
        if self.budget == 0 {
            return None;
        }
        let inner = self.lock();
        (inner.enabled && self.generation.load(Ordering::Acquire) == ticket.0).then_some(inner)
    }

    /// The manifest `tag` points at in `repo`.
    pub fn manifest_by_tag(&self, repo: &str, tag: &str) -> Option<Arc<ManifestRecord>> {
        let mut inner = self.lock();
        let found = inner.repos.get_mut(repo).and_then(|r| {
            r.used = true;
            r.tags.get(tag).cloned()
        });
        drop(inner);
        self.count(found.is_some());
        found
    }

    /// The manifest with `digest` in `repo`.
    pub fn manifest_by_digest(&self, repo: &str, digest: &str) -> Option<Arc<ManifestRecord>> {
        let mut inner = self.lock();
        let found = inner.repos.get_mut(repo).and_then(|r| {
            r.used = true;
            r.digests.get(digest).cloned()
        });
        drop(inner);
        self.count(found.is_some());
        found
    }

    /// Remember a manifest read from the database (by `tag`, if it was).
    pub fn put_manifest(
        &self,
        ticket: Ticket,
        repo: &str,
        tag: Option<&str>,
        manifest: Arc<ManifestRecord>,
    ) {
        let Some(mut inner) = self.lock_for_insert(ticket) else {
            return;
        };
        let inner = &mut *inner;
        let entry = repo_entry(&mut inner.repos, &mut inner.bytes, repo);
        let mut added = 0;
        if !entry.digests.contains_key(manifest.digest.as_str()) {
            added += ENTRY
                + manifest.content.len()
                + 2 * manifest.digest.as_str().len()
                + manifest.media_type.len();
            entry
                .digests
                .insert(manifest.digest.as_str().into(), manifest.clone());
        }
        if let Some(tag) = tag {
            if entry.tags.insert(tag.into(), manifest).is_none() {
                added += ENTRY + tag.len();
            }
        }
        entry.bytes += added;
        inner.bytes += added;
        self.trim(inner);
    }

    /// The size of a blob `repo` links.
    pub fn blob_size(&self, repo: &str, digest: &str) -> Option<u64> {
        let mut inner = self.lock();
        let found = inner.repos.get_mut(repo).and_then(|r| {
            r.used = true;
            r.blobs.get(digest).copied()
        });
        drop(inner);
        self.count(found.is_some());
        found
    }

    /// Remember that `repo` links a blob of `size` bytes.
    pub fn put_blob_size(&self, ticket: Ticket, repo: &str, digest: &str, size: u64) {
        let Some(mut inner) = self.lock_for_insert(ticket) else {
            return;
        };
        let inner = &mut *inner;
        let entry = repo_entry(&mut inner.repos, &mut inner.bytes, repo);
        if entry.blobs.insert(digest.into(), size).is_none() {
            let added = ENTRY + digest.len();
            entry.bytes += added;
            inner.bytes += added;
        }
        self.trim(inner);
    }

    /// A repository's whole tag list, in order.
    pub fn tag_list(&self, repo: &str) -> Option<Arc<Vec<String>>> {
        let mut inner = self.lock();
        let found = inner.repos.get_mut(repo).and_then(|r| {
            r.used = true;
            r.tag_list.clone()
        });
        drop(inner);
        self.count(found.is_some());
        found
    }

    /// Remember a repository's whole tag list (at most [`MAX_CACHED_TAGS`]).
    pub fn put_tag_list(&self, ticket: Ticket, repo: &str, tags: Arc<Vec<String>>) {
        if tags.len() > MAX_CACHED_TAGS {
            return;
        }
        let Some(mut inner) = self.lock_for_insert(ticket) else {
            return;
        };
        let inner = &mut *inner;
        let entry = repo_entry(&mut inner.repos, &mut inner.bytes, repo);
        let weight = |l: &Vec<String>| ENTRY + l.iter().map(|t| t.len() + 24).sum::<usize>();
        let old = entry.tag_list.as_deref().map_or(0, weight);
        let new = weight(&tags);
        entry.tag_list = Some(tags);
        entry.bytes = entry.bytes + new - old;
        inner.bytes = inner.bytes + new - old;
        self.trim(inner);
    }

    /// A namespace's record, as access checks use it.
    pub fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        let found = self.lock().namespaces.get(name).cloned();
        self.count(found.is_some());
        found
    }

    /// Remember a namespace's record.
    pub fn put_namespace(&self, ticket: Ticket, namespace: Arc<Namespace>) {
        let Some(mut inner) = self.lock_for_insert(ticket) else {
            return;
        };
        let weight = ENTRY + 2 * namespace.name.len() + 128 + namespace.labels.len();
        let inner = &mut *inner;
        if inner
            .namespaces
            .insert(namespace.name.as_str().into(), namespace)
            .is_none()
        {
            inner.access_bytes += weight;
            inner.bytes += weight;
        }
        self.trim(inner);
    }

    /// What is known about `who` and `repo` for access decisions.
    pub fn facts(&self, who: FactsKey, repo: &str) -> Option<Facts> {
        let found = self
            .lock()
            .facts
            .get(&who)
            .and_then(|m| m.get(repo))
            .cloned();
        self.count(found.is_some());
        found
    }

    /// Remember access facts.
    pub fn put_facts(&self, ticket: Ticket, who: FactsKey, repo: &str, facts: Facts) {
        let Some(mut inner) = self.lock_for_insert(ticket) else {
            return;
        };
        let inner = &mut *inner;
        if inner
            .facts
            .entry(who)
            .or_default()
            .insert(repo.into(), facts)
            .is_none()
        {
            let weight = ENTRY + repo.len() + 64;
            inner.access_bytes += weight;
            inner.bytes += weight;
        }
        self.trim(inner);
    }

    /// Drop what is held about a repository (its tags or manifests
    /// changed), here and in the listeners.
    pub fn forget_repository(&self, repo: &str) {
        {
            let mut inner = self.lock();
            self.generation.fetch_add(1, Ordering::AcqRel);
            if let Some(entry) = inner.repos.remove(repo) {
                inner.bytes -= entry.bytes;
            }
        }
        let listeners = self.listeners();
        if !listeners.is_empty() {
            let change = Change::Repository(repo.to_owned());
            for l in listeners {
                l.changed(&change);
            }
        }
    }

    /// Drop every namespace record and access fact (namespaces, roles,
    /// permissions or grants changed).
    pub fn forget_access(&self) {
        let mut inner = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        forget_access(&mut inner);
    }

    /// Drop everything.
    pub fn clear(&self) {
        let mut inner = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        clear(&mut inner);
    }

    fn set_enabled(&self, enabled: bool) {
        let mut inner = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        clear(&mut inner);
        inner.enabled = enabled;
    }

    /// Counters for metrics.
    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            feed_losses: self.feed_losses.load(Ordering::Relaxed),
            bytes: inner.bytes as u64,
            enabled: inner.enabled,
        }
    }

    /// Past the budget: a clock sweep over repositories (those unused since
    /// the last sweep go), then access facts, then whatever it takes.
    fn trim(&self, inner: &mut Inner) {
        if inner.bytes <= self.budget {
            return;
        }
        let mut freed = 0;
        inner.repos.retain(|_, r| {
            let keep = std::mem::take(&mut r.used);
            if !keep {
                freed += r.bytes;
            }
            keep
        });
        inner.bytes -= freed;
        if inner.bytes > self.budget {
            forget_access(inner);
        }
        let target = self.budget / 4 * 3;
        while inner.bytes > target {
            let Some(name) = inner.repos.keys().next().cloned() else {
                break;
            };
            if let Some(entry) = inner.repos.remove(&name) {
                inner.bytes -= entry.bytes;
            }
        }
        // Dropping entries needs no new generation: nothing stale stays.
    }

    /// Follow the change feed for as long as the process lives: drop what
    /// each announced change touches; while the feed is broken, keep the
    /// cache off and empty, and try again every second.
    pub async fn follow(&self, mut feed: Box<dyn ChangeFeed>) {
        let mut connected = false;
        loop {
            match feed.next().await {
                Ok(changes) => {
                    if !connected {
                        connected = true;
                        self.set_enabled(true);
                        for l in self.listeners() {
                            l.connected(true);
                        }
                        if self.feed_losses.load(Ordering::Relaxed) > 0 {
                            tracing::info!("change feed is back: the read cache is on again");
                        }
                    }
                    for change in changes {
                        match &change {
                            Change::Repository(repo) => self.forget_repository(repo),
                            Change::Access => self.forget_access(),
                            Change::PullPolicy | Change::Findings(_) => {
                                for l in self.listeners() {
                                    l.changed(&change);
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    if connected {
                        self.feed_losses.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "change feed lost: the read cache is off until it is back");
                    }
                    connected = false;
                    self.set_enabled(false);
                    for l in self.listeners() {
                        l.connected(false);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

fn repo_entry<'a>(
    repos: &'a mut HashMap<Box<str>, RepoEntry>,
    bytes: &mut usize,
    repo: &str,
) -> &'a mut RepoEntry {
    if !repos.contains_key(repo) {
        let weight = ENTRY + 2 * repo.len();
        *bytes += weight;
        repos.insert(
            repo.into(),
            RepoEntry {
                bytes: weight,
                used: true,
                ..RepoEntry::default()
            },
        );
    }
    repos.get_mut(repo).expect("inserted above")
}

fn forget_access(inner: &mut Inner) {
    inner.namespaces.clear();
    inner.facts.clear();
    inner.bytes -= inner.access_bytes;
    inner.access_bytes = 0;
}

fn clear(inner: &mut Inner) {
    inner.repos.clear();
    inner.namespaces.clear();
    inner.facts.clear();
    inner.bytes = 0;
    inner.access_bytes = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::Digest;

    fn manifest(n: u8, size: usize) -> Arc<ManifestRecord> {
        let content = vec![n; size];
        Arc::new(ManifestRecord {
            digest: Digest::of_bytes(berth_oci::Algorithm::Sha256, &content),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content,
            subject: None,
        })
    }

    fn on(budget: usize) -> ReadCache {
        let cache = ReadCache::new(budget);
        cache.set_enabled(true);
        cache
    }

    #[test]
    fn off_until_enabled() {
        let cache = ReadCache::new(1 << 20);
        let t = cache.ticket();
        cache.put_manifest(t, "a/b", Some("1"), manifest(1, 10));
        assert!(cache.manifest_by_tag("a/b", "1").is_none());
        cache.set_enabled(true);
        let t = cache.ticket();
        cache.put_manifest(t, "a/b", Some("1"), manifest(1, 10));
        assert!(cache.manifest_by_tag("a/b", "1").is_some());
        cache.set_enabled(false);
        assert!(cache.manifest_by_tag("a/b", "1").is_none());
    }

    #[test]
    fn a_read_that_raced_with_a_change_is_not_stored() {
        let cache = on(1 << 20);
        let t = cache.ticket();
        // The change lands while the read is in the database.
        cache.forget_repository("a/b");
        cache.put_manifest(t, "a/b", Some("1"), manifest(1, 10));
        assert!(cache.manifest_by_tag("a/b", "1").is_none());
        let t = cache.ticket();
        cache.forget_access();
        cache.put_facts(t, FactsKey::Anonymous, "a/b", Facts::default());
        assert!(cache.facts(FactsKey::Anonymous, "a/b").is_none());
    }

    #[test]
    fn blob_links_are_kept_per_repository() {
        let cache = on(1 << 20);
        let d = "sha256:0123";
        cache.put_blob_size(cache.ticket(), "a/b", d, 42);
        assert_eq!(cache.blob_size("a/b", d), Some(42));
        assert_eq!(cache.blob_size("a/c", d), None, "linked in a/b only");
        cache.forget_repository("a/b");
        assert_eq!(cache.blob_size("a/b", d), None);
        let t = cache.ticket();
        cache.forget_repository("a/b");
        cache.put_blob_size(t, "a/b", d, 42);
        assert_eq!(cache.blob_size("a/b", d), None, "a raced read is not kept");
    }

    #[test]
    fn forgets_by_repository_and_access() {
        let cache = on(1 << 20);
        let m = manifest(1, 10);
        cache.put_manifest(cache.ticket(), "a/b", Some("1"), m.clone());
        cache.put_manifest(cache.ticket(), "a/c", Some("1"), manifest(2, 10));
        cache.put_facts(
            cache.ticket(),
            FactsKey::Account(3),
            "a/b",
            Facts::default(),
        );
        assert_eq!(
            cache
                .manifest_by_digest("a/b", m.digest.as_str())
                .unwrap()
                .digest,
            m.digest
        );
        cache.forget_repository("a/b");
        assert!(cache.manifest_by_tag("a/b", "1").is_none());
        assert!(cache.manifest_by_digest("a/b", m.digest.as_str()).is_none());
        assert!(cache.manifest_by_tag("a/c", "1").is_some());
        assert!(cache.facts(FactsKey::Account(3), "a/b").is_some());
        cache.forget_access();
        assert!(cache.facts(FactsKey::Account(3), "a/b").is_none());
        assert!(cache.manifest_by_tag("a/c", "1").is_some());
        let stats = cache.stats();
        assert!(stats.hits >= 3 && stats.misses >= 3, "{stats:?}");
    }

    #[test]
    fn stays_within_its_budget() {
        let budget = 64 * 1024;
        let cache = on(budget);
        for i in 0..200u32 {
            let repo = format!("ns/r{i}");
            cache.put_manifest(cache.ticket(), &repo, Some("t"), manifest(i as u8, 4096));
            // One hot repository, read all along.
            cache.put_manifest(cache.ticket(), "ns/hot", Some("t"), manifest(0, 4096));
            assert!(cache.manifest_by_tag("ns/hot", "t").is_some());
            assert!(cache.stats().bytes as usize <= budget);
        }
        let held = (0..200)
            .filter(|i| cache.manifest_by_tag(&format!("ns/r{i}"), "t").is_some())
            .count();
        assert!(held > 0 && held < 20, "{held} held");
    }

    #[test]
    fn tag_lists_over_the_limit_are_not_kept() {
        let cache = on(1 << 20);
        let long: Vec<String> = (0..=MAX_CACHED_TAGS).map(|i| i.to_string()).collect();
        cache.put_tag_list(cache.ticket(), "a/b", Arc::new(long));
        assert!(cache.tag_list("a/b").is_none());
        cache.put_tag_list(cache.ticket(), "a/b", Arc::new(vec!["1".into()]));
        assert_eq!(cache.tag_list("a/b").unwrap().len(), 1);
    }
}
