//! Filesystem blob store.
//!
//! Layout under the root directory:
//! - `sha256/ab/abcdef…` (and `sha512/…`): committed blobs, named by digest;
//! - `_uploads/<id>`: upload sessions in progress, on the same filesystem so
//!   that committing is a rename.
//!
//! # How writes and reads travel
//!
//! Writes are batched into blocks (for up to four large upload requests at
//! once, a ranged chunk or a body of known length (placed at the upload's end
//! like a ranged chunk) of 2 MiB or more, or a body of unknown length past
//! its first 2 MiB, 1 MiB, and 2 MiB once the run of large blocks has brought
//! 8 MiB; 128 KiB otherwise), hashed and written on blocking threads while
//! the next block is received. Large blocks start at 4 KiB boundaries of the
//! file and go straight to the disk (`O_DIRECT`, from an aligned buffer): a
//! run of them goes through a pipe, three blocks in flight, one thread
//! hashing them in order while each is written on a thread of its own, so a
//! large push neither copies its bytes into the page cache nor fills it, and
//! the receiving task does not wait for every hash; small blocks and a
//! request's unaligned ends go through the page cache, as does everything on
//! a filesystem that refuses `O_DIRECT`, and the writeback of every whole 8
//! MiB range of those is started as soon as it is written (`sync_file_range`,
//! not waited for), so the disk works while the rest arrives. A request is
//! answered once its last block is handed over: the upload's lock travels
//! with the block, so the upload's next request, commit, status query or
//! delete waits for that write, and a write that failed after the answer
//! fails the upload's next request. A chunk whose pipe ends at a 4 KiB
//! boundary parks the pipe in the upload's slot instead: the next chunk that
//! starts where it ends (and is large) continues it, blocks still in flight,
//! so the hashing thread does not idle between chunks; anything else that
//! touches the upload (a status query, a commit, a delete, a chunk that
//! cannot continue it, or a second without a chunk) drains it first. Large
//! block buffers (all 2 MiB) go back to a small pool, at most one upload's
//! worth, which the binary frees every few seconds once no large upload runs;
//! the binary also has glibc map every allocation of 1 MiB or more on its
//! own, so freed large buffers leave the resident set at once. The digest is
//! computed incrementally and checked before the file is fsynced and renamed
//! into place (then the directory is fsynced). After a restart the
//! incremental state is gone and the upload is re-hashed from disk at commit;
//! before anything else touches such an upload, its file is cut at its first
//! hole (`SEEK_HOLE`): blocks of a pipe are written in parallel, so a crash
//! can leave a later block written and an earlier one not, and the client
//! must resume from where the received bytes end. Reads (`crate::read`) in
//! small chunks copy data that is in the page cache straight into the
//! caller's buffer from the async runtime (`preadv2` with `RWF_NOWAIT`; the
//! crate's only `unsafe` is in `crate::sys`) and go to a blocking thread only
//! for data that must come from the disk; reads in chunks of 512 KiB or more
//! (large downloads) read the next chunk on a blocking thread while the
//! current one is sent, two buffers going round, so copying out of the page
//! cache and sending run on both cores.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use berth_oci::{Algorithm, Digest, Hasher};
use futures_util::StreamExt;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::task::JoinHandle;

use crate::read::{FileReader, ReadAhead};
use crate::{BlobError, BlobStore, ByteStream};

/// Writes and hashes happen in blocks of this size, off the async runtime.
/// Each upload in progress holds one such buffer: 128 KiB keeps 64
/// concurrent pushes within a few MiB, at a few percent of single-stream
/// throughput against 1 MiB blocks (docs/benchmarks.md).
const BLOCK: usize = 128 << 10;

/// An upload request of `LARGE_AFTER` bytes or more (a ranged chunk that
/// long, or a body of unknown length once that much has arrived) uses
/// blocks of this size while fewer than `MAX_LARGE` requests do: fewer
/// hand-offs to the blocking thread, which cost a quarter of a 100 MiB
/// push's CPU with 128 KiB blocks (docs/benchmarks.md). Large blocks take
/// at most `MAX_LARGE` × (`PIPE_DEPTH` + 1) × `LONG_BLOCK`, and small blobs
/// never hold them.
const LARGE_BLOCK: usize = 1 << 20;
const LARGE_AFTER: u64 = 2 << 20;
const MAX_LARGE: usize = 4;

