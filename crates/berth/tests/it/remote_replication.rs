//! Replication with remote registries: push and pull rules against the
//! reference registry (Distribution, without authentication and with
//! Basic) and against a second Berth (token authentication); filters,
//! flattening, override and conflicts, replicated deletions, manual,
//! on-push and scheduled triggers, runs and tasks in the API; a remote
//! stopped mid-blob (the copy resumes at its offset) and a worker
//! SIGKILLed mid-task (the task completes after its lease runs out).

use std::time::Duration;

use crate::common::reference::{client_of, push_remote, Reference};
use crate::common::relay::free_addr;
use crate::common::*;
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

backend_tests!(push_and_pull_rules_with_the_reference_registry);

const KEY: &str = "an-encryption-key-of-at-least-32-characters";

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// A webhook receiver on loopback that keeps the JSON bodies it gets.
async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::extract::State;
    let taken: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(t): State<std::sync::Arc<std::sync::Mutex<Vec<Value>>>>,
                 body: axum::Json<Value>| async move {
                    t.lock().expect("lock").push(body.0);
                },
            ),
        )
        .with_state(taken.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), taken)
}

async fn register(t: &TestServer, name: &str, url: &str, user: Option<(&str, &str)>) {
    let mut body = json!({"name": name, "url": url});
    if let Some((u, p)) = user {
        body["username"] = json!(u);
        body["password"] = json!(p);
    }
    let (s, v) = t.api(Method::POST, "/api/v1/remotes", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn create_rule(t: &TestServer, body: Value) -> i64 {
    let (s, v) = t
        .api(Method::POST, "/api/v1/replication/rules", Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_i64().expect("id")
}

async fn run_rule(t: &TestServer, id: i64) -> i64 {
    let (s, v) = t
        .api(
            Method::POST,
            &format!("/api/v1/replication/rules/{id}/run"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v["run"].as_i64().expect("run")
}

/// Wait until a run has listed its tasks and none is waiting or running.
async fn finished_run(t: &TestServer, run: i64) -> Value {
    for _ in 0..600 {
        let (s, v) = t
            .api(
                Method::GET,
                &format!("/api/v1/replication/runs/{run}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if !["listing", "running"].contains(&v["status"].as_str().unwrap_or("")) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run} did not finish");
}

/// The tasks matching `query`, once `n` exist and none is waiting or running.
/// Run `run`'s one task succeeded in its first attempt, copying every one
/// of `size` bytes and at most `slack` more (resumed, not restarted).
async fn resumed_in_one_attempt(t: &TestServer, run: i64, size: u64, slack: u64) {
    let v = finished_run(t, run).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    let tasks = settled_tasks(t, &format!("run={run}"), 1).await;
    let bytes = tasks[0]["bytes_copied"].as_i64().unwrap() as u64;
    assert!(bytes >= size, "{bytes}");
    assert!(
        bytes < size + slack,
        "resumed, not restarted: {bytes} bytes for {size}"
    );
    assert_eq!(tasks[0]["attempts"], 1, "within the attempt: {tasks:?}");
}

async fn settled_tasks(t: &TestServer, query: &str, n: usize) -> Vec<Value> {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (s, v) = t
            .api(
                Method::GET,
                &format!("/api/v1/replication/tasks?per_page=100&{query}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let items = v["items"].as_array().expect("items").clone();
        if items.len() >= n
            && items
                .iter()
                .all(|i| !["waiting", "running"].contains(&i["status"].as_str().unwrap_or("")))
        {
            return items;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("tasks {query} did not settle: {last}");
}

async fn local_digest(t: &TestServer, repo: &str, tag: &str) -> Option<String> {
    let r = t
        .client
        .head(t.url(&format!("/v2/{repo}/manifests/{tag}")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("head");
    (r.status() == StatusCode::OK).then(|| header(&r, "docker-content-digest"))
}

async fn push_and_pull_rules_with_the_reference_registry(b: Backend) {
    let dr = Reference::start(Some(("alice", "alice-password"))).await;
    let open = Reference::start(None).await;
    let t = TestServer::start_with(b, |c| {
        c.encryption_key = Some(berth::config::Secret::new(KEY));
        c.jobs.max_backoff_secs = 1;
        c.webhooks.allow_private_targets = true;
    })
    .await;
    // Replication results reach webhooks.
    let (hook_url, heard) = receiver().await;
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "ops", "url": hook_url,
                        "events": ["replication.succeeded", "replication.conflict"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    register(&t, "dr", &dr.url(), Some(("alice", "alice-password"))).await;
    register(&t, "open", &open.url(), None).await;
    let dr_client = client_of(&dr.url(), Some(("alice", "alice-password")));
    let open_client = client_of(&open.url(), None);
    for ns in ["team", "mirror"] {
        let (s, v) = t
            .api(
                Method::POST,
                "/api/v1/namespaces",
                Some(json!({"name": ns})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    // A push rule on push, with filters, a destination and flattening,
    // replicating deletions, to the registry with Basic authentication.
    let to_dr = create_rule(
        &t,
        json!({"name": "to-dr", "direction": "push", "remote": "dr", "trigger": "on_push",
               "filters": {"repositories": {"include": ["team/*"]}, "tags": {"exclude": ["*-rc"]}},
               "destination": "backup", "flatten": 1, "replicate_deletions": true}),
    )
    .await;
    let (app_v1, _) = t.push_image("team/app", "v1", &content(300_000, 1)).await;
    t.push_image("team/app", "v2-rc", &content(1000, 2)).await;
    t.push_image("mirror/other", "v1", &content(1000, 3)).await;
    let tasks = settled_tasks(&t, &format!("rule={to_dr}"), 1).await;
    assert_eq!(tasks.len(), 1, "only the covered tag: {tasks:?}");
    let task = &tasks[0];
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["record_kind"], "replication");
    assert_eq!(task["type"], "on_push");
    assert_eq!(task["repository"], "team/app");
    assert_eq!(task["replication"]["remote_repository"], "backup/app");
    assert_eq!(task["replication"]["direction"], "push");
    assert_eq!(task["blobs_copied"], 2, "{task}");
    assert!(task["bytes_copied"].as_i64().unwrap() >= 300_000, "{task}");
    let there = dr_client
        .manifest("backup/app", "v1")
        .await
        .expect("read")
        .expect("replicated");
    assert_eq!(there.digest.to_string(), app_v1);
    assert!(dr_client
        .manifest("backup/app", "v2-rc")
        .await
        .expect("read")
        .is_none());

    // The same image again under another tag: its blobs are there already.
    let r = t
        .put_manifest("team/app", "v1-copy", OCI_MANIFEST, &there.bytes)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tasks = settled_tasks(&t, &format!("rule={to_dr}"), 2).await;
    let copy = tasks.iter().find(|x| x["tag"] == "v1-copy").expect("task");
    assert_eq!(copy["status"], "succeeded", "{copy}");
    assert_eq!(copy["blobs_copied"], 0, "{copy}");
    assert_eq!(copy["bytes_copied"], 0, "{copy}");

    // A deleted tag is deleted on the remote.
    let r = t.delete("/v2/team/app/manifests/v1-copy").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let tasks = settled_tasks(&t, &format!("rule={to_dr}"), 3).await;
    let del = tasks
        .iter()
        .find(|x| x["replication"]["action"] == "delete")
        .expect("delete task");
    assert_eq!(del["status"], "succeeded", "{del}");
    assert!(dr_client
        .manifest("backup/app", "v1-copy")
        .await
        .expect("read")
        .is_none());

    // Override off: a differing tag on the remote is left alone and reported.
    let theirs = push_remote(&open_client, "team/app", "v1", &content(500, 9)).await;
    let keep = create_rule(
        &t,
        json!({"name": "to-open", "direction": "push", "remote": "open",
               "filters": {"repositories": {"include": ["team/app"]}, "tags": {"include": ["v1"]}},
               "override": false}),
    )
    .await;
    let run = run_rule(&t, keep).await;
    let v = finished_run(&t, run).await;
    assert_eq!(v["status"], "conflict", "{v}");
    assert_eq!(v["tasks"]["conflict"], 1, "{v}");
    assert_eq!(v["trigger"], "manual");
    assert_eq!(v["operator"], "admin");
    let tasks = settled_tasks(&t, &format!("run={run}"), 1).await;
    assert!(
        tasks[0]["error"]
            .as_str()
            .unwrap()
            .contains("does not overwrite"),
        "{tasks:?}"
    );
    // Webhooks heard of the copy and of the conflict.
    let mut kinds = Vec::new();
    for _ in 0..100 {
        kinds = heard
            .lock()
            .expect("lock")
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["type"].as_str().unwrap_or(""),
                    e["data"]["tag"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>();
        if kinds.iter().any(|k| k == "replication.conflict v1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        kinds.iter().any(|k| k == "replication.succeeded v1"),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|k| k == "replication.conflict v1"),
        "{kinds:?}"
    );
    let still = open_client
        .manifest("team/app", "v1")
        .await
        .expect("read")
        .expect("there");
    assert_eq!(still.digest.to_string(), theirs, "left alone");

    // Pull: an index and its children from the open registry into a namespace.
    let child_a = push_remote(&open_client, "upstream/tool", "amd64", &content(2000, 4)).await;
    let child_b = push_remote(&open_client, "upstream/tool", "arm64", &content(3000, 5)).await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": child_a, "size": open_client.manifest("upstream/tool", &child_a).await.unwrap().unwrap().bytes.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": child_b, "size": open_client.manifest("upstream/tool", &child_b).await.unwrap().unwrap().bytes.len(), "platform": {"architecture": "arm64", "os": "linux"}}
        ]
    }))
    .unwrap();
    let index_digest = open_client
        .put_manifest("upstream/tool", "1.0", OCI_INDEX, Bytes::from(index))
        .await
        .expect("index")
        .to_string();
    let from_open = create_rule(
        &t,
        json!({"name": "from-open", "direction": "pull", "remote": "open",
               "filters": {"repositories": {"include": ["upstream/*"]}, "tags": {"exclude": ["arm64"]}},
               "destination": "mirror", "flatten": 1, "replicate_deletions": true}),
    )
    .await;
    let run = run_rule(&t, from_open).await;
    let v = finished_run(&t, run).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["tasks"]["total"], 2, "1.0 and amd64: {v}");
    assert_eq!(
        local_digest(&t, "mirror/tool", "1.0").await.as_deref(),
        Some(index_digest.as_str())
    );
    assert_eq!(
        local_digest(&t, "mirror/tool", "amd64").await.as_deref(),
        Some(child_a.as_str())
    );
    assert_eq!(local_digest(&t, "mirror/tool", "arm64").await, None);
    // The index's children came with it, blobs and all.
    let r = t
        .client
        .get(t.url(&format!("/v2/mirror/tool/manifests/{child_b}")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let r = t.get(&format!("/v2/mirror/tool/blobs/{layer}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), 3000);

    // Upstream deletes a tag: the next run deletes it here.
    open_client
        .delete_manifest("upstream/tool", &child_a)
        .await
        .expect("delete upstream");
    let run = run_rule(&t, from_open).await;
    let v = finished_run(&t, run).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(local_digest(&t, "mirror/tool", "amd64").await, None);
    assert!(local_digest(&t, "mirror/tool", "1.0").await.is_some());

    // Runs are listed, newest first; tasks keep their rule after it goes.
    let (s, v) = t
        .api(
            Method::GET,
            &format!("/api/v1/replication/runs?rule={from_open}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 2);

    // Bad input and permissions.
    for (body, status) in [
        (
            json!({"name": "x", "direction": "push", "remote": "nowhere"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"name": "x", "direction": "pull", "remote": "open"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "direction": "pull", "remote": "open", "destination": "team", "trigger": "on_push"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "direction": "push", "remote": "open", "filters": {"tags": {"include": ["a b"]}}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "direction": "push", "remote": "open", "trigger": "schedule"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "to-dr", "direction": "push", "remote": "open"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"name": "x", "direction": "sideways", "remote": "open"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "Bad Name", "direction": "push", "remote": "open"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (s, v) = t
            .api(
                Method::POST,
                "/api/v1/replication/rules",
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, status, "{body} -> {v}");
        assert!(v["detail"].is_string() || v["title"].is_string(), "{v}");
    }
    let (s, v) = t.api(Method::DELETE, "/api/v1/remotes/open", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "a rule uses it: {v}");
    let bob = create_account(&t, "bob").await;
    let r = bob
        .get(t.url("/api/v1/replication/rules"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (s, _) = t
        .api(Method::GET, "/api/v1/replication/runs/999999", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Changing and deleting rules is audited.
    let (s, v) = t
        .api(
            Method::PUT,
            &format!("/api/v1/replication/rules/{keep}"),
            Some(
                json!({"name": "to-open", "direction": "push", "remote": "open", "enabled": false}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], false);
    let (s, _) = t
        .api(
            Method::DELETE,
            &format!("/api/v1/replication/rules/{keep}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let actions = audit_actions(&t).await;
    for a in [
        "replication.rule.create",
        "replication.rule.update",
        "replication.rule.delete",
        "replication.run",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

/// A Berth with namespace `team` in it and in `other`, which it knows as
/// the remote `other` (token authentication as other's admin).
async fn source_of(other: &TestServer) -> TestServer {
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.encryption_key = Some(berth::config::Secret::new(KEY));
    })
    .await;
    for s in [&t, other] {
        let (st, v) = s
            .api(
                Method::POST,
                "/api/v1/namespaces",
                Some(json!({"name": "team"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    register(&t, "other", &other.base, Some(("admin", ADMIN_PASSWORD))).await;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_berth_with_token_auth_is_a_remote_on_a_schedule() {
    let other = TestServer::start(Backend::Sqlite).await;
    let t = source_of(&other).await;
    let (digest, manifest) = t.push_image("team/app", "1", &content(70_000, 7)).await;
    // A signature-like artifact that refers to the image.
    let sig_config = t.push_blob("team/app", b"{}").await;
    let sig_layer = t.push_blob("team/app", b"a signature").await;
    let sig = image_manifest(
        &sig_config,
        2,
        &[(sig_layer, 11)],
        Some((&digest, manifest.len())),
    );
    let sig_digest = sha256(&sig);
    let r = t
        .put_manifest("team/app", &sig_digest, OCI_MANIFEST, &sig)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let rule = create_rule(
        &t,
        json!({"name": "nightly", "direction": "push", "remote": "other",
               "trigger": "schedule", "interval_seconds": 10, "referrers": true}),
    )
    .await;
    // Its first run comes by itself after the interval.
    let tasks = settled_tasks(&t, &format!("rule={rule}"), 1).await;
    assert_eq!(tasks[0]["status"], "succeeded", "{tasks:?}");
    assert_eq!(tasks[0]["type"], "schedule");
    assert_eq!(
        local_digest(&other, "team/app", "1").await.as_deref(),
        Some(digest.as_str())
    );
    let (_, v) = t
        .api(
            Method::GET,
            &format!("/api/v1/replication/runs?rule={rule}"),
            None,
        )
        .await;
    assert_eq!(v["items"][0]["operator"], "scheduler", "{v}");
    assert_eq!(v["items"][0]["trigger"], "schedule", "{v}");
}

/// A reference registry serving one image whose layer is 100 MiB.
async fn upstream_with_a_big_image() -> (Reference, String, u64) {
    let up = Reference::start(None).await;
    let c = client_of(&up.url(), None);
    let layer = content(100 << 20, 11);
    let digest = push_remote(&c, "big/image", "1", &layer).await;
    (up, digest, layer.len() as u64)
}

/// A pull rule of the big image into namespace `cache` at 20 MiB/s (about
/// five seconds for the layer), started. Returns the run.
async fn start_big_pull(t: &TestServer, up: &Reference) -> i64 {
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/namespaces",
            Some(json!({"name": "cache"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    register(t, "up", &up.url(), None).await;
    let rule = create_rule(
        t,
        json!({"name": "big", "direction": "pull", "remote": "up", "destination": "cache",
               "filters": {"repositories": {"include": ["big/image"]}}, "flatten": 1,
               "bandwidth_kib": 20480}),
    )
    .await;
    run_rule(t, rule).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_stopped_mid_blob_resumes_at_the_offset_it_reached() {
    let (up, digest, size) = upstream_with_a_big_image().await;
    let t = TestServer::start(Backend::Sqlite).await;
    let run = start_big_pull(&t, &up).await;
    // Stop the remote once a good part of the layer has arrived.
    let mut received = 0;
    for _ in 0..300 {
        received = t.uploads_bytes().await;
        if received >= 30 << 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(received >= 30 << 20, "the copy got under way");
    let stopped = up.stop_keeping_data().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _up = stopped.start().await;
    // Every byte once, give or take what was in flight when it stopped:
    // not the 30+ MiB again that a restart from zero would cost.
    resumed_in_one_attempt(&t, run, size, 8 << 20).await;
    assert_eq!(
        local_digest(&t, "cache/image", "1").await.as_deref(),
        Some(digest.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_leaves_it_to_another_that_completes_it() {
    let (up, digest, _) = upstream_with_a_big_image().await;
    let t = TestServer::start_with(Backend::PostgresS3, |c| {
        c.jobs.concurrency = 0;
        c.jobs.lease_secs = 3;
    })
    .await;
    let run = start_big_pull(&t, &up).await;
    // Another node, a `berth serve` process, runs the jobs.
    let var = |name: &str| std::env::var(name).expect("test S3 settings");
    let dir = tempfile::tempdir().expect("dir");
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
data_dir = "{data}"
admin_password = "{ADMIN_PASSWORD}"
log = "warn"
[database]
url = "{db}"
[jobs]
concurrency = 2
lease_secs = 3
[storage]
kind = "s3"
[storage.s3]
endpoint = "{endpoint}"
bucket = "{bucket}"
region = "{region}"
prefix = "{prefix}"
access_key_id = "{key}"
secret_access_key = "{secret}"
part_size_mib = 5
"#,
        port = free_addr().port(),
        data = dir.path().display(),
        db = t.database_url.as_deref().expect("postgres"),
        endpoint = var("BERTH_TEST_S3_ENDPOINT"),
        bucket = var("BERTH_TEST_S3_BUCKET"),
        region = var("BERTH_TEST_S3_REGION"),
        prefix = t.s3_prefix,
        key = var("BERTH_TEST_S3_ACCESS_KEY_ID"),
        secret = var("BERTH_TEST_S3_SECRET_ACCESS_KEY"),
    );
    let path = dir.path().join("berth.toml");
    std::fs::write(&path, config).expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start berth");
    // SIGKILL once it is copying the task.
    let mut killed = false;
    for _ in 0..3000 {
        let (_, v) = t
            .api(
                Method::GET,
                &format!("/api/v1/replication/tasks?run={run}"),
                None,
            )
            .await;
        if v["items"][0]["status"] == "running" && v["items"][0]["bytes_copied"] == 0 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            child.kill().expect("kill");
            killed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.wait();
    assert!(killed, "the process took the task");
    assert_eq!(
        local_digest(&t, "cache/image", "1").await,
        None,
        "killed mid-copy"
    );
    // This node takes the task once the lease runs out, and completes it.
    let worker = t.server.as_ref().expect("server").worker();
    let mut done = false;
    for _ in 0..200 {
        worker.run_ready().await.expect("run");
        if local_digest(&t, "cache/image", "1").await.is_some() {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done, "the task was leased again and completed");
    let v = finished_run(&t, run).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    let tasks = settled_tasks(&t, &format!("run={run}"), 1).await;
    assert_eq!(tasks[0]["attempts"], 2, "{tasks:?}");
    assert_eq!(
        local_digest(&t, "cache/image", "1").await.as_deref(),
        Some(digest.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_restarted_mid_push_gets_the_rest_of_the_blob() {
    let remote_addr = free_addr();
    let mut other = TestServer::start_with(Backend::Sqlite, |c| c.listen = remote_addr).await;
    let t = source_of(&other).await;
    let layer = content(100 << 20, 12);
    let size = layer.len() as u64;
    let (digest, _) = t.push_image("team/big", "1", &layer).await;
    drop(layer);
    // 20 MiB/s: chunks of 16 MiB, about five seconds for the layer.
    let rule = create_rule(
        &t,
        json!({"name": "big", "direction": "push", "remote": "other",
               "filters": {"repositories": {"include": ["team/big"]}},
               "bandwidth_kib": 20480}),
    )
    .await;
    let run = run_rule(&t, rule).await;
    let mut received = 0;
    for _ in 0..300 {
        received = other.uploads_bytes().await;
        if received >= 32 << 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(received >= 32 << 20, "the push got under way");
    // The remote restarts on the same address and data; its upload session
    // stays, and the push continues at the offset it reports.
    other.restart_with(|c| c.listen = remote_addr).await;
    resumed_in_one_attempt(&t, run, size, 16 << 20).await;
    assert_eq!(
        local_digest(&other, "team/big", "1").await.as_deref(),
        Some(digest.as_str())
    );
}
