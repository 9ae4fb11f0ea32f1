//! Online garbage collection over real HTTP, on SQLite and PostgreSQL:
//! what it reclaims and what it must keep, dry runs, the storage sweep, the
//! command line, the API, and a stress test that pushes, deletes and
//! collects at the same time and then checks every committed image.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{
    anonymous_client, client_as, header, image_manifest, sha256, Backend, TestServer, OCI_INDEX,
    OCI_MANIFEST,
};
use berth_core::{GcCause, GcOptions};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Digests of the blobs in blob storage (a directory or a bucket).
async fn stored_blobs(t: &TestServer) -> Vec<String> {
    let mut out: Vec<String> = t
        .registry()
        .blobs()
        .list_blobs(None, 100_000)
        .await
        .expect("list blobs")
        .into_iter()
        .map(|(d, _)| d.as_str().to_owned())
        .collect();
    out.sort();
    out
}

/// Whether blob storage holds `digest`.
async fn stored(t: &TestServer, digest: &str) -> bool {
    let d = berth_oci::Digest::parse(digest).expect("digest");
    t.registry().blobs().stat(&d).await.expect("stat").is_some()
}

/// Store `data` in blob storage with no metadata row, as a crash between
/// storing and recording leaves it.
async fn plant_orphan(t: &TestServer, data: &[u8]) -> String {
    let meta = t.registry().meta();
    let blobs = t.registry().blobs();
    let id = format!("orphan{}", data.len());
    meta.create_upload(&berth_meta::UploadRecord {
        id: id.clone(),
        repo: "lib/orphan".into(),
        created_at: 1,
        updated_at: 1,
    })
    .await
    .expect("upload row");
    blobs
        .upload_create(&id, berth_oci::Algorithm::Sha256)
        .await
        .expect("create");
    let body: berth_blob::ByteStream =
        Box::pin(futures_util::stream::iter([Ok::<_, std::io::Error>(
            bytes::Bytes::copy_from_slice(data),
        )]));
    blobs
        .upload_append(&id, Some(0), body, u64::MAX)
        .await
        .expect("append");
    let digest = berth_oci::Digest::of_bytes(berth_oci::Algorithm::Sha256, data);
    blobs.upload_commit(&id, &digest).await.expect("commit");
    meta.delete_upload(&id).await.expect("forget the row");
    digest.as_str().to_owned()
}

