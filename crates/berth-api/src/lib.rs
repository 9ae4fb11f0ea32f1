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

pub mod access;
pub mod auth;
pub mod error;
mod gc;
mod images;
pub mod model;
mod namespaces;
mod people;
mod policies;
mod remotes;
mod replication;
mod sync;
mod webhooks;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::Router;
use berth_core::events::Webhooks;
use berth_core::platform::{Proxy, Remotes, Replications, Synchronizer};
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
    /// Synchronization rules and records.
    pub sync: Synchronizer,
    /// Webhooks and their deliveries.
    pub webhooks: Webhooks,
    /// Remote registries.
    pub remotes: Remotes,
    /// Replication rules with remote registries, their runs and tasks.
    pub replications: Replications,
    /// The pull-through cache, when proxy namespaces are configured.
    pub proxy: Option<Proxy>,
    /// Logins (throttled) for Basic and the session endpoint.
    pub auth: Arc<Auth>,
    /// Mark the session cookie `Secure` (Berth serves TLS, or sits behind a
    /// TLS proxy).
    pub secure_cookies: bool,
    /// Internal networks and trusted proxies (whose forwarded client
    /// address login throttling keys on).
    pub network: Arc<berth_core::zones::NetworkPolicy>,
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

impl FromRequestParts<ApiState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        Ok(ClientIp(auth::client_ip(state, parts)))
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
        images::list, images::list_all, images::batch_delete_any, images::platform, images::get_one, images::delete, images::batch_delete,
        images::tags, images::delete_tag, images::batch_delete_tags,
        people::groups, people::create_group, people::group, people::update_group,
        people::set_group_member, people::remove_group_member,
        people::accounts, people::create_account, people::update_account, people::me,
        people::update_me, people::registry_users, people::registry_user_grants,
        people::create_registry_user, people::update_registry_user, people::delete_registry_user,
        people::tokens, people::create_token, people::revoke_token, people::revoke_all_tokens,
        people::login, people::session, people::logout, people::sign_out_everywhere, people::audit,
        gc::start, gc::runs, gc::run,
        policies::get, policies::put, policies::run_retention,
        sync::rules, sync::add_rule, sync::delete_rule, sync::start, sync::records,
        sync::regions, sync::replication, sync::set_replication,
        webhooks::platform_list, webhooks::platform_create, webhooks::namespace_list,
        webhooks::namespace_create, webhooks::get_one, webhooks::update, webhooks::delete,
        webhooks::ping, webhooks::deliveries, webhooks::delivery, webhooks::redeliver,
        remotes::list, remotes::create, remotes::get_one, remotes::update, remotes::delete,
        remotes::test, remotes::proxy_namespaces,
        replication::rules, replication::create, replication::get_one, replication::update,
        replication::delete, replication::run, replication::runs, replication::run_one,
        replication::tasks,
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
        (name = "synchronization", description = "Regions, image synchronization rules and their records"),
        (name = "remote registries", description = "Registries Berth does not run, for replication and caching (platform administrators)"),
        (name = "webhooks", description = "Webhooks of namespaces and of the platform, and their deliveries"),
        (name = "replication", description = "Replication rules with remote registries, their runs and tasks (platform administrators)"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The OpenAPI document as pretty JSON: utoipa's, with what holds for every
/// operation added once here rather than on each handler, so that the
/// document and the server cannot drift apart: errors are
/// `application/problem+json`; any operation with parameters or a body may
/// answer 400 (a missing JSON content type, an id that overflows, a value
/// out of range); authenticated ones 401, and 429 while logins are
/// throttled; and any may answer 500, 503 (database unavailable) or 507
/// (storage full), described by `default`. Public lists and the login are
/// marked as needing no credentials.
pub fn openapi_json() -> String {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    complete_document(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn problem(description: &str) -> serde_json::Value {
    serde_json::json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn complete_document(doc: &mut serde_json::Value) {
    use serde_json::{json, Value};
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let needs = access::declared(method, path);
            // Anonymous callers may call these (reads of public namespaces).
            let public = matches!(
                needs,
                Some(access::Needs::Anyone | access::Needs::NamespacePull)
            );
            if let Some(needs) = needs {
                op["x-berth-access"] = json!(needs.as_str());
            }
            let takes_input = op.get("parameters").is_some() || op.get("requestBody").is_some();
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for response in responses.values_mut() {
                let content = response.get_mut("content").and_then(Value::as_object_mut);
                if let Some(content) = content {
                    let is_problem = content
                        .get("application/json")
                        .and_then(|c| c.pointer("/schema/$ref"))
                        .and_then(Value::as_str)
                        == Some("#/components/schemas/Problem");
                    if is_problem {
                        if let Some(c) = content.remove("application/json") {
                            content.insert("application/problem+json".into(), c);
                        }
                    }
                }
            }
            if takes_input {
                responses
                    .entry("400")
                    .or_insert_with(|| problem("Invalid input (`invalid`)"));
            }
            // Invalid credentials are refused whatever the operation.
            responses
                .entry("401")
                .or_insert_with(|| problem("No or invalid credentials (`unauthorized`)"));
            responses.entry("429").or_insert_with(|| {
                problem("Too many failed logins from this client (`too_many_requests`)")
            });
            responses.entry("default").or_insert_with(|| {
                problem(
                    "A failure of the server: 500 `internal`, 503 `unavailable` (the database; \
                     retry), 507 `storage_full`",
                )
            });
            if public {
                op["security"] = json!([{}, {"basic": []}, {"api_token": []}, {"session": []}]);
            }
        }
    }
    // A new password and `generate_password: true` exclude each other.
    if let Some(schema) = doc.pointer_mut("/components/schemas/UpdateRegistryUser") {
        schema["not"] = json!({
            "required": ["password", "generate_password"],
            "properties": {"password": {"type": "string"}, "generate_password": {"const": true}}
        });
    }
    // Setting and clearing the registry password exclude each other.
    if let Some(schema) = doc.pointer_mut("/components/schemas/UpdateMe") {
        schema["not"] = json!({
            "required": ["registry_password", "clear_registry_password"],
            "properties": {"registry_password": {"type": "string"}, "clear_registry_password": {"const": true}}
        });
    }
    // A retention rule keeps by count or by age: exactly one of the two.
    if let Some(schema) = doc.pointer_mut("/components/schemas/RetentionRuleJson") {
        schema["oneOf"] = json!([
            {"required": ["keep_last"], "properties": {"keep_last": {"type": "integer"}},
             "not": {"required": ["keep_days"], "properties": {"keep_days": {"type": "integer"}}}},
            {"required": ["keep_days"], "properties": {"keep_days": {"type": "integer"}},
             "not": {"required": ["keep_last"], "properties": {"keep_last": {"type": "integer"}}}}
        ]);
    }
    // Labels: keys and values as berth-core checks them.
    for name in ["CreateNamespace", "UpdateNamespace"] {
        if let Some(labels) =
            doc.pointer_mut(&format!("/components/schemas/{name}/properties/labels"))
        {
            labels["maxProperties"] = json!(20);
            labels["propertyNames"] = json!({"pattern": "^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$"});
            labels["additionalProperties"] = json!({
                "type": "string", "maxLength": 128, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f\"\\\\]*$"
            });
        }
    }
    // Sort keys per list, and the grammar of names in paths.
    let sorts: [(&str, Vec<&str>); 6] = [
        ("/api/v1/namespaces", keys(namespaces::NAMESPACE_SORT)),
        (
            "/api/v1/shared/namespaces",
            keys(namespaces::NAMESPACE_SORT),
        ),
        (
            "/api/v1/namespaces/{ns}/repositories",
            keys(images::IMAGE_SORT),
        ),
        ("/api/v1/platform/repositories", keys(images::IMAGE_SORT)),
        ("/api/v1/repositories", keys(images::IMAGE_SORT)),
        (
            "/api/v1/namespaces/{ns}/repositories/{repo}/tags",
            keys(images::TAG_SORT),
        ),
    ];
    let component = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
    let names = [
        ("ns", format!("^{component}$")),
        ("repo", format!("^{component}(?:/{component})*$")),
        ("account", "^[a-z0-9][a-z0-9._-]{1,63}$".to_owned()),
        ("user", "^[a-z0-9][a-z0-9._-]{1,63}$".to_owned()),
        ("tag", "^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$".to_owned()),
    ];
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let sort = sorts.iter().find(|(p, _)| p == path).map(|(_, k)| k);
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                continue;
            };
            for param in params {
                let name = param["name"].as_str().unwrap_or_default().to_owned();
                let place = param["in"].as_str().unwrap_or_default().to_owned();
                if let (Some(keys), "sort", "query") = (sort, name.as_str(), place.as_str()) {
                    param["schema"]["pattern"] = json!(format!("^(-?({}))?$", keys.join("|")));
                }
                if place == "path" {
                    if let Some((_, pattern)) = names.iter().find(|(n, _)| *n == name) {
                        param["schema"]["pattern"] = json!(pattern);
                        if name == "ns" || name == "repo" {
                            param["schema"]["maxLength"] = json!(berth_oci::MAX_NAME_LEN);
                        }
                    }
                }
            }
        }
    }
}

