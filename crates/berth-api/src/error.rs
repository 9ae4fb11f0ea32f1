//! The management API's wire format for errors: RFC 9457 problem details
//! (`application/problem+json`) with a stable `code`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::{DirectoryError, Fault};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` plus `code`).
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: &'static str,
    /// Short, human-readable summary of the kind.
    #[schema(example = "Not Found")]
    pub title: String,
    /// HTTP status.
    #[schema(example = 404)]
    pub status: u16,
    /// Stable, machine-readable code: `invalid`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `limit_exceeded`, `too_many_requests`,
    /// `method_not_allowed`, `storage_full` (507), `unavailable` (503, the
    /// database), `internal`.
    #[schema(example = "not_found")]
    pub code: &'static str,
    /// What went wrong, for people.
    #[schema(example = "namespace team-a not found")]
    pub detail: String,
}

/// An error with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// A problem of this status and code.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", detail)
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 429 with a Retry-After.
    pub fn throttled(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!("too many failed logins; retry in {retry_after} s"),
            )
        }
    }

    /// 429 with a Retry-After: too many password checks at once.
    pub fn busy(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!("too many logins at once; retry in {retry_after} s"),
            )
        }
    }

    /// A failed login, in the API's words.
    pub fn login(e: berth_core::AuthError) -> Self {
        use berth_core::AuthError;
        match e {
            AuthError::Throttled { retry_after } => ApiError::throttled(retry_after),
            AuthError::Busy { retry_after } => ApiError::busy(retry_after),
            AuthError::Internal(e) => e.into(),
            AuthError::Failed | AuthError::Token(_) => {
                ApiError::unauthorized("invalid username or password")
            }
            e @ AuthError::Refused(_) => ApiError::unauthorized(e.to_string()),
            e @ AuthError::IssuerUnavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
        }
    }

    /// A platform fault: 507 `storage_full`, or 503 `unavailable` with a
    /// Retry-After. Logged here, once.
    pub fn fault(fault: Fault, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "refused a management request: {}", fault.message());
        match fault {
            Fault::StorageFull => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                fault.message(),
            ),
            Fault::DatabaseUnavailable | Fault::StorageUnavailable => ApiError {
                retry_after: Some(5),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    fault.message(),
                )
            },
        }
    }

    /// 500, logged here, once.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error in the management API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }

    /// The problem body.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            code: self.code,
            detail: self.detail.clone(),
        }
    }
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        if let Some(fault) = e.fault() {
            return ApiError::fault(fault, &e);
        }
        if e.is_internal() {
            return ApiError::internal(e);
        }
        let detail = e.to_string();
        match e {
            DirectoryError::NotFound(_) => ApiError::not_found(detail),
            DirectoryError::Conflict(_) | DirectoryError::NotEmpty(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", detail)
            }
            DirectoryError::Invalid(_) => ApiError::invalid(detail),
            DirectoryError::Forbidden(_) => ApiError::forbidden(detail),
            DirectoryError::LimitExceeded(_) => {
                Self::new(StatusCode::CONFLICT, "limit_exceeded", detail)
            }
            DirectoryError::AuthenticationFailed => ApiError::unauthorized(detail),
            DirectoryError::Busy(_) => ApiError::busy(1),
            // Registry rule refusals (validation) that are not internal.
            _ => ApiError::invalid(detail),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError::invalid(format!("invalid JSON body: {}", e.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::invalid(format!("invalid query: {}", e.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::invalid(format!("invalid path: {}", e.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Berth API\", Bearer realm=\"Berth API\""),
            );
        }
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
