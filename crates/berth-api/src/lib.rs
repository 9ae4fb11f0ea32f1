//! The /api/v1 management surface: JSON over the management service, with
//! an OpenAPI 3 document generated from these handlers and served at
//! `/api/v1/openapi.json`.
//!
//! Callers authenticate with HTTP Basic (account credentials), a personal
//! API token (`Authorization: Bearer berth_pat_…`), or the console's session
//! cookie plus `X-CSRF-Token` on changing requests ([`auth`]). Errors are
//! RFC 9457 problem documents with a stable `code` ([`error`]).
//!
//! Image names may contain slashes; in paths they are one segment with the
//! slashes percent-encoded: `/api/v1/namespaces/team/repositories/web%2Ffrontend/tags`.
//!
//! Layering: calls `berth-core` (and uses types of `berth-meta` and
//! `berth-oci`); is called by the `berth` binary (which mounts [`router`])
//! and by the console crate (which reuses [`auth`] for sessions).

pub mod auth;
pub mod error;
mod gc;
mod images;
pub mod model;
mod namespaces;
mod people;
mod policies;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::Router;
use berth_core::{Auth, Collector, Management};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ApiError;

/// What the management API needs.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The management service.
    pub management: Management,
    /// The garbage collector.
    pub collector: Collector,
    /// Logins (throttled) for Basic and the session endpoint.
    pub auth: Arc<Auth>,
    /// Mark the session cookie `Secure` (Berth serves TLS, or sits behind a
    /// TLS proxy).
    pub secure_cookies: bool,
}

impl ApiState {
    /// A `Set-Cookie` value for the session cookie (`max_age` 0 clears it).
    pub fn session_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let cookie = format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
            auth::SESSION_COOKIE
        );
        HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static(""))
    }
}

/// The client's IP address.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(ClientIp(auth::client_ip(parts)))
    }
}

/// Parse `sort=key` or `sort=-key` (descending) against the allowed keys.
pub(crate) fn parse_sort<T: Copy + Default>(
    sort: Option<&str>,
    keys: &[(&str, T)],
) -> Result<(T, bool), ApiError> {
    let Some(sort) = sort.filter(|s| !s.is_empty()) else {
        return Ok((T::default(), false));
    };
    let (name, descending) = match sort.strip_prefix('-') {
        Some(n) => (n, true),
        None => (sort, false),
    };
    keys.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| (*v, descending))
        .ok_or_else(|| {
            let allowed: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
            ApiError::invalid(format!(
                "unknown sort key {name:?}: use one of {} (prefix - for descending)",
                allowed.join(", ")
            ))
        })
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::SESSION_COOKIE,
                "Console session; changing requests also send X-CSRF-Token",
            ))),
        );
    }
}

