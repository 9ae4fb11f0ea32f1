//! Giving freed memory back to the operating system.
//!
//! glibc's allocator keeps the memory of freed buffers in its arenas (and
//! raises its mmap threshold after large frees), so after a burst of uploads
//! and downloads the resident set stays near its peak. Every few seconds,
//! `malloc_trim` returns the free pages of every arena. Elsewhere it does
//! nothing.
#![allow(unsafe_code)]

/// Return free heap pages to the operating system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only releases memory the
    // allocator holds as free; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
