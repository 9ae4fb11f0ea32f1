//! One pass over a layer: detect its compression (gzip, zstd or none),
//! walk the tar stream within the limits, and hand each file that is a
//! package database to its reader. Entries escaping the root (`..`), a
//! corrupt stream or a bound reached end in a note, never a panic.

use std::io::{self, BufRead, BufReader, Read};

use crate::{
    apk, dpkg, gobin, java, npm, os_release, python, rpm, rustbin, LayerInventory, Limits,
};

/// Counts what is read and fails past the limit.
struct Counted<R> {
    inner: R,
    read: u64,
    max: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(io::Error::other(format!(
                "over {} uncompressed bytes",
                self.max
            )));
        }
        Ok(n)
    }
}

/// A path as the layer means it: relative, `.` and empty parts dropped;
/// `None` when it climbs out of the root.
fn normalise(raw: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in raw.split('/') {
        match p {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn read_bounded(entry: &mut impl Read, size: u64, max: u64) -> io::Result<Option<Vec<u8>>> {
    if size > max {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(size as usize);
    entry.take(max).read_to_end(&mut buf)?;
    Ok(Some(buf))
}

/// Inventory one layer from its blob's bytes (compressed or not).
pub fn read_layer<R: Read>(blob: R, limits: &Limits) -> LayerInventory {
    let mut inv = LayerInventory::default();
    let mut blob = BufReader::with_capacity(64 * 1024, blob);
    let magic = match blob.fill_buf() {
        Ok(b) => b.get(..4).map(<[u8]>::to_vec).unwrap_or_default(),
        Err(e) => {
            inv.stopped = Some(format!("the layer could not be read: {e}"));
            return inv;
        }
    };
    let stream: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(blob))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        match ruzstd::decoding::StreamingDecoder::new(blob) {
            Ok(d) => Box::new(d),
            Err(e) => {
                inv.stopped = Some(format!("the layer's zstd stream: {e}"));
                return inv;
            }
        }
    } else {
        Box::new(blob)
    };
    let mut counted = Counted {
        inner: stream,
        read: 0,
        max: limits.max_bytes,
    };
    walk(&mut counted, &mut inv, limits);
    inv.bytes = counted.read;
    inv
}

/// Inventory one file at `path` (as a layer would hold it) from its bytes.
pub fn read_file(path: &str, data: &[u8], mode: u32, limits: &Limits) -> LayerInventory {
    let mut inv = LayerInventory::default();
    let mut reader = data;
    if let Err(e) = inspect(&mut reader, path, data.len() as u64, mode, &mut inv, limits) {
        inv.stopped = Some(format!("{path}: {e}"));
    }
    inv
}

fn walk(stream: &mut impl Read, inv: &mut LayerInventory, limits: &Limits) {
    let mut archive = tar::Archive::new(stream);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            inv.stopped = Some(format!("the layer is no tar stream: {e}"));
            return;
        }
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                inv.stopped = Some(format!("the layer's stream broke off: {e}"));
                return;
            }
        };
        inv.entries += 1;
        if inv.entries > limits.max_entries {
            inv.stopped = Some(format!(
                "over {} entries: the rest was not read",
                limits.max_entries
            ));
            return;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = normalise(&raw) else {
            inv.note(format!("{raw}: a path outside the image's root, ignored"));
            continue;
        };
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        if file == ".wh..wh..opq" {
            inv.opaque.push(dir.to_owned());
            continue;
        }
        if let Some(name) = file.strip_prefix(".wh.") {
            inv.whiteouts.push(if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            });
            continue;
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let size = entry.size();
        let mode = entry.header().mode().unwrap_or(0);
        if let Err(e) = inspect(&mut entry, &path, size, mode, inv, limits) {
            inv.stopped = Some(format!("the layer's stream broke off in {path}: {e}"));
            return;
        }
        if inv.packages.len() > limits.max_packages {
            inv.packages.truncate(limits.max_packages);
            inv.stopped = Some(format!(
                "over {} packages: the rest was not read",
                limits.max_packages
            ));
            return;
        }
    }
}