/// Once a run of large blocks (a request's, or a `Pipe`'s across the
/// chunks of a chunked push) has brought `LONG_AFTER` bytes, its blocks
/// are `LONG_BLOCK` long: half the hand-offs per byte, which cut the
/// server's CPU per pushed GB by about a tenth (docs/benchmarks.md).
const LONG_BLOCK: usize = 2 << 20;
const LONG_AFTER: u64 = 8 << 20;

/// The writeback of an upload's data is started each time another this many
/// bytes have been written (ranges aligned to it), so the disk works while
/// the rest arrives instead of all at once in the fsync at commit, which
/// made the client wait about 40 ms of a 100 MiB push's 190 on this
/// project's benchmark machine (docs/benchmarks.md).
const WRITEBACK_EVERY: u64 = 8 << 20;

/// Large blocks start at multiples of this in the upload's file and are
/// written with `O_DIRECT` (the usual logical block size is 512 or 4096):
/// a large upload goes straight from the block buffer to the disk instead
/// of being copied into the page cache and written back later. That copy
/// was most of a push's CPU time whenever the page cache had to take fresh
/// memory (docs/benchmarks.md), and a pushed layer would otherwise push
/// hotter data out of the cache. Small blobs (configs, small layers) and
/// the unaligned ends of a request still go through the page cache.
const DIRECT_ALIGN: usize = 4096;

/// Downloads read in chunks of this size or more read the next chunk on a
/// blocking thread while the current one is sent (`ReadAhead`); smaller
/// chunks are read from the async runtime (`FileReader`), where one more
/// hand-off per chunk would cost more than the copy it moves.
const READ_AHEAD_CHUNK: usize = 512 << 10;

mod buffers;
mod listing;
mod pipe;
mod session;
#[cfg(test)]
mod tests;

pub use buffers::release_idle_buffers;
use buffers::*;
use listing::*;
use pipe::*;
use session::*;

/// Blobs as files under one root directory.
#[derive(Debug)]
pub struct FsBlobStore {
    root: PathBuf,
    /// Per-upload locks with the incremental hash state. After a restart the
    /// state is gone and the upload is re-hashed from disk when it is committed.
    uploads: StdMutex<HashMap<String, UploadLock>>,
    /// Whether the filesystem accepts `O_DIRECT` (until it refuses once).
    direct: AtomicBool,
}

