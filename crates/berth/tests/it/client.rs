//! berth-client against real registries: Berth (token authentication),
//! the reference registry without authentication and with Basic. Each
//! gets the same exercise: ping, a streamed monolithic blob upload, a
//! chunked upload resumed at the offset the server reports, a mount, a
//! manifest put and read back by tag and digest, a ranged blob read, the
//! tag list across pages; and wrong credentials are refused as such.

use crate::common::reference::Reference;
use crate::common::*;
use berth_client::{ClientError, ClientOptions, Credentials, Mount, RegistryClient};
use berth_oci::{Algorithm, Digest};
use bytes::Bytes;
use futures_util::TryStreamExt;

fn once(data: Vec<u8>) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::iter([Ok(Bytes::from(data))])
}

fn client(url: &str, creds: Option<(&str, &str)>) -> RegistryClient {
    RegistryClient::new(
        url,
        ClientOptions {
            credentials: creds.map(|(u, p)| Credentials {
                username: u.into(),
                password: p.into(),
            }),
            ..ClientOptions::default()
        },
    )
    .expect("client")
}

async fn exercise(c: &RegistryClient, repo: &str, other: &str) {
    c.ping().await.expect("ping");
    // A monolithic upload streamed from a stream of pieces.
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let config_digest = Digest::of_bytes(Algorithm::Sha256, &config);
    c.push_blob(
        repo,
        &config_digest,
        config.len() as u64,
        once(config.clone()),
    )
    .await
    .expect("push config");
    assert_eq!(
        c.blob_size(repo, &config_digest).await.expect("head"),
        Some(config.len() as u64)
    );
    // A chunked upload: a first chunk, then ask the server where it stands
    // and send the rest from there.
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let layer_digest = Digest::of_bytes(Algorithm::Sha256, &layer);
    let upload = c.start_upload(repo).await.expect("start");
    let upload = c
        .upload_chunk(repo, &upload, 0, 100_000, once(layer[..100_000].to_vec()))
        .await
        .expect("first chunk");
    let offset = c.upload_offset(repo, &upload).await.expect("offset");
    assert_eq!(offset, 100_000, "the server holds the first chunk");
    let rest = layer[offset as usize..].to_vec();
    let upload = c
        .upload_chunk(repo, &upload, offset, rest.len() as u64, once(rest))
        .await
        .expect("second chunk");
    c.finish_upload(repo, &upload, &layer_digest)
        .await
        .expect("finish");
    // A ranged read from the middle.
    let read = c.blob(repo, &layer_digest, 250_000).await.expect("range");
    assert_eq!(read.offset, 250_000);
    assert_eq!(read.size, Some(layer.len() as u64));
    let tail: Vec<Bytes> = read.stream().try_collect().await.expect("read");
    assert_eq!(tail.concat(), &layer[250_000..]);
    // The manifest, by tag, then read back both ways.
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest.as_str(), "size": layer.len()}],
    })
    .to_string();
    let digest = c
        .put_manifest(
            repo,
            "v1",
            "application/vnd.oci.image.manifest.v1+json",
            Bytes::from(manifest.clone()),
        )
        .await
        .expect("put manifest");
    let got = c.manifest(repo, "v1").await.expect("get").expect("exists");
    assert_eq!(got.digest, digest);
    assert_eq!(got.bytes, manifest.as_bytes());
    assert_eq!(got.media_type, "application/vnd.oci.image.manifest.v1+json");
    let head = c
        .head_manifest(repo, digest.as_str())
        .await
        .expect("head")
        .expect("exists");
    assert_eq!(head.digest, digest);
    assert_eq!(head.size, manifest.len() as u64);
    assert!(c.manifest(repo, "nope").await.expect("get").is_none());
    assert!(c.head_manifest(repo, "nope").await.expect("head").is_none());
    // Several tags, listed across pages.
    for tag in ["v2", "v3"] {
        c.put_manifest(
            repo,
            tag,
            "application/vnd.oci.image.manifest.v1+json",
            Bytes::from(manifest.clone()),
        )
        .await
        .expect("tag");
    }
    let mut tags = c.tags(repo).await.expect("tags");
    tags.sort();
    assert_eq!(tags, ["v1", "v2", "v3"]);
    // A mount into another repository.
    match c.mount(other, &layer_digest, repo).await.expect("mount") {
        Mount::Mounted => {}
        Mount::Upload(_) => panic!("the registry did not mount"),
    }
    assert_eq!(
        c.blob_size(other, &layer_digest).await.expect("head"),
        Some(layer.len() as u64)
    );
    // A digest reference is verified.
    assert!(c
        .blob_size(repo, &Digest::of_bytes(Algorithm::Sha256, b"absent"))
        .await
        .expect("head")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talks_to_berth_with_token_authentication() {
    let t = TestServer::start(Backend::Sqlite).await;
    let c = client(&t.url(""), Some(("admin", ADMIN_PASSWORD)));
    exercise(&c, "remote/app", "remote/copy").await;
    let wrong = client(&t.url(""), Some(("admin", "wrong password")));
    match wrong.ping().await {
        Err(ClientError::Unauthorized(_)) => {}
        other => panic!("wrong credentials: {other:?}"),
    }
    // Anonymous: the registry asks for a token, none may push.
    let anonymous = client(&t.url(""), None);
    match anonymous.start_upload("remote/app").await {
        Err(ClientError::Unauthorized(_) | ClientError::Denied(_)) => {}
        other => panic!("anonymous push: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talks_to_the_reference_registry_without_authentication() {
    let r = Reference::start(None).await;
    let c = client(&r.url(), None);
    exercise(&c, "library/app", "library/copy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talks_to_the_reference_registry_with_basic_authentication() {
    let r = Reference::start(Some(("alice", "alice-password"))).await;
    let c = client(&r.url(), Some(("alice", "alice-password")));
    exercise(&c, "team/app", "team/copy").await;
    match client(&r.url(), Some(("alice", "wrong"))).ping().await {
        Err(ClientError::Unauthorized(_)) => {}
        other => panic!("wrong password: {other:?}"),
    }
    match client(&r.url(), None).ping().await {
        Err(ClientError::Unauthorized(m)) => assert!(m.contains("user name"), "{m}"),
        other => panic!("no credentials: {other:?}"),
    }
    // A stopped registry is a transient failure.
    let url = r.url();
    r.stop().await;
    let e = client(&url, None).ping().await.expect_err("stopped");
    assert!(e.is_transient(), "{e:?}");
}