/// The OpenAPI document of the management API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Berth management API",
        description = "Namespaces, images, tags, access, registry users, tokens and the audit log of a Berth registry. Image names with slashes are one path segment with %2F.",
        version = "1",
        license(name = "Apache-2.0")
    ),
    paths(
        namespaces::list, namespaces::shared, namespaces::create, namespaces::get_one,
        namespaces::update, namespaces::delete, namespaces::batch_delete,
        namespaces::members, namespaces::set_member, namespaces::remove_member,
        namespaces::grants, namespaces::set_grant, namespaces::remove_grant,
        namespaces::permissions, namespaces::set_permission, namespaces::remove_permission,
        images::list, images::platform, images::get_one, images::delete, images::batch_delete,
        images::tags, images::delete_tag, images::batch_delete_tags,
        people::groups, people::create_group, people::group, people::update_group,
        people::set_group_member, people::remove_group_member,
        people::accounts, people::create_account, people::update_account, people::me,
        people::update_me, people::registry_users, people::registry_user_grants,
        people::create_registry_user, people::update_registry_user, people::delete_registry_user,
        people::tokens, people::create_token, people::revoke_token,
        people::login, people::session, people::logout, people::audit,
        gc::start, gc::runs, gc::run,
        policies::get, policies::put, policies::run_retention,
    ),
    modifiers(&SecuritySchemes),
    security(("basic" = []), ("api_token" = []), ("session" = [])),
    tags(
        (name = "namespaces", description = "Namespaces and their statistics"),
        (name = "images", description = "Images (repositories) and tags"),
        (name = "access", description = "Namespace members, per-image permissions and registry-user grants"),
        (name = "project groups", description = "Project groups, their members and namespace limits"),
        (name = "accounts", description = "Console accounts and personal API tokens"),
        (name = "registry users", description = "Users for docker login with pull/push grants"),
        (name = "session", description = "Console login"),
        (name = "audit", description = "The audit log"),
        (name = "garbage collection", description = "Reclaiming storage (platform administrators)"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The OpenAPI document as pretty JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

async fn openapi(State(doc): State<Arc<String>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.as_str().to_owned(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint; see /api/v1/openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /api/v1/openapi.json",
    )
}

/// The /api router. Needs `ConnectInfo<SocketAddr>` for login throttling.
pub fn router(state: ApiState) -> Router {
    let doc = Arc::new(openapi_json());
    let v1 = Router::new()
        .route(
            "/namespaces",
            get(namespaces::list).post(namespaces::create),
        )
        .route("/namespaces/batch-delete", post(namespaces::batch_delete))
        .route(
            "/namespaces/{ns}",
            get(namespaces::get_one)
                .patch(namespaces::update)
                .delete(namespaces::delete),
        )
        .route("/namespaces/{ns}/members", get(namespaces::members))
        .route(
            "/namespaces/{ns}/policies",
            get(policies::get).put(policies::put),
        )
        .route(
            "/namespaces/{ns}/retention/run",
            post(policies::run_retention),
        )
        .route(
            "/namespaces/{ns}/members/{account}",
            put(namespaces::set_member).delete(namespaces::remove_member),
        )
        .route("/namespaces/{ns}/grants", get(namespaces::grants))
        .route(
            "/namespaces/{ns}/grants/{user}",
            put(namespaces::set_grant).delete(namespaces::remove_grant),
        )
        .route("/namespaces/{ns}/permissions", get(namespaces::permissions))
        .route(
            "/namespaces/{ns}/permissions/{repo}/{account}",
            put(namespaces::set_permission).delete(namespaces::remove_permission),
        )
        .route("/namespaces/{ns}/repositories", get(images::list))
        .route(
            "/namespaces/{ns}/repositories/batch-delete",
            post(images::batch_delete),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}",
            get(images::get_one).delete(images::delete),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/tags",
            get(images::tags),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/tags/batch-delete",
            post(images::batch_delete_tags),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/tags/{tag}",
            axum::routing::delete(images::delete_tag),
        )
        .route("/shared/namespaces", get(namespaces::shared))
        .route("/platform/repositories", get(images::platform))
        .route(
            "/project-groups",
            get(people::groups).post(people::create_group),
        )
        .route(
            "/project-groups/{group}",
            get(people::group).patch(people::update_group),
        )
        .route(
            "/project-groups/{group}/members/{account}",
            put(people::set_group_member).delete(people::remove_group_member),
        )
        .route(
            "/accounts",
            get(people::accounts).post(people::create_account),
        )
        .route("/accounts/me", get(people::me).patch(people::update_me))
        .route(
            "/accounts/{account}",
            axum::routing::patch(people::update_account),
        )
        .route(
            "/registry-users",
            get(people::registry_users).post(people::create_registry_user),
        )
        .route(
            "/registry-users/{name}",
            get(people::registry_user_grants)
                .patch(people::update_registry_user)
                .delete(people::delete_registry_user),
        )
        .route("/tokens", get(people::tokens).post(people::create_token))
        .route("/tokens/{id}", axum::routing::delete(people::revoke_token))
        .route(
            "/session",
            get(people::session)
                .post(people::login)
                .delete(people::logout),
        )
        .route("/audit-log", get(people::audit))
        .route("/gc/runs", get(gc::runs).post(gc::start))
        .route("/gc/runs/{id}", get(gc::run))
        .with_state(state)
        .route("/openapi.json", get(openapi).with_state(doc));
    Router::new()
        .nest("/api/v1", v1)
        .route("/api", any(not_found))
        .route("/api/{*rest}", any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    enum K {
        #[default]
        A,
        B,
    }

    /// The published contract: a change to the API shows up here for review.
    #[test]
    fn openapi_document_snapshot() {
        insta::assert_snapshot!("openapi", openapi_json());
    }

    #[test]
    fn sort_keys_parse() {
        let keys = [("a", K::A), ("b", K::B)];
        assert_eq!(parse_sort(None, &keys).unwrap(), (K::A, false));
        assert_eq!(parse_sort(Some("b"), &keys).unwrap(), (K::B, false));
        assert_eq!(parse_sort(Some("-b"), &keys).unwrap(), (K::B, true));
        assert!(parse_sort(Some("c"), &keys).is_err());
    }
}
