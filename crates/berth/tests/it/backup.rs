//! `berth backup` and `berth restore` on the embedded default (SQLite and
//! the filesystem): a backup taken while pushes, deletes and a collection
//! go on restores into a fresh data directory where every image
//! acknowledged before it began pulls byte-exact and every tag it holds
//! pulls whole; a second backup copies only new blobs; a backup killed
//! midway leaves the previous one usable.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

/// `berth <args>` on the data directory `data`.
fn berth(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args)
        .env("BERTH_DATA_DIR", data)
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD);
    cmd
}

fn run(data: &Path, args: &[&str]) -> Output {
    berth(data, args).output().expect("berth runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An image pushed and acknowledged: repository, tag, manifest bytes and
/// its blobs' bytes by digest.
#[derive(Clone, Debug)]
struct Pushed {
    repo: String,
    tag: String,
    manifest: Vec<u8>,
    blobs: Vec<(String, Vec<u8>)>,
}

/// Push an image whose layer is `size` bytes unique to `n`.
async fn push(t: &TestServer, repo: &str, n: usize, size: usize) -> Pushed {
    let seed = format!("image {n} of {repo} ");
    let layer: Vec<u8> = seed.bytes().cycle().take(size).collect();
    let config = format!(r#"{{"os":"linux","n":{n}}}"#);
    let config_digest = t.push_blob(repo, config.as_bytes()).await;
    let layer_digest = t.push_blob(repo, &layer).await;
    let manifest = image_manifest(
        &config_digest,
        config.len(),
        &[(layer_digest.clone(), layer.len())],
        None,
    );
    let tag = format!("v{n}");
    let r = t.put_manifest(repo, &tag, OCI_MANIFEST, &manifest).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    Pushed {
        repo: repo.into(),
        tag,
        manifest,
        blobs: vec![(config_digest, config.into_bytes()), (layer_digest, layer)],
    }
}

/// The image pulls byte-exact from `t`.
async fn assert_pulls(t: &TestServer, p: &Pushed) {
    let r = t.get(&format!("/v2/{}/manifests/{}", p.repo, p.tag)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}:{}", p.repo, p.tag);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &p.manifest[..]);
    for (digest, bytes) in &p.blobs {
        let r = t.get(&format!("/v2/{}/blobs/{digest}", p.repo)).await;
        assert_eq!(r.status(), StatusCode::OK, "{}@{digest}", p.repo);
        assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[..], "{digest}");
    }
}

/// Every tag `t` serves pulls whole: its manifest and each blob it names.
async fn assert_every_tag_pulls(t: &TestServer) -> usize {
    let (s, catalog) = t
        .api(reqwest::Method::GET, "/v2/_catalog?n=10000", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{catalog}");
    let mut images = 0;
    for repo in catalog["repositories"].as_array().unwrap() {
        let repo = repo.as_str().unwrap();
        let (_, tags) = t
            .api(reqwest::Method::GET, &format!("/v2/{repo}/tags/list"), None)
            .await;
        for tag in tags["tags"].as_array().into_iter().flatten() {
            let tag = tag.as_str().unwrap();
            let r = t.get(&format!("/v2/{repo}/manifests/{tag}")).await;
            assert_eq!(r.status(), StatusCode::OK, "{repo}:{tag}");
            let m: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            let mut digests = vec![m["config"]["digest"].as_str().unwrap().to_owned()];
            for l in m["layers"].as_array().unwrap() {
                digests.push(l["digest"].as_str().unwrap().to_owned());
            }
            for d in digests {
                let r = t.get(&format!("/v2/{repo}/blobs/{d}")).await;
                assert_eq!(r.status(), StatusCode::OK, "{repo}:{tag} blob {d}");
                let body = r.bytes().await.unwrap();
                assert_eq!(sha256(&body), d);
            }
            images += 1;
        }
    }
    images
}

/// A server started on a data directory filled by `berth restore`.
async fn restored_server(dir: tempfile::TempDir) -> TestServer {
    let mut t = TestServer {
        server: None,
        base: String::new(),
        client: client_as("admin", ADMIN_PASSWORD),
        dir,
        backend: Backend::Sqlite,
        database_url: None,
        s3_prefix: String::new(),
    };
    t.restart().await;
    t
}

/// The "N blobs, B bytes copied" of a backup's summary line.
fn copied(summary: &str) -> u64 {
    let (_, rest) = summary.split_once(" bytes (").expect(summary);
    rest.split(' ').next().unwrap().parse().expect(summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_pushing_restores_every_acknowledged_image() {
    let t = TestServer::start(Backend::Sqlite).await;
    let mut before = Vec::new();
    for n in 0..12 {
        before.push(push(&t, "team/app", n, 200_000).await);
    }
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("nightly");

    // Pushes and a collection run alongside the backup.
    let stop = AtomicBool::new(false);
    let during = Mutex::new(Vec::new());
    let pushing = async {
        let mut n = 100;
        while !stop.load(Ordering::SeqCst) {
            let p = push(&t, "team/busy", n, 50_000).await;
            during.lock().unwrap().push(p);
            n += 1;
        }
    };
    // Images deleted a little earlier: the collection that runs alongside
    // the backup reclaims them (a grace period shorter than the time since
    // the deletes, longer than one push of the loop takes).
    for p in &before[8..] {
        let r = t
            .client
            .delete(t.url(&format!("/v2/{}/manifests/{}", p.repo, sha256(&p.manifest))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let churn = async {
        let mut gc = berth(t.data_dir(), &["gc"]);
        gc.env("BERTH_GC_GRACE_SECS", "2");
        tokio::task::spawn_blocking(move || gc.output().unwrap())
            .await
            .unwrap()
    };
    let backup = async {
        let data = t.data_dir().to_owned();
        let dest = dest.clone();
        let out =
            tokio::task::spawn_blocking(move || run(&data, &["backup", dest.to_str().unwrap()]))
                .await
                .unwrap();
        stop.store(true, Ordering::SeqCst);
        out
    };
    let (_, gc, first) = tokio::join!(pushing, churn, backup);
    assert!(gc.status.success(), "{}", text(&gc));
    assert!(first.status.success(), "{}", text(&first));
    assert!(dest.join("backup.json").exists());
    assert!(!dest.join("berth.db.partial").exists());
    let during = during.into_inner().unwrap();
    assert!(!during.is_empty(), "no push ran during the backup");

    // The backup taken while all that went on restores: every image
    // acknowledged before it began pulls byte-exact, and every tag it
    // holds pulls whole (no manifest without its blobs).
    let fresh = tempfile::tempdir().unwrap();
    let restored = run(fresh.path(), &["restore", dest.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", text(&restored));
    let r = restored_server(fresh).await;
    for p in &before[..8] {
        assert_pulls(&r, p).await;
    }
    let images = assert_every_tag_pulls(&r).await;
    assert!(images >= 8, "{images} images restored");
    drop(r);

    // A second backup copies only what is new (the pushes since the
    // first copy), not the blobs it holds already.
    let later = push(&t, "team/app", 50, 300_000).await;
    let second = run(t.data_dir(), &["backup", dest.to_str().unwrap()]);
    assert!(second.status.success(), "{}", text(&second));
    let summary = text(&second);
    let total: u64 = summary
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect(&summary);
    assert!(
        copied(&summary) < total / 2,
        "the second backup copied {} of {total} blobs: {summary}",
        copied(&summary)
    );

    // Restore refuses a data directory that holds a database.
    let refused = run(t.data_dir(), &["restore", dest.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("restore needs an empty data directory"),
        "{}",
        text(&refused)
    );

    let fresh = tempfile::tempdir().unwrap();
    let restored = run(fresh.path(), &["restore", dest.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", text(&restored));
    let r = restored_server(fresh).await;
    for p in before[..8].iter().chain(&during) {
        assert_pulls(&r, p).await;
    }
    assert_pulls(&r, &later).await;
    let images = assert_every_tag_pulls(&r).await;
    assert_eq!(images, 8 + during.len() + 1, "images restored");
    // The restored registry takes pushes.
    push(&r, "team/app", 60, 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_midway_leaves_the_previous_one_usable() {
    let t = TestServer::start(Backend::Sqlite).await;
    let mut first = Vec::new();
    for n in 0..3 {
        first.push(push(&t, "team/app", n, 10_000).await);
    }
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("b");
    let out = run(t.data_dir(), &["backup", dest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let blobs_before = count_files(&dest.join("blobs"));

    // Many more blobs, so the next backup is caught copying them.
    for n in 3..40 {
        push(&t, "team/big", n, 2 << 20).await;
    }
    let mut child = berth(t.data_dir(), &["backup", dest.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_files(&dest.join("blobs")) <= blobs_before + 2 {
        assert!(Instant::now() < deadline, "the backup copied nothing");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended first"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        dest.join("berth.db.partial").exists(),
        "killed after its commit point: make the images larger"
    );

    // The earlier backup restores whole.
    let fresh = tempfile::tempdir().unwrap();
    let restored = run(fresh.path(), &["restore", dest.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", text(&restored));
    let r = restored_server(fresh).await;
    for p in &first {
        assert_pulls(&r, p).await;
    }
    assert_eq!(assert_every_tag_pulls(&r).await, 3);

    // And the next backup finishes the work.
    let out = run(t.data_dir(), &["backup", dest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!dest.join("berth.db.partial").exists());
    let fresh = tempfile::tempdir().unwrap();
    let restored = run(fresh.path(), &["restore", dest.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", text(&restored));
    let r = restored_server(fresh).await;
    assert_eq!(assert_every_tag_pulls(&r).await, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_backup_is_refused_by_restore_and_postgres_is_pointed_to_its_tools() {
    let t = TestServer::start(Backend::Sqlite).await;
    let p = push(&t, "team/app", 1, 5_000).await;
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("b");
    let out = run(t.data_dir(), &["backup", dest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    // One flipped bit in a blob of the backup.
    let layer = &p.blobs[1].0;
    let hex = layer.strip_prefix("sha256:").unwrap();
    let path = dest.join("blobs/sha256").join(&hex[..2]).join(hex);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let refused = run(fresh.path(), &["restore", dest.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains(&format!("blob {layer} of the backup is damaged")),
        "{}",
        text(&refused)
    );
    // No database is left behind: Berth does not start on half a restore.
    assert!(!fresh.path().join("berth.db").exists());

    // A backup over damaged storage refuses to replace the previous one.
    let stored = t.data_dir().join("blobs/sha256").join(&hex[..2]).join(hex);
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[7] ^= 1;
    std::fs::write(&stored, bytes).unwrap();
    let other = backups.path().join("other");
    let out = run(t.data_dir(), &["backup", other.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("blob {layer} is damaged in storage")),
        "{}",
        text(&out)
    );
    assert!(!other.join("berth.db").exists());

    // PostgreSQL is backed up with its own tools.
    let out = berth(t.data_dir(), &["backup", other.to_str().unwrap()])
        .env("BERTH_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("docs/operations.md"), "{}", text(&out));
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// The procedure docs/operations.md gives for PostgreSQL with a bucket,
/// with collections paused for the window: the database first (pg_dump),
/// then the bucket (a copy of every object); what happens after the
/// window (a push, a delete, a collection) is not in the restore, and
/// everything before it pulls byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_its_bucket_backed_up_in_the_documented_order_restore() {
    use futures_util::StreamExt;
    use object_store::{ObjectStore, ObjectStoreExt};

    let t = TestServer::start_with(Backend::PostgresS3, |c| c.gc.interval_secs = 0).await;
    let a = push(&t, "team/app", 1, 100_000).await;
    let b = push(&t, "team/app", 2, 100_000).await;
    let work = tempfile::tempdir().unwrap();

    // The database first...
    let dump = work.path().join("berth.dump");
    let url = t.database_url.clone().unwrap();
    let out = Command::new(pg_tool("pg_dump"))
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // ...then the bucket.
    let bucket = test_bucket_client();
    let backup_prefix = format!("{}-backup", t.s3_prefix);
    let from = object_store::path::Path::from(t.s3_prefix.as_str());
    let mut listing = bucket.list(Some(&from));
    let mut copied = 0;
    while let Some(object) = listing.next().await {
        let object = object.unwrap();
        let rest = object.location.as_ref()[t.s3_prefix.len()..].to_owned();
        let to = object_store::path::Path::from(format!("{backup_prefix}{rest}"));
        bucket.copy(&object.location, &to).await.unwrap();
        copied += 1;
    }
    assert!(copied >= 4, "{copied} objects copied");

    // After the window: a push, a delete and a collection.
    let c = push(&t, "team/app", 3, 100_000).await;
    let r = t
        .client
        .delete(t.url(&format!("/v2/team/app/manifests/{}", sha256(&a.manifest))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let out = crate::gc::berth_gc_command(&t, &[]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let layer_a: berth_oci::Digest = a.blobs[1].0.parse().unwrap();
    assert!(
        t.registry().blobs().stat(&layer_a).await.unwrap().is_none(),
        "the collection took image 1's layer from the live bucket"
    );

    // Restore: a fresh database from the dump, the bucket's copy.
    let mut restored = TestServer::unstarted(Backend::PostgresS3).await;
    restored.s3_prefix = backup_prefix;
    let out = Command::new(pg_tool("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(restored.database_url.as_deref().unwrap())
        .arg(&dump)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    restored.restart().await;
    assert_pulls(&restored, &a).await;
    assert_pulls(&restored, &b).await;
    let r = restored
        .get(&format!("/v2/team/app/manifests/{}", c.tag))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(assert_every_tag_pulls(&restored).await, 2);
    let out = crate::gc::berth_command(&restored, &["fsck"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("orphaned objects: 0"), "{}", text(&out));
}

/// A PostgreSQL client tool of the installed server.
fn pg_tool(name: &str) -> std::path::PathBuf {
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/test-env.sh)")
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().expect("pg_dump and pg_restore")
}
