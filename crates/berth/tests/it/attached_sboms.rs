//! An SBOM a pipeline attaches to an image — made by a real tool, the
//! CycloneDX project's `cyclonedx-py`, over a Python environment that
//! really holds requests 2.30.0 from PyPI — joins the image's inventory
//! with its origin when it is pushed as a referrer after the image was
//! inventoried; a real advisory then finds what only the SBOM names, and
//! an SBOM that cannot be read is reported, not fatal. With the
//! namespace's `attach_sbom` policy, Berth attaches its own SPDX SBOM as a
//! referrer, and replaces it when the inventory changes. As a namespace
//! owner, on both databases.

use std::io::Write;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::cli::*;
use crate::common::*;
use crate::vulnerabilities::{fixture, push, report};

backend_tests!(an_attached_sbom_joins_the_inventory);

const EMPTY: &[u8] = b"{}";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";

/// A gzip layer holding only this machine's os-release: no Python.
fn plain_layer() -> Vec<u8> {
    let data = std::fs::read("/etc/os-release").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "etc/os-release", &data[..]).unwrap();
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&b.into_inner().unwrap()).unwrap();
    z.finish().unwrap()
}

/// `cyclonedx-py environment` over the test environment's venv.
async fn cyclonedx_py() -> Vec<u8> {
    let venv = std::path::PathBuf::from(
        std::env::var("BERTH_TEST_SBOMGEN_DIR")
            .expect("BERTH_TEST_SBOMGEN_DIR (scripts/test-env.sh)"),
    );
    let out = tempfile::NamedTempFile::new().unwrap();
    let tool = venv.join("bin/cyclonedx-py");
    let python = venv.join("bin/python");
    run(
        tool.to_str().unwrap(),
        &[
            "environment",
            "--of",
            "JSON",
            "-o",
            out.path().to_str().unwrap(),
            python.to_str().unwrap(),
        ],
    )
    .await;
    std::fs::read(out.path()).unwrap()
}

/// Push `doc` as an artifact of `artifact_type` whose subject is `image`.
async fn attach(
    t: &TestServer,
    client: &reqwest::Client,
    repo: &str,
    image: &str,
    image_size: usize,
    artifact_type: &str,
    doc: &[u8],
) -> String {
    let empty = t.push_blob_as(client, repo, EMPTY).await;
    let blob = t.push_blob_as(client, repo, doc).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": empty, "size": EMPTY.len()},
        "layers": [{"mediaType": artifact_type, "digest": blob, "size": doc.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": image, "size": image_size},
    }))
    .unwrap();
    let digest = sha256(&manifest);
    let r = t
        .put_manifest_as(client, repo, &digest, OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    digest
}

