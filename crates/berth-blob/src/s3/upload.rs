//! S3 uploads that any node can continue.
//!
//! A request's bytes are hashed as they arrive and gathered into parts of
//! the configured size; full parts are sent while the next one fills,
//! several at once up to [`BYTES_IN_FLIGHT`] (two of the default 8 MiB
//! parts: an upload then holds at most 24 MiB). What is left when the request
//! ends is staged as an object of its own. The state saved in the journal
//! afterwards says where everything is; the save names the version it read,
//! so two requests racing on one upload cannot both win.

use std::collections::VecDeque;
use std::io;

use berth_oci::{Algorithm, Digest, ResumableHasher};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::store::{storage_error, S3BlobStore, MAX_PARTS};
use crate::{BlobError, ByteStream, SavedUpload};

/// Bytes of one upload's parts being sent at once while the next fills
/// (always at least one part): a large layer reaches the storage's rate
/// even when one request's round trip would not, and memory stays bounded.
const BYTES_IN_FLIGHT: u64 = 16 << 20;

/// Staged segments beyond this many are merged into one when a request ends,
/// so that a client sending tiny chunks does not grow the state unbounded.
const MAX_STAGED: usize = 32;

/// An upload's state as saved in the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    /// Hash state of every byte received; its length is the upload's size.
    hash: String,
    /// The multipart upload of `uploads/<id>/data`, once a part was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multipart: Option<String>,
    /// ETags of the parts sent, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parts: Vec<String>,
    /// Bytes in those parts.
    #[serde(default)]
    part_bytes: u64,
    /// Start offsets of the staged segments after the parts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    staged: Vec<u64>,
}

struct Loaded {
    version: i64,
    state: State,
    hasher: ResumableHasher,
}

fn corrupt(id: &str) -> BlobError {
    BlobError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the saved state of upload {id} is damaged"),
    ))
}

/// Parts of a blob from the first 4,000 on a rising size: the configured
/// size (an upload holds one part filling and about two in flight, so its
/// memory follows the part size; 4,000 parts of 8 MiB are 31 GiB, past
/// model-sized layers), then doubled every 1,500 parts, so that 10,000 parts
/// hold 383 GiB at 8 MiB.
fn part_size(base: usize, index: usize) -> usize {
    const FIXED: usize = 4_000;
    const STEP: usize = (MAX_PARTS - FIXED) / 4;
    match index.checked_sub(FIXED) {
        None => base,
        Some(past) => base << (1 + past / STEP).min(16),
    }
}

impl S3BlobStore {
    fn data_key(&self, id: &str) -> Path {
        self.key(&format!("uploads/{id}/data"))
    }

    fn staged_key(&self, id: &str, offset: u64) -> Path {
        self.key(&format!("uploads/{id}/pending/{offset:020}"))
    }

    fn part_size(&self, index: usize) -> usize {
        part_size(self.inner.part_size, index)
    }

    async fn load(&self, id: &str) -> Result<Option<Loaded>, BlobError> {
        let Some(SavedUpload { version, state }) = self.inner.journal.load(id).await? else {
            return Ok(None);
        };
        let Some(text) = state else {
            return Err(corrupt(id));
        };
        let state: State = serde_json::from_str(&text).map_err(|_| corrupt(id))?;
        let hasher = ResumableHasher::from_state(&state.hash).map_err(|_| corrupt(id))?;
        if state.part_bytes > hasher.len() || state.staged.iter().any(|&s| s > hasher.len()) {
            return Err(corrupt(id));
        }
        Ok(Some(Loaded {
            version,
            state,
            hasher,
        }))
    }

    async fn save(&self, id: &str, version: i64, state: &State) -> Result<bool, BlobError> {
        let text = serde_json::to_string(state).map_err(|e| BlobError::Io(io::Error::other(e)))?;
        self.inner.journal.save(id, version, &text).await
    }

