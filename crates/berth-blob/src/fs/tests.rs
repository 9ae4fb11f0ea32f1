use super::*;
use bytes::Bytes;

/// These tests watch process-wide state (the pool of large block buffers,
/// the count of large uploads), so they run one at a time even where the
/// harness runs tests as threads of one process (`cargo test`).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn body(parts: &[&'static [u8]]) -> ByteStream {
    let items: Vec<Result<Bytes, io::Error>> =
        parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
    Box::pin(futures_util::stream::iter(items))
}

#[test]
fn large_blocks_end_aligned_and_grow_once_a_request_is_long() {
    let _serial = SERIAL.blocking_lock();
    const K: u64 = 1 << 10;
    const M: u64 = 1 << 20;
    // (large, request starts at, block starts at, block length)
    let table = [
        (false, 0, 0, BLOCK),
        (false, 0, 100 * M, BLOCK),
        (true, 0, 0, LARGE_BLOCK),
        (true, 0, 7 * M, LARGE_BLOCK),
        (true, 0, 8 * M, LONG_BLOCK),
        (true, 5 * M, 12 * M, LARGE_BLOCK),
        (true, 5 * M, 13 * M, LONG_BLOCK),
        // A request that starts unaligned: its first block ends at an
        // aligned offset, so the next starts at one.
        (true, 5 * M + 100, 5 * M + 100, LARGE_BLOCK - 100),
        (true, 3 * K, 8 * M + 3 * K, LONG_BLOCK - 3 * K as usize),
    ];
    for (large, from, at, len) in table {
        assert_eq!(block_len(large, from, at), len, "{large} {from} {at}");
        if large {
            assert_eq!((at + len as u64) % DIRECT_ALIGN as u64, 0);
        }
    }
}

/// A blob's bytes, read in small chunks and read ahead in large ones:
/// both must agree.
async fn read_all(store: &FsBlobStore, d: &Digest, range: Option<(u64, u64)>) -> Vec<u8> {
    let mut both = Vec::new();
    for chunk in [64 << 10, 1 << 20] {
        let mut s = store
            .open_chunks(d, range, chunk)
            .await
            .expect("open")
            .expect("present");
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.expect("read"));
        }
        both.push(out);
    }
    assert!(both[0] == both[1], "small and large chunks agree");
    both.pop().unwrap_or_default()
}

/// A store in a fresh directory with one SHA-256 upload `id` begun.
async fn store_with_upload(id: &str) -> (tempfile::TempDir, FsBlobStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsBlobStore::open(dir.path()).expect("open");
    store
        .upload_create(id, Algorithm::Sha256)
        .await
        .expect("create");
    (dir, store)
}

#[test]
fn large_block_buffers_are_reused_and_freed_once_no_large_upload_runs() {
    let _serial = SERIAL.blocking_lock();
    // Buffers earlier tests of this process gave back.
    FREE_LARGE.lock().unwrap_or_else(|p| p.into_inner()).clear();
    let first = AlignedBuf::new(LARGE_BLOCK);
    assert_eq!(first.capacity, LONG_BLOCK, "one size for every large block");
    let addr = first.raw.as_ptr();
    drop(first);
    let again = AlignedBuf::new(LONG_BLOCK);
    assert_eq!(again.raw.as_ptr(), addr, "the freed buffer is taken again");
    assert_eq!(again.filled().as_ptr() as usize % DIRECT_ALIGN, 0);
    assert_eq!(again.len(), 0);
    drop((again, AlignedBuf::new(BLOCK)));
    let pooled = || FREE_LARGE.lock().map(|f| f.len()).unwrap_or(0);
    assert_eq!(pooled(), 1, "small buffers are not kept");
    let permit = LargeBlocks::try_acquire().expect("a permit");
    release_idle_buffers();
    assert_eq!(pooled(), 1, "kept while a large upload runs");
    drop(permit);
    release_idle_buffers();
    assert_eq!(pooled(), 0);
}

