//! Remote registries (platform administrators): register, change, delete,
//! test the connection. Passwords go in and never come out; remotes
//! declared in the configuration file are listed read-only.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_core::platform::{ConnectionTest, Remote, RemoteSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::model::time;
use berth_web::WebState;

/// A remote registry. Its password is never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemoteJson {
    /// Name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// User name, if it authenticates.
    pub username: Option<String>,
    /// Whether a password is stored (sealed with the configured key).
    pub has_password: bool,
    /// Whether TLS certificates go unverified.
    pub insecure_skip_verify: bool,
    /// The CA certificate (PEM) it trusts besides the system's.
    pub ca_certificate: Option<String>,
    /// Its token service on another host, which may receive the
    /// credentials (otherwise only the registry's own host does).
    pub token_realm: Option<String>,
    /// Declared in the configuration file: read-only here.
    pub read_only: bool,
    /// Who registered it (`configuration` for declared ones).
    pub created_by: String,
    /// When (RFC 3339; absent for declared ones).
    pub created_at: Option<String>,
    /// Last change.
    pub updated_at: Option<String>,
}

impl From<Remote> for RemoteJson {
    fn from(r: Remote) -> Self {
        RemoteJson {
            name: r.name,
            url: r.url,
            username: r.username,
            has_password: r.has_password,
            insecure_skip_verify: r.insecure,
            ca_certificate: r.ca_pem,
            token_realm: r.token_realm,
            read_only: r.declared,
            created_by: r.created_by,
            created_at: (!r.declared).then(|| time(r.created_at)),
            updated_at: (!r.declared).then(|| time(r.updated_at)),
        }
    }
}

/// A remote registry to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRemote {
    /// Name: 1 to 64 lower-case letters, digits, `-`, `_` or `.`.
    #[schema(pattern = "^[a-z0-9._-]{1,64}$", min_length = 1, max_length = 64)]
    pub name: String,
    /// Base URL, `http://` or `https://`, without credentials.
    #[schema(pattern = "^https?://", max_length = 2048)]
    pub url: String,
    /// User name for Basic or token authentication.
    #[schema(max_length = 256)]
    pub username: Option<String>,
    /// Password or access token (needs `username`); stored sealed, never
    /// shown again. Needs `encryption_key` in the configuration.
    #[schema(max_length = 4096)]
    pub password: Option<String>,
    /// Accept any TLS certificate (lab registries only).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// A CA certificate (PEM) to trust besides the system's.
    #[schema(max_length = 65536)]
    pub ca_certificate: Option<String>,
    /// The registry's token service when it is on another host (a URL
    /// prefix, e.g. `https://auth.docker.io/token`): credentials are sent
    /// there only when it is named here.
    #[schema(pattern = "^https?://", max_length = 2048)]
    pub token_realm: Option<String>,
}

impl std::fmt::Debug for CreateRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateRemote")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Changes to a remote registry; fields left out stay, `""` clears
/// `username`, `password`, `ca_certificate` and `token_realm`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRemote {
    /// Base URL.
    #[schema(pattern = "^https?://", max_length = 2048)]
    pub url: Option<String>,
    /// User name.
    #[schema(max_length = 256)]
    pub username: Option<String>,
    /// Password or access token.
    #[schema(max_length = 4096)]
    pub password: Option<String>,
    /// Accept any TLS certificate.
    pub insecure_skip_verify: Option<bool>,
    /// CA certificate (PEM).
    #[schema(max_length = 65536)]
    pub ca_certificate: Option<String>,
    /// Token realm.
    #[schema(pattern = "^(https?://.*)?$", max_length = 2048)]
    pub token_realm: Option<String>,
}

impl std::fmt::Debug for UpdateRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateRemote")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// How a connection test went.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionTestJson {
    /// Whether the registry answered `/v2/` and took the credentials.
    pub ok: bool,
    /// What happened.
    pub message: String,
}

impl From<ConnectionTest> for ConnectionTestJson {
    fn from(t: ConnectionTest) -> Self {
        ConnectionTestJson {
            ok: t.ok,
            message: t.message,
        }
    }
}

/// Remote registries (platform administrators).
#[utoipa::path(get, path = "/api/v1/remotes", tag = "remote registries",
    responses((status = 200, body = Vec<RemoteJson>), (status = 403, body = Problem)))]
