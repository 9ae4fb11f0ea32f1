//! The machine's own ceiling: bytes through a loopback socket, copied or with
//! sendfile.

use std::time::Instant;

use anyhow::bail;
use serde_json::json;

use crate::measure::*;
use crate::payload::*;

/// Loopback TCP throughput, one stream, sending 1 MiB writes taken in turn
/// from a source buffer of `source` bytes.
pub(crate) async fn loopback_once(bytes: u64, source: usize) -> anyhow::Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const WRITE: usize = 1 << 20;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut buf = vec![0u8; WRITE];
        let mut n = 0u64;
        loop {
            let r = s.read(&mut buf).await?;
            if r == 0 {
                break;
            }
            n += r as u64;
        }
        anyhow::Ok(n)
    });
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let src = data(source.max(WRITE), 7);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        for piece in src.chunks_exact(WRITE) {
            s.write_all(piece).await?;
            sent += WRITE as u64;
        }
    }
    s.shutdown().await?;
    let got = reader.await??;
    Ok(got as f64 / 1e6 / start.elapsed().as_secs_f64())
}

/// Loopback TCP throughput, one stream, the sender handing the kernel a
/// cached 100 MiB file with `sendfile` (no copy on the sending side): the
/// zero-copy path a file server can take.
pub(crate) fn loopback_sendfile(bytes: u64) -> anyhow::Result<f64> {
    use std::io::{Read, Write};
    let path = std::env::temp_dir().join(format!("berth-bench-{}.blob", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    file.write_all(&data(BIG, 9))?;
    file.sync_all()?;
    drop(file);
    let file = std::fs::File::open(&path)?;
    std::fs::remove_file(&path)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let r = s.read(&mut buf)?;
            if r == 0 {
                break;
            }
            n += r as u64;
        }
        Ok(n)
    });
    let s = std::net::TcpStream::connect(addr)?;
    let size = BIG as u64;
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let mut offset = 0u64;
        while offset < size {
            let n = sendfile(&s, &file, offset, size - offset)?;
            if n == 0 {
                bail!("sendfile sent nothing at offset {offset}");
            }
            offset += n;
            sent += n;
        }
    }
    s.shutdown(std::net::Shutdown::Write)?;
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("loopback reader panicked"))??;
    Ok(got as f64 / 1e6 / start.elapsed().as_secs_f64())
}

/// `sendfile(2)`: up to `len` bytes of `file` from `offset` into `out`.
#[allow(unsafe_code)]
pub(crate) fn sendfile(
    out: &std::net::TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: u64,
) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut off = libc::off_t::try_from(offset).map_err(std::io::Error::other)?;
    let count = usize::try_from(len.min(1 << 30)).map_err(std::io::Error::other)?;
    // SAFETY: both descriptors stay open while borrowed, and `off` outlives
    // the call; no other memory is passed.
    let n = unsafe { libc::sendfile(out.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    u64::try_from(n).map_err(std::io::Error::other)
}

/// The loopback ceiling three ways: from one 1 MiB buffer, which stays in
/// the CPU's cache (what iperf-like tools measure); from a 100 MiB buffer
/// like a blob, whose bytes come from memory on every pass; and from a
/// cached 100 MiB file with `sendfile`.
pub(crate) async fn loopback(bytes: u64) -> anyhow::Result<()> {
    let hot = loopback_once(bytes, 1 << 20).await?;
    emit("machine", "loopback_tcp", json!({"mb_s": hot}));
    let big = loopback_once(bytes, BIG).await?;
    emit(
        "machine",
        "loopback_tcp_100mib_source",
        json!({"mb_s": big}),
    );
    let sendfile = tokio::task::spawn_blocking(move || loopback_sendfile(bytes)).await??;
    emit(
        "machine",
        "loopback_tcp_sendfile_100mib",
        json!({"mb_s": sendfile}),
    );
    Ok(())
}
