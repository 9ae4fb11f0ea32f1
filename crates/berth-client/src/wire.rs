//! Reading and writing the HTTP headers of the Distribution protocol.

use berth_oci::media_types;
use reqwest::header::{self, HeaderMap};

use crate::error::{ClientError, Result};

/// Every manifest type Berth stores, for `Accept`.
pub const MANIFEST_TYPES: &[&str] = &[
    media_types::OCI_MANIFEST,
    media_types::OCI_INDEX,
    media_types::DOCKER_MANIFEST,
    media_types::DOCKER_LIST,
];

pub(crate) fn accept_manifests() -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = header::HeaderValue::from_str(&MANIFEST_TYPES.join(", ")) {
        h.insert(header::ACCEPT, v);
    }
    h
}

pub(crate) fn content_length_zero() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from_static("0"),
    );
    h
}

pub(crate) fn header_value(s: &str) -> Result<header::HeaderValue> {
    header::HeaderValue::from_str(s).map_err(|_| ClientError::Protocol(format!("header {s:?}")))
}

pub(crate) fn content_type(h: &HeaderMap) -> String {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_owned())
        .unwrap_or_default()
}

pub(crate) fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
}

/// `Content-Range: bytes START-END/TOTAL` as (start, total).
pub(crate) fn content_range(h: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let v = h.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let rest = v.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.parse().ok()?, total.parse().ok()))
}

/// The `rel="next"` target of a `Link` header.
pub(crate) fn link_next(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::LINK)?.to_str().ok()?;
    v.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_RANGE,
            header::HeaderValue::from_static("bytes 100-199/1000"),
        );
        assert_eq!(content_range(&h), Some((100, Some(1000))));
        h.insert(
            header::LINK,
            header::HeaderValue::from_static("</v2/a/tags/list?n=2&last=b>; rel=\"next\""),
        );
        assert_eq!(link_next(&h).as_deref(), Some("/v2/a/tags/list?n=2&last=b"));
        h.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(content_type(&h), "application/json");
    }
}
