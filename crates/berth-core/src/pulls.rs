//! Batched pull counting: a pull is counted in memory and written to the
//! database in batches, so the pull path does no database write.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_meta::{MetaResult, MetaStore, PullIncrement};

type Key = (String, String, Option<String>);

/// Pending pull counts, keyed by repository, digest and tag.
#[derive(Debug, Default)]
pub struct PullCounter {
    pending: Mutex<HashMap<Key, (i64, i64)>>,
}

impl PullCounter {
    /// Count one pull.
    pub fn record(&self, repo: &str, digest: &str, tag: Option<&str>, now: i64) {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map
            .entry((repo.to_owned(), digest.to_owned(), tag.map(str::to_owned)))
            .or_insert((0, now));
        entry.0 += 1;
        entry.1 = entry.1.max(now);
    }

    /// Number of distinct pending entries.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Write pending counts to the store; on failure they are kept for the
    /// next flush. Returns what was written.
    pub async fn flush(&self, meta: &dyn MetaStore) -> MetaResult<Vec<PullIncrement>> {
        let batch: Vec<(Key, (i64, i64))> = {
            let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            map.drain().collect()
        };
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let increments: Vec<PullIncrement> = batch
            .iter()
            .map(|((repo, digest, tag), (count, last))| PullIncrement {
                repo: repo.clone(),
                digest: digest.clone(),
                tag: tag.clone(),
                count: *count,
                last: *last,
            })
            .collect();
        match meta.record_pulls(&increments).await {
            Ok(()) => Ok(increments),
            Err(e) => {
                let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                for (key, (count, last)) in batch {
                    let entry = map.entry(key).or_insert((0, last));
                    entry.0 += count;
                    entry.1 = entry.1.max(last);
                }
                Err(e)
            }
        }
    }
}
