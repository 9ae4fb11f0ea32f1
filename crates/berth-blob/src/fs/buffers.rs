//! Block buffers: aligned for direct I/O, large ones pooled and bounded.

use super::*;

/// Uploads writing large blocks now.
pub(super) static LARGE_UPLOADS: AtomicUsize = AtomicUsize::new(0);

/// Permission to write large blocks, given back when dropped.
pub(super) struct LargeBlocks;

impl LargeBlocks {
    pub(super) fn try_acquire() -> Option<LargeBlocks> {
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

/// A block buffer whose bytes start at a `DIRECT_ALIGN` boundary in memory,
/// as `O_DIRECT` requires.
///
/// The buffer is never zero-filled: only the padding before the aligned
/// start is written when it is made, and the bytes are appended, so a new
/// block's memory is touched once, by the copy of the data into it.
pub(super) struct AlignedBuf {
    /// Padding up to the aligned start, then the block's bytes; its
    /// allocation never grows, so the start stays aligned.
    pub(super) raw: Vec<u8>,
    pub(super) start: usize,
    pub(super) capacity: usize,
}

/// Free large block buffers (all `LONG_BLOCK` long, whatever the block
/// size asked for), kept for the next large blocks: their pages are
/// already mapped, where fresh memory costs a page fault per 4 KiB (the
/// allocator maps buffers this large on their own and unmaps them when
/// freed, see the binary's `memory` module). At most `POOL_MAX` are kept;
/// `release_idle_buffers` frees them once no large upload runs.
pub(super) static FREE_LARGE: StdMutex<Vec<Vec<u8>>> = StdMutex::new(Vec::new());

/// One large upload's buffers: `PIPE_DEPTH` in flight, one being filled.
pub(super) const POOL_MAX: usize = PIPE_DEPTH + 1;

/// Free the pooled large block buffers if no large upload is running (the
/// binary calls this every few seconds).
pub fn release_idle_buffers() {
    if LARGE_UPLOADS.load(Ordering::Acquire) == 0 {
        let freed = std::mem::take(&mut *FREE_LARGE.lock().unwrap_or_else(|p| p.into_inner()));
        drop(freed);
    }
}

impl AlignedBuf {
    pub(super) fn new(capacity: usize) -> Self {
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
    pub(super) fn len(&self) -> usize {
        self.raw.len() - self.start
    }

    pub(super) fn filled(&self) -> &[u8] {
        &self.raw[self.start..]
    }

    /// Empty the block for reuse.
    pub(super) fn clear(&mut self) {
        self.raw.truncate(self.start);
    }

    /// Append `bytes`, which must fit in the capacity left.
    pub(super) fn extend(&mut self, bytes: &[u8]) {
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
pub(super) fn block_len(large: bool, from: u64, at: u64) -> usize {
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
