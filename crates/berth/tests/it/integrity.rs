//! Integrity checks on one region (SQLite, PostgreSQL, PostgreSQL + S3):
//! a flipped bit, a deleted blob, a manifest whose child is gone and an
//! object no blob row knows are each found by `berth fsck` and by a check
//! started through the API, reported in the API, the metrics and the audit
//! log, and nothing is deleted. A tenant may not start or read checks.
//! Repairs from a second region: `regions.rs`.

use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;
use crate::gc::berth_command;

backend_tests!(s3: fsck_and_checks_find_damage_loss_dangling_references_and_orphans);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_scrub_finds_rot_at_its_rate() {
    const RATE: u64 = 400_000;
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.integrity.scrub_interval_secs = 2;
        c.integrity.scrub_bytes_per_sec = RATE;
    })
    .await;
    let layer = b"scrubbed weekly in production".repeat(40_000);
    t.push_image("lib/a", "v1", &layer).await;
    let digest = sha256(&layer);
    let mut rotten = layer.clone();
    rotten[500_000] ^= 4;
    tamper(&t, &digest, Some(rotten)).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let (_, runs) = t
            .api(Method::GET, "/api/v1/integrity/runs?limit=5", None)
            .await;
        // (The next run may have begun already: the interval is short.)
        let done = runs
            .as_array()
            .and_then(|r| r.iter().find(|r| r["status"] != "running"));
        if let Some(run) = done {
            break run.clone();
        }
        assert!(Instant::now() < deadline, "no scheduled scrub finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (run["cause"].as_str(), run["actor"].as_str()),
        (Some("schedule"), Some("scheduler"))
    );
    assert_eq!(run["repair"], true);
    assert_eq!(run["damaged"], 1, "{run}");
    assert!(has(&run, "damaged", &digest), "{run}");
    // It kept to its rate: re-hashing the layer took at least its size
    // divided by the rate.
    let started = run["started_at"].as_str().unwrap();
    let finished = run["finished_at"].as_str().unwrap();
    let seconds = |s: &str| -> i64 {
        let hms = &s[11..19];
        let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        p[0] * 3600 + p[1] * 60 + p[2]
    };
    let took = (seconds(finished) - seconds(started)).rem_euclid(86_400);
    let floor = (layer.len() as u64 / RATE) as i64;
    assert!(
        took >= floor - 1,
        "took {took} s for {} bytes at {RATE} B/s",
        layer.len()
    );
}

/// Replace (or, with `None`, delete) a stored blob's bytes behind Berth's back.
pub(crate) async fn tamper(t: &TestServer, digest: &str, bytes: Option<Vec<u8>>) {
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    if t.backend.is_fs() {
        let path = t.data_dir().join("blobs/sha256").join(&hex[..2]).join(hex);
        match bytes {
            Some(b) => {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, b).unwrap()
            }
            None => std::fs::remove_file(&path).unwrap(),
        }
        return;
    }
    let store = test_bucket_client();
    let key = ObjectPath::from(format!("{}/blobs/sha256/{hex}", t.s3_prefix));
    match bytes {
        Some(b) => {
            store.put(&key, PutPayload::from(b)).await.unwrap();
        }
        None => store.delete(&key).await.unwrap(),
    }
}

