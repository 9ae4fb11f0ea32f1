//! Model-sized layers: one blob of `size` bytes pushed three ways
//! (monolithic with a length, chunked, one request streamed without a
//! length), pulled whole, in parallel ranges, and one range from its end;
//! the throughput and the server's extra resident memory of each. The
//! bytes are made as they are sent, so the client never holds the blob.

use std::time::Instant;

use anyhow::{bail, Context};
use berth_oci::Algorithm;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;

use crate::measure::*;
use crate::payload::*;
use crate::target::*;

/// A request body of `len` bytes of [`pieces`] from `offset` (a multiple of
/// the piece size) of the blob made from `seed`.
fn body(len: u64, offset: u64, seed: u64, total: u64) -> reqwest::Body {
    const PIECE: u64 = 1 << 20;
    let first = offset / PIECE;
    let stream = pieces_from(total as usize, seed, first as usize)
        .take(len.div_ceil(PIECE) as usize)
        .map(Ok::<_, std::io::Error>);
    reqwest::Body::wrap_stream(futures_util::stream::iter(stream))
}

/// Read a response to its end; returns the bytes read.
async fn drain(r: reqwest::Response) -> anyhow::Result<u64> {
    let mut s = r.bytes_stream();
    let mut n = 0u64;
    while let Some(chunk) = s.next().await {
        n += chunk?.len() as u64;
    }
    Ok(n)
}

async fn start(t: &Target, repo: &str) -> anyhow::Result<String> {
    let r = t
        .push_req(t.client.post(format!("{}/v2/{repo}/blobs/uploads/", t.url)))
        .send()
        .await?;
    if r.status() != StatusCode::ACCEPTED {
        bail!("start upload: {}", r.status());
    }
    location(&t.url, &r)
}

async fn finish(digest: &str, put: reqwest::RequestBuilder) -> anyhow::Result<()> {
    let r = put.send().await?;
    if r.status() != StatusCode::CREATED {
        bail!(
            "finish upload of {digest}: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Push the blob in `mode`: `monolithic` (one PUT with its length),
/// `chunked` (PATCHes of `chunk` bytes with their ranges, then PUT) or
/// `streamed` (one PATCH without a length, then PUT).
async fn push(
    t: &Target,
    repo: &str,
    mode: &str,
    size: u64,
    chunk: u64,
    seed: u64,
    digest: &str,
) -> anyhow::Result<()> {
    let loc = start(t, repo).await?;
    let sep = |l: &str| if l.contains('?') { '&' } else { '?' };
    match mode {
        "monolithic" => {
            let put = t
                .push_req(t.client.put(format!("{loc}{}digest={digest}", sep(&loc))))
                .header("content-type", "application/octet-stream")
                .header("content-length", size)
                .body(body(size, 0, seed, size));
            finish(digest, put).await
        }
        "chunked" => {
            let mut loc = loc;
            let mut offset = 0;
            while offset < size {
                let len = chunk.min(size - offset);
                let r = t
                    .push_req(t.client.patch(&loc))
                    .header("content-type", "application/octet-stream")
                    .header("content-range", format!("{offset}-{}", offset + len - 1))
                    .header("content-length", len)
                    .body(body(len, offset, seed, size))
                    .send()
                    .await?;
                if r.status() != StatusCode::ACCEPTED {
                    bail!(
                        "chunk at {offset}: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    );
                }
                loc = location(&t.url, &r)?;
                offset += len;
            }
            let put = t.push_req(t.client.put(format!("{loc}{}digest={digest}", sep(&loc))));
            finish(digest, put).await
        }
        "streamed" => {
            let r = t
                .push_req(t.client.patch(&loc))
                .header("content-type", "application/octet-stream")
                .body(body(size, 0, seed, size))
                .send()
                .await?;
            if r.status() != StatusCode::ACCEPTED {
                bail!(
                    "streamed PATCH: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
            }
            let loc = location(&t.url, &r)?;
            let put = t.push_req(t.client.put(format!("{loc}{}digest={digest}", sep(&loc))));
            finish(digest, put).await
        }
        other => bail!("unknown mode {other}"),
    }
}

/// Pushes in each of `modes`, then the pulls; one JSON line each.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn large(
    target: &str,
    t: &Target,
    repo: &str,
    pid: Option<u32>,
    size: u64,
    chunk: u64,
    readers: u64,
    modes: &[String],
) -> anyhow::Result<()> {
    let seed = 9_000_000 + size;
    let started = Instant::now();
    let mut hasher = berth_oci::Hasher::new(Algorithm::Sha256);
    for piece in pieces(size as usize, seed) {
        hasher.update(&piece);
    }
    let digest = hasher.finish().to_string();
    eprintln!(
        "large: {size} bytes, {digest}, hashed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The first verification of a password would count as the first
    // push's memory otherwise.
    t.push_blob(repo, data(1024, seed)).await?;
    let mib = size as f64 / (1 << 20) as f64;
    for mode in modes {
        let started = Instant::now();
        let rss = rss_during(pid, push(t, repo, mode, size, chunk, seed, &digest))
            .await
            .with_context(|| format!("{mode} push"))?;
        let s = started.elapsed().as_secs_f64();
        emit(
            target,
            &format!("large_push_{mode}"),
            json!({"bytes": size, "seconds": s,
            "mib_s": mib / s, "extra_rss_kb": rss}),
        );
    }
    let url = format!("{}/v2/{repo}/blobs/{digest}", t.url);
    let get = |range: Option<(u64, u64)>| {
        let mut r = t.push_req(t.client.get(&url));
        if let Some((from, to)) = range {
            r = r.header("range", format!("bytes={from}-{to}"));
        }
        r
    };
    let started = Instant::now();
    let rss = rss_during(pid, async {
        let r = get(None).send().await?.error_for_status()?;
        let n = drain(r).await?;
        if n != size {
            bail!("GET returned {n} of {size} bytes");
        }
        Ok(())
    })
    .await?;
    let s = started.elapsed().as_secs_f64();
    emit(
        target,
        "large_pull",
        json!({"bytes": size, "seconds": s, "mib_s": mib / s, "extra_rss_kb": rss}),
    );

    let part = size.div_ceil(readers);
    let started = Instant::now();
    let rss = rss_during(pid, async {
        let mut reads = Vec::new();
        for i in 0..readers {
            let (from, to) = (i * part, ((i + 1) * part).min(size) - 1);
            let req = get(Some((from, to)));
            reads.push(tokio::spawn(async move {
                let r = req.send().await?;
                if r.status() != StatusCode::PARTIAL_CONTENT {
                    bail!("range {from}-{to}: {}", r.status());
                }
                let n = drain(r).await?;
                if n != to - from + 1 {
                    bail!("range {from}-{to}: {n} bytes");
                }
                Ok(())
            }));
        }
        for r in reads {
            r.await??;
        }
        Ok(())
    })
    .await?;
    let s = started.elapsed().as_secs_f64();
    emit(
        target,
        "large_pull_ranges",
        json!({"bytes": size, "readers": readers, "seconds": s,
        "mib_s": mib / s, "extra_rss_kb": rss}),
    );

    // The last MiB alone: served without reading what comes before it.
    let from = size.saturating_sub(1 << 20);
    let started = Instant::now();
    let r = get(Some((from, size - 1))).send().await?;
    if r.status() != StatusCode::PARTIAL_CONTENT {
        bail!("last MiB: {}", r.status());
    }
    let n = drain(r).await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if n != size - from {
        bail!("last MiB: {n} bytes");
    }
    emit(target, "large_last_mib", json!({"bytes": n, "ms": ms}));
    Ok(())
}