impl FsBlobStore {
    /// Open (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(root.join("_uploads"))?;
        Ok(FsBlobStore {
            root,
            uploads: StdMutex::new(HashMap::new()),
            direct: AtomicBool::new(true),
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    /// A stored blob's file with the byte offsets `start..end` to serve of
    /// it (`range` is inclusive, as in an HTTP Range header), if present.
    async fn open_range(
        &self,
        digest: &Digest,
        range: Option<(u64, u64)>,
    ) -> Result<Option<(std::fs::File, u64, u64)>, BlobError> {
        let path = self.blob_path(digest);
        let opened = blocking(move || {
            let file = std::fs::File::open(path)?;
            let len = file.metadata()?.len();
            Ok((file, len))
        })
        .await;
        let (file, len) = match opened {
            Ok(f) => f,
            Err(BlobError::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let (start, end) = match range {
            None => (0, len),
            Some((start, end)) => (start.min(len), end.saturating_add(1).min(len)),
        };
        Ok(Some((file, start, end)))
    }

    /// Upload ids become file names, so only a safe alphabet is accepted.
    fn upload_path(&self, id: &str) -> Result<PathBuf, BlobError> {
        let safe = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if safe {
            Ok(self.root.join("_uploads").join(id))
        } else {
            Err(BlobError::UploadUnknown(id.to_owned()))
        }
    }

    fn lock_for(&self, id: &str) -> UploadLock {
        let mut map = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_owned()).or_default().clone()
    }

    /// A second descriptor of an upload's file for `O_DIRECT` writes, where
    /// the filesystem supports them (tmpfs and some others do not: their
    /// uploads go through the page cache, as small ones always do).
    fn open_direct(&self, path: &Path) -> Option<(Arc<std::fs::File>, Arc<std::fs::File>)> {
        if !self.direct.load(Ordering::Relaxed) {
            return None;
        }
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .and_then(|direct| {
                let plain = std::fs::OpenOptions::new().write(true).open(path)?;
                Ok((direct, plain))
            });
        match opened {
            Ok((direct, plain)) => Some((Arc::new(direct), Arc::new(plain))),
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidInput {
                    tracing::debug!("no O_DIRECT uploads under {}: {e}", self.root.display());
                    self.direct.store(false, Ordering::Relaxed);
                }
                None
            }
        }
    }

    /// An upload this process did not start may have been cut short by a
    /// crash while blocks of a pipe were written in parallel: a later block
    /// written, an earlier one not, leaving a hole that the file's size
    /// would count as received. The file is cut at its first hole, so the
    /// size the client resumes from covers only bytes that arrived.
    async fn check_holes(
        &self,
        slot: &mut UploadSlot,
        path: &Path,
        id: &str,
    ) -> Result<(), BlobError> {
        if slot.checked {
            return Ok(());
        }
        let path = path.to_owned();
        let id_owned = id.to_owned();
        blocking(move || {
            let file = not_found_as(std::fs::OpenOptions::new().write(true).open(&path), &id_owned)?;
            let len = file.metadata()?.len();
            let hole = crate::sys::first_hole(&file)?;
            if hole < len {
                tracing::warn!(upload = %id_owned, size = len, cut_at = hole, "an upload cut short by a crash has a hole; cut there");
                file.set_len(hole)?;
            }
            Ok(())
        })
        .await?;
        slot.checked = true;
        Ok(())
    }

    fn forget(&self, id: &str) {
        let mut map = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }
}

fn not_found_as<T>(r: io::Result<T>, id: &str) -> Result<T, BlobError> {
    r.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => BlobError::UploadUnknown(id.to_owned()),
        _ => BlobError::Io(e),
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    joined(tokio::task::spawn_blocking(f).await)?
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn open_chunks(
        &self,
        digest: &Digest,
        range: Option<(u64, u64)>,
        chunk: usize,
    ) -> Result<Option<ByteStream>, BlobError> {
        let Some((file, start, end)) = self.open_range(digest, range).await? else {
            return Ok(None);
        };
        let chunk = chunk.max(1);
        if chunk >= READ_AHEAD_CHUNK && end - start > 2 * chunk as u64 {
            return Ok(Some(Box::pin(ReadAhead::new(file, start, end, chunk))));
        }
        Ok(Some(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            FileReader::new(file, start, end),
            chunk,
        ))))
    }