pub(crate) async fn wait_finished(t: &TestServer, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, run) = t
            .api(Method::GET, &format!("/api/v1/integrity/runs/{id}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{run}");
        if run["status"] != "running" {
            return run;
        }
        assert!(Instant::now() < deadline, "check {id} still running: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn has(run: &Value, kind: &str, digest: &str) -> bool {
    run["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["kind"] == kind && p["digest"] == digest)
}

async fn fsck_and_checks_find_damage_loss_dangling_references_and_orphans(b: Backend) {
    let t = TestServer::start(b).await;
    let damaged_layer = b"a layer whose bytes will rot".repeat(100);
    let lost_layer = b"a layer whose file will go".repeat(100);
    t.push_image("lib/a", "v1", &damaged_layer).await;
    t.push_image("lib/b", "v1", &lost_layer).await;
    let (child, child_bytes) = t.push_image("lib/c", "child", b"child layer").await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": child_bytes.len()}],
    }))
    .unwrap();
    let r = t.put_manifest("lib/c", "idx", OCI_INDEX, &index).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let index_digest = sha256(&index);

    // A clean registry checks clean.
    let out = berth_command(&t, &["fsck"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("damaged blobs: 0"), "{text}");

    // Rot, loss, a child manifest gone from the database, an orphan.
    let damaged = sha256(&damaged_layer);
    let mut rotten = damaged_layer.clone();
    rotten[10] ^= 0x20;
    tamper(&t, &damaged, Some(rotten)).await;
    let lost = sha256(&lost_layer);
    tamper(&t, &lost, None).await;
    sql_elsewhere(&t, "DELETE FROM tags WHERE name = 'child'").await;
    sql_elsewhere(
        &t,
        &format!("DELETE FROM manifests WHERE digest = '{child}'"),
    )
    .await;
    let orphan_bytes = b"stored by nobody".to_vec();
    let orphan = sha256(&orphan_bytes);
    tamper(&t, &orphan, Some(orphan_bytes)).await;

    let out = berth_command(&t, &["fsck", "--repair"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "problems fail fsck: {text}");
    assert!(err.contains("integrity problem(s) left"), "{err}");
    for line in [
        "damaged blobs: 1",
        "missing blobs: 1",
        "repaired: 0",
        "dangling references: 1",
        "orphaned objects: 1",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    assert!(
        text.contains(&format!("damaged {damaged} in region default")),
        "{text}"
    );
    assert!(
        text.contains("no other region or upstream holds it"),
        "{text}"
    );
    assert!(text.contains(&format!("missing {lost}")), "{text}");
    assert!(text.contains(&format!("dangling {index_digest}")), "{text}");
    assert!(text.contains(&format!("orphan {orphan}")), "{text}");

    // The API has the run, the metrics its figures, the audit log an entry.
    let (s, runs) = t
        .api(Method::GET, "/api/v1/integrity/runs?limit=1", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{runs}");
    let run = &runs[0];
    assert_eq!(run["cause"], "cli");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        (run["damaged"].as_i64(), run["missing"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (run["dangling"].as_i64(), run["orphans"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(
        has(run, "damaged", &damaged) && has(run, "orphan", &orphan),
        "{run}"
    );
    let metrics = t.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("berth_integrity_problems{kind=\"damaged\"} 1"),
        "{metrics}"
    );
    let (_, audit) = t
        .api(
            Method::GET,
            "/api/v1/audit-log?action=integrity.problems",
            None,
        )
        .await;
    assert!(
        audit.to_string().contains("1 damaged, 1 missing"),
        "{audit}"
    );

    // Nothing was deleted: the orphan and the rotten copy are still there.
    for d in [&orphan, &damaged] {
        let d: berth_oci::Digest = d.parse().unwrap();
        assert!(
            t.registry().blobs().stat(&d).await.unwrap().is_some(),
            "{d}"
        );
    }

    // A blob the database names and storage lacks is BLOB_UNKNOWN to a
    // client, not a server error; a restart reports it and serves the rest
    // (a database restored from a later point than its storage).
    let r = t.get(&format!("/v2/lib/b/blobs/{lost}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "BLOB_UNKNOWN", "{body}");
    let mut t = t;
    t.restart().await;
    let r = t.get("/v2/lib/a/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::OK);

    // A check through the API finds the same, in the background.
    let (s, started) = t
        .api(Method::POST, "/api/v1/integrity/runs", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["status"], "running");
    let run = wait_finished(&t, started["id"].as_i64().unwrap()).await;
    assert_eq!(run["cause"], "api");
    assert_eq!(run["actor"], "admin");
    assert!(
        has(&run, "missing", &lost) && has(&run, "dangling", &index_digest),
        "{run}"
    );
    let (s, p) = t
        .api(
            Method::POST,
            "/api/v1/integrity/runs",
            Some(json!({"repair": "yes"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{p}");

    // Checks are for platform administrators.
    let tenant = create_account(&t, "tenant").await;
    for (method, path) in [
        (Method::POST, "/api/v1/integrity/runs"),
        (Method::GET, "/api/v1/integrity/runs"),
        (Method::GET, "/api/v1/integrity/runs/1"),
    ] {
        let r = tenant
            .request(method.clone(), t.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    let (_, runs) = t
        .api(Method::GET, "/api/v1/integrity/runs?limit=100", None)
        .await;
    assert_eq!(runs.as_array().unwrap().len(), 3, "the tenant started none");
}
