//! S3 storage under a running server: the service going away and coming
//! back (clear 503s in the protocol's format while it is gone, what lives
//! only in the database keeps working, nothing stored is lost, and Berth
//! recovers by itself; the outage is a TCP relay in front of Garage that the
//! test stops and starts again on the same port), and downloads redirected
//! to presigned URLs of the bucket.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::relay::{garage_addr, Relay};
use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn oci_unavailable(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert!(!header(&r, "retry-after").is_empty(), "{what}: Retry-After");
    let v: Value = r.json().await.expect("OCI error body");
    assert_eq!(v["errors"][0]["code"], "UNAVAILABLE", "{what}: {v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("blob storage is unavailable"),
        "{what}: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_answers_503_and_berth_recovers_by_itself() {
    let relay_addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let relay = Relay::start(relay_addr, garage_addr()).await;
    let t = TestServer::start_with(Backend::PostgresS3, |c| {
        c.storage.s3.endpoint = Some(format!("http://{relay_addr}"));
    })
    .await;
    let layer = b"stored before the outage";
    t.push_image("steady/app", "v1", layer).await;
    let digest = sha256(layer);

    relay.stop();

    let r = t.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Reading the blob needs the bucket: a quick, clear 503.
    let started = Instant::now();
    let r = t.get(&format!("/v2/steady/app/blobs/{digest}")).await;
    oci_unavailable(r, "blob GET").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered in {:?}",
        started.elapsed()
    );
    // Uploading needs it too.
    let loc = t.start_upload("steady/app").await;
    let r = t
        .client
        .patch(&loc)
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; 300_000])
        .send()
        .await
        .expect("patch");
    oci_unavailable(r, "PATCH").await;
    // What lives in the database still answers.
    let r = t
        .client
        .get(t.url("/v2/steady/app/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("manifest");
    assert_eq!(r.status(), StatusCode::OK);
    let r = t.get("/v2/steady/app/tags/list").await;
    assert_eq!(r.status(), StatusCode::OK);

    // Back: ready again without a restart, nothing lost, uploads work.
    let _relay = Relay::start(relay_addr, garage_addr()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.get("/readyz").await.status() != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "not ready again after the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = t
        .get(&format!("/v2/steady/app/blobs/{digest}"))
        .await
        .bytes()
        .await
        .expect("blob");
    assert_eq!(&body[..], &layer[..]);
    let again = t.push_blob("steady/app", b"stored after the outage").await;
    assert_eq!(
        t.get(&format!("/v2/steady/app/blobs/{again}"))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_redirect_to_the_bucket_except_for_capped_clients() {
    let t = TestServer::start_with(Backend::PostgresS3, |c| {
        c.storage.s3.redirect = true;
        c.storage.s3.redirect_secs = 60;
    })
    .await;
    let layer = b"a layer served by the bucket itself";
    t.push_image("direct/app", "v1", layer).await;
    let digest = sha256(layer);
    let r = t.get(&format!("/v2/direct/app/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&r, "docker-content-digest"), digest);
    let location = header(&r, "location");
    assert!(
        location.starts_with(&std::env::var("BERTH_TEST_S3_ENDPOINT").expect("endpoint"))
            && location.contains("X-Amz-Signature="),
        "{location}"
    );
    // The presigned URL needs no credentials, and serves the bytes.
    let body = anonymous_client()
        .get(&location)
        .send()
        .await
        .expect("bucket")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&body[..], &layer[..]);
    // Visibility is still Berth's: a blob the repository cannot see is 404.
    let r = t.get(&format!("/v2/direct/other/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // docker follows the redirect.
    let ctx = tempfile::tempdir().expect("ctx");
    let host = t.base.trim_start_matches("http://").to_owned();
    let image = format!("{host}/direct/pulled:v1");
    crate::common::cli::docker_build(ctx.path(), &image, &[("f.txt", "through the bucket\n")])
        .await;
    crate::common::cli::docker_login(&t, "admin", ADMIN_PASSWORD).await;
    crate::common::cli::run("docker", &["push", &image]).await;
    crate::common::cli::run("docker", &["rmi", &image]).await;
    crate::common::cli::run("docker", &["pull", &image]).await;
    crate::common::cli::run("docker", &["rmi", &image]).await;
    crate::common::cli::run("docker", &["logout", &host]).await;

    // An external client under the bandwidth cap is streamed, capped.
    let capped = TestServer::start_with(Backend::PostgresS3, |c| {
        c.storage.s3.redirect = true;
        c.network.internal_networks = vec!["192.0.2.0/24".into()];
        c.network.external_bandwidth = 1 << 20;
    })
    .await;
    capped.push_image("direct/app", "v1", layer).await;
    let r = capped.get(&format!("/v2/direct/app/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(&r.bytes().await.expect("body")[..], &layer[..]);
}
