//! PostgreSQL stopped and started again under a running Berth: requests
//! fail quickly with 503 and a body that says the database is unavailable
//! (OCI errors on /v2, a problem document on /api), `/readyz` says so, and
//! Berth recovers by itself when the database is back, with nothing
//! committed lost. The test runs its own PostgreSQL cluster, so stopping
//! it disturbs no other test. Needs root (the cluster runs as `postgres`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A throwaway PostgreSQL cluster on a Unix socket.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (scripts/test-env.sh installs it)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        let c = Cluster { bin, dir };
        c.as_postgres(&format!(
            "{} -D {} -A trust -U postgres >/dev/null",
            c.bin.join("initdb").display(),
            c.data().display()
        ));
        c.start();
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@localhost/postgres?host={}",
            self.socket().display()
        )
    }

    fn as_postgres(&self, script: &str) {
        let out = Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", script])
            .output()
            .expect("run su");
        assert!(
            out.status.success(),
            "{script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&self) {
        self.as_postgres(&format!(
            "{} -D {} -l {}/log -w -o \"-k {} -c listen_addresses='' -c fsync=off\" start >/dev/null",
            self.bin.join("pg_ctl").display(),
            self.data().display(),
            self.dir.path().display(),
            self.socket().display()
        ));
    }

    fn stop(&self) {
        self.as_postgres(&format!(
            "{} -D {} -m fast -w stop >/dev/null",
            self.bin.join("pg_ctl").display(),
            self.data().display()
        ));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("su")
            .args([
                "postgres",
                "-s",
                "/bin/sh",
                "-c",
                &format!(
                    "{} -D {} -m immediate stop",
                    self.bin.join("pg_ctl").display(),
                    self.data().display()
                ),
            ])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_reported_and_recovered_from() {
    let cluster = Cluster::new();
    let url = cluster.url();
    let t = TestServer::start_with(Backend::Postgres, |c| {
        c.database.url = Some(berth::config::Secret::new(url.clone()));
        c.database.acquire_timeout_secs = 2;
    })
    .await;
    let layer = b"committed before the outage";
    let (digest, manifest) = t.push_image("steady/app", "v1", layer).await;

    cluster.stop();

    // /v2: a clear, quick 503 in the OCI format.
    let started = Instant::now();
    let r = t.get("/v2/steady/app/manifests/v1").await;
    let took = started.elapsed();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!header(&r, "retry-after").is_empty());
    let v: Value = r.json().await.expect("OCI error");
    assert_eq!(v["errors"][0]["code"], "UNAVAILABLE", "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("database is unavailable"),
        "{v}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // A push fails the same way (and stores nothing half-way).
    let r = t
        .req(Method::POST, "/v2/steady/app/blobs/uploads/")
        .await
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The management API: a problem document.
    let (s, v) = t.api(Method::GET, "/api/v1/namespaces", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["code"], "unavailable", "{v}");
    // /readyz says why.
    let r = t.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.expect("text").contains("database"));

    cluster.start();

    // Berth reconnects by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = t.get("/readyz").await;
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = t.get(&format!("/v2/steady/app/manifests/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), &manifest[..]);
    let r = t
        .get(&format!("/v2/steady/app/blobs/{}", sha256(layer)))
        .await;
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), &layer[..]);
    t.push_image("steady/app", "v2", b"pushed after the outage")
        .await;
    let (s, v) = t.api(Method::GET, "/api/v1/namespaces", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
