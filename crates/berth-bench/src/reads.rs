//! Read scenarios: small blobs, manifests and tags at the HTTP ceiling,
//! against the registry or a static file server of the same content.

use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use futures_util::StreamExt;
use reqwest::Client;
use serde_json::json;

use crate::measure::*;
use crate::payload::*;

/// The request-rate scenarios of small reads: manifests by tag (anonymous,
/// with a bearer token when there is one), HEAD, the tag list and a blob
/// HEAD.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn read_scenarios(
    cli_target: &str,
    anon: &Client,
    base: &str,
    repo: &str,
    ld: &str,
    bearer: Option<String>,
    pid: Option<u32>,
    secs: u64,
) {
    let reads: Vec<(&str, usize, bool, String, bool)> = vec![
        // (scenario, concurrency, head, path, with bearer)
        (
            "manifest_get_anon_c1",
            1,
            false,
            format!("/v2/{repo}/manifests/v1"),
            false,
        ),
        (
            "manifest_get_anon_c32",
            32,
            false,
            format!("/v2/{repo}/manifests/v1"),
            false,
        ),
        (
            "manifest_get_token_c1",
            1,
            false,
            format!("/v2/{repo}/manifests/v1"),
            true,
        ),
        (
            "manifest_get_token_c32",
            32,
            false,
            format!("/v2/{repo}/manifests/v1"),
            true,
        ),
        (
            "manifest_head_c32",
            32,
            true,
            format!("/v2/{repo}/manifests/v1"),
            false,
        ),
        (
            "tags_list_c32",
            32,
            false,
            format!("/v2/{repo}/tags/list"),
            false,
        ),
        (
            "blob_head_c32",
            32,
            true,
            format!("/v2/{repo}/blobs/{ld}"),
            false,
        ),
    ];
    for (name, c, head, path, with_bearer) in reads {
        let url = format!("{base}{path}");
        let auth = if with_bearer { bearer.clone() } else { None };
        let make: Arc<dyn Fn(&Client) -> reqwest::RequestBuilder + Send + Sync> =
            Arc::new(move |c: &Client| {
                let r = if head { c.head(&url) } else { c.get(&url) };
                let r = r.header("accept", MANIFEST_TYPE);
                match &auth {
                    Some(tok) => r.bearer_auth(tok),
                    None => r,
                }
            });
        let cpu0 = cpu_seconds(pid);
        let (rps, p50, p99, errors) = rate(anon, c, secs, make).await;
        let cpu = cpu_seconds(pid).zip(cpu0).map(|(a, b)| a - b);
        let per_1k = cpu.map(|c| c / (rps * secs as f64) * 1000.0);
        emit(
            cli_target,
            name,
            json!({"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors, "cpu_s_per_1k_req": per_1k}),
        );
    }
}

/// 1 and 4 streams each downloading a 100 MiB blob again and again.
pub(crate) async fn blob_gets(
    cli_target: &str,
    anon: &Client,
    url: &str,
    pid: Option<u32>,
    secs: u64,
) -> anyhow::Result<()> {
    let me = Some(std::process::id());
    for c in [1usize, 4] {
        let cpu0 = cpu_seconds(pid);
        let client0 = cpu_seconds(me);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..c {
            let client = anon.clone();
            let url = url.to_owned();
            // Each stream downloads the blob again and again for the
            // scenario's seconds (at least once), checking every length.
            tasks.push(tokio::spawn(async move {
                let mut total = 0usize;
                loop {
                    let mut n = 0usize;
                    let mut s = client
                        .get(&url)
                        .send()
                        .await?
                        .error_for_status()?
                        .bytes_stream();
                    while let Some(chunk) = s.next().await {
                        n += chunk?.len();
                    }
                    if n != BIG {
                        bail!("blob GET returned {n} bytes");
                    }
                    total += n;
                    if start.elapsed().as_secs() >= secs {
                        break anyhow::Ok(total);
                    }
                }
            }));
        }
        let mut total = 0usize;
        for task in tasks {
            total += task.await??;
        }
        let secs_get = start.elapsed().as_secs_f64();
        let gb = total as f64 / 1e9;
        let cpu = cpu_seconds(pid).zip(cpu0).map(|(a, b)| a - b);
        // The client's own CPU too: on a small machine the two share the cores.
        let client_cpu = cpu_seconds(me).zip(client0).map(|(a, b)| a - b);
        emit(
            cli_target,
            &format!("blob_get_100mib_c{c}"),
            json!({
                "mb_s": total as f64 / 1e6 / secs_get,
                "cpu_s_per_gb": cpu.map(|x| x / gb),
                "client_cpu_s_per_gb": client_cpu.map(|x| x / gb),
            }),
        );
    }
    Ok(())
}

/// Write `bytes` at `path` under `dir`, creating directories.
pub(crate) fn mirror_file(dir: &std::path::Path, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let file = dir.join(path);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&file, bytes)?;
    Ok(())
}
