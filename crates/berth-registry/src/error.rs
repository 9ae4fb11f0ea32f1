//! The /v2 wire format for errors: `{"errors":[{"code","message","detail"}]}`
//! with the spec's codes and statuses.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::{Fault, RegistryError};
use serde_json::json;

use crate::endpoint::RouteError;

/// An error as the client sees it.
#[derive(Debug)]
pub struct OciError {
    status: StatusCode,
    code: &'static str,
    message: String,
    headers: Vec<(HeaderName, String)>,
}

impl OciError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        OciError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Add a response header.
    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// A platform fault: 507 when storage is full, 503 (to be retried) when
    /// the database is unavailable. Logged here, once.
    pub fn fault(fault: Fault, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "refused a /v2 request: {}", fault.message());
        match fault {
            Fault::StorageFull => {
                OciError::new(StatusCode::INSUFFICIENT_STORAGE, "UNKNOWN", fault.message())
            }
            Fault::DatabaseUnavailable | Fault::StorageUnavailable => OciError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                fault.message(),
            )
            .with_header(header::RETRY_AFTER, "5"),
        }
    }

    /// A server-side failure: its fault's answer when it has one, else a
    /// logged 500.
    pub fn internal(fault: Option<Fault>, cause: &dyn std::fmt::Display) -> Self {
        match fault {
            Some(f) => Self::fault(f, cause),
            None => {
                tracing::error!(error = %cause, "internal error on /v2");
                OciError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "internal server error",
                )
            }
        }
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body = json!({
            "errors": [{ "code": self.code, "message": self.message, "detail": {} }]
        });
        let mut resp = (self.status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        resp
    }
}

impl From<RegistryError> for OciError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as E;
        use StatusCode as S;
        if let Some(fault) = e.fault() {
            return OciError::fault(fault, &e);
        }
        let msg = e.to_string();
        match e {
            E::NameInvalid(_) => OciError::new(S::BAD_REQUEST, "NAME_INVALID", msg),
            E::NameUnknown(_) => OciError::new(S::NOT_FOUND, "NAME_UNKNOWN", msg),
            E::BlobUnknown(_) => OciError::new(S::NOT_FOUND, "BLOB_UNKNOWN", msg),
            E::BlobUploadUnknown(_) => OciError::new(S::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", msg),
            E::BlobUploadInvalid(_) | E::Body(_) => {
                OciError::new(S::BAD_REQUEST, "BLOB_UPLOAD_INVALID", msg)
            }
            E::DigestInvalid(_) => OciError::new(S::BAD_REQUEST, "DIGEST_INVALID", msg),
            E::SizeInvalid(_) => OciError::new(S::BAD_REQUEST, "SIZE_INVALID", msg),
            E::ManifestBlobUnknown(_) => {
                OciError::new(S::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN", msg)
            }
            E::ManifestChildUnknown(_) => OciError::new(S::BAD_REQUEST, "MANIFEST_UNKNOWN", msg),
            E::ManifestInvalid(_) => OciError::new(S::BAD_REQUEST, "MANIFEST_INVALID", msg),
            E::ManifestUnknown(_) => OciError::new(S::NOT_FOUND, "MANIFEST_UNKNOWN", msg),
            E::UploadRangeMismatch { current } => {
                OciError::new(S::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID", msg)
                    .with_header(header::RANGE, upload_range(current))
            }
            E::RangeNotSatisfiable { size } => {
                OciError::new(S::RANGE_NOT_SATISFIABLE, "SIZE_INVALID", msg)
                    .with_header(header::CONTENT_RANGE, format!("bytes */{size}"))
            }
            // The rest of the body is left unread, so the connection cannot
            // carry another request: saying so keeps a client from sending
            // its next one down a connection the server is closing.
            E::TooLarge { what, .. } => {
                let code = if what == "manifest" {
                    "MANIFEST_INVALID"
                } else {
                    "SIZE_INVALID"
                };
                OciError::new(S::PAYLOAD_TOO_LARGE, code, msg)
                    .with_header(header::CONNECTION, "close")
            }
            E::Denied(_) => OciError::new(S::FORBIDDEN, "DENIED", msg),
            E::Unsupported(_) => OciError::new(S::METHOD_NOT_ALLOWED, "UNSUPPORTED", msg),
            E::Upstream(_) => OciError::new(S::BAD_GATEWAY, "UNAVAILABLE", msg),
            E::Busy(_) => OciError::new(S::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", msg)
                .with_header(header::RETRY_AFTER, "1"),
            E::Meta(_) | E::Storage(_) => OciError::internal(None, &msg),
        }
    }
}

impl From<RouteError> for OciError {
    fn from(e: RouteError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            RouteError::NotFound(_) => OciError::new(S::NOT_FOUND, "UNSUPPORTED", msg),
            RouteError::MethodNotAllowed { allowed, .. } => {
                OciError::new(S::METHOD_NOT_ALLOWED, "UNSUPPORTED", msg)
                    .with_header(header::ALLOW, allowed)
            }
            RouteError::Name(_) => OciError::new(S::BAD_REQUEST, "NAME_INVALID", msg),
            RouteError::Reference(_) => OciError::new(S::BAD_REQUEST, "MANIFEST_INVALID", msg),
            RouteError::Digest(_) => OciError::new(S::BAD_REQUEST, "DIGEST_INVALID", msg),
            RouteError::Query(_) => OciError::new(S::BAD_REQUEST, "UNSUPPORTED", msg),
        }
    }
}

/// The `Range` header value of an upload holding `size` bytes.
pub fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}
