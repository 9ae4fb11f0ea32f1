//! The OCI Distribution v1.1 API, endpoint by endpoint and error by error,
//! over real HTTP against a real server, for both metadata backends.

use crate::common::*;
use reqwest::{Method, StatusCode};

backend_tests!(
    s3:
    base_endpoint,
    pushes_and_deletes_are_audited,
    monolithic_upload,
    single_post_upload,
    chunked_upload_in_order_and_out_of_order,
    streamed_patch_upload,
    large_chunks_with_status_queries_between,
    large_bodies_of_known_length_without_ranges,
    digest_mismatch_stores_nothing,
    cancel_and_foreign_uploads,
    sha512_uploads,
    cross_repository_mount,
    blob_ranges_and_conditional_get,
    manifest_push_pull_by_tag_and_digest,
    manifest_reference_checks,
    manifest_sizes_must_match_the_stored_content,
    manifest_refusals,
    push_by_digest_with_tags,
    docker_schema2_and_manifest_list,
    referrers_and_subject,
    tags_pagination,
    catalog_pagination,
    deletes,
    deletes_disabled,
    malformed_requests_never_500,
    pull_counts_are_batched,
    uploads_survive_restart,
    upload_expiry,
    upload_activity_is_recorded_at_most_once_per_interval,
    health_ready_metrics,
    layer_size_limit,
    tag_limit_evicts_idle_tags,
    cached_reads_follow_changes_written_by_another_process,
);