/// The image's report once it lists `n` attached SBOMs.
async fn with_attached(t: &TestServer, client: &reqwest::Client, image: &str, n: usize) -> Value {
    for _ in 0..300 {
        let v = report(t, client, "team/app", image).await;
        if v["attached_sboms"].as_array().map_or(0, Vec::len) == n {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} attached SBOMs not read within 30 s");
}

/// Berth's own SBOM referrers of `image`: (digest, inventory stamp).
async fn berths_sboms(
    t: &TestServer,
    client: &reqwest::Client,
    image: &str,
) -> Vec<(String, String)> {
    let r = client
        .get(t.url(&format!("/v2/team/app/referrers/{image}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let index: Value = r.json().await.unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            let stamp = m["annotations"]["dev.berth.sbom.inventory"].as_str()?;
            assert_eq!(m["artifactType"], "application/spdx+json", "{m}");
            Some((m["digest"].as_str().unwrap().to_owned(), stamp.to_owned()))
        })
        .collect()
}

/// Wait until Berth's SBOM of `image` is one referrer other than `not`;
/// its SPDX document.
async fn berths_sbom(
    t: &TestServer,
    client: &reqwest::Client,
    image: &str,
    not: Option<&str>,
) -> (String, Value) {
    for _ in 0..300 {
        let found = berths_sboms(t, client, image).await;
        if let [(digest, _)] = found.as_slice() {
            if Some(digest.as_str()) != not {
                let (_, body) = pull_manifest(t, client, "team/app", digest).await;
                let m: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(m["subject"]["digest"], image, "{m}");
                let layer = m["layers"][0]["digest"].as_str().unwrap();
                let r = client
                    .get(t.url(&format!("/v2/team/app/blobs/{layer}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                return (digest.clone(), r.json().await.unwrap());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("Berth's SBOM of {image} was not attached (once) within 30 s");
}

async fn an_attached_sbom_joins_the_inventory(backend: Backend) {
    let t = TestServer::start(backend).await;
    let owner = namespace_owner(&t, "owner", "team").await;
    let (s, v) = t
        .api_as(
            &owner,
            Method::PUT,
            "/api/v1/namespaces/team/policies",
            Some(json!({"attach_sbom": true})),
        )
        .await;
    assert_eq!(
        (s, &v["attach_sbom"]),
        (StatusCode::OK, &json!(true)),
        "{v}"
    );
    let image = push(&t, &owner, "team/app", "v1", &plain_layer()).await;
    let (ours, spdx) = berths_sbom(&t, &owner, &image, None).await;
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3", "{spdx}");
    assert!(spdx.to_string().contains(&image), "it describes the image");
    let (_, body) = pull_manifest(&t, &owner, "team/app", &image).await;
    let v = report(&t, &owner, "team/app", &image).await;
    assert!(
        !v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["ecosystem"] == "PyPI"),
        "{v}"
    );
    assert_eq!(v["attached_sboms"], json!([]), "{v}");

    // The pipeline attaches the SBOM cyclonedx-py made.
    let doc = cyclonedx_py().await;
    let sbom = attach(&t, &owner, "team/app", &image, body.len(), CYCLONEDX, &doc).await;
    let v = with_attached(&t, &owner, &image, 1).await;
    let a = &v["attached_sboms"][0];
    assert_eq!(a["digest"], sbom.as_str(), "{v}");
    assert!(
        a["format"].as_str().unwrap().starts_with("CycloneDX-1."),
        "{v}"
    );
    assert!(
        a["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().starts_with("cyclonedx-py ")),
        "{v}"
    );
    assert!(a["packages"].as_u64().unwrap() > 5, "{v}");
    // Berth's own SBOM is not read back as one attached.
    assert!(!v["attached_sboms"].to_string().contains(&ours), "{v}");
    let origin = format!("sbom:{sbom}");
    let requests: Vec<&Value> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ecosystem"] == "PyPI" && p["name"] == "requests")
        .collect();
    assert_eq!(requests.len(), 1, "{v}");
    assert_eq!(
        (
            requests[0]["version"].as_str(),
            requests[0]["path"].as_str()
        ),
        (Some("2.30.0"), Some(origin.as_str()))
    );

    // A real advisory for requests before 2.31.0 finds the image through
    // the SBOM alone.
    let (s, r) = t
        .api(
            Method::POST,
            "/api/v1/advisories",
            Some(json!({"advisories": [fixture("GHSA-j8r2-6x86-q33q.json")]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["images_matched"], 1, "{r}");
    let v = report(&t, &owner, "team/app", &image).await;
    let f = &v["findings"][0];
    assert_eq!(
        (
            f["advisory"].as_str(),
            f["package"].as_str(),
            f["path"].as_str()
        ),
        (
            Some("GHSA-j8r2-6x86-q33q"),
            Some("requests"),
            Some(origin.as_str())
        ),
        "{v}"
    );
    assert_eq!(f["fixed"], "2.31.0", "{v}");
    // The inventory changed: Berth's SBOM is replaced, and names requests.
    let (_, spdx) = berths_sbom(&t, &owner, &image, Some(&ours)).await;
    assert!(
        spdx.to_string().contains("pkg:pypi/requests@2.30.0"),
        "{spdx}"
    );

    // An SBOM that is not one is reported beside it; the rest stands.
    let broken = attach(
        &t,
        &owner,
        "team/app",
        &image,
        body.len(),
        "application/spdx+json",
        b"not json",
    )
    .await;
    let v = with_attached(&t, &owner, &image, 2).await;
    let failed: Vec<&Value> = v["attached_sboms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["digest"] == broken.as_str())
        .collect();
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("JSON")),
        "{v}"
    );
    assert_eq!(v["findings"][0]["advisory"], "GHSA-j8r2-6x86-q33q", "{v}");
}
