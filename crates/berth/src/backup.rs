//! `berth backup DEST` and `berth restore SRC`: online backups of the
//! embedded database (SQLite) with the blobs it references, and their
//! restore into an empty data directory.
//!
//! A backup directory holds `berth.db` (a consistent copy of the database),
//! `blobs/sha256/ab/abcdef…` (every live blob, named by digest as the
//! filesystem storage names them) and `backup.json` (what it holds). The
//! database copy is taken after the backup lease is held, so the collector
//! claims none of its blobs until they are copied; the copy replaces the
//! previous `berth.db` by a rename only once all its blobs are in place, so
//! a backup killed midway leaves the previous one whole. Blobs already in
//! the directory are not copied again (they are named by content), and
//! blobs the new copy no longer needs are removed after the rename.
//!
//! Every blob is hashed as it is copied, both ways: a backup refuses to
//! finish over a damaged blob, and a restore over a damaged backup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use berth_blob::{BlobStore, ByteStream, FsBlobStore};
use berth_meta::backup::{snapshot_into, Snapshot, BACKUP_LEASE};
use berth_meta::{MetaStore, SqliteStore, SCHEMA_VERSION};
use berth_oci::{Digest, Hasher};
use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::StorageKind;
use crate::Config;

/// Blobs copied at once (storage requests overlap; memory stays one chunk each).
const PARALLEL: usize = 4;
/// Bytes read or written at a time.
const CHUNK: usize = 1 << 20;
/// How long the backup lease lasts unless renewed (renewed every third of it).
const LEASE: Duration = Duration::from_secs(60);
/// Blobs listed from the database copy at a time.
const PAGE: i64 = 1000;

/// What a backup directory's `backup.json` says.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    berth_version: String,
    schema_version: i64,
    created_at: String,
    blobs: u64,
    bytes: u64,
}

/// Totals of a backup, printed when it ends.
#[derive(Debug, Default)]
struct Totals {
    blobs: u64,
    bytes: u64,
    copied: u64,
    copied_bytes: u64,
    pruned: u64,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The embedded database's path, or why these commands cannot serve.
fn embedded(config: &Config) -> anyhow::Result<PathBuf> {
    if config.database.url.is_some() {
        bail!(
            "berth backup and restore handle the embedded database (SQLite); with PostgreSQL, \
             back up the database with its own tools and the bucket as docs/operations.md describes"
        );
    }
    if config.region.is_some() {
        bail!(
            "berth backup and restore handle a single region; a platform of several regions \
             (one PostgreSQL database, a bucket per region) is backed up with the database's \
             and the buckets' own tools as docs/operations.md describes"
        );
    }
    Ok(config.data_dir.join("berth.db"))
}

/// Where a blob lives in a backup directory.
fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    root.join("blobs")
        .join(digest.algorithm().as_str())
        .join(&hex[..2])
        .join(hex)
}

async fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await?
        .context("syncing the backup directory")
}

async fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Write a backup into `dest` while Berth may be serving.
pub async fn backup(config: &Config, dest: &Path) -> anyhow::Result<()> {
    let db = embedded(config)?;
    if !db.exists() {
        bail!("no database at {}: nothing to back up", db.display());
    }
    let store = Arc::new(
        SqliteStore::open(&db)
            .await
            .with_context(|| format!("opening {}", db.display()))?,
    );
    let blobs = config.open_regions(store.clone())?.local().blobs.clone();
    tokio::fs::create_dir_all(dest.join("blobs"))
        .await
        .with_context(|| format!("creating {}", dest.display()))?;

    // The lease first, then the copy: from the lease on, no blob the copy
    // calls live can be claimed by a collection.
    let lease = format!("{BACKUP_LEASE}{}", uuid::Uuid::new_v4());
    let owner = format!("pid {}", std::process::id());
    let now = now_millis();
    if !store
        .try_lease(&lease, &owner, now, now + LEASE.as_millis() as i64)
        .await?
    {
        bail!("could not take the backup lease {lease}");
    }
    let lost = Arc::new(AtomicBool::new(false));
    let renew = tokio::spawn(renew_lease(
        store.clone(),
        lease.clone(),
        owner.clone(),
        lost.clone(),
    ));
    let result = copy(&store, &blobs, dest, &lost).await;
    renew.abort();
    // Let collections go on (the lease would lapse by itself anyway).
    if let Err(e) = store.release_lease(&lease, &owner).await {
        tracing::warn!(error = %e, "could not release the backup lease; it lapses in a minute");
    }
    let t = result?;
    println!(
        "backup in {}: {} blobs, {} bytes ({} blobs, {} bytes copied; {} no longer needed removed)",
        dest.display(),
        t.blobs,
        t.bytes,
        t.copied,
        t.copied_bytes,
        t.pruned
    );
    Ok(())
}

