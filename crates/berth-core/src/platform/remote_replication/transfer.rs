//! The copy engine between Berth and a remote registry, both ways, over
//! the one OCI client (`berth-client`). Manifests are copied recursively
//! (an index's children first, the manifest itself last); each blob is
//! skipped when the destination has it, mounted when the remote holds it
//! in a repository this node copied it to before, otherwise streamed (no
//! temporary file). Blobs larger than a chunk go in chunks, and an
//! interruption resumes at the offset the destination reached: within an
//! attempt while the remote comes back, and on the job's next attempt on
//! this node (see [`ResumePoints`]). Several blobs move at once.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_blob::ByteStream;
use berth_client::{ClientError, Manifest, Mount, RegistryClient, Upload};
use berth_oci::{Digest, ParsedManifest, Reference, RepoName, Tag};
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};

use crate::jobs::JobFailure;
use crate::platform::confirm::{remote_holds, ConfirmError, Holding};
use crate::registry::Chunk;
use crate::throttle::throttled;
use crate::{ManifestPush, Registry};

type Result<T> = std::result::Result<T, JobFailure>;

/// Blobs larger than this are pushed in chunks of this size.
pub(super) const PUSH_CHUNK: u64 = 16 << 20;
/// Pulled bytes are appended to the local upload in slices of this size,
/// so an interruption loses at most the bytes in flight.
const PULL_SLICE: usize = 4 << 20;
/// Blobs copied at once (one when the rule limits bandwidth, so that the
/// limit holds for the task).
const PARALLEL_BLOBS: usize = 3;
/// How long an attempt waits for a remote that stopped answering before
/// it fails (and the job retries with backoff).
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// Resume points kept per node.
const MAX_RESUME_POINTS: usize = 1024;

/// A client error as a job failure: retry when the remote may recover.
pub(super) fn client_failure(what: &str, e: ClientError) -> JobFailure {
    let message = format!("{what}: {e}");
    if e.is_transient() || matches!(e, ClientError::DigestMismatch { .. }) {
        JobFailure::retry(message)
    } else {
        JobFailure::permanent(message)
    }
}

#[derive(Debug, Clone)]
enum Resume {
    /// A chunked upload to the remote.
    Remote(Upload),
    /// An upload session of this registry being filled from the remote.
    Local(String),
}

/// Interrupted large-blob copies on this node, by remote, repository and
/// digest, so that the job's next attempt continues where they stopped.
/// Also where this node last put each blob on each remote (for mounts).
#[derive(Debug, Default)]
pub struct ResumePoints {
    resumes: Mutex<HashMap<String, Resume>>,
    placed: Mutex<HashMap<String, String>>,
}

impl ResumePoints {
    fn put(&self, key: String, r: Resume) {
        let mut m = self.resumes.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_RESUME_POINTS && !m.contains_key(&key) {
            m.clear();
        }
        m.insert(key, r);
    }

    fn take(&self, key: &str) -> Option<Resume> {
        self.resumes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
    }

    fn placed_in(&self, remote: &str, digest: &Digest) -> Option<String> {
        self.placed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&format!("{remote}|{digest}"))
            .cloned()
    }

    fn place(&self, remote: &str, digest: &Digest, repo: &str) {
        let mut m = self.placed.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_RESUME_POINTS {
            m.clear();
        }
        m.insert(format!("{remote}|{digest}"), repo.to_owned());
    }
}

/// What a task moved.
#[derive(Debug, Default)]
pub(super) struct Moved {
    /// Bytes sent or received.
    pub bytes: Arc<AtomicI64>,
    /// Blobs copied.
    pub copied: AtomicI64,
    /// Blobs the destination had (or mounted).
    pub present: AtomicI64,
}

/// Waits out a remote that stopped answering, up to [`STALL_LIMIT`]
/// without progress.
struct Patience {
    since: Option<Instant>,
    wait: Duration,
}

