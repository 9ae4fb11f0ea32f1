//! Regions: two regions on one machine, each with its own blob storage
//! ("north" a filesystem path, "south" a Garage bucket) and its own node,
//! one PostgreSQL. Push once, pull everywhere (on demand, then locally
//! after replication), synchronization rules with their records, and the
//! faults: a dead worker's lease, a blob collected before it was copied.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::cli::{docker_layers, run, stderr, try_run, ADMIN_CREDS};
use crate::common::relay::{free_addr, garage_addr, Relay};
use crate::common::*;
use berth::config::RegionConfig;
use berth::Config;
use berth_oci::Digest;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Both regions' settings, the same on every node but for `region`.
fn configure(c: &mut Config, local: &str, north: &Path, south: &South) {
    c.region = Some(local.to_owned());
    let mut n = RegionConfig::default();
    n.storage.path = Some(north.to_path_buf());
    let mut s = RegionConfig::default();
    test_bucket_storage(&mut s.storage, &south.prefix);
    if let Some(endpoint) = &south.endpoint {
        s.storage.s3.endpoint = Some(endpoint.clone());
    }
    c.regions.insert("north".into(), n);
    c.regions.insert("south".into(), s);
    c.jobs.lease_secs = 3;
    c.jobs.reconcile_secs = 0;
    c.jobs.max_backoff_secs = 1;
    c.gc.grace_secs = 0;
    c.gc.delete_untagged = true;
}

struct Platform {
    north: TestServer,
    south: TestServer,
    _dir: tempfile::TempDir,
}

/// A node in each region. The south node runs no jobs unless
/// `south_worker`: tests run its queue by hand to see the state between.
async fn platform(south_worker: bool) -> Platform {
    platform_with(south_worker, None).await
}

/// The south region's bucket: a prefix of the test bucket, reached at
/// `endpoint` (a relay) instead of Garage's own address when given.
struct South {
    prefix: String,
    endpoint: Option<String>,
}

