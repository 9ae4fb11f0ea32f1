//! Inventories and vulnerabilities: an image made of this machine's real
//! content (its os-release, its dpkg status, its pip's metadata) is
//! inventoried in the background after the push, and matched when real
//! advisories (GitHub's OSV documents) are imported — only the images
//! holding a package they name are re-matched; an image pushed later is
//! matched when its inventory is made. A corrupt layer is pushed and
//! reported, never failing the push.

use std::io::Write;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;
use crate::webhooks::{Receiver, SECRET};

backend_tests!(s3: images_are_inventoried_and_matched_as_advisories_arrive);

const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

pub(crate) fn fixture(name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures/osv")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A gzip layer of this machine's own files.
pub(crate) fn machine_layer() -> (Vec<u8>, String) {
    let pip = std::fs::read_dir("/usr/lib/python3/dist-packages")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("pip-")
                && p.extension().is_some_and(|e| e == "dist-info")
        })
        .expect("Debian's python3-pip is installed (scripts/test-env.sh)");
    let pip_version = pip.file_name().unwrap().to_string_lossy()["pip-".len()..]
        .trim_end_matches(".dist-info")
        .to_owned();
    let mut b = tar::Builder::new(Vec::new());
    for (inside, outside) in [
        (
            "etc/os-release".to_owned(),
            std::path::PathBuf::from("/etc/os-release"),
        ),
        (
            "var/lib/dpkg/status".to_owned(),
            "/var/lib/dpkg/status".into(),
        ),
        (
            format!(
                "usr/lib/python3/dist-packages/{}/METADATA",
                pip.file_name().unwrap().to_string_lossy()
            ),
            pip.join("METADATA"),
        ),
    ] {
        let data = std::fs::read(&outside).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, inside, &data[..]).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&tar).unwrap();
    (z.finish().unwrap(), pip_version)
}

pub(crate) async fn push(
    t: &TestServer,
    client: &reqwest::Client,
    repo: &str,
    tag: &str,
    layer: &[u8],
) -> String {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"tag":"{tag}"}}"#
    );
    let config_digest = t.push_blob_as(client, repo, config.as_bytes()).await;
    let layer_digest = t.push_blob_as(client, repo, layer).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": GZIP_LAYER, "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let r = t
        .put_manifest_as(client, repo, tag, OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    sha256(&manifest)
}