async fn base_endpoint(b: Backend) {
    let t = TestServer::start(b).await;
    let r = t.get("/v2/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );
    assert_eq!(t.get("/v2").await.status(), StatusCode::OK);
    // Without credentials: a challenge pointing at the token endpoint.
    let r = anonymous_client()
        .get(t.url("/v2/"))
        .send()
        .await
        .expect("get");
    let challenge = header(&r, "www-authenticate");
    let expected = format!("Bearer realm=\"{}/auth/token\",service=\"berth\"", t.base);
    assert_eq!(challenge, expected);
    assert_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_error(
        t.get("/v2/nothing/here/at/all").await,
        StatusCode::NOT_FOUND,
        "UNSUPPORTED",
    )
    .await;
}

async fn monolithic_upload(b: Backend) {
    let t = TestServer::start(b).await;
    let data = b"monolithic blob content".to_vec();
    let digest = t.push_blob("team/app", &data).await;
    let r = t.head(&format!("/v2/team/app/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), data.len().to_string());
    assert_eq!(header(&r, "docker-content-digest"), digest);
    let r = t.get(&format!("/v2/team/app/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "etag"), format!("\"{digest}\""));
    assert_eq!(r.bytes().await.expect("body").to_vec(), data);
    // Not linked in another repository.
    assert_eq!(
        t.head(&format!("/v2/team/other/blobs/{digest}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_error(
        t.get(&format!("/v2/team/other/blobs/{digest}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
}

async fn single_post_upload(b: Backend) {
    let t = TestServer::start(b).await;
    let data = b"single post".to_vec();
    let digest = sha256(&data);
    let r = t
        .client
        .post(t.url(&format!("/v2/r/blobs/uploads/?digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/r/blobs/{digest}"));
    assert_eq!(
        t.get(&format!("/v2/r/blobs/{digest}"))
            .await
            .bytes()
            .await
            .expect("b")
            .to_vec(),
        data
    );
    // A wrong digest on a single POST stores nothing.
    let wrong = sha256(b"something else");
    let r = t
        .client
        .post(t.url(&format!("/v2/r/blobs/uploads/?digest={wrong}")))
        .body(data)
        .send()
        .await
        .expect("post");
    assert_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    assert_eq!(
        t.head(&format!("/v2/r/blobs/{wrong}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn chunked_upload_in_order_and_out_of_order(b: Backend) {
    let t = TestServer::start(b).await;
    let data: Vec<u8> = (0..30u8).collect();
    let digest = sha256(&data);
    let r = t
        .client
        .post(t.url("/v2/chunky/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(!header(&r, "docker-upload-uuid").is_empty());
    let loc = t.resolve(&header(&r, "location"));
    let patch = |range: &str, body: &[u8]| {
        t.client
            .patch(&loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", range)
            .body(body.to_vec())
            .send()
    };
    let r = patch("0-9", &data[0..10]).await.expect("patch");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-9");
    let loc = t.resolve(&header(&r, "location"));
    // Out of order: 416 with the current range.
    let r = patch("15-19", &data[15..20]).await.expect("patch");
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), "0-9");
    assert_error(r, StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID").await;
    // Status.
    let r = t.client.get(&loc).send().await.expect("status");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), "0-9");
    let r = patch("10-19", &data[10..20]).await.expect("patch");
    assert_eq!(header(&r, "range"), "0-19");
    // Content-Length disagreeing with Content-Range.
    let r = t
        .client
        .patch(&loc)
        .header("content-range", "20-29")
        .header("content-length", "3")
        .body(vec![1, 2, 3])
        .send()
        .await
        .expect("patch");
    assert_error(r, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    // Last chunk in the closing PUT.
    let r = t
        .client
        .put(format!("{loc}?digest={digest}"))
        .header("content-range", "20-29")
        .header("content-type", "application/octet-stream")
        .body(data[20..].to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    assert_eq!(
        t.get(&format!("/v2/chunky/blobs/{digest}"))
            .await
            .bytes()
            .await
            .expect("b")
            .to_vec(),
        data
    );
    // The session is closed.
    assert_error(
        t.client.get(&loc).send().await.expect("s"),
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
}

async fn streamed_patch_upload(b: Backend) {
    let t = TestServer::start(b).await;
    let loc = t.start_upload("s").await;
    let part1 = vec![7u8; 3 << 20];
    let part2 = vec![9u8; 1000];
    let stream = futures_util::stream::iter(
        part1
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let r = t
        .client
        .patch(&loc)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), format!("0-{}", part1.len() - 1));
    let r = t
        .client
        .patch(&loc)
        .body(part2.clone())
        .send()
        .await
        .expect("patch");
    assert_eq!(
        header(&r, "range"),
        format!("0-{}", part1.len() + part2.len() - 1)
    );
    let mut all = part1.clone();
    all.extend_from_slice(&part2);
    let digest = sha256(&all);
    let r = t
        .client
        .put(format!("{loc}?digest={digest}"))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), digest);
    assert_blob(&t, "s", &digest, &all).await;
}

/// `len` bytes of a pattern that differs with `mul`.
fn patterned(len: usize, mul: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(mul) >> 24) as u8)
        .collect()
}

/// Pull a blob and check that every byte came back in order.
async fn assert_blob(t: &TestServer, repo: &str, digest: &str, want: &[u8]) {
    let got = t
        .get(&format!("/v2/{repo}/blobs/{digest}"))
        .await
        .bytes()
        .await
        .expect("blob body");
    assert_eq!(got.len(), want.len(), "length of {digest}");
    assert!(got.as_ref() == want, "every byte of {digest} in order");
}

/// Chunks of 2 MiB or more hand their blocks in flight from one request
/// to the next; status queries, refused chunks and the commit in between
/// see every byte in order.
async fn large_chunks_with_status_queries_between(b: Backend) {
    let t = TestServer::start(b).await;
    let mut loc = t.start_upload("big").await;
    const C: usize = 3 << 20;
    let data = patterned(3 * C + 1000, 2_654_435_761);
    let digest = sha256(&data);
    let patch = |from: usize, to: usize, loc: String| {
        t.client
            .patch(loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{from}-{}", to - 1))
            .body(data[from..to].to_vec())
            .send()
    };
    for (from, to, status_after) in [(0, C, false), (C, 2 * C, true), (2 * C, 3 * C, false)] {
        let r = patch(from, to, loc.clone()).await.expect("patch");
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{from}-{to}");
        assert_eq!(header(&r, "range"), format!("0-{}", to - 1));
        loc = t.resolve(&header(&r, "location"));
        if status_after {
            let r = t.client.get(&loc).send().await.expect("status");
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
            assert_eq!(header(&r, "range"), format!("0-{}", to - 1));
            // A chunk that does not start at the end is refused with the range.
            let r = patch(0, C, loc.clone()).await.expect("patch");
            assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
            assert_eq!(header(&r, "range"), format!("0-{}", to - 1));
            // Its body is left unread: the client must not reuse the connection.
            assert_eq!(header(&r, "connection"), "close");
        }
    }
    let r = t
        .client
        .put(format!("{loc}?digest={digest}"))
        .header("content-range", format!("{}-{}", 3 * C, data.len() - 1))
        .body(data[3 * C..].to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    assert_blob(&t, "big", &digest, &data).await;
}

/// Bodies of known length without a `Content-Range` are placed at the
/// upload's end like ranged chunks (large ones in large blocks from their
/// first byte): PATCHes with a status query between, then a PUT with the
/// last part, keep every byte in order; so does a monolithic PUT.
async fn large_bodies_of_known_length_without_ranges(b: Backend) {
    let t = TestServer::start(b).await;
    const C: usize = 3 << 20;
    let data = patterned(3 * C + 1000, 2_246_822_519);
    let digest = sha256(&data);
    let mut loc = t.start_upload("known").await;
    for (from, to) in [(0, C), (C, 2 * C + 4097)] {
        let r = t
            .client
            .patch(&loc)
            .header("content-type", "application/octet-stream")
            .body(data[from..to].to_vec())
            .send()
            .await
            .expect("patch");
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{from}-{to}");
        assert_eq!(header(&r, "range"), format!("0-{}", to - 1));
        loc = t.resolve(&header(&r, "location"));
        let r = t.client.get(&loc).send().await.expect("status");
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(header(&r, "range"), format!("0-{}", to - 1));
    }
    let r = t
        .client
        .put(format!("{loc}?digest={digest}"))
        .body(data[2 * C + 4097..].to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    let whole = data[..2 * C].to_vec();
    let whole_digest = t.push_blob("known", &whole).await;
    assert_blob(&t, "known", &digest, &data).await;
    assert_blob(&t, "known", &whole_digest, &whole).await;
}

async fn digest_mismatch_stores_nothing(b: Backend) {
    let t = TestServer::start(b).await;
    let loc = t.start_upload("m").await;
    let claimed = sha256(b"what the client claims");
    let r = t
        .client
        .put(format!("{loc}?digest={claimed}"))
        .body(b"what it sends".to_vec())
        .send()
        .await
        .expect("put");
    assert_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    assert_eq!(
        t.head(&format!("/v2/m/blobs/{claimed}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.client.get(&loc).send().await.expect("s").status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.uploads_left().await, 0, "no upload data left behind");
    // Malformed and missing digests.
    let loc = t.start_upload("m").await;
    assert_error(
        t.client
            .put(format!("{loc}?digest=sha256:nothex"))
            .send()
            .await
            .expect("p"),
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    assert_error(
        t.client.put(&loc).send().await.expect("p"),
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
}

async fn cancel_and_foreign_uploads(b: Backend) {
    let t = TestServer::start(b).await;
    let r = t
        .client
        .post(t.url("/v2/c/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    let loc = header(&r, "location");
    let id = header(&r, "docker-upload-uuid");
    // The session belongs to its repository.
    assert_error(
        t.get(&format!("/v2/other/blobs/uploads/{id}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let r = t
        .client
        .delete(t.resolve(&loc))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        t.get(&loc).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    assert_error(
        t.delete(&loc).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    assert!(t
        .get("/v2/c/blobs/uploads/..%2F..%2Fetc")
        .await
        .status()
        .is_client_error());
    assert_error(
        t.get("/v2/c/blobs/uploads/nosuchupload").await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
}

async fn sha512_uploads(b: Backend) {
    let t = TestServer::start(b).await;
    let data = b"sha512 content".to_vec();
    let digest = berth_oci::Digest::of_bytes(berth_oci::Algorithm::Sha512, &data).to_string();
    let r = t
        .client
        .post(t.url("/v2/x/blobs/uploads/?digest-algorithm=sha512"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = t.resolve(&header(&r, "location"));
    let r = t
        .client
        .put(format!("{loc}?digest={digest}"))
        .body(data.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        t.get(&format!("/v2/x/blobs/{digest}"))
            .await
            .bytes()
            .await
            .expect("b")
            .to_vec(),
        data
    );
    let r = t
        .client
        .post(t.url("/v2/x/blobs/uploads/?digest-algorithm=md5"))
        .send()
        .await
        .expect("post");
    assert_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

async fn cross_repository_mount(b: Backend) {
    let t = TestServer::start(b).await;
    let digest = t.push_blob("src/repo", b"shared layer").await;
    let r = t
        .client
        .post(t.url(&format!(
            "/v2/dst/repo/blobs/uploads/?mount={digest}&from=src/repo"
        )))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(&r, "location"),
        format!("/v2/dst/repo/blobs/{digest}")
    );
    assert_eq!(header(&r, "docker-content-digest"), digest);
    assert_eq!(
        t.head(&format!("/v2/dst/repo/blobs/{digest}"))
            .await
            .status(),
        StatusCode::OK
    );
    // Without from: mounted when it exists anywhere.
    let r = t
        .client
        .post(t.url(&format!("/v2/third/blobs/uploads/?mount={digest}")))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::CREATED);
    // From a repository that does not have it: falls back to an upload.
    let unknown = sha256(b"never pushed");
    let r = t
        .client
        .post(t.url(&format!(
            "/v2/dst/repo/blobs/uploads/?mount={unknown}&from=src/repo"
        )))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(header(&r, "location").starts_with("/v2/dst/repo/blobs/uploads/"));
    let r = t
        .client
        .post(t.url(&format!(
            "/v2/dst/repo/blobs/uploads/?mount={digest}&from=empty/repo"
        )))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // Stored once.
    let stored = t
        .registry()
        .blobs()
        .list_blobs(None, 100)
        .await
        .expect("list");
    assert_eq!(
        stored.iter().filter(|(d, _)| d.as_str() == digest).count(),
        1
    );
}

async fn blob_ranges_and_conditional_get(b: Backend) {
    let t = TestServer::start(b).await;
    let data: Vec<u8> = (0..100u8).collect();
    let digest = t.push_blob("r", &data).await;
    let path = format!("/v2/r/blobs/{digest}");
    let ranged = |range: &'static str| t.client.get(t.url(&path)).header("range", range).send();
    let r = ranged("bytes=10-19").await.expect("get");
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-range"), "bytes 10-19/100");
    assert_eq!(header(&r, "content-length"), "10");
    assert_eq!(r.bytes().await.expect("b").to_vec(), data[10..20].to_vec());
    let r = ranged("bytes=90-").await.expect("get");
    assert_eq!(r.bytes().await.expect("b").to_vec(), data[90..].to_vec());
    let r = ranged("bytes=-5").await.expect("get");
    assert_eq!(r.bytes().await.expect("b").to_vec(), data[95..].to_vec());
    let r = ranged("bytes=95-500").await.expect("get");
    assert_eq!(header(&r, "content-range"), "bytes 95-99/100");
    let r = ranged("bytes=100-200").await.expect("get");
    assert_eq!(header(&r, "content-range"), "bytes */100");
    assert_error(r, StatusCode::RANGE_NOT_SATISFIABLE, "SIZE_INVALID").await;
    // Malformed ranges are ignored: the whole blob.
    let r = ranged("pages=1-2").await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("b").len(), 100);
    let r = t
        .client
        .get(t.url(&path))
        .header("if-none-match", format!("\"{digest}\""))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // A large blob is read ahead in 1 MiB chunks: whole, and a range that
    // starts and ends inside chunks.
    let big: Vec<u8> = (0..(9 << 20) + 4321u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let digest = t.push_blob("r", &big).await;
    let path = format!("/v2/r/blobs/{digest}");
    let got = t.get(&path).await.bytes().await.expect("b");
    assert!(got.as_ref() == big.as_slice(), "whole large blob");
    let (start, end) = (1_000_001usize, (7 << 20) + 17);
    let r = t
        .client
        .get(t.url(&path))
        .header("range", format!("bytes={start}-{end}"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    let got = r.bytes().await.expect("b");
    assert!(got.as_ref() == &big[start..=end], "range of a large blob");
}

async fn manifest_push_pull_by_tag_and_digest(b: Backend) {
    let t = TestServer::start(b).await;
    let (digest, manifest) = t.push_image("library/app", "v1", b"layer one").await;
    for reference in ["v1", digest.as_str()] {
        let r = t
            .get(&format!("/v2/library/app/manifests/{reference}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&r, "docker-content-digest"), digest);
        assert_eq!(header(&r, "content-length"), manifest.len().to_string());
        assert_eq!(
            r.bytes().await.expect("b").to_vec(),
            manifest,
            "exact bytes"
        );
        let r = t
            .head(&format!("/v2/library/app/manifests/{reference}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-length"), manifest.len().to_string());
        assert_eq!(header(&r, "docker-content-digest"), digest);
    }
    assert_error(
        t.get("/v2/library/app/manifests/v2").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    assert_error(
        t.get("/v2/library/nope/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    )
    .await;
    assert_eq!(
        t.head("/v2/library/app/manifests/v2").await.status(),
        StatusCode::NOT_FOUND
    );
    // Retagging moves the tag; re-pushing the same bytes is idempotent.
    let (digest2, _) = t.push_image("library/app", "v1", b"layer two").await;
    assert_ne!(digest, digest2);
    assert_eq!(
        header(
            &t.head("/v2/library/app/manifests/v1").await,
            "docker-content-digest"
        ),
        digest2
    );
    assert_eq!(
        t.head(&format!("/v2/library/app/manifests/{digest}"))
            .await
            .status(),
        StatusCode::OK
    );
    let r = t
        .put_manifest("library/app", &digest, OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(&r, "location"),
        format!("/v2/library/app/manifests/{digest}")
    );
}

async fn manifest_reference_checks(b: Backend) {
    let t = TestServer::start(b).await;
    let config = t.push_blob("a", b"{}").await;
    let missing = sha256(b"missing layer");
    let m = image_manifest(&config, 2, &[(missing.clone(), 13)], None);
    let r = t.put_manifest("a", "t", OCI_MANIFEST, &m).await;
    let text = r.text().await.expect("t");
    assert!(
        text.contains("MANIFEST_BLOB_UNKNOWN") && text.contains(&missing),
        "{text}"
    );
    // A blob in another repository does not count.
    let elsewhere = t.push_blob("b", b"layer elsewhere").await;
    let m = image_manifest(&config, 2, &[(elsewhere, 15)], None);
    assert_error(
        t.put_manifest("a", "t", OCI_MANIFEST, &m).await,
        StatusCode::BAD_REQUEST,
        "MANIFEST_BLOB_UNKNOWN",
    )
    .await;
    // Non-distributable layers need not exist.
    let foreign = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": sha256(b"windows base"), "size": 5, "urls": ["https://example.invalid/x"]}]
    });
    let r = t
        .put_manifest(
            "a",
            "foreign",
            OCI_MANIFEST,
            &serde_json::to_vec(&foreign).expect("j"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Index children must exist in the repository.
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(b"no such manifest"), "size": 10}]});
    assert_error(
        t.put_manifest(
            "a",
            "idx",
            OCI_INDEX,
            &serde_json::to_vec(&index).expect("j"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "MANIFEST_UNKNOWN",
    )
    .await;
    // Nothing was tagged by the failed pushes.
    let tags: serde_json::Value = t.get("/v2/a/tags/list").await.json().await.expect("json");
    assert_eq!(tags["tags"], serde_json::json!(["foreign"]));
}

/// A descriptor whose size differs from the stored blob's or child
/// manifest's is refused (containerd refuses such images at pull time), and
/// so is an index whose `manifests` is null. Nothing is tagged.
async fn manifest_sizes_must_match_the_stored_content(b: Backend) {
    let t = TestServer::start(b).await;
    let config = t.push_blob("s", b"{}").await;
    let layer = t.push_blob("s", b"twelve bytes").await;
    async fn refused(t: &TestServer, tag: &str, media_type: &str, body: &[u8], needles: &[&str]) {
        let r = t.put_manifest("s", tag, media_type, body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let text = r.text().await.expect("text");
        assert!(text.contains("MANIFEST_INVALID"), "{text}");
        for n in needles {
            assert!(text.contains(n), "{n} in {text}");
        }
    }
    // The layer is 12 bytes; the descriptor says 13.
    let m = image_manifest(&config, 2, &[(layer.clone(), 13)], None);
    refused(
        &t,
        "bad-layer",
        OCI_MANIFEST,
        &m,
        &["layers[0]", &layer, "13", "12"],
    )
    .await;
    // The config is 2 bytes; the descriptor says 3.
    let m = image_manifest(&config, 3, &[(layer.clone(), 12)], None);
    refused(&t, "bad-config", OCI_MANIFEST, &m, &["config", &config]).await;
    // Right sizes: stored.
    let good = image_manifest(&config, 2, &[(layer.clone(), 12)], None);
    let r = t.put_manifest("s", "good", OCI_MANIFEST, &good).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let child = sha256(&good);
    // An index child of the wrong size is refused too.
    let index = |size: usize| {
        serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": size}]}),
        )
        .expect("json")
    };
    refused(
        &t,
        "bad-index",
        OCI_INDEX,
        &index(good.len() + 1),
        &["manifests[0]", &child],
    )
    .await;
    let r = t
        .put_manifest("s", "index", OCI_INDEX, &index(good.len()))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // An index whose manifests is null is not an empty index.
    let null = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}"#;
    refused(&t, "null-index", OCI_INDEX, null, &["manifests", "null"]).await;
    let tags: serde_json::Value = t.get("/v2/s/tags/list").await.json().await.expect("json");
    assert_eq!(tags["tags"], serde_json::json!(["good", "index"]));
}

async fn manifest_refusals(b: Backend) {
    let t = TestServer::start_with(b, |c| c.registry.max_manifest_bytes = 1024).await;
    assert_error(
        t.put_manifest("r", "t", OCI_MANIFEST, b"{not json").await,
        StatusCode::BAD_REQUEST,
        "MANIFEST_INVALID",
    )
    .await;
    let schema1 = br#"{"schemaVersion":1,"name":"r","tag":"t","fsLayers":[],"history":[]}"#;
    let r = t
        .put_manifest(
            "r",
            "t",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            schema1,
        )
        .await;
    let text = r.text().await.expect("t");
    assert!(
        text.contains("MANIFEST_INVALID") && text.contains("schema 1"),
        "{text}"
    );
    let mismatch = serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
    )
    .expect("j");
    assert_error(
        t.put_manifest("r", "t", OCI_MANIFEST, &mismatch).await,
        StatusCode::BAD_REQUEST,
        "MANIFEST_INVALID",
    )
    .await;
    let big = vec![b' '; 2048];
    assert_error(
        t.put_manifest("r", "t", OCI_MANIFEST, &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "MANIFEST_INVALID",
    )
    .await;
    // Digest in the URL that does not match the bytes.
    let config = t.push_blob("r", b"{}").await;
    let m = image_manifest(&config, 2, &[], None);
    assert_error(
        t.put_manifest("r", &sha256(b"other"), OCI_MANIFEST, &m)
            .await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    assert_error(
        t.put_manifest("r", "bad!tag", OCI_MANIFEST, &m).await,
        StatusCode::BAD_REQUEST,
        "MANIFEST_INVALID",
    )
    .await;
    // Any other media type is stored as sent.
    let artifact =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json","payload":42}"#;
    let r = t
        .put_manifest("r", "thing", "application/vnd.example.thing+json", artifact)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = t.get("/v2/r/manifests/thing").await;
    assert_eq!(
        header(&r, "content-type"),
        "application/vnd.example.thing+json"
    );
    assert_eq!(r.bytes().await.expect("b").to_vec(), artifact.to_vec());
}

async fn push_by_digest_with_tags(b: Backend) {
    let t = TestServer::start(b).await;
    let config = t.push_blob("r", b"{}").await;
    let m = image_manifest(&config, 2, &[], None);
    let d = sha256(&m);
    let r = t
        .client
        .put(t.url(&format!("/v2/r/manifests/{d}?tag=1.2.3&tag=1.2&tag=latest")))
        .header("content-type", OCI_MANIFEST)
        .body(m.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    let oci_tag = header(&r, "oci-tag");
    for tag in ["1.2.3", "1.2", "latest"] {
        assert!(oci_tag.contains(tag), "{oci_tag}");
        assert_eq!(
            header(
                &t.head(&format!("/v2/r/manifests/{tag}")).await,
                "docker-content-digest"
            ),
            d
        );
    }
}

async fn docker_schema2_and_manifest_list(b: Backend) {
    let t = TestServer::start(b).await;
    let config = t.push_blob("d", b"{\"os\":\"linux\"}").await;
    let layer = t.push_blob("d", b"docker layer").await;
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config, "size": 14},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer, "size": 12}]
    })).expect("j");
    let r = t
        .put_manifest(
            "d",
            "amd64",
            "application/vnd.docker.distribution.manifest.v2+json",
            &m,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": sha256(&m), "size": m.len(), "platform": {"architecture": "amd64", "os": "linux"}}]
    })).expect("j");
    let r = t
        .put_manifest(
            "d",
            "latest",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            &list,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = t.get("/v2/d/manifests/latest").await;
    assert_eq!(
        header(&r, "content-type"),
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
}

async fn referrers_and_subject(b: Backend) {
    let t = TestServer::start(b).await;
    let (subject, subject_bytes) = t.push_image("s", "v1", b"base").await;
    let empty = t.push_blob("s", b"{}").await;
    let mut pushed = Vec::new();
    for (i, artifact_type) in [
        "application/vnd.example.sbom",
        "application/vnd.example.sig",
    ]
    .iter()
    .enumerate()
    {
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_bytes.len()},
            "annotations": {"n": i.to_string()}
        })).expect("j");
        let d = sha256(&m);
        let r = t.put_manifest("s", &d, OCI_MANIFEST, &m).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header(&r, "oci-subject"), subject);
        pushed.push(d);
    }
    let r = t.get(&format!("/v2/s/referrers/{subject}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["manifests"].as_array().map(Vec::len), Some(2));
    let first = v["manifests"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["digest"] == pushed[0]))
        .expect("listed");
    assert_eq!(first["artifactType"], "application/vnd.example.sbom");
    assert_eq!(first["annotations"]["n"], "0");
    let r = t
        .get(&format!(
            "/v2/s/referrers/{subject}?artifactType=application/vnd.example.sig"
        ))
        .await;
    assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["manifests"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["manifests"][0]["digest"], pushed[1]);
    // None: an empty index. A subject that does not exist (yet) is accepted.
    let v: serde_json::Value = t
        .get(&format!("/v2/s/referrers/{}", sha256(b"x")))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["manifests"], serde_json::json!([]));
    let dangling = image_manifest(&empty, 2, &[], Some((&sha256(b"future"), 3)));
    let r = t
        .put_manifest("s", "dangling", OCI_MANIFEST, &dangling)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_error(
        t.get("/v2/s/referrers/sha256:bad").await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
}

async fn tags_pagination(b: Backend) {
    let t = TestServer::start(b).await;
    let config = t.push_blob("p", b"{}").await;
    let m = image_manifest(&config, 2, &[], None);
    let mut names: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
    names.push("A-upper".into());
    names.push("_under".into());
    for n in &names {
        assert_eq!(
            t.put_manifest("p", n, OCI_MANIFEST, &m).await.status(),
            StatusCode::CREATED
        );
    }
    names.sort();
    let all: serde_json::Value = t.get("/v2/p/tags/list").await.json().await.expect("json");
    assert_eq!(all["name"], "p");
    assert_eq!(all["tags"], serde_json::json!(names));
    let mut seen = Vec::new();
    let mut path = "/v2/p/tags/list?n=5".to_owned();
    loop {
        let r = t.get(&path).await;
        let link = r
            .headers()
            .get("link")
            .map(|l| l.to_str().expect("ascii").to_owned());
        let v: serde_json::Value = r.json().await.expect("json");
        let page: Vec<String> = serde_json::from_value(v["tags"].clone()).expect("tags");
        assert!(page.len() <= 5);
        seen.extend(page);
        match link {
            Some(l) => {
                path = l
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .expect("link")
                    .to_owned()
            }
            None => break,
        }
    }
    assert_eq!(seen, names);
    let v: serde_json::Value = t
        .get("/v2/p/tags/list?n=3&last=t05")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["tags"], serde_json::json!(["t06", "t07", "t08"]));
    let v: serde_json::Value = t
        .get("/v2/p/tags/list?n=0")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["tags"], serde_json::json!([]));
    assert_error(
        t.get("/v2/unknown/tags/list").await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    )
    .await;
    assert_error(
        t.get("/v2/p/tags/list?n=x").await,
        StatusCode::BAD_REQUEST,
        "UNSUPPORTED",
    )
    .await;
}

async fn catalog_pagination(b: Backend) {
    let t = TestServer::start(b).await;
    let repos = ["a/one", "a/two", "b", "c/d/e"];
    for r in repos {
        t.push_blob(r, b"x").await;
    }
    let v: serde_json::Value = t.get("/v2/_catalog").await.json().await.expect("json");
    assert_eq!(v["repositories"], serde_json::json!(repos));
    let r = t.get("/v2/_catalog?n=2").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/_catalog?n=2&last=a%2Ftwo>; rel=\"next\""
    );
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["repositories"], serde_json::json!(["a/one", "a/two"]));
    let v: serde_json::Value = t
        .get("/v2/_catalog?n=2&last=a%2Ftwo")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["repositories"], serde_json::json!(["b", "c/d/e"]));
}

async fn deletes(b: Backend) {
    let t = TestServer::start(b).await;
    let (d1, _) = t.push_image("del", "keep", b"one").await;
    let r = t
        .put_manifest(
            "del",
            "also",
            OCI_MANIFEST,
            &t.get(&format!("/v2/del/manifests/{d1}"))
                .await
                .bytes()
                .await
                .expect("b"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Deleting a tag deletes only the tag.
    assert_eq!(
        t.delete("/v2/del/manifests/also").await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        t.head("/v2/del/manifests/also").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.head("/v2/del/manifests/keep").await.status(),
        StatusCode::OK
    );
    assert_error(
        t.delete("/v2/del/manifests/also").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    // Deleting by digest takes its tags with it.
    assert_eq!(
        t.delete(&format!("/v2/del/manifests/{d1}")).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        t.head("/v2/del/manifests/keep").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.head(&format!("/v2/del/manifests/{d1}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let v: serde_json::Value = t.get("/v2/del/tags/list").await.json().await.expect("json");
    assert_eq!(v["tags"], serde_json::json!([]));
    // Blob delete unlinks it from this repository only.
    let blob = t.push_blob("del", b"blob to delete").await;
    t.push_blob("other", b"blob to delete").await;
    assert_eq!(
        t.delete(&format!("/v2/del/blobs/{blob}")).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        t.head(&format!("/v2/del/blobs/{blob}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.head(&format!("/v2/other/blobs/{blob}")).await.status(),
        StatusCode::OK
    );
    assert_error(
        t.delete(&format!("/v2/del/blobs/{blob}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
    assert_error(
        t.delete("/v2/nope/manifests/x").await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    )
    .await;
}

async fn deletes_disabled(b: Backend) {
    let t = TestServer::start_with(b, |c| c.registry.deletes_enabled = false).await;
    let (d, _) = t.push_image("r", "v1", b"l").await;
    assert_error(
        t.delete("/v2/r/manifests/v1").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
    )
    .await;
    assert_error(
        t.delete(&format!("/v2/r/manifests/{d}")).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
    )
    .await;
    assert_eq!(t.head("/v2/r/manifests/v1").await.status(), StatusCode::OK);
}

async fn malformed_requests_never_500(b: Backend) {
    let t = TestServer::start(b).await;
    let (digest, _) = t.push_image("ok", "v1", b"content").await;
    let long = "a".repeat(300);
    type Case<'a> = (Method, String, Option<(&'a str, &'a str)>, Vec<u8>);
    let cases: Vec<Case> = vec![
        (Method::GET, "/v2/UPPER/manifests/x".into(), None, vec![]),
        (Method::GET, format!("/v2/{long}/manifests/x"), None, vec![]),
        (Method::GET, "/v2/a//b/manifests/x".into(), None, vec![]),
        (Method::GET, "/v2/ok/manifests/sha256:123".into(), None, vec![]),
        (Method::GET, "/v2/ok/manifests/sha999:123".into(), None, vec![]),
        (Method::GET, "/v2/ok/blobs/latest".into(), None, vec![]),
        (Method::GET, "/v2/ok/blobs/sha256%3Azz".into(), None, vec![]),
        (Method::GET, "/v2/ok/blobs/%ff%fe".into(), None, vec![]),
        (Method::POST, "/v2/ok/manifests/v1".into(), None, vec![]),
        (Method::PATCH, "/v2/ok/blobs/uploads/".into(), None, vec![]),
        (Method::PATCH, "/v2/ok/blobs/uploads/nope".into(), Some(("content-range", "0-3")), b"abcd".to_vec()),
        (Method::PATCH, "/v2/ok/blobs/uploads/nope".into(), Some(("content-range", "garbage")), b"abcd".to_vec()),
        (Method::PUT, "/v2/ok/manifests/v2".into(), Some(("content-type", OCI_MANIFEST)), b"\x00\xff".to_vec()),
        (Method::PUT, "/v2/ok/manifests/v2".into(), Some(("content-type", OCI_MANIFEST)), br#"{"schemaVersion":2,"config":{"digest":5},"layers":[]}"#.to_vec()),
        (Method::PUT, "/v2/ok/manifests/v2".into(), Some(("content-type", OCI_MANIFEST)), br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:aa","size":1},"layers":[]}"#.to_vec()),
        (Method::PUT, "/v2/ok/manifests/v2".into(), Some(("content-type", OCI_INDEX)), br#"{"schemaVersion":2,"manifests":{}}"#.to_vec()),
        (Method::GET, "/v2/ok/tags/list?n=99999999999999999999999".into(), None, vec![]),
        // A media type that cannot be a header value, sent without Content-Type.
        (Method::PUT, "/v2/ok/manifests/v3".into(), None, b"{\"schemaVersion\":2,\"mediaType\":\"application/x\\r\\nInjected: 1\",\"config\":{}}".to_vec()),
        (Method::GET, "/v2/ok/referrers/latest".into(), None, vec![]),
        (Method::DELETE, "/v2/_catalog".into(), None, vec![]),
        (Method::GET, format!("/v2/ok/blobs/uploads/{long}"), None, vec![]),
        (Method::POST, "/v2/ok/blobs/uploads/?mount=sha256:bad".into(), None, vec![]),
        (Method::POST, "/v2/ok/blobs/uploads/?from=BAD&mount=sha256:00".into(), None, vec![]),
    ];
    for (method, path, hdr, body) in cases {
        let mut req = t.client.request(method.clone(), t.url(&path)).body(body);
        if let Some((k, v)) = hdr {
            req = req.header(k, v);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let text = r.text().await.expect("body");
        assert!(status.is_client_error(), "{method} {path}: {status} {text}");
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert!(
            v["errors"][0]["code"].as_str().is_some(),
            "{method} {path}: {text}"
        );
    }
    // What was stored is untouched.
    assert_eq!(
        header(
            &t.head("/v2/ok/manifests/v1").await,
            "docker-content-digest"
        ),
        digest
    );
}

async fn pull_counts_are_batched(b: Backend) {
    let t = TestServer::start(b).await;
    let (digest, _) = t.push_image("pc", "v1", b"x").await;
    for _ in 0..3 {
        assert_eq!(t.get("/v2/pc/manifests/v1").await.status(), StatusCode::OK);
    }
    assert_eq!(t.head("/v2/pc/manifests/v1").await.status(), StatusCode::OK);
    assert_eq!(
        t.get(&format!("/v2/pc/manifests/{digest}")).await.status(),
        StatusCode::OK
    );
    let repo = berth_oci::RepoName::parse("pc").expect("name");
    let tag = berth_oci::Tag::parse("v1").expect("tag");
    let d = berth_oci::Digest::parse(&digest).expect("digest");
    let meta = t.registry().meta().clone();
    // Nothing written yet: counts live in memory until the flush.
    assert_eq!(
        meta.tag_stats(&repo, &tag)
            .await
            .expect("stats")
            .map(|s| s.pull_count),
        Some(0)
    );
    assert_eq!(t.registry().pulls().pending(), 2);
    t.registry().flush_pulls().await.expect("flush");
    let tag_stats = meta
        .tag_stats(&repo, &tag)
        .await
        .expect("stats")
        .expect("tag");
    // Three by tag and one of its manifest by digest; HEAD is not a pull.
    assert_eq!(tag_stats.pull_count, 4, "HEAD is not a pull");
    assert!(tag_stats.last_pulled_at.is_some());
    let m = meta
        .manifest_stats(&repo, &d)
        .await
        .expect("stats")
        .expect("manifest");
    assert_eq!(m.pull_count, 4);
    // Pending counts are written on shutdown.
    t.get("/v2/pc/manifests/v1").await;
    let mut t = t;
    t.restart().await;
    let tag_stats = t
        .registry()
        .meta()
        .tag_stats(&repo, &tag)
        .await
        .expect("stats")
        .expect("tag");
    assert_eq!(tag_stats.pull_count, 5);
}

async fn uploads_survive_restart(b: Backend) {
    let mut t = TestServer::start(b).await;
    let data: Vec<u8> = (0..=255u8).cycle().take(50_000).collect();
    let r = t
        .client
        .post(t.url("/v2/resume/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    let loc = header(&r, "location");
    let r = t
        .client
        .patch(t.resolve(&loc))
        .header("content-range", "0-19999")
        .body(data[..20_000].to_vec())
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    t.restart().await;
    let r = t.get(&loc).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), "0-19999");
    let r = t
        .client
        .patch(t.resolve(&loc))
        .header("content-range", "20000-49999")
        .body(data[20_000..].to_vec())
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let digest = sha256(&data);
    let r = t
        .client
        .put(format!("{}?digest={digest}", t.resolve(&loc)))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        t.get(&format!("/v2/resume/blobs/{digest}"))
            .await
            .bytes()
            .await
            .expect("b")
            .to_vec(),
        data
    );
}

async fn upload_expiry(b: Backend) {
    let t = TestServer::start_with(b, |c| c.registry.upload_expiry_secs = 0).await;
    let r = t
        .client
        .post(t.url("/v2/e/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    let loc = header(&r, "location");
    t.client
        .patch(t.resolve(&loc))
        .body(b"partial".to_vec())
        .send()
        .await
        .expect("patch");
    // An orphaned upload file with no session (as a crash could leave).
    if b.is_fs() {
        std::fs::write(t.data_dir().join("blobs/_uploads/orphan"), b"junk").expect("write");
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // The background sweep (which also runs at startup) may have taken the
    // session already; the orphan file can only go through this call.
    let removed = t.registry().expire_uploads().await.expect("expire");
    let least = usize::from(b.is_fs());
    assert!((least..=2).contains(&removed), "removed {removed}");
    assert_error(
        t.get(&loc).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    assert_eq!(t.uploads_left().await, 0);
}

async fn upload_activity_is_recorded_at_most_once_per_interval(b: Backend) {
    // A 30 s expiry: a session's activity is refreshed at most every 3 s, so
    // a chunked push does not commit to the database on every chunk.
    let t = TestServer::start_with(b, |c| c.registry.upload_expiry_secs = 30).await;
    let started = std::time::Instant::now();
    let loc = t.start_upload("act").await;
    let id = loc
        .split('?')
        .next()
        .and_then(|p| p.rsplit('/').next())
        .expect("upload id")
        .to_owned();
    let recorded = || async {
        t.registry()
            .meta()
            .get_upload(&id)
            .await
            .expect("get upload")
            .expect("upload exists")
            .updated_at
    };
    let created = recorded().await;
    let patch = |loc: String, start: usize, data: &'static [u8]| {
        let t = &t;
        async move {
            let r = t
                .client
                .patch(t.resolve(&loc))
                .header(
                    "content-range",
                    format!("{start}-{}", start + data.len() - 1),
                )
                .body(data)
                .send()
                .await
                .expect("patch");
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            header(&r, "location")
        }
    };
    let loc = patch(loc, 0, b"first ").await;
    if started.elapsed() < std::time::Duration::from_millis(2500) {
        assert_eq!(recorded().await, created, "a chunk right after the start");
    }
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let loc = patch(loc, 6, b"second").await;
    assert!(
        recorded().await > created,
        "a chunk after the interval refreshes"
    );
    let digest = sha256(b"first second");
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = t
        .client
        .put(format!("{}{sep}digest={digest}", t.resolve(&loc)))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
}

async fn health_ready_metrics(b: Backend) {
    let t = TestServer::start(b).await;
    // Liveness names the release and the schema (what a rolling upgrade
    // watches); `berth --version` names the same.
    let r = t.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let health: serde_json::Value = r.json().await.expect("healthz is JSON");
    let schema = berth_meta::SCHEMA_VERSION;
    assert_eq!(
        health,
        serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"),
            "schema_version": schema, "schema_supported": schema})
    );
    assert!(schema >= 26, "{schema}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--version")
        .output()
        .expect("berth --version");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("berth {} (schema {schema})\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(t.get("/readyz").await.status(), StatusCode::OK);
    t.push_image("m", "v1", b"x").await;
    t.get("/v2/m/manifests/v1").await;
    t.client
        .post(t.url("/v2/m/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    let text = t.get("/metrics").await.text().await.expect("text");
    assert!(
        text.contains("berth_http_requests_total{endpoint=\"manifest_get\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("berth_http_request_duration_seconds_count{endpoint=\"upload_finish\"} 2"),
        "{text}"
    );
    assert!(text.contains("berth_uploads_in_progress 1"), "{text}");
    let received: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("berth_http_received_bytes_total "))
        .and_then(|v| v.parse().ok())
        .expect("bytes in");
    assert!(received > 0);
}

/// A chunk refused for the layer size limit ends its upload session.
async fn assert_refused_and_ended(t: &TestServer, r: reqwest::Response, loc: &str) {
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID").await;
    assert_eq!(
        t.client.get(loc).send().await.expect("status").status(),
        StatusCode::NOT_FOUND,
        "the session is gone"
    );
}

async fn layer_size_limit(b: Backend) {
    let t = TestServer::start_with(b, |c| c.registry.max_blob_bytes = 1000).await;
    // Announced by a single POST: refused, nothing stored.
    let big = vec![7u8; 2000];
    let digest = sha256(&big);
    let r = t
        .client
        .post(t.url(&format!("/v2/l/blobs/uploads/?digest={digest}")))
        .body(big.clone())
        .send()
        .await
        .expect("post");
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID").await;
    assert_eq!(
        t.head(&format!("/v2/l/blobs/{digest}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.uploads_left().await, 0);
    // Announced by Content-Range: refused and the session is gone.
    let loc = t.start_upload("l").await;
    let r = t
        .client
        .patch(&loc)
        .header("content-range", "0-1999")
        .body(big.clone())
        .send()
        .await
        .expect("patch");
    assert_refused_and_ended(&t, r, &loc).await;
    // Announced by Content-Length on top of what is there.
    let loc = t.start_upload("l").await;
    assert_eq!(
        t.client
            .patch(&loc)
            .body(vec![1u8; 600])
            .send()
            .await
            .expect("patch")
            .status(),
        StatusCode::ACCEPTED
    );
    let r = t
        .client
        .patch(&loc)
        .body(vec![1u8; 600])
        .send()
        .await
        .expect("patch");
    assert_refused_and_ended(&t, r, &loc).await;
    // Not announced (streamed): stopped when the limit is crossed.
    let loc = t.start_upload("l").await;
    let parts: Vec<Result<bytes::Bytes, std::io::Error>> = (0..4)
        .map(|_| Ok(bytes::Bytes::from(vec![3u8; 400])))
        .collect();
    let r = t
        .client
        .patch(&loc)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            parts,
        )))
        .send()
        .await
        .expect("patch");
    // The rest of the body is unread: the connection is not reused.
    assert_eq!(header(&r, "connection"), "close");
    assert_refused_and_ended(&t, r, &loc).await;
    // The same body as the last chunk of a PUT: the client hears of the
    // chunk's refusal (the digest is pinned while it arrives), and nothing
    // is stored.
    let loc = t.start_upload("l").await;
    let parts: Vec<Result<bytes::Bytes, std::io::Error>> = (0..5)
        .map(|_| Ok(bytes::Bytes::from(vec![7u8; 400])))
        .collect();
    let r = t
        .client
        .put(format!("{loc}?digest={digest}"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            parts,
        )))
        .send()
        .await
        .expect("put");
    assert_refused_and_ended(&t, r, &loc).await;
    assert_eq!(
        t.head(&format!("/v2/l/blobs/{digest}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.uploads_left().await, 0);
    // Within the limit all is well.
    let ok = vec![5u8; 1000];
    t.push_blob("l", &ok).await;
}

async fn tag_limit_evicts_idle_tags(b: Backend) {
    let t = TestServer::start_with(b, |c| {
        c.registry.tags_per_repository = 3;
        c.registry.tag_idle_secs = 1;
    })
    .await;
    let (d1, _) = t.push_image("lim/app", "t1", b"one").await;
    let (d2, _) = t.push_image("lim/app", "t2", b"two").await;
    let (d3, m3) = t.push_image("lim/app", "t3", b"three").await;
    let config = t.push_blob("lim/app", b"{}").await;
    let m4 = image_manifest(&config, 2, &[], None);
    // Nothing is idle yet: the fourth tag is refused, naming the limit.
    let r = t.put_manifest("lim/app", "t4", OCI_MANIFEST, &m4).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let text = r.text().await.expect("body");
    assert!(
        text.contains("DENIED") && text.contains("already holds 3 tags"),
        "{text}"
    );
    assert_eq!(
        t.head("/v2/lim/app/manifests/t4").await.status(),
        StatusCode::NOT_FOUND
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    // t1 was just pulled, so it is not idle; t2 is the earliest pushed idle tag.
    assert_eq!(
        t.get("/v2/lim/app/manifests/t1").await.status(),
        StatusCode::OK
    );
    t.registry().flush_pulls().await.expect("flush");
    let r = t.put_manifest("lim/app", "t4", OCI_MANIFEST, &m4).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tags: serde_json::Value = t
        .get("/v2/lim/app/tags/list")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(tags["tags"], serde_json::json!(["t1", "t3", "t4"]));
    // The image left without tags went with its tag; the others stay.
    assert_eq!(
        t.head(&format!("/v2/lim/app/manifests/{d2}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.head(&format!("/v2/lim/app/manifests/{d1}"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        t.head(&format!("/v2/lim/app/manifests/{d3}"))
            .await
            .status(),
        StatusCode::OK
    );
    let audit = t.directory().store().list_audit(50).await.expect("audit");
    let entry = audit
        .iter()
        .find(|e| e.action == "tag.evict")
        .expect("eviction audited");
    assert_eq!(entry.target, "lim/app:t2");
    assert_eq!(entry.actor, "admin");
    assert!(
        entry.detail.contains("tag limit 3") && entry.detail.contains("and its image"),
        "{}",
        entry.detail
    );
    // Moving an existing tag needs no room; other repositories have their own count.
    assert_eq!(
        t.put_manifest("lim/app", "t3", OCI_MANIFEST, &m4)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        t.put_manifest("lim/app", "t1", OCI_MANIFEST, &m3)
            .await
            .status(),
        StatusCode::CREATED
    );
    let tags: serde_json::Value = t
        .get("/v2/lim/app/tags/list")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        tags["tags"],
        serde_json::json!(["t1", "t3", "t4"]),
        "no eviction for moved tags"
    );
    assert_eq!(
        t.directory()
            .store()
            .list_audit(50)
            .await
            .expect("audit")
            .iter()
            .filter(|e| e.action == "tag.evict")
            .count(),
        1
    );
    t.push_image("lim/other", "x", b"elsewhere").await;
}

/// The audit log records /v2 pushes and deletes: who, what digest and
/// tags, from where.
async fn pushes_and_deletes_are_audited(b: Backend) {
    let t = TestServer::start(b).await;
    let (digest, _) = t.push_image("audit/app", "v1", b"audited layer").await;
    let r = t.delete("/v2/audit/app/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = t.delete(&format!("/v2/audit/app/manifests/{digest}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let entry = |action: &'static str| {
        let t = &t;
        async move {
            let (s, v) = t
                .api(
                    Method::GET,
                    &format!("/api/v1/audit-log?action={action}"),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v["items"][0].clone()
        }
    };
    let push = entry("image.push").await;
    assert_eq!(push["actor"], "admin", "{push}");
    assert_eq!(push["target"], "audit/app", "{push}");
    assert_eq!(push["detail"], format!("{digest} tags: v1"), "{push}");
    assert_eq!(push["client_addr"], "127.0.0.1", "{push}");
    let tag = entry("tag.delete").await;
    assert_eq!(tag["target"], "audit/app:v1", "{tag}");
    assert_eq!(tag["client_addr"], "127.0.0.1", "{tag}");
    let manifest = entry("manifest.delete").await;
    assert_eq!(
        manifest["target"],
        format!("audit/app@{digest}"),
        "{manifest}"
    );
    assert_eq!(manifest["actor"], "admin");
}

/// Run `sql` on the server's database through a connection of its own, as
/// another process (`berth admin`, `berth gc`, another node) would.
/// GET `path` until `check` accepts the answer, for at most a second.
async fn within_1s(client: &reqwest::Client, url: &str, check: impl Fn(StatusCode, &str) -> bool) {
    let start = std::time::Instant::now();
    loop {
        let r = client.get(url).send().await.expect("get");
        let (status, digest) = (r.status(), digest_header(&r));
        if check(status, &digest) {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "{url} still answers {status} {digest} a second after the change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn cached_reads_follow_changes_written_by_another_process(b: Backend) {
    let t = TestServer::start(b).await;
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/namespaces",
            Some(serde_json::json!({"name": "outside", "public": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (one, _) = t.push_image("outside/app", "one", b"one").await;
    let (two, _) = t.push_image("outside/app", "two", b"two").await;
    let anon = anonymous_client();
    let url = t.url("/v2/outside/app/manifests/one");
    let hits = |text: String| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("berth_read_cache_hits_total ")?
                    .parse::<u64>()
                    .ok()
            })
            .expect("hits")
    };
    let before = hits(t.get("/metrics").await.text().await.expect("metrics"));
    for _ in 0..3 {
        let r = anon.get(&url).send().await.expect("get");
        assert_eq!(header(&r, "docker-content-digest"), one);
    }
    let after = hits(t.get("/metrics").await.text().await.expect("metrics"));
    assert!(
        after >= before + 2,
        "not answered from memory: {before} -> {after}"
    );

    // The tag moved by someone else: seen within a second.
    sql_elsewhere(
        &t,
        "UPDATE tags SET digest = (SELECT digest FROM tags WHERE name = 'two') WHERE name = 'one'",
    )
    .await;
    within_1s(&anon, &url, |s, d| s == StatusCode::OK && d == two).await;
    // The namespace turned private by someone else.
    sql_elsewhere(
        &t,
        "UPDATE namespaces SET public = 0 WHERE name = 'outside'",
    )
    .await;
    within_1s(&anon, &url, |s, _| s == StatusCode::UNAUTHORIZED).await;
}
