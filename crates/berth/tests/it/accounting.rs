//! Exact accounting: after a randomised mix of concurrent pushes (some
//! refused by the project group's quota or by a collection that took
//! their layers first), cross-repository mounts, deletes, failed and
//! abandoned uploads and garbage collections, every namespace's and the
//! project group's usage equal a full recount: of what the test itself
//! knows it stored, and of what the registry serves. Usage never passes
//! the quota. A link lost outside Berth is restored by the next
//! collection, which audits it.
//!
//! The mix is drawn from a seed printed by the test (`BERTH_TEST_SEED`
//! replays one).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

backend_tests!(s3: usage_equals_a_full_recount_after_a_random_concurrent_mix);

const NAMESPACES: [&str; 2] = ["tenant-a", "tenant-b"];
const REPOS: [&str; 2] = ["app", "web"];
const QUOTA: i64 = 800_000;
const WORKERS: u64 = 4;
const OPS: usize = 40;

/// A small deterministic generator (xorshift64*), so a seed replays a mix.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// An image the registry acknowledged: its repository and blobs (digest,
/// size), config first.
#[derive(Debug, Clone)]
struct Image {
    repo: String,
    digest: String,
    blobs: Vec<(String, i64)>,
}

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    (0..len).map(|_| r.next() as u8).collect()
}

/// A monolithic upload: the status (201; 403 over the quota; 503 or 429
/// while a collection deletes a blob of that digest).
async fn upload(t: &TestServer, c: &reqwest::Client, repo: &str, data: &[u8]) -> StatusCode {
    c.post(t.url(&format!(
        "/v2/{repo}/blobs/uploads/?digest={}",
        sha256(data)
    )))
    .header("content-type", "application/octet-stream")
    .body(data.to_vec())
    .send()
    .await
    .expect("upload")
    .status()
}