async fn platform_with(south_worker: bool, endpoint: Option<String>) -> Platform {
    let dir = tempfile::tempdir().expect("dir");
    let north_path = dir.path().join("north");
    let south = South {
        prefix: format!(
            "regions-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("time")
                .as_nanos()
        ),
        endpoint,
    };
    let north = TestServer::start_with(Backend::Postgres, |c| {
        configure(c, "north", &north_path, &south)
    })
    .await;
    let south = north
        .join(|c| {
            configure(c, "south", &north_path, &south);
            if !south_worker {
                c.jobs.concurrency = 0;
            }
        })
        .await;
    Platform {
        north,
        south,
        _dir: dir,
    }
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

async fn stored_in(t: &TestServer, region: &str, digest: &str) -> bool {
    let d: Digest = digest.parse().expect("digest");
    t.registry()
        .regions()
        .get(region)
        .expect("region")
        .blobs
        .stat(&d)
        .await
        .expect("stat")
        .is_some()
}

/// The blobs (config and layers) of an image manifest.
fn blobs_of(manifest: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(manifest).expect("manifest");
    let mut out = vec![v["config"]["digest"].as_str().expect("config").to_owned()];
    for l in v["layers"].as_array().expect("layers") {
        out.push(l["digest"].as_str().expect("layer").to_owned());
    }
    out
}

/// Wait until the south's own worker has copied `blobs` there.
async fn wait_replicated(p: &Platform, blobs: &[String]) {
    for _ in 0..100 {
        let mut all = true;
        for b in blobs {
            all &= stored_in(&p.north, "south", b).await;
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not replicated by the south's worker");
}

async fn blob(t: &TestServer, repo: &str, digest: &str) -> (StatusCode, Vec<u8>) {
    let r = t.get(&format!("/v2/{repo}/blobs/{digest}")).await;
    let status = r.status();
    (status, r.bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_in_one_region_pulls_at_once_in_the_other_then_locally() {
    let p = platform(false).await;
    let layer = content(6 << 20, 3);
    let (digest, manifest) = p.north.push_image("team/app", "v1", &layer).await;
    let blobs = blobs_of(&manifest);
    for b in &blobs {
        assert!(stored_in(&p.north, "north", b).await);
        assert!(!stored_in(&p.north, "south", b).await, "not replicated yet");
    }
    // The manifest and tags are global.
    let r = p
        .south
        .client
        .get(p.south.url("/v2/team/app/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), digest);

    // The layer at once in the south, by four clients together: one fetch.
    let layer_digest = &blobs[1];
    let fetches = &p.south.registry().platform_stats().on_demand_fetches;
    let before = fetches.load(Ordering::Relaxed);
    let gets = (0..4).map(|_| blob(&p.south, "team/app", layer_digest));
    for (status, body) in futures_util::future::join_all(gets).await {
        assert_eq!(status, StatusCode::OK);
        assert!(body == layer, "the layer's bytes");
    }
    assert_eq!(fetches.load(Ordering::Relaxed) - before, 1, "one fetch");
    // The bytes were kept in the south as they passed.
    let mut kept = false;
    for _ in 0..50 {
        if stored_in(&p.north, "south", layer_digest).await {
            kept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(kept, "the on-demand fetch stored the layer in the south");
    // A range of a blob the south lacks (the config) is served too.
    let r = p
        .south
        .client
        .get(p.south.url(&format!("/v2/team/app/blobs/{}", blobs[0])))
        .header("range", "bytes=0-9")
        .send()
        .await
        .expect("range");
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.expect("body").len(), 10);

    // The tag list tells where the image is whole.
    let (s, v) = p
        .south
        .api(
            Method::GET,
            "/api/v1/namespaces/team/repositories/app/tags",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let regions = &v["items"][0]["regions"];
    assert!(
        regions
            .as_array()
            .expect("regions")
            .iter()
            .any(|r| r["region"] == "north" && r["available"] == true),
        "{v}"
    );

    // Replication: the south's worker copies what is still missing.
    let (s, v) = p.north.api(Method::GET, "/api/v1/regions", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let south = v
        .as_array()
        .expect("regions")
        .iter()
        .find(|r| r["name"] == "south")
        .expect("south")
        .clone();
    assert!(south["jobs_waiting"].as_i64().expect("waiting") >= 1, "{v}");
    let ran = p
        .south
        .server
        .as_ref()
        .expect("south")
        .worker()
        .run_ready()
        .await;
    assert!(ran.expect("run") >= 1);
    for b in &blobs {
        assert!(stored_in(&p.north, "south", b).await, "{b} replicated");
    }
    let (_, v) = p.north.api(Method::GET, "/api/v1/regions", None).await;
    for r in v.as_array().expect("regions") {
        assert_eq!(r["jobs_waiting"], 0, "{v}");
        assert!(r["blobs"].as_i64().expect("blobs") >= 2, "{v}");
    }
    let (_, v) = p
        .north
        .api(
            Method::GET,
            "/api/v1/namespaces/team/repositories/app/tags",
            None,
        )
        .await;
    for r in v["items"][0]["regions"].as_array().expect("regions") {
        assert_eq!(r["available"], true, "{v}");
    }

    // Later pulls in the south are local: with the north's copies gone,
    // the south still serves every blob.
    for b in &blobs {
        let d: Digest = b.parse().expect("digest");
        p.north.registry().blobs().delete(&d).await.expect("delete");
    }
    for b in &blobs {
        let (status, _) = blob(&p.south, "team/app", b).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{b} served from the south's storage"
        );
    }
    // And the north, which lost them, fetches them back from the south.
    let (status, body) = blob(&p.north, "team/app", layer_digest).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == layer);

    // Metrics.
    let text = p.south.get("/metrics").await.text().await.expect("metrics");
    assert!(text.contains("berth_on_demand_fetches_total"), "{text}");
    assert!(text.contains("berth_jobs"), "{text}");
    let text = p.south.get("/metrics").await.text().await.expect("metrics");
    assert!(
        text.contains("berth_replication_lag_seconds_count{region=\"south\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pushes_in_one_region_and_pulls_in_the_other() {
    let p = platform(false).await;
    let ctx = tempfile::tempdir().expect("ctx");
    let north = format!("{}/team/web:v1", crate::common::cli::host(&p.north));
    let south = format!("{}/team/web:v1", crate::common::cli::host(&p.south));
    let big: String = content(3 << 20, 9)
        .iter()
        .map(|b| char::from(b"0123456789abcdef"[usize::from(b & 15)]))
        .collect();
    crate::common::cli::docker_build(
        ctx.path(),
        &north,
        &[("a.txt", "north\n"), ("big.txt", &big)],
    )
    .await;
    for t in [&p.north, &p.south] {
        let (user, password) = ADMIN_CREDS.split_once(':').expect("creds");
        crate::common::cli::docker_login(t, user, password).await;
    }
    run("docker", &["push", &north]).await;
    // At once in the south (on demand).
    let pulled = try_run("docker", &["pull", &south], &[], None).await;
    assert!(
        pulled.status.success(),
        "pull in the south: {}",
        stderr(&pulled)
    );
    assert_eq!(docker_layers(&south).await, 2);
    run("docker", &["rmi", "-f", &south]).await;
    // Replicated, then pulled again in the south with the north's storage
    // emptied: every byte comes from the south's bucket.
    p.south
        .server
        .as_ref()
        .expect("south")
        .worker()
        .run_ready()
        .await
        .expect("run");
    let north_blobs = p.north.registry().blobs().clone();
    for (d, _) in north_blobs.list_blobs(None, 100).await.expect("list") {
        assert!(stored_in(&p.north, "south", d.as_str()).await);
        north_blobs.delete(&d).await.expect("delete");
    }
    run("docker", &["pull", &south]).await;
    assert_eq!(docker_layers(&south).await, 2);
    run("docker", &["rmi", "-f", &south, &north]).await;
}

async fn call(
    t: &TestServer,
    client: &reqwest::Client,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    t.api_as(client, method, path, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_rules_copy_new_tags_record_everything_and_respect_overwrite() {
    let p = platform(false).await;
    let (t, south) = (&p.north, &p.south);
    let admin = t.client.clone();
    // Namespaces: the source, a target, and one the developer may not push to.
    for ns in ["src", "dst", "locked"] {
        let (s, v) = t
            .api(
                Method::POST,
                "/api/v1/namespaces",
                Some(json!({"name": ns})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    // The source stays in the north (copies are the sync rules' job here).
    let (s, v) = t
        .api(
            Method::PUT,
            "/api/v1/namespaces/src/region-copies",
            Some(json!({"regions": ["north"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["regions"], json!(["north"]));
    let (s, v) = t
        .api(
            Method::PUT,
            "/api/v1/namespaces/src/replication",
            Some(json!({"regions": ["mars"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (_, v) = t
        .api(Method::GET, "/api/v1/namespaces/dst/region-copies", None)
        .await;
    assert_eq!(v["regions"], Value::Null, "every region by default");
    // The former path (deprecated) reads and writes the same setting.
    let (s, v) = t
        .api(Method::GET, "/api/v1/namespaces/src/replication", None)
        .await;
    assert_eq!((s, &v["regions"]), (StatusCode::OK, &json!(["north"])));
    let dev = create_account(t, "dev").await;
    for (ns, role) in [("src", "admin"), ("dst", "developer"), ("locked", "guest")] {
        let (s, v) = t
            .api(
                Method::PUT,
                &format!("/api/v1/namespaces/{ns}/members/dev"),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    }
    // An image pushed before any rule.
    let (old_digest, _) = t.push_image("src/app", "old", &content(4096, 1)).await;
    // A tag already in the target with other content: the conflict case.
    t.push_image("dst/app", "v2", &content(2048, 2)).await;

    let rules = "/api/v1/namespaces/src/repositories/app/sync-rules";
    // Refused: an unknown region, a target the author may not push to, an
    // author who does not manage the image, a copy onto itself.
    let (s, v) = call(
        t,
        &dev,
        Method::POST,
        rules,
        Some(json!({"target_region": "west", "target_namespace": "dst"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .expect("detail")
            .contains("north, south"),
        "{v}"
    );
    let (s, v) = call(
        t,
        &dev,
        Method::POST,
        rules,
        Some(json!({"target_region": "south", "target_namespace": "locked"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .expect("detail")
            .contains("may not push"),
        "{v}"
    );
    let (s, v) = call(
        t,
        &dev,
        Method::POST,
        rules,
        Some(json!({"target_region": "south", "target_namespace": "src"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let outsider = create_account(t, "outsider").await;
    let (s, v) = call(
        t,
        &outsider,
        Method::POST,
        rules,
        Some(json!({"target_region": "south", "target_namespace": "dst"})),
    )
    .await;
    assert!(
        s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
        "{s} {v}"
    );
    let (s, v) = call(
        t,
        &dev,
        Method::POST,
        rules,
        Some(json!({"target_region": "south", "target_namespace": "dst", "bogus": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // The rule, without overwrite.
    let (s, rule) = call(
        t,
        &dev,
        Method::POST,
        rules,
        Some(json!({"target_region": "south", "target_namespace": "dst"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    assert_eq!(rule["author"], "dev");
    assert_eq!(rule["overwrite"], false);
    let (s, _) = call(
        t,
        &dev,
        Method::POST,
        rules,
        Some(json!({"target_region": "south", "target_namespace": "dst"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "the same target twice");
    let (s, v) = call(t, &admin, Method::GET, rules, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().expect("rules").len(), 1);

    // New tags are synchronized: v1 (new in the target) and v2 (conflict).
    let (v1_digest, v1_manifest) = t.push_image("src/app", "v1", &content(3 << 20, 3)).await;
    let (v2_digest, _) = t.push_image("src/app", "v2", &content(1024, 4)).await;
    let server = south.server.as_ref().expect("south");
    server.worker().run_ready().await.expect("run");
    let r = t
        .client
        .get(t.url("/v2/dst/app/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), v1_digest);
    for b in blobs_of(&v1_manifest) {
        assert!(
            stored_in(t, "south", &b).await,
            "blob {b} placed in the target region"
        );
    }
    let r = t
        .client
        .head(t.url("/v2/dst/app/manifests/v2"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("head");
    assert_ne!(
        header(&r, "docker-content-digest"),
        v2_digest,
        "not overwritten"
    );

    let (s, v) = call(
        t,
        &dev,
        Method::GET,
        "/api/v1/sync-records?repository=src/app",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 2, "{v}");
    let items = v["items"].as_array().expect("items");
    let v1 = items.iter().find(|r| r["tag"] == "v1").expect("v1 record");
    assert_eq!(v1["status"], "succeeded", "{v1}");
    assert_eq!(v1["type"], "automatic");
    assert_eq!(v1["digest"], v1_digest.as_str());
    assert_eq!(v1["target_region"], "south");
    assert_eq!(v1["target_namespace"], "dst");
    assert_eq!(v1["operator"], "admin");
    assert_eq!(v1["attempts"], 1);
    assert!(
        v1["bytes_copied"].as_i64().expect("bytes") >= 3 << 20,
        "{v1}"
    );
    assert_eq!(v1["blobs_copied"], 2, "{v1}");
    assert!(v1["duration_seconds"].as_f64().is_some(), "{v1}");
    assert!(v1["started_at"].is_string() && v1["finished_at"].is_string());
    let v2 = items.iter().find(|r| r["tag"] == "v2").expect("v2 record");
    assert_eq!(v2["status"], "conflict", "{v2}");
    assert!(
        v2["error"]
            .as_str()
            .expect("error")
            .contains("does not overwrite"),
        "{v2}"
    );
    // The author is notified: an audit entry under their name.
    let (_, audit) = t
        .api(Method::GET, "/api/v1/audit-log?action=sync.conflict", None)
        .await;
    assert!(audit.to_string().contains("dev"), "{audit}");
    // Filters and paging.
    let (_, v) = call(
        t,
        &dev,
        Method::GET,
        "/api/v1/sync-records?repository=src/app&status=conflict",
        None,
    )
    .await;
    assert_eq!(v["total"], 1, "{v}");
    let (_, v) = call(
        t,
        &dev,
        Method::GET,
        "/api/v1/sync-records?namespace=src&per_page=1&page=2",
        None,
    )
    .await;
    assert_eq!(v["items"].as_array().expect("items").len(), 1, "{v}");
    assert_eq!(v["total"], 2);
    let (s, _) = call(
        t,
        &dev,
        Method::GET,
        "/api/v1/sync-records?status=bogus&repository=src/app",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(t, &dev, Method::GET, "/api/v1/sync-records", None).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "every record is for platform admins"
    );
    let (s, _) = call(
        t,
        &outsider,
        Method::GET,
        "/api/v1/sync-records?repository=src/app",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        t,
        &dev,
        Method::GET,
        "/api/v1/sync-records?repository=src/app&since=yesterday",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Manual synchronization of the image pushed before the rule.
    let sync = "/api/v1/namespaces/src/repositories/app/sync";
    let (s, v) = call(t, &dev, Method::POST, sync, Some(json!({}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = call(
        t,
        &dev,
        Method::POST,
        sync,
        Some(json!({"tags": ["nosuch"]})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = call(t, &dev, Method::POST, sync, Some(json!({"tags": ["old"]}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["records"].as_array().expect("records").len(), 1);
    server.worker().run_ready().await.expect("run");
    let r = t.head("/v2/dst/app/manifests/old").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), old_digest);
    let (_, v) = call(
        t,
        &dev,
        Method::GET,
        "/api/v1/sync-records?repository=src/app&status=succeeded",
        None,
    )
    .await;
    let manual = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["tag"] == "old")
        .expect("manual record")
        .clone();
    assert_eq!(manual["type"], "manual");
    assert_eq!(manual["operator"], "dev");

    // Overwrite on: a second rule to the same namespace in the north
    // overwrites v2 there.
    let (s, v) = call(
        t,
        &dev,
        Method::POST,
        rules,
        Some(json!({"target_region": "north", "target_namespace": "dst", "overwrite": true})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rule2 = v["id"].as_i64().expect("id");
    let (s, v) = call(
        t,
        &dev,
        Method::POST,
        sync,
        Some(json!({"rule": rule2, "tags": ["v2"]})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // The north's jobs run on the north node's own worker.
    let mut overwritten = false;
    for _ in 0..100 {
        let r = t.head("/v2/dst/app/manifests/v2").await;
        if header(&r, "docker-content-digest") == v2_digest {
            overwritten = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(overwritten, "overwrite on replaces the differing tag");
    // Everything on the all-records view for the platform admin.
    let (s, v) = t
        .api(Method::GET, "/api/v1/sync-records?per_page=100", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["total"].as_i64().expect("total") >= 4, "{v}");

    // Rules pointing at each other do not push in a circle: dst/app's rule
    // back to src finds the tag already there.
    let back = "/api/v1/namespaces/dst/repositories/app/sync-rules";
    let (s, v) = call(
        t,
        &admin,
        Method::POST,
        back,
        Some(json!({"target_region": "north", "target_namespace": "src", "overwrite": true})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, before) = t
        .api(Method::GET, "/api/v1/sync-records?per_page=1", None)
        .await;
    t.push_image("src/app", "loop", &content(512, 9)).await;
    for _ in 0..5 {
        server.worker().run_ready().await.expect("run");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, after) = t
        .api(Method::GET, "/api/v1/sync-records?per_page=1", None)
        .await;
    let added = after["total"].as_i64().expect("total") - before["total"].as_i64().expect("total");
    // src→dst (south rule), src→dst (north rule), dst→src (finds it there).
    assert!(added <= 4, "no circle: {added} records");
    let (_, v) = t
        .api(
            Method::GET,
            "/api/v1/sync-records?repository=dst/app&per_page=100",
            None,
        )
        .await;
    let back_record = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["tag"] == "loop")
        .cloned();
    if let Some(r) = back_record {
        assert_eq!(r["status"], "succeeded", "{r}");
    }

    // Accounts with Manage on the image (not namespace admins) set rules too.
    let manager = create_account(t, "manager").await;
    let (s, v) = t
        .api(
            Method::PUT,
            "/api/v1/namespaces/src/permissions/app/manager",
            Some(json!({"permission": "manage"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = t
        .api(
            Method::PUT,
            "/api/v1/namespaces/dst/members/manager",
            Some(json!({"role": "developer"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = call(
        t,
        &manager,
        Method::POST,
        rules,
        Some(json!({"target_region": "south", "target_namespace": "dst", "overwrite": true})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "the same target as dev's rule: {v}"
    );
    let (s, v) = call(
        t,
        &manager,
        Method::POST,
        rules,
        Some(json!({"target_region": "south", "target_namespace": "locked"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no push on locked: {v}");

    // Deleting a rule keeps its records.
    let id = rule["id"].as_i64().expect("id");
    let (s, _) = call(t, &dev, Method::DELETE, &format!("{rules}/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(t, &dev, Method::DELETE, &format!("{rules}/{id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = call(
        t,
        &dev,
        Method::GET,
        "/api/v1/sync-records?repository=src/app",
        None,
    )
    .await;
    assert!(v["total"].as_i64().expect("total") >= 4, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_job_is_leased_again_and_completes() {
    let p = platform(false).await;
    let (_, manifest) = p
        .north
        .push_image("team/app", "v1", &content(1 << 20, 5))
        .await;
    // A worker of the south claims the job and dies (it never renews).
    let store = p.south.registry().platform().clone();
    let now = berth_core::now_millis();
    let job = store
        .claim_job("south", "dead-node", now, now + 1000)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(job.kind, "replicate_image");
    let worker = p.south.server.as_ref().expect("south").worker();
    assert_eq!(worker.run_ready().await.expect("run"), 0, "still leased");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(worker.run_ready().await.expect("run"), 1, "leased again");
    for b in blobs_of(&manifest) {
        assert!(stored_in(&p.north, "south", &b).await);
    }
    let counts = store.job_counts().await.expect("counts");
    assert!(
        counts.iter().all(|c| c.region.as_deref() != Some("south")),
        "{counts:?}"
    );
    // The dead worker's late report changes nothing.
    assert!(!store.finish_job(job.id, "dead-node").await.expect("finish"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_collected_before_replication_leaves_nothing_behind() {
    let p = platform(false).await;
    let (digest, manifest) = p
        .north
        .push_image("team/gone", "v1", &content(1 << 20, 6))
        .await;
    let r = p
        .north
        .delete(&format!("/v2/team/gone/manifests/{digest}"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let collector = p.north.collector();
    let run = collector
        .run(berth_core::GcOptions {
            dry_run: false,
            full_sweep: false,
            cause: berth_core::GcCause::Cli,
            actor: "test".into(),
        })
        .await
        .expect("gc");
    assert!(run.error.is_none(), "{:?}", run.error);
    // The pending job finds the image gone and does nothing.
    p.south
        .server
        .as_ref()
        .expect("south")
        .worker()
        .run_ready()
        .await
        .expect("run");
    for b in blobs_of(&manifest) {
        assert!(!stored_in(&p.north, "south", &b).await, "nothing copied");
    }
    let store = p.north.registry().platform();
    let counts = store.job_counts().await.expect("counts");
    assert!(counts.iter().all(|c| c.state != "failed"), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_still_needed_is_not_collected_and_gc_deletes_in_every_region() {
    let p = platform(true).await;
    let layer = content(1 << 20, 7);
    let (_, manifest) = p.north.push_image("team/a", "v1", &layer).await;
    let (digest_b, _) = p.north.push_image("team/b", "v1", &layer).await;
    let blobs = blobs_of(&manifest);
    wait_replicated(&p, &blobs).await;
    // team/a goes; team/b still needs the layer.
    let r = p.north.delete("/v2/team/a/manifests/v1").await;
    assert!(r.status().is_success());
    let gc = berth_core::GcOptions {
        dry_run: false,
        full_sweep: true,
        cause: berth_core::GcCause::Cli,
        actor: "test".into(),
    };
    p.north.collector().run(gc.clone()).await.expect("gc");
    assert!(stored_in(&p.north, "south", &blobs[1]).await, "layer kept");
    assert!(stored_in(&p.north, "north", &blobs[1]).await, "layer kept");
    // team/b goes too: the layer is deleted in both regions.
    let r = p
        .north
        .delete(&format!("/v2/team/b/manifests/{digest_b}"))
        .await;
    assert!(r.status().is_success());
    p.north.collector().run(gc).await.expect("gc");
    assert!(
        !stored_in(&p.north, "south", &blobs[1]).await,
        "deleted in the south"
    );
    assert!(
        !stored_in(&p.north, "north", &blobs[1]).await,
        "deleted in the north"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_whose_storage_is_down_does_not_stop_the_other() {
    let relay_addr = free_addr();
    let relay = Relay::start(relay_addr, garage_addr()).await;
    let p = platform_with(false, Some(format!("http://{relay_addr}"))).await;
    let south_worker = p.south.server.as_ref().expect("south").worker();
    // Before: an image from the north, replicated; one pushed in the south.
    let (_, first) = p
        .north
        .push_image("team/one", "v1", &content(1 << 20, 11))
        .await;
    south_worker.run_ready().await.expect("run");
    let (_, second) = p
        .south
        .push_image("team/two", "v1", &content(1 << 20, 12))
        .await;

    // The south's bucket goes away.
    relay.stop();
    // The north serves what it holds, and takes pushes.
    for b in blobs_of(&first) {
        let (status, _) = blob(&p.north, "team/one", &b).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, third) = p
        .north
        .push_image("team/three", "v1", &content(1 << 20, 13))
        .await;
    // What only the south holds is a clear 503, not a 500.
    let layer = &blobs_of(&second)[1];
    let r = p.north.get(&format!("/v2/team/two/blobs/{layer}")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.expect("OCI error");
    assert_eq!(v["errors"][0]["code"], "UNAVAILABLE", "{v}");
    // Replication into the south fails and waits to retry; nothing is lost.
    south_worker.run_ready().await.expect("run");
    let store = p.north.registry().platform().clone();
    let waiting = store.job_counts().await.expect("counts");
    assert!(
        waiting
            .iter()
            .any(|c| c.region.as_deref() == Some("south") && c.state == "waiting"),
        "{waiting:?}"
    );

    // The bucket is back: replication completes both ways by itself
    // (the north's worker runs; the south's queue is run here).
    let _relay = Relay::start(relay_addr, garage_addr()).await;
    let mut done = false;
    for _ in 0..100 {
        south_worker.run_ready().await.expect("run");
        let mut all = true;
        for b in blobs_of(&third) {
            all &= stored_in(&p.north, "south", &b).await;
        }
        for b in blobs_of(&second) {
            all &= stored_in(&p.north, "north", &b).await;
        }
        if all {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(done, "replication caught up after the outage");
    let (status, _) = blob(&p.north, "team/two", layer).await;
    assert_eq!(status, StatusCode::OK);
    let counts = store.job_counts().await.expect("counts");
    assert!(counts.iter().all(|c| c.state != "failed"), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_region_without_internal_pulls_are_external() {
    let dir = tempfile::tempdir().expect("dir");
    let north_path = dir.path().join("north");
    let south = South {
        prefix: format!("regions-zones-{}", std::process::id()),
        endpoint: None,
    };
    let zoned = |c: &mut Config, local: &str| {
        configure(c, local, &north_path, &south);
        // Loopback is internal, except in the south.
        c.network.internal_networks = vec!["127.0.0.0/8".into()];
        if let Some(s) = c.regions.get_mut("south") {
            s.internal_pulls = Some(false);
        }
    };
    let north = TestServer::start_with(Backend::Postgres, |c| zoned(c, "north")).await;
    let south = north.join(|c| zoned(c, "south")).await;
    north.push_image("corp/app", "1", b"app").await;
    let (s, v) = north
        .api(
            Method::PATCH,
            "/api/v1/namespaces/corp",
            Some(json!({"external_access": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let pull = |t: &TestServer| {
        t.client
            .get(t.url("/v2/corp/app/manifests/1"))
            .header("accept", OCI_MANIFEST)
            .send()
    };
    assert_eq!(pull(&north).await.expect("pull").status(), StatusCode::OK);
    let r = pull(&south).await.expect("pull");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = r.text().await.expect("body");
    assert!(body.contains("external-access switch"), "{body}");
}

/// A `berth serve` process of the south with a worker, configured by a
/// file of the issue's shape.
fn spawn_south_process(p: &Platform, north_path: &Path, south: &South) -> std::process::Child {
    let var = |name: &str| std::env::var(name).expect("test S3 settings");
    let port = free_addr().port();
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
data_dir = "{data}"
region = "south"
admin_password = "{ADMIN_PASSWORD}"
log = "warn"
[database]
url = "{db}"
[jobs]
concurrency = 1
lease_secs = 3
reconcile_secs = 0
[regions.north]
storage = {{ kind = "fs", path = "{north}" }}
[regions.south]
storage = {{ kind = "s3", s3 = {{ endpoint = "{endpoint}", bucket = "{bucket}", region = "{region}", prefix = "{prefix}", access_key_id = "{key}", secret_access_key = "{secret}", part_size_mib = 5 }} }}
"#,
        data = p._dir.path().join("south-process").display(),
        db = p.north.database_url.as_deref().expect("postgres"),
        north = north_path.display(),
        endpoint = var("BERTH_TEST_S3_ENDPOINT"),
        bucket = var("BERTH_TEST_S3_BUCKET"),
        region = var("BERTH_TEST_S3_REGION"),
        prefix = south.prefix,
        key = var("BERTH_TEST_S3_ACCESS_KEY_ID"),
        secret = var("BERTH_TEST_S3_SECRET_ACCESS_KEY"),
    );
    let path = p._dir.path().join("south.toml");
    std::fs::write(&path, config).expect("config");
    std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start berth")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_copy_leaves_the_job_to_another_that_completes_it() {
    let dir = tempfile::tempdir().expect("dir");
    let north_path = dir.path().join("north");
    let south = South {
        prefix: format!("regions-kill-{}", std::process::id()),
        endpoint: None,
    };
    let north = TestServer::start_with(Backend::Postgres, |c| {
        configure(c, "north", &north_path, &south)
    })
    .await;
    let south_node = north
        .join(|c| {
            configure(c, "south", &north_path, &south);
            c.jobs.concurrency = 0;
        })
        .await;
    let p = Platform {
        north,
        south: south_node,
        _dir: dir,
    };
    let layer = content(96 << 20, 21);
    let (_, manifest) = p.north.push_image("team/big", "v1", &layer).await;
    let layer_digest = blobs_of(&manifest)[1].clone();
    drop(layer);
    let store = p.north.registry().platform().clone();
    let mut child = spawn_south_process(&p, &p._dir.path().join("north"), &south);
    // SIGKILL as soon as the process has claimed the copy.
    let mut killed_running = false;
    for _ in 0..3000 {
        let counts = store.job_counts().await.expect("counts");
        if counts
            .iter()
            .any(|c| c.region.as_deref() == Some("south") && c.state == "running")
        {
            child.kill().expect("kill");
            killed_running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = child.wait();
    assert!(killed_running, "the process claimed the job");
    assert!(
        !stored_in(&p.north, "south", &layer_digest).await,
        "killed before the copy finished"
    );
    // Another south worker takes the job once the lease runs out.
    let worker = p.south.server.as_ref().expect("south").worker();
    let mut completed = false;
    for _ in 0..100 {
        worker.run_ready().await.expect("run");
        if stored_in(&p.north, "south", &layer_digest).await {
            completed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(completed, "the job was leased again and completed");
    let (status, body) = blob(&p.south, "team/big", &layer_digest).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sha256(&body), layer_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_sets_image_synchronization_and_shows_its_records() {
    let p = platform(false).await;
    let t = &p.north;
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/namespaces",
            Some(json!({"name": "mirror"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    t.push_image("shop/web", "1.0", &content(4096, 31)).await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let b = crate::common::webdriver::Browser::start(&shots).await;
    let base = t.url("");
    b.goto(&format!("{base}/login")).await;
    b.fill("#username", "admin").await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("#login").await;
    b.find("#who").await;

    // The tag list shows where the image is whole: the north, not yet the south.
    b.goto(&format!("{base}/namespaces/shop/tags?image=web"))
        .await;
    let regions = b.text("#tags td.regions").await;
    assert!(
        regions.contains("north") && regions.contains("south …"),
        "{regions}"
    );
    b.screenshot("regions-01-tags-with-regions").await;

    // The synchronization tab and its dialog.
    b.click("#sync-tab").await;
    b.wait_text("No synchronization rule").await;
    b.click("#open-set-sync").await;
    b.script(
        "document.querySelector('select[name=target_region]').value = 'south';",
        json!([]),
    )
    .await;
    b.fill("input[name=target_namespace]", "mirror").await;
    b.screenshot("regions-02-set-image-synchronization").await;
    b.click("#confirm-set-sync").await;
    b.wait_text("will be copied to mirror/web in region south")
        .await;
    // Synchronize the tag pushed before the rule, by hand.
    b.fill("#sync-rules input[name=tags]", "1.0").await;
    b.click("#sync-rules button[type=submit]").await;
    b.wait_text("1 synchronization(s) queued.").await;
    p.south
        .server
        .as_ref()
        .expect("south")
        .worker()
        .run_ready()
        .await
        .expect("run");
    b.goto(&format!("{base}/namespaces/shop/sync?image=web"))
        .await;
    let row = b.text("#sync-records tbody tr").await;
    for needle in ["1.0", "succeeded", "manual", "south", "mirror", "admin"] {
        assert!(row.contains(needle), "{needle} in {row}");
    }
    b.screenshot("regions-03-synchronization-records").await;
    // A bad filter is a readable refusal, not a crash.
    b.goto(&format!(
        "{base}/namespaces/shop/sync?image=web&status=bogus"
    ))
    .await;
    b.wait_text("unknown status").await;
    b.close().await;
    let r = t.head("/v2/mirror/web/manifests/1.0").await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconcile_pass_queues_what_replication_missed() {
    let p = platform(false).await;
    // A namespace kept in the north: its push queues nothing for the south.
    p.north
        .push_image("keep/app", "seed", &content(512, 40))
        .await;
    let (s, v) = p
        .north
        .api(
            Method::PUT,
            "/api/v1/namespaces/keep/region-copies",
            Some(json!({"regions": ["north"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let south = p.south.server.as_ref().expect("south");
    south.worker().run_ready().await.expect("run");
    let (_, manifest) = p
        .north
        .push_image("keep/app", "v1", &content(1 << 20, 41))
        .await;
    assert_eq!(
        south.worker().run_ready().await.expect("run"),
        0,
        "nothing queued"
    );
    assert_eq!(
        p.south
            .registry()
            .reconcile_region("south")
            .await
            .expect("reconcile"),
        0
    );
    // Replicated everywhere again: the pass finds the image it missed (the
    // seed was replicated before the namespace was kept in the north).
    let (s, _) = p
        .north
        .api(
            Method::PUT,
            "/api/v1/namespaces/keep/region-copies",
            Some(json!({"regions": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        p.south
            .registry()
            .reconcile_region("south")
            .await
            .expect("reconcile"),
        1
    );
    assert_eq!(
        p.south
            .registry()
            .reconcile_region("south")
            .await
            .expect("reconcile"),
        0,
        "deduplicated while queued"
    );
    south.worker().run_ready().await.expect("run");
    for b in blobs_of(&manifest) {
        assert!(stored_in(&p.north, "south", &b).await, "{b}");
    }
    assert_eq!(
        p.south
            .registry()
            .reconcile_region("south")
            .await
            .expect("reconcile"),
        0,
        "nothing left"
    );
}

/// An integrity check through the API, waited for.
async fn integrity_check(t: &TestServer, repair: bool) -> Value {
    let (s, run) = t
        .api(
            Method::POST,
            "/api/v1/integrity/runs",
            Some(json!({"repair": repair})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{run}");
    let path = format!("/api/v1/integrity/runs/{}", run["id"]);
    for _ in 0..600 {
        let (s, run) = t.api(Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{run}");
        if run["status"] != "running" {
            assert_eq!(run["status"], "succeeded", "{run}");
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the integrity check did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_lost_blob_is_repaired_from_the_other_region() {
    let p = platform(true).await;
    let layer = content(300_000, 9);
    let (_, manifest) = p.north.push_image("team/a", "v1", &layer).await;
    let blobs = blobs_of(&manifest);
    wait_replicated(&p, &blobs).await;

    // A bit flips in the north's copy of the layer; the south loses the config.
    let hex = blobs[1].strip_prefix("sha256:").expect("sha256");
    let north_file = p._dir.path().join("north/sha256").join(&hex[..2]).join(hex);
    let mut rotten = std::fs::read(&north_file).expect("north copy");
    rotten[1234] ^= 1;
    std::fs::write(&north_file, rotten).expect("rot");
    let config: Digest = blobs[0].parse().expect("digest");
    let south = p
        .north
        .registry()
        .regions()
        .get("south")
        .expect("south")
        .blobs
        .clone();
    assert!(south.delete(&config).await.expect("delete"));

    // Found in the region each concerns; without repair, left alone.
    let run = integrity_check(&p.north, false).await;
    assert_eq!(
        (run["damaged"].as_i64(), run["missing"].as_i64()),
        (Some(1), Some(1)),
        "{run}"
    );
    assert_eq!(run["repaired"], 0);
    let problems = run["problems"].as_array().expect("problems");
    assert!(
        problems
            .iter()
            .any(|x| x["kind"] == "damaged" && x["region"] == "north" && x["digest"] == blobs[1]),
        "{run}"
    );
    assert!(
        problems
            .iter()
            .any(|x| x["kind"] == "missing" && x["region"] == "south" && x["digest"] == blobs[0]),
        "{run}"
    );
    assert_ne!(std::fs::read(&north_file).expect("north copy"), layer);

    // Repaired, each from the other region's good copy.
    let run = integrity_check(&p.north, true).await;
    assert_eq!(run["repaired"], 2, "{run}");
    assert!(
        run["problems"]
            .to_string()
            .contains("repaired from region south"),
        "{run}"
    );
    assert!(
        run["problems"]
            .to_string()
            .contains("repaired from region north"),
        "{run}"
    );
    assert_eq!(std::fs::read(&north_file).expect("north copy"), layer);
    assert!(stored_in(&p.north, "south", &blobs[0]).await);
    let run = integrity_check(&p.south, false).await;
    assert_eq!(
        (run["damaged"].as_i64(), run["missing"].as_i64()),
        (Some(0), Some(0)),
        "{run}"
    );
    assert_eq!(
        blob(&p.south, "team/a", &blobs[1]).await,
        (StatusCode::OK, layer)
    );
}