    /// Read the staged segments back, in order.
    async fn read_staged(
        &self,
        id: &str,
        staged: &[u64],
        end: u64,
    ) -> Result<Vec<Bytes>, BlobError> {
        let mut out = Vec::new();
        for (i, &start) in staged.iter().enumerate() {
            let until = staged.get(i + 1).copied().unwrap_or(end);
            let key = self.staged_key(id, start);
            let bytes = self
                .inner
                .store
                .get(&key)
                .await
                .map_err(storage_error)?
                .bytes()
                .await
                .map_err(storage_error)?;
            if bytes.len() as u64 != until - start {
                return Err(BlobError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("staged bytes of upload {id} at {start} are missing"),
                )));
            }
            out.push(bytes);
        }
        Ok(out)
    }

    async fn delete_staged(&self, id: &str, staged: &[u64]) {
        for &start in staged {
            if let Err(e) = self.delete_key(&self.staged_key(id, start)).await {
                tracing::warn!(upload = id, error = %e, "could not delete a staged segment");
            }
        }
    }

    /// Abort the multipart upload and delete everything the upload stored.
    async fn discard(&self, id: &str, state: &State) -> Result<(), BlobError> {
        if let Some(multipart) = &state.multipart {
            match self
                .inner
                .store
                .abort_multipart(&self.data_key(id), &multipart.clone())
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage_error(e)),
            }
        }
        for &start in &state.staged {
            self.delete_key(&self.staged_key(id, start)).await?;
        }
        self.delete_key(&self.data_key(id)).await
    }
}

pub(super) async fn create(
    store: &S3BlobStore,
    id: &str,
    algorithm: Algorithm,
) -> Result<(), BlobError> {
    let Some(saved) = store.inner.journal.load(id).await? else {
        return Err(BlobError::UploadUnknown(id.to_owned()));
    };
    let state = State {
        hash: ResumableHasher::new(algorithm).to_state(),
        multipart: None,
        parts: Vec::new(),
        part_bytes: 0,
        staged: Vec::new(),
    };
    if !store.save(id, saved.version, &state).await? {
        return Err(BlobError::UploadUnknown(id.to_owned()));
    }
    Ok(())
}

pub(super) async fn size(store: &S3BlobStore, id: &str) -> Result<Option<u64>, BlobError> {
    Ok(store.load(id).await?.map(|l| l.hasher.len()))
}

/// Parts being sent while the next one fills, oldest first, each with
/// its length.
#[derive(Default)]
struct Sending(VecDeque<(JoinHandle<Result<PartId, BlobError>>, u64)>);

impl Sending {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn bytes(&self) -> u64 {
        self.0.iter().map(|(_, len)| len).sum()
    }

    /// Wait for the oldest part; record it in `state`.
    async fn finish_one(&mut self, state: &mut State) -> Result<(), BlobError> {
        if let Some((task, len)) = self.0.pop_front() {
            let part = task
                .await
                .map_err(|e| BlobError::Io(io::Error::other(e.to_string())))??;
            state.parts.push(part.content_id);
            state.part_bytes += len;
        }
        Ok(())
    }

    /// Wait for every part, in order.
    async fn finish_all(&mut self, state: &mut State) -> Result<(), BlobError> {
        while !self.0.is_empty() {
            self.finish_one(state).await?;
        }
        Ok(())
    }
}

impl Drop for Sending {
    /// Parts not waited for (the request failed) are not sent on.
    fn drop(&mut self) {
        for (task, _) in &self.0 {
            task.abort();
        }
    }
}

