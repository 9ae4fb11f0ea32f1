//! Filesystem blob store.
//!
//! Layout under the root directory:
//! - `sha256/ab/abcdef…` (and `sha512/…`): committed blobs, named by digest;
//! - `_uploads/<id>`: upload sessions in progress, on the same filesystem so
//!   that committing is a rename.

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

/// Uploads writing large blocks now.
static LARGE_UPLOADS: AtomicUsize = AtomicUsize::new(0);

/// Permission to write large blocks, given back when dropped.
struct LargeBlocks;

impl LargeBlocks {
    fn try_acquire() -> Option<LargeBlocks> {
        LARGE_UPLOADS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_LARGE).then_some(n + 1)
            })
            .ok()
            .map(|_| LargeBlocks)
    }
}

impl Drop for LargeBlocks {
    fn drop(&mut self) {
        LARGE_UPLOADS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Incremental hash state of an upload: valid while `offset` equals the file size.
#[derive(Debug)]
struct HashState {
    offset: u64,
    hasher: Hasher,
}

/// How long a parked pipe waits for its upload's next chunk before it is
/// drained and its hashing thread given back.
const PARK_IDLE: Duration = Duration::from_secs(1);

/// The pipe of a chunk request that ended at a `DIRECT_ALIGN` boundary,
/// left running for the upload's next chunk: that chunk neither waits for
/// the last blocks to be written and hashed nor starts a hashing thread of
/// its own, and the hashing thread (a push's critical path) does not idle
/// between chunks. Anything else that touches the upload (a status query,
/// a commit, a deletion, a chunk that cannot continue the pipe, or
/// `PARK_IDLE` without a chunk) drains it first.
struct Parked {
    pipe: Pipe,
    /// The upload's `O_DIRECT` descriptor and the same file without it.
    direct: (Arc<std::fs::File>, Arc<std::fs::File>),
    large: LargeBlocks,
    /// A free block buffer for the next chunk's first block.
    spare: Option<AlignedBuf>,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked")
            .field("start", &self.pipe.start)
            .field("end", &self.pipe.end)
            .field("in_flight", &self.pipe.writes.len())
            .finish()
    }
}

/// What an upload's lock guards.
#[derive(Debug, Default)]
struct UploadSlot {
    /// The incremental hash, if it is still valid (not while a pipe is
    /// parked: its hashing thread has it).
    hash: Option<HashState>,
    /// A write that failed after its request had been answered (see
    /// `upload_append`): the upload's next request reports it.
    /// Its kind is kept: a full disk must still read as one.
    failed: Option<(io::ErrorKind, String)>,
    /// A pipe waiting for the next chunk.
    parked: Option<Parked>,
    /// How many times a pipe was parked here, so that an idle timer drains
    /// only the pipe it was started for.
    parkings: u64,
    /// Whether this process wrote the upload's file from its start or has
    /// checked it for holes (see `FsBlobStore::check_holes`).
    checked: bool,
}

impl UploadSlot {
    /// Drain a parked pipe, if any: its hash becomes the upload's again,
    /// or its failure the next request's error, with the file cut where
    /// the failed block starts.
    async fn unpark(&mut self) {
        let Some(Parked {
            pipe,
            direct: (_, plain),
            large,
            ..
        }) = self.parked.take()
        else {
            return;
        };
        match pipe.drain().await {
            Ok((hasher, end)) => {
                self.hash = hasher.map(|hasher| HashState {
                    offset: end,
                    hasher,
                });
            }
            Err((e, cut)) => {
                self.hash = None;
                self.failed = Some((
                    e.io_kind(),
                    match plain.set_len(cut) {
                        Ok(()) => e.to_string(),
                        Err(cut_failed) => format!("{e}; cutting the upload failed: {cut_failed}"),
                    },
                ));
            }
        }
        drop(large);
    }

    /// The failure of a write this upload's client has not been told of.
    /// Whether a pending failure is the storage's being full.
    fn failed_for_space(&self) -> bool {
        matches!(
            &self.failed,
            Some((io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded, _))
        )
    }

    fn take_failure(&mut self) -> Result<(), BlobError> {
        match self.failed.take() {
            Some((kind, e)) => Err(BlobError::Io(io::Error::new(
                kind,
                format!("an earlier write to this upload failed: {e}"),
            ))),
            None => Ok(()),
        }
    }
}

type UploadLock = Arc<Mutex<UploadSlot>>;

/// A block buffer whose bytes start at a `DIRECT_ALIGN` boundary in memory,
/// as `O_DIRECT` requires.
///
/// The buffer is never zero-filled: only the padding before the aligned
/// start is written when it is made, and the bytes are appended, so a new
/// block's memory is touched once, by the copy of the data into it.
struct AlignedBuf {
    /// Padding up to the aligned start, then the block's bytes; its
    /// allocation never grows, so the start stays aligned.
    raw: Vec<u8>,
    start: usize,
    capacity: usize,
}

/// Free large block buffers (all `LONG_BLOCK` long, whatever the block
/// size asked for), kept for the next large blocks: their pages are
/// already mapped, where fresh memory costs a page fault per 4 KiB (the
/// allocator maps buffers this large on their own and unmaps them when
/// freed, see the binary's `memory` module). At most `POOL_MAX` are kept;
/// `release_idle_buffers` frees them once no large upload runs.
static FREE_LARGE: StdMutex<Vec<Vec<u8>>> = StdMutex::new(Vec::new());

/// One large upload's buffers: `PIPE_DEPTH` in flight, one being filled.
const POOL_MAX: usize = PIPE_DEPTH + 1;

/// Free the pooled large block buffers if no large upload is running (the
/// binary calls this every few seconds).
pub fn release_idle_buffers() {
    if LARGE_UPLOADS.load(Ordering::Acquire) == 0 {
        let freed = std::mem::take(&mut *FREE_LARGE.lock().unwrap_or_else(|p| p.into_inner()));
        drop(freed);
    }
}

impl AlignedBuf {
    fn new(capacity: usize) -> Self {
        let (capacity, pooled) = if capacity > BLOCK {
            let pooled = FREE_LARGE.lock().unwrap_or_else(|p| p.into_inner()).pop();
            (LONG_BLOCK, pooled)
        } else {
            (capacity, None)
        };
        let mut raw = match pooled {
            Some(mut raw) => {
                raw.clear();
                raw
            }
            None => Vec::with_capacity(capacity + DIRECT_ALIGN),
        };
        let addr = raw.as_ptr() as usize;
        let start = (DIRECT_ALIGN - addr % DIRECT_ALIGN) % DIRECT_ALIGN;
        raw.resize(start, 0);
        AlignedBuf {
            raw,
            start,
            capacity,
        }
    }

