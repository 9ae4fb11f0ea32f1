//! Crash safety: the real `berth` binary is killed with SIGKILL while
//! clients push blobs (monolithic and chunked) and manifests, then started
//! again on the same data. Everything the server acknowledged must be intact
//! and pullable, nothing partial may ever be served, and unfinished uploads
//! must either resume or be cleanly gone.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use reqwest::StatusCode;
use tokio::process::{Child, Command};

struct Node {
    child: Child,
    base: String,
}

async fn start_node(data_dir: &std::path::Path, port: u16) -> Node {
    let child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("serve")
        .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
        .env("BERTH_DATA_DIR", data_dir)
        .env("BERTH_LOG", "warn")
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn berth");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            return Node { child, base };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("berth did not come up on port {port}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// What the server acknowledged, and what it was asked but did not answer.
#[derive(Default)]
struct Ledger {
    /// digest -> content, acknowledged with 201.
    blobs: HashMap<String, Vec<u8>>,
    /// digest -> content, attempted but never acknowledged.
    attempted: HashMap<String, Vec<u8>>,
    /// (repo, tag) -> (manifest digest, manifest bytes), acknowledged.
    manifests: Vec<(String, String, String, Vec<u8>)>,
    /// (repo, upload location, bytes acknowledged, full content).
    partial_uploads: Vec<(String, String, u64, Vec<u8>)>,
}

fn content(worker: usize, round: usize, i: usize, len: usize) -> Vec<u8> {
    let seed = format!("w{worker}-r{round}-i{i}-");
    seed.bytes().cycle().take(len).collect()
}

async fn worker(
    base: String,
    id: usize,
    round: usize,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let client = client_as("admin", ADMIN_PASSWORD);
    let repo = format!("crash/w{id}");
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let layer = content(id, round, i, 200_000 + i * 1000);
        let config = content(id, round, i + 100_000, 300);
        let mut pushed = Vec::new();
        for (n, data) in [&config, &layer].into_iter().enumerate() {
            let digest = sha256(data);
            ledger
                .lock()
                .expect("ledger")
                .attempted
                .insert(digest.clone(), data.clone());
            let Ok(r) = client
                .post(format!("{base}/v2/{repo}/blobs/uploads/"))
                .send()
                .await
            else {
                return;
            };
            let Some(loc) = r
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(|l| format!("{base}{l}"))
            else {
                return;
            };
            let ok = if n == 0 || i % 2 == 0 {
                matches!(client.put(format!("{loc}?digest={digest}")).body(data.clone()).send().await, Ok(r) if r.status() == StatusCode::CREATED)
            } else {
                // Chunked: three PATCHes, then an empty closing PUT.
                let third = data.len() / 3;
                let mut offset = 0;
                let mut ok = true;
                for end in [third, 2 * third, data.len()] {
                    let r = client
                        .patch(&loc)
                        .header("content-range", format!("{offset}-{}", end - 1))
                        .body(data[offset..end].to_vec())
                        .send()
                        .await;
                    if !matches!(r, Ok(ref r) if r.status() == StatusCode::ACCEPTED) {
                        ok = false;
                        break;
                    }
                    offset = end;
                    if end < data.len() {
                        ledger.lock().expect("ledger").partial_uploads.push((
                            repo.clone(),
                            loc.clone(),
                            end as u64,
                            data.clone(),
                        ));
                    }
                }
                ok && matches!(client.put(format!("{loc}?digest={digest}")).send().await, Ok(r) if r.status() == StatusCode::CREATED)
            };
            if !ok {
                return;
            }
            ledger
                .lock()
                .expect("ledger")
                .blobs
                .insert(digest.clone(), data.clone());
            pushed.push((digest, data.len()));
        }
        let manifest = image_manifest(&pushed[0].0, pushed[0].1, &[pushed[1].clone()], None);
        let tag = format!("r{round}-i{i}");
        let r = client
            .put(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone())
            .send()
            .await;
        match r {
            Ok(r) if r.status() == StatusCode::CREATED => {
                ledger.lock().expect("ledger").manifests.push((
                    repo.clone(),
                    tag,
                    sha256(&manifest),
                    manifest,
                ));
            }
            _ => return,
        }
    }
}

