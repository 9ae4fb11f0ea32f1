//! Advisory bundles as an OCI artifact carries them (what `oras push`
//! makes of files and directories): a JSON layer holding one OSV document
//! or an array of them, or a tar layer (plain or gzip) of such `*.json`
//! files. Documents are handed out one by one, so a bundle of any size is
//! read in bounded memory; each is parsed later, on its own.

use std::io::Read;

use flate2::read::GzDecoder;

use crate::osv::MAX_DOCUMENT;

/// Largest JSON file read (an array of documents).
pub const MAX_JSON_FILE: u64 = 256 * 1024 * 1024;
/// Most tar entries looked at in one layer.
pub const MAX_ENTRIES: usize = 1_000_000;

/// What a bundle layer is, by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    /// JSON: one document or an array.
    Json,
    /// A tar of JSON files.
    Tar,
    /// A gzip-compressed tar of JSON files.
    TarGzip,
}

impl BundleKind {
    /// The kind of a layer's media type; `None` for one Berth does not read.
    pub fn of(media_type: &str) -> Option<BundleKind> {
        let m = media_type.split(';').next().unwrap_or_default().trim();
        if m == "application/json" || m.ends_with("+json") {
            Some(BundleKind::Json)
        } else if m.ends_with(".tar+gzip")
            || m.ends_with("tar+gzip")
            || m == "application/gzip"
            || m == "application/x-gzip"
        {
            Some(BundleKind::TarGzip)
        } else if m.ends_with(".tar") || m == "application/x-tar" {
            Some(BundleKind::Tar)
        } else {
            None
        }
    }
}

/// Why a bundle could not be read (documents handed out before stay).
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading failed.
    #[error("reading the bundle: {0}")]
    Io(#[from] std::io::Error),
    /// A JSON file is not a document or an array of them.
    #[error("{0}: not an OSV document or an array of them ({1})")]
    Json(String, String),
    /// A file is larger than the bounds.
    #[error("{0}: larger than {1} bytes")]
    TooLarge(String, u64),
}

/// Hand each document of a bundle layer to `each` (which returns `false`
/// to stop). Returns how many were handed out.
pub fn read_bundle<R: Read>(
    reader: R,
    kind: BundleKind,
    each: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<usize, BundleError> {
    match kind {
        BundleKind::Json => json_file("the layer", reader, each),
        BundleKind::Tar => tar_files(reader, each),
        BundleKind::TarGzip => tar_files(GzDecoder::new(reader), each),
    }
}

fn tar_files<R: Read>(
    reader: R,
    each: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<usize, BundleError> {
    let mut archive = tar::Archive::new(reader);
    let mut count = 0;
    for (i, entry) in archive.entries()?.enumerate() {
        if i >= MAX_ENTRIES {
            break;
        }
        let entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let name = path.rsplit('/').next().unwrap_or_default();
        if !name.ends_with(".json") || name.starts_with("._") {
            continue;
        }
        count += json_file(&path, entry, each)?;
    }
    Ok(count)
}

/// One JSON file: a document, or an array of them.
fn json_file<R: Read>(
    what: &str,
    reader: R,
    each: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<usize, BundleError> {
    let mut bytes = Vec::new();
    reader.take(MAX_JSON_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_JSON_FILE {
        return Err(BundleError::TooLarge(what.to_owned(), MAX_JSON_FILE));
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        if bytes.len() > MAX_DOCUMENT {
            return Err(BundleError::TooLarge(what.to_owned(), MAX_DOCUMENT as u64));
        }
        each(bytes);
        return Ok(1);
    }
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&bytes)
        .map_err(|e| BundleError::Json(what.to_owned(), e.to_string()))?;
    drop(bytes);
    let mut count = 0;
    for d in docs {
        count += 1;
        if !each(d.to_string().into_bytes()) {
            break;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(bytes: &[u8], kind: BundleKind) -> Result<Vec<String>, BundleError> {
        let mut out = Vec::new();
        read_bundle(bytes, kind, &mut |d| {
            out.push(String::from_utf8(d).unwrap());
            true
        })?;
        Ok(out)
    }

    #[test]
    fn media_types_are_read_as_oras_writes_them() {
        assert_eq!(
            BundleKind::of("application/vnd.osv+json"),
            Some(BundleKind::Json)
        );
        assert_eq!(
            BundleKind::of("application/json; charset=utf-8"),
            Some(BundleKind::Json)
        );
        assert_eq!(
            BundleKind::of("application/vnd.oci.image.layer.v1.tar+gzip"),
            Some(BundleKind::TarGzip)
        );
        assert_eq!(
            BundleKind::of("application/vnd.oci.image.layer.v1.tar"),
            Some(BundleKind::Tar)
        );
        assert_eq!(BundleKind::of("application/octet-stream"), None);
    }

    #[test]
    fn json_layers_and_tar_layers_hand_out_each_document() {
        assert_eq!(
            collect(br#"{"id":"A"}"#, BundleKind::Json).unwrap(),
            [r#"{"id":"A"}"#]
        );
        assert_eq!(
            collect(br#" [{"id":"A"}, {"id":"B"}]"#, BundleKind::Json).unwrap(),
            [r#"{"id":"A"}"#, r#"{"id":"B"}"#]
        );
        assert!(collect(b"[{", BundleKind::Json).is_err());

        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in [
            ("osv/PyPI/A.json", br#"{"id":"A"}"#.as_slice()),
            ("osv/README.md", b"not json".as_slice()),
            ("osv/all.json", br#"[{"id":"B"},{"id":"C"}]"#.as_slice()),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        assert_eq!(collect(&tar, BundleKind::Tar).unwrap().len(), 3);
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, &tar).unwrap();
        let gz = z.finish().unwrap();
        assert_eq!(collect(&gz, BundleKind::TarGzip).unwrap().len(), 3);
        assert!(collect(&gz[..gz.len() / 2], BundleKind::TarGzip).is_err());
    }
}
