//! Blob reads (with on-demand fetches from other regions), unlinks,
//! mounts and links of blobs held here.

use berth_blob::ByteStream;
use berth_meta::LinkOutcome;
use berth_oci::{Digest, RepoName};

use tokio::sync::{mpsc, watch};

use super::region_copies::channel_stream;
use super::regions::Region;
use crate::clock::now_millis;
use crate::RegistryError;

use super::{group_quota_error, quota_error, Registry};

type Result<T> = std::result::Result<T, RegistryError>;

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

impl Registry {
    /// Size of a blob linked in `repo` (from the read cache when it holds
    /// the link: blob HEAD and GET then skip the database).
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<u64> {
        if let Some(size) = self.cache.blob_size(repo.as_str(), digest.as_str()) {
            return Ok(size);
        }
        let ticket = self.cache.ticket();
        match self.meta.repo_blob_size(repo, digest).await? {
            Some(size) => {
                let size = size as u64;
                self.cache
                    .put_blob_size(ticket, repo.as_str(), digest.as_str(), size);
                Ok(size)
            }
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
        let recorded = self.platform.blob_locations(digest.as_str()).await?;
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
    pub(super) async fn record_local(&self, digest: &Digest) -> Result<()> {
        if self.regions.is_multi() {
            self.platform
                .add_blob_location(digest.as_str(), &self.regions.local().name, now_millis())
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
        // This node reads its own delete at once (others when announced).
        self.cache.forget_repository(repo.as_str());
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
}

/// Resolve an HTTP byte range against a blob of `total` bytes into an
/// inclusive `(start, end)`.
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