pub(crate) async fn report(
    t: &TestServer,
    client: &reqwest::Client,
    repo: &str,
    digest: &str,
) -> Value {
    let (ns, image) = repo.split_once('/').unwrap();
    let path = format!(
        "/api/v1/namespaces/{ns}/repositories/{}/manifests/{digest}/vulnerabilities",
        image.replace('/', "%2F")
    );
    for _ in 0..300 {
        let (s, v) = t.api_as(client, Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["status"] == "ready" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the inventory of {repo}@{digest} was not made within 30 s");
}

async fn images_are_inventoried_and_matched_as_advisories_arrive(backend: Backend) {
    let t = TestServer::start(backend).await;
    let owner = namespace_owner(&t, "owner", "team").await;
    let (layer, pip_version) = machine_layer();
    let first = push(&t, &owner, "team/app", "v1", &layer).await;

    let v = report(&t, &owner, "team/app", &first).await;
    assert_eq!(v["os"], "debian 12", "{v}");
    assert_eq!(v["incomplete"], false, "{v}");
    let packages = v["packages"].as_array().unwrap();
    assert!(
        packages.iter().any(|p| p["ecosystem"] == "PyPI"
            && p["name"] == "pip"
            && p["version"] == pip_version.as_str()),
        "{v}"
    );
    let dpkg = packages
        .iter()
        .filter(|p| p["ecosystem"] == "Debian:12")
        .count();
    assert!(dpkg > 100, "this machine's packages: {dpkg}");
    assert!(
        packages
            .iter()
            .any(|p| p["name"] == "libc6" && p["source"] == "glibc"),
        "{v}"
    );
    assert_eq!(v["findings"], json!([]), "no advisory yet");
    check_sboms(&t, &owner, &first, dpkg).await;
    index_has_no_inventory(&t, &owner, &first).await;

    // A platform webhook hears of new findings.
    let receiver = Receiver::start().await;
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "security", "url": receiver.url(),
                "events": ["vulnerability.found"], "secret": SECRET})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Real advisories arrive: pip's matches, requests' (absent) does not.
    let advisories = json!({"advisories": [fixture("GHSA-mq26-g339-26xf.json"), fixture("GHSA-j8r2-6x86-q33q.json"), {"not": "osv"}]});
    let (s, v) = t
        .api(Method::POST, "/api/v1/advisories", Some(advisories.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["imported"].as_u64(),
            v["images_matched"].as_u64(),
            v["new_findings"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(v["refused"][0]["index"], 2, "{v}");
    let v = report(&t, &owner, "team/app", &first).await;
    let f = &v["findings"][0];
    assert_eq!(f["advisory"], "GHSA-mq26-g339-26xf", "{v}");
    assert_eq!(
        (f["package"].as_str(), f["installed"].as_str()),
        (Some("pip"), Some(pip_version.as_str())),
        "{v}"
    );
    assert_eq!(
        (f["fixed"].as_str(), f["severity"].as_str()),
        (Some("23.3"), Some("medium")),
        "{v}"
    );
    assert_eq!(v["findings"].as_array().unwrap().len(), 1, "{v}");
    let event = receiver
        .wait_for("vulnerability.found", |e| e["data"]["digest"] == first)
        .await;
    assert_eq!(event["namespace"], "team", "{event}");
    assert_eq!(event["data"]["advisory"], "GHSA-mq26-g339-26xf", "{event}");
    assert_eq!(
        event["data"]["aliases"],
        json!(["CVE-2023-5752"]),
        "{event}"
    );
    assert_eq!(
        event["data"]["repositories"],
        json!(["team/app"]),
        "{event}"
    );
    assert_eq!(event["data"]["packages"][0]["name"], "pip", "{event}");
    // The same documents again: nothing to do.
    let (_, v) = t
        .api(Method::POST, "/api/v1/advisories", Some(advisories))
        .await;
    assert_eq!(
        (v["imported"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(2)),
        "{v}"
    );

    // A later image with the same base layer is matched once inventoried
    // (its layer is not read again).
    let second = push(&t, &owner, "team/other", "v2", &layer).await;
    let v = report(&t, &owner, "team/other", &second).await;
    assert_eq!(v["findings"][0]["advisory"], "GHSA-mq26-g339-26xf", "{v}");
    receiver
        .wait_for("vulnerability.found", |e| e["data"]["digest"] == second)
        .await;

    // Which images does the advisory affect, or hold pip below a version?
    // Each caller sees the repositories it may pull from.
    let (s, v) = t
        .api_as(
            &owner,
            Method::GET,
            "/api/v1/advisories/GHSA-mq26-g339-26xf/images",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rows: Vec<(String, String)> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["repository"].as_str().unwrap().to_owned(),
                i["tags"][0].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        rows.contains(&("team/app".into(), "v1".into()))
            && rows.contains(&("team/other".into(), "v2".into())),
        "{v}"
    );
    assert_eq!(v["images"][0]["fixed"], "23.3", "{v}");
    let (s, v) = t
        .api_as(
            &owner,
            Method::GET,
            "/api/v1/images/by-package?ecosystem=PyPI&name=pip&below=23.3",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["images"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["images"][0]["installed"], pip_version.as_str(), "{v}");
    let (_, v) = t
        .api_as(
            &owner,
            Method::GET,
            "/api/v1/images/by-package?ecosystem=PyPI&name=pip&below=1.0",
            None,
        )
        .await;
    assert_eq!(v["images"], json!([]), "{v}");
    // Tag lists say it in a line; the console's image tab in full.
    let (s, v) = t
        .api_as(
            &owner,
            Method::GET,
            "/api/v1/namespaces/team/repositories/app/tags?vulnerabilities=true",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let summary = &v["items"][0]["vulnerabilities"];
    assert_eq!(
        (
            summary["status"].as_str(),
            summary["medium"].as_u64(),
            summary["fixable"].as_u64(),
            summary["critical"].as_u64()
        ),
        (Some("ready"), Some(1), Some(1), Some(0)),
        "{v}"
    );
    let browser = crate::common::oidc::Browser::default();
    browser
        .submit(
            &format!("{}/login", t.base),
            &[("username", "owner"), ("password", "a-long-password")],
        )
        .await;
    let (_, status, page) = browser
        .open(&format!(
            "{}/namespaces/team/image-vulnerabilities?image=app",
            t.base
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("1 medium") && page.contains("GHSA-mq26-g339-26xf") && page.contains("23.3"),
        "{page}"
    );

    // Once per image and advisory, however often it is matched again.
    let announced = receiver
        .events()
        .values()
        .filter(|e| e["type"] == "vulnerability.found" && e["data"]["digest"] == first)
        .count();
    assert_eq!(announced, 1);
    let (s, v) = t
        .api_as(
            &owner,
            Method::GET,
            "/api/v1/advisories/GHSA-none/images",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // A corrupt layer: the push succeeds, the inventory says so.
    let mut corrupt = layer.clone();
    let n = corrupt.len();
    corrupt[n / 2] ^= 0xff;
    corrupt.truncate(n - 16);
    let bad = push(&t, &owner, "team/bad", "v1", &corrupt).await;
    let v = report(&t, &owner, "team/bad", &bad).await;
    assert_eq!(v["incomplete"], true, "{v}");

    // Offline, from the command line: a directory of OSV files (one
    // document, or an array), searched recursively.
    let feed = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(feed.path().join("github/pypi")).unwrap();
    std::fs::write(
        feed.path().join("github/pypi/GHSA-mq26-g339-26xf.json"),
        fixture("GHSA-mq26-g339-26xf.json").to_string(),
    )
    .unwrap();
    std::fs::write(
        feed.path().join("batch.json"),
        json!([fixture("GHSA-j8r2-6x86-q33q.json"), {"id": "broken"}]).to_string(),
    )
    .unwrap();
    std::fs::write(feed.path().join("README.txt"), "not an advisory").unwrap();
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    cli.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BERTH_DATA_DIR", t.data_dir())
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("BERTH_LOG", "warn")
        .args(["admin", "advisories", "import"])
        .arg(feed.path());
    if let Some(url) = &t.database_url {
        cli.env("BERTH_DATABASE_URL", url);
    }
    let out = cli.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("imported 0 advisories (2 unchanged, 1 refused) from 2 files"),
        "{stdout}"
    );
    assert!(stderr.contains("batch.json"), "{stderr}");

    // Others may not see it; only platform administrators import.
    let outsider = create_account(&t, "outsider").await;
    let (s, v) = t
        .api_as(
            &outsider,
            Method::GET,
            "/api/v1/advisories/GHSA-mq26-g339-26xf/images",
            None,
        )
        .await;
    assert_eq!((s, &v["images"]), (StatusCode::OK, &json!([])), "{v}");
    let (_, v) = t
        .api_as(
            &outsider,
            Method::GET,
            "/api/v1/images/by-package?name=pip",
            None,
        )
        .await;
    assert_eq!(v["images"], json!([]), "{v}");
    let path =
        format!("/api/v1/namespaces/team/repositories/app/manifests/{first}/vulnerabilities");
    let (s, _) = t.api_as(&outsider, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .api_as(
            &owner,
            Method::POST,
            "/api/v1/advisories",
            Some(json!({"advisories": [fixture("GHSA-mq26-g339-26xf.json")]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/advisories",
            Some(json!({"advisories": "text"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

/// The image's SBOMs in both formats, checked by each format's own
/// project library (scripts/test-env.sh installs them).
async fn check_sboms(t: &TestServer, client: &reqwest::Client, digest: &str, dpkg: usize) {
    let python = std::env::var("BERTH_TEST_SBOM_PYTHON")
        .expect("BERTH_TEST_SBOM_PYTHON (source scripts/test-env.sh)");
    let validator = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/support/sbom-validate.py");
    let dir = tempfile::tempdir().unwrap();
    let base = format!("/api/v1/namespaces/team/repositories/app/manifests/{digest}/sbom");
    for (format, content_type, count) in [
        ("spdx", "application/spdx+json", "packages"),
        ("cyclonedx", "application/vnd.cyclonedx+json", "components"),
    ] {
        let r = client
            .get(t.url(&format!("{base}?format={format}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(header(&r, "content-type").starts_with(content_type));
        let body = r.bytes().await.unwrap();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert!(doc[count].as_array().unwrap().len() > dpkg, "{format}");
        let file = dir.path().join(format!("sbom.{format}.json"));
        std::fs::write(&file, &body).unwrap();
        let out = std::process::Command::new(&python)
            .arg(&validator)
            .arg(format)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{format}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // SPDX by default; a format it does not write is refused clearly.
    let (s, v) = t.api_as(client, Method::GET, &base, None).await;
    assert_eq!(
        (s, v["spdxVersion"].as_str()),
        (StatusCode::OK, Some("SPDX-2.3"))
    );
    let (s, v) = t
        .api_as(client, Method::GET, &format!("{base}?format=swid"), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

/// An index has no inventory of its own: asking for its findings or its
/// SBOM is a clear 400 (it once answered "pending" for ever).
async fn index_has_no_inventory(t: &TestServer, client: &reqwest::Client, image: &str) {
    let r = client
        .get(t.url(&format!("/v2/team/app/manifests/{image}")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    let size = r.bytes().await.unwrap().len();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": image, "size": size,
            "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    let r = t
        .put_manifest_as(client, "team/app", "multi", OCI_INDEX, &index)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let digest = sha256(&index);
    for what in ["vulnerabilities", "sbom?format=spdx"] {
        let path = format!("/api/v1/namespaces/team/repositories/app/manifests/{digest}/{what}");
        let (s, v) = t.api_as(client, Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("not an image with filesystem layers"),
            "{what}: {v}"
        );
    }
}