    /// Bytes in the block.
    fn len(&self) -> usize {
        self.raw.len() - self.start
    }

    fn filled(&self) -> &[u8] {
        &self.raw[self.start..]
    }

    /// Empty the block for reuse.
    fn clear(&mut self) {
        self.raw.truncate(self.start);
    }

    /// Append `bytes`, which must fit in the capacity left.
    fn extend(&mut self, bytes: &[u8]) {
        debug_assert!(self.len() + bytes.len() <= self.capacity);
        self.raw.extend_from_slice(bytes);
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.capacity == LONG_BLOCK {
            let mut free = FREE_LARGE.lock().unwrap_or_else(|p| p.into_inner());
            if free.len() < POOL_MAX {
                free.push(std::mem::take(&mut self.raw));
            }
        }
    }
}

/// The length of the next block of an upload, which starts at offset `at`
/// of its file, for a request that started at offset `from`: large blocks
/// end at a `DIRECT_ALIGN` boundary, so that all but the first of a request
/// start at one and can be written directly.
fn block_len(large: bool, from: u64, at: u64) -> usize {
    if large {
        let len = if at - from >= LONG_AFTER {
            LONG_BLOCK
        } else {
            LARGE_BLOCK
        };
        // The remainder is below DIRECT_ALIGN, so it fits in usize.
        len - (at % DIRECT_ALIGN as u64) as usize
    } else {
        BLOCK
    }
}

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

/// An upload's file and hash state between blocks, with the lock on the
/// upload: whoever holds this may append.
struct Idle {
    state: OwnedMutexGuard<UploadSlot>,
    file: std::fs::File,
    hasher: Option<Hasher>,
    /// The file's size (it is opened for appending).
    end: u64,
    /// Where the data whose writeback has not been started begins, a
    /// multiple of `WRITEBACK_EVERY`.
    unflushed: u64,
}

impl Idle {
    fn new(
        state: OwnedMutexGuard<UploadSlot>,
        file: std::fs::File,
        hasher: Option<Hasher>,
        size: u64,
    ) -> Self {
        Idle {
            state,
            file,
            hasher,
            end: size,
            unflushed: size - size % WRITEBACK_EVERY,
        }
    }

    /// Hash and append `block`, and start the writeback of whole
    /// `WRITEBACK_EVERY` ranges written so far.
    fn append(&mut self, block: &[u8]) -> io::Result<()> {
        if let Some(h) = self.hasher.as_mut() {
            h.update(block);
        }
        self.file.write_all(block)?;
        self.end += block.len() as u64;
        let flushable = self.end - self.end % WRITEBACK_EVERY;
        if flushable > self.unflushed {
            crate::sys::start_writeback(&self.file, self.unflushed, flushable - self.unflushed);
            self.unflushed = flushable;
        }
        Ok(())
    }
}

/// Write `data` at `at`, a `DIRECT_ALIGN` boundary: its whole aligned part
/// through `direct`, the unaligned end (and anything the filesystem
/// refuses to take directly) through `plain`, the page cache.
fn write_direct(
    direct: &std::fs::File,
    plain: &std::fs::File,
    data: &[u8],
    at: u64,
) -> io::Result<()> {
    let whole = data.len() - data.len() % DIRECT_ALIGN;
    match direct.write_all_at(&data[..whole], at) {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            plain.write_all_at(&data[..whole], at)?;
        }
        written => written?,
    }
    plain.write_all_at(&data[whole..], at + whole as u64)
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, BlobError> {
    r.map_err(|e| BlobError::Io(io::Error::other(e)))
}

/// A block being hashed and written through the page cache: hands back the
/// upload and the buffer.
type BlockWrite = JoinHandle<Result<(Idle, AlignedBuf), BlobError>>;

/// Large blocks in flight at once in a `Pipe`. Three rather than two made
/// chunked pushes (5 MiB chunks, five 1 MiB blocks each) 13–17% faster in
/// quick runs alternating 10× (monolithic ones about the same), for one
/// more block buffer per large upload; four were no faster
/// (docs/benchmarks.md).
const PIPE_DEPTH: usize = 3;

/// A block of a `Pipe` for its hashing thread, and how that thread says it
/// is done with it.
type ToHash = (Arc<AlignedBuf>, tokio::sync::oneshot::Sender<()>);

/// A block of a `Pipe` in flight: where it starts, its direct write, and
/// the word that it is hashed. Its buffer is free again once both are done.
struct PipeWrite {
    at: u64,
    block: Arc<AlignedBuf>,
    write: JoinHandle<io::Result<()>>,
    hashed: tokio::sync::oneshot::Receiver<()>,
}

/// A run of large blocks that start at `DIRECT_ALIGN` boundaries,
/// `PIPE_DEPTH` of them in flight: one thread hashes them in order, back to
/// back, for the whole run, while each is written on a blocking thread of
/// its own (`write_direct`: only a request's last block may have an
/// unaligned end). The receiving task then waits for a hash only when it
/// is `PIPE_DEPTH` blocks ahead.
struct Pipe {
    to_hash: tokio::sync::mpsc::Sender<ToHash>,
    hashing: JoinHandle<Option<Hasher>>,
    writes: std::collections::VecDeque<PipeWrite>,
    direct: Arc<std::fs::File>,
    /// The file without `O_DIRECT`, should a direct write be refused.
    plain: Arc<std::fs::File>,
    /// Where the first block of the run starts.
    start: u64,
    /// Where the last block pushed ends.
    end: u64,
    /// Where the first block whose write failed starts: the file is cut
    /// there, as later blocks may have been written after the gap.
    failed_at: Option<u64>,
}

impl Pipe {
    fn start(
        hasher: Option<Hasher>,
        direct: Arc<std::fs::File>,
        plain: Arc<std::fs::File>,
        end: u64,
    ) -> Self {
        let (to_hash, mut blocks) = tokio::sync::mpsc::channel::<ToHash>(PIPE_DEPTH);
        let hashing = tokio::task::spawn_blocking(move || {
            let mut hasher = hasher;
            while let Some((block, done)) = blocks.blocking_recv() {
                if let Some(h) = hasher.as_mut() {
                    h.update(block.filled());
                }
                drop(block);
                let _ = done.send(());
            }
            hasher
        });
        Pipe {
            to_hash,
            hashing,
            writes: std::collections::VecDeque::new(),
            direct,
            plain,
            start: end,
            end,
            failed_at: None,
        }
    }

