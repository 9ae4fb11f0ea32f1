//! Streaming a stored blob (or a range of it) to a client.
//!
//! `tokio::fs::File` hands every read to a blocking thread and copies the
//! data twice (into its own buffer, then into the caller's). A download of
//! a blob already in the page cache spent most of its time on those
//! hand-offs (`docs/benchmarks.md`). [`FileReader`] instead copies cached
//! data straight into the caller's buffer from the async runtime
//! ([`sys::read_cached`]) and only goes to a blocking thread for data that
//! must come from the disk, where the kernel's read-ahead then brings in
//! what follows.

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

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
