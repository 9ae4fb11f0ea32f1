//! The system calls the standard library lacks, and the crate's only
//! `unsafe` code:
//! - a positioned read that returns at once, with `WouldBlock`, instead of
//!   waiting for the disk (`preadv2` with `RWF_NOWAIT`, Linux 4.14 and
//!   later). It lets a download copy data that is already in the page cache
//!   straight from the async runtime, without handing each chunk to a
//!   blocking thread and back (see `read.rs`);
//! - a positioned read into memory not zeroed first, for a download's
//!   read-ahead, which reuses its buffers (see `read.rs`);
//! - starting the writeback of a file range without waiting for it
//!   (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`), so that an upload's
//!   data goes to the disk while the rest of it is still arriving, and the
//!   fsync at commit has little left to do (see `fs.rs`);
//! - finding the first hole of a file (`lseek` with `SEEK_HOLE`), where an
//!   upload's blocks written in parallel were cut short by a crash (see
//!   `fs.rs`).
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use tokio::io::ReadBuf;

/// Read at most `max` bytes at `offset` into the unfilled part of `buf`,
/// only if they are in the page cache. Returns the count read (0 at the end
/// of the file); `WouldBlock` when the data would have to come from the
/// disk; `Unsupported` where the filesystem or kernel cannot do this.
#[cfg(target_os = "linux")]
pub(crate) fn read_cached(
    file: &File,
    buf: &mut ReadBuf<'_>,
    max: usize,
    offset: u64,
) -> io::Result<usize> {
    preadv2(file, buf, max, offset, libc::RWF_NOWAIT).map_err(|e| match e.raw_os_error() {
        Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => {
            io::Error::new(io::ErrorKind::Unsupported, e)
        }
        _ => e,
    })
}

/// Elsewhere every read goes through a blocking thread.
#[cfg(not(target_os = "linux"))]
pub(crate) fn read_cached(
    _file: &File,
    _buf: &mut ReadBuf<'_>,
    _max: usize,
    _offset: u64,
) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// One `preadv2` of at most `max` bytes at `offset` into the unfilled part
/// of `buf`, which it then counts as filled.
#[cfg(target_os = "linux")]
fn preadv2(
    file: &File,
    buf: &mut ReadBuf<'_>,
    max: usize,
    offset: u64,
    flags: libc::c_int,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;

    let offset = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))?;
    // SAFETY: the kernel only writes into the unfilled part, and the bytes
    // it reports as written are marked initialised below, nothing more.
    let unfilled = unsafe { buf.unfilled_mut() };
    let len = unfilled.len().min(max);
    let iov = libc::iovec {
        iov_base: unfilled.as_mut_ptr().cast(),
        iov_len: len,
    };
    // SAFETY: `iov` describes `len` writable bytes of `unfilled`, which
    // outlives the call; the descriptor stays open while `file` is borrowed.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = usize::try_from(n).map_err(io::Error::other)?.min(len);
    // SAFETY: the kernel wrote these `n` bytes of the unfilled part.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Ok(n)
}

/// Append up to `max` bytes read at `offset` (fewer only at the end of the
/// file) to `buf`, waiting for the disk if need be, without first zeroing
/// the room they go to. Returns the count appended. The caller reserves the
/// room beforehand where it matters which thread allocates it.
pub(crate) fn read_append(
    file: &File,
    buf: &mut bytes::BytesMut,
    max: usize,
    offset: u64,
) -> io::Result<usize> {
    buf.reserve(max);
    let mut done = 0;
    while done < max {
        let spare = &mut buf.spare_capacity_mut()[..max - done];
        let mut room = ReadBuf::uninit(spare);
        let n = read_at_most(file, &mut room, offset + done as u64)?;
        if n == 0 {
            break;
        }
        // SAFETY: `read_at_most` initialised the first `n` bytes of the
        // spare capacity (`room` counts them as filled).
        unsafe { bytes::BufMut::advance_mut(buf, n) };
        done += n;
    }
    Ok(done)
}

#[cfg(target_os = "linux")]
fn read_at_most(file: &File, room: &mut ReadBuf<'_>, offset: u64) -> io::Result<usize> {
    loop {
        match preadv2(file, room, usize::MAX, offset, 0) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn read_at_most(file: &File, room: &mut ReadBuf<'_>, offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let n = file.read_at(room.initialize_unfilled(), offset)?;
    room.advance(n);
    Ok(n)
}

/// Ask the kernel to start writing `len` bytes at `offset` of `file` to the
/// disk, without waiting. Only a hint: durability still comes from the
/// fsync at commit, so failures are ignored (and where the call does not
/// exist the writeback simply starts later).
#[cfg(target_os = "linux")]
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;

    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: no memory is passed; the descriptor stays open while `file`
    // is borrowed.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

/// Elsewhere the writeback starts when the kernel or the fsync decides.
#[cfg(not(target_os = "linux"))]
pub(crate) fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// Where the first hole of `file` starts: its size if it has none, or
/// where the filesystem cannot tell. Moves the descriptor's offset.
#[cfg(target_os = "linux")]
pub(crate) fn first_hole(file: &File) -> io::Result<u64> {
    use std::os::fd::AsRawFd;

    // SAFETY: no memory is passed; the descriptor stays open while `file`
    // is borrowed.
    let at = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_HOLE) };
    if at >= 0 {
        return u64::try_from(at).map_err(io::Error::other);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // ENXIO: an empty file; EINVAL: no SEEK_HOLE here.
        Some(libc::ENXIO | libc::EINVAL) => Ok(file.metadata()?.len()),
        _ => Err(e),
    }
}

/// Elsewhere files are taken to have no holes.
#[cfg(not(target_os = "linux"))]
pub(crate) fn first_hole(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.len())
}
