//! Directory listings in digest order, and hashing a file again.

use super::*;

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Names of the entries of `dir` in order, if it exists.
pub(super) fn sorted_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                if let Ok(name) = entry?.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    names.sort();
    Ok(names)
}

/// Blobs under `root/<algorithm>/<first two hex digits>/<hex>` whose digest
/// sorts after `after`, skipping whole shards that sort before it.
pub(super) fn list_sorted(
    root: &Path,
    after: &str,
    limit: usize,
) -> Result<Vec<(Digest, u64)>, BlobError> {
    let mut out = Vec::new();
    for algorithm in sorted_names(root)? {
        if Algorithm::parse(&algorithm).is_err() {
            continue;
        }
        let prefix = format!("{algorithm}:");
        for shard in sorted_names(&root.join(&algorithm))? {
            let start = format!("{prefix}{shard}");
            if after.get(..start.len()).is_some_and(|a| start.as_str() < a) {
                continue;
            }
            let dir = root.join(&algorithm).join(&shard);
            for hex in sorted_names(&dir)? {
                let name = format!("{prefix}{hex}");
                if name.as_str() <= after {
                    continue;
                }
                let Ok(digest) = name.parse::<Digest>() else {
                    continue;
                };
                let size = match std::fs::metadata(dir.join(&hex)) {
                    Ok(m) => m.len(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                out.push((digest, size));
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

pub(super) fn hash_file(file: &mut std::fs::File, algorithm: Algorithm) -> io::Result<Digest> {
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}
