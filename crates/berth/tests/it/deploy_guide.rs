//! The deploy guide's examples, taken from docs/deploy.md and
//! docs/regions.md as written (the blocks after a `<!-- deploy-check: … -->`
//! marker) and run the way scripts/readme-check.sh runs the quick start:
//! the node's TOML and the `docker run` line's settings start a real node
//! on the test's PostgreSQL and Garage, with only the addresses and
//! secrets a reader fills in replaced, and each must become ready; the
//! regions examples must be valid configurations that keep Berth's region
//! names apart from S3 signing regions.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The lines of the fenced block after `<!-- deploy-check: name -->` in
/// `doc` (a path from the repository's root).
fn block(doc: &str, name: &str) -> String {
    let text = std::fs::read_to_string(format!("{ROOT}/{doc}")).expect(doc);
    let marker = format!("<!-- deploy-check: {name} -->");
    let after = text
        .split_once(&marker)
        .unwrap_or_else(|| panic!("{doc} has no {marker}"))
        .1;
    let body = after
        .split_once("```")
        .and_then(|(_, rest)| rest.split_once('\n'))
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("{doc}: no code block after {marker}"));
    body.split_once("\n```")
        .unwrap_or_else(|| panic!("{doc}: the block after {marker} does not end"))
        .0
        .to_owned()
}