/// One worker's share of the mix.
async fn worker(
    t: Arc<TestServer>,
    tenant: reqwest::Client,
    seed: u64,
    live: Arc<Mutex<Vec<Image>>>,
) -> BTreeMap<&'static str, usize> {
    let mut rng = Rng(seed);
    let mut done = BTreeMap::new();
    // Layers shared by many images (and both namespaces).
    let shared: Vec<Vec<u8>> = (0..10)
        .map(|i| bytes(2_000 + 1_500 * i, 1_000 + i as u64))
        .collect();
    for op in 0..OPS {
        let repo = format!("{}/{}", NAMESPACES[rng.below(2)], REPOS[rng.below(2)]);
        let kind = match rng.below(10) {
            0..=4 => "push",
            5 => "mount",
            6 => "delete",
            7 => "failed upload",
            8 => "abandoned upload",
            _ => "collect",
        };
        let outcome = match kind {
            "push" => {
                let unique = bytes(5_000 + rng.below(40_000), seed << 16 | op as u64);
                let mut layers = vec![unique];
                for _ in 0..rng.below(3) {
                    layers.push(shared[rng.below(shared.len())].clone());
                }
                let config =
                    format!(r#"{{"architecture":"amd64","os":"linux","n":"{seed}-{op}"}}"#);
                let mut blobs = vec![(sha256(config.as_bytes()), config.len() as i64)];
                let mut refused = upload(&t, &tenant, &repo, config.as_bytes()).await;
                for l in &layers {
                    if refused != StatusCode::CREATED {
                        break;
                    }
                    refused = upload(&t, &tenant, &repo, l).await;
                    blobs.push((sha256(l), l.len() as i64));
                }
                if refused == StatusCode::FORBIDDEN {
                    "push refused by the quota"
                } else if refused != StatusCode::CREATED {
                    assert!(
                        refused == StatusCode::SERVICE_UNAVAILABLE
                            || refused == StatusCode::TOO_MANY_REQUESTS,
                        "upload: {refused}"
                    );
                    "push refused: a layer was being collected"
                } else {
                    let refs: Vec<(String, usize)> = blobs[1..]
                        .iter()
                        .map(|(d, s)| (d.clone(), *s as usize))
                        .collect();
                    let manifest = image_manifest(&blobs[0].0, blobs[0].1 as usize, &refs, None);
                    let r = t
                        .put_manifest_as(
                            &tenant,
                            &repo,
                            &format!("t{seed}-{op}"),
                            OCI_MANIFEST,
                            &manifest,
                        )
                        .await;
                    match r.status() {
                        StatusCode::CREATED => {
                            live.lock().unwrap().push(Image {
                                repo: repo.clone(),
                                digest: sha256(&manifest),
                                blobs,
                            });
                            "push"
                        }
                        // A collection (grace 0) took an unreferenced layer first.
                        s => {
                            let body = r.text().await.unwrap_or_default();
                            assert!(
                                s == StatusCode::BAD_REQUEST
                                    && body.contains("MANIFEST_BLOB_UNKNOWN"),
                                "manifest: {s} {body}"
                            );
                            "push refused: a layer was collected"
                        }
                    }
                }
            }
            "mount" => {
                let from = {
                    let live = live.lock().unwrap();
                    (!live.is_empty()).then(|| live[rng.below(live.len())].clone())
                };
                match from {
                    Some(img) => {
                        let (digest, _) = &img.blobs[rng.below(img.blobs.len())];
                        let r = tenant
                            .post(t.url(&format!(
                                "/v2/{repo}/blobs/uploads/?mount={digest}&from={}",
                                img.repo
                            )))
                            .send()
                            .await
                            .expect("mount");
                        // Mounted, over quota, or the image went meanwhile
                        // (an upload session is offered instead).
                        assert!(
                            [
                                StatusCode::CREATED,
                                StatusCode::ACCEPTED,
                                StatusCode::FORBIDDEN
                            ]
                            .contains(&r.status()),
                            "mount: {}",
                            r.status()
                        );
                        "mount"
                    }
                    None => "mount (nothing yet)",
                }
            }
            "delete" => {
                let victim = {
                    let mut live = live.lock().unwrap();
                    (!live.is_empty()).then(|| {
                        let i = rng.below(live.len());
                        live.swap_remove(i)
                    })
                };
                match victim {
                    Some(img) => {
                        let r = tenant
                            .delete(t.url(&format!("/v2/{}/manifests/{}", img.repo, img.digest)))
                            .send()
                            .await
                            .expect("delete");
                        assert_eq!(r.status(), StatusCode::ACCEPTED, "delete {}", img.digest);
                        "delete"
                    }
                    None => "delete (nothing yet)",
                }
            }
            "failed upload" => {
                let data = bytes(3_000, seed << 20 | op as u64);
                let r = tenant
                    .post(t.url(&format!(
                        "/v2/{repo}/blobs/uploads/?digest={}",
                        sha256(b"not these bytes")
                    )))
                    .body(data)
                    .send()
                    .await
                    .expect("upload");
                assert_eq!(r.status(), StatusCode::BAD_REQUEST, "wrong digest");
                "failed upload"
            }
            "abandoned upload" => {
                let r = tenant
                    .post(t.url(&format!("/v2/{repo}/blobs/uploads/")))
                    .send()
                    .await
                    .expect("start");
                assert_eq!(r.status(), StatusCode::ACCEPTED);
                let at = t.resolve(&header(&r, "location"));
                let r = tenant
                    .patch(at)
                    .header("content-type", "application/octet-stream")
                    .body(bytes(4_000, seed << 24 | op as u64))
                    .send()
                    .await
                    .expect("patch");
                assert_eq!(r.status(), StatusCode::ACCEPTED);
                "abandoned upload"
            }
            _ => {
                let (s, v) = t
                    .api(
                        Method::POST,
                        "/api/v1/gc/runs",
                        Some(json!({"dry_run": false})),
                    )
                    .await;
                // One run at a time: a concurrent request is told so.
                assert!(
                    s == StatusCode::ACCEPTED || s == StatusCode::CONFLICT,
                    "{s} {v}"
                );
                "collect"
            }
        };
        *done.entry(outcome).or_default() += 1;
    }
    done
}

