//! How console handlers answer: a rendered page, a redirect back to a
//! form's page with a message, or a readable error page.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::DirectoryError;

use crate::viewer::Viewer;
use crate::views::{self, enc};

/// Go back to `url` with a message (`notice` or `error`) to show there.
pub(crate) fn back(url: &str, key: &str, message: &str) -> Response {
    let sep = if url.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{url}{sep}{key}={}", enc(message))).into_response()
}

/// A readable error page.
#[derive(Debug)]
pub(crate) struct PageError {
    status: StatusCode,
    detail: String,
    viewer: Option<Viewer>,
}

impl PageError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        PageError {
            status,
            detail: detail.into(),
            viewer: None,
        }
    }

    pub fn for_viewer(mut self, viewer: &Viewer) -> Self {
        self.viewer = Some(viewer.clone());
        self
    }
}

impl From<DirectoryError> for PageError {
    fn from(e: DirectoryError) -> Self {
        if let Some(fault) = e.fault() {
            tracing::warn!(error = %e, "refused a console request: {}", fault.message());
            let status = match fault {
                berth_core::Fault::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
                berth_core::Fault::DatabaseUnavailable | berth_core::Fault::StorageUnavailable => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            };
            let mut message = fault.message().to_owned();
            if let Some(first) = message.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            return PageError::new(status, format!("{message}."));
        }
        if e.is_internal() {
            tracing::error!(error = %e, "internal error in the console");
            return PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Try again; if it persists, ask your administrator to look at the server log.",
            );
        }
        let status = match &e {
            DirectoryError::NotFound(_) => StatusCode::NOT_FOUND,
            DirectoryError::Forbidden(_) => StatusCode::FORBIDDEN,
            DirectoryError::Conflict(_)
            | DirectoryError::NotEmpty(_)
            | DirectoryError::LimitExceeded(_) => StatusCode::CONFLICT,
            DirectoryError::AuthenticationFailed => StatusCode::UNAUTHORIZED,
            DirectoryError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        };
        PageError::new(status, e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::BAD_REQUEST => "That did not work",
            StatusCode::CONFLICT => "That did not work",
            StatusCode::INSUFFICIENT_STORAGE => "Storage is full",
            StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
            StatusCode::TOO_MANY_REQUESTS => "Too busy",
            _ => "Error",
        };
        let layout = match &self.viewer {
            Some(v) => views::Layout::new(v, ""),
            None => views::Layout::anonymous(),
        };
        let page = views::ErrorPage {
            l: layout,
            title: title.to_owned(),
            detail: self.detail,
        };
        (self.status, html(page.render())).into_response()
    }
}

pub(crate) type PageResult = Result<Response, PageError>;

/// A rendered template as an HTML response.
pub(crate) fn html(rendered: askama::Result<String>) -> Response {
    match rendered {
        Ok(body) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a console page");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed").into_response()
        }
    }
}

/// A secret shown once (a new password or token), with the way back to
/// the page it was made on.
pub(crate) fn secret_page(
    viewer: &Viewer,
    title: String,
    explanation: String,
    secret: String,
    back: &str,
) -> Response {
    html(
        views::SecretPage {
            l: views::Layout::new(viewer, "registry-users"),
            title,
            explanation,
            secret,
            back: back.to_owned(),
        }
        .render(),
    )
}
