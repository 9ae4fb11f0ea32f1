//! RPM's package database as RPM 4.16 and later keep it, `rpmdb.sqlite`:
//! each row of its `Packages` table is one installed package's header
//! blob (an index of tagged entries, then their data). The name, epoch,
//! version, release and source RPM are read; `gpg-pubkey` rows (imported
//! signing keys, not packages) are left out.

use crate::sqlite::{Db, Value};
use crate::Package;

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const SOURCERPM: u32 = 1044;

const INT32: u32 = 4;
const STRING: u32 = 6;
const STRING_ARRAY: u32 = 8;
const I18NSTRING: u32 = 9;

/// Where RPM keeps its SQLite database (Fedora 36 and later moved it
/// under `/usr/lib/sysimage`).
pub fn is_database(path: &str) -> bool {
    path == "var/lib/rpm/rpmdb.sqlite" || path == "usr/lib/sysimage/rpm/rpmdb.sqlite"
}

/// Why an RPM database file beside it is not read, when it holds
/// packages: the Berkeley DB and ndb formats of RPM before 4.16 (and of
/// SUSE), and a write-ahead log not yet merged into the database.
pub fn unread(path: &str, size: u64) -> Option<&'static str> {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    if dir != "var/lib/rpm" && dir != "usr/lib/sysimage/rpm" {
        return None;
    }
    match path.rsplit_once('/').map_or(path, |(_, f)| f) {
        "Packages" | "Packages.db" if size > 0 => {
            Some("an RPM database in the Berkeley DB or ndb format: not read (RPM 4.16 and later keep rpmdb.sqlite)")
        }
        "rpmdb.sqlite-wal" if size > 0 => {
            Some("RPM's write-ahead log was not merged into rpmdb.sqlite: packages it records may be missing")
        }
        _ => None,
    }
}

/// The packages the database lists, or why it could not be read.
pub fn parse(db: &[u8], path: &str) -> Result<Vec<Package>, String> {
    let db = Db::open(db).map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::new();
    let mut damaged = 0usize;
    db.rows("Packages", |_, row| {
        let Some(Value::Blob(blob)) = row.get(1) else {
            damaged += 1;
            return Ok(());
        };
        match header(blob) {
            Some(h) if h.name == "gpg-pubkey" => {}
            Some(h) => out.push(Package {
                ecosystem: "rpm".into(),
                version: match h.epoch {
                    Some(e) if e > 0 => format!("{e}:{}-{}", h.version, h.release),
                    _ => format!("{}-{}", h.version, h.release),
                },
                source: h
                    .source_rpm
                    .as_deref()
                    .and_then(source_name)
                    .filter(|s| *s != h.name)
                    .map(str::to_owned),
                name: h.name,
                path: path.to_owned(),
            }),
            None => damaged += 1,
        }
        Ok(())
    })
    .map_err(|e| format!("{path}: {e}"))?;
    if damaged > 0 {
        return Err(format!(
            "{path}: {damaged} damaged package headers skipped ({} read)",
            out.len()
        ));
    }
    Ok(out)
}

/// What is kept of one header.
#[derive(Debug, PartialEq)]
struct Header {
    name: String,
    epoch: Option<u32>,
    version: String,
    release: String,
    source_rpm: Option<String>,
}

/// Read a header blob: `il` and `dl` (big-endian), `il` entries of
/// (tag, type, offset, count), then `dl` bytes of data.
fn header(b: &[u8]) -> Option<Header> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let il = usize::try_from(word(0)?).ok()?;
    let dl = usize::try_from(word(4)?).ok()?;
    let data_at = il.checked_mul(16)?.checked_add(8)?;
    let data = b.get(data_at..data_at.checked_add(dl)?)?;
    let (mut name, mut epoch, mut version, mut release, mut source_rpm) =
        (None, None, None, None, None);
    for i in 0..il {
        let e = 8 + 16 * i;
        let (tag, kind) = (word(e)?, word(e + 4)?);
        let offset = usize::try_from(word(e + 8)?).ok()?;
        let string = || -> Option<String> {
            if !matches!(kind, STRING | STRING_ARRAY | I18NSTRING) {
                return None;
            }
            let rest = data.get(offset..)?;
            let end = rest.iter().position(|&c| c == 0)?;
            Some(String::from_utf8_lossy(&rest[..end]).into_owned())
        };
        match tag {
            NAME => name = string(),
            VERSION => version = string(),
            RELEASE => release = string(),
            SOURCERPM => source_rpm = string(),
            EPOCH if kind == INT32 => {
                epoch = Some(u32::from_be_bytes(
                    data.get(offset..offset + 4)?.try_into().ok()?,
                ));
            }
            _ => {}
        }
    }
    Some(Header {
        name: name.filter(|n| !n.is_empty())?,
        epoch,
        version: version.filter(|v| !v.is_empty())?,
        release: release?,
        source_rpm,
    })
}

/// `openssl-3.0.7-16.el9.src.rpm` → `openssl`.
fn source_name(rpm: &str) -> Option<&str> {
    let stem = rpm
        .strip_suffix(".src.rpm")
        .or_else(|| rpm.strip_suffix(".nosrc.rpm"))?;
    let mut parts = stem.rsplitn(3, '-');
    let (_release, _version, name) = (parts.next()?, parts.next()?, parts.next()?);
    Some(name).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests;
