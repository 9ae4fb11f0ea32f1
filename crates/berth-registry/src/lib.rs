//! The /v2 HTTP surface: the OCI Distribution Specification v1.1 with Docker
//! Registry v2 compatibility.
//!
//! Each request is parsed into an [`Endpoint`] (typed routing), then handled
//! by calling the registry service. This crate owns the /v2 wire format:
//! headers, status codes and the OCI `errors[]` JSON body.
//!
//! Layering: calls `berth-core` (and uses types of `berth-oci` and
//! `berth-blob`); is called by the `berth` binary, which mounts [`router`].

mod endpoint;
mod error;
mod handlers;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use berth_core::Registry;

pub use endpoint::{Access, Action, Endpoint, RouteError};
pub use error::OciError;

/// The kind of /v2 endpoint that answered, attached to responses as an
/// extension for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointKind(pub &'static str);

/// The /v2 router over a registry service.
pub fn router(registry: Registry) -> Router {
    let state = Arc::new(registry);
    Router::new()
        .route("/v2", any(entry))
        .route("/v2/", any(entry))
        .route("/v2/{*rest}", any(entry))
        .with_state(state)
}

async fn entry(
    State(registry): State<Arc<Registry>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (mut response, kind) = match percent_decode(uri.path())
        .ok_or_else(|| RouteError::NotFound(uri.path().to_owned()))
        .and_then(|path| Endpoint::parse(&method, &path, uri.query()))
    {
        Ok(endpoint) => {
            let kind = endpoint.kind();
            let response = handlers::handle(&registry, endpoint, &headers, body)
                .await
                .unwrap_or_else(IntoResponse::into_response);
            (response, kind)
        }
        Err(e) => (OciError::from(e).into_response(), "invalid"),
    };
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response.extensions_mut().insert(EndpointKind(kind));
    response
}

/// Decode `%XX` escapes (clients may escape the ':' of a digest). `None` when
/// the result is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    if !path.contains('%') {
        return Some(path.to_owned());
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_escapes() {
        assert_eq!(
            percent_decode("/v2/a/blobs/sha256%3Aab").as_deref(),
            Some("/v2/a/blobs/sha256:ab")
        );
        assert_eq!(percent_decode("/v2/%zz%").as_deref(), Some("/v2/%zz%"));
        assert_eq!(percent_decode("/v2/%ff"), None);
        assert_eq!(percent_decode("/v2/%41").as_deref(), Some("/v2/A"));
    }
}