pub(super) async fn append(
    store: &S3BlobStore,
    id: &str,
    offset: Option<u64>,
    mut body: ByteStream,
    limit: u64,
) -> Result<u64, BlobError> {
    let Loaded {
        version,
        mut state,
        mut hasher,
    } = store
        .load(id)
        .await?
        .ok_or_else(|| BlobError::UploadUnknown(id.to_owned()))?;
    let start = hasher.len();
    if let Some(given) = offset {
        if given != start {
            return Err(BlobError::RangeMismatch {
                current: start,
                given,
            });
        }
    }
    let mut version = version;
    // Bytes of this request not yet in a part, and staged segments folded
    // into a part by it (deleted once the new state is saved).
    // Copied into one buffer per part: the body's chunks may be slices of
    // larger receive buffers, which holding them would keep alive. The
    // buffer is reserved whole but only written pages become resident.
    let mut gathered = BytesMut::new();
    let mut gathered_len = 0usize;
    let mut folded: Vec<u64> = Vec::new();
    let mut sending = Sending::default();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(BlobError::Body)?;
        if hasher.len() + chunk.len() as u64 > limit {
            return Err(BlobError::TooLarge { limit });
        }
        hasher.update(&chunk);
        // Parts are exactly the part size: a chunk that crosses a part's end
        // is split there, and its rest starts the next part's buffer.
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let index = state.parts.len() + sending.len();
            let part_size = store.part_size(index);
            if gathered.capacity() == 0 {
                gathered.reserve(part_size);
            }
            let staged_len = staged_bytes(&state, start) as usize;
            let room = part_size.saturating_sub(staged_len + gathered_len);
            let take = room.min(rest.len());
            gathered.extend_from_slice(&rest[..take]);
            gathered_len += take;
            rest = &rest[take..];
            if staged_len + gathered_len < part_size {
                continue;
            }
            // A whole part: the staged segments, then this request's bytes.
            if index >= MAX_PARTS {
                return Err(BlobError::TooLarge {
                    limit: hasher.len(),
                });
            }
            let multipart = match &state.multipart {
                Some(m) => m.clone(),
                None => {
                    // Saved before any part is sent, so no part is ever sent
                    // to a multipart upload that nothing knows.
                    let m = store
                        .inner
                        .store
                        .create_multipart(&store.data_key(id))
                        .await
                        .map_err(storage_error)?;
                    state.multipart = Some(m.clone());
                    if !store.save(id, version, &state).await? {
                        let _ = store
                            .inner
                            .store
                            .abort_multipart(&store.data_key(id), &m)
                            .await;
                        return Err(raced(store, id, start).await);
                    }
                    version += 1;
                    m
                }
            };
            let mut pieces = store.read_staged(id, &state.staged, start).await?;
            folded.append(&mut state.staged);
            pieces.push(std::mem::take(&mut gathered).freeze());
            let part_len = (staged_len + gathered_len) as u64;
            gathered_len = 0;
            while !sending.0.is_empty() && sending.bytes() + part_len > BYTES_IN_FLIGHT {
                sending.finish_one(&mut state).await?;
            }
            let s3 = store.inner.store.clone();
            let key = store.data_key(id);
            let task = tokio::spawn(async move {
                s3.put_part(&key, &multipart, index, PutPayload::from_iter(pieces))
                    .await
                    .map_err(storage_error)
            });
            sending.0.push_back((task, part_len));
        }
    }
    sending.finish_all(&mut state).await?;
    // Stage what is left, merging many small segments into one.
    if gathered_len > 0 {
        let mut pieces = Vec::new();
        let mut at = hasher.len() - gathered_len as u64;
        if state.staged.len() >= MAX_STAGED {
            pieces = store.read_staged(id, &state.staged, start).await?;
            at = state.staged[0];
            folded.append(&mut state.staged);
        }
        pieces.push(gathered.freeze());
        store
            .inner
            .store
            .put(&store.staged_key(id, at), PutPayload::from_iter(pieces))
            .await
            .map_err(storage_error)?;
        state.staged.push(at);
        folded.retain(|&f| f != at);
    }
    state.hash = hasher.to_state();
    if !store.save(id, version, &state).await? {
        return Err(raced(store, id, start).await);
    }
    store.delete_staged(id, &folded).await;
    Ok(hasher.len())
}

/// Bytes staged after the parts.
fn staged_bytes(state: &State, size: u64) -> u64 {
    state.staged.first().map_or(0, |&first| size - first)
}

/// Another request changed the upload while this one ran.
async fn raced(store: &S3BlobStore, id: &str, given: u64) -> BlobError {
    match store.load(id).await {
        Ok(Some(now)) => BlobError::RangeMismatch {
            current: now.hasher.len(),
            given,
        },
        Ok(None) => BlobError::UploadUnknown(id.to_owned()),
        Err(e) => e,
    }
}

