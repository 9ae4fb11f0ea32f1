//! This node's memory of pull-policy verdicts: the policies in force, and
//! per (repository, digest, policy) whether the image satisfied it and
//! why. Follows the change feed through the read cache: a repository's
//! change (a new or deleted signature is a tag or referrer change there)
//! drops its verdicts; a policy change drops all; while the feed is down
//! nothing is kept, so a verdict is never older than the feed's delay.
//! Verdicts also age out after [`VERDICT_TTL`]: certificates and Notation
//! signatures (and allowlisted advisories) expire with time alone, with no
//! change to announce it. Vulnerability verdicts are kept per (digest,
//! policy), the same in every repository, and dropped when the image's
//! inventory or findings change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_meta::changes::Change;

use super::signature_policy::SignaturePolicy;
use super::vulnerability_policy::VulnerabilityPolicy;
use crate::read_cache::ChangeListener;

/// Verdicts kept before the memory is cleared and starts again.
const MAX_VERDICTS: usize = 100_000;
/// How long a verdict is trusted without a change.
pub const VERDICT_TTL: Duration = Duration::from_secs(600);

/// Whether an image satisfied a policy: the signer, or why not.
pub type Outcome = Result<String, String>;

/// A repository's verdicts by (digest, policy id).
type RepoVerdicts = HashMap<(Box<str>, i64), (Outcome, Instant)>;

/// The pull policies in force, by kind.
#[derive(Debug, Default)]
pub struct Policies {
    /// Signature policies.
    pub signature: Vec<SignaturePolicy>,
    /// Vulnerability policies.
    pub vulnerability: Vec<VulnerabilityPolicy>,
}

#[derive(Debug, Default)]
struct Inner {
    enabled: bool,
    policies: Option<Arc<Policies>>,
    /// repository → (digest, policy id) → outcome (signature policies).
    repos: HashMap<Box<str>, RepoVerdicts>,
    /// digest → policy id → outcome (vulnerability policies).
    images: HashMap<Box<str>, HashMap<i64, (Outcome, Instant)>>,
    count: usize,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Verdicts {
    inner: Mutex<Inner>,
    /// Bumped whenever anything is dropped: a computation that began
    /// before keeps its result to itself.
    generation: AtomicU64,
}

/// The generation when a computation began.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl Verdicts {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take before reading what a verdict depends on.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    /// The policies in force, when known.
    pub fn policies(&self) -> Option<Arc<Policies>> {
        self.lock().policies.clone()
    }

    /// Remember the policies read under `ticket`.
    pub fn put_policies(&self, ticket: Ticket, policies: Arc<Policies>) {
        let mut inner = self.lock();
        if inner.enabled && self.generation.load(Ordering::Acquire) == ticket.0 {
            inner.policies = Some(policies);
        }
    }

    /// A remembered outcome.
    pub fn get(&self, repo: &str, digest: &str, policy: i64) -> Option<Outcome> {
        self.get_at(repo, digest, policy, Instant::now())
    }

    fn get_at(&self, repo: &str, digest: &str, policy: i64, now: Instant) -> Option<Outcome> {
        let inner = self.lock();
        let (outcome, at) = inner.repos.get(repo)?.get(&(Box::from(digest), policy))?;
        (now.saturating_duration_since(*at) < VERDICT_TTL).then(|| outcome.clone())
    }

    /// Remember an outcome computed under `ticket`.
    pub fn put(&self, ticket: Ticket, repo: &str, digest: &str, policy: i64, outcome: Outcome) {
        let mut inner = self.lock();
        if !inner.enabled || self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if inner.count >= MAX_VERDICTS {
            inner.repos.clear();
            inner.count = 0;
        }
        let previous = inner
            .repos
            .entry(repo.into())
            .or_default()
            .insert((digest.into(), policy), (outcome, Instant::now()));
        if previous.is_none() {
            inner.count += 1;
        }
    }

