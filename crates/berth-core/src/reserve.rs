//! Room kept on the embedded database's disk, so that an operator can free
//! space through Berth when the disk is full.
//!
//! A full disk refuses SQLite's writes, deletes included (they grow the
//! write-ahead log), and a garbage collection must record its run before it
//! deletes anything. So Berth keeps a file of a few MiB beside the database.
//! When a delete or a collection meets a full disk, the file is removed and
//! the operation retried in the room it leaves; until the file can be
//! written again, new uploads are refused at once (507), so that the room
//! goes to deletes, not to the next push. After each collection, and every
//! few seconds, Berth tries to write the file again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The default size of the reserve: room for many deletes and a run's records.
pub const DEFAULT_RESERVE_BYTES: u64 = 16 << 20;

/// A file that holds room on the database's disk for deletes.
#[derive(Debug)]
pub struct SpaceReserve {
    path: PathBuf,
    size: u64,
    /// Whether the room is given up (the file is absent or incomplete).
    released: AtomicBool,
}

impl SpaceReserve {
    /// Keep `size` bytes at `path`, writing the file now if it is missing
    /// or short. On a disk already too full for it, the reserve starts out
    /// released (uploads are refused until there is room).
    pub fn open(path: &Path, size: u64) -> std::io::Result<SpaceReserve> {
        let reserve = SpaceReserve {
            path: path.to_owned(),
            size,
            released: AtomicBool::new(true),
        };
        reserve.restore()?;
        Ok(reserve)
    }

    /// Whether the room is given up, by this process or by another one
    /// (`berth gc` beside a running server) that removed the file.
    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire) || !self.path.exists()
    }

    /// Give the room up for a delete; true when there was room to give.
    pub fn release(&self) -> bool {
        let had = !self.released.swap(true, Ordering::AcqRel);
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                tracing::warn!(
                    path = %self.path.display(),
                    "the disk is full: released the space reserve for deletes; uploads are refused until space is freed"
                );
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => had,
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "could not release the space reserve");
                false
            }
        }
    }

    /// Write the file again if it is missing; true when the room is held
    /// now. A disk still too full leaves it released (nothing half-written).
    pub fn restore(&self) -> std::io::Result<bool> {
        // The file itself is the truth: another process (`berth gc`) may
        // have released it.
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() == self.size) {
            self.released.store(false, Ordering::Release);
            return Ok(true);
        }
        // Only with room to spare: writing the reserve back as soon as a
        // delete has freed it would take the room that delete needs.
        if !self.room_for_twice()? {
            self.released.store(true, Ordering::Release);
            return Ok(false);
        }
        match self.write() {
            Ok(()) => {
                self.released.store(false, Ordering::Release);
                tracing::info!(path = %self.path.display(), bytes = self.size, "space reserve in place");
                Ok(true)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&self.path);
                if crate::error::io_fault(&e) == Some(crate::Fault::StorageFull) {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Whether the disk has room for the reserve twice over.
    fn room_for_twice(&self) -> std::io::Result<bool> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let fs = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
        let free = fs.f_bavail.saturating_mul(fs.f_frsize);
        Ok(free >= self.size.saturating_mul(2))
    }

    /// Write the whole file with real blocks (a sparse file would hold no
    /// room) and make it durable.
    fn write(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("reserve-tmp");
        let mut file = std::fs::File::create(&tmp)?;
        let block = vec![0u8; 1 << 20];
        let mut left = self.size;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            file.write_all(&block[..n])?;
            left -= n as u64;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_releases_and_restores() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("reserve");
        let r = SpaceReserve::open(&path, 3 << 20).expect("open");
        assert!(!r.is_released());
        assert_eq!(std::fs::metadata(&path).expect("file").len(), 3 << 20);
        assert!(r.release());
        assert!(r.is_released());
        assert!(!path.exists());
        // Released twice gives nothing more.
        assert!(!r.release());
        assert!(r.restore().expect("restore"));
        assert!(!r.is_released());
        assert_eq!(std::fs::metadata(&path).expect("file").len(), 3 << 20);
    }
}