/// The first TOML block of `doc` (for docs without markers).
fn first_toml_block(doc: &str) -> String {
    let text = std::fs::read_to_string(format!("{ROOT}/{doc}")).expect(doc);
    let body = text.split_once("```toml\n").expect("a toml block").1;
    body.split_once("\n```").expect("block end").0.to_owned()
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with scripts/test.sh, which starts Garage")
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// What a reader fills in for "…": long enough for `encryption_key`.
const FILLED: &str = "filled-in-by-the-reader-0123456789abcdef";

fn fill(text: &str) -> String {
    text.replace('…', FILLED)
}

/// A node process, killed when dropped.
struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn spawn(port: u16, config: Option<&Path>, env: &[(String, String)]) -> Node {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BERTH_LOG", "warn");
        if let Some(path) = config {
            cmd.arg("--config").arg(path);
        }
        cmd.arg("serve")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Node {
            child: cmd.spawn().expect("spawn berth"),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Wait for `/readyz` to answer 200; panic with its last answer.
    async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::from("no answer");
        loop {
            if let Ok(r) = anonymous_client()
                .get(format!("{}/readyz", self.base))
                .send()
                .await
            {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                if status == 200 {
                    return;
                }
                last = format!("{status}: {body}");
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("the node exited ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "the node never became ready: {last}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A prefix of the test bucket of its own.
fn prefix(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("deploy-guide-{what}-{nanos:x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_toml_becomes_ready_on_postgres_and_garage() {
    let text = fill(&block("docs/deploy.md", "node"));
    let mut doc: toml::Table = toml::from_str(&text).expect("the guide's TOML parses");
    // What a reader fills in: addresses, credentials, paths. The S3
    // signing region, path style, proxies and networks stay as written.
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    doc.insert("listen".into(), format!("127.0.0.1:{port}").into());
    doc.insert("data_dir".into(), dir.path().display().to_string().into());
    let db = doc["database"].as_table_mut().expect("[database]");
    db.insert("url".into(), fresh_postgres_database().await.into());
    let s3 = doc["storage"]["s3"].clone();
    let mut s3 = s3.as_table().expect("[storage.s3]").clone();
    assert_eq!(
        s3["region"].as_str(),
        Some(var("BERTH_TEST_S3_REGION").as_str()),
        "the guide's signing region is Garage's default"
    );
    s3.insert("endpoint".into(), var("BERTH_TEST_S3_ENDPOINT").into());
    s3.insert("bucket".into(), var("BERTH_TEST_S3_BUCKET").into());
    s3.insert("prefix".into(), prefix("node").into());
    s3.insert(
        "access_key_id".into(),
        var("BERTH_TEST_S3_ACCESS_KEY_ID").into(),
    );
    s3.insert(
        "secret_access_key".into(),
        var("BERTH_TEST_S3_SECRET_ACCESS_KEY").into(),
    );
    doc["storage"]
        .as_table_mut()
        .unwrap()
        .insert("s3".into(), s3.into());
    let path = dir.path().join("berth.toml");
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();

    let mut node = Node::spawn(port, Some(&path), &[]);
    node.ready().await;
    // The admin password of the file works, and the first user is created
    // as the guide says (its path to the configuration replaced).
    let password = doc["admin_password"].as_str().unwrap();
    let r = client_as("admin", password)
        .get(format!("{}/api/v1/accounts", node.base))
        .send()
        .await
        .expect("accounts");
    assert_eq!(r.status(), 200);
    let create = Command::new(env!("CARGO_BIN_EXE_berth"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["--config"])
        .arg(&path)
        .args(["admin", "account", "create", "alice"])
        .output()
        .expect("berth admin");
    assert!(
        create.status.success(),
        "{}",
        String::from_utf8_lossy(&create.stderr)
    );
    let out = String::from_utf8_lossy(&create.stdout).into_owned();
    let alice = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password printed: {out}"));
    let r = anonymous_client()
        .get(format!("{}/v2/", node.base))
        .basic_auth("alice", Some(alice))
        .send()
        .await
        .expect("v2");
    assert_eq!(r.status(), 200, "alice logs in with the printed password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docker_run_settings_become_ready_on_postgres_and_garage() {
    let line = block("docs/deploy.md", "docker-run");
    let mut env: Vec<(String, String)> = line
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "-e")
        .map(|w| {
            let (k, v) = w[1].split_once('=').expect("-e KEY=VALUE");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    for needed in [
        "BERTH_EXTERNAL_URL",
        "BERTH_TRUSTED_PROXIES",
        "BERTH_S3_REGION",
        "BERTH_ENCRYPTION_KEY",
        "BERTH_ADMIN_PASSWORD",
    ] {
        assert!(keys.contains(&needed), "the docker run line sets {needed}");
    }
    // What a reader fills in; the image's own /data becomes a temporary
    // directory, as the binary runs outside it here.
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let database = fresh_postgres_database().await;
    for (k, v) in env.iter_mut() {
        *v = match k.as_str() {
            "BERTH_LISTEN" => format!("127.0.0.1:{port}"),
            "BERTH_DATABASE_URL" => database.clone(),
            "BERTH_S3_ENDPOINT" => var("BERTH_TEST_S3_ENDPOINT"),
            "BERTH_S3_BUCKET" => var("BERTH_TEST_S3_BUCKET"),
            "BERTH_S3_ACCESS_KEY_ID" => var("BERTH_TEST_S3_ACCESS_KEY_ID"),
            "BERTH_S3_SECRET_ACCESS_KEY" => var("BERTH_TEST_S3_SECRET_ACCESS_KEY"),
            _ => fill(v),
        };
    }
    env.push(("BERTH_DATA_DIR".into(), dir.path().display().to_string()));
    env.push(("BERTH_S3_PREFIX".into(), prefix("docker-run")));
    let mut node = Node::spawn(port, None, &env);
    node.ready().await;
}

#[test]
fn the_regions_examples_are_valid_and_keep_region_names_apart_from_signing_regions() {
    for (doc, text) in [
        ("docs/deploy.md", block("docs/deploy.md", "regions")),
        ("docs/regions.md", first_toml_block("docs/regions.md")),
    ] {
        let text = fill(&text);
        let config = berth::Config::parse(Some(&text), Vec::<(String, String)>::new())
            .unwrap_or_else(|e| panic!("{doc}: {e:#}"));
        assert!(config.regions.len() >= 2, "{doc}");
        for (name, region) in &config.regions {
            if region.storage.kind == berth::config::StorageKind::S3 {
                assert_ne!(
                    &region.storage.s3.region, name,
                    "{doc}: region {name}'s S3 signing region is not Berth's region name"
                );
            }
        }
    }
}
