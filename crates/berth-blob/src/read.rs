//! Streaming a stored blob (or a range of it) to a client.
//!
//! `tokio::fs::File` hands every read to a blocking thread and copies the
//! data twice (into its own buffer, then into the caller's). A download of
//! a blob already in the page cache spent most of its time on those
//! hand-offs (`docs/benchmarks.md`). [`FileReader`] instead copies cached
//! data straight into the caller's buffer from the async runtime
//! ([`sys::read_cached`]) and only goes to a blocking thread for data that
//! must come from the disk, where the kernel's read-ahead then brings in
//! what follows. Large downloads use [`ReadAhead`] instead: a blocking
//! thread reads the next chunk while the current one is sent.

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::task::JoinHandle;

use crate::sys;

/// Largest read done on a blocking thread at a time.
const BLOCKING_READ: usize = 256 << 10;

/// An [`AsyncRead`] over bytes `pos..end` of a file.
pub(crate) struct FileReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
    /// Whether reads from the page cache work here (cleared on `Unsupported`).
    cached_reads: bool,
    /// A read on a blocking thread, in flight.
    pending: Option<JoinHandle<io::Result<Vec<u8>>>>,
    /// Bytes a blocking read returned that the caller had no room for yet.
    spill: Vec<u8>,
    spill_at: usize,
}

impl FileReader {
    pub(crate) fn new(file: File, start: u64, end: u64) -> Self {
        FileReader {
            file: Arc::new(file),
            pos: start,
            end,
            cached_reads: true,
            pending: None,
            spill: Vec::new(),
            spill_at: 0,
        }
    }

