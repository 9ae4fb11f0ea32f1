//! Large layers through the real binary: a blob of 256 MiB pushed with its
//! length and streamed without one, pulled whole and by its last MiB, while
//! the server process's resident memory is sampled. It stays bounded: the
//! server streams and never holds a blob (docs/benchmarks.md measures
//! 20 GiB the same way with `bench/large.sh`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::StatusCode;

use crate::common::process::{serve_process, ServeProcess};
use crate::common::*;
use crate::gc::berth_command;

const SIZE: usize = 256 << 20;
/// Extra resident memory allowed during one transfer (issue 38: under 32
/// MiB whatever the size): uploads hold a few blocks (filesystem) or
/// parts (S3, 24 MiB at the default part size).
const BOUND_KB: u64 = 32 << 10;

/// This build's `berth serve` on `t`'s database and storage.
async fn node(t: &TestServer) -> ServeProcess {
    let mut cmd = berth_command(t, &["serve"]);
    cmd.env("BERTH_MAX_BLOB_BYTES", (SIZE * 2).to_string());
    serve_process(cmd).await
}

/// The upload location `loc` closed with `digest`.
fn closing(loc: &str, digest: &str) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={digest}")
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The process's peak resident memory above its level before, while `f` runs.
async fn extra_rss<T>(pid: u32, f: impl std::future::Future<Output = T>) -> (T, u64) {
    let before = rss_kb(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(rss_kb(pid));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let out = f.await;
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    (out, peak.saturating_sub(before))
}

/// 1 MiB pieces of pseudo-random bytes, each distinct.
fn blob() -> Vec<Bytes> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..SIZE >> 20)
        .map(|_| {
            let mut piece = Vec::with_capacity(1 << 20);
            while piece.len() < 1 << 20 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                piece.extend_from_slice(&x.to_le_bytes());
            }
            Bytes::from(piece)
        })
        .collect()
}

fn digest_of(pieces: &[Bytes]) -> String {
    let mut h = berth_oci::Hasher::new(berth_oci::Algorithm::Sha256);
    for p in pieces {
        h.update(p);
    }
    h.finish().to_string()
}

fn stream(pieces: &[Bytes]) -> reqwest::Body {
    let pieces = pieces.to_vec();
    reqwest::Body::wrap_stream(futures_util::stream::iter(
        pieces.into_iter().map(Ok::<_, std::io::Error>),
    ))
}

async fn a_large_layer_streams_through_with_bounded_memory(b: Backend) {
    let t = TestServer::unstarted(b).await;
    let n = node(&t).await;
    let pid = n.child.id();
    let admin = client_as("admin", ADMIN_PASSWORD);
    let url = |path: &str| format!("{}{path}", n.base);
    let start = |repo: &'static str| {
        let admin = admin.clone();
        let base = n.base.clone();
        async move {
            let r = admin
                .post(format!("{base}/v2/{repo}/blobs/uploads/"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            let loc = r.headers()["location"].to_str().unwrap().to_owned();
            if loc.starts_with("http") {
                loc
            } else {
                format!("{base}{loc}")
            }
        }
    };
    // A small push first: the first check of a password is not a transfer.
    let small = vec![Bytes::from_static(b"a small layer")];
    let loc = start("lib/large").await;
    let r = admin
        .put(closing(&loc, &digest_of(&small)))
        .body(small[0].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let pieces = blob();
    let digest = digest_of(&pieces);
    // Monolithic, with its length.
    let loc = start("lib/large").await;
    let (r, extra) = extra_rss(pid, async {
        admin
            .put(closing(&loc, &digest))
            .header("content-length", SIZE)
            .body(stream(&pieces))
            .send()
            .await
            .unwrap()
    })
    .await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    assert!(
        extra < BOUND_KB,
        "{b:?}: a monolithic push took {extra} kB more"
    );

    // Streamed without a length into another repository, then closed.
    let loc = start("lib/streamed").await;
    let (r, extra) = extra_rss(pid, async {
        admin
            .patch(&loc)
            .body(stream(&pieces))
            .send()
            .await
            .unwrap()
    })
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    assert!(
        extra < BOUND_KB,
        "{b:?}: a streamed push took {extra} kB more"
    );
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let loc = if loc.starts_with("http") {
        loc
    } else {
        url(&loc)
    };
    let r = admin.put(closing(&loc, &digest)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Pulled whole (on S3 through the bucket's presigned redirect) ...
    let (got, extra) = extra_rss(pid, async {
        let r = admin
            .get(url(&format!("/v2/lib/streamed/blobs/{digest}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let mut h = berth_oci::Hasher::new(berth_oci::Algorithm::Sha256);
        let mut body = r.bytes_stream();
        let mut n = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.unwrap();
            n += chunk.len();
            h.update(&chunk);
        }
        (n, h.finish().to_string())
    })
    .await;
    assert_eq!(got, (SIZE, digest.clone()));
    assert!(extra < BOUND_KB, "{b:?}: a pull took {extra} kB more");
    // ... and by its last MiB alone.
    let r = admin
        .get(url(&format!("/v2/lib/large/blobs/{digest}")))
        .header("range", format!("bytes={}-{}", SIZE - (1 << 20), SIZE - 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), pieces[pieces.len() - 1]);
}

backend_tests!(s3: a_large_layer_streams_through_with_bounded_memory);
