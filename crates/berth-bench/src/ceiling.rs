//! The push ceiling: how fast this machine can take a blob over loopback
//! TCP, hash it with SHA-256 and (optionally) make it durable, with no HTTP,
//! no database and no registry in the way.
//!
//! The target for a monolithic push compares it with the SHA-256
//! speed of one core and the disk's write speed, each measured alone. A
//! push needs both at once, and the client's sending too, on the same
//! cores; this minimal program does exactly that much, in the shape Berth
//! uses (2 MiB blocks read straight from the socket, hashed in order on one
//! thread while others write them past the page cache, `fdatasync` before
//! the answer), so a registry's push can be set against what the bare work
//! reaches on the machine. It is a reference, not a strict upper bound: a
//! registry that overlaps its work differently may at times do better.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use anyhow::{bail, Context};
use berth_oci::{Algorithm, Hasher};
use bytes::Bytes;

/// Block size, as Berth's large blocks.
const BLOCK: usize = 2 << 20;
/// Blocks in flight, as in Berth's upload pipe.
const DEPTH: usize = 3;
/// Alignment `O_DIRECT` asks of buffers, offsets and lengths.
const ALIGN: usize = 4096;

/// A `BLOCK`-sized buffer that starts at an `ALIGN` boundary.
struct Block {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl Block {
    fn new() -> Self {
        let raw = vec![0; BLOCK + ALIGN];
        let start = (ALIGN - raw.as_ptr() as usize % ALIGN) % ALIGN;
        Block { raw, start, len: 0 }
    }

    fn filled(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// Read exactly `len` bytes from `from` into the block.
    fn fill(&mut self, from: &mut impl Read, len: usize) -> std::io::Result<()> {
        self.len = len;
        from.read_exact(&mut self.raw[self.start..self.start + len])
    }
}

/// Where blocks go: the file with and without `O_DIRECT` (the latter for
/// an unaligned last block, or for filesystems that refuse `O_DIRECT`).
struct Target {
    path: PathBuf,
    direct: Option<File>,
    plain: File,
}

impl Target {
    fn create(path: PathBuf) -> anyhow::Result<Self> {
        let plain = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .ok();
        Ok(Target {
            path,
            direct,
            plain,
        })
    }

