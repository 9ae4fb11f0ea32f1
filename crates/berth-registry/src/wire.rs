//! Pure parsers of what clients send in /v2 headers: `Content-Range` of an
//! upload chunk, `Range` of a blob download, and HTTP Basic credentials.
//! No I/O; public so that the fuzz targets (`fuzz/`) reach them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// `Content-Range: <start>-<end>` of an upload chunk, also accepting a
/// `bytes ` or `bytes=` prefix and a `/total` suffix, as some clients send.
/// `None` when malformed or when the end lies before the start.
pub fn content_range(value: &str) -> Option<(u64, u64)> {
    let text = value.trim();
    let text = text
        .strip_prefix("bytes")
        .map(|t| t.trim_start_matches(['=', ' ']))
        .unwrap_or(text);
    let text = text.split('/').next().unwrap_or(text);
    let (start, end) = text.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    (end >= start).then_some((start, end))
}

/// A `Range: bytes=<start>-<end>` request header, either end optional.
/// Malformed or multi-range headers give `None` (the whole blob is served),
/// as HTTP allows.
pub fn request_range(value: &str) -> Option<(Option<u64>, Option<u64>)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (s, e) = spec.split_once('-')?;
    let (s, e) = (s.trim(), e.trim());
    let start = if s.is_empty() {
        None
    } else {
        Some(s.parse().ok()?)
    };
    let end = if e.is_empty() {
        None
    } else {
        Some(e.parse().ok()?)
    };
    if start.is_none() && end.is_none() {
        return None;
    }
    Some((start, end))
}

/// `user:password` from an `Authorization: Basic …` value.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(content_range("0-9"), Some((0, 9)));
        assert_eq!(content_range("bytes=5-9/100"), Some((5, 9)));
        assert_eq!(content_range("bytes 5-9"), Some((5, 9)));
        assert_eq!(content_range("9-5"), None);
        assert_eq!(content_range("x-5"), None);
        assert_eq!(request_range("bytes=5-"), Some((Some(5), None)));
        assert_eq!(request_range("bytes=-5"), Some((None, Some(5))));
        assert_eq!(request_range("bytes=1-2,4-5"), None);
        assert_eq!(request_range("bytes=-"), None);
    }

    #[test]
    fn basic() {
        assert_eq!(
            basic_credentials("Basic dTpwOng="),
            Some(("u".into(), "p:x".into()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
        assert_eq!(basic_credentials("Basic !!"), None);
    }
}