fn keys<T>(list: &[(&'static str, T)]) -> Vec<&'static str> {
    list.iter().map(|(k, _)| *k).collect()
}

async fn openapi(State(doc): State<Arc<String>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.as_str().to_owned(),
    )
        .into_response()
}

/// Most bytes of a request body the API reads (its bodies are small).
const MAX_BODY: usize = 1 << 20;

/// Every JSON body the API takes is an object. serde would also read a
/// struct from an array (`[null, null]` as its fields in order), which the
/// document does not allow: such bodies are refused here, once, for all
/// endpoints.
async fn json_bodies_are_objects(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid",
                format!("the request body exceeds {MAX_BODY} bytes"),
            )
            .into_response()
        }
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return ApiError::invalid("invalid JSON body: it must be a JSON object").into_response();
    }
    let bytes = integral_numbers_as_integers(bytes);
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// In JSON (and JSON Schema) `7.0` is the integer 7, but serde refuses it
/// for an integer field: such numbers are rewritten as integers. A body
/// that does not parse is passed on as it is, for the handler to refuse.
fn integral_numbers_as_integers(bytes: axum::body::Bytes) -> axum::body::Bytes {
    fn fix(v: &mut serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    *v = serde_json::Value::from(f as i64);
                    return true;
                }
                false
            }
            serde_json::Value::Array(items) => items.iter_mut().fold(false, |c, i| fix(i) | c),
            serde_json::Value::Object(map) => map.values_mut().fold(false, |c, i| fix(i) | c),
            _ => false,
        }
    }
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return bytes;
    };
    if !fix(&mut value) {
        return bytes;
    }
    serde_json::to_vec(&value).map(Into::into).unwrap_or(bytes)
}