    async fn delete(&self, digest: &Digest) -> Result<bool, BlobError> {
        match tokio::fs::remove_file(self.blob_path(digest)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: usize,
    ) -> Result<Vec<(Digest, u64)>, BlobError> {
        let root = self.root.clone();
        let after = after.map(|d| d.to_string()).unwrap_or_default();
        blocking(move || list_sorted(&root, &after, limit)).await
    }

    async fn upload_create(&self, id: &str, algorithm: Algorithm) -> Result<(), BlobError> {
        let path = self.upload_path(id)?;
        tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        let lock = self.lock_for(id);
        let mut slot = lock.lock().await;
        slot.hash = Some(HashState {
            offset: 0,
            hasher: Hasher::new(algorithm),
        });
        slot.checked = true;
        Ok(())
    }

    async fn upload_size(&self, id: &str) -> Result<Option<u64>, BlobError> {
        let path = self.upload_path(id)?;
        // Wait for a write still in flight after its request was answered.
        let lock = self.lock_for(id);
        let mut slot = lock.lock().await;
        slot.unpark().await;
        // A write that failed for a full disk after its chunk was answered
        // is reported now: the upload cannot go on, and its data should go.
        if slot.failed_for_space() {
            slot.take_failure()?;
        }
        let checked = self.check_holes(&mut slot, &path, id).await;
        let size = match checked {
            Ok(()) => tokio::fs::metadata(&path)
                .await
                .map(|m| m.len())
                .map_err(BlobError::from),
            Err(e) => Err(e),
        };
        match size {
            Ok(size) => Ok(Some(size)),
            Err(BlobError::UploadUnknown(_)) => {
                drop(slot);
                self.forget(id);
                Ok(None)
            }
            Err(BlobError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                drop(slot);
                self.forget(id);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn upload_append(
        &self,
        id: &str,
        offset: Option<u64>,
        mut body: ByteStream,
        limit: u64,
    ) -> Result<u64, BlobError> {
        let path = self.upload_path(id)?;
        let lock = self.lock_for(id);
        let mut state = Arc::clone(&lock).lock_owned().await;
        state.take_failure()?;
        self.check_holes(&mut state, &path, id).await?;
        // A ranged chunk of LARGE_AFTER bytes or more that starts where a
        // parked pipe ends continues it; anything else drains it first.
        let continued = match state.parked.take() {
            Some(p)
                if offset == Some(p.pipe.end)
                    && limit.saturating_sub(p.pipe.end) >= LARGE_AFTER =>
            {
                Some(p)
            }
            other => {
                state.parked = other;
                state.unpark().await;
                state.take_failure()?;
                None
            }
        };
        let file = not_found_as(std::fs::OpenOptions::new().append(true).open(&path), id)?;
        let current = match &continued {
            Some(p) => p.pipe.end,
            None => file.metadata()?.len(),
        };
        if let Some(given) = offset.filter(|&o| o != current) {
            return Err(BlobError::RangeMismatch { current, given });
        }
        let hasher = state
            .hash
            .take()
            .filter(|s| s.offset == current)
            .map(|s| s.hasher);
        let mut writer = BlockWriter::new(Idle::new(state, file, hasher, current));
        // Large blocks, while permits last, from the start for a ranged
        // chunk of LARGE_AFTER bytes or more (its limit is its end), and
        // for a body of unknown length once that much of it has arrived.
        // `run` is where the run of large blocks began: block sizes grow
        // with it.
        let (mut large, run, spare) = match continued {
            Some(Parked {
                pipe,
                direct,
                large,
                spare,
            }) => {
                let run = pipe.start;
                writer.pipe = Some(pipe);
                writer.direct = Some(direct);
                (Some(large), run, spare)
            }
            None => {
                let large = (offset.is_some() && limit.saturating_sub(current) >= LARGE_AFTER)
                    .then(LargeBlocks::try_acquire)
                    .flatten();
                if large.is_some() {
                    writer.direct = self.open_direct(&path);
                }
                (large, current, None)
            }
        };
        // The offset in the file of the block being filled, and its length.
        let mut at = current;
        let mut block = block_len(large.is_some(), run, at);
        let mut buf = match spare {
            Some(mut spare) if spare.capacity >= block => {
                spare.clear();
                spare
            }
            _ => AlignedBuf::new(block),
        };
        let mut size = current;
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(BlobError::Body(e));
                    break;
                }
            };
            if size + chunk.len() as u64 > limit {
                failure = Some(BlobError::TooLarge { limit });
                break;
            }
            size += chunk.len() as u64;
            // Fill blocks of exactly `block` bytes, so buffers never grow
            // beyond what was reserved for them.
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let take = block.saturating_sub(buf.len()).min(rest.len());
                buf.extend(&rest[..take]);
                rest = &rest[take..];
                if buf.len() >= block {
                    let next = at + block as u64;
                    if large.is_none() && offset.is_none() && next - current >= LARGE_AFTER {
                        large = LargeBlocks::try_acquire();
                        if large.is_some() {
                            writer.direct = self.open_direct(&path);
                        }
                    }
                    let next_len = block_len(large.is_some(), run, next);
                    buf = writer.write(buf, at, large.is_some(), next_len).await?;
                    (at, block) = (next, next_len);
                }
            }
        }
        // What arrived is kept even when the body broke off, so the client can
        // resume from the size it reads back.
        let leftover = if buf.len() > 0 {
            writer.write(buf, at, large.is_some(), 0).await?
        } else {
            buf
        };
        let restore = move |idle: Idle| {
            let Idle {
                mut state, hasher, ..
            } = idle;
            state.hash = hasher.map(|hasher| HashState {
                offset: size,
                hasher,
            });
        };
        if failure.is_none() {
            if let Some(parking) = writer.park(&mut large, leftover) {
                unpark_when_idle(lock, parking);
                return Ok(size);
            }
        }
        if failure.is_none() && (writer.in_flight.is_some() || writer.pipe.is_some()) {
            // Answer without waiting for the last block: the lock travels
            // with it, so the upload's next request (or its commit, or a
            // status query) waits for the write, and learns if it failed.
            // A chunked push saves the hashing and writing of a block on
            // every chunk (docs/benchmarks.md).
            tokio::spawn(async move {
                if let Ok(idle) = writer.finish().await {
                    restore(idle);
                }
                drop(large);
            });
            return Ok(size);
        }
        let idle = writer.finish().await?;
        drop(large);
        restore(idle);
        match failure {
            Some(e) => Err(e),
            None => Ok(size),
        }
    }