async fn verify(base: &str, ledger: &Ledger) {
    let client = client_as("admin", ADMIN_PASSWORD);
    // Every acknowledged manifest, by tag and by digest, with all its blobs.
    for (repo, tag, digest, bytes) in &ledger.manifests {
        for reference in [tag.as_str(), digest.as_str()] {
            let r = client
                .get(format!("{base}/v2/{repo}/manifests/{reference}"))
                .send()
                .await
                .expect("get");
            assert_eq!(r.status(), StatusCode::OK, "{repo}:{reference} lost");
            assert_eq!(
                &r.bytes().await.expect("b").to_vec(),
                bytes,
                "{repo}:{reference} corrupt"
            );
        }
        let m: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        let mut refs = vec![m["config"]["digest"].as_str().expect("config").to_owned()];
        refs.extend(
            m["layers"]
                .as_array()
                .expect("layers")
                .iter()
                .map(|l| l["digest"].as_str().expect("d").to_owned()),
        );
        for d in refs {
            let r = client
                .get(format!("{base}/v2/{repo}/blobs/{d}"))
                .send()
                .await
                .expect("get");
            assert_eq!(r.status(), StatusCode::OK, "blob {d} of {repo}:{tag} lost");
            assert_eq!(sha256(&r.bytes().await.expect("b")), d, "blob {d} corrupt");
        }
    }
    // Acknowledged blobs are whole; unacknowledged ones are absent or whole.
    for (d, data) in ledger.blobs.iter().chain(ledger.attempted.iter()) {
        let acknowledged = ledger.blobs.contains_key(d);
        let mut found = false;
        for w in 0..4 {
            let r = client
                .get(format!("{base}/v2/crash/w{w}/blobs/{d}"))
                .send()
                .await
                .expect("get");
            if r.status() == StatusCode::OK {
                found = true;
                assert_eq!(
                    &r.bytes().await.expect("b").to_vec(),
                    data,
                    "partial or wrong blob {d} served"
                );
            }
        }
        assert!(found || !acknowledged, "acknowledged blob {d} lost");
    }
    // Unfinished uploads resume from what the server reports, or are gone.
    for (repo, loc, _acked, data) in &ledger.partial_uploads {
        let r = client.get(loc).send().await.expect("status");
        match r.status() {
            StatusCode::NOT_FOUND => {}
            StatusCode::NO_CONTENT => {
                let range = r
                    .headers()
                    .get("range")
                    .and_then(|v| v.to_str().ok())
                    .expect("range")
                    .to_owned();
                let have: usize = range
                    .split('-')
                    .nth(1)
                    .and_then(|e| e.parse::<usize>().ok())
                    .map(|e| e + 1)
                    .expect("end");
                let have = if range == "0-0" { 0 } else { have };
                assert!(have <= data.len(), "upload reports more than was sent");
                let digest = sha256(data);
                let mut put = client.put(format!("{loc}?digest={digest}"));
                if have < data.len() {
                    put = put
                        .header("content-range", format!("{have}-{}", data.len() - 1))
                        .body(data[have..].to_vec());
                }
                let r = put.send().await.expect("put");
                assert_eq!(
                    r.status(),
                    StatusCode::CREATED,
                    "resuming {loc} at {have}: {:?}",
                    r.text().await
                );
                let got = client
                    .get(format!("{base}/v2/{repo}/blobs/{digest}"))
                    .send()
                    .await
                    .expect("get")
                    .bytes()
                    .await
                    .expect("b");
                assert_eq!(got.to_vec(), *data, "resumed upload corrupt");
            }
            other => panic!("upload {loc} answers {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_pushes_then_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut node = start_node(dir.path(), port).await;
    for (round, delay_ms) in [(0usize, 700u64), (1, 450), (2, 900)] {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|w| {
                tokio::spawn(worker(
                    node.base.clone(),
                    w,
                    round,
                    ledger.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        node.child.start_kill().expect("kill -9");
        node.child.wait().await.expect("reap");
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await.expect("worker");
        }
        node = start_node(dir.path(), port).await;
        let snapshot = {
            let mut l = ledger.lock().expect("ledger");
            assert!(
                !l.manifests.is_empty(),
                "round {round}: the workers got nothing acknowledged before the kill"
            );
            Ledger {
                blobs: l.blobs.clone(),
                attempted: l.attempted.clone(),
                manifests: l.manifests.clone(),
                // Uploads are checked (and finished) once, after the kill that interrupted them.
                partial_uploads: std::mem::take(&mut l.partial_uploads),
            }
        };
        verify(&node.base, &snapshot).await;
    }
    node.child.start_kill().expect("kill");
}

/// SIGTERM: the server stops accepting, lets an in-flight upload finish,
/// writes pending pull counts and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_flushes_counts() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let node = start_node(dir.path(), port).await;
    let client = client_as("admin", ADMIN_PASSWORD);
    let base = node.base.clone();
    // An image, pulled three times (counted in memory only: the flush interval is 2 s,
    // so make the pulls and the shutdown well within one interval of each other).
    let config = b"{}".to_vec();
    let cd = sha256(&config);
    let r = client
        .post(format!("{base}/v2/g/blobs/uploads/?digest={cd}"))
        .body(config.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::CREATED);
    let manifest = image_manifest(&cd, config.len(), &[], None);
    let r = client
        .put(format!("{base}/v2/g/manifests/v1"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    // An upload whose body is still streaming when the signal arrives.
    let r = client
        .post(format!("{base}/v2/g/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    let loc = format!("{base}{}", header(&r, "location"));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let patch = tokio::spawn({
        let client = client.clone();
        let loc = loc.clone();
        async move { client.patch(&loc).body(body).send().await }
    });
    tx.send(Ok(bytes::Bytes::from(vec![1u8; 100_000])))
        .await
        .expect("send");
    for _ in 0..3 {
        assert_eq!(
            client
                .get(format!("{base}/v2/g/manifests/v1"))
                .send()
                .await
                .expect("get")
                .status(),
            StatusCode::OK
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = node.child.id().expect("pid");
    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .expect("kill");
    assert!(kill.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are refused while the in-flight request finishes.
    assert!(
        reqwest::Client::new()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err(),
        "still accepting after SIGTERM"
    );
    tx.send(Ok(bytes::Bytes::from(vec![2u8; 50_000])))
        .await
        .expect("send");
    drop(tx);
    let r = patch
        .await
        .expect("join")
        .expect("in-flight request completed");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-149999");
    let mut child = node.child;
    let status = child.wait().await.expect("wait");
    assert!(status.success(), "exit status {status}");
    // The counts reached the database.
    let db = sqlx::sqlite::SqlitePoolOptions::new()
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("berth.db")),
        )
        .await
        .expect("open db");
    let (count,): (i64,) = sqlx::query_as("SELECT pull_count FROM tags WHERE name = 'v1'")
        .fetch_one(&db)
        .await
        .expect("row");
    assert_eq!(count, 3);
}