    /// Hash and write `block`, which starts at the aligned offset `at`; only
    /// the last block of a run may be shorter than `LARGE_BLOCK`.
    async fn push(&mut self, block: AlignedBuf, at: u64) -> Result<(), BlobError> {
        debug_assert_eq!(at, self.end);
        self.end = at + block.len() as u64;
        let block = Arc::new(block);
        let (done, hashed) = tokio::sync::oneshot::channel();
        self.to_hash
            .send((Arc::clone(&block), done))
            .await
            .map_err(|_| io::Error::other("upload hashing stopped"))?;
        let (direct, plain) = (Arc::clone(&self.direct), Arc::clone(&self.plain));
        let writing = Arc::clone(&block);
        // The write does not wait for the hash (nor the hash for the write):
        // whoever pops the block waits for both, one wake-up each.
        let write = tokio::task::spawn_blocking(move || {
            write_direct(&direct, &plain, writing.filled(), at)
        });
        self.writes.push_back(PipeWrite {
            at,
            block,
            write,
            hashed,
        });
        Ok(())
    }

    /// Wait for the oldest block in flight; hands back its buffer.
    async fn pop(&mut self) -> Option<Result<AlignedBuf, BlobError>> {
        let PipeWrite {
            at,
            block,
            write,
            hashed,
        } = self.writes.pop_front()?;
        let written = joined(write.await);
        // A hashing thread that stopped has dropped the block too.
        let _ = hashed.await;
        let failed = match written {
            Ok(Ok(())) => {
                let block = Arc::try_unwrap(block).unwrap_or_else(|_| AlignedBuf::new(0));
                return Some(Ok(block));
            }
            Ok(Err(e)) => e.into(),
            Err(e) => e,
        };
        self.failed_at = Some(self.failed_at.map_or(at, |f| f.min(at)));
        Some(Err(failed))
    }

    /// Wait for every block in flight and the hash; hands back the hash
    /// state and where the blocks end, or the first failure and where the
    /// file must be cut.
    async fn drain(mut self) -> Result<(Option<Hasher>, u64), (BlobError, u64)> {
        let mut failure = None;
        while let Some(r) = self.pop().await {
            if let Err(e) = r {
                failure.get_or_insert(e);
            }
        }
        drop(self.to_hash);
        // A hash that did not finish is rebuilt from the file at commit.
        let hasher = self.hashing.await.ok().flatten();
        match (failure, self.failed_at) {
            (None, None) => Ok((hasher, self.end)),
            (Some(e), at) => Err((e, at.unwrap_or(self.end))),
            (None, Some(at)) => Err((
                io::Error::other("an earlier block of this request failed").into(),
                at,
            )),
        }
    }
}

/// Appends blocks to an upload while the next one is received: small ones
/// (and a large one that starts unaligned) hashed and written through the
/// page cache on a blocking thread, one block in flight, the others through
/// a `Pipe`. The lock travels with the block (or stays until the pipe's
/// writes are done), so a request dropped mid-write leaves the upload
/// locked until that write has finished.
struct BlockWriter {
    idle: Option<Idle>,
    in_flight: Option<BlockWrite>,
    pipe: Option<Pipe>,
    spare: Option<AlignedBuf>,
    /// The `O_DIRECT` descriptor for large blocks, once they are used, and
    /// the same file without it.
    direct: Option<(Arc<std::fs::File>, Arc<std::fs::File>)>,
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        // A request dropped with blocks of a pipe in flight: the lock is
        // given back only once they are written.
        if let (Some(pipe), Ok(runtime)) = (self.pipe.take(), tokio::runtime::Handle::try_current())
        {
            let idle = self.idle.take();
            runtime.spawn(async move {
                if let (Err((e, cut)), Some(mut idle)) = (pipe.drain().await, idle) {
                    // As in `drain_pipe`: the next request hears of it.
                    idle.state.failed = Some((e.io_kind(), e.to_string()));
                    let _ = idle.file.set_len(cut);
                }
            });
        }
    }
}

impl BlockWriter {
    fn new(idle: Idle) -> Self {
        BlockWriter {
            idle: Some(idle),
            in_flight: None,
            pipe: None,
            spare: None,
            direct: None,
        }
    }

    /// Wait for the blocks of the pipe, if any, and take its hash back.
    async fn drain_pipe(&mut self) -> Result<(), BlobError> {
        let Some(pipe) = self.pipe.take() else {
            return Ok(());
        };
        let drained = pipe.drain().await;
        let idle = self
            .idle
            .as_mut()
            .ok_or_else(|| io::Error::other("upload writer lost its file"))?;
        match drained {
            Ok((hasher, end)) => {
                idle.hasher = hasher;
                idle.end = end;
                idle.unflushed = idle.unflushed.max(end - end % WRITEBACK_EVERY);
                Ok(())
            }
            Err((e, cut)) => {
                idle.hasher = None;
                idle.state.failed = Some((e.io_kind(), e.to_string()));
                // What the file holds up to there is what was received,
                // in order; the client resumes from its size.
                idle.file.set_len(cut)?;
                idle.end = cut;
                Err(e)
            }
        }
    }

    /// Wait for the block in flight, if any.
    async fn settle(&mut self) -> Result<(), BlobError> {
        if let Some(task) = self.in_flight.take() {
            let (idle, mut buf) = joined(task.await)??;
            buf.clear();
            self.idle = Some(idle);
            self.spare = Some(buf);
        }
        Ok(())
    }

