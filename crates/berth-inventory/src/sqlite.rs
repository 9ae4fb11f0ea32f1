//! A read-only reader of an SQLite database file held in memory, as the
//! file format is documented (sqlite.org/fileformat.html): enough to list
//! the rows of one rowid table, which is how RPM 4.16 and later keep
//! their package headers (`rpmdb.sqlite`). Every offset is checked; page
//! cycles, overlong chains and oversized payloads end in an error, and the
//! bytes assembled are bounded by a multiple of the file's size.

/// A column's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL (and a rowid alias column, stored as NULL).
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text, as stored (UTF-8 databases only are read).
    Text(Vec<u8>),
    /// A blob.
    Blob(Vec<u8>),
}

/// Most b-tree levels followed (a real database has a handful).
const MAX_DEPTH: usize = 40;

/// An open database file.
pub struct Db<'a> {
    data: &'a [u8],
    page_size: usize,
    usable: usize,
    pages: usize,
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at + 2)?;
    Some(usize::from(u16::from_be_bytes([s[0], s[1]])))
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at + 4)?;
    usize::try_from(u32::from_be_bytes([s[0], s[1], s[2], s[3]])).ok()
}

/// SQLite's variable-length integer at `at`: its value and length.
fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(at + i)?;
        if i == 8 {
            return Some(((v << 8) | u64::from(byte), 9));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

impl<'a> Db<'a> {
    /// Check the header and the page geometry.
    pub fn open(data: &'a [u8]) -> Result<Db<'a>, String> {
        if !data.starts_with(b"SQLite format 3\0") || data.len() < 100 {
            return Err("not an SQLite 3 database".into());
        }
        let page_size = match be16(data, 16) {
            Some(1) => 65536,
            Some(n) if (512..=32768).contains(&n) && n.is_power_of_two() => n,
            _ => return Err("an SQLite database with an invalid page size".into()),
        };
        let usable = page_size - usize::from(data[20]);
        if usable < 480 {
            return Err("an SQLite database with too many reserved bytes".into());
        }
        if be32(data, 56) != Some(1) {
            return Err("an SQLite database not in UTF-8: not read".into());
        }
        Ok(Db {
            data,
            page_size,
            usable,
            pages: data.len() / page_size,
        })
    }

    fn page(&self, n: usize) -> Result<&'a [u8], String> {
        if n == 0 || n > self.pages {
            return Err(format!("page {n} is outside the database"));
        }
        Ok(&self.data[(n - 1) * self.page_size..n * self.page_size])
    }

    /// Every row of table `name`, in rowid order, handed to `row`; an
    /// error when the table is missing or the file is damaged.
    pub fn rows(
        &self,
        name: &str,
        mut row: impl FnMut(i64, Vec<Value>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut root = None;
        self.walk(1, &mut |_, rec| {
            if let [Value::Text(kind), Value::Text(n), _, Value::Int(page), ..] = rec.as_slice() {
                if kind == b"table" && n == name.as_bytes() {
                    root = usize::try_from(*page).ok();
                }
            }
            Ok(())
        })?;
        let root = root.ok_or_else(|| format!("no table {name}"))?;
        self.walk(root, &mut row)
    }

    /// The rows of the table b-tree rooted at page `root`.
    fn walk(
        &self,
        root: usize,
        row: &mut dyn FnMut(i64, Vec<Value>) -> Result<(), String>,
    ) -> Result<(), String> {
        // Each page at most once (a cycle would never end otherwise), and
        // at most a few times the file's size assembled in payloads.
        let mut visits = 0usize;
        let mut budget = self.data.len().saturating_mul(4);
        let mut stack = vec![(root, 0usize)];
        while let Some((n, depth)) = stack.pop() {
            visits += 1;
            if visits > self.pages || depth > MAX_DEPTH {
                return Err("the database's b-tree loops".into());
            }
            let page = self.page(n)?;
            let h = if n == 1 { 100 } else { 0 };
            let bad = || format!("page {n} is damaged");
            let cells = be16(page, h + 3).ok_or_else(bad)?;
            match page.get(h) {
                Some(0x0d) => {
                    for i in 0..cells {
                        let at = be16(page, h + 8 + 2 * i).ok_or_else(bad)?;
                        let (size, l1) = varint(page, at).ok_or_else(bad)?;
                        let (rowid, l2) = varint(page, at + l1).ok_or_else(bad)?;
                        let size = usize::try_from(size).map_err(|_| bad())?;
                        if size > budget {
                            return Err(format!("a row on page {n} is larger than the database"));
                        }
                        budget -= size;
                        let payload = self.payload(page, at + l1 + l2, size).ok_or_else(bad)?;
                        let rec = record(&payload)
                            .ok_or_else(|| format!("a row on page {n} is damaged"))?;
                        row(rowid as i64, rec)?;
                    }
                }
                Some(0x05) => {
                    // Children pushed last-first so that rows come in order.
                    let right = be32(page, h + 8).ok_or_else(bad)?;
                    stack.push((right, depth + 1));
                    for i in (0..cells).rev() {
                        let at = be16(page, h + 12 + 2 * i).ok_or_else(bad)?;
                        stack.push((be32(page, at).ok_or_else(bad)?, depth + 1));
                    }
                }
                _ => return Err(format!("page {n} is no table b-tree page")),
            }
        }
        Ok(())
    }

    /// A leaf cell's payload of `size` bytes starting at `at`, with its
    /// overflow chain followed.
    fn payload(&self, page: &[u8], at: usize, size: usize) -> Option<Vec<u8>> {
        let u = self.usable;
        let max_local = u - 35;
        let local = if size <= max_local {
            size
        } else {
            let min_local = (u - 12) * 32 / 255 - 23;
            let k = min_local + (size - min_local) % (u - 4);
            if k <= max_local {
                k
            } else {
                min_local
            }
        };
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(page.get(at..at + local)?);
        let mut next = if local < size {
            be32(page, at + local)?
        } else {
            0
        };
        while out.len() < size {
            let over = self.page(next).ok()?;
            let take = (size - out.len()).min(u - 4);
            out.extend_from_slice(over.get(4..4 + take)?);
            next = be32(over, 0)?;
        }
        Some(out)
    }
}

/// A record's columns.
fn record(p: &[u8]) -> Option<Vec<Value>> {
    let (header, mut h) = varint(p, 0)?;
    let header = usize::try_from(header).ok()?;
    if header > p.len() {
        return None;
    }
    let mut body = header;
    let mut out = Vec::new();
    while h < header {
        let (t, l) = varint(p, h)?;
        h += l;
        let int = |len: usize| -> Option<i64> {
            let b = p.get(body..body + len)?;
            let mut v: i64 = if b.first()? & 0x80 != 0 { -1 } else { 0 };
            for byte in b {
                v = (v << 8) | i64::from(*byte);
            }
            Some(v)
        };
        let (value, len) = match t {
            0 => (Value::Null, 0),
            1..=4 => (Value::Int(int(t as usize)?), t as usize),
            5 => (Value::Int(int(6)?), 6),
            6 => (Value::Int(int(8)?), 8),
            7 => {
                let b: [u8; 8] = p.get(body..body + 8)?.try_into().ok()?;
                (Value::Real(f64::from_be_bytes(b)), 8)
            }
            8 => (Value::Int(0), 0),
            9 => (Value::Int(1), 0),
            10 | 11 => return None,
            t => {
                let len = usize::try_from((t - 12) / 2).ok()?;
                let bytes = p.get(body..body.checked_add(len)?)?.to_vec();
                if t % 2 == 0 {
                    (Value::Blob(bytes), len)
                } else {
                    (Value::Text(bytes), len)
                }
            }
        };
        body += len;
        out.push(value);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_records_decode() {
        assert_eq!(varint(&[0x05], 0), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00], 0), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9], 0), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81], 0), None);
        // header 4 bytes: NULL, int8, text of 2; body: -2, "hi".
        let rec = record(&[4, 0, 1, 17, 0xfe, b'h', b'i']).unwrap();
        assert_eq!(
            rec,
            [Value::Null, Value::Int(-2), Value::Text(b"hi".to_vec())]
        );
        assert_eq!(record(&[4, 0, 1, 17, 0xfe, b'h']), None, "truncated");
        assert_eq!(record(&[9, 0]), None, "header past the end");
    }

    #[test]
    fn damaged_files_are_refused() {
        assert!(Db::open(b"not sqlite").is_err());
        let mut head = b"SQLite format 3\0".to_vec();
        head.resize(100, 0);
        head[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert!(Db::open(&head).is_err(), "page size not a power of two");
    }
}