/// Every API answer is data for programs: a browser that opens one
/// directly neither sniffs it into a page nor runs anything in it.
async fn inert(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; sandbox"),
    );
    response
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
        .route("/repositories", get(images::list_all))
        .route("/repositories/batch-delete", post(images::batch_delete_any))
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
        .route(
            "/tokens",
            get(people::tokens)
                .post(people::create_token)
                .delete(people::revoke_all_tokens),
        )
        .route("/tokens/{id}", axum::routing::delete(people::revoke_token))
        .route(
            "/session",
            get(people::session)
                .post(people::login)
                .delete(people::logout),
        )
        .route(
            "/session/sign-out-everywhere",
            post(people::sign_out_everywhere),
        )
        .route("/audit-log", get(people::audit))
        .route("/gc/runs", get(gc::runs).post(gc::start))
        .route("/gc/runs/{id}", get(gc::run))
        .route(
            "/namespaces/{ns}/repositories/{repo}/sync-rules",
            get(sync::rules).post(sync::add_rule),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/sync-rules/{id}",
            axum::routing::delete(sync::delete_rule),
        )
        .route(
            "/namespaces/{ns}/repositories/{repo}/sync",
            post(sync::start),
        )
        .route("/sync-records", get(sync::records))
        .route("/regions", get(sync::regions))
        .route(
            "/namespaces/{ns}/replication",
            get(sync::replication).put(sync::set_replication),
        )
        .route(
            "/webhooks",
            get(webhooks::platform_list).post(webhooks::platform_create),
        )
        .route(
            "/namespaces/{ns}/webhooks",
            get(webhooks::namespace_list).post(webhooks::namespace_create),
        )
        .route(
            "/webhooks/{id}",
            get(webhooks::get_one)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/webhooks/{id}/ping", post(webhooks::ping))
        .route("/remotes", get(remotes::list).post(remotes::create))
        .route(
            "/remotes/{name}",
            get(remotes::get_one)
                .patch(remotes::update)
                .delete(remotes::delete),
        )
        .route("/remotes/{name}/test", post(remotes::test))
        .route("/proxy-namespaces", get(remotes::proxy_namespaces))
        .route(
            "/replication/rules",
            get(replication::rules).post(replication::create),
        )
        .route(
            "/replication/rules/{id}",
            get(replication::get_one)
                .put(replication::update)
                .delete(replication::delete),
        )
        .route("/replication/rules/{id}/run", post(replication::run))
        .route("/replication/runs", get(replication::runs))
        .route("/replication/runs/{id}", get(replication::run_one))
        .route("/replication/tasks", get(replication::tasks))
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/webhooks/{id}/deliveries/{delivery}",
            get(webhooks::delivery),
        )
        .route(
            "/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(webhooks::redeliver),
        )
        .with_state(state)
        .route("/openapi.json", get(openapi).with_state(doc))
        .layer(axum::middleware::from_fn(json_bodies_are_objects));
    Router::new()
        .nest("/api/v1", v1)
        .route("/api", any(not_found))
        .route("/api/{*rest}", any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(inert))
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

    /// Every operation declares who may call it, and every declaration is
    /// of an operation.
    #[test]
    fn every_operation_declares_its_access() {
        let doc: serde_json::Value = serde_json::from_str(&openapi_json()).unwrap();
        let mut operations = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(
                    op["x-berth-access"].is_string(),
                    "{method} {path} declares no access in access::DECLARED"
                );
                operations.push((method.clone(), path.clone()));
            }
        }
        for (method, path, _) in access::DECLARED {
            assert!(
                operations.iter().any(|(m, p)| m == method && p == path),
                "{method} {path} is declared but is no operation"
            );
        }
        assert_eq!(operations.len(), access::DECLARED.len());
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