fn inspect(
    entry: &mut impl Read,
    path: &str,
    size: u64,
    mode: u32,
    inv: &mut LayerInventory,
    limits: &Limits,
) -> io::Result<()> {
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let too_big = |inv: &mut LayerInventory, max: u64| {
        inv.note(format!(
            "{path}: {size} bytes, over the {max}-byte limit: not read"
        ));
    };
    if path == "var/lib/dpkg/status"
        || path.starts_with("var/lib/dpkg/status.d/") && !path.ends_with(".md5sums")
    {
        inv.databases.push(path.to_owned());
        match read_bounded(entry, size, limits.max_database)? {
            Some(b) => inv.packages.extend(dpkg::parse(&text(b), path)),
            None => too_big(inv, limits.max_database),
        }
    } else if path == "lib/apk/db/installed" {
        inv.databases.push(path.to_owned());
        match read_bounded(entry, size, limits.max_database)? {
            Some(b) => inv.packages.extend(apk::parse(&text(b), path)),
            None => too_big(inv, limits.max_database),
        }
    } else if rpm::is_database(path) {
        inv.databases.push(path.to_owned());
        match read_bounded(entry, size, limits.max_database)? {
            Some(b) => match rpm::parse(&b, path) {
                Ok(p) => inv.packages.extend(p),
                Err(e) => inv.note(e),
            },
            None => too_big(inv, limits.max_database),
        }
    } else if let Some(why) = rpm::unread(path, size) {
        inv.note(format!("{path}: {why}"));
    } else if path == "etc/os-release" || path == "usr/lib/os-release" {
        if let Some(b) = read_bounded(entry, size, limits.max_metadata)? {
            if let Some(os) = os_release::parse(&text(b)) {
                if path == "etc/os-release" || inv.os.is_none() {
                    inv.os = Some(os);
                }
            }
        }
    } else if python::is_metadata(path) {
        inv.databases.push(path.to_owned());
        match read_bounded(entry, size, limits.max_metadata)? {
            Some(b) => inv.packages.extend(python::parse(&text(b), path)),
            None => too_big(inv, limits.max_metadata),
        }
    } else if npm::is_manifest(path) {
        inv.databases.push(path.to_owned());
        match read_bounded(entry, size, limits.max_metadata)? {
            Some(b) => inv.packages.extend(npm::parse(&b, path)),
            None => too_big(inv, limits.max_metadata),
        }
    } else if java::is_pom_properties(path) {
        inv.databases.push(path.to_owned());
        match read_bounded(entry, size, limits.max_metadata)? {
            Some(b) => inv.packages.extend(java::parse_properties(&text(b), path)),
            None => too_big(inv, limits.max_metadata),
        }
    } else if java::is_archive(path) {
        inv.databases.push(path.to_owned());
        match read_bounded(entry, size, limits.max_binary)? {
            Some(b) => {
                let mut notes = Vec::new();
                inv.packages
                    .extend(java::parse_archive(&b, path, limits, &mut notes));
                for n in notes {
                    inv.note(n);
                }
            }
            None => too_big(inv, limits.max_binary),
        }
    } else if mode & 0o111 != 0 && size >= 64 {
        let mut head = [0u8; 4];
        entry.read_exact(&mut head)?;
        if &head != b"\x7fELF" {
            return Ok(());
        }
        if size > limits.max_binary {
            too_big(inv, limits.max_binary);
            return Ok(());
        }
        let mut bin = Vec::with_capacity(size as usize);
        bin.extend_from_slice(&head);
        entry.take(limits.max_binary).read_to_end(&mut bin)?;
        let mut found = false;
        for result in [gobin::parse(&bin, path), rustbin::parse(&bin, path)] {
            match result {
                Ok(p) if !p.is_empty() => {
                    found = true;
                    inv.packages.extend(p);
                }
                Ok(_) => {}
                Err(e) => inv.note(e),
            }
        }
        if found {
            inv.databases.push(path.to_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
