//! A collection killed (SIGKILL) in its blob step is finished by the next
//! run once its lease ends: the next run adopts the claims the dead one
//! left, deletes the rest, and counts no blob twice; what was kept still
//! pulls.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;
use crate::gc::berth_gc_command;

backend_tests!(s3: a_collection_killed_in_its_blob_step_is_finished_by_the_next);

const IMAGES: usize = 150;
pub(crate) const LAYERS: usize = 4;
const BATCH: &str = "5";

/// Push an image of `LAYERS` small unique layers and a config; its
/// manifest digest and blobs.
pub(crate) async fn push(t: &TestServer, repo: &str, n: usize) -> (String, Vec<String>) {
    let config = format!(r#"{{"os":"linux","n":{n}}}"#);
    let config_digest = t.push_blob(repo, config.as_bytes()).await;
    let mut refs = Vec::new();
    for l in 0..LAYERS {
        let layer = format!("layer {l} of image {n}").repeat(20);
        refs.push((t.push_blob(repo, layer.as_bytes()).await, layer.len()));
    }
    let manifest = image_manifest(&config_digest, config.len(), &refs, None);
    let r = t
        .put_manifest(repo, &format!("v{n}"), OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut blobs = vec![config_digest];
    blobs.extend(refs.into_iter().map(|(d, _)| d));
    (sha256(&manifest), blobs)
}

/// A child process killed and reaped however the test ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn latest_run(t: &TestServer) -> Value {
    let (s, runs) = t.api(Method::GET, "/api/v1/gc/runs?limit=1", None).await;
    assert_eq!(s, StatusCode::OK, "{runs}");
    runs[0].clone()
}

async fn a_collection_killed_in_its_blob_step_is_finished_by_the_next(b: Backend) {
    let t = TestServer::start_with(b, |c| {
        c.gc.grace_secs = 0;
        c.gc.lease_secs = 1;
        c.gc.batch = 5;
        // No help from this node's job worker: the killed run's shards stay
        // unfinished until the next run.
        c.jobs.concurrency = 0;
    })
    .await;
    let (_, kept) = push(&t, "crash/kept", 0).await;
    let mut pushes = Vec::new();
    for n in 1..=IMAGES {
        pushes.push(push(&t, "crash/gone", n));
    }
    let gone = futures_util::future::join_all(pushes).await;
    for (digest, _) in &gone {
        let r = t
            .delete(&format!("/v2/crash/gone/manifests/{digest}"))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let total = (IMAGES * (LAYERS + 1)) as i64;

    // `berth gc` in a process of its own, killed once its blob step has
    // deleted something.
    let mut child = Reaped(
        berth_gc_command(&t, &[])
            .env("BERTH_GC_BATCH", BATCH)
            .env("BERTH_GC_LEASE_SECS", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start berth gc"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        let run = latest_run(&t).await;
        if run["cause"] == "cli"
            && run["stage"] == "blobs"
            && run["blobs_deleted"].as_i64() > Some(0)
        {
            child.0.kill().expect("SIGKILL");
            child.0.wait().expect("reap");
            break latest_run(&t).await;
        }
        assert!(
            run["status"] != "finished",
            "the collection ended before it could be killed: {run}"
        );
        assert!(Instant::now() < deadline, "no blob step: {run}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(first["status"], "running", "{first}");
    let done_first = first["blobs_deleted"].as_i64().expect("count");
    assert!(done_first < total, "{first}");

    // Once its lease is over, the next run finishes the work.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (s, started) = t
        .api(
            Method::POST,
            "/api/v1/gc/runs",
            Some(json!({"dry_run": false})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_i64().expect("id");
    let second = loop {
        let (_, run) = t
            .api(Method::GET, &format!("/api/v1/gc/runs/{id}"), None)
            .await;
        if run["status"] != "running" {
            break run;
        }
        assert!(Instant::now() < deadline, "{run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(second["status"], "finished", "{second}");
    let (_, dead) = t
        .api(
            Method::GET,
            &format!("/api/v1/gc/runs/{}", first["id"]),
            None,
        )
        .await;
    assert_eq!(dead["status"], "abandoned", "{dead}");
    // Each blob counted once, by the run that forgot it (a shard counts
    // what it forgets in the same transaction, so the dead run's count is
    // exact).
    let done_second = second["blobs_deleted"].as_i64().expect("count");
    assert!(done_second > 0, "{second}");
    assert_eq!(
        dead["blobs_deleted"].as_i64().expect("count") + done_second,
        total,
        "{dead}\n{second}"
    );
    // Nothing of the deleted images is left; the kept image pulls.
    for (_, blobs) in &gone {
        for d in blobs {
            let d = berth_oci::Digest::parse(d).expect("digest");
            assert!(
                t.registry().blobs().stat(&d).await.expect("stat").is_none(),
                "{d} still stored"
            );
        }
    }
    for d in &kept {
        let r = t.get(&format!("/v2/crash/kept/blobs/{d}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(sha256(&r.bytes().await.expect("blob")), *d);
    }
}