async fn renew_lease(store: Arc<SqliteStore>, lease: String, owner: String, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(LEASE / 3).await;
        let now = now_millis();
        match store
            .try_lease(&lease, &owner, now, now + LEASE.as_millis() as i64)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // The database may come back before the lease lapses.
            Err(e) => tracing::warn!(error = %e, "could not renew the backup lease"),
        }
    }
}

async fn copy(
    store: &SqliteStore,
    blobs: &Arc<dyn BlobStore>,
    dest: &Path,
    lost: &AtomicBool,
) -> anyhow::Result<Totals> {
    let partial = dest.join("berth.db.partial");
    for suffix in ["", "-wal", "-shm", "-journal"] {
        remove_if_present(&PathBuf::from(format!("{}{suffix}", partial.display()))).await?;
    }
    snapshot_into(store, &partial)
        .await
        .context("copying the database")?;
    let snapshot = Snapshot::open(&partial, true).await?;
    snapshot
        .seal()
        .await
        .context("preparing the database copy")?;
    let schema_version = snapshot.schema_version().await?;

    let mut t = Totals::default();
    let mut after = String::new();
    loop {
        let page = snapshot.blobs(&after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        let copied: Vec<Option<u64>> = stream::iter(page.iter().cloned())
            .map(|(digest, size)| copy_blob(blobs, dest, digest, size))
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        for ((_, size), copied) in page.iter().zip(&copied) {
            t.blobs += 1;
            t.bytes += *size as u64;
            if let Some(n) = copied {
                t.copied += 1;
                t.copied_bytes += n;
            }
        }
        if lost.load(Ordering::SeqCst) {
            bail!("the backup lease was lost (the database was out of reach for a minute); nothing was replaced, run the backup again");
        }
    }
    snapshot.close().await;

    // The commit point: the copy replaces the previous database whole.
    let file = tokio::fs::File::open(&partial).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, dest.join("berth.db")).await?;
    sync_dir(dest).await?;
    let manifest = Manifest {
        berth_version: env!("CARGO_PKG_VERSION").into(),
        schema_version,
        created_at: httpdate_now(),
        blobs: t.blobs,
        bytes: t.bytes,
    };
    let tmp = dest.join("backup.json.partial");
    tokio::fs::write(&tmp, serde_json::to_vec_pretty(&manifest)?).await?;
    tokio::fs::rename(&tmp, dest.join("backup.json")).await?;

    t.pruned = prune(dest).await?;
    Ok(t)
}

fn httpdate_now() -> String {
    // RFC 3339 in UTC, from the Unix time (no calendar crate needed).
    let secs = now_millis() / 1000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil: (year, month, day) of a day number.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Copy one blob into the backup unless it is there already; returns the
/// bytes copied (`None` when it was there).
async fn copy_blob(
    blobs: &Arc<dyn BlobStore>,
    dest: &Path,
    digest: String,
    size: i64,
) -> anyhow::Result<Option<u64>> {
    let digest = Digest::parse(&digest).with_context(|| format!("a blob named {digest:?}"))?;
    let path = blob_path(dest, &digest);
    if let Ok(meta) = tokio::fs::metadata(&path).await {
        if meta.len() == size as u64 {
            return Ok(None);
        }
    }
    let Some(mut chunks) = blobs.open_chunks(&digest, None, CHUNK).await? else {
        bail!(
            "blob {digest} is missing from storage although the database holds it; \
             run `berth fsck` (nothing was replaced in the backup)"
        );
    };
    let dir = path.parent().expect("blob paths have a parent");
    tokio::fs::create_dir_all(dir).await?;
    let tmp = path.with_extension("partial");
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .with_context(|| format!("creating {}", tmp.display()))?;
    let mut hasher = Hasher::new(digest.algorithm());
    let mut n = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.with_context(|| format!("reading blob {digest}"))?;
        hasher.update(&chunk);
        n += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    let got = hasher.finish();
    if got != digest || n != size as u64 {
        remove_if_present(&tmp).await?;
        bail!(
            "blob {digest} is damaged in storage ({n} bytes hashing to {got}); \
             nothing was replaced in the backup"
        );
    }
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&tmp, &path).await?;
    Ok(Some(n))
}