    /// Start hashing and writing `block`, which starts at offset `at` of the
    /// file (after the block before it); returns an empty buffer for
    /// `next_len` bytes to fill next. A large block that starts at a
    /// `DIRECT_ALIGN` boundary goes through the pipe, written directly.
    async fn write(
        &mut self,
        block: AlignedBuf,
        at: u64,
        large: bool,
        next_len: usize,
    ) -> Result<AlignedBuf, BlobError> {
        let aligned = large && at.is_multiple_of(DIRECT_ALIGN as u64);
        if let Some((direct, plain)) = self.direct.as_ref().filter(|_| aligned) {
            let (direct, plain) = (Arc::clone(direct), Arc::clone(plain));
            if self.pipe.is_none() {
                self.settle().await?;
                let hasher = self.idle.as_mut().and_then(|idle| idle.hasher.take());
                self.pipe = Some(Pipe::start(hasher, direct, plain, at));
            }
            let mut spare = None;
            if let Some(pipe) = self.pipe.as_mut() {
                if pipe.writes.len() >= PIPE_DEPTH {
                    match pipe.pop().await {
                        Some(Ok(buf)) => spare = Some(buf),
                        Some(Err(e)) => {
                            // The client hears of it now, once the rest of
                            // the pipe is written and the file cut where
                            // the failed block starts.
                            self.drain_pipe().await.ok();
                            if let Some(idle) = self.idle.as_mut() {
                                idle.state.failed = None;
                            }
                            return Err(e);
                        }
                        None => {}
                    }
                }
                pipe.push(block, at).await?;
            }
            // The pipe's own buffers go round; none other is kept.
            let recycled = spare.or_else(|| self.spare.take());
            self.spare = None;
            let next = match recycled {
                Some(mut buf) if buf.capacity >= next_len => {
                    buf.clear();
                    buf
                }
                _ => AlignedBuf::new(next_len),
            };
            return Ok(next);
        }
        self.drain_pipe().await?;
        self.settle().await?;
        let mut idle = self
            .idle
            .take()
            .ok_or_else(|| io::Error::other("upload writer lost its file"))?;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            if let Err(e) = idle.append(block.filled()) {
                // Whoever holds the lock next learns of it too: the request
                // may have been answered before this write finished.
                idle.state.failed = Some((e.kind(), e.to_string()));
                return Err(e.into());
            }
            Ok((idle, block))
        }));
        let next = match self.spare.take() {
            Some(spare) if spare.capacity >= next_len => spare,
            _ => AlignedBuf::new(next_len),
        };
        Ok(next)
    }

    /// At the end of a request whose blocks went through a pipe that ends
    /// at a `DIRECT_ALIGN` boundary: park the pipe (with the large-block
    /// permit) in the upload's slot for the next chunk, give the lock back,
    /// and return the parking's number for its idle timer. `spare`, a
    /// free buffer, is kept for the next chunk.
    fn park(&mut self, large: &mut Option<LargeBlocks>, spare: AlignedBuf) -> Option<u64> {
        let parkable = self.in_flight.is_none()
            && self.direct.is_some()
            && self.idle.is_some()
            && large.is_some()
            && self.pipe.as_ref().is_some_and(|p| {
                p.failed_at.is_none() && p.end.is_multiple_of(DIRECT_ALIGN as u64)
            });
        if !parkable {
            return None;
        }
        let (pipe, direct, large, idle) = (
            self.pipe.take()?,
            self.direct.take()?,
            large.take()?,
            self.idle.take()?,
        );
        let mut state = idle.state;
        state.parkings += 1;
        state.parked = Some(Parked {
            pipe,
            direct,
            large,
            spare: (spare.capacity > 0).then_some(spare),
        });
        Some(state.parkings)
    }

    /// Wait for the last block and hand back the file, hash and lock.
    async fn finish(mut self) -> Result<Idle, BlobError> {
        self.drain_pipe().await?;
        self.settle().await?;
        self.idle
            .take()
            .ok_or_else(|| io::Error::other("upload writer lost its file").into())
    }
}

/// Drain the pipe of parking number `parking` if it still waits for a
/// chunk after `PARK_IDLE`.
fn unpark_when_idle(lock: UploadLock, parking: u64) {
    tokio::spawn(async move {
        tokio::time::sleep(PARK_IDLE).await;
        let mut slot = lock.lock().await;
        if slot.parkings == parking {
            slot.unpark().await;
        }
    });
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Names of the entries of `dir` in order, if it exists.
fn sorted_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                if let Ok(name) = entry?.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    names.sort();
    Ok(names)
}

