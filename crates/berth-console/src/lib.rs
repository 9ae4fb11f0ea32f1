//! The web console: server-rendered pages (askama templates compiled into
//! the binary, one stylesheet and one small script embedded too), served at
//! `/` by the same binary. No Node.js is needed to build or run it.
//!
//! Every page and form calls the management service (`berth-core`), the
//! same one the REST API calls, so no rule has a second implementation.
//! Logging in creates the same console session the API accepts; every form
//! carries the session's CSRF token. Errors become readable pages, or a
//! message on the page a form came from.
//!
//! Layering: calls `berth-core` (and uses `berth-api`'s session cookie
//! helpers and state, `berth-meta` and `berth-oci` types); is called by the
//! `berth` binary, which mounts [`router`].

mod images;
mod pages;
mod policies;
mod remotes;
mod replication;
mod sync;
mod views;
mod webhooks;

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_api::auth::{cookie, SESSION_COOKIE};
use berth_api::ApiState;
use berth_core::access::Principal;
use berth_core::DirectoryError;

pub use berth_api::ApiState as ConsoleState;

/// The signed-in user of a console request.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub principal: Principal,
    pub csrf: String,
    /// The session cookie (a password change keeps this session).
    pub cookie: String,
}

impl Viewer {
    pub fn name(&self) -> &str {
        self.principal.name()
    }
}

/// Percent-encode a query value.
pub(crate) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

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

impl FromRequestParts<ApiState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        let login = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            Redirect::to(&format!("/login?next={}", enc(next))).into_response()
        };
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(login());
        };
        match state.management.session(&value).await {
            Ok(s) => Ok(Viewer {
                principal: s.principal,
                csrf: s.csrf_token,
                cookie: value,
            }),
            Err(DirectoryError::AuthenticationFailed) => Err(login()),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

/// A form post from a signed-in user, with its CSRF token checked.
#[derive(Debug)]
pub(crate) struct Posted {
    pub viewer: Viewer,
    pub fields: HashMap<String, String>,
    /// Every field in order, repeated names included (selections).
    pub pairs: Vec<(String, String)>,
}

impl Posted {
    /// Every value of a repeated field (the checked boxes of a selection),
    /// trimmed, empty ones left out.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// A field's value, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.fields.get(name).map(|s| s.trim()).unwrap_or("")
    }

    /// A checkbox.
    pub fn checked(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }
}

impl FromRequest<ApiState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            PageError::new(StatusCode::BAD_REQUEST, "The form could not be read.")
                .for_viewer(&viewer)
                .into_response()
        })?;
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let fields: HashMap<String, String> = pairs.iter().cloned().collect();
        let sent = fields
            .get("_csrf")
            .map(String::as_bytes)
            .unwrap_or_default();
        let ok = sent.len() == viewer.csrf.len()
            && sent
                .iter()
                .zip(viewer.csrf.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !ok {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this console. Reload the page and try again.",
            )
            .for_viewer(&viewer)
            .into_response());
        }
        Ok(Posted {
            viewer,
            fields,
            pairs,
        })
    }
}

/// What a browser may do with the console's pages: run and style them
/// only with the console's own script and stylesheet (no inline script or
/// style, so injected markup runs nothing), send forms and requests only
/// here, and never show them in another site's frame.
const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

async fn page_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Where a login may send the browser on: a path of this console. The URL
/// standard drops tabs and newlines and reads `\` as `/`, so `/\t/evil`
/// would become `//evil` (another host): any control character, space or
/// backslash, and anything that does not start with exactly one `/`, is
/// refused.
pub(crate) fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    ok.then_some(next)
}

async fn asset_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../assets/app.css"),
    )
        .into_response()
}

async fn asset_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../assets/app.js"),
    )
        .into_response()
}

async fn not_found(viewer: Option<Viewer>) -> Response {
    let mut e = PageError::new(StatusCode::NOT_FOUND, "There is no such page.");
    if let Some(v) = &viewer {
        e = e.for_viewer(v);
    }
    e.into_response()
}

impl axum::extract::OptionalFromRequestParts<ApiState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <Viewer as FromRequestParts<ApiState>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