/// Start a collection through the API and wait for its end.
async fn collect(t: &TestServer, body: Value) -> Value {
    let (s, started) = t.api(Method::POST, "/api/v1/gc/runs", Some(body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_i64().expect("id");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, run) = t
            .api(Method::GET, &format!("/api/v1/gc/runs/{id}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{run}");
        if run["status"] != "running" {
            assert_eq!(run["status"], "finished", "{run}");
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "collection did not finish: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Push an image of `layers` (plus a config); returns (manifest digest, blob digests).
async fn push_layers(
    t: &TestServer,
    repo: &str,
    tag: &str,
    layers: &[&[u8]],
) -> (String, Vec<String>) {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{repo}:{tag}"}}"#);
    let config_digest = t.push_blob(repo, config.as_bytes()).await;
    let mut refs = Vec::new();
    for layer in layers {
        refs.push((t.push_blob(repo, layer).await, layer.len()));
    }
    let manifest = image_manifest(&config_digest, config.len(), &refs, None);
    let r = t.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let mut blobs = vec![config_digest];
    blobs.extend(refs.into_iter().map(|(d, _)| d));
    (sha256(&manifest), blobs)
}

async fn assert_pullable(t: &TestServer, repo: &str, reference: &str, blobs: &[String]) {
    let r = t
        .req(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
        .await
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK, "{repo}:{reference}");
    for d in blobs {
        let r = t.get(&format!("/v2/{repo}/blobs/{d}")).await;
        assert_eq!(r.status(), StatusCode::OK, "{repo} blob {d}");
        assert_eq!(sha256(&r.bytes().await.expect("bytes")), *d);
    }
}

fn grace_zero(c: &mut berth::Config) {
    c.gc.grace_secs = 0;
}

async fn reclaims_deleted_images_and_abandoned_uploads(b: Backend) {
    let t = TestServer::start_with(b, grace_zero).await;
    let (_, a_blobs) = push_layers(&t, "lib/a", "v1", &[b"shared base layer"]).await;
    let (b_digest, b_blobs) =
        push_layers(&t, "lib/b", "v1", &[b"shared base layer", b"only in b"]).await;
    let dangling = t.push_blob("lib/b", b"uploaded but never used").await;
    assert_eq!(stored_blobs(&t).await.len(), 5);

    let r = t.delete(&format!("/v2/lib/b/manifests/{b_digest}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let run = collect(&t, json!({"dry_run": false})).await;
    assert_eq!(run["blobs_deleted"], 3, "{run}");
    assert_eq!(run["links_deleted"], 4, "{run}");
    assert_eq!(run["manifests_deleted"], 0, "{run}");
    for d in [&b_blobs[0], &b_blobs[2], &dangling] {
        assert!(!stored(&t, d).await, "{d} deleted");
    }
    let config_len = r#"{"architecture":"amd64","os":"linux","tag":"lib/b:v1"}"#.len();
    let expected = config_len + b"only in b".len() + b"uploaded but never used".len();
    assert_eq!(
        run["bytes_reclaimed"].as_i64(),
        Some(expected as i64),
        "{run}"
    );
    // The blob step's progress: what it expected, all of it done.
    let p = &run["progress"];
    assert_eq!(p["blobs_expected"], 3, "{run}");
    assert_eq!(p["bytes_expected"].as_i64(), Some(expected as i64), "{run}");
    assert_eq!(
        (p["percent"].as_f64(), p["eta_seconds"].as_f64()),
        (Some(100.0), Some(0.0)),
        "{run}"
    );
    assert!(
        p["started_at"].is_string() && p["ended_at"].is_string(),
        "{run}"
    );
    let mut kept = a_blobs.clone();
    kept.sort();
    assert_eq!(
        stored_blobs(&t).await,
        kept,
        "only image a's blobs are left"
    );
    assert_pullable(&t, "lib/a", "v1", &a_blobs).await;
    // The deleted image's layers are no longer served from its repository.
    let r = t.get(&format!("/v2/lib/b/blobs/{}", b_blobs[1])).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Reported to the audit log and the run list; a second run finds nothing.
    let (s, audit) = t
        .api(Method::GET, "/api/v1/audit-log?action=gc.run", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let entry = &audit["items"][0];
    assert_eq!(entry["actor"], "admin");
    assert!(
        entry["detail"]
            .as_str()
            .expect("detail")
            .contains("3 blob(s)"),
        "{entry}"
    );
    let again = collect(&t, json!({"dry_run": false})).await;
    assert_eq!(again["blobs_deleted"], 0);
    assert_eq!(again["links_deleted"], 0);
    assert_eq!(again["progress"]["blobs_expected"], 0, "{again}");
    assert_eq!(
        again["progress"]["blobs_per_second"],
        Value::Null,
        "{again}"
    );
    assert_eq!(
        again["progress"]["percent"].as_f64(),
        Some(100.0),
        "{again}"
    );
    let (s, runs) = t.api(Method::GET, "/api/v1/gc/runs", None).await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<i64> = runs
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(
        ids,
        vec![
            again["id"].as_i64().expect("id"),
            run["id"].as_i64().expect("id")
        ]
    );
    assert_eq!(runs[0]["cause"], "api");
    assert!(runs[0]["finished_at"].is_string());

    // The image can be pushed again: its blobs are uploaded anew.
    let (_, again_blobs) =
        push_layers(&t, "lib/b", "v1", &[b"shared base layer", b"only in b"]).await;
    assert_pullable(&t, "lib/b", "v1", &again_blobs).await;
}

async fn deleted_images_and_namespaces_are_reclaimed(b: Backend) {
    let t = TestServer::start_with(b, grace_zero).await;
    let (_, kept) = push_layers(&t, "keep/app", "v1", &[b"kept layer"]).await;
    push_layers(&t, "team/web", "v1", &[b"web layer"]).await;
    push_layers(&t, "team/api", "v1", &[b"api layer"]).await;
    push_layers(&t, "gone/one", "v1", &[b"one layer"]).await;
    push_layers(&t, "gone/two", "v1", &[b"two layer"]).await;
    let (s, v) = t
        .api(
            Method::DELETE,
            "/api/v1/namespaces/team/repositories/web",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = t
        .api(
            Method::DELETE,
            "/api/v1/namespaces/gone?delete_all_images=true",
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    let run = collect(&t, json!({"dry_run": false})).await;
    assert_eq!(
        run["blobs_deleted"], 6,
        "web, one and two: configs and layers: {run}"
    );
    assert_eq!(
        stored_blobs(&t).await.len(),
        4,
        "keep/app and team/api remain"
    );
    assert_pullable(&t, "keep/app", "v1", &kept).await;
}

async fn grace_period_and_untagged_default_keep_content(b: Backend) {
    let t = TestServer::start(b).await;
    // Layers uploaded for a manifest not pushed yet stay through a collection.
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = t.push_blob("lib/c", config).await;
    let layer_digest = t.push_blob("lib/c", b"layer of a push in progress").await;
    let run = collect(&t, json!({"dry_run": false})).await;
    assert_eq!(run["blobs_deleted"], 0, "{run}");
    assert_eq!(run["links_deleted"], 0, "{run}");
    let manifest = image_manifest(
        &config_digest,
        config.len(),
        &[(layer_digest.clone(), 27)],
        None,
    );
    let r = t.put_manifest("lib/c", "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // By default untagged manifests are kept.
    let old = sha256(&manifest);
    push_layers(&t, "lib/c", "v1", &[b"a newer layer"]).await;
    let run = collect(&t, json!({"dry_run": false})).await;
    assert_eq!(run["manifests_deleted"], 0, "{run}");
    assert_pullable(&t, "lib/c", &old, &[config_digest, layer_digest]).await;
}

async fn untagged_manifests_go_when_enabled(b: Backend) {
    let t = TestServer::start_with(b, |c| {
        c.gc.grace_secs = 0;
        c.gc.delete_untagged = true;
    })
    .await;
    let (old, _) = push_layers(&t, "lib/d", "v1", &[b"first"]).await;
    let (current, current_blobs) = push_layers(&t, "lib/d", "v1", &[b"second"]).await;
    // A multi-platform index whose children are untagged.
    let (c1, c1_blobs) = push_layers(&t, "lib/d", "amd64-tmp", &[b"amd64"]).await;
    let (c2, c2_blobs) = push_layers(&t, "lib/d", "arm64-tmp", &[b"arm64"]).await;
    for tag in ["amd64-tmp", "arm64-tmp"] {
        let r = t.delete(&format!("/v2/lib/d/manifests/{tag}")).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let mut sizes = Vec::new();
    for child in [&c1, &c2] {
        let r = t.head(&format!("/v2/lib/d/manifests/{child}")).await;
        sizes.push(header(&r, "content-length").parse::<u64>().expect("size"));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": c1, "size": sizes[0], "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": c2, "size": sizes[1], "platform": {"os": "linux", "architecture": "arm64"}},
        ]
    }))
    .expect("json");
    let r = t.put_manifest("lib/d", "multi", OCI_INDEX, &index).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    // A signature-like referrer of the current image, pushed by digest.
    let sig_config = t.push_blob("lib/d", b"{}").await;
    let current_size = t
        .get(&format!("/v2/lib/d/manifests/{current}"))
        .await
        .bytes()
        .await
        .expect("b")
        .len();
    let referrer = image_manifest(&sig_config, 2, &[], Some((&current, current_size)));
    let referrer_digest = sha256(&referrer);
    let r = t
        .put_manifest("lib/d", &referrer_digest, OCI_MANIFEST, &referrer)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let run = collect(&t, json!({"dry_run": false})).await;
    assert_eq!(
        run["manifests_deleted"], 1,
        "only the image whose tag moved: {run}"
    );
    assert_eq!(
        run["blobs_deleted"], 1,
        "its own layer (the config is shared): {run}"
    );
    assert_eq!(
        t.get(&format!("/v2/lib/d/manifests/{old}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_pullable(&t, "lib/d", "v1", &current_blobs).await;
    assert_pullable(&t, "lib/d", &c1, &c1_blobs).await;
    assert_pullable(&t, "lib/d", &c2, &c2_blobs).await;
    assert_eq!(
        t.get(&format!("/v2/lib/d/manifests/{referrer_digest}"))
            .await
            .status(),
        StatusCode::OK
    );

    // Untagging the index lets it and its children go in one run.
    let r = t.delete("/v2/lib/d/manifests/multi").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let run = collect(&t, json!({"dry_run": false})).await;
    assert_eq!(run["manifests_deleted"], 3, "{run}");
    assert_eq!(
        run["blobs_deleted"], 4,
        "both children's configs and layers: {run}"
    );
    for d in [&c1, &c2] {
        assert_eq!(
            t.get(&format!("/v2/lib/d/manifests/{d}")).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    assert_pullable(&t, "lib/d", "v1", &current_blobs).await;
}

async fn dry_run_reports_and_changes_nothing(b: Backend) {
    let t = TestServer::start_with(b, grace_zero).await;
    let (digest, blobs) = push_layers(&t, "lib/e", "v1", &[b"dry run layer"]).await;
    let r = t.delete(&format!("/v2/lib/e/manifests/{digest}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let before = stored_blobs(&t).await;
    let preview = collect(&t, json!({"dry_run": true})).await;
    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["blobs_deleted"], 2, "{preview}");
    assert_eq!(preview["links_deleted"], 2, "{preview}");
    // A preview has no blob step: what it would delete, no rate.
    assert_eq!(preview["progress"]["blobs_expected"], 2, "{preview}");
    assert_eq!(preview["progress"]["percent"], Value::Null, "{preview}");
    let bytes = preview["bytes_reclaimed"].as_i64().expect("bytes");
    assert!(bytes > 0);
    assert_eq!(stored_blobs(&t).await, before, "nothing deleted");
    let (_, audit) = t
        .api(Method::GET, "/api/v1/audit-log?action=gc.dry_run", None)
        .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
    // The real run does what the dry run said.
    let run = collect(&t, json!({"dry_run": false})).await;
    assert_eq!(run["blobs_deleted"], 2);
    assert_eq!(run["bytes_reclaimed"].as_i64(), Some(bytes));
    assert!(stored_blobs(&t).await.iter().all(|d| !blobs.contains(d)));
}

/// Run `berth gc` against the test server's database and storage.
fn berth_gc(t: &TestServer, args: &[&str]) -> (bool, String, String) {
    let out = berth_gc_command(t, args).output().expect("run berth gc");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `berth gc` with `args`, set up for the test server's database and
/// storage (`gc.grace_secs` 0).
pub(crate) fn berth_gc_command(t: &TestServer, args: &[&str]) -> std::process::Command {
    berth_command(t, &[&["gc"], args].concat())
}

/// `berth <args>` on `t`'s database and storage.
pub(crate) fn berth_command(t: &TestServer, args: &[&str]) -> std::process::Command {
    berth_command_of(env!("CARGO_BIN_EXE_berth").as_ref(), t, args)
}

/// The binary `bin` (this build's, or another's) run as `berth <args>` on
/// `t`'s database and storage.
pub(crate) fn berth_command_of(
    bin: &std::path::Path,
    t: &TestServer,
    args: &[&str],
) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin);
    cmd.args(args)
        .env("BERTH_DATA_DIR", t.data_dir())
        .env("BERTH_ADMIN_PASSWORD", crate::common::ADMIN_PASSWORD)
        .env("BERTH_GC_GRACE_SECS", "0");
    if let Some(url) = &t.database_url {
        cmd.env("BERTH_DATABASE_URL", url);
    }
    if !t.backend.is_fs() {
        let mut config = berth::Config::default();
        crate::common::use_test_bucket(&mut config, &t.s3_prefix);
        let s3 = &config.storage.s3;
        cmd.env("BERTH_STORAGE_KIND", "s3")
            .env(
                "BERTH_S3_ENDPOINT",
                s3.endpoint.as_deref().unwrap_or_default(),
            )
            .env("BERTH_S3_BUCKET", &s3.bucket)
            .env("BERTH_S3_REGION", &s3.region)
            .env("BERTH_S3_PREFIX", &s3.prefix)
            .env("BERTH_S3_ACCESS_KEY_ID", &s3.access_key_id)
            .env("BERTH_S3_SECRET_ACCESS_KEY", s3.secret_access_key.expose())
            // As the test servers: blobs streamed, not redirected.
            .env("BERTH_S3_REDIRECT", s3.redirect.to_string());
    }
    cmd
}

async fn full_sweep_and_command_line(b: Backend) {
    let t = TestServer::start_with(b, grace_zero).await;
    let (_, blobs) = push_layers(&t, "lib/f", "v1", &[b"kept layer"]).await;
    // An object no metadata knows, as a crash between storing and recording leaves.
    let orphan = b"bytes stored by an upload that crashed before it was recorded";
    let orphan_digest = plant_orphan(&t, orphan).await;
    assert_eq!(orphan_digest, sha256(orphan));

    // A normal run trusts the metadata and does not list the storage.
    let run = collect(&t, json!({"dry_run": false})).await;
    assert_eq!(run["orphans_deleted"], 0);
    assert!(stored(&t, &orphan_digest).await);

    // The command line, while the server runs: a dry run first.
    let (ok, out, err) = berth_gc(&t, &["--dry-run", "--full"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("orphaned storage objects would delete: 1"),
        "{out}"
    );
    assert!(
        out.contains(&format!("bytes reclaimable: {}", orphan.len())),
        "{out}"
    );
    assert!(stored(&t, &orphan_digest).await);
    let (ok, out, err) = berth_gc(&t, &["--full"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("orphaned storage objects deleted: 1"), "{out}");
    assert!(out.contains("finished"), "{out}");
    assert!(!stored(&t, &orphan_digest).await, "orphan deleted");
    assert_pullable(&t, "lib/f", "v1", &blobs).await;
    let (_, runs) = t.api(Method::GET, "/api/v1/gc/runs?limit=1", None).await;
    assert_eq!(runs[0]["cause"], "cli");
    assert_eq!(runs[0]["full"], true);
    assert_eq!(runs[0]["orphans_deleted"], 1);
    let (ok, _, err) = berth_gc(&t, &["--bogus"]);
    assert!(!ok && err.contains("--bogus"), "{err}");
}

async fn a_paced_collection_keeps_to_its_rate(b: Backend) {
    // The pace is each node's: this node's worker, unpaced, would help.
    let t = TestServer::start_with(b, |c| {
        grace_zero(c);
        c.jobs.concurrency = 0;
    })
    .await;
    let mut loose = Vec::new();
    for i in 0..60 {
        loose.push(t.push_blob("lib/p", format!("loose {i}").as_bytes()).await);
    }
    // 60 blobs at 40 a second in batches of 10: the last batch may not be
    // claimed before 50 / 40 s have passed.
    let started = std::time::Instant::now();
    let out = berth_gc_command(&t, &[])
        .env("BERTH_GC_OBJECTS_PER_SEC", "40")
        .env("BERTH_GC_BATCH", "10")
        .output()
        .expect("run berth gc");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("blobs deleted: 60"), "{stdout}");
    assert!(took >= Duration::from_millis(1250), "took {took:?}");
    let stored = stored_blobs(&t).await;
    assert!(loose.iter().all(|d| !stored.contains(d)), "all deleted");
    // A rate that is not a number is refused before anything runs.
    let out = berth_gc_command(&t, &[])
        .env("BERTH_GC_OBJECTS_PER_SEC", "fast")
        .output()
        .expect("run berth gc");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BERTH_GC_OBJECTS_PER_SEC"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn api_is_for_platform_admins_and_checks_input(b: Backend) {
    let t = TestServer::start(b).await;
    let r = anonymous_client()
        .post(t.url("/api/v1/gc/runs"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&r, "content-type"), "application/problem+json");
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/accounts",
            Some(json!({"name": "dev", "email": "dev@example.com", "password": "a-long-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let dev = client_as("dev", "a-long-password");
    for (method, path) in [
        (Method::POST, "/api/v1/gc/runs"),
        (Method::GET, "/api/v1/gc/runs"),
    ] {
        let r = dev.request(method, t.url(path)).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let v: Value = r.json().await.expect("json");
        assert_eq!(v["code"], "forbidden");
    }
    let r = t
        .req(Method::POST, "/api/v1/gc/runs")
        .await
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["code"], "invalid");
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/gc/runs",
            Some(json!({"dryrun": true})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"].as_str().expect("detail").contains("dryrun"),
        "{v}"
    );
    let (s, v) = t.api(Method::GET, "/api/v1/gc/runs/999999", None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, _) = t.api(Method::GET, "/api/v1/gc/runs/abc", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t.api(Method::GET, "/api/v1/gc/runs?limit=0", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Without a body, or without dry_run, nothing runs: a collection
    // deletes data and must be asked for explicitly.
    let r = t
        .req(Method::POST, "/api/v1/gc/runs")
        .await
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.expect("json");
    assert!(
        v["detail"].as_str().expect("detail").contains("dry_run"),
        "{v}"
    );
    let (s, v) = t
        .api(Method::POST, "/api/v1/gc/runs", Some(json!({"full": true})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"].as_str().expect("detail").contains("dry_run"),
        "{v}"
    );
    let (_, runs) = t.api(Method::GET, "/api/v1/gc/runs", None).await;
    assert_eq!(
        runs.as_array().map(Vec::len),
        Some(0),
        "no run started: {runs}"
    );
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/gc/runs",
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["dry_run"], true);
}

// ---- the stress test ------------------------------------------------------------

/// A small deterministic pseudo-random source (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a pusher committed: (repo, tag) → (manifest digest, blob digests).
type Committed = Arc<Mutex<HashMap<(String, String), (String, Vec<String>)>>>;

/// What happened during the stress test.
#[derive(Default)]
struct Tally {
    pushed: AtomicU64,
    refused: AtomicU64,
    retried: AtomicU64,
    deleted: AtomicU64,
    collections: AtomicU64,
}

const SHARED: [&[u8]; 3] = [
    b"shared base layer one",
    b"shared base layer two",
    b"shared base layer three",
];

/// Upload one blob, monolithically, in two chunks, or by mount from another
/// repository. `None` when the collector got in the way in an allowed way.
async fn upload(
    t: &TestServer,
    rng: &mut Rng,
    repo: &str,
    data: &[u8],
    tally: &Tally,
) -> Option<String> {
    let digest = sha256(data);
    let from = format!(
        "{}-0",
        repo.rsplit_once('-').map(|(p, _)| p).unwrap_or(repo)
    );
    let how = rng.below(3);
    if how == 0 && from != repo {
        let r = t
            .client
            .post(t.url(&format!(
                "/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"
            )))
            .send()
            .await
            .expect("mount");
        match r.status() {
            StatusCode::CREATED => return Some(digest),
            StatusCode::ACCEPTED => {
                // Not mountable: the answer opened an upload session; fall through to a new one.
                let loc = t.resolve(&header(&r, "location"));
                let _ = t.client.delete(loc).send().await;
            }
            s => panic!("mount answered {s}: {}", r.text().await.unwrap_or_default()),
        }
    }
    let loc = t.start_upload(repo).await;
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = if how == 1 && data.len() > 1 {
        let half = data.len() / 2;
        let r = t
            .client
            .patch(&loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("0-{}", half - 1))
            .body(data[..half].to_vec())
            .send()
            .await
            .expect("patch");
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        let loc = t.resolve(&header(&r, "location"));
        let sep = if loc.contains('?') { '&' } else { '?' };
        t.client
            .put(format!("{loc}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(data[half..].to_vec())
            .send()
            .await
            .expect("put")
    } else {
        t.client
            .put(format!("{loc}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .expect("put")
    };
    match r.status() {
        StatusCode::CREATED => Some(digest),
        StatusCode::TOO_MANY_REQUESTS => {
            tally.retried.fetch_add(1, Ordering::Relaxed);
            None
        }
        s => panic!(
            "upload answered {s}: {}",
            r.text().await.unwrap_or_default()
        ),
    }
}

async fn pusher(
    t: Arc<TestServer>,
    id: u64,
    stop: Arc<AtomicBool>,
    committed: Committed,
    tally: Arc<Tally>,
) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let repo = format!("stress/p{id}-{}", rng.below(3));
        // Reuse a tag now and then, so old images become untagged.
        let tag = if rng.below(4) == 0 {
            "latest".to_owned()
        } else {
            format!("t{n}")
        };
        let unique = format!("layer of pusher {id} push {n} {}", rng.next())
            .repeat(1 + rng.below(200) as usize);
        let config = format!(r#"{{"architecture":"amd64","os":"linux","push":"{id}-{n}"}}"#);
        let shared = SHARED[rng.below(3) as usize];
        let mut blobs = Vec::new();
        let mut ok = true;
        for data in [config.as_bytes(), shared, unique.as_bytes()] {
            match upload(&t, &mut rng, &repo, data, &tally).await {
                Some(d) => blobs.push((d, data.len())),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let manifest = image_manifest(&blobs[0].0, blobs[0].1, &blobs[1..], None);
        if rng.below(10) == 0 {
            // A slow client: its layers may be collected before its manifest arrives.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        let r = t.put_manifest(&repo, &tag, OCI_MANIFEST, &manifest).await;
        match r.status() {
            StatusCode::CREATED => {
                tally.pushed.fetch_add(1, Ordering::Relaxed);
                let digests = blobs.into_iter().map(|(d, _)| d).collect();
                committed
                    .lock()
                    .expect("lock")
                    .insert((repo, tag), (sha256(&manifest), digests));
            }
            StatusCode::BAD_REQUEST => {
                // The collector removed a layer link first: a clean refusal.
                let v: Value = r.json().await.expect("json");
                assert_eq!(v["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN", "{v}");
                tally.refused.fetch_add(1, Ordering::Relaxed);
            }
            s => panic!(
                "manifest push answered {s}: {}",
                r.text().await.unwrap_or_default()
            ),
        }
    }
}

/// Push an image, delete it, and push an image of the same layer again just
/// as that layer's grace period runs out, so the upload races the
/// collector's claim on the very same blob; the second image stays and is
/// checked at the end.
async fn churner(
    t: Arc<TestServer>,
    id: u64,
    stop: Arc<AtomicBool>,
    committed: Committed,
    tally: Arc<Tally>,
) {
    let mut rng = Rng(0xA076_1D64_78BD_642F ^ (id + 7));
    let repo = format!("stress/churn-{id}");
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let layer = format!("the churned layer {id} {}", n / 2).repeat(100);
        let config = format!(r#"{{"architecture":"amd64","os":"linux","churn":"{id}-{n}"}}"#);
        let mut blobs = Vec::new();
        for data in [config.as_bytes(), layer.as_bytes()] {
            match upload(&t, &mut rng, &repo, data, &tally).await {
                Some(d) => blobs.push((d, data.len())),
                None => break,
            }
        }
        if blobs.len() < 2 {
            continue;
        }
        let tag = format!("c{n}");
        let manifest = image_manifest(&blobs[0].0, blobs[0].1, &blobs[1..], None);
        let r = t.put_manifest(&repo, &tag, OCI_MANIFEST, &manifest).await;
        match r.status() {
            StatusCode::CREATED => {
                tally.pushed.fetch_add(1, Ordering::Relaxed);
                let digest = sha256(&manifest);
                let key = (repo.clone(), tag);
                let digests = blobs.into_iter().map(|(d, _)| d).collect();
                committed
                    .lock()
                    .expect("lock")
                    .insert(key.clone(), (digest.clone(), digests));
                // The first image of each layer goes; the second stays.
                if n.is_multiple_of(2) {
                    tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
                    committed.lock().expect("lock").remove(&key);
                    let r = t.delete(&format!("/v2/{repo}/manifests/{digest}")).await;
                    // The deleter may have been first.
                    assert!(
                        matches!(r.status(), StatusCode::ACCEPTED | StatusCode::NOT_FOUND),
                        "delete answered {}",
                        r.status()
                    );
                    tally.deleted.fetch_add(1, Ordering::Relaxed);
                }
            }
            StatusCode::BAD_REQUEST => {
                tally.refused.fetch_add(1, Ordering::Relaxed);
            }
            s => panic!(
                "manifest push answered {s}: {}",
                r.text().await.unwrap_or_default()
            ),
        }
        tokio::time::sleep(Duration::from_millis(900 + rng.below(300))).await;
    }
}

async fn deleter(
    t: Arc<TestServer>,
    stop: Arc<AtomicBool>,
    committed: Committed,
    tally: Arc<Tally>,
) {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let victim = {
            let mut map = committed.lock().expect("lock");
            let keys: Vec<_> = map.keys().cloned().collect();
            if keys.len() < 10 {
                continue;
            }
            let key = keys[rng.below(keys.len() as u64) as usize].clone();
            map.remove(&key).map(|v| (key, v))
        };
        let Some(((repo, _), (digest, _))) = victim else {
            continue;
        };
        let r = t.delete(&format!("/v2/{repo}/manifests/{digest}")).await;
        // Gone already when its tag moved and the collector took it.
        assert!(
            matches!(r.status(), StatusCode::ACCEPTED | StatusCode::NOT_FOUND),
            "delete answered {}",
            r.status()
        );
        tally.deleted.fetch_add(1, Ordering::Relaxed);
    }
}

async fn concurrent_push_delete_collect_keeps_every_committed_image(b: Backend) {
    let t = Arc::new(
        TestServer::start_with(b, |c| {
            // Short enough that deleted images are collected while pushes
            // go on; pushes slower than this are refused cleanly.
            c.gc.grace_secs = 1;
            c.gc.delete_untagged = true;
            c.gc.interval_secs = 0;
        })
        .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let committed: Committed = Arc::default();
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for id in 0..4 {
        tasks.push(tokio::spawn(pusher(
            t.clone(),
            id,
            stop.clone(),
            committed.clone(),
            tally.clone(),
        )));
    }
    for id in 0..3 {
        tasks.push(tokio::spawn(churner(
            t.clone(),
            id,
            stop.clone(),
            committed.clone(),
            tally.clone(),
        )));
    }
    tasks.push(tokio::spawn(deleter(
        t.clone(),
        stop.clone(),
        committed.clone(),
        tally.clone(),
    )));
    let collector = {
        let t = t.clone();
        let stop = stop.clone();
        let tally = tally.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let run = t
                    .collector()
                    .run(GcOptions {
                        dry_run: false,
                        full_sweep: tally.collections.load(Ordering::Relaxed) % 5 == 4,
                        cause: GcCause::Cli,
                        actor: "stress".into(),
                    })
                    .await
                    .expect("collect");
                assert_eq!(run.status, "finished", "{run:?}");
                tally.collections.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("task");
    }
    collector.await.expect("collector");
    let pushed = tally.pushed.load(Ordering::Relaxed);
    let collections = tally.collections.load(Ordering::Relaxed);
    eprintln!(
        "stress: {pushed} images pushed, {} manifest pushes refused cleanly, {} uploads told to retry, \
         {} deleted, {collections} collections",
        tally.refused.load(Ordering::Relaxed),
        tally.retried.load(Ordering::Relaxed),
        tally.deleted.load(Ordering::Relaxed),
    );
    assert!(pushed >= 20, "the test pushed too little to mean anything");
    assert!(collections >= 3, "the collector ran too seldom");

    // Every committed image that was not deleted is whole, before and after a final collection.
    let images: Vec<_> = committed
        .lock()
        .expect("lock")
        .clone()
        .into_iter()
        .collect();
    let full = || GcOptions {
        dry_run: false,
        full_sweep: true,
        cause: GcCause::Cli,
        actor: "stress".into(),
    };
    for _ in 0..2 {
        futures_util::stream::iter(&images)
            .for_each_concurrent(16, |((repo, tag), (digest, blobs))| {
                let t = &t;
                async move {
                    assert_pullable(t, repo, tag, blobs).await;
                    assert_pullable(t, repo, digest, &[]).await;
                }
            })
            .await;
        let run = t.collector().run(full()).await.expect("collect");
        assert_eq!(run.status, "finished");
    }

    // Delete everything: the collector then leaves no bytes behind.
    futures_util::stream::iter(&images)
        .for_each_concurrent(16, |((repo, _), (digest, _))| {
            let t = &t;
            async move {
                let r = t.delete(&format!("/v2/{repo}/manifests/{digest}")).await;
                assert_eq!(r.status(), StatusCode::ACCEPTED);
            }
        })
        .await;
    // Past the grace period of the last links made.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    t.collector().run(full()).await.expect("collect");
    assert_eq!(
        stored_blobs(&t).await,
        Vec::<String>::new(),
        "all storage reclaimed"
    );
    assert_eq!(t.uploads_left().await, 0, "no upload data left");
}

backend_tests!(
    s3:
    reclaims_deleted_images_and_abandoned_uploads,
    deleted_images_and_namespaces_are_reclaimed,
    grace_period_and_untagged_default_keep_content,
    untagged_manifests_go_when_enabled,
    dry_run_reports_and_changes_nothing,
    full_sweep_and_command_line,
    a_paced_collection_keeps_to_its_rate,
    api_is_for_platform_admins_and_checks_input,
    concurrent_push_delete_collect_keeps_every_committed_image,
    upload_waits_while_its_blob_is_being_deleted,
);

// ---- the claim protocol, step by step on each backend -------------------------

async fn open_store(b: Backend, dir: &std::path::Path) -> Arc<dyn StoreBoth> {
    match b {
        Backend::Sqlite => Arc::new(
            berth_meta::SqliteStore::open(&dir.join("berth.db"))
                .await
                .expect("sqlite"),
        ),
        Backend::Postgres | Backend::PostgresS3 => Arc::new(
            berth_meta::PostgresStore::connect(&crate::common::fresh_postgres_database().await, 4)
                .await
                .expect("postgres"),
        ),
    }
}

/// Both contracts of one store.
trait StoreBoth: berth_meta::MetaStore + berth_meta::GcStore {}
impl<T: berth_meta::MetaStore + berth_meta::GcStore> StoreBoth for T {}

async fn claims_pins_and_links_exclude_each_other(b: Backend) {
    use berth_meta::{LinkOutcome, NewGcRun, UploadPin, UploadRecord};
    let dir = tempfile::tempdir().expect("dir");
    let store = open_store(b, dir.path()).await;
    let repo = berth_oci::RepoName::parse("lib/p").expect("repo");
    let digest: berth_oci::Digest = sha256(b"protocol").parse().expect("digest");
    let d = digest.as_str();
    let upload = |id: &str| UploadRecord {
        id: id.into(),
        repo: repo.to_string(),
        created_at: 1,
        updated_at: 1,
    };
    let run = |n: i64| NewGcRun {
        cause: "cli".into(),
        actor: "test".into(),
        dry_run: false,
        full_sweep: false,
        now: n,
    };
    let r1 = store.gc_start_run(&run(1)).await.expect("run");

    // Linked: not claimable. Unlinked: claimable, unless an upload pinned it.
    assert_eq!(
        store
            .link_blob(&repo, &digest, 8, 1, None, None)
            .await
            .expect("link"),
        LinkOutcome::Linked
    );
    assert!(store
        .gc_claim_blobs(r1, None, None, 10)
        .await
        .expect("claim")
        .claims
        .is_empty());
    assert!(store.unlink_blob(&repo, &digest).await.expect("unlink"));
    store.create_upload(&upload("u1")).await.expect("upload");
    assert_eq!(
        store.pin_upload("u1", &digest).await.expect("pin"),
        UploadPin::Pinned
    );
    assert!(
        store
            .gc_claim_blobs(r1, None, None, 10)
            .await
            .expect("claim")
            .claims
            .is_empty(),
        "pinned"
    );
    assert!(
        !store.gc_claim_orphan(r1, d, 8, 1).await.expect("orphan"),
        "known and pinned"
    );
    assert!(store.delete_upload("u1").await.expect("forget upload"));
    let claims = store
        .gc_claim_blobs(r1, None, None, 10)
        .await
        .expect("claim")
        .claims;
    assert_eq!(claims.len(), 1);
    assert_eq!((claims[0].digest.as_str(), claims[0].size), (d, 8));

    // Claimed: no upload may pin it, nothing may link or mount it, and it is unknown.
    store.create_upload(&upload("u2")).await.expect("upload");
    assert_eq!(
        store.pin_upload("u2", &digest).await.expect("pin"),
        UploadPin::Collecting
    );
    assert_eq!(
        store
            .link_blob(&repo, &digest, 8, 2, None, Some("u2"))
            .await
            .expect("link"),
        LinkOutcome::Collecting
    );
    // Not linked: its upload session is kept.
    assert!(store.get_upload("u2").await.expect("get").is_some());
    assert_eq!(store.blob_size(&digest).await.expect("size"), None);
    assert_eq!(
        store.pin_upload("nope", &digest).await.expect("pin"),
        UploadPin::NoSession
    );
    // A second run neither claims it again nor adopts a live run's claim.
    let r2 = store.gc_start_run(&run(2)).await.expect("run");
    assert!(store
        .gc_claim_blobs(r2, None, None, 10)
        .await
        .expect("claim")
        .claims
        .is_empty());
    assert!(store
        .gc_adopt_claims(r2, 0, 10)
        .await
        .expect("adopt")
        .is_empty());
    // Another run's forget does nothing; the owner's does.
    store.gc_forget_blob(r2, d).await.expect("forget");
    assert_eq!(
        store.pin_upload("u2", &digest).await.expect("pin"),
        UploadPin::Collecting
    );
    store.gc_forget_blob(r1, d).await.expect("forget");
    assert_eq!(
        store.pin_upload("u2", &digest).await.expect("pin"),
        UploadPin::Pinned
    );
    assert_eq!(
        store
            .link_blob(&repo, &digest, 8, 3, None, Some("u2"))
            .await
            .expect("link"),
        LinkOutcome::Linked
    );
    assert_eq!(store.blob_size(&digest).await.expect("size"), Some(8));
    // Linked: its upload session is forgotten in the same transaction.
    assert!(store.get_upload("u2").await.expect("get").is_none());

    // Claims of a run that failed, or went silent past the lease, pass to the next run.
    assert!(store.unlink_blob(&repo, &digest).await.expect("unlink"));
    assert_eq!(
        store
            .gc_claim_blobs(r2, None, None, 10)
            .await
            .expect("claim")
            .claims
            .len(),
        1
    );
    let r3 = store.gc_start_run(&run(3)).await.expect("run");
    assert!(
        store
            .gc_adopt_claims(r3, 0, 10)
            .await
            .expect("adopt")
            .is_empty(),
        "r2 is alive"
    );
    let adopted = store
        .gc_adopt_claims(r3, i64::MAX, 10)
        .await
        .expect("adopt");
    assert_eq!(adopted.len(), 1, "r2 went silent");
    assert_eq!(
        store.gc_run(r2).await.expect("run").expect("r2").status,
        "abandoned"
    );
    store.gc_forget_blob(r3, d).await.expect("forget");

    // An orphan is claimed only when nothing knows it and no upload pins it.
    store.create_upload(&upload("u3")).await.expect("upload");
    assert_eq!(
        store.pin_upload("u3", &digest).await.expect("pin"),
        UploadPin::Pinned
    );
    assert!(!store.gc_claim_orphan(r3, d, 8, 4).await.expect("orphan"));
    assert!(store.delete_upload("u3").await.expect("forget upload"));
    assert!(store.gc_claim_orphan(r3, d, 8, 4).await.expect("orphan"));
    assert!(
        !store.gc_claim_orphan(r3, d, 8, 4).await.expect("orphan"),
        "claimed once"
    );
    store.gc_forget_blob(r3, d).await.expect("forget");
    store
        .gc_finish_run(r3, "finished", &Default::default(), None, 5)
        .await
        .expect("finish");
    let runs = store.gc_runs(10).await.expect("runs");
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0].status, "finished");

    // Old records go with their shards; a running run's never.
    let r4 = store.gc_start_run(&run(6)).await.expect("run");
    store.gc_plan_shards(r2, &[]).await.expect("shards");
    assert_eq!(store.gc_shards(r2).await.expect("shards").len(), 1);
    assert_eq!(store.gc_prune_runs(2).await.expect("prune"), 2, "r1, r2");
    assert!(store.gc_shards(r2).await.expect("shards").is_empty());
    let ids: Vec<i64> = store
        .gc_runs(10)
        .await
        .expect("runs")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [r4, r3]);
    assert_eq!(store.gc_prune_runs(0).await.expect("prune"), 1, "r3");
    assert_eq!(store.gc_prune_runs(0).await.expect("prune"), 0, "r4 runs");
    assert_eq!(store.gc_runs(10).await.expect("runs").len(), 1);
}

/// An upload of a blob the collector is deleting waits until the deletion
/// is over, then stores the bytes anew: it never links bytes about to vanish.
async fn upload_waits_while_its_blob_is_being_deleted(b: Backend) {
    let t = TestServer::start(b).await;
    let data = b"bytes the collector is deleting";
    let digest = t.push_blob("lib/w", data).await;
    let r = t.delete(&format!("/v2/lib/w/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A second handle on the same database plays the collector.
    let store: Arc<dyn StoreBoth> = match &t.database_url {
        None => Arc::new(
            berth_meta::SqliteStore::open(&t.data_dir().join("berth.db"))
                .await
                .expect("sqlite"),
        ),
        Some(url) => Arc::new(
            berth_meta::PostgresStore::connect(url, 2)
                .await
                .expect("pg"),
        ),
    };
    let run = store
        .gc_start_run(&berth_meta::NewGcRun {
            cause: "cli".into(),
            actor: "test".into(),
            dry_run: false,
            full_sweep: false,
            now: 1,
        })
        .await
        .expect("run");
    let claims = store
        .gc_claim_blobs(run, None, None, 10)
        .await
        .expect("claim")
        .claims;
    assert_eq!(claims.len(), 1);
    let d = berth_oci::Digest::parse(&digest).expect("digest");
    assert!(t
        .registry()
        .blobs()
        .delete(&d)
        .await
        .expect("delete the bytes"));

    let loc = t.start_upload("lib/w2").await;
    let sep = if loc.contains('?') { '&' } else { '?' };
    let client = t.client.clone();
    let put = tokio::spawn(
        client
            .put(format!("{loc}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !put.is_finished(),
        "the upload waits for the deletion to end"
    );
    store.gc_forget_blob(run, &digest).await.expect("forget");
    let r = put.await.expect("task").expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = t.get(&format!("/v2/lib/w2/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(&r.bytes().await.expect("bytes")[..], data);
}

mod protocol {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::claims_pins_and_links_exclude_each_other(super::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::claims_pins_and_links_exclude_each_other(super::Backend::Postgres).await;
    }
}

/// Scheduled collections and retention passes run on the node holding
/// their lease: one holder at a time, renewable by it, free once it ends.
async fn leases_have_one_holder_until_they_end(b: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_store(b, dir.path()).await;
    assert!(store
        .try_lease("gc", "node-a", 0, 1000)
        .await
        .expect("lease"));
    assert!(!store
        .try_lease("gc", "node-b", 500, 1500)
        .await
        .expect("lease"));
    assert!(store
        .try_lease("retention", "node-b", 500, 1500)
        .await
        .expect("lease"));
    assert!(store
        .try_lease("gc", "node-a", 600, 1600)
        .await
        .expect("renew"));
    assert!(!store
        .try_lease("gc", "node-b", 1599, 2599)
        .await
        .expect("lease"));
    assert!(store
        .try_lease("gc", "node-b", 1601, 2601)
        .await
        .expect("expired"));
    assert!(!store
        .try_lease("gc", "node-a", 1700, 2700)
        .await
        .expect("lease"));
}

mod leases {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::leases_have_one_holder_until_they_end(super::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::leases_have_one_holder_until_they_end(super::Backend::Postgres).await;
    }
}
