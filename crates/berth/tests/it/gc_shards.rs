//! A collection's blob step spread over the nodes that run jobs: a second
//! node (`berth serve`, its own process) takes shards of a run started on
//! the first, is killed (SIGKILL) in the middle of one, and the first node
//! takes that shard over once its lease ends; every deleted blob is
//! counted once, nothing of the deleted images is left, and the kept image
//! still pulls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_meta::{GcShardRecord, GcStore};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::process::serve_process;
use crate::common::*;
use crate::gc::berth_command;
use crate::gc_crash::{push, LAYERS};

backend_tests!(s3: a_second_node_takes_shards_and_its_death_loses_no_work);

const IMAGES: usize = 48;

/// The test server's database, opened a second time to read the shards.
async fn gc_store(t: &TestServer) -> Arc<dyn GcStore> {
    match &t.database_url {
        Some(url) => Arc::new(
            berth_meta::PostgresStore::connect(url, 2)
                .await
                .expect("postgres"),
        ),
        None => Arc::new(
            berth_meta::SqliteStore::open(&t.data_dir().join("berth.db"))
                .await
                .expect("sqlite"),
        ),
    }
}

/// Which of `n` shards (a power of two up to sixteen, split evenly by the
/// first hex digit) holds a SHA-256 digest.
fn shard_of(digest: &str, n: usize) -> usize {
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    usize::from_str_radix(&hex[..1], 16).expect("hex") * n / 16
}

async fn run_record(t: &TestServer, id: i64) -> Value {
    let (s, run) = t
        .api(Method::GET, &format!("/api/v1/gc/runs/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    run
}

async fn a_second_node_takes_shards_and_its_death_loses_no_work(b: Backend) {
    // The first node runs no jobs (so the help job goes to the second) and
    // deletes slowly: its shard takes it twelve seconds, time enough for a
    // second node started under a loaded test run to join (at 40 objects/s
    // it once finished both shards first). Both renew their shards' leases
    // every batch.
    let t = TestServer::start_with(b, |c| {
        c.gc.grace_secs = 0;
        c.gc.lease_secs = 2;
        c.gc.batch = 5;
        c.gc.objects_per_sec = 10;
        c.jobs.concurrency = 0;
    })
    .await;
    let (kept_digest, kept) = push(&t, "shards/kept", 0).await;
    let pushes = (1..=IMAGES).map(|n| push(&t, "shards/gone", n));
    let gone = futures_util::future::join_all(pushes).await;
    for (digest, _) in &gone {
        let r = t
            .delete(&format!("/v2/shards/gone/manifests/{digest}"))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let total = (IMAGES * (LAYERS + 1)) as i64;

    let mut second = {
        let mut cmd = berth_command(&t, &["serve"]);
        cmd.env("BERTH_GC_BATCH", "5")
            .env("BERTH_GC_LEASE_SECS", "2")
            .env("BERTH_GC_OBJECTS_PER_SEC", "80");
        serve_process(cmd).await
    };
    let store = gc_store(&t).await;
    let first = t.registry().node_id().to_owned();

    let (s, started) = t
        .api(
            Method::POST,
            "/api/v1/gc/runs",
            Some(json!({"dry_run": false})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_i64().expect("id");

    // Once the second node has deleted up to half of a shard, kill it (at
    // half, it cannot finish the shard between the look and the kill).
    let deadline = Instant::now() + Duration::from_secs(90);
    let killed: GcShardRecord = loop {
        let shards = store.gc_shards(id).await.expect("shards");
        if shards.is_empty() {
            // Not yet planned.
            assert!(Instant::now() < deadline, "no blob step");
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let mut expected = vec![0i64; shards.len()];
        for (_, blobs) in &gone {
            for d in blobs {
                expected[shard_of(d, shards.len())] += 1;
            }
        }
        let theirs = shards.iter().find(|s| {
            s.owner.as_deref().is_some_and(|o| o != first)
                && s.blobs_deleted > 0
                && s.blobs_deleted * 2 <= expected[s.shard as usize]
        });
        if let Some(shard) = theirs {
            second.child.kill().expect("SIGKILL");
            second.child.wait().expect("reap");
            break shard.clone();
        }
        let run = run_record(&t, id).await;
        assert_eq!(
            run["status"], "running",
            "ended before the second node worked mid-shard: {run}\n{shards:?}"
        );
        assert!(Instant::now() < deadline, "{run}\n{shards:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let second_node = killed.owner.clone().expect("owner");
    assert!(!killed.done, "{killed:?}");

    // The first node finishes the run, the dead node's shard included.
    let run = loop {
        let run = run_record(&t, id).await;
        if run["status"] != "running" {
            break run;
        }
        assert!(Instant::now() < deadline, "{run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(run["status"], "finished", "{run}");
    let shards = store.gc_shards(id).await.expect("shards");
    assert!(shards.iter().all(|s| s.done), "{shards:?}");
    // The second node's shard, part done when it died, finished by the
    // first.
    assert_ne!(second_node, first);
    let taken_over = &shards[killed.shard as usize];
    assert_eq!(
        taken_over.owner.as_deref(),
        Some(first.as_str()),
        "{shards:?}"
    );
    assert!(
        taken_over.blobs_deleted > killed.blobs_deleted,
        "{shards:?}"
    );
    // Every blob of the deleted images once: counted by the shard that
    // forgot it, in the same transaction.
    assert_eq!(run["blobs_deleted"].as_i64(), Some(total), "{run}");
    assert_eq!(
        shards.iter().map(|s| s.blobs_deleted).sum::<i64>(),
        total,
        "{shards:?}"
    );
    let registry = t.registry();
    for (_, blobs) in &gone {
        for d in blobs {
            let digest = berth_oci::Digest::parse(d).expect("digest");
            assert!(
                registry
                    .blobs()
                    .stat(&digest)
                    .await
                    .expect("stat")
                    .is_none(),
                "{d} is still stored"
            );
        }
    }
    let r = t
        .get(&format!("/v2/shards/kept/manifests/{kept_digest}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    for d in &kept {
        let r = t.get(&format!("/v2/shards/kept/blobs/{d}")).await;
        assert_eq!(r.status(), StatusCode::OK, "{d}");
    }
}
