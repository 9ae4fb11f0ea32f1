//! One behaviour suite for every `BlobStore` backend: the filesystem, S3 on
//! Garage, and S3 on moto (which, unlike Garage, refuses parts under 5 MiB
//! as AWS does). The S3 servers are started by `scripts/test-env.sh`; a
//! plain `cargo test` without them runs the filesystem backend only.
//!
//! Each case gets "nodes": handles on the same storage. For S3 every node is
//! a separate store instance sharing only the bucket and the journal (the
//! database in production), so a case that alternates nodes proves that an
//! upload continues anywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use berth_blob::{
    BlobError, BlobStore, ByteStream, FsBlobStore, S3BlobStore, S3Config, SavedUpload,
    UploadJournal,
};
use berth_oci::{Algorithm, Digest};
use bytes::Bytes;
use futures_util::StreamExt;

/// The upload rows of a database, in memory.
#[derive(Debug, Default)]
struct MemoryJournal {
    rows: Mutex<HashMap<String, (i64, Option<String>)>>,
}

impl MemoryJournal {
    fn begin(&self, id: &str) {
        self.rows.lock().unwrap().insert(id.to_owned(), (0, None));
    }
    fn end(&self, id: &str) {
        self.rows.lock().unwrap().remove(id);
    }
}

