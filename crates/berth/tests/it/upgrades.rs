//! Upgrades with two builds: the previous release's `berth` (built once by
//! scripts/test-env.sh from the commit scripts/previous-release names)
//! writes a registry, and this build serves it after migrating; and on
//! one PostgreSQL database and bucket, a node of each serves side by side
//! while this build's node migrates the schema under the old one.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::process::{serve_process, ServeProcess};
use crate::common::*;
use crate::gc::berth_command_of;

backend_tests!(s3: a_registry_the_previous_release_wrote_is_served_by_this_one);

fn previous_bin() -> PathBuf {
    std::env::var_os("BERTH_TEST_PREVIOUS_BIN")
        .expect("BERTH_TEST_PREVIOUS_BIN is not set: run the suite with scripts/test.sh")
        .into()
}

/// A node of the previous release on `t`'s data, ready.
async fn previous_node(t: &TestServer) -> ServeProcess {
    serve_process(berth_command_of(&previous_bin(), t, &["serve"])).await
}

/// `t` pointed at `base` (the test helpers speak to whatever serves there).
fn at(t: &TestServer, base: &str) -> TestServer {
    TestServer {
        server: None,
        base: base.to_owned(),
        client: client_as("admin", ADMIN_PASSWORD),
        dir: tempfile::tempdir().unwrap(),
        backend: t.backend,
        database_url: t.database_url.clone(),
        s3_prefix: t.s3_prefix.clone(),
    }
}

/// An image pulls byte-exact: its manifest by tag and each of its blobs.
async fn assert_pulls(t: &TestServer, repo: &str, tag: &str, manifest: &[u8], layer: &[u8]) {
    let r = t.get(&format!("/v2/{repo}/manifests/{tag}")).await;
    assert_eq!(r.status(), StatusCode::OK, "{repo}:{tag} at {}", t.base);
    assert_eq!(r.bytes().await.unwrap().as_ref(), manifest);
    let r = t.get(&format!("/v2/{repo}/blobs/{}", sha256(layer))).await;
    assert_eq!(r.status(), StatusCode::OK, "{repo} layer at {}", t.base);
    assert_eq!(r.bytes().await.unwrap().as_ref(), layer);
}

async fn schema_of(t: &TestServer) -> i64 {
    let health: Value = t.get("/healthz").await.json().await.expect("JSON");
    health["schema_version"].as_i64().expect("schema_version")
}

async fn a_registry_the_previous_release_wrote_is_served_by_this_one(b: Backend) {
    let mut t = TestServer::unstarted(b).await;
    let (images, tenant_image) = {
        let node = previous_node(&t).await;
        let old = at(&t, &node.base);
        let mut images = Vec::new();
        for n in 0..3 {
            let layer = format!("layer {n} written by the previous release").repeat(500);
            let (_, manifest) = old
                .push_image("lib/app", &format!("v{n}"), layer.as_bytes())
                .await;
            images.push((format!("v{n}"), manifest, layer.into_bytes()));
        }
        // A tenant with a password, a namespace of their own and an image.
        let tenant = create_account(&old, "tenant").await;
        let layer = b"the tenant's layer".repeat(100);
        let (_, manifest) = old
            .push_image_as(&tenant, "tenant-a/app", "v1", &layer)
            .await;
        (images, (manifest, layer))
        // The previous release stops here.
    };

    t.restart().await;
    assert_eq!(schema_of(&t).await, berth_meta::SCHEMA_VERSION);
    for (tag, manifest, layer) in &images {
        assert_pulls(&t, "lib/app", tag, manifest, layer).await;
    }
    // The tenant's password (hashed by the previous release) still signs in,
    // their image pulls for them, and they push again.
    let tenant = client_as("tenant", "a-long-password");
    let r = tenant
        .get(t.url("/v2/tenant-a/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &tenant_image.0[..]);
    t.push_image_as(&tenant, "tenant-a/app", "v2", b"after the upgrade")
        .await;
    // Nothing is damaged, dangling or orphaned.
    let (s, run) = t
        .api(Method::POST, "/api/v1/integrity/runs", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{run}");
    let path = format!("/api/v1/integrity/runs/{}", run["id"]);
    let run = loop {
        let (_, run) = t.api(Method::GET, &path, None).await;
        if run["status"] != "running" {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["status"], "succeeded", "{run}");
    for kind in ["damaged", "missing", "dangling", "orphans"] {
        assert_eq!(run[kind], 0, "{kind}: {run}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_the_previous_and_this_release_serve_side_by_side() {
    let t = TestServer::unstarted(Backend::PostgresS3).await;
    let node = previous_node(&t).await;
    let old = at(&t, &node.base);
    // Two builds indeed: the previous release's liveness answer is plain.
    assert_eq!(old.get("/healthz").await.text().await.unwrap(), "ok\n");
    let layer_a = b"pushed to the old node before the upgrade".repeat(50);
    let (_, manifest_a) = old.push_image("lib/app", "a", &layer_a).await;

    // This build's node joins: it migrates the schema under the old node.
    let new = t.join(|_| {}).await;
    assert_eq!(schema_of(&new).await, berth_meta::SCHEMA_VERSION);
    let layer_b = b"pushed to the new node".repeat(50);
    let (_, manifest_b) = new.push_image("lib/app", "b", &layer_b).await;
    let layer_c = b"pushed to the old node after the upgrade".repeat(50);
    let (_, manifest_c) = old.push_image("lib/app", "c", &layer_c).await;

    // Each serves what either wrote.
    for t in [&old, &new] {
        assert_pulls(t, "lib/app", "a", &manifest_a, &layer_a).await;
        assert_pulls(t, "lib/app", "b", &manifest_b, &layer_b).await;
        assert_pulls(t, "lib/app", "c", &manifest_c, &layer_c).await;
        let (s, tags) = t.api(Method::GET, "/v2/lib/app/tags/list", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(tags["tags"], json!(["a", "b", "c"]));
    }
    // A delete on the new node is seen by the old one.
    let r = new
        .client
        .delete(new.url(&format!("/v2/lib/app/manifests/{}", sha256(&manifest_b))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // The change reaches the other node's read cache at its commit, over
    // the database's notifications: within a second (docs/deploy.md), not
    // before the delete's answer (a loaded machine showed the old answer
    // once).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = old.get("/v2/lib/app/manifests/b").await;
        if r.status() == StatusCode::NOT_FOUND {
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
        assert!(std::time::Instant::now() < deadline, "still served");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(node);
}