/// Remove blob files the backup's database no longer refers to (and
/// leftovers of an interrupted copy). Returns how many blobs went.
async fn prune(dest: &Path) -> anyhow::Result<u64> {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let root = dest.join("blobs");
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(e) = entries.next_entry().await? {
            let path = e.path();
            if e.file_type().await?.is_dir() {
                dirs.push(path);
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let algorithm = path
                .parent()
                .and_then(Path::parent)
                .and_then(Path::file_name)
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.insert(format!("{algorithm}:{name}"), path);
        }
    }
    let snapshot = Snapshot::open(&dest.join("berth.db"), false).await?;
    let mut after = String::new();
    loop {
        let page = snapshot.blobs(&after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        for (digest, _) in &page {
            files.remove(digest);
        }
    }
    snapshot.close().await;
    let mut pruned = 0;
    for (name, path) in files {
        remove_if_present(&path).await?;
        if !name.ends_with(".partial") {
            pruned += 1;
        }
    }
    Ok(pruned)
}

/// Restore a backup into an empty data directory (and empty storage).
pub async fn restore(config: &Config, src: &Path) -> anyhow::Result<()> {
    let db = embedded(config)?;
    if config.storage.kind != StorageKind::Fs {
        bail!(
            "berth restore writes to filesystem storage; to restore into a bucket, restore to \
             the filesystem and copy as docs/operations.md describes"
        );
    }
    let path = config.storage_path();
    let blobs: Arc<dyn BlobStore> = Arc::new(
        FsBlobStore::open(&path)
            .with_context(|| format!("opening blob storage at {}", path.display()))?,
    );
    let source = src.join("berth.db");
    if !source.exists() {
        bail!(
            "{} holds no backup (no berth.db): was it written by berth backup?",
            src.display()
        );
    }
    if db.exists() {
        bail!(
            "{} exists: restore needs an empty data directory (move the old one away first)",
            db.display()
        );
    }
    if !blobs.list_blobs(None, 1).await?.is_empty() {
        bail!("the blob storage is not empty: restore needs empty storage");
    }
    let snapshot = Snapshot::open(&source, false).await?;
    let schema_version = snapshot.schema_version().await?;
    if schema_version > SCHEMA_VERSION {
        bail!(
            "the backup is at schema version {schema_version}, newer than this Berth knows \
             ({SCHEMA_VERSION}): restore it with the release that wrote it or a later one"
        );
    }
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut after = String::new();
    loop {
        let page = snapshot.blobs(&after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        stream::iter(page.iter().cloned())
            .map(|(digest, _)| restore_blob(&blobs, src, digest))
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        count += page.len() as u64;
        bytes += page.iter().map(|(_, s)| *s as u64).sum::<u64>();
    }
    snapshot.close().await;

    // The database last: a restore killed midway leaves no database, so
    // Berth does not start on half the blobs, and it can be run again
    // once the storage is emptied.
    tokio::fs::create_dir_all(&config.data_dir).await?;
    let tmp = db.with_extension("db.partial");
    tokio::fs::copy(&source, &tmp)
        .await
        .with_context(|| format!("copying {} to {}", source.display(), tmp.display()))?;
    tokio::fs::File::open(&tmp).await?.sync_all().await?;
    tokio::fs::rename(&tmp, &db).await?;
    sync_dir(&config.data_dir).await?;
    // Migrate a backup of an earlier release to this one's schema now.
    let store = SqliteStore::open(&db)
        .await
        .with_context(|| format!("opening the restored {}", db.display()))?;
    let now_at = store.schema_version().await?;
    println!(
        "restored {count} blobs ({bytes} bytes) and the database (schema {schema_version}{}) into {}",
        if now_at != schema_version {
            format!(", migrated to {now_at}")
        } else {
            String::new()
        },
        config.data_dir.display()
    );
    Ok(())
}

/// Put one blob of the backup into storage, as an upload whose commit
/// checks its digest.
async fn restore_blob(
    blobs: &Arc<dyn BlobStore>,
    src: &Path,
    digest: String,
) -> anyhow::Result<()> {
    let digest = Digest::parse(&digest).with_context(|| format!("a blob named {digest:?}"))?;
    let path = blob_path(src, &digest);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "the backup lacks blob {digest} ({} is missing)",
                path.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let id = format!("restore-{}", uuid::Uuid::new_v4());
    blobs.upload_create(&id, digest.algorithm()).await?;
    let body: ByteStream = Box::pin(stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((bytes::Bytes::from(buf), file)))
    }));
    blobs.upload_append(&id, Some(0), body, u64::MAX).await?;
    if let Err(e) = blobs.upload_commit(&id, &digest).await {
        let _ = blobs.upload_delete(&id).await;
        return Err(e).with_context(|| {
            format!(
                "blob {digest} of the backup is damaged ({})",
                path.display()
            )
        });
    }
    Ok(())
}