    /// Hand out spilled bytes; true if there were any.
    fn drain_spill(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let rest = &self.spill[self.spill_at..];
        if rest.is_empty() {
            return false;
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        self.spill_at += n;
        if self.spill_at == self.spill.len() {
            self.spill = Vec::new();
            self.spill_at = 0;
        }
        true
    }
}

fn remaining(pos: u64, end: u64, room: usize) -> usize {
    usize::try_from(end.saturating_sub(pos)).map_or(room, |left| left.min(room))
}

impl AsyncRead for FileReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 || this.drain_spill(buf) {
            return Poll::Ready(Ok(()));
        }
        loop {
            if let Some(task) = this.pending.as_mut() {
                let joined = ready!(Pin::new(task).poll(cx));
                this.pending = None;
                let data = joined.map_err(io::Error::other)??;
                // An empty read means the file ended early: end of stream.
                this.pos += data.len() as u64;
                this.spill = data;
                this.spill_at = 0;
                this.drain_spill(buf);
                return Poll::Ready(Ok(()));
            }
            let want = remaining(this.pos, this.end, buf.remaining());
            if want == 0 {
                return Poll::Ready(Ok(()));
            }
            if this.cached_reads {
                match sys::read_cached(&this.file, buf, want, this.pos) {
                    Ok(n) => {
                        this.pos += n as u64;
                        return Poll::Ready(Ok(()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Unsupported => this.cached_reads = false,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let file = Arc::clone(&this.file);
            let (pos, len) = (this.pos, want.min(BLOCKING_READ));
            this.pending = Some(tokio::task::spawn_blocking(move || {
                let mut data = vec![0u8; len];
                let n = file.read_at(&mut data, pos)?;
                data.truncate(n);
                Ok(data)
            }));
        }
    }
}

/// A stream of the bytes `pos..end` of a file in chunks of `chunk` bytes,
/// for large downloads: while the server sends one chunk, a blocking thread
/// already reads the next, so copying out of the page cache and sending
/// share the cores instead of taking turns on one (docs/benchmarks.md).
/// Two buffers go round: the one being sent and the one being filled; a
/// buffer whose chunk the server has let go of is reused, not zeroed.
pub(crate) struct ReadAhead {
    file: Arc<File>,
    pos: u64,
    end: u64,
    chunk: usize,
    /// The read in flight, which hands back the buffer it filled.
    pending: Option<JoinHandle<io::Result<BytesMut>>>,
    /// The buffer of the chunk handed out before the last, for the next read.
    spare: Option<BytesMut>,
}

impl ReadAhead {
    pub(crate) fn new(file: File, start: u64, end: u64, chunk: usize) -> Self {
        ReadAhead {
            file: Arc::new(file),
            pos: start,
            end,
            chunk: chunk.max(1),
            pending: None,
            spare: None,
        }
    }

    /// Start reading the chunk at `pos` into `buf`, unless the range is done.
    fn read_next(&mut self, mut buf: BytesMut) {
        let want = remaining(self.pos, self.end, self.chunk);
        if want == 0 {
            return;
        }
        // Allocated (or reclaimed) here, not on the blocking thread: glibc
        // gives each thread that allocates an arena of its own, and every
        // blocking thread's arena kept its freed buffers (the resident set
        // during 64 concurrent pushes and pulls went from 38 to 65 MiB).
        buf.reserve(want);
        let (file, pos) = (Arc::clone(&self.file), self.pos);
        self.pending = Some(tokio::task::spawn_blocking(move || {
            sys::read_append(&file, &mut buf, want, pos)?;
            Ok(buf)
        }));
    }
}

impl futures_util::Stream for ReadAhead {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.pending.is_none() {
            let buf = this.spare.take().unwrap_or_default();
            this.read_next(buf);
        }
        let Some(task) = this.pending.as_mut() else {
            return Poll::Ready(None);
        };
        let joined = ready!(Pin::new(task).poll(cx));
        this.pending = None;
        let mut buf = match joined.map_err(io::Error::other).and_then(|r| r) {
            Ok(buf) => buf,
            Err(e) => {
                this.end = this.pos;
                return Poll::Ready(Some(Err(e)));
            }
        };
        if buf.is_empty() {
            // The file ended early: so does the stream.
            this.end = this.pos;
            return Poll::Ready(None);
        }
        this.pos += buf.len() as u64;
        let chunk = buf.split().freeze();
        // The buffer of the chunk sent before this one is free again by
        // now, as a rule: it takes the next read, and this one waits.
        let next = this.spare.replace(buf).unwrap_or_default();
        this.read_next(next);
        Poll::Ready(Some(Ok(chunk)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    fn file_with(content: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        f
    }

    #[tokio::test]
    async fn reads_whole_files_and_ranges_in_small_and_large_buffers() {
        let content: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        for (start, end) in [
            (0, 700_000),
            (1, 2),
            (5, 300_000),
            (699_999, 700_000),
            (10, 10),
        ] {
            for room in [1usize, 4096, 1 << 20] {
                let mut r = FileReader::new(file_with(&content), start, end);
                let mut out = Vec::new();
                let mut chunk = vec![0u8; room];
                loop {
                    let n = r.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&chunk[..n]);
                }
                assert_eq!(
                    out,
                    &content[start as usize..end as usize],
                    "{start}..{end} by {room}"
                );
            }
        }
    }

    async fn collect(mut stream: ReadAhead) -> io::Result<(Vec<u8>, Vec<usize>)> {
        use futures_util::StreamExt;
        let (mut out, mut sizes) = (Vec::new(), Vec::new());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            sizes.push(chunk.len());
            out.extend_from_slice(&chunk);
        }
        Ok((out, sizes))
    }

    #[tokio::test]
    async fn read_ahead_serves_whole_files_and_ranges_in_chunks() {
        let content: Vec<u8> = (0..3_300_000u32).map(|i| (i % 253) as u8).collect();
        for (start, end) in [
            (0, 3_300_000),
            (1, 2),
            (5, 2_100_000),
            (3_299_999, 3_300_000),
            (10, 10),
        ] {
            for chunk in [1usize, 4096, 1 << 20] {
                if chunk == 1 && end - start > 10_000 {
                    continue;
                }
                let r = ReadAhead::new(file_with(&content), start, end, chunk);
                let (out, sizes) = collect(r).await.unwrap();
                assert!(
                    out == content[start as usize..end as usize],
                    "{start}..{end} by {chunk}"
                );
                assert!(sizes.iter().all(|&n| n > 0 && n <= chunk), "{sizes:?}");
            }
        }
        // The file is shorter than the range asked for: the stream just ends.
        let r = ReadAhead::new(file_with(&content[..5000]), 0, 9000, 4096);
        assert_eq!(collect(r).await.unwrap().0, &content[..5000]);
    }

    #[tokio::test]
    async fn read_ahead_reuses_a_buffer_once_its_chunk_is_dropped() {
        use futures_util::StreamExt;
        let content = vec![5u8; 1 << 20];
        let mut r = ReadAhead::new(file_with(&content), 0, 1 << 20, 64 << 10);
        let first = r.next().await.unwrap().unwrap();
        let at = first.as_ptr();
        drop(first);
        // The second chunk was read into another buffer while the first
        // was out; the third goes into the first's.
        let second = r.next().await.unwrap().unwrap();
        assert_ne!(second.as_ptr(), at);
        drop(second);
        let third = r.next().await.unwrap().unwrap();
        assert_eq!(third.as_ptr(), at, "the first chunk's buffer is reused");
        assert_eq!(third.len(), 64 << 10);
    }

    #[tokio::test]
    async fn blocking_path_serves_the_same_bytes_and_a_short_file_ends_the_stream() {
        let content: Vec<u8> = (0..600_000u32).map(|i| (i % 241) as u8).collect();
        let mut r = FileReader::new(file_with(&content), 3, 600_000);
        r.cached_reads = false;
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, &content[3..]);

        // The file is shorter than the range asked for: the stream just ends.
        let mut r = FileReader::new(file_with(&content[..1000]), 0, 5000);
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, &content[..1000]);
    }
}
