//! Batched pull counting: a pull is counted in memory and written to the
//! database in batches, so the pull path does no database write.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_meta::{MetaResult, MetaStore, PullIncrement};

/// `repository \n digest \n tag` (the tag empty for a pull by digest: tags
/// are never empty, and none of the three holds a line break).
type Key = Box<str>;

#[derive(Debug, Default)]
struct Pending {
    counts: HashMap<Key, (i64, i64)>,
    /// Where a key is put together to look it up: no allocation for a pull
    /// already pending.
    scratch: String,
}

/// Pending pull counts, keyed by repository, digest and tag.
#[derive(Debug, Default)]
pub struct PullCounter {
    pending: Mutex<Pending>,
}

fn split(key: &str) -> (String, String, Option<String>) {
    let mut parts = key.splitn(3, '\n');
    let repo = parts.next().unwrap_or_default().to_owned();
    let digest = parts.next().unwrap_or_default().to_owned();
    let tag = parts.next().filter(|t| !t.is_empty()).map(str::to_owned);
    (repo, digest, tag)
}

impl PullCounter {
    /// Count one pull.
    pub fn record(&self, repo: &str, digest: &str, tag: Option<&str>, now: i64) {
        let mut guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Pending { counts, scratch } = &mut *guard;
        scratch.clear();
        scratch.push_str(repo);
        scratch.push('\n');
        scratch.push_str(digest);
        scratch.push('\n');
        scratch.push_str(tag.unwrap_or(""));
        let entry = match counts.get_mut(scratch.as_str()) {
            Some(e) => e,
            None => counts.entry(scratch.as_str().into()).or_insert((0, now)),
        };
        entry.0 += 1;
        entry.1 = entry.1.max(now);
    }

    /// Number of distinct pending entries.
    pub fn pending(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts
            .len()
    }

    /// Write pending counts to the store; on failure they are kept for the
    /// next flush. Returns what was written.
    pub async fn flush(&self, meta: &dyn MetaStore) -> MetaResult<Vec<PullIncrement>> {
        let batch: Vec<(Key, (i64, i64))> = {
            let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            map.counts.drain().collect()
        };
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let increments: Vec<PullIncrement> = batch
            .iter()
            .map(|(key, (count, last))| {
                let (repo, digest, tag) = split(key);
                PullIncrement {
                    repo,
                    digest,
                    tag,
                    count: *count,
                    last: *last,
                }
            })
            .collect();
        match meta.record_pulls(&increments).await {
            Ok(()) => Ok(increments),
            Err(e) => {
                let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                for (key, (count, last)) in batch {
                    let entry = map.counts.entry(key).or_insert((0, last));
                    entry.0 += count;
                    entry.1 = entry.1.max(last);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{split, PullCounter};

    #[test]
    fn keys_split_back() {
        assert_eq!(
            split("a/b\nsha256:x\n"),
            ("a/b".into(), "sha256:x".into(), None)
        );
        assert_eq!(split("a/b\nsha256:x\nv1").2.as_deref(), Some("v1"));
    }

    #[test]
    fn one_entry_per_repository_digest_and_tag() {
        let c = PullCounter::default();
        c.record("a/b", "sha256:x", Some("1"), 5);
        c.record("a/b", "sha256:x", Some("1"), 7);
        c.record("a/b", "sha256:x", None, 7);
        assert_eq!(c.pending(), 2);
    }
}