#[tokio::test]
async fn a_request_is_answered_before_its_last_block_is_written() {
    let _serial = SERIAL.lock().await;
    let (_dir, store) = store_with_upload("u").await;
    let n = store
        .upload_append("u", Some(0), body(&[b"hello ", b"world"]), 11)
        .await
        .expect("append");
    assert_eq!(n, 11);
    // The status waits for the write, and the incremental hash is back
    // in place once it is done.
    assert_eq!(store.upload_size("u").await.expect("size"), Some(11));
    let slot = store.lock_for("u");
    assert_eq!(slot.lock().await.hash.as_ref().map(|h| h.offset), Some(11));
    let d = Digest::of_bytes(Algorithm::Sha256, b"hello world");
    assert_eq!(store.upload_commit("u", &d).await.expect("commit"), 11);
    assert_eq!(read_all(&store, &d, None).await, b"hello world");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_write_that_fails_after_the_answer_fails_the_next_request() {
    let _serial = SERIAL.lock().await;
    let (dir, store) = store_with_upload("full").await;
    // Every write to /dev/full fails with ENOSPC.
    let path = dir.path().join("_uploads").join("full");
    std::fs::remove_file(&path).expect("remove");
    std::os::unix::fs::symlink("/dev/full", &path).expect("symlink");
    // One small block: it is still to be written when the request ends.
    let n = store
        .upload_append("full", Some(0), body(&[b"abc"]), 3)
        .await
        .expect("answered before the write");
    assert_eq!(n, 3);
    let err = store
        .upload_append("full", Some(3), body(&[b"def"]), 6)
        .await
        .expect_err("the failed write is reported");
    assert!(
        matches!(&err, BlobError::Io(e) if e.to_string().contains("earlier write")),
        "{err:?}"
    );
    // Reported once; then the upload is what its file says (empty).
    let err = store
        .upload_append("full", Some(3), body(&[b"def"]), 6)
        .await
        .expect_err("range");
    assert!(
        matches!(
            err,
            BlobError::RangeMismatch {
                current: 0,
                given: 3
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn writeback_starts_at_each_whole_range_across_requests() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("upload");
    let mut expected = vec![1u8; 5 << 20];
    std::fs::write(&path, &expected).expect("write");
    let lock: UploadLock = Arc::default();
    let state = lock.clone().lock_owned().await;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    // A second 5 MiB chunk of a chunked upload: the first 8 MiB are
    // complete after it, the rest waits for the next range.
    let mut idle = Idle::new(state, file, Some(Hasher::new(Algorithm::Sha256)), 5 << 20);
    assert_eq!(idle.unflushed, 0);
    idle.append(&[2u8; 5 << 20]).expect("append");
    assert_eq!((idle.end, idle.unflushed), (10 << 20, 8 << 20));
    idle.append(&[3u8; 1 << 20]).expect("append");
    assert_eq!((idle.end, idle.unflushed), (11 << 20, 8 << 20));
    idle.append(&[4u8; 6 << 20]).expect("append");
    assert_eq!((idle.end, idle.unflushed), (17 << 20, 16 << 20));
    // A later request resumes at a range boundary below its start.
    let file = idle.file.try_clone().expect("dup");
    drop(idle);
    let resumed = Idle::new(lock.lock_owned().await, file, None, 17 << 20);
    assert_eq!(resumed.unflushed, 16 << 20);
    for (byte, len) in [(2u8, 5usize << 20), (3, 1 << 20), (4, 6 << 20)] {
        expected.extend(std::iter::repeat_n(byte, len));
    }
    assert!(
        std::fs::read(&path).expect("read") == expected,
        "bytes kept in order"
    );
}

#[tokio::test]
async fn a_direct_write_that_is_refused_goes_through_the_page_cache() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("upload");
    std::fs::write(&path, [b'a'; DIRECT_ALIGN]).expect("write");
    let store = FsBlobStore::open(dir.path()).expect("store");
    let Some((direct, plain)) = store.open_direct(&path) else {
        return; // no O_DIRECT here: nothing to refuse
    };
    // A buffer one byte past an aligned address: O_DIRECT refuses it.
    let mut buf = AlignedBuf::new(3 * DIRECT_ALIGN);
    let data: Vec<u8> = (0..2 * DIRECT_ALIGN + 6).map(|i| i as u8).collect();
    buf.extend(&[0]);
    buf.extend(&data);
    let refused = direct.write_at(&buf.filled()[1..=DIRECT_ALIGN], DIRECT_ALIGN as u64);
    if !matches!(&refused, Err(e) if e.kind() == io::ErrorKind::InvalidInput) {
        return; // this filesystem takes unaligned direct writes
    }
    write_direct(&direct, &plain, &buf.filled()[1..], DIRECT_ALIGN as u64)
        .expect("written the usual way");
    let mut expected = vec![b'a'; DIRECT_ALIGN];
    expected.extend(&data);
    let end = std::fs::metadata(&path).expect("meta").len();
    assert_eq!(end, expected.len() as u64);
    assert!(std::fs::read(&path).expect("read") == expected);
}

/// An upload file with its O_DIRECT and plain descriptors, if this
/// filesystem takes O_DIRECT.
fn direct_pair(dir: &Path) -> Option<(PathBuf, Arc<std::fs::File>, Arc<std::fs::File>)> {
    let path = dir.join("upload");
    std::fs::write(&path, b"").expect("create");
    let store = FsBlobStore::open(dir).expect("store");
    let (direct, plain) = store.open_direct(&path)?;
    Some((path, direct, plain))
}

fn block_of(bytes: &[u8]) -> AlignedBuf {
    let mut block = AlignedBuf::new(bytes.len());
    block.extend(bytes);
    block
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_hashes_in_order_and_writes_an_unaligned_end_through_the_page_cache() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((path, direct, plain)) = direct_pair(dir.path()) else {
        return; // no O_DIRECT here
    };
    let parts: Vec<Vec<u8>> = (0..5u8)
        .map(|i| vec![i; if i == 4 { 1000 } else { DIRECT_ALIGN * 3 }])
        .collect();
    let mut pipe = Pipe::start(Some(Hasher::new(Algorithm::Sha256)), direct, plain, 0);
    let mut at = 0;
    for part in &parts {
        if pipe.writes.len() >= PIPE_DEPTH {
            pipe.pop().await.expect("in flight").expect("written");
        }
        // The last block's 1,000 bytes go through the page cache.
        pipe.push(block_of(part), at).await.expect("push");
        at += part.len() as u64;
    }
    let (hasher, end) = pipe.drain().await.expect("drained");
    let all = parts.concat();
    assert_eq!(end, all.len() as u64);
    assert!(std::fs::read(&path).expect("read") == all);
    let digest = hasher.expect("hash").finish();
    assert_eq!(digest, Digest::of_bytes(Algorithm::Sha256, &all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_writer_keeps_the_lock_until_its_pipe_is_written() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((path, direct, plain)) = direct_pair(dir.path()) else {
        return;
    };
    let lock: UploadLock = Arc::default();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    let mut writer = BlockWriter::new(Idle::new(lock.clone().lock_owned().await, file, None, 0));
    writer.direct = Some((direct, plain));
    let block = vec![9u8; LARGE_BLOCK];
    for i in 0..3u64 {
        let buf = writer
            .write(block_of(&block), i * LARGE_BLOCK as u64, true, LARGE_BLOCK)
            .await
            .expect("write");
        assert_eq!(buf.len(), 0);
    }
    assert!(
        writer.pipe.is_some(),
        "whole aligned large blocks use the pipe"
    );
    drop(writer);
    // Whoever gets the lock next finds every block written.
    let _next = lock.lock().await;
    assert_eq!(
        std::fs::metadata(&path).expect("meta").len(),
        3 * LARGE_BLOCK as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pipe_write_fails_the_request_and_keeps_what_came_before() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("upload");
    std::fs::write(&path, [b'a'; DIRECT_ALIGN]).expect("write");
    // Writes through a read-only descriptor fail (EBADF).
    let read_only = Arc::new(std::fs::File::open(&path).expect("open"));
    let lock: UploadLock = Arc::default();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    let idle = Idle::new(
        lock.clone().lock_owned().await,
        file,
        None,
        DIRECT_ALIGN as u64,
    );
    let mut writer = BlockWriter::new(idle);
    writer.direct = Some((Arc::clone(&read_only), read_only));
    let block = vec![1u8; LARGE_BLOCK];
    let mut failed = None;
    for i in 0..4u64 {
        let at = (DIRECT_ALIGN + i as usize * LARGE_BLOCK) as u64;
        if let Err(e) = writer.write(block_of(&block), at, true, LARGE_BLOCK).await {
            failed = Some(e);
            break;
        }
    }
    assert!(
        matches!(&failed, Some(BlobError::Io(_))),
        "the request fails once the pipe is full: {failed:?}"
    );
    drop(writer);
    let slot = lock.lock().await;
    assert!(slot.failed.is_none(), "told to the client already");
    assert!(std::fs::read(&path).expect("read") == [b'a'; DIRECT_ALIGN]);
}

/// Deterministic bytes, and a body of them in odd-sized pieces (so
/// blocks never line up with them).
fn content(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

fn pieces(part: &[u8]) -> ByteStream {
    let items: Vec<Result<Bytes, io::Error>> = part
        .chunks(65_521)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(items))
}

/// Where the parked pipe of upload `id` began and ends, if one is parked.
async fn parked(store: &FsBlobStore, id: &str) -> Option<(u64, u64)> {
    let slot = store.lock_for(id);
    let slot = slot.lock().await;
    slot.parked.as_ref().map(|p| (p.pipe.start, p.pipe.end))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_chunk_continues_a_parked_pipe() {
    let _serial = SERIAL.lock().await;
    let (_dir, store) = store_with_upload("u").await;
    const C: u64 = 3 << 20;
    let all = content(3 * C as usize + 4096 + 1000, 1);
    // Appends all[from..to] as one chunk whose range ends at `to`.
    let chunk = |from: u64, to: u64| {
        store.upload_append(
            "u",
            Some(from),
            pieces(&all[from as usize..to as usize]),
            to,
        )
    };
    assert_eq!(chunk(0, C).await.expect("first chunk"), C);
    if !store.direct.load(Ordering::Relaxed) {
        return; // no O_DIRECT here: no pipes
    }
    assert_eq!(parked(&store, "u").await, Some((0, C)));
    // The next chunk continues the pipe: its run still begins at 0.
    assert_eq!(chunk(C, 2 * C).await.expect("second chunk"), 2 * C);
    assert_eq!(parked(&store, "u").await, Some((0, 2 * C)));
    // A short chunk drains it and goes through the page cache.
    let short = 2 * C + 4096;
    assert_eq!(chunk(2 * C, short).await.expect("short chunk"), short);
    assert_eq!(parked(&store, "u").await, None);
    assert_eq!(
        chunk(short, short + C).await.expect("long chunk"),
        short + C
    );
    assert_eq!(parked(&store, "u").await, Some((short, short + C)));
    // A chunk at the wrong offset is refused, and the pipe drained.
    let wrong = chunk(0, C).await;
    assert!(
        matches!(wrong, Err(BlobError::RangeMismatch { current, given: 0 }) if current == short + C),
        "{wrong:?}"
    );
    assert_eq!(parked(&store, "u").await, None);
    let end = all.len() as u64;
    assert_eq!(chunk(short + C, end).await.expect("last chunk"), end);
    // The incremental hash came through every hand-over.
    assert_eq!(store.upload_size("u").await.expect("size"), Some(end));
    {
        let slot = store.lock_for("u");
        assert_eq!(slot.lock().await.hash.as_ref().map(|h| h.offset), Some(end));
    }
    let d = Digest::of_bytes(Algorithm::Sha256, &all);
    assert_eq!(store.upload_commit("u", &d).await.expect("commit"), end);
    assert!(read_all(&store, &d, None).await == all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_pipe_nobody_continues_is_drained() {
    let _serial = SERIAL.lock().await;
    let (_dir, store) = store_with_upload("u").await;
    const C: usize = 4 << 20;
    let all = content(C, 2);
    store
        .upload_append("u", Some(0), pieces(&all), C as u64)
        .await
        .expect("chunk");
    if parked(&store, "u").await.is_none() {
        assert!(
            !store.direct.load(Ordering::Relaxed),
            "a whole chunk parks its pipe"
        );
        return;
    }
    tokio::time::sleep(PARK_IDLE + Duration::from_millis(300)).await;
    let slot = store.lock_for("u");
    let slot = slot.lock().await;
    assert!(slot.parked.is_none(), "drained after {PARK_IDLE:?}");
    assert_eq!(slot.hash.as_ref().map(|h| h.offset), Some(C as u64));
    drop(slot);
    let path = store.upload_path("u").expect("path");
    assert!(std::fs::read(path).expect("read") == all);
}

/// Upload "u" holding `DIRECT_ALIGN` bytes of `a`, with a pipe parked
/// after them whose one block in flight fails to be written (writes
/// through a read-only descriptor fail with EBADF). Returns where the
/// failed block starts and where the pipe ends.
async fn park_a_failing_pipe(store: &FsBlobStore) -> (PathBuf, u64, u64) {
    let path = store.upload_path("u").expect("path");
    std::fs::write(&path, [b'a'; DIRECT_ALIGN]).expect("write");
    let read_only = Arc::new(std::fs::File::open(&path).expect("open"));
    let at = DIRECT_ALIGN as u64;
    let mut pipe = Pipe::start(None, Arc::clone(&read_only), Arc::clone(&read_only), at);
    pipe.push(block_of(&vec![1u8; LARGE_BLOCK]), at)
        .await
        .expect("push");
    let end = pipe.end;
    let slot = store.lock_for("u");
    let mut slot = slot.lock().await;
    slot.hash = None;
    slot.parked = Some(Parked {
        pipe,
        direct: (Arc::clone(&read_only), read_only),
        large: LargeBlocks::try_acquire().expect("a permit"),
        spare: None,
    });
    (path, at, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_of_a_parked_pipe_fails_the_chunk_that_continues_it() {
    let _serial = SERIAL.lock().await;
    let (_dir, store) = store_with_upload("u").await;
    let (path, at, end) = park_a_failing_pipe(&store).await;
    let next = content(3 << 20, 3);
    let continued = store
        .upload_append("u", Some(end), pieces(&next), end + next.len() as u64)
        .await;
    assert!(matches!(continued, Err(BlobError::Io(_))), "{continued:?}");
    // The file is cut where the failed block starts, and the client,
    // told already, resumes from there.
    assert_eq!(store.upload_size("u").await.expect("size"), Some(at));
    assert!(std::fs::read(&path).expect("read") == [b'a'; DIRECT_ALIGN]);
    let n = store
        .upload_append("u", Some(at), body(&[b"resumed"]), at + 7)
        .await
        .expect("resumed");
    assert_eq!(n, at + 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_query_reports_a_parked_pipe_that_failed() {
    let _serial = SERIAL.lock().await;
    let (_dir, store) = store_with_upload("u").await;
    let (path, at, _) = park_a_failing_pipe(&store).await;
    assert_eq!(store.upload_size("u").await.expect("size"), Some(at));
    assert!(std::fs::read(&path).expect("read") == [b'a'; DIRECT_ALIGN]);
    // The next request hears of the failure once; then the upload goes on.
    let told = store
        .upload_append("u", Some(at), body(&[b"x"]), at + 1)
        .await;
    assert!(matches!(told, Err(BlobError::Io(_))), "{told:?}");
    let n = store
        .upload_append("u", Some(at), body(&[b"x"]), at + 1)
        .await
        .expect("resumed");
    assert_eq!(n, at + 1);
}

#[tokio::test]
async fn lists_blobs_in_digest_order_page_by_page() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsBlobStore::open(dir.path()).expect("open");
    let mut expected = Vec::new();
    for (i, algorithm) in [Algorithm::Sha256, Algorithm::Sha512].iter().enumerate() {
        for n in 0..7u8 {
            let data = vec![n; usize::from(n) + i];
            let d = Digest::of_bytes(*algorithm, &data);
            let id = format!("u{i}{n}");
            store.upload_create(&id, *algorithm).await.expect("create");
            let chunk: ByteStream = Box::pin(futures_util::stream::iter(vec![Ok::<_, io::Error>(
                Bytes::from(data.clone()),
            )]));
            store
                .upload_append(&id, Some(0), chunk, 100)
                .await
                .expect("append");
            store.upload_commit(&id, &d).await.expect("commit");
            expected.push((d, data.len() as u64));
        }
    }
    expected.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut listed = Vec::new();
    let mut after: Option<Digest> = None;
    loop {
        let page = store.list_blobs(after.as_ref(), 3).await.expect("list");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.0.clone());
        listed.extend(page);
    }
    assert_eq!(listed, expected);
    // Deleted blobs are no longer listed.
    assert!(store.delete(&expected[0].0).await.expect("delete"));
    let all = store.list_blobs(None, 100).await.expect("list");
    assert_eq!(all, expected[1..].to_vec());
}

#[tokio::test]
async fn large_uploads_in_large_and_small_blocks_keep_every_byte_in_order() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsBlobStore::open(dir.path()).expect("open");
    let content = content((14 << 20) + 12_345, 0);
    let d = Digest::of_bytes(Algorithm::Sha256, &content);
    store
        .upload_create("big", Algorithm::Sha256)
        .await
        .expect("create");
    // An unranged request (large blocks), a small ranged chunk (small
    // blocks), then a large ranged one, long enough for long blocks.
    let (a, b) = (3 << 20, (3 << 20) + 100_000);
    let n = store
        .upload_append("big", None, pieces(&content[..a]), 1 << 30)
        .await
        .expect("first");
    assert_eq!(n, a as u64);
    let n = store
        .upload_append("big", Some(a as u64), pieces(&content[a..b]), b as u64)
        .await
        .expect("second");
    assert_eq!(n, b as u64);
    let end = content.len() as u64;
    let n = store
        .upload_append("big", Some(b as u64), pieces(&content[b..]), end)
        .await
        .expect("third");
    assert_eq!(n, end);
    assert_eq!(store.upload_commit("big", &d).await.expect("commit"), end);
    // Where the filesystem takes O_DIRECT, the large blocks went past
    // the page cache: the first request's after its switch to large
    // blocks, and the third's after its first (unaligned) one, long
    // ones included.
    if store.direct.load(Ordering::Relaxed) {
        let blob = std::fs::File::open(store.blob_path(&d)).expect("blob");
        for offset in [(5 << 19) as u64, 5 << 20, 13 << 20] {
            let mut byte = [0u8; 1];
            let mut buf = tokio::io::ReadBuf::new(&mut byte);
            let cached = crate::sys::read_cached(&blob, &mut buf, 1, offset);
            assert!(
                matches!(&cached, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                "offset {offset}: {cached:?}"
            );
        }
    }
    assert_eq!(read_all(&store, &d, None).await, content);
    assert_eq!(
        LARGE_UPLOADS.load(Ordering::Acquire),
        0,
        "permits given back"
    );
}

#[tokio::test]
async fn chunked_upload_commits_and_dedups() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsBlobStore::open(dir.path()).expect("open");
    let d = Digest::of_bytes(Algorithm::Sha256, b"hello world");
    store
        .upload_create("u1", Algorithm::Sha256)
        .await
        .expect("create");
    assert_eq!(
        store
            .upload_append("u1", Some(0), body(&[b"hello"]), 100)
            .await
            .expect("a"),
        5
    );
    let err = store
        .upload_append("u1", Some(3), body(&[b"x"]), 100)
        .await
        .expect_err("range");
    assert!(matches!(
        err,
        BlobError::RangeMismatch {
            current: 5,
            given: 3
        }
    ));
    assert_eq!(
        store
            .upload_append("u1", Some(5), body(&[b" wor", b"ld"]), 100)
            .await
            .expect("b"),
        11
    );
    assert_eq!(store.upload_commit("u1", &d).await.expect("commit"), 11);
    assert_eq!(store.stat(&d).await.expect("stat"), Some(11));
    assert_eq!(read_all(&store, &d, None).await, b"hello world");
    assert_eq!(read_all(&store, &d, Some((6, 10))).await, b"world");
    assert_eq!(store.upload_size("u1").await.expect("size"), None);

    // A second upload of the same content is deduplicated.
    store
        .upload_create("u2", Algorithm::Sha256)
        .await
        .expect("create");
    store
        .upload_append("u2", Some(0), body(&[b"hello world"]), 100)
        .await
        .expect("a");
    store.upload_commit("u2", &d).await.expect("commit");
    assert!(store.list_uploads().await.expect("list").is_empty());
}

#[tokio::test]
async fn mismatch_and_limits_store_nothing() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsBlobStore::open(dir.path()).expect("open");
    let wrong = Digest::of_bytes(Algorithm::Sha256, b"other");
    store
        .upload_create("u", Algorithm::Sha256)
        .await
        .expect("create");
    store
        .upload_append("u", Some(0), body(&[b"data"]), 100)
        .await
        .expect("append");
    let err = store
        .upload_commit("u", &wrong)
        .await
        .expect_err("mismatch");
    assert!(matches!(err, BlobError::DigestMismatch { .. }));
    assert_eq!(store.stat(&wrong).await.expect("stat"), None);
    assert_eq!(store.upload_size("u").await.expect("size"), None);

    store
        .upload_create("v", Algorithm::Sha256)
        .await
        .expect("create");
    let err = store
        .upload_append("v", Some(0), body(&[b"0123", b"456789"]), 8)
        .await
        .expect_err("limit");
    assert!(matches!(err, BlobError::TooLarge { limit: 8 }));
    assert!(matches!(
        store.upload_path("../x"),
        Err(BlobError::UploadUnknown(_))
    ));
}

#[tokio::test]
async fn an_upload_cut_short_with_a_hole_resumes_from_the_hole() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = FsBlobStore::open(dir.path()).expect("open");
        store
            .upload_create("h", Algorithm::Sha256)
            .await
            .expect("create");
    }
    // As a crash mid-pipe leaves it: a later block written, the one
    // before it not.
    let path = dir.path().join("_uploads").join("h");
    let first = content(64 << 10, 4);
    let later = content(64 << 10, 5);
    {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.write_all_at(&first, 0).expect("first");
        file.write_all_at(&later, 1 << 20).expect("later");
        let hole = crate::sys::first_hole(&file).expect("seek");
        if hole != first.len() as u64 {
            return; // this filesystem does not report holes
        }
    }
    // After the restart the upload resumes where the hole starts.
    let store = FsBlobStore::open(dir.path()).expect("reopen");
    let have = first.len() as u64;
    assert_eq!(store.upload_size("h").await.expect("size"), Some(have));
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), have);
    let rest = content(100_000, 6);
    let end = have + rest.len() as u64;
    let n = store
        .upload_append("h", Some(have), pieces(&rest), end)
        .await
        .expect("resumed");
    assert_eq!(n, end);
    let all = [first, rest].concat();
    let d = Digest::of_bytes(Algorithm::Sha256, &all);
    assert_eq!(store.upload_commit("h", &d).await.expect("commit"), end);
    assert!(read_all(&store, &d, None).await == all);
    // An upload this process writes is never cut, zeros and all.
    store
        .upload_create("z", Algorithm::Sha256)
        .await
        .expect("create");
    let zeros = vec![0u8; 3 << 20];
    store
        .upload_append("z", Some(0), pieces(&zeros), zeros.len() as u64)
        .await
        .expect("zeros");
    assert_eq!(
        store.upload_size("z").await.expect("size"),
        Some(zeros.len() as u64)
    );
}

#[tokio::test]
async fn resumes_after_restart_and_rehashes_with_other_algorithm() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let content = b"resumable content";
    {
        let store = FsBlobStore::open(dir.path()).expect("open");
        store
            .upload_create("r", Algorithm::Sha256)
            .await
            .expect("create");
        store
            .upload_append("r", Some(0), body(&[b"resumable "]), 100)
            .await
            .expect("a");
        // The request may be answered before its last block is
        // written; the upload's next operation waits for it.
        assert_eq!(store.upload_size("r").await.expect("size"), Some(10));
    }
    // A new instance has no in-memory hash state.
    let store = FsBlobStore::open(dir.path()).expect("reopen");
    assert_eq!(store.upload_size("r").await.expect("size"), Some(10));
    store
        .upload_append("r", None, body(&[b"content"]), 100)
        .await
        .expect("b");
    let d = Digest::of_bytes(Algorithm::Sha512, content);
    assert_eq!(
        store.upload_commit("r", &d).await.expect("commit"),
        content.len() as u64
    );
    assert_eq!(read_all(&store, &d, None).await, content);
}
