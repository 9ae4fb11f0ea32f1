//! A full disk, for real: Berth's data directory on a small tmpfs made for
//! the test, filled to the last byte. Every surface must say that storage
//! is full (507, in its own format) instead of 500; uploads that failed
//! leave no data behind; deletes and garbage collection still work, so an
//! operator can free space through Berth; and nothing committed is lost.
//! Needs root (to mount the tmpfs), as the whole suite does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A tmpfs of `mib` MiB, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u64) -> SmallDisk {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs failed (the suite runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file until the disk refuses another byte.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("filler");
        for size in [1 << 20, 4096, 1] {
            let block = vec![0xAAu8; size];
            while file.write_all(&block).and_then(|()| file.flush()).is_ok() {}
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn berth_gc(data_dir: &Path) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("gc")
        .env("BERTH_DATA_DIR", data_dir)
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("BERTH_GC_GRACE_SECS", "0")
        .env("BERTH_STORAGE_RESERVE_BYTES", (2u64 << 20).to_string())
        .output()
        .expect("run berth gc");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[0] ^ seed)
        .collect()
}

async fn storage_full_oci(r: reqwest::Response) {
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    let v: Value = r.json().await.expect("OCI error body");
    let message = v["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("storage is full"), "{v}");
}

fn uploads_left(data_dir: &Path) -> Vec<String> {
    match std::fs::read_dir(data_dir.join("blobs").join("_uploads")) {
        Ok(dir) => dir
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_can_be_freed_through_berth() {
    let disk = SmallDisk::mount(48);
    let data_dir = disk.path().join("data");
    let mut t = TestServer::start_with(Backend::Sqlite, |c| {
        c.data_dir = data_dir.clone();
        c.gc.grace_secs = 0;
        c.storage.reserve_bytes = Some(2 << 20);
    })
    .await;
    // What must survive, and what will be deleted to make room.
    let kept_layer = pattern(1 << 20, 1);
    let (kept, _) = t.push_image("app/kept", "v1", &kept_layer).await;
    let big_layer = pattern(8 << 20, 2);
    let (big, _) = t.push_image("app/big", "v1", &big_layer).await;
    // Full but for 1 MiB: the database still has room, the 2 MiB uploads
    // below do not, and fail while their bytes are written.
    let filler = disk.fill();
    let len = std::fs::metadata(&filler).expect("filler").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .and_then(|f| f.set_len(len - (1 << 20)))
        .expect("make 1 MiB of room");

    // /v2: a monolithic upload, and a chunked one, refused with 507 and
    // nothing left behind.
    let data = pattern(2 << 20, 3);
    let r = t
        .req(
            Method::POST,
            &format!("/v2/app/new/blobs/uploads/?digest={}", sha256(&data)),
        )
        .await
        .body(data.clone())
        .send()
        .await
        .expect("post");
    storage_full_oci(r).await;
    let r = t
        .req(Method::POST, "/v2/app/new/blobs/uploads/")
        .await
        .send()
        .await
        .expect("post");
    if r.status() == StatusCode::ACCEPTED {
        let location = t.resolve(&header(&r, "location"));
        let r = t
            .client
            .patch(&location)
            .header("content-type", "application/octet-stream")
            .body(data.clone())
            .send()
            .await
            .expect("patch");
        if r.status() == StatusCode::ACCEPTED {
            // The chunk was answered before its last write failed: the
            // upload's next request is told.
            let r = t.client.get(&location).send().await.expect("status");
            storage_full_oci(r).await;
        } else {
            storage_full_oci(r).await;
        }
        // The session is gone with its data.
        let r = t.client.get(&location).send().await.expect("status");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    } else {
        storage_full_oci(r).await;
    }
    assert_eq!(uploads_left(&data_dir), Vec::<String>::new());
    // The room they had is free again: another 512 KiB upload fits.
    let small = pattern(512 << 10, 5);
    let r = t
        .req(
            Method::POST,
            &format!("/v2/app/new/blobs/uploads/?digest={}", sha256(&small)),
        )
        .await
        .body(small)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::CREATED);

    // Now full to the last byte.
    disk.fill();

    // The management API: problem documents with code storage_full.
    for (path, body) in [
        ("/api/v1/namespaces", json!({"name": "fresh"})),
        ("/api/v1/tokens", json!({"name": "ci"})),
    ] {
        let (s, v) = t.api(Method::POST, path, Some(body)).await;
        assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{path}: {v}");
        assert_eq!(v["code"], "storage_full", "{v}");
    }
    // The console's login: it works (a session is a few bytes, and the
    // database may still hold room for them), or a readable page says
    // that storage is full; never a 500.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(t.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=admin&password={ADMIN_PASSWORD}"))
        .send()
        .await
        .expect("login");
    if r.status() != StatusCode::SEE_OTHER {
        assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
        let page = r.text().await.expect("page");
        assert!(page.contains("Storage is full"), "{page}");
    }

    // Deletes work on the full disk, through /v2 and through the API...
    let r = t.delete(&format!("/v2/app/big/manifests/{big}")).await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    // ...and so does `berth gc`, which reclaims the deleted image's layers.
    let (ok, out, err) = berth_gc(&data_dir);
    assert!(ok, "berth gc on a full disk: {out}\n{err}");
    assert!(!err.contains("vanished"), "{err}");
    let reclaimed: u64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("bytes reclaimed: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(reclaimed >= big_layer.len() as u64, "{out}");

    // With room again (the reserve is put back), pushes work.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let data = pattern(256 << 10, 4);
        let r = t
            .req(
                Method::POST,
                &format!("/v2/app/new/blobs/uploads/?digest={}", sha256(&data)),
            )
            .await
            .body(data)
            .send()
            .await
            .expect("post");
        if r.status() == StatusCode::CREATED {
            break;
        }
        assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert!(
            Instant::now() < deadline,
            "uploads still refused after space was freed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    t.push_image("app/after", "v1", b"pushed after space was freed")
        .await;

    // Nothing committed was lost, across a restart too.
    t.restart_with(|c| {
        c.data_dir = data_dir.clone();
        c.storage.reserve_bytes = Some(2 << 20);
    })
    .await;
    let r = t.get(&format!("/v2/app/kept/manifests/{kept}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = t
        .get(&format!("/v2/app/kept/blobs/{}", sha256(&kept_layer)))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), &kept_layer[..]);
    assert_eq!(
        t.get("/v2/app/big/manifests/v1").await.status(),
        StatusCode::NOT_FOUND
    );
    drop(t);
    std::fs::remove_file(filler).ok();
}