impl Patience {
    fn new() -> Self {
        Patience {
            since: None,
            wait: Duration::from_millis(500),
        }
    }

    fn progressed(&mut self) {
        self.since = None;
        self.wait = Duration::from_millis(500);
    }

    /// Wait before trying again, or fail with `why` when it has been too long.
    async fn wait(&mut self, why: impl FnOnce() -> String) -> Result<()> {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= STALL_LIMIT {
            return Err(JobFailure::retry(why()));
        }
        tokio::time::sleep(self.wait).await;
        self.wait = (self.wait * 2).min(Duration::from_secs(5));
        Ok(())
    }
}

/// One task's copy between this registry and a remote.
pub(super) struct Transfer<'a> {
    pub registry: &'a Registry,
    pub client: &'a RegistryClient,
    pub remote: &'a str,
    /// Bytes per second (0: no limit).
    pub rate: u64,
    /// Copy referrers of each copied manifest too.
    pub referrers: bool,
    pub resume: &'a ResumePoints,
    pub moved: Moved,
}

impl Transfer<'_> {
    fn parallel(&self) -> usize {
        if self.rate > 0 {
            1
        } else {
            PARALLEL_BLOBS
        }
    }

    /// A byte stream counted into `moved.bytes` and held to the rate.
    fn metered<S, E>(&self, body: S) -> ByteStream
    where
        S: futures_util::Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display,
    {
        let bytes = self.moved.bytes.clone();
        let counted = body
            .map(|r| r.map_err(|e| io::Error::other(e.to_string())))
            .inspect(move |r| {
                if let Ok(b) = r {
                    bytes.fetch_add(b.len() as i64, Ordering::Relaxed);
                }
            });
        if self.rate > 0 {
            Box::pin(throttled(counted, self.rate))
        } else {
            Box::pin(counted)
        }
    }

    fn key(&self, repo: &str, digest: &Digest) -> String {
        format!("{}|{repo}|{digest}", self.remote)
    }

    // ---- push: this registry to the remote ---------------------------------

    /// Copy `src@digest` (its children and blobs first) to `dst` on the
    /// remote, under `tag` or its digest.
    pub async fn push_image(
        &self,
        src: &RepoName,
        dst: &str,
        digest: &Digest,
        tag: Option<&Tag>,
        depth: usize,
    ) -> Result<()> {
        if depth > 4 {
            return Err(JobFailure::permanent("manifests nest too deeply"));
        }
        let meta = &self.registry.meta;
        let manifest = meta
            .manifest_by_digest(src, digest)
            .await?
            .ok_or_else(|| JobFailure::permanent(format!("{src}@{digest} no longer exists")))?;
        let parsed = ParsedManifest::parse(&manifest.content, Some(&manifest.media_type))
            .map_err(|e| JobFailure::permanent(format!("stored manifest {digest}: {e}")))?;
        for child in &parsed.manifests {
            let there = self
                .client
                .head_manifest(dst, child.digest.as_str())
                .await
                .map_err(|e| client_failure("checking the remote", e))?;
            if there.is_none() {
                Box::pin(self.push_image(src, dst, &child.digest, None, depth + 1)).await?;
            }
        }
        let mut blobs = Vec::new();
        for d in parsed
            .blob_references()
            .filter(|d| !d.is_non_distributable())
        {
            let size = meta.repo_blob_size(src, &d.digest).await?.ok_or_else(|| {
                JobFailure::permanent(format!("blob {} is not in {src}", d.digest))
            })?;
            if !blobs.iter().any(|(b, _)| b == &d.digest) {
                blobs.push((d.digest.clone(), size as u64));
            }
        }
        futures_util::stream::iter(blobs)
            .map(|(d, size)| async move { self.push_blob(src, dst, &d, size).await })
            .buffer_unordered(self.parallel())
            .try_collect::<Vec<()>>()
            .await?;
        let reference = tag.map_or_else(|| digest.to_string(), |t| t.to_string());
        self.client
            .put_manifest(
                dst,
                &reference,
                &manifest.media_type,
                Bytes::from(manifest.content),
            )
            .await
            .map_err(|e| client_failure(&format!("pushing manifest {digest}"), e))?;
        if self.referrers && depth < 4 {
            for r in self.registry.meta.referrers(src, digest, None).await? {
                let there = self
                    .client
                    .head_manifest(dst, r.digest.as_str())
                    .await
                    .map_err(|e| client_failure("checking the remote", e))?;
                if there.is_none() {
                    Box::pin(self.push_image(src, dst, &r.digest, None, depth + 1)).await?;
                }
            }
        }
        Ok(())
    }

    /// A local blob's bytes from `start` to `end` (inclusive).
    async fn local_range(
        &self,
        src: &RepoName,
        d: &Digest,
        start: u64,
        end: u64,
    ) -> Result<ByteStream> {
        let read = self
            .registry
            .open_blob(src, d, Some((Some(start), Some(end))), |_| 1 << 20)
            .await?;
        Ok(self.metered(read.body))
    }

    async fn push_blob(&self, src: &RepoName, dst: &str, d: &Digest, size: u64) -> Result<()> {
        let fail = |what: &str| {
            let what = format!("{what} blob {d}");
            move |e| client_failure(&what, e)
        };
        if self
            .client
            .blob_size(dst, d)
            .await
            .map_err(fail("checking"))?
            .is_some()
        {
            self.moved.present.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if let Some(from) = self.resume.placed_in(self.remote, d).filter(|f| f != dst) {
            if let Ok(Mount::Mounted) = self.client.mount(dst, d, &from).await {
                self.moved.present.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        if size <= PUSH_CHUNK {
            let mut patience = Patience::new();
            loop {
                let body = if size == 0 {
                    self.metered(futures_util::stream::empty::<
                        std::result::Result<Bytes, io::Error>,
                    >())
                } else {
                    self.local_range(src, d, 0, size - 1).await?
                };
                match self.client.push_blob(dst, d, size, body).await {
                    Ok(()) => break,
                    Err(e) if e.is_transient() => {
                        patience.wait(|| format!("pushing blob {d}: {e}")).await?
                    }
                    Err(e) => return Err(fail("pushing")(e)),
                }
            }
        } else {
            self.push_chunked(src, dst, d, size).await?;
        }
        self.resume.place(self.remote, d, dst);
        self.moved.copied.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Where an upload on the remote stands, waiting while the remote is
    /// unreachable; `None` when the session is gone.
    async fn remote_offset(
        &self,
        dst: &str,
        upload: &Upload,
        patience: &mut Patience,
    ) -> Result<Option<u64>> {
        loop {
            match self.client.upload_offset(dst, upload).await {
                Ok(offset) => return Ok(Some(offset)),
                Err(e) if e.is_transient() => {
                    patience
                        .wait(|| format!("the remote stopped answering: {e}"))
                        .await?
                }
                Err(_) => return Ok(None),
            }
        }
    }

    async fn push_chunked(&self, src: &RepoName, dst: &str, d: &Digest, size: u64) -> Result<()> {
        let key = self.key(dst, d);
        let mut patience = Patience::new();
        let start = |e| client_failure(&format!("starting the upload of blob {d}"), e);
        let (mut upload, mut offset) = match self.resume.take(&key) {
            Some(Resume::Remote(u)) => match self.remote_offset(dst, &u, &mut patience).await? {
                Some(offset) => (u, offset),
                None => (self.client.start_upload(dst).await.map_err(start)?, 0),
            },
            _ => (self.client.start_upload(dst).await.map_err(start)?, 0),
        };
        while offset < size {
            let len = PUSH_CHUNK.min(size - offset);
            let body = self.local_range(src, d, offset, offset + len - 1).await?;
            match self
                .client
                .upload_chunk(dst, &upload, offset, len, body)
                .await
            {
                Ok(next) => {
                    upload = next;
                    offset += len;
                    patience.progressed();
                    self.resume.put(key.clone(), Resume::Remote(upload.clone()));
                }
                Err(e) if e.is_transient() => {
                    self.resume.put(key.clone(), Resume::Remote(upload.clone()));
                    patience
                        .wait(|| format!("pushing blob {d} at byte {offset}: {e}"))
                        .await?;
                    match self.remote_offset(dst, &upload, &mut patience).await? {
                        Some(o) => offset = o,
                        // The remote dropped the session: start again.
                        None => {
                            upload = self.client.start_upload(dst).await.map_err(start)?;
                            offset = 0;
                        }
                    }
                }
                Err(e) => {
                    return Err(client_failure(
                        &format!("pushing blob {d} at byte {offset}"),
                        e,
                    ))
                }
            }
        }
        self.client
            .finish_upload(dst, &upload, d)
            .await
            .map_err(|e| client_failure(&format!("finishing blob {d}"), e))?;
        self.resume.take(&key);
        Ok(())
    }

    // ---- pull: the remote to this registry ---------------------------------

    /// Copy a manifest read from `src` on the remote (its children and
    /// blobs first) into `dst`, under `tag` or its digest.
    pub async fn pull_image(
        &self,
        src: &str,
        dst: &RepoName,
        manifest: Manifest,
        tag: Option<&Tag>,
        actor: &str,
        depth: usize,
    ) -> Result<()> {
        if depth > 4 {
            return Err(JobFailure::permanent("manifests nest too deeply"));
        }
        let parsed =
            ParsedManifest::parse(&manifest.bytes, Some(&manifest.media_type)).map_err(|e| {
                JobFailure::permanent(format!("remote manifest {}: {e}", manifest.digest))
            })?;
        for child in &parsed.manifests {
            if self
                .registry
                .meta
                .manifest_by_digest(dst, &child.digest)
                .await?
                .is_none()
            {
                let m = self
                    .client
                    .manifest(src, child.digest.as_str())
                    .await
                    .map_err(|e| client_failure("reading a child manifest", e))?
                    .ok_or_else(|| {
                        JobFailure::permanent(format!(
                            "{src}@{} is missing on the remote",
                            child.digest
                        ))
                    })?;
                Box::pin(self.pull_image(src, dst, m, None, actor, depth + 1)).await?;
            }
        }
        let mut blobs: Vec<(Digest, u64)> = Vec::new();
        for d in parsed
            .blob_references()
            .filter(|d| !d.is_non_distributable())
        {
            if !blobs.iter().any(|(b, _)| b == &d.digest) {
                blobs.push((d.digest.clone(), d.size.max(0) as u64));
            }
        }
        futures_util::stream::iter(blobs)
            .map(|(d, size)| async move { self.pull_blob(src, dst, &d, size).await })
            .buffer_unordered(self.parallel())
            .try_collect::<Vec<()>>()
            .await?;
        let reference = match tag {
            Some(t) => Reference::Tag(t.clone()),
            None => Reference::Digest(manifest.digest.clone()),
        };
        self.registry
            .put_manifest(ManifestPush {
                repo: dst,
                reference: &reference,
                content_type: Some(&manifest.media_type),
                body: manifest.bytes.to_vec(),
                extra_tags: Vec::new(),
                actor,
                client_addr: None,
                cached: false,
            })
            .await?;
        if self.referrers && depth < 4 {
            let referrers = self
                .client
                .referrers(src, &manifest.digest)
                .await
                .map_err(|e| client_failure("listing referrers", e))?;
            for d in referrers {
                if self
                    .registry
                    .meta
                    .manifest_by_digest(dst, &d)
                    .await?
                    .is_some()
                {
                    continue;
                }
                if let Some(m) = self
                    .client
                    .manifest(src, d.as_str())
                    .await
                    .map_err(|e| client_failure("reading a referrer", e))?
                {
                    Box::pin(self.pull_image(src, dst, m, None, actor, depth + 1)).await?;
                }
            }
        }
        Ok(())
    }

    async fn append(&self, dst: &RepoName, id: &str, offset: u64, bytes: Bytes) -> Result<u64> {
        let len = bytes.len() as u64;
        let chunk = Chunk {
            range: Some((offset, offset + len - 1)),
            length: Some(len),
            body: Box::pin(futures_util::stream::once(async move { Ok(bytes) })),
        };
        Ok(self.registry.upload_chunk(dst, id, chunk).await?.size)
    }

    /// A blob held here (for any tenant) is linked into `dst` instead of
    /// fetched only when the remote shows it holds the same bytes in `src`.
    async fn link_if_remote_holds(&self, src: &str, dst: &RepoName, d: &Digest) -> Result<bool> {
        let Some(size) = self.registry.meta.blob_size(d).await? else {
            return Ok(false);
        };
        match remote_holds(self.registry, self.client, src, d, size as u64).await {
            Ok(Holding::Confirmed) => Ok(self.registry.link_confirmed(dst, d).await?),
            Ok(Holding::Absent | Holding::Unconfirmed) => Ok(false),
            Err(ConfirmError::Remote(e)) => Err(client_failure(&format!("checking blob {d}"), e)),
            Err(ConfirmError::Local(e)) => Err(e.into()),
        }
    }

    async fn pull_blob(&self, src: &str, dst: &RepoName, d: &Digest, size: u64) -> Result<()> {
        if self.registry.meta.repo_blob_size(dst, d).await?.is_some()
            || self.link_if_remote_holds(src, dst, d).await?
        {
            self.moved.present.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let key = self.key(src, d);
        let resumed = match self.resume.take(&key) {
            Some(Resume::Local(id)) => self.registry.upload_status(dst, &id).await.ok(),
            _ => None,
        };
        let state = match resumed {
            Some(state) => state,
            None => self.registry.start_upload(dst, d.algorithm()).await?,
        };
        let id = state.id;
        let mut offset = state.size;
        let mut patience = Patience::new();
        let result: Result<()> = async {
            while offset < size {
                let read = match self.client.blob(src, d, offset).await {
                    Ok(read) => read,
                    Err(e) if e.is_transient() => {
                        patience
                            .wait(|| format!("reading blob {d} at byte {offset}: {e}"))
                            .await?;
                        continue;
                    }
                    Err(e) => return Err(client_failure(&format!("reading blob {d}"), e)),
                };
                let mut body = self.metered(Box::pin(read.stream()));
                let mut slice = BytesMut::new();
                let mut broke = None;
                loop {
                    match body.next().await {
                        Some(Ok(b)) => {
                            slice.extend_from_slice(&b);
                            if slice.len() >= PULL_SLICE {
                                offset = self
                                    .append(dst, &id, offset, slice.split().freeze())
                                    .await?;
                                patience.progressed();
                            }
                        }
                        Some(Err(e)) => {
                            broke = Some(e);
                            break;
                        }
                        None => break,
                    }
                }
                // What arrived before an interruption is kept.
                if !slice.is_empty() {
                    offset = self.append(dst, &id, offset, slice.freeze()).await?;
                    patience.progressed();
                }
                if let Some(e) = broke {
                    self.resume.put(key.clone(), Resume::Local(id.clone()));
                    patience
                        .wait(|| format!("reading blob {d} at byte {offset}: {e}"))
                        .await?;
                } else if offset < size {
                    patience
                        .wait(|| format!("blob {d} ended at byte {offset} of {size}"))
                        .await?;
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            self.resume.put(key, Resume::Local(id));
            return Err(e);
        }
        self.registry.finish_upload(dst, &id, d, None).await?;
        self.moved.copied.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