pub(super) async fn commit(
    store: &S3BlobStore,
    id: &str,
    expected: &Digest,
) -> Result<u64, BlobError> {
    let Loaded { state, hasher, .. } = store
        .load(id)
        .await?
        .ok_or_else(|| BlobError::UploadUnknown(id.to_owned()))?;
    let size = hasher.len();
    let same_algorithm = hasher.algorithm() == expected.algorithm();
    if same_algorithm {
        verify(store, id, &state, expected, hasher.finish()).await?;
    }
    let target = store.blob_key(expected);
    if same_algorithm && store.head_size(&target).await? == Some(size) {
        // Already stored (by another upload of the same content).
        store.discard(id, &state).await?;
        return Ok(size);
    }
    let data = store.data_key(id);
    let staged = store.read_staged(id, &state.staged, size).await?;
    match &state.multipart {
        None if same_algorithm => {
            // Small: one PUT straight to the digest's key.
            store
                .inner
                .store
                .put(&target, PutPayload::from_iter(staged))
                .await
                .map_err(storage_error)?;
            store.delete_staged(id, &state.staged).await;
            return Ok(size);
        }
        None => {
            store
                .inner
                .store
                .put(&data, PutPayload::from_iter(staged))
                .await
                .map_err(storage_error)?;
        }
        Some(multipart) => {
            // A retry after a crash may find the upload already completed.
            if store.head_size(&data).await? != Some(size) {
                let mut parts: Vec<PartId> = state
                    .parts
                    .iter()
                    .map(|etag| PartId {
                        content_id: etag.clone(),
                    })
                    .collect();
                if !staged.is_empty() {
                    let last = store
                        .inner
                        .store
                        .put_part(&data, multipart, parts.len(), PutPayload::from_iter(staged))
                        .await
                        .map_err(storage_error)?;
                    parts.push(last);
                }
                store
                    .inner
                    .store
                    .complete_multipart(&data, multipart, parts)
                    .await
                    .map_err(storage_error)?;
            }
        }
    }
    if !same_algorithm {
        // Hashed with another algorithm than the client's digest: read the
        // completed object back once to check it.
        let mut hasher = berth_oci::Hasher::new(expected.algorithm());
        let mut stream = store
            .get_stream(&data, None)
            .await?
            .ok_or_else(|| corrupt(id))?;
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk?);
        }
        verify(store, id, &state, expected, hasher.finish()).await?;
    }
    store
        .inner
        .store
        .copy(&data, &target)
        .await
        .map_err(storage_error)?;
    store.delete_staged(id, &state.staged).await;
    store.delete_key(&data).await?;
    Ok(size)
}

/// Refuse a digest mismatch, discarding everything the upload stored (the
/// multipart upload is aborted, so no orphan parts remain).
async fn verify(
    store: &S3BlobStore,
    id: &str,
    state: &State,
    expected: &Digest,
    actual: Digest,
) -> Result<(), BlobError> {
    if &actual == expected {
        return Ok(());
    }
    store.discard(id, state).await?;
    Err(BlobError::DigestMismatch {
        expected: expected.clone(),
        actual,
    })
}

pub(super) async fn delete(store: &S3BlobStore, id: &str) -> Result<bool, BlobError> {
    match store.inner.journal.load(id).await? {
        None => Ok(false),
        Some(saved) => {
            if let Some(Ok(state)) = saved.state.as_deref().map(serde_json::from_str::<State>) {
                store.discard(id, &state).await?;
            } else {
                store.delete_key(&store.data_key(id)).await?;
            }
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_keep_their_size_past_model_sized_layers_then_grow() {
        let base = 8 << 20;
        assert_eq!(part_size(base, 0), base);
        assert_eq!(part_size(base, 3_999), base);
        assert_eq!(part_size(base, 4_000), 2 * base);
        assert_eq!(part_size(base, 5_500), 4 * base);
        assert_eq!(part_size(base, MAX_PARTS - 1), 16 * base);
        let first: u64 = (0..4_000).map(|i| part_size(base, i) as u64).sum();
        assert!(
            first > 30 << 30,
            "a 30 GiB layer in parts of the configured size"
        );
        let all: u64 = (0..MAX_PARTS).map(|i| part_size(base, i) as u64).sum();
        assert!(all > 380 << 30, "10,000 parts hold {all} bytes");
    }
}