#[async_trait]
impl UploadJournal for MemoryJournal {
    async fn load(&self, id: &str) -> Result<Option<SavedUpload>, BlobError> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .get(id)
            .map(|(version, state)| SavedUpload {
                version: *version,
                state: state.clone(),
            }))
    }
    async fn save(&self, id: &str, version: i64, state: &str) -> Result<bool, BlobError> {
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(id) {
            Some(row) if row.0 == version => {
                *row = (version + 1, Some(state.to_owned()));
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// A backend under test: `node(i)` is the i-th node's handle.
struct Backend {
    name: &'static str,
    nodes: Vec<Arc<dyn BlobStore>>,
    journal: Arc<MemoryJournal>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn node(&self, i: usize) -> &dyn BlobStore {
        self.nodes[i % self.nodes.len()].as_ref()
    }

    async fn create(&self, id: &str, algorithm: Algorithm) {
        self.journal.begin(id);
        self.node(0)
            .upload_create(id, algorithm)
            .await
            .expect("create");
    }

    async fn forget(&self, id: &str) {
        self.journal.end(id);
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with scripts/test.sh, which starts the S3 servers")
    })
}

fn s3_config(endpoint: String, prefix: String) -> S3Config {
    S3Config {
        endpoint: Some(endpoint),
        bucket: env("BERTH_TEST_S3_BUCKET"),
        region: env("BERTH_TEST_S3_REGION"),
        prefix,
        path_style: true,
        access_key_id: env("BERTH_TEST_S3_ACCESS_KEY_ID"),
        secret_access_key: env("BERTH_TEST_S3_SECRET_ACCESS_KEY"),
        part_size: berth_blob::S3_MIN_PART_SIZE,
        redirect: None,
    }
}

fn s3_backend(name: &'static str, endpoint_var: &str) -> Backend {
    let journal = Arc::new(MemoryJournal::default());
    // A fresh prefix per case: cases share the bucket, never their keys.
    let prefix = format!("suite-{}", uuid_like());
    let config = s3_config(env(endpoint_var), prefix);
    let nodes = (0..3)
        .map(|_| {
            Arc::new(S3BlobStore::new(&config, journal.clone()).expect("s3 store"))
                as Arc<dyn BlobStore>
        })
        .collect();
    Backend {
        name,
        nodes,
        journal,
        _dir: None,
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{t:x}-{}-{n}", std::process::id())
}

fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = Arc::new(FsBlobStore::open(dir.path().join("blobs")).expect("fs store"));
    vec![Backend {
        name: "fs",
        nodes: vec![fs],
        journal: Arc::new(MemoryJournal::default()),
        _dir: Some(dir),
    }]
    .into_iter()
    .chain(s3_backends())
    .collect()
}

/// The S3 backends: Garage and moto, which `scripts/test-env.sh` starts. A
/// plain `cargo test` without them runs the filesystem only; with
/// `BERTH_TEST_SERVICES` set (the full suite) they must be there.
fn s3_backends() -> Vec<Backend> {
    if std::env::var_os("BERTH_TEST_S3_ENDPOINT").is_none()
        && std::env::var_os("BERTH_TEST_SERVICES").is_none()
    {
        return Vec::new();
    }
    vec![
        s3_backend("garage", "BERTH_TEST_S3_ENDPOINT"),
        s3_backend("moto", "BERTH_TEST_MOTO_ENDPOINT"),
    ]
}

fn content(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A body sent in pieces of `piece` bytes.
fn body(bytes: &[u8], piece: usize) -> ByteStream {
    let parts: Vec<Result<Bytes, std::io::Error>> = bytes
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(parts))
}

async fn read(store: &dyn BlobStore, d: &Digest, range: Option<(u64, u64)>) -> Vec<u8> {
    let mut stream = store
        .open_chunks(d, range, 64 << 10)
        .await
        .expect("open")
        .expect("present");
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    out
}

/// Upload `data` as `chunks` requests of `piece`-byte body frames, each
/// request on the next node, and commit on the node after.
async fn upload(b: &Backend, id: &str, data: &[u8], chunks: usize, piece: usize) -> Digest {
    let digest = Digest::of_bytes(Algorithm::Sha256, data);
    b.create(id, Algorithm::Sha256).await;
    let per = data.len().div_ceil(chunks.max(1)).max(1);
    let mut at = 0usize;
    let mut node = 0;
    for part in data.chunks(per) {
        let size = b
            .node(node)
            .upload_append(id, Some(at as u64), body(part, piece), u64::MAX)
            .await
            .unwrap_or_else(|e| panic!("{}: append at {at}: {e}", b.name));
        at += part.len();
        assert_eq!(size, at as u64, "{}", b.name);
        node += 1;
        assert_eq!(
            b.node(node).upload_size(id).await.expect("size"),
            Some(at as u64),
            "{}: another node sees the size",
            b.name
        );
    }
    let size = b
        .node(node + 1)
        .upload_commit(id, &digest)
        .await
        .unwrap_or_else(|e| panic!("{}: commit: {e}", b.name));
    assert_eq!(size, data.len() as u64);
    b.forget(id).await;
    digest
}

#[tokio::test]
async fn small_and_empty_blobs_commit_read_and_dedupe() {
    for b in backends() {
        let data = content(100_000, 1);
        let d = upload(&b, "small1", &data, 3, 4096).await;
        assert_eq!(
            b.node(1).stat(&d).await.unwrap(),
            Some(100_000),
            "{}",
            b.name
        );
        assert_eq!(read(b.node(2), &d, None).await, data, "{}", b.name);
        assert_eq!(
            read(b.node(0), &d, Some((10, 20))).await,
            data[10..=20].to_vec(),
            "{}: range",
            b.name
        );
        // The same content again: stored once, the upload's leftovers gone.
        let again = upload(&b, "small2", &data, 1, 65536).await;
        assert_eq!(again, d);
        let empty = upload(&b, "empty", &[], 1, 1).await;
        assert_eq!(b.node(0).stat(&empty).await.unwrap(), Some(0), "{}", b.name);
        assert!(read(b.node(0), &empty, None).await.is_empty());
        let listed: Vec<_> = b.node(0).list_blobs(None, 10).await.unwrap();
        assert_eq!(listed.len(), 2, "{}: {listed:?}", b.name);
        assert!(
            b.node(0).list_uploads().await.unwrap().is_empty(),
            "{}: no upload data is left behind",
            b.name
        );
    }
}

#[tokio::test]
async fn a_large_upload_in_small_chunks_alternating_nodes_is_exact() {
    // 13 MiB in 1 MiB requests of 64 KiB frames: two full 5 MiB parts
    // gathered from staged chunks, then a staged remainder as the last part.
    for b in backends() {
        let data = content(13 << 20, 2);
        let d = upload(&b, "large", &data, 13, 64 << 10).await;
        assert_eq!(
            b.node(0).stat(&d).await.unwrap(),
            Some(13 << 20),
            "{}",
            b.name
        );
        assert_eq!(read(b.node(1), &d, None).await, data, "{}", b.name);
        let (start, end) = ((5 << 20) - 3, (5 << 20) + 3);
        assert_eq!(
            read(b.node(2), &d, Some((start, end))).await,
            data[start as usize..=end as usize].to_vec(),
            "{}: a range across a part boundary",
            b.name
        );
        assert!(
            b.node(0).list_uploads().await.unwrap().is_empty(),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn a_large_monolithic_upload_streams_in_parts() {
    for b in backends() {
        let data = content(11 << 20, 3);
        let d = upload(&b, "mono", &data, 1, 256 << 10).await;
        assert_eq!(read(b.node(0), &d, None).await, data, "{}", b.name);
    }
}

#[tokio::test]
async fn a_wrong_digest_stores_nothing_and_leaves_nothing() {
    for b in backends() {
        let data = content(12 << 20, 4);
        b.create("bad", Algorithm::Sha256).await;
        b.node(0)
            .upload_append("bad", Some(0), body(&data, 1 << 20), u64::MAX)
            .await
            .expect("append");
        let wrong = Digest::of_bytes(Algorithm::Sha256, b"something else");
        let e = b.node(1).upload_commit("bad", &wrong).await.unwrap_err();
        assert!(
            matches!(e, BlobError::DigestMismatch { .. }),
            "{}: {e}",
            b.name
        );
        b.forget("bad").await;
        let right = Digest::of_bytes(Algorithm::Sha256, &data);
        assert_eq!(b.node(0).stat(&wrong).await.unwrap(), None, "{}", b.name);
        assert_eq!(b.node(0).stat(&right).await.unwrap(), None, "{}", b.name);
        assert!(
            b.node(0).list_blobs(None, 10).await.unwrap().is_empty(),
            "{}",
            b.name
        );
        assert!(
            b.node(0).list_uploads().await.unwrap().is_empty(),
            "{}: no staged bytes or upload object left",
            b.name
        );
    }
}

#[tokio::test]
async fn offsets_limits_and_unknown_uploads_are_refused() {
    for b in backends() {
        b.create("rules", Algorithm::Sha256).await;
        b.node(0)
            .upload_append("rules", Some(0), body(b"hello", 5), u64::MAX)
            .await
            .expect("append");
        let e = b
            .node(1)
            .upload_append("rules", Some(3), body(b"x", 1), u64::MAX)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                BlobError::RangeMismatch {
                    current: 5,
                    given: 3
                }
            ),
            "{}: {e}",
            b.name
        );
        let e = b
            .node(2)
            .upload_append("rules", Some(5), body(b"0123456789", 10), 8)
            .await
            .unwrap_err();
        assert!(
            matches!(e, BlobError::TooLarge { limit: 8 }),
            "{}: {e}",
            b.name
        );
        // Nothing of the refused chunk counts.
        assert_eq!(
            b.node(0).upload_size("rules").await.unwrap(),
            Some(5),
            "{}",
            b.name
        );
        assert!(
            b.node(0).upload_delete("rules").await.unwrap(),
            "{}",
            b.name
        );
        b.forget("rules").await;
        assert_eq!(
            b.node(1).upload_size("rules").await.unwrap(),
            None,
            "{}",
            b.name
        );
        assert!(
            !b.node(1).upload_delete("rules").await.unwrap(),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn a_digest_of_another_algorithm_is_checked_by_reading_back() {
    for b in backends() {
        let data = content(7 << 20, 5);
        b.create("other", Algorithm::Sha256).await;
        b.node(0)
            .upload_append("other", Some(0), body(&data, 1 << 20), u64::MAX)
            .await
            .expect("append");
        let d = Digest::of_bytes(Algorithm::Sha512, &data);
        assert_eq!(
            b.node(1).upload_commit("other", &d).await.unwrap(),
            7 << 20,
            "{}",
            b.name
        );
        b.forget("other").await;
        assert_eq!(read(b.node(2), &d, None).await, data, "{}", b.name);
    }
}

#[tokio::test]
async fn blobs_list_in_digest_order_page_by_page_and_delete() {
    for b in backends() {
        let mut digests = Vec::new();
        for i in 0..5u32 {
            let data = content(1000 + i as usize, 10 + i);
            digests.push(upload(&b, &format!("l{i}"), &data, 1, 1000).await);
        }
        digests.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let first = b.node(0).list_blobs(None, 2).await.unwrap();
        let second = b.node(1).list_blobs(Some(&first[1].0), 10).await.unwrap();
        let all: Vec<Digest> = first
            .iter()
            .chain(&second)
            .map(|(d, _)| d.clone())
            .collect();
        assert_eq!(all, digests, "{}", b.name);
        assert!(b.node(2).delete(&digests[0]).await.unwrap(), "{}", b.name);
        assert!(!b.node(0).delete(&digests[0]).await.unwrap(), "{}", b.name);
        assert_eq!(
            b.node(1).stat(&digests[0]).await.unwrap(),
            None,
            "{}",
            b.name
        );
        assert!(b
            .node(1)
            .open_chunks(&digests[0], None, 1024)
            .await
            .unwrap()
            .is_none());
        // Many at once, one of them already gone: the rest stays.
        b.node(0).delete_many(&digests[..4]).await.unwrap();
        let left = b.node(1).list_blobs(None, 10).await.unwrap();
        assert_eq!(
            left.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
            [digests[4].clone()],
            "{}",
            b.name
        );
        b.node(2).delete_many(&[]).await.unwrap();
        assert!(b.node(0).ping().await.is_ok(), "{}", b.name);
    }
}
