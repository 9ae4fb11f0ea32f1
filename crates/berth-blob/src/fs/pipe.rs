//! The upload write pipeline: blocks hashed and written off the async
//! runtime, large ones with direct I/O, several in flight.

use super::*;

/// An upload's file and hash state between blocks, with the lock on the
/// upload: whoever holds this may append.
pub(super) struct Idle {
    pub(super) state: OwnedMutexGuard<UploadSlot>,
    pub(super) file: std::fs::File,
    pub(super) hasher: Option<Hasher>,
    /// The file's size (it is opened for appending).
    pub(super) end: u64,
    /// Where the data whose writeback has not been started begins, a
    /// multiple of `WRITEBACK_EVERY`.
    pub(super) unflushed: u64,
}

impl Idle {
    pub(super) fn new(
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
    pub(super) fn append(&mut self, block: &[u8]) -> io::Result<()> {
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
pub(super) fn write_direct(
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

pub(super) fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, BlobError> {
    r.map_err(|e| BlobError::Io(io::Error::other(e)))
}

/// A block being hashed and written through the page cache: hands back the
/// upload and the buffer.
pub(super) type BlockWrite = JoinHandle<Result<(Idle, AlignedBuf), BlobError>>;

/// Large blocks in flight at once in a `Pipe`: three keep the disk busy
/// during chunked pushes for one more buffer per upload; four gain nothing
/// (figures in docs/benchmarks.md).
pub(super) const PIPE_DEPTH: usize = 3;

/// A block of a `Pipe` for its hashing thread, and how that thread says it
/// is done with it.
pub(super) type ToHash = (Arc<AlignedBuf>, tokio::sync::oneshot::Sender<()>);

/// A block of a `Pipe` in flight: where it starts, its direct write, and
/// the word that it is hashed. Its buffer is free again once both are done.
pub(super) struct PipeWrite {
    pub(super) at: u64,
    pub(super) block: Arc<AlignedBuf>,
    pub(super) write: JoinHandle<io::Result<()>>,
    pub(super) hashed: tokio::sync::oneshot::Receiver<()>,
}

/// A run of large blocks that start at `DIRECT_ALIGN` boundaries,
/// `PIPE_DEPTH` of them in flight: one thread hashes them in order, back to
/// back, for the whole run, while each is written on a blocking thread of
/// its own (`write_direct`: only a request's last block may have an
/// unaligned end). The receiving task then waits for a hash only when it
/// is `PIPE_DEPTH` blocks ahead.
pub(super) struct Pipe {
    pub(super) to_hash: tokio::sync::mpsc::Sender<ToHash>,
    pub(super) hashing: JoinHandle<Option<Hasher>>,
    pub(super) writes: std::collections::VecDeque<PipeWrite>,
    pub(super) direct: Arc<std::fs::File>,
    /// The file without `O_DIRECT`, should a direct write be refused.
    pub(super) plain: Arc<std::fs::File>,
    /// Where the first block of the run starts.
    pub(super) start: u64,
    /// Where the last block pushed ends.
    pub(super) end: u64,
    /// Where the first block whose write failed starts: the file is cut
    /// there, as later blocks may have been written after the gap.
    pub(super) failed_at: Option<u64>,
}

impl Pipe {
    pub(super) fn start(
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
    pub(super) async fn push(&mut self, block: AlignedBuf, at: u64) -> Result<(), BlobError> {
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
    pub(super) async fn pop(&mut self) -> Option<Result<AlignedBuf, BlobError>> {
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
    pub(super) async fn drain(mut self) -> Result<(Option<Hasher>, u64), (BlobError, u64)> {
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
pub(super) struct BlockWriter {
    pub(super) idle: Option<Idle>,
    pub(super) in_flight: Option<BlockWrite>,
    pub(super) pipe: Option<Pipe>,
    pub(super) spare: Option<AlignedBuf>,
    /// The `O_DIRECT` descriptor for large blocks, once they are used, and
    /// the same file without it.
    pub(super) direct: Option<(Arc<std::fs::File>, Arc<std::fs::File>)>,
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
    pub(super) fn new(idle: Idle) -> Self {
        BlockWriter {
            idle: Some(idle),
            in_flight: None,
            pipe: None,
            spare: None,
            direct: None,
        }
    }

    /// Wait for the blocks of the pipe, if any, and take its hash back.
    pub(super) async fn drain_pipe(&mut self) -> Result<(), BlobError> {
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
    pub(super) async fn settle(&mut self) -> Result<(), BlobError> {
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
    pub(super) async fn write(
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
    pub(super) fn park(
        &mut self,
        large: &mut Option<LargeBlocks>,
        spare: AlignedBuf,
    ) -> Option<u64> {
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
    pub(super) async fn finish(mut self) -> Result<Idle, BlobError> {
        self.drain_pipe().await?;
        self.settle().await?;
        self.idle
            .take()
            .ok_or_else(|| io::Error::other("upload writer lost its file").into())
    }
}

/// Drain the pipe of parking number `parking` if it still waits for a
/// chunk after `PARK_IDLE`.
pub(super) fn unpark_when_idle(lock: UploadLock, parking: u64) {
    tokio::spawn(async move {
        tokio::time::sleep(PARK_IDLE).await;
        let mut slot = lock.lock().await;
        if slot.parkings == parking {
            slot.unpark().await;
        }
    });
}