/// The console router (everything not under /v2, /api or the operations
/// endpoints). Needs `ConnectInfo<SocketAddr>` for login throttling.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/namespaces") }))
        .route("/assets/app.css", get(asset_css))
        .route("/assets/app.js", get(asset_js))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/logout", post(pages::logout))
        .route(
            "/namespaces",
            get(pages::namespaces).post(pages::create_namespace),
        )
        .route("/images", get(images::images))
        .route("/images/batch-delete", post(images::delete_images))
        .route(
            "/namespaces/{ns}/image-permissions",
            get(images::permissions),
        )
        .route("/namespaces/delete", post(pages::delete_namespace))
        .route("/namespaces/batch-delete", post(pages::delete_namespaces))
        .route("/namespaces/{ns}", get(pages::namespace))
        .route("/namespaces/{ns}/edit", post(pages::edit_namespace))
        .route("/namespaces/{ns}/images/delete", post(pages::delete_image))
        .route(
            "/namespaces/{ns}/images/batch-delete",
            post(pages::delete_images),
        )
        .route("/namespaces/{ns}/tags", get(pages::tags))
        .route("/namespaces/{ns}/sync", get(sync::sync_page))
        .route("/namespaces/{ns}/sync-rules", post(sync::add_rule))
        .route(
            "/namespaces/{ns}/sync-rules/delete",
            post(sync::delete_rule),
        )
        .route("/namespaces/{ns}/sync/run", post(sync::run_sync))
        .route("/namespaces/{ns}/tags/delete", post(pages::delete_tag))
        .route(
            "/namespaces/{ns}/tags/batch-delete",
            post(pages::delete_tags),
        )
        .route("/namespaces/{ns}/access", get(pages::access))
        .route(
            "/namespaces/{ns}/policies",
            get(policies::policies).post(policies::save),
        )
        .route("/namespaces/{ns}/retention", post(policies::retention))
        .route("/namespaces/{ns}/members", post(pages::set_member))
        .route(
            "/namespaces/{ns}/members/remove",
            post(pages::remove_member),
        )
        .route("/namespaces/{ns}/permissions", post(pages::set_permission))
        .route(
            "/namespaces/{ns}/permissions/remove",
            post(pages::remove_permission),
        )
        .route("/namespaces/{ns}/grants", post(pages::set_grant))
        .route("/namespaces/{ns}/grants/remove", post(pages::remove_grant))
        .route(
            "/registry-users",
            get(pages::registry_users).post(pages::create_registry_user),
        )
        .route(
            "/registry-users/{name}/{action}",
            post(pages::registry_user_action),
        )
        .route(
            "/project-groups",
            get(pages::groups).post(pages::create_group),
        )
        .route("/project-groups/{group}", get(pages::group))
        .route(
            "/project-groups/{group}/members",
            post(pages::set_group_member),
        )
        .route(
            "/project-groups/{group}/members/remove",
            post(pages::remove_group_member),
        )
        .route(
            "/project-groups/{group}/limit",
            post(pages::set_group_limit),
        )
        .route(
            "/project-groups/{group}/quota",
            post(pages::set_group_quota),
        )
        .route("/account", get(pages::account))
        .route("/account/password", post(pages::change_password))
        .route("/account/registry-password", post(pages::registry_password))
        .route("/account/tokens", post(pages::create_token))
        .route("/account/tokens/revoke-all", post(pages::revoke_all_tokens))
        .route(
            "/account/sign-out-everywhere",
            post(pages::sign_out_everywhere),
        )
        .route("/account/tokens/{id}/revoke", post(pages::revoke_token))
        .route("/audit", get(pages::audit))
        .route(
            "/namespaces/{ns}/webhooks",
            get(webhooks::namespace_page).post(webhooks::namespace_create),
        )
        .route(
            "/webhooks",
            get(webhooks::platform_page).post(webhooks::platform_create),
        )
        .route("/webhooks/{id}/{action}", post(webhooks::action))
        .route("/remotes", get(remotes::page).post(remotes::create))
        .route("/remotes/{name}/{action}", post(remotes::action))
        .route(
            "/replication",
            get(replication::page).post(replication::create),
        )
        .route("/replication/{id}/{action}", post(replication::action))
        .route(
            "/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(webhooks::redeliver),
        )
        .fallback(not_found)
        .layer(axum::middleware::map_response(page_headers))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        for ok in [
            "/",
            "/namespaces",
            "/images?namespace=a&sort=-name",
            "/namespaces/a%2Fb",
        ] {
            assert_eq!(local_path(ok), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "//evil.example",
            "/\t/evil.example",
            "/\r\n//evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/ /evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/caf\u{e9}",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }
}
