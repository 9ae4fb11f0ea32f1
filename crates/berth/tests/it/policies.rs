//! Namespace policies over real HTTP, on SQLite and PostgreSQL: immutable
//! tags, the storage quota, and retention rules (dry runs, runs on demand
//! and on a schedule).

use std::time::Duration;

use crate::common::{anonymous_client, image_manifest, sha256, Backend, TestServer, OCI_MANIFEST};
use berth_core::{GcCause, GcOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn set_policy(t: &TestServer, ns: &str, policy: Value) -> Value {
    let (s, v) = t
        .api(
            Method::PUT,
            &format!("/api/v1/namespaces/{ns}/policies"),
            Some(policy),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Push a one-layer image with distinct content; returns the manifest digest.
async fn push(t: &TestServer, repo: &str, tag: &str, content: &str) -> reqwest::Response {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","c":"{content}"}}"#);
    let config_digest = t.push_blob(repo, config.as_bytes()).await;
    let layer = format!("layer {content}");
    let layer_digest = t.push_blob(repo, layer.as_bytes()).await;
    let manifest = image_manifest(
        &config_digest,
        config.len(),
        &[(layer_digest, layer.len())],
        None,
    );
    t.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await
}

async fn pushed(t: &TestServer, repo: &str, tag: &str, content: &str) -> String {
    let r = push(t, repo, tag, content).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    crate::common::header(&r, "docker-content-digest")
}

async fn oci_error(r: reqwest::Response, status: StatusCode, code: &str) -> String {
    let got = r.status();
    let v: Value = r.json().await.expect("json");
    assert_eq!(got, status, "{v}");
    assert_eq!(v["errors"][0]["code"], code, "{v}");
    v["errors"][0]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

async fn tags(t: &TestServer, repo: &str) -> Vec<String> {
    let v: Value = t
        .get(&format!("/v2/{repo}/tags/list"))
        .await
        .json()
        .await
        .expect("json");
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

async fn immutable_tags_cannot_move_or_go(b: Backend) {
    let t = TestServer::start_with(b, |c| {
        c.registry.tags_per_repository = 3;
        c.registry.tag_idle_secs = 0;
    })
    .await;
    let v1 = pushed(&t, "imm/app", "v1", "one").await;
    let policy = set_policy(&t, "imm", json!({"immutable_tags": ["v*", "release-?"]})).await;
    assert_eq!(policy["immutable_tags"], json!(["v*", "release-?"]));

    // Re-pushing the same image is fine; pointing the tag elsewhere is not.
    assert_eq!(pushed(&t, "imm/app", "v1", "one").await, v1);
    let message = oci_error(
        push(&t, "imm/app", "v1", "two").await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    assert!(
        message.contains("immutable") && message.contains("\"v*\""),
        "{message}"
    );
    let r = t.head("/v2/imm/app/manifests/v1").await;
    assert_eq!(crate::common::header(&r, "docker-content-digest"), v1);
    // Mutable tags still move.
    pushed(&t, "imm/app", "latest", "two").await;
    pushed(&t, "imm/app", "latest", "three").await;

    // Deletes through /v2 (by tag and by digest) and the API are refused.
    let message = oci_error(
        t.delete("/v2/imm/app/manifests/v1").await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    assert!(message.contains("cannot be deleted"), "{message}");
    oci_error(
        t.delete(&format!("/v2/imm/app/manifests/{v1}")).await,
        StatusCode::FORBIDDEN,
        "DENIED",
    )
    .await;
    for path in [
        "/api/v1/namespaces/imm/repositories/app/tags/v1",
        "/api/v1/namespaces/imm/repositories/app",
        "/api/v1/namespaces/imm?delete_all_images=true",
    ] {
        let (s, v) = t.api(Method::DELETE, path, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
        assert!(
            v["detail"].as_str().expect("detail").contains("immutable"),
            "{v}"
        );
    }
    // The tag limit evicts the earliest pushed idle tag, never an immutable one.
    pushed(&t, "imm/app", "a", "four").await;
    pushed(&t, "imm/app", "b", "five").await;
    assert_eq!(tags(&t, "imm/app").await, ["a", "b", "v1"]);

    // Without the rule, the tag moves and goes again.
    set_policy(&t, "imm", json!({})).await;
    pushed(&t, "imm/app", "v1", "six").await;
    assert_eq!(
        t.delete("/v2/imm/app/manifests/v1").await.status(),
        StatusCode::ACCEPTED
    );

    // Bad policies are refused with the reason.
    for (body, needle) in [
        (json!({"immutable_tags": ["v[0-9]"]}), "immutable tags"),
        (json!({"quota_bytes": 0}), "quota"),
        (
            json!({"retention": [{"keep_last": 1, "keep_days": 2}]}),
            "exactly one",
        ),
        (json!({"retention": [{"tags": "*"}]}), "exactly one"),
        (json!({"retention": [{"keep_last": 0}]}), "keep_last"),
        (json!({"immutable": ["v*"]}), "immutable"),
    ] {
        let (s, v) = t
            .api(
                Method::PUT,
                "/api/v1/namespaces/imm/policies",
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(
            v["detail"].as_str().expect("detail").contains(needle),
            "{body}: {v}"
        );
    }
    let (s, _) = t
        .api(Method::GET, "/api/v1/namespaces/nope/policies", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let r = anonymous_client()
        .get(t.url("/api/v1/namespaces/imm/policies"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn storage_quota_counts_each_blob_once(b: Backend) {
    let t = TestServer::start(b).await;
    t.push_blob("quota/seed", b"x").await; // creates the namespace
    let policy = set_policy(&t, "quota", json!({"quota_bytes": 1000})).await;
    assert_eq!(policy["quota_bytes"], 1000);
    assert_eq!(policy["used_bytes"], 1);

    let big = vec![b'a'; 600];
    let digest = t.push_blob("quota/one", &big).await;
    // The same blob in another image of the namespace costs nothing more.
    t.push_blob("quota/two", &big).await;
    let r = t
        .client
        .post(t.url(&format!(
            "/v2/quota/three/blobs/uploads/?mount={digest}&from=quota/one"
        )))
        .send()
        .await
        .expect("mount");
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, v) = t
        .api(Method::GET, "/api/v1/namespaces/quota/policies", None)
        .await;
    assert_eq!(v["used_bytes"], 601, "{v}");

    // A new blob past the quota is refused, by upload and by mount.
    let other = vec![b'b'; 600];
    let loc = t.start_upload("quota/one").await;
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = t
        .client
        .put(format!("{loc}{sep}digest={}", sha256(&other)))
        .body(other.clone())
        .send()
        .await
        .expect("put");
    let message = oci_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    assert!(
        message.contains("storage quota of namespace quota exceeded"),
        "{message}"
    );
    assert!(message.contains("601 of 1000"), "{message}");
    // Its upload session is over.
    assert_eq!(
        t.client.get(&loc).send().await.expect("status").status(),
        StatusCode::NOT_FOUND
    );
    // The refused bytes are linked nowhere: the collector reclaims them.
    let run = t
        .collector()
        .run(GcOptions {
            dry_run: false,
            full_sweep: false,
            cause: GcCause::Cli,
            actor: "test".into(),
        })
        .await
        .expect("gc");
    assert_eq!(
        (run.counts.blobs_deleted, run.counts.bytes_reclaimed),
        (1, 600),
        "{run:?}"
    );
    let elsewhere = t.push_blob("other/one", &other).await;
    let r = t
        .client
        .post(t.url(&format!(
            "/v2/quota/one/blobs/uploads/?mount={elsewhere}&from=other/one"
        )))
        .send()
        .await
        .expect("mount");
    oci_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    let r = t.head(&format!("/v2/quota/one/blobs/{elsewhere}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Small blobs still fit.
    t.push_blob("quota/one", b"small").await;
    // Raising the quota lets the push through.
    set_policy(&t, "quota", json!({"quota_bytes": 5000})).await;
    t.push_blob("quota/one", &other).await;
    let (_, v) = t
        .api(Method::GET, "/api/v1/namespaces/quota/policies", None)
        .await;
    assert_eq!(v["used_bytes"], 1206, "{v}");

    // Concurrent uploads cannot pass the quota together: room for three of six.
    set_policy(&t, "quota", json!({"quota_bytes": 1206 + 900})).await;
    let uploads = (0..6u8).map(|i| {
        let t = &t;
        async move {
            let data = vec![b'0' + i; 300];
            let loc = t.start_upload(&format!("quota/c{i}")).await;
            let sep = if loc.contains('?') { '&' } else { '?' };
            t.client
                .put(format!("{loc}{sep}digest={}", sha256(&data)))
                .body(data)
                .send()
                .await
                .expect("put")
                .status()
        }
    });
    let statuses = futures_util::future::join_all(uploads).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::FORBIDDEN)
        .count();
    assert_eq!((created, refused), (3, 3), "{statuses:?}");
    let (_, v) = t
        .api(Method::GET, "/api/v1/namespaces/quota/policies", None)
        .await;
    assert_eq!(v["used_bytes"], 2106, "{v}");
}

async fn retention_rules_dry_run_then_delete(b: Backend) {
    let t = TestServer::start(b).await;
    for tag in ["1", "2", "3", "4", "5", "dev-a", "dev-b"] {
        pushed(&t, "ret/app", tag, &format!("app {tag}")).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pushed(&t, "ret/other", "x", "other x").await;
    pushed(&t, "ret/untouched", "y", "untouched y").await;
    // A pull makes tag 1 the most recently active.
    let r = t.get("/v2/ret/app/manifests/1").await;
    assert_eq!(r.status(), StatusCode::OK);
    set_policy(
        &t,
        "ret",
        json!({
            "immutable_tags": ["5"],
            "retention": [
                {"repositories": "app", "tags": "*", "keep_last": 3},
                {"repositories": "oth*", "keep_days": 1},
            ]
        }),
    )
    .await;

    let (s, dry) = t
        .api(
            Method::POST,
            "/api/v1/namespaces/ret/retention/run",
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{dry}");
    let listed: Vec<&str> = dry["deleted"]
        .as_array()
        .expect("deleted")
        .iter()
        .map(|d| d["tag"].as_str().expect("tag"))
        .collect();
    assert_eq!(listed, ["2", "3", "4"], "{dry}");
    assert_eq!(dry["kept"], 6);
    assert_eq!(
        tags(&t, "ret/app").await.len(),
        7,
        "a dry run deletes nothing"
    );

    let (s, run) = t
        .api(
            Method::POST,
            "/api/v1/namespaces/ret/retention/run",
            Some(json!({"dry_run": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["dry_run"], false);
    assert_eq!(run["deleted"].as_array().map(Vec::len), Some(3), "{run}");
    assert_eq!(tags(&t, "ret/app").await, ["1", "5", "dev-a", "dev-b"]);
    assert_eq!(tags(&t, "ret/other").await, ["x"]);
    assert_eq!(tags(&t, "ret/untouched").await, ["y"]);
    let (_, audit) = t
        .api(Method::GET, "/api/v1/audit-log?action=tag.retention", None)
        .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(3), "{audit}");
    let (_, audit) = t
        .api(
            Method::GET,
            "/api/v1/audit-log?action=namespace.retention",
            None,
        )
        .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(2), "{audit}");

    // Nothing left to do.
    let (_, again) = t
        .api(
            Method::POST,
            "/api/v1/namespaces/ret/retention/run",
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(again["deleted"], json!([]));
    let (s, _) = t
        .api(
            Method::POST,
            "/api/v1/namespaces/ret/retention/run",
            Some(json!({"dryrun": true})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Leaving dry_run out never deletes anything.
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/namespaces/ret/retention/run",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"].as_str().expect("detail").contains("dry_run"),
        "{v}"
    );
}

async fn retention_runs_on_a_schedule(b: Backend) {
    let t = TestServer::start_with(b, |c| c.gc.retention_interval_secs = 1).await;
    for tag in ["old", "new"] {
        pushed(&t, "sched/app", tag, tag).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    set_policy(&t, "sched", json!({"retention": [{"keep_last": 1}]})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tags(&t, "sched/app").await != ["new"] {
        assert!(
            std::time::Instant::now() < deadline,
            "the schedule did not apply the rules"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, audit) = t
        .api(Method::GET, "/api/v1/audit-log?action=tag.retention", None)
        .await;
    assert_eq!(audit["items"][0]["actor"], "system", "{audit}");
}

backend_tests!(
    immutable_tags_cannot_move_or_go,
    storage_quota_counts_each_blob_once,
    retention_rules_dry_run_then_delete,
    retention_runs_on_a_schedule,
);