    /// A remembered outcome of an image (vulnerability policies).
    pub fn get_image(&self, digest: &str, policy: i64) -> Option<Outcome> {
        let inner = self.lock();
        let (outcome, at) = inner.images.get(digest)?.get(&policy)?;
        (at.elapsed() < VERDICT_TTL).then(|| outcome.clone())
    }

    /// Remember an image's outcome computed under `ticket`.
    pub fn put_image(&self, ticket: Ticket, digest: &str, policy: i64, outcome: Outcome) {
        let mut inner = self.lock();
        if !inner.enabled || self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if inner.count >= MAX_VERDICTS {
            inner.repos.clear();
            inner.images.clear();
            inner.count = 0;
        }
        let previous = inner
            .images
            .entry(digest.into())
            .or_default()
            .insert(policy, (outcome, Instant::now()));
        if previous.is_none() {
            inner.count += 1;
        }
    }

    /// Drop everything (a policy changed).
    pub fn clear(&self) {
        let mut inner = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        inner.policies = None;
        inner.repos.clear();
        inner.images.clear();
        inner.count = 0;
    }

    fn forget_image(&self, digest: &str) {
        let mut inner = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(gone) = inner.images.remove(digest) {
            inner.count -= gone.len();
        }
    }

    fn forget_repository(&self, repo: &str) {
        let mut inner = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(gone) = inner.repos.remove(repo) {
            inner.count -= gone.len();
        }
    }
}

impl ChangeListener for Verdicts {
    fn changed(&self, change: &Change) {
        match change {
            Change::Repository(repo) => self.forget_repository(repo),
            Change::PullPolicy => self.clear(),
            Change::Findings(digest) => self.forget_image(digest),
            Change::Access => {}
        }
    }

    fn connected(&self, on: bool) {
        self.clear();
        self.lock().enabled = on;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_feed_and_never_outlive_a_change() {
        let v = Verdicts::default();
        let t = v.ticket();
        v.put(t, "a/b", "sha256:1", 1, Ok("k".into()));
        assert_eq!(
            v.get("a/b", "sha256:1", 1),
            None,
            "off until the feed connects"
        );
        v.connected(true);
        let t = v.ticket();
        v.put(t, "a/b", "sha256:1", 1, Ok("k".into()));
        v.put(t, "a/c", "sha256:1", 1, Err("unsigned".into()));
        assert_eq!(v.get("a/b", "sha256:1", 1), Some(Ok("k".into())));
        assert_eq!(v.get("a/b", "sha256:1", 2), None);
        let later = Instant::now() + VERDICT_TTL;
        assert_eq!(v.get_at("a/b", "sha256:1", 1, later), None, "aged out");

        // A computation that raced with a change keeps its result.
        let stale = v.ticket();
        v.changed(&Change::Repository("a/b".into()));
        assert_eq!(v.get("a/b", "sha256:1", 1), None);
        assert!(
            v.get("a/c", "sha256:1", 1).is_some(),
            "other repositories stay"
        );
        v.put(stale, "a/b", "sha256:1", 1, Ok("old".into()));
        assert_eq!(v.get("a/b", "sha256:1", 1), None);

        // Vulnerability verdicts go with their image's findings.
        v.put_image(v.ticket(), "sha256:1", 7, Err("critical".into()));
        v.put_image(v.ticket(), "sha256:2", 7, Ok("clean".into()));
        assert!(v.get_image("sha256:1", 7).is_some());
        v.changed(&Change::Findings("sha256:1".into()));
        assert_eq!(v.get_image("sha256:1", 7), None);
        assert!(v.get_image("sha256:2", 7).is_some(), "other images stay");

        v.put_policies(v.ticket(), Arc::new(Policies::default()));
        assert!(v.policies().is_some());
        v.changed(&Change::PullPolicy);
        assert!(v.policies().is_none() && v.get("a/c", "sha256:1", 1).is_none());
        v.changed(&Change::Access);
        v.connected(false);
        let t = v.ticket();
        v.put(t, "a/b", "sha256:1", 1, Ok("k".into()));
        assert_eq!(
            v.get("a/b", "sha256:1", 1),
            None,
            "nothing kept while the feed is down"
        );
    }
}
