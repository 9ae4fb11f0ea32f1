//! The advisory feed: an air-gapped site pushes OSV advisories as an OCI
//! artifact (as `oras push` lays it out: a tar+gzip layer of a directory
//! of documents, a JSON layer of an array) to the repository Berth
//! watches; they are imported in the background and the images they
//! touch are matched, with no API call and no network.

use std::io::Write;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;
use crate::vulnerabilities::{fixture, machine_layer, push, report};

backend_tests!(s3: advisories_pushed_as_an_artifact_are_imported);

const FEED: &str = "security/advisories";

/// A tar+gzip of `files`.
fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, *data).unwrap();
    }
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&b.into_inner().unwrap()).unwrap();
    z.finish().unwrap()
}

async fn advisories_pushed_as_an_artifact_are_imported(backend: Backend) {
    let t = TestServer::start_with(backend, |c| {
        c.registry.advisory_feed = Some(FEED.into());
    })
    .await;
    for ns in ["security", "team"] {
        let (s, v) = t
            .api(
                Method::POST,
                "/api/v1/namespaces",
                Some(json!({"name": ns})),
            )
            .await;
        assert!(s.is_success(), "{v}");
    }
    let (layer, _) = machine_layer();
    let image = push(&t, &t.client, "team/app", "v1", &layer).await;
    let v = report(&t, &t.client, "team/app", &image).await;
    assert_eq!(v["findings"], json!([]), "{v}");

    // The artifact: a directory of documents and a JSON array.
    let pip = fixture("GHSA-mq26-g339-26xf.json").to_string();
    let bundle = tar_gz(&[
        ("osv/PyPI/GHSA-mq26-g339-26xf.json", pip.as_bytes()),
        ("osv/README.md", b"not an advisory"),
    ]);
    let array = json!([fixture("GHSA-j8r2-6x86-q33q.json")]).to_string();
    let empty = t.push_blob_as(&t.client, FEED, b"{}").await;
    let tarball = t.push_blob_as(&t.client, FEED, &bundle).await;
    let listing = t.push_blob_as(&t.client, FEED, array.as_bytes()).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.osv.bundle",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": tarball, "size": bundle.len(),
             "annotations": {"org.opencontainers.image.title": "osv", "io.deis.oras.content.unpack": "true"}},
            {"mediaType": "application/vnd.osv+json", "digest": listing, "size": array.len(),
             "annotations": {"org.opencontainers.image.title": "github.json"}},
        ],
    }))
    .unwrap();
    let r = t
        .put_manifest_as(&t.client, FEED, "2026-12-06", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // The image holding pip is matched once the job has run.
    let mut found = Value::Null;
    for _ in 0..300 {
        let v = report(&t, &t.client, "team/app", &image).await;
        if v["findings"].as_array().is_some_and(|f| !f.is_empty()) {
            found = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        found["findings"][0]["advisory"], "GHSA-mq26-g339-26xf",
        "{found}"
    );
    // Both layers were read: the advisory of the array is known too.
    let (s, v) = t
        .api(
            Method::GET,
            "/api/v1/advisories/GHSA-j8r2-6x86-q33q/images",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