/// Blobs under `root/<algorithm>/<first two hex digits>/<hex>` whose digest
/// sorts after `after`, skipping whole shards that sort before it.
fn list_sorted(root: &Path, after: &str, limit: usize) -> Result<Vec<(Digest, u64)>, BlobError> {
    let mut out = Vec::new();
    for algorithm in sorted_names(root)? {
        if Algorithm::parse(&algorithm).is_err() {
            continue;
        }
        let prefix = format!("{algorithm}:");
        for shard in sorted_names(&root.join(&algorithm))? {
            let start = format!("{prefix}{shard}");
            if after.get(..start.len()).is_some_and(|a| start.as_str() < a) {
                continue;
            }
            let dir = root.join(&algorithm).join(&shard);
            for hex in sorted_names(&dir)? {
                let name = format!("{prefix}{hex}");
                if name.as_str() <= after {
                    continue;
                }
                let Ok(digest) = name.parse::<Digest>() else {
                    continue;
                };
                let size = match std::fs::metadata(dir.join(&hex)) {
                    Ok(m) => m.len(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                out.push((digest, size));
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

fn hash_file(file: &mut std::fs::File, algorithm: Algorithm) -> io::Result<Digest> {
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn body(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures_util::stream::iter(items))
    }

    #[test]
    fn large_blocks_end_aligned_and_grow_once_a_request_is_long() {
        const K: u64 = 1 << 10;
        const M: u64 = 1 << 20;
        // (large, request starts at, block starts at, block length)
        let table = [
            (false, 0, 0, BLOCK),
            (false, 0, 100 * M, BLOCK),
            (true, 0, 0, LARGE_BLOCK),
            (true, 0, 7 * M, LARGE_BLOCK),
            (true, 0, 8 * M, LONG_BLOCK),
            (true, 5 * M, 12 * M, LARGE_BLOCK),
            (true, 5 * M, 13 * M, LONG_BLOCK),
            // A request that starts unaligned: its first block ends at an
            // aligned offset, so the next starts at one.
            (true, 5 * M + 100, 5 * M + 100, LARGE_BLOCK - 100),
            (true, 3 * K, 8 * M + 3 * K, LONG_BLOCK - 3 * K as usize),
        ];
        for (large, from, at, len) in table {
            assert_eq!(block_len(large, from, at), len, "{large} {from} {at}");
            if large {
                assert_eq!((at + len as u64) % DIRECT_ALIGN as u64, 0);
            }
        }
    }

    /// A blob's bytes, read in small chunks and read ahead in large ones:
    /// both must agree.
    async fn read_all(store: &FsBlobStore, d: &Digest, range: Option<(u64, u64)>) -> Vec<u8> {
        let mut both = Vec::new();
        for chunk in [64 << 10, 1 << 20] {
            let mut s = store
                .open_chunks(d, range, chunk)
                .await
                .expect("open")
                .expect("present");
            let mut out = Vec::new();
            while let Some(c) = s.next().await {
                out.extend_from_slice(&c.expect("read"));
            }
            both.push(out);
        }
        assert!(both[0] == both[1], "small and large chunks agree");
        both.pop().unwrap_or_default()
    }

    /// A store in a fresh directory with one SHA-256 upload `id` begun.
    async fn store_with_upload(id: &str) -> (tempfile::TempDir, FsBlobStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        store
            .upload_create(id, Algorithm::Sha256)
            .await
            .expect("create");
        (dir, store)
    }

    #[test]
    fn large_block_buffers_are_reused_and_freed_once_no_large_upload_runs() {
        let first = AlignedBuf::new(LARGE_BLOCK);
        assert_eq!(first.capacity, LONG_BLOCK, "one size for every large block");
        let addr = first.raw.as_ptr();
        drop(first);
        let again = AlignedBuf::new(LONG_BLOCK);
        assert_eq!(again.raw.as_ptr(), addr, "the freed buffer is taken again");
        assert_eq!(again.filled().as_ptr() as usize % DIRECT_ALIGN, 0);
        assert_eq!(again.len(), 0);
        drop((again, AlignedBuf::new(BLOCK)));
        let pooled = || FREE_LARGE.lock().map(|f| f.len()).unwrap_or(0);
        assert_eq!(pooled(), 1, "small buffers are not kept");
        let permit = LargeBlocks::try_acquire().expect("a permit");
        release_idle_buffers();
        assert_eq!(pooled(), 1, "kept while a large upload runs");
        drop(permit);
        release_idle_buffers();
        assert_eq!(pooled(), 0);
    }

    #[tokio::test]
    async fn a_request_is_answered_before_its_last_block_is_written() {
        let (_dir, store) = store_with_upload("u").await;
        let n = store
            .upload_append("u", Some(0), body(&[b"hello ", b"world"]), 11)
            .await
            .expect("append");
        assert_eq!(n, 11);
        // The status waits for the write, and the incremental hash is back
        // in place once it is done.
        assert_eq!(store.upload_size("u").await.expect("size"), Some(11));
        let slot = store.lock_for("u");
        assert_eq!(slot.lock().await.hash.as_ref().map(|h| h.offset), Some(11));
        let d = Digest::of_bytes(Algorithm::Sha256, b"hello world");
        assert_eq!(store.upload_commit("u", &d).await.expect("commit"), 11);
        assert_eq!(read_all(&store, &d, None).await, b"hello world");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_write_that_fails_after_the_answer_fails_the_next_request() {
        let (dir, store) = store_with_upload("full").await;
        // Every write to /dev/full fails with ENOSPC.
        let path = dir.path().join("_uploads").join("full");
        std::fs::remove_file(&path).expect("remove");
        std::os::unix::fs::symlink("/dev/full", &path).expect("symlink");
        // One small block: it is still to be written when the request ends.
        let n = store
            .upload_append("full", Some(0), body(&[b"abc"]), 3)
            .await
            .expect("answered before the write");
        assert_eq!(n, 3);
        let err = store
            .upload_append("full", Some(3), body(&[b"def"]), 6)
            .await
            .expect_err("the failed write is reported");
        assert!(
            matches!(&err, BlobError::Io(e) if e.to_string().contains("earlier write")),
            "{err:?}"
        );
        // Reported once; then the upload is what its file says (empty).
        let err = store
            .upload_append("full", Some(3), body(&[b"def"]), 6)
            .await
            .expect_err("range");
        assert!(
            matches!(
                err,
                BlobError::RangeMismatch {
                    current: 0,
                    given: 3
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn writeback_starts_at_each_whole_range_across_requests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("upload");
        let mut expected = vec![1u8; 5 << 20];
        std::fs::write(&path, &expected).expect("write");
        let lock: UploadLock = Arc::default();
        let state = lock.clone().lock_owned().await;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        // A second 5 MiB chunk of a chunked upload: the first 8 MiB are
        // complete after it, the rest waits for the next range.
        let mut idle = Idle::new(state, file, Some(Hasher::new(Algorithm::Sha256)), 5 << 20);
        assert_eq!(idle.unflushed, 0);
        idle.append(&[2u8; 5 << 20]).expect("append");
        assert_eq!((idle.end, idle.unflushed), (10 << 20, 8 << 20));
        idle.append(&[3u8; 1 << 20]).expect("append");
        assert_eq!((idle.end, idle.unflushed), (11 << 20, 8 << 20));
        idle.append(&[4u8; 6 << 20]).expect("append");
        assert_eq!((idle.end, idle.unflushed), (17 << 20, 16 << 20));
        // A later request resumes at a range boundary below its start.
        let file = idle.file.try_clone().expect("dup");
        drop(idle);
        let resumed = Idle::new(lock.lock_owned().await, file, None, 17 << 20);
        assert_eq!(resumed.unflushed, 16 << 20);
        for (byte, len) in [(2u8, 5usize << 20), (3, 1 << 20), (4, 6 << 20)] {
            expected.extend(std::iter::repeat_n(byte, len));
        }
        assert!(
            std::fs::read(&path).expect("read") == expected,
            "bytes kept in order"
        );
    }

    #[tokio::test]
    async fn a_direct_write_that_is_refused_goes_through_the_page_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("upload");
        std::fs::write(&path, [b'a'; DIRECT_ALIGN]).expect("write");
        let store = FsBlobStore::open(dir.path()).expect("store");
        let Some((direct, plain)) = store.open_direct(&path) else {
            return; // no O_DIRECT here: nothing to refuse
        };
        // A buffer one byte past an aligned address: O_DIRECT refuses it.
        let mut buf = AlignedBuf::new(3 * DIRECT_ALIGN);
        let data: Vec<u8> = (0..2 * DIRECT_ALIGN + 6).map(|i| i as u8).collect();
        buf.extend(&[0]);
        buf.extend(&data);
        let refused = direct.write_at(&buf.filled()[1..=DIRECT_ALIGN], DIRECT_ALIGN as u64);
        if !matches!(&refused, Err(e) if e.kind() == io::ErrorKind::InvalidInput) {
            return; // this filesystem takes unaligned direct writes
        }
        write_direct(&direct, &plain, &buf.filled()[1..], DIRECT_ALIGN as u64)
            .expect("written the usual way");
        let mut expected = vec![b'a'; DIRECT_ALIGN];
        expected.extend(&data);
        let end = std::fs::metadata(&path).expect("meta").len();
        assert_eq!(end, expected.len() as u64);
        assert!(std::fs::read(&path).expect("read") == expected);
    }

    /// An upload file with its O_DIRECT and plain descriptors, if this
    /// filesystem takes O_DIRECT.
    fn direct_pair(dir: &Path) -> Option<(PathBuf, Arc<std::fs::File>, Arc<std::fs::File>)> {
        let path = dir.join("upload");
        std::fs::write(&path, b"").expect("create");
        let store = FsBlobStore::open(dir).expect("store");
        let (direct, plain) = store.open_direct(&path)?;
        Some((path, direct, plain))
    }

    fn block_of(bytes: &[u8]) -> AlignedBuf {
        let mut block = AlignedBuf::new(bytes.len());
        block.extend(bytes);
        block
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pipe_hashes_in_order_and_writes_an_unaligned_end_through_the_page_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some((path, direct, plain)) = direct_pair(dir.path()) else {
            return; // no O_DIRECT here
        };
        let parts: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; if i == 4 { 1000 } else { DIRECT_ALIGN * 3 }])
            .collect();
        let mut pipe = Pipe::start(Some(Hasher::new(Algorithm::Sha256)), direct, plain, 0);
        let mut at = 0;
        for part in &parts {
            if pipe.writes.len() >= PIPE_DEPTH {
                pipe.pop().await.expect("in flight").expect("written");
            }
            // The last block's 1,000 bytes go through the page cache.
            pipe.push(block_of(part), at).await.expect("push");
            at += part.len() as u64;
        }
        let (hasher, end) = pipe.drain().await.expect("drained");
        let all = parts.concat();
        assert_eq!(end, all.len() as u64);
        assert!(std::fs::read(&path).expect("read") == all);
        let digest = hasher.expect("hash").finish();
        assert_eq!(digest, Digest::of_bytes(Algorithm::Sha256, &all));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_writer_keeps_the_lock_until_its_pipe_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some((path, direct, plain)) = direct_pair(dir.path()) else {
            return;
        };
        let lock: UploadLock = Arc::default();
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        let mut writer =
            BlockWriter::new(Idle::new(lock.clone().lock_owned().await, file, None, 0));
        writer.direct = Some((direct, plain));
        let block = vec![9u8; LARGE_BLOCK];
        for i in 0..3u64 {
            let buf = writer
                .write(block_of(&block), i * LARGE_BLOCK as u64, true, LARGE_BLOCK)
                .await
                .expect("write");
            assert_eq!(buf.len(), 0);
        }
        assert!(
            writer.pipe.is_some(),
            "whole aligned large blocks use the pipe"
        );
        drop(writer);
        // Whoever gets the lock next finds every block written.
        let _next = lock.lock().await;
        assert_eq!(
            std::fs::metadata(&path).expect("meta").len(),
            3 * LARGE_BLOCK as u64
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_pipe_write_fails_the_request_and_keeps_what_came_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("upload");
        std::fs::write(&path, [b'a'; DIRECT_ALIGN]).expect("write");
        // Writes through a read-only descriptor fail (EBADF).
        let read_only = Arc::new(std::fs::File::open(&path).expect("open"));
        let lock: UploadLock = Arc::default();
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        let idle = Idle::new(
            lock.clone().lock_owned().await,
            file,
            None,
            DIRECT_ALIGN as u64,
        );
        let mut writer = BlockWriter::new(idle);
        writer.direct = Some((Arc::clone(&read_only), read_only));
        let block = vec![1u8; LARGE_BLOCK];
        let mut failed = None;
        for i in 0..4u64 {
            let at = (DIRECT_ALIGN + i as usize * LARGE_BLOCK) as u64;
            if let Err(e) = writer.write(block_of(&block), at, true, LARGE_BLOCK).await {
                failed = Some(e);
                break;
            }
        }
        assert!(
            matches!(&failed, Some(BlobError::Io(_))),
            "the request fails once the pipe is full: {failed:?}"
        );
        drop(writer);
        let slot = lock.lock().await;
        assert!(slot.failed.is_none(), "told to the client already");
        assert!(std::fs::read(&path).expect("read") == [b'a'; DIRECT_ALIGN]);
    }

    /// Deterministic bytes, and a body of them in odd-sized pieces (so
    /// blocks never line up with them).
    fn content(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect()
    }

    fn pieces(part: &[u8]) -> ByteStream {
        let items: Vec<Result<Bytes, io::Error>> = part
            .chunks(65_521)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures_util::stream::iter(items))
    }

    /// Where the parked pipe of upload `id` began and ends, if one is parked.
    async fn parked(store: &FsBlobStore, id: &str) -> Option<(u64, u64)> {
        let slot = store.lock_for(id);
        let slot = slot.lock().await;
        slot.parked.as_ref().map(|p| (p.pipe.start, p.pipe.end))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_chunk_continues_a_parked_pipe() {
        let (_dir, store) = store_with_upload("u").await;
        const C: u64 = 3 << 20;
        let all = content(3 * C as usize + 4096 + 1000, 1);
        // Appends all[from..to] as one chunk whose range ends at `to`.
        let chunk = |from: u64, to: u64| {
            store.upload_append(
                "u",
                Some(from),
                pieces(&all[from as usize..to as usize]),
                to,
            )
        };
        assert_eq!(chunk(0, C).await.expect("first chunk"), C);
        if !store.direct.load(Ordering::Relaxed) {
            return; // no O_DIRECT here: no pipes
        }
        assert_eq!(parked(&store, "u").await, Some((0, C)));
        // The next chunk continues the pipe: its run still begins at 0.
        assert_eq!(chunk(C, 2 * C).await.expect("second chunk"), 2 * C);
        assert_eq!(parked(&store, "u").await, Some((0, 2 * C)));
        // A short chunk drains it and goes through the page cache.
        let short = 2 * C + 4096;
        assert_eq!(chunk(2 * C, short).await.expect("short chunk"), short);
        assert_eq!(parked(&store, "u").await, None);
        assert_eq!(
            chunk(short, short + C).await.expect("long chunk"),
            short + C
        );
        assert_eq!(parked(&store, "u").await, Some((short, short + C)));
        // A chunk at the wrong offset is refused, and the pipe drained.
        let wrong = chunk(0, C).await;
        assert!(
            matches!(wrong, Err(BlobError::RangeMismatch { current, given: 0 }) if current == short + C),
            "{wrong:?}"
        );
        assert_eq!(parked(&store, "u").await, None);
        let end = all.len() as u64;
        assert_eq!(chunk(short + C, end).await.expect("last chunk"), end);
        // The incremental hash came through every hand-over.
        assert_eq!(store.upload_size("u").await.expect("size"), Some(end));
        {
            let slot = store.lock_for("u");
            assert_eq!(slot.lock().await.hash.as_ref().map(|h| h.offset), Some(end));
        }
        let d = Digest::of_bytes(Algorithm::Sha256, &all);
        assert_eq!(store.upload_commit("u", &d).await.expect("commit"), end);
        assert!(read_all(&store, &d, None).await == all);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parked_pipe_nobody_continues_is_drained() {
        let (_dir, store) = store_with_upload("u").await;
        const C: usize = 4 << 20;
        let all = content(C, 2);
        store
            .upload_append("u", Some(0), pieces(&all), C as u64)
            .await
            .expect("chunk");
        if parked(&store, "u").await.is_none() {
            assert!(
                !store.direct.load(Ordering::Relaxed),
                "a whole chunk parks its pipe"
            );
            return;
        }
        tokio::time::sleep(PARK_IDLE + Duration::from_millis(300)).await;
        let slot = store.lock_for("u");
        let slot = slot.lock().await;
        assert!(slot.parked.is_none(), "drained after {PARK_IDLE:?}");
        assert_eq!(slot.hash.as_ref().map(|h| h.offset), Some(C as u64));
        drop(slot);
        let path = store.upload_path("u").expect("path");
        assert!(std::fs::read(path).expect("read") == all);
    }

    /// Upload "u" holding `DIRECT_ALIGN` bytes of `a`, with a pipe parked
    /// after them whose one block in flight fails to be written (writes
    /// through a read-only descriptor fail with EBADF). Returns where the
    /// failed block starts and where the pipe ends.
    async fn park_a_failing_pipe(store: &FsBlobStore) -> (PathBuf, u64, u64) {
        let path = store.upload_path("u").expect("path");
        std::fs::write(&path, [b'a'; DIRECT_ALIGN]).expect("write");
        let read_only = Arc::new(std::fs::File::open(&path).expect("open"));
        let at = DIRECT_ALIGN as u64;
        let mut pipe = Pipe::start(None, Arc::clone(&read_only), Arc::clone(&read_only), at);
        pipe.push(block_of(&vec![1u8; LARGE_BLOCK]), at)
            .await
            .expect("push");
        let end = pipe.end;
        let slot = store.lock_for("u");
        let mut slot = slot.lock().await;
        slot.hash = None;
        slot.parked = Some(Parked {
            pipe,
            direct: (Arc::clone(&read_only), read_only),
            large: LargeBlocks::try_acquire().expect("a permit"),
            spare: None,
        });
        (path, at, end)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_of_a_parked_pipe_fails_the_chunk_that_continues_it() {
        let (_dir, store) = store_with_upload("u").await;
        let (path, at, end) = park_a_failing_pipe(&store).await;
        let next = content(3 << 20, 3);
        let continued = store
            .upload_append("u", Some(end), pieces(&next), end + next.len() as u64)
            .await;
        assert!(matches!(continued, Err(BlobError::Io(_))), "{continued:?}");
        // The file is cut where the failed block starts, and the client,
        // told already, resumes from there.
        assert_eq!(store.upload_size("u").await.expect("size"), Some(at));
        assert!(std::fs::read(&path).expect("read") == [b'a'; DIRECT_ALIGN]);
        let n = store
            .upload_append("u", Some(at), body(&[b"resumed"]), at + 7)
            .await
            .expect("resumed");
        assert_eq!(n, at + 7);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_status_query_reports_a_parked_pipe_that_failed() {
        let (_dir, store) = store_with_upload("u").await;
        let (path, at, _) = park_a_failing_pipe(&store).await;
        assert_eq!(store.upload_size("u").await.expect("size"), Some(at));
        assert!(std::fs::read(&path).expect("read") == [b'a'; DIRECT_ALIGN]);
        // The next request hears of the failure once; then the upload goes on.
        let told = store
            .upload_append("u", Some(at), body(&[b"x"]), at + 1)
            .await;
        assert!(matches!(told, Err(BlobError::Io(_))), "{told:?}");
        let n = store
            .upload_append("u", Some(at), body(&[b"x"]), at + 1)
            .await
            .expect("resumed");
        assert_eq!(n, at + 1);
    }

    #[tokio::test]
    async fn lists_blobs_in_digest_order_page_by_page() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        let mut expected = Vec::new();
        for (i, algorithm) in [Algorithm::Sha256, Algorithm::Sha512].iter().enumerate() {
            for n in 0..7u8 {
                let data = vec![n; usize::from(n) + i];
                let d = Digest::of_bytes(*algorithm, &data);
                let id = format!("u{i}{n}");
                store.upload_create(&id, *algorithm).await.expect("create");
                let chunk: ByteStream =
                    Box::pin(futures_util::stream::iter(vec![Ok::<_, io::Error>(
                        Bytes::from(data.clone()),
                    )]));
                store
                    .upload_append(&id, Some(0), chunk, 100)
                    .await
                    .expect("append");
                store.upload_commit(&id, &d).await.expect("commit");
                expected.push((d, data.len() as u64));
            }
        }
        expected.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut listed = Vec::new();
        let mut after: Option<Digest> = None;
        loop {
            let page = store.list_blobs(after.as_ref(), 3).await.expect("list");
            assert!(page.len() <= 3);
            let Some(last) = page.last() else { break };
            after = Some(last.0.clone());
            listed.extend(page);
        }
        assert_eq!(listed, expected);
        // Deleted blobs are no longer listed.
        assert!(store.delete(&expected[0].0).await.expect("delete"));
        let all = store.list_blobs(None, 100).await.expect("list");
        assert_eq!(all, expected[1..].to_vec());
    }

    #[tokio::test]
    async fn large_uploads_in_large_and_small_blocks_keep_every_byte_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        let content = content((14 << 20) + 12_345, 0);
        let d = Digest::of_bytes(Algorithm::Sha256, &content);
        store
            .upload_create("big", Algorithm::Sha256)
            .await
            .expect("create");
        // An unranged request (large blocks), a small ranged chunk (small
        // blocks), then a large ranged one, long enough for long blocks.
        let (a, b) = (3 << 20, (3 << 20) + 100_000);
        let n = store
            .upload_append("big", None, pieces(&content[..a]), 1 << 30)
            .await
            .expect("first");
        assert_eq!(n, a as u64);
        let n = store
            .upload_append("big", Some(a as u64), pieces(&content[a..b]), b as u64)
            .await
            .expect("second");
        assert_eq!(n, b as u64);
        let end = content.len() as u64;
        let n = store
            .upload_append("big", Some(b as u64), pieces(&content[b..]), end)
            .await
            .expect("third");
        assert_eq!(n, end);
        assert_eq!(store.upload_commit("big", &d).await.expect("commit"), end);
        // Where the filesystem takes O_DIRECT, the large blocks went past
        // the page cache: the first request's after its switch to large
        // blocks, and the third's after its first (unaligned) one, long
        // ones included.
        if store.direct.load(Ordering::Relaxed) {
            let blob = std::fs::File::open(store.blob_path(&d)).expect("blob");
            for offset in [(5 << 19) as u64, 5 << 20, 13 << 20] {
                let mut byte = [0u8; 1];
                let mut buf = tokio::io::ReadBuf::new(&mut byte);
                let cached = crate::sys::read_cached(&blob, &mut buf, 1, offset);
                assert!(
                    matches!(&cached, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                    "offset {offset}: {cached:?}"
                );
            }
        }
        assert_eq!(read_all(&store, &d, None).await, content);
        assert_eq!(
            LARGE_UPLOADS.load(Ordering::Acquire),
            0,
            "permits given back"
        );
    }

    #[tokio::test]
    async fn chunked_upload_commits_and_dedups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        let d = Digest::of_bytes(Algorithm::Sha256, b"hello world");
        store
            .upload_create("u1", Algorithm::Sha256)
            .await
            .expect("create");
        assert_eq!(
            store
                .upload_append("u1", Some(0), body(&[b"hello"]), 100)
                .await
                .expect("a"),
            5
        );
        let err = store
            .upload_append("u1", Some(3), body(&[b"x"]), 100)
            .await
            .expect_err("range");
        assert!(matches!(
            err,
            BlobError::RangeMismatch {
                current: 5,
                given: 3
            }
        ));
        assert_eq!(
            store
                .upload_append("u1", Some(5), body(&[b" wor", b"ld"]), 100)
                .await
                .expect("b"),
            11
        );
        assert_eq!(store.upload_commit("u1", &d).await.expect("commit"), 11);
        assert_eq!(store.stat(&d).await.expect("stat"), Some(11));
        assert_eq!(read_all(&store, &d, None).await, b"hello world");
        assert_eq!(read_all(&store, &d, Some((6, 10))).await, b"world");
        assert_eq!(store.upload_size("u1").await.expect("size"), None);

        // A second upload of the same content is deduplicated.
        store
            .upload_create("u2", Algorithm::Sha256)
            .await
            .expect("create");
        store
            .upload_append("u2", Some(0), body(&[b"hello world"]), 100)
            .await
            .expect("a");
        store.upload_commit("u2", &d).await.expect("commit");
        assert!(store.list_uploads().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn mismatch_and_limits_store_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        let wrong = Digest::of_bytes(Algorithm::Sha256, b"other");
        store
            .upload_create("u", Algorithm::Sha256)
            .await
            .expect("create");
        store
            .upload_append("u", Some(0), body(&[b"data"]), 100)
            .await
            .expect("append");
        let err = store
            .upload_commit("u", &wrong)
            .await
            .expect_err("mismatch");
        assert!(matches!(err, BlobError::DigestMismatch { .. }));
        assert_eq!(store.stat(&wrong).await.expect("stat"), None);
        assert_eq!(store.upload_size("u").await.expect("size"), None);

        store
            .upload_create("v", Algorithm::Sha256)
            .await
            .expect("create");
        let err = store
            .upload_append("v", Some(0), body(&[b"0123", b"456789"]), 8)
            .await
            .expect_err("limit");
        assert!(matches!(err, BlobError::TooLarge { limit: 8 }));
        assert!(matches!(
            store.upload_path("../x"),
            Err(BlobError::UploadUnknown(_))
        ));
    }

    #[tokio::test]
    async fn an_upload_cut_short_with_a_hole_resumes_from_the_hole() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = FsBlobStore::open(dir.path()).expect("open");
            store
                .upload_create("h", Algorithm::Sha256)
                .await
                .expect("create");
        }
        // As a crash mid-pipe leaves it: a later block written, the one
        // before it not.
        let path = dir.path().join("_uploads").join("h");
        let first = content(64 << 10, 4);
        let later = content(64 << 10, 5);
        {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open");
            file.write_all_at(&first, 0).expect("first");
            file.write_all_at(&later, 1 << 20).expect("later");
            let hole = crate::sys::first_hole(&file).expect("seek");
            if hole != first.len() as u64 {
                return; // this filesystem does not report holes
            }
        }
        // After the restart the upload resumes where the hole starts.
        let store = FsBlobStore::open(dir.path()).expect("reopen");
        let have = first.len() as u64;
        assert_eq!(store.upload_size("h").await.expect("size"), Some(have));
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), have);
        let rest = content(100_000, 6);
        let end = have + rest.len() as u64;
        let n = store
            .upload_append("h", Some(have), pieces(&rest), end)
            .await
            .expect("resumed");
        assert_eq!(n, end);
        let all = [first, rest].concat();
        let d = Digest::of_bytes(Algorithm::Sha256, &all);
        assert_eq!(store.upload_commit("h", &d).await.expect("commit"), end);
        assert!(read_all(&store, &d, None).await == all);
        // An upload this process writes is never cut, zeros and all.
        store
            .upload_create("z", Algorithm::Sha256)
            .await
            .expect("create");
        let zeros = vec![0u8; 3 << 20];
        store
            .upload_append("z", Some(0), pieces(&zeros), zeros.len() as u64)
            .await
            .expect("zeros");
        assert_eq!(
            store.upload_size("z").await.expect("size"),
            Some(zeros.len() as u64)
        );
    }

    #[tokio::test]
    async fn resumes_after_restart_and_rehashes_with_other_algorithm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let content = b"resumable content";
        {
            let store = FsBlobStore::open(dir.path()).expect("open");
            store
                .upload_create("r", Algorithm::Sha256)
                .await
                .expect("create");
            store
                .upload_append("r", Some(0), body(&[b"resumable "]), 100)
                .await
                .expect("a");
            // The request may be answered before its last block is
            // written; the upload's next operation waits for it.
            assert_eq!(store.upload_size("r").await.expect("size"), Some(10));
        }
        // A new instance has no in-memory hash state.
        let store = FsBlobStore::open(dir.path()).expect("reopen");
        assert_eq!(store.upload_size("r").await.expect("size"), Some(10));
        store
            .upload_append("r", None, body(&[b"content"]), 100)
            .await
            .expect("b");
        let d = Digest::of_bytes(Algorithm::Sha512, content);
        assert_eq!(
            store.upload_commit("r", &d).await.expect("commit"),
            content.len() as u64
        );
        assert_eq!(read_all(&store, &d, None).await, content);
    }
}
