//! On both databases: the job queue's contract (dedupe, leases, backoff,
//! giving up), and synchronization rules on a platform of one region (the
//! embedded default included), run by the server's own worker.

use std::time::Duration;

use crate::common::*;
use berth_meta::NewJob;
use reqwest::{Method, StatusCode};
use serde_json::json;

backend_tests!(
    the_job_queue_leases_retries_and_gives_up,
    an_urgent_job_goes_before_older_ones_once_due,
    sync_rules_work_within_one_region
);

fn job(key: &str, now: i64) -> NewJob {
    NewJob {
        kind: "test".into(),
        // A region no worker of the test server serves.
        region: Some("elsewhere".into()),
        dedupe_key: Some(key.into()),
        payload: "{}".into(),
        run_after: now,
        urgent: false,
    }
}

async fn the_job_queue_leases_retries_and_gives_up(b: Backend) {
    let t = TestServer::start(b).await;
    let q = t.registry().platform().clone();
    let now = berth_core::now_millis();
    // One live job per key.
    let queued = q
        .enqueue_jobs(&[job("k", now), job("k", now)])
        .await
        .expect("enqueue");
    assert_eq!(queued, 1, "one live job per key");
    assert_eq!(q.enqueue_jobs(&[job("k", now)]).await.expect("enqueue"), 0);
    let counts = q.job_counts().await.expect("counts");
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(counts[0].count, 1);
    assert_eq!(counts[0].state, "waiting");
    // Not for another region's workers.
    assert!(q
        .claim_job("default", "a", now, now + 1000)
        .await
        .expect("claim")
        .is_none());
    // Leased by one worker at a time.
    let j = q
        .claim_job("elsewhere", "a", now, now + 1000)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(j.attempts, 1);
    assert!(q
        .claim_job("elsewhere", "b", now, now + 1000)
        .await
        .expect("claim")
        .is_none());
    assert!(q.renew_job(j.id, "a", now + 5000).await.expect("renew"));
    assert!(
        !q.renew_job(j.id, "b", now + 5000).await.expect("renew"),
        "not b's"
    );
    // Expired lease: another worker takes it.
    let later = now + 6000;
    let again = q
        .claim_job("elsewhere", "b", later, later + 1000)
        .await
        .expect("claim")
        .expect("leased again");
    assert_eq!((again.id, again.attempts), (j.id, 2));
    assert!(!q.finish_job(j.id, "a").await.expect("finish"), "a lost it");
    // A failure waits for its backoff.
    q.fail_job(j.id, "b", "storage down", Some(later + 10_000), later)
        .await
        .expect("fail");
    assert!(q
        .claim_job("elsewhere", "c", later + 5000, later + 6000)
        .await
        .expect("claim")
        .is_none());
    let third = q
        .claim_job("elsewhere", "c", later + 10_000, later + 11_000)
        .await
        .expect("claim")
        .expect("after the backoff");
    assert_eq!(third.attempts, 3);
    // Given up: kept as failed, and its key is free for new work.
    q.fail_job(j.id, "c", "gave up", None, later + 10_000)
        .await
        .expect("fail");
    q.enqueue_jobs(&[job("k", now)]).await.expect("enqueue");
    let mut states: Vec<String> = q
        .job_counts()
        .await
        .expect("counts")
        .into_iter()
        .map(|c| format!("{}={}", c.state, c.count))
        .collect();
    states.sort();
    assert_eq!(states, ["failed=1", "waiting=1"]);
    let fresh = q
        .claim_job("elsewhere", "d", later + 20_000, later + 21_000)
        .await
        .expect("claim")
        .expect("the new job");
    assert!(q.finish_job(fresh.id, "d").await.expect("finish"));
}

async fn an_urgent_job_goes_before_older_ones_once_due(b: Backend) {
    let t = TestServer::start(b).await;
    let q = t.registry().platform().clone();
    let now = berth_core::now_millis();
    // A backlog, then an urgent job (a collection asking for help), then
    // an urgent job not due yet.
    let backlog: Vec<NewJob> = (0..3)
        .map(|i| job(&format!("old{i}"), now - 1000))
        .collect();
    q.enqueue_jobs(&backlog).await.expect("enqueue");
    let urgent = |key: &str, at| NewJob {
        urgent: true,
        ..job(key, at)
    };
    q.enqueue_jobs(&[urgent("help", now), urgent("later", now + 60_000)])
        .await
        .expect("enqueue");
    let mut order = Vec::new();
    while let Some(j) = q
        .claim_job("elsewhere", "w", now, now + 1000)
        .await
        .expect("claim")
    {
        order.push(j.id);
        assert!(q.finish_job(j.id, "w").await.expect("finish"));
    }
    assert_eq!(order.len(), 4, "the one not due stays: {order:?}");
    let first = order[0];
    assert!(
        order[1..].iter().all(|id| *id < first),
        "the urgent job (queued last) is taken first: {order:?}"
    );
    let due = q
        .claim_job("elsewhere", "w", now + 60_000, now + 61_000)
        .await
        .expect("claim")
        .expect("the later urgent job, once due");
    assert!(due.id > first);
}

async fn sync_rules_work_within_one_region(b: Backend) {
    let t = TestServer::start(b).await;
    for ns in ["src", "dst"] {
        let (s, v) = t
            .api(
                Method::POST,
                "/api/v1/namespaces",
                Some(json!({"name": ns})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    t.push_image("src/app", "old", b"old layer").await;
    let rules = "/api/v1/namespaces/src/repositories/app/sync-rules";
    let (s, v) = t
        .api(
            Method::POST,
            rules,
            Some(json!({"target_region": "default", "target_namespace": "dst"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = t
        .api(
            Method::POST,
            rules,
            Some(json!({"target_region": "north", "target_namespace": "dst"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // A new tag is copied by the server's own worker.
    let (digest, _) = t.push_image("src/app", "v1", b"new layer").await;
    let mut copied = false;
    for _ in 0..100 {
        let r = t.head("/v2/dst/app/manifests/v1").await;
        if r.status() == StatusCode::OK {
            assert_eq!(header(&r, "docker-content-digest"), digest);
            copied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(copied, "synchronized");
    // Every tag by hand, the older one included.
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/namespaces/src/repositories/app/sync",
            Some(json!({"all": true})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["records"].as_array().expect("records").len(), 2, "{v}");
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/namespaces/src/repositories/app/sync",
            Some(json!({"all": true, "tags": ["v1"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let mut done = false;
    for _ in 0..100 {
        let (_, v) = t
            .api(
                Method::GET,
                "/api/v1/sync-records?repository=src/app&status=succeeded",
                None,
            )
            .await;
        if v["total"] == 3 {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(done, "three records succeeded");
    assert_eq!(
        t.head("/v2/dst/app/manifests/old").await.status(),
        StatusCode::OK
    );
    // Time filters.
    let (s, v) = t
        .api(Method::GET, "/api/v1/sync-records?repository=src/app&since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 3);
    let (_, v) = t
        .api(
            Method::GET,
            "/api/v1/sync-records?repository=src/app&since=2999-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(v["total"], 0);
    // One region: tag lists carry no region column; the regions list has one.
    let (_, v) = t
        .api(
            Method::GET,
            "/api/v1/namespaces/dst/repositories/app/tags",
            None,
        )
        .await;
    assert!(v["items"][0].get("regions").is_none(), "{v}");
    let (_, v) = t.api(Method::GET, "/api/v1/regions", None).await;
    assert_eq!(v[0]["name"], "default", "{v}");
}