    fn write(&self, bytes: &[u8], at: u64) -> std::io::Result<()> {
        match &self.direct {
            Some(direct) if bytes.len().is_multiple_of(ALIGN) => direct.write_all_at(bytes, at),
            _ => self.plain.write_all_at(bytes, at),
        }
    }
}

/// A block handed to the hashing thread and, with a target, to the writing
/// thread; each says on its channel when it is done with it.
struct InFlight {
    block: Arc<Block>,
    hashed: mpsc::Receiver<()>,
    written: Option<mpsc::Receiver<std::io::Result<()>>>,
}

impl InFlight {
    /// Wait for the hash and the write; hands the buffer back.
    fn finish(self) -> anyhow::Result<Block> {
        self.hashed.recv().context("hashing thread stopped")?;
        if let Some(written) = self.written {
            written.recv().context("writing thread stopped")??;
        }
        Arc::try_unwrap(self.block).map_err(|_| anyhow::anyhow!("block still shared"))
    }
}

type Job<T> = (Arc<Block>, mpsc::SyncSender<T>);

/// Receive one body of `len` bytes from `conn` and hash it; with a target,
/// also write it there and fdatasync it. Returns the digest.
fn receive(conn: &mut TcpStream, len: usize, target: Option<Target>) -> anyhow::Result<String> {
    let (to_hash, hash_jobs) = mpsc::sync_channel::<Job<()>>(DEPTH);
    let hashing = std::thread::spawn(move || {
        let mut hasher = Hasher::new(Algorithm::Sha256);
        for (block, done) in hash_jobs {
            hasher.update(block.filled());
            drop(block);
            let _ = done.send(());
        }
        hasher.finish().to_string()
    });
    // One writing thread per block in flight, so that writes overlap as
    // Berth's do (each on a blocking thread of its own).
    let target = target.map(Arc::new);
    let writing: Vec<_> = target
        .iter()
        .flat_map(|target| std::iter::repeat_n(target, DEPTH))
        .map(|target| {
            let target = Arc::clone(target);
            let (to_write, write_jobs) = mpsc::sync_channel::<(Job<std::io::Result<()>>, u64)>(1);
            let thread = std::thread::spawn(move || {
                for ((block, done), at) in write_jobs {
                    let r = target.write(block.filled(), at);
                    drop(block);
                    let _ = done.send(r);
                }
            });
            (to_write, thread)
        })
        .collect();

    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut at = 0usize;
    while at < len {
        let mut block = if in_flight.len() >= DEPTH {
            in_flight.pop_front().map(InFlight::finish).transpose()?
        } else {
            None
        }
        .unwrap_or_else(Block::new);
        let n = BLOCK.min(len - at);
        block.fill(conn, n).context("receiving the body")?;
        let block = Arc::new(block);
        let (hash_done, hashed) = mpsc::sync_channel(1);
        to_hash
            .send((Arc::clone(&block), hash_done))
            .context("hashing thread stopped")?;
        let written = match writing.get((at / BLOCK) % DEPTH) {
            Some((to_write, _)) => {
                let (write_done, written) = mpsc::sync_channel(1);
                to_write
                    .send(((Arc::clone(&block), write_done), at as u64))
                    .context("writing thread stopped")?;
                Some(written)
            }
            None => None,
        };
        in_flight.push_back(InFlight {
            block,
            hashed,
            written,
        });
        at += n;
    }
    for block in in_flight {
        block.finish()?;
    }
    drop(to_hash);
    let digest = hashing
        .join()
        .map_err(|_| anyhow::anyhow!("hashing thread panicked"))?;
    for (to_write, thread) in writing {
        drop(to_write);
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("writing thread panicked"))?;
    }
    if let Some(target) = target {
        target.plain.sync_data().context("fdatasync")?;
        std::fs::remove_file(&target.path)?;
    }
    Ok(digest)
}

/// MB/s of pushing `bodies` (content and its digest) one after another over
/// one loopback connection to a minimal receiver that hashes each and, with
/// `dir`, writes it to a new file there and fdatasyncs it before it
/// answers. Timed as a client times a push: from the first byte sent to the
/// answer after the last body. Fails if a digest comes out wrong.
pub fn push_ceiling(dir: Option<&Path>, bodies: &[(Bytes, String)]) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let lens: Vec<usize> = bodies.iter().map(|(b, _)| b.len()).collect();
    let dir = dir.map(Path::to_path_buf);
    let receiver = std::thread::spawn(move || -> anyhow::Result<Vec<String>> {
        let (mut conn, _) = listener.accept()?;
        let mut digests = Vec::with_capacity(lens.len());
        for (i, len) in lens.into_iter().enumerate() {
            let target = match &dir {
                Some(d) => Some(Target::create(d.join(format!("push-ceiling-{i}.tmp")))?),
                None => None,
            };
            digests.push(receive(&mut conn, len, target)?);
            conn.write_all(b"k")?;
        }
        Ok(digests)
    });
    let mut conn = TcpStream::connect(addr)?;
    let start = Instant::now();
    for (body, _) in bodies {
        conn.write_all(body)?;
        let mut answer = [0u8; 1];
        conn.read_exact(&mut answer)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let digests = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    for ((_, want), got) in bodies.iter().zip(&digests) {
        if want != got {
            bail!("push ceiling: digest {got}, expected {want}");
        }
    }
    let bytes: usize = bodies.iter().map(|(b, _)| b.len()).sum();
    Ok(bytes as f64 / 1e6 / secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::Digest;

    fn body(len: usize, seed: u8) -> (Bytes, String) {
        let b: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect();
        let d = Digest::of_bytes(Algorithm::Sha256, &b).to_string();
        (Bytes::from(b), d)
    }

    #[test]
    fn hashes_every_byte_of_bodies_of_any_length_and_removes_its_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Whole blocks, a partial last block with an unaligned end, and
        // more blocks than are in flight at once.
        let bodies = vec![
            body(2 * BLOCK, 1),
            body(BLOCK + 12_345, 2),
            body(7 * BLOCK + 1, 3),
            body(1, 4),
        ];
        for dir in [Some(dir.path()), None] {
            let mb_s = push_ceiling(dir, &bodies).expect("push ceiling");
            assert!(mb_s > 0.0);
        }
        // The stored copies are removed once measured.
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn a_wrong_digest_fails_the_measurement() {
        let (b, _) = body(BLOCK, 5);
        let (_, other) = body(BLOCK, 6);
        let err = push_ceiling(None, &[(b, other)]).expect_err("wrong digest");
        assert!(err.to_string().contains("expected"), "{err}");
    }
}
