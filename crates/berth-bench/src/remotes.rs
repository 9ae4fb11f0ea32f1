//! Other registries (bench/remotes.sh), through the one OCI client
//! (`berth-client`): push images of a given size to a registry, and time
//! a pull (manifest, then every blob read to the end) from one, for
//! replication against `skopeo sync` and for the pull-through cache's
//! first pull against the upstream's.

use std::time::Instant;

use anyhow::Context;
use berth_client::{ClientOptions, Credentials, RegistryClient};
use berth_oci::{Digest, ParsedManifest};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;

use crate::measure::*;
use crate::payload::*;

/// A client of `url`, with `creds` ("user:password") if given.
pub fn client(url: &str, creds: Option<&str>) -> anyhow::Result<RegistryClient> {
    let credentials = creds.map(|c| {
        let (u, p) = c.split_once(':').unwrap_or((c, ""));
        Credentials {
            username: u.to_owned(),
            password: p.to_owned(),
        }
    });
    RegistryClient::new(
        url,
        ClientOptions {
            credentials,
            ..ClientOptions::default()
        },
    )
    .context("client")
}

async fn push_blob(
    c: &RegistryClient,
    repo: &str,
    body: Vec<u8>,
) -> anyhow::Result<(String, usize)> {
    let digest: Digest = sha256(&body).parse()?;
    let len = body.len();
    let body = Bytes::from(body);
    c.push_blob(
        repo,
        &digest,
        len as u64,
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) }),
    )
    .await?;
    Ok((digest.to_string(), len))
}

/// Push `images` images of one `size`-byte layer as tags `v0…` of `repo`.
pub async fn push(
    c: &RegistryClient,
    repo: &str,
    images: usize,
    size: usize,
    seed: u64,
) -> anyhow::Result<()> {
    for i in 0..images {
        let s = seed * 1_000_000 + i as u64;
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{s}}}"#).into_bytes();
        let (cd, cl) = push_blob(c, repo, config).await?;
        let (ld, ll) = push_blob(c, repo, data(size, s)).await?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cl},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ll}],
        }))?;
        c.put_manifest(repo, &format!("v{i}"), MANIFEST_TYPE, Bytes::from(manifest))
            .await?;
    }
    Ok(())
}

/// Pull `repo:tag` (manifest, then each blob to its end) and report the time.
pub async fn pull(
    c: &RegistryClient,
    repo: &str,
    tag: &str,
    target: &str,
    scenario: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let m = c
        .manifest(repo, tag)
        .await?
        .with_context(|| format!("{repo}:{tag} not found"))?;
    let parsed = ParsedManifest::parse(&m.bytes, Some(&m.media_type))?;
    let mut bytes = 0u64;
    for d in parsed.blob_references() {
        let mut body = Box::pin(c.blob(repo, &d.digest, 0).await?.stream());
        while let Some(chunk) = body.next().await {
            bytes += chunk?.len() as u64;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    emit(
        target,
        scenario,
        json!({"seconds": secs, "bytes": bytes, "mb_s": bytes as f64 / 1e6 / secs}),
    );
    Ok(())
}