    async fn upload_commit(&self, id: &str, expected: &Digest) -> Result<u64, BlobError> {
        let path = self.upload_path(id)?;
        let lock = self.lock_for(id);
        let mut state = lock.lock().await;
        state.unpark().await;
        state.take_failure()?;
        let incremental = state.hash.take();
        let target = self.blob_path(expected);
        let expected = expected.clone();
        let id_owned = id.to_owned();
        let size = blocking(move || {
            let mut file = not_found_as(std::fs::File::open(&path), &id_owned)?;
            let size = file.metadata()?.len();
            let actual = match incremental {
                Some(s) if s.offset == size && s.hasher.algorithm() == expected.algorithm() => {
                    s.hasher.finish()
                }
                _ => hash_file(&mut file, expected.algorithm())?,
            };
            if actual != expected {
                drop(file);
                std::fs::remove_file(&path)?;
                return Err(BlobError::DigestMismatch { expected, actual });
            }
            file.sync_all()?;
            drop(file);
            let dir = target
                .parent()
                .ok_or_else(|| io::Error::other("blob path has no parent"))?;
            if target.exists() {
                // Already stored: content addressing makes this upload redundant.
                std::fs::remove_file(&path)?;
            } else {
                std::fs::create_dir_all(dir)?;
                std::fs::rename(&path, &target)?;
                sync_dir(dir)?;
            }
            Ok(size)
        })
        .await;
        drop(state);
        self.forget(id);
        size
    }

    async fn upload_delete(&self, id: &str) -> Result<bool, BlobError> {
        let path = self.upload_path(id)?;
        let lock = self.lock_for(id);
        let mut guard = lock.lock().await;
        guard.unpark().await;
        let existed = match tokio::fs::remove_file(path).await {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e.into()),
        };
        drop(guard);
        self.forget(id);
        Ok(existed)
    }

    async fn list_uploads(&self) -> Result<Vec<(String, SystemTime)>, BlobError> {
        let mut out = Vec::new();
        let mut dir = tokio::fs::read_dir(self.root.join("_uploads")).await?;
        while let Some(entry) = dir.next_entry().await? {
            // An upload may finish (and its file go) while the directory is read.
            let modified = match entry.metadata().await {
                Ok(m) => m.modified()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            if let Some(name) = entry.file_name().to_str() {
                out.push((name.to_owned(), modified));
            }
        }
        Ok(out)
    }

    async fn ping(&self) -> Result<(), BlobError> {
        let probe = self.root.join("_uploads").join(".ready-probe");
        tokio::fs::write(&probe, b"ok").await?;
        tokio::fs::remove_file(&probe).await?;
        Ok(())
    }
}