pub(crate) async fn list(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<Vec<RemoteJson>>> {
    let actor = caller.account()?;
    let remotes = state.remotes.list(actor).await?;
    Ok(Json(remotes.into_iter().map(RemoteJson::from).collect()))
}

/// Register a remote registry (platform administrators).
#[utoipa::path(post, path = "/api/v1/remotes", tag = "remote registries",
    request_body(content = CreateRemote, content_type = "application/json"),
    responses((status = 201, body = RemoteJson), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn create(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<CreateRemote>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<RemoteJson>)> {
    let actor = caller.account()?;
    let Json(b) = body?;
    let remote = state
        .remotes
        .create(
            actor,
            &b.name,
            RemoteSpec {
                url: Some(b.url),
                username: b.username,
                password: b.password,
                insecure: Some(b.insecure_skip_verify),
                ca_pem: b.ca_certificate,
                token_realm: b.token_realm,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(remote.into())))
}

/// A remote registry.
#[utoipa::path(get, path = "/api/v1/remotes/{name}", tag = "remote registries",
    params(("name" = String, Path, description = "Remote name")),
    responses((status = 200, body = RemoteJson), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn get_one(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<RemoteJson>> {
    let actor = caller.account()?;
    let Path(name) = path?;
    Ok(Json(state.remotes.get(actor, &name).await?.into()))
}

/// Change a registered remote registry (declared ones are changed in the
/// configuration file).
#[utoipa::path(patch, path = "/api/v1/remotes/{name}", tag = "remote registries",
    params(("name" = String, Path, description = "Remote name")),
    request_body(content = UpdateRemote, content_type = "application/json"),
    responses((status = 200, body = RemoteJson), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn update(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateRemote>, JsonRejection>,
) -> ApiResult<Json<RemoteJson>> {
    let actor = caller.account()?;
    let Path(name) = path?;
    let Json(b) = body?;
    let remote = state
        .remotes
        .update(
            actor,
            &name,
            RemoteSpec {
                url: b.url,
                username: b.username,
                password: b.password,
                insecure: b.insecure_skip_verify,
                ca_pem: b.ca_certificate,
                token_realm: b.token_realm,
            },
        )
        .await?;
    Ok(Json(remote.into()))
}

/// Delete a registered remote registry.
#[utoipa::path(delete, path = "/api/v1/remotes/{name}", tag = "remote registries",
    params(("name" = String, Path, description = "Remote name")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path(name) = path?;
    state.remotes.delete(actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Test the connection: the registry answers `/v2/` and accepts the
/// credentials (the answer says why not).
#[utoipa::path(post, path = "/api/v1/remotes/{name}/test", tag = "remote registries",
    params(("name" = String, Path, description = "Remote name")),
    responses((status = 200, body = ConnectionTestJson), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn test(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ConnectionTestJson>> {
    let actor = caller.account()?;
    let Path(name) = path?;
    Ok(Json(state.remotes.test(actor, &name).await?.into()))
}

/// A namespace that is a pull-through cache of a remote registry
/// (declared in the configuration file: read-only here).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProxyNamespaceJson {
    /// The namespace.
    pub namespace: String,
    /// The remote registry it caches.
    pub remote: String,
    /// Seconds a cached tag is served before a HEAD checks it upstream.
    pub revalidate_seconds: u64,
    /// Reads of repositories that do not exist here go to it (registry mirrors).
    pub default: bool,
    /// Always true: proxy namespaces are set in the configuration file.
    pub read_only: bool,
}

/// Pull-through cache namespaces (platform administrators).
#[utoipa::path(get, path = "/api/v1/proxy-namespaces", tag = "remote registries",
    responses((status = 200, body = Vec<ProxyNamespaceJson>), (status = 403, body = Problem)))]
pub(crate) async fn proxy_namespaces(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<Vec<ProxyNamespaceJson>>> {
    let actor = caller.account()?;
    if !actor.is_platform_admin() {
        return Err(berth_core::DirectoryError::Forbidden(
            "proxy namespaces are listed for platform administrators".into(),
        )
        .into());
    }
    let list = state
        .proxy
        .as_ref()
        .map(|p| p.namespaces().to_vec())
        .unwrap_or_default();
    Ok(Json(
        list.into_iter()
            .map(|p| ProxyNamespaceJson {
                namespace: p.namespace,
                remote: p.remote,
                revalidate_seconds: p.revalidate.as_secs(),
                default: p.default,
                read_only: true,
            })
            .collect(),
    ))
}