/// Run a collection through the API to its end (waiting for any running);
/// its record.
async fn collect_all(t: &TestServer) -> Value {
    for _ in 0..600 {
        let (s, v) = t
            .api(
                Method::POST,
                "/api/v1/gc/runs",
                Some(json!({"dry_run": false})),
            )
            .await;
        if s == StatusCode::CONFLICT {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let id = v["id"].as_i64().expect("id");
        loop {
            let (_, run) = t
                .api(Method::GET, &format!("/api/v1/gc/runs/{id}"), None)
                .await;
            if run["status"] != "running" {
                assert_eq!(run["status"], "finished", "{run}");
                return run;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    panic!("no collection could start");
}

/// What the registry serves in `ns`: the images its tags name (by their
/// configs) and the bytes of their distinct blobs, each checked served.
async fn served(t: &TestServer, tenant: &reqwest::Client, ns: &str) -> (BTreeSet<String>, i64) {
    let mut configs = BTreeSet::new();
    let mut blobs = BTreeMap::new();
    for repo in REPOS {
        let repo = format!("{ns}/{repo}");
        let r = tenant
            .get(t.url(&format!("/v2/{repo}/tags/list?n=10000")))
            .send()
            .await
            .expect("tags");
        if r.status() == StatusCode::NOT_FOUND {
            continue;
        }
        let tags: Value = r.json().await.expect("tags json");
        for tag in tags["tags"].as_array().into_iter().flatten() {
            let tag = tag.as_str().expect("tag");
            let r = tenant
                .get(t.url(&format!("/v2/{repo}/manifests/{tag}")))
                .header("accept", OCI_MANIFEST)
                .send()
                .await
                .expect("manifest");
            assert_eq!(r.status(), StatusCode::OK, "{repo}:{tag}");
            let m: Value = r.json().await.expect("manifest json");
            // Each image has a config of its own: it names the image.
            configs.insert(m["config"]["digest"].as_str().expect("config").to_owned());
            let config = &m["config"];
            for d in std::iter::once(config).chain(m["layers"].as_array().into_iter().flatten()) {
                let digest = d["digest"].as_str().expect("digest").to_owned();
                // Every blob counted is one the registry serves.
                let r = tenant
                    .head(t.url(&format!("/v2/{repo}/blobs/{digest}")))
                    .send()
                    .await
                    .expect("head");
                assert_eq!(r.status(), StatusCode::OK, "{repo} {digest}");
                blobs.insert(digest, d["size"].as_i64().expect("size"));
            }
        }
    }
    (configs, blobs.values().sum())
}

async fn usage_equals_a_full_recount_after_a_random_concurrent_mix(b: Backend) {
    let seed: u64 = std::env::var("BERTH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos() as u64
                | 1
        });
    eprintln!("accounting mix seed: BERTH_TEST_SEED={seed}");
    let t = Arc::new(TestServer::start_with(b, |c| c.gc.grace_secs = 0).await);
    let tenant = create_account(&t, "tenant").await;
    let (s, v) = t
        .api(
            Method::PATCH,
            "/api/v1/project-groups/tenant",
            Some(json!({"storage_quota_bytes": QUOTA})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let live = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(worker(
                t.clone(),
                tenant.clone(),
                seed.wrapping_add(w * 0x1234_5678_9abc),
                live.clone(),
            ))
        })
        .collect();
    let mut done: BTreeMap<&str, usize> = BTreeMap::new();
    for task in tasks {
        for (k, n) in task.await.expect("worker") {
            *done.entry(k).or_default() += n;
        }
    }
    eprintln!("accounting mix: {done:?}");
    assert!(done.get("push").copied().unwrap_or(0) > 0, "{done:?}");

    // Quiet now: one collection takes every unreferenced link and blob.
    collect_all(&t).await;
    let live = live.lock().unwrap().clone();
    let mut group_total = 0;
    for ns in NAMESPACES {
        // The test's own recount: distinct blobs of the images it knows live.
        let mine: BTreeMap<&str, i64> = live
            .iter()
            .filter(|i| i.repo.starts_with(&format!("{ns}/")))
            .flat_map(|i| i.blobs.iter().map(|(d, s)| (d.as_str(), *s)))
            .collect();
        let expected: i64 = mine.values().sum();
        let configs: BTreeSet<String> = live
            .iter()
            .filter(|i| i.repo.starts_with(&format!("{ns}/")))
            .map(|i| i.blobs[0].0.clone())
            .collect();
        // The registry's recount: what it serves.
        let (served_configs, served_bytes) = served(&t, &tenant, ns).await;
        assert_eq!(
            served_configs, configs,
            "{ns}: the images served are those acknowledged"
        );
        assert_eq!(served_bytes, expected, "{ns}: served bytes");
        let (s, v) = t
            .api(
                Method::GET,
                &format!("/api/v1/namespaces/{ns}/policies"),
                None,
            )
            .await;
        if s == StatusCode::NOT_FOUND {
            assert_eq!(expected, 0, "{ns} holds images but does not exist");
            continue;
        }
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            v["used_bytes"].as_i64(),
            Some(expected),
            "{ns} usage drifted: {v}"
        );
        group_total += expected;
    }
    let (_, v) = t
        .api(Method::GET, "/api/v1/project-groups/tenant", None)
        .await;
    assert_eq!(
        v["storage_used_bytes"].as_i64(),
        Some(group_total),
        "group usage drifted: {v}"
    );
    assert!(group_total <= QUOTA, "{group_total} over the quota");

    // A link lost outside Berth (a database edited by hand) shows as usage
    // that dropped; the next collection restores it and says so.
    let (s, _) = t
        .api(
            Method::PATCH,
            "/api/v1/project-groups/tenant",
            Some(json!({"storage_quota_bytes": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let layer = bytes(12_345, seed ^ 0xdead_beef);
    t.push_image_as(&tenant, "tenant-a/app", "reconcile", &layer)
        .await;
    let before = used(&t, "tenant-a").await;
    let digest = sha256(&layer);
    sql_elsewhere(
        &t,
        &format!(
            "DELETE FROM repository_blobs WHERE digest = '{digest}' \
             AND repo_id = (SELECT id FROM repositories WHERE name = 'tenant-a/app')"
        ),
    )
    .await;
    assert_eq!(used(&t, "tenant-a").await, before - layer.len() as i64);
    let run = collect_all(&t).await;
    assert_eq!(run["links_restored"], 1, "{run}");
    assert_eq!(
        run["blobs_deleted"], 0,
        "the layer is still referenced: {run}"
    );
    assert_eq!(used(&t, "tenant-a").await, before);
    let (_, audit) = t
        .api(
            Method::GET,
            "/api/v1/audit-log?action=gc.links_restored",
            None,
        )
        .await;
    let detail = audit["items"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("tenant-a/app@{digest}")),
        "{audit}"
    );
    let r = tenant
        .get(t.url(&format!("/v2/tenant-a/app/blobs/{digest}")))
        .send()
        .await
        .expect("pull");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(sha256(&r.bytes().await.expect("layer")), digest);
    // Once restored, there is nothing to restore.
    assert_eq!(collect_all(&t).await["links_restored"], 0);
}

/// A namespace's usage as its policy reports it.
async fn used(t: &TestServer, ns: &str) -> i64 {
    let (s, v) = t
        .api(
            Method::GET,
            &format!("/api/v1/namespaces/{ns}/policies"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["used_bytes"].as_i64().expect("used_bytes")
}
