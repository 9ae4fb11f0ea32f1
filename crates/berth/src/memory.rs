//! Giving freed memory back to the operating system.
//!
//! glibc's allocator keeps the memory of freed buffers in its arenas, so
//! after a burst of uploads and downloads the resident set stays near its
//! peak. Two things keep it down (with glibc; elsewhere they do nothing):
//! buffers of 1 MiB or more (the large blocks of uploads, the read buffers
//! of large downloads) always get memory of their own from the kernel and
//! give it back when freed, and every few seconds `malloc_trim` returns the
//! free pages of every arena.
#![allow(unsafe_code)]

/// Allocations of this size or more are mapped on their own. glibc starts
/// at 128 KiB but raises the threshold to the size of each mapped block
/// freed, after which 1–2 MiB buffers came from the arenas of whichever
/// threads allocated them, and stayed there: a round of 100 MiB pushes
/// left the resident set ~15–30 MiB higher (docs/benchmarks.md). Setting
/// it fixes it.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Set the allocator up; call before any thread is started.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes no pointers; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Return free heap pages to the operating system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only releases memory the
    // allocator holds as free; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
