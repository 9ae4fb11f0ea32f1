//! The /v2 HTTP surface: the OCI Distribution Specification v1.1 with Docker
//! Registry v2 compatibility.
//!
//! Each request is parsed into an [`Endpoint`] (typed routing), its caller
//! identified and authorized against the access the endpoint needs (Docker
//! token authentication; the token endpoint `/auth/token` lives here too),
//! then handled by calling the registry service. This crate owns the /v2
//! wire format: headers, status codes, challenges and the OCI `errors[]`
//! JSON body.
//!
//! Layering: calls `berth-core` (and uses types of `berth-oci` and
//! `berth-blob`); is called by the `berth` binary, which mounts [`router`].
//!
//! # In detail
//!
//! the /v2 surface and `/auth/token` (`wire`: the pure header parsers,
//! `Range`, `Content-Range`, Basic credentials). Every request is first
//! parsed into an `Endpoint` enum (typed routing; names may contain slashes,
//! so paths are read from the end) which also states the `Access` it needs
//! (pull, push, delete on which repositories; catalog; base). Then the caller
//! is identified (bearer token, HTTP Basic, or anonymous) and authorized
//! against that access: a token must carry the scope (and what it writes is
//! asked of the directory again); Basic and anonymous callers are checked
//! against the directory. Missing access gives a `401` challenge naming every
//! scope the request wants in one `scope` parameter (a mount's source pull
//! included, so one token round trip does; `error="insufficient_scope"` when
//! a new token would help) or `403 DENIED`. A mount needs only push on its
//! target: without pull on its source it answers `202` with a plain upload
//! session, as the spec says. External clients then meet the external-access
//! switch of each namespace the request touches (`403 DENIED` naming it), and
//! their blob downloads are throttled per stream (internal ones keep the
//! unthrottled path). Unthrottled downloads of 4 MiB or more read in 1 MiB
//! chunks (two buffers each, as the next is read ahead) while an 8 MiB budget
//! shared by all downloads lasts; smaller ones, and any beyond the budget, in
//! 64 KiB ones. Pushes to a missing namespace create it first. The catalog
//! lists what the caller can pull, chosen by the database; a mount only
//! happens from a repository the caller can pull. Handlers call the service;
//! `OciError` owns the wire format (`{"errors":[…]}` with the spec's codes).
//! Every response carries `Docker-Distribution-API-Version: registry/2.0`,
//! `X-Content-Type-Options: nosniff` and a `Content-Security-Policy` of
//! `default-src 'none'; sandbox`: opened in a browser, an answer is inert
//! (docs/security.md); blob downloads are attachments.

mod auth;
mod endpoint;
mod error;
mod handlers;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use berth_core::platform::Proxy;
use berth_core::zones::{NetworkPolicy, Zone};
use berth_core::{Auth, DirectoryError, Management, Registry};

pub use endpoint::{Access, Action, Endpoint, RouteError};
pub use error::OciError;

/// The kind of /v2 endpoint that answered, attached to responses as an
/// extension for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointKind(pub &'static str);

/// What the /v2 surface needs.
#[derive(Debug, Clone)]
pub struct V2State {
    /// The registry service.
    pub registry: Registry,
    /// The management service: deletes with their audit entries and events.
    pub management: Management,
    /// Token authentication and access rules.
    pub auth: Arc<Auth>,
    /// The URL clients reach Berth at (for the token realm); derived from
    /// the request's Host when absent.
    pub external_url: Option<String>,
    /// Whether Berth serves TLS (for a derived realm).
    pub tls: bool,
    /// Internal networks and trusted proxies.
    pub network: Arc<NetworkPolicy>,
    /// Blob download cap per stream for external clients, bytes per second
    /// (0: none).
    pub external_bandwidth: u64,
    /// The pull-through cache, when proxy namespaces are configured.
    pub proxy: Option<Proxy>,
}

/// Who is calling, and from where.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    /// The client's address (behind trusted proxies, from X-Forwarded-For).
    pub ip: std::net::IpAddr,
    /// Internal or external.
    pub zone: Zone,
}

fn client_of(state: &V2State, peer: SocketAddr, headers: &HeaderMap) -> Client {
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let ip = state.network.client(peer.ip(), &forwarded);
    Client {
        ip,
        zone: state.network.zone(ip),
    }
}

/// The /v2 router and the token endpoint `/auth/token`. Needs
/// `ConnectInfo<SocketAddr>` (login throttling is per client).
pub fn router(state: V2State) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route("/v2", any(entry))
        .route("/v2/", any(entry))
        .route("/v2/{*rest}", any(entry))
        .route("/auth/token", any(token))
        .with_state(state)
}

async fn token(
    State(state): State<Arc<V2State>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client_of(&state, peer, &headers);
    let query = match (&state.proxy, uri.query()) {
        (Some(proxy), Some(q)) => Some(alias_scopes(proxy, q).await),
        (_, q) => q.map(str::to_owned),
    };
    let mut response = auth::token_endpoint(
        &state.auth,
        &method,
        query.as_deref(),
        &headers,
        body,
        client.ip,
    )
    .await;
    inert(response.headers_mut());
    response.extensions_mut().insert(EndpointKind("token"));
    response
}

/// Whatever a tenant pushed, a browser that opens a /v2 or token answer
/// directly (a link sent to an administrator) neither sniffs it into
/// something else nor runs anything in it: every answer is data.
fn inert(headers: &mut HeaderMap) {
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; sandbox"),
    );
}

/// Rewrite the repositories of a token request's pull-only `scope`
/// parameters the way the /v2 surface rewrites reads for the default proxy
/// namespace.
async fn alias_scopes(proxy: &Proxy, query: &str) -> String {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut out = Vec::new();
    for (k, v) in pairs {
        if k != "scope" {
            out.push((k, v));
            continue;
        }
        let mut scopes = Vec::new();
        for scope in v.split(' ') {
            let parts: Vec<&str> = scope.splitn(3, ':').collect();
            let aliased = match parts.as_slice() {
                ["repository", name, actions] if *actions == "pull" => {
                    match berth_oci::RepoName::parse(name) {
                        Ok(repo) => proxy
                            .alias(&repo)
                            .await
                            .map(|a| format!("repository:{a}:{actions}")),
                        Err(_) => None,
                    }
                }
                _ => None,
            };
            scopes.push(aliased.unwrap_or_else(|| scope.to_owned()));
        }
        out.push((k, scopes.join(" ")));
    }
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(out)
        .finish()
}

async fn entry(
    State(state): State<Arc<V2State>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (mut response, kind) = match percent_decode(uri.path())
        .ok_or_else(|| RouteError::NotFound(uri.path().to_owned()))
        .and_then(|path| Endpoint::parse(&method, &path, uri.query()))
    {
        Ok(mut endpoint) => {
            // Reads of repositories that do not exist here may go to the
            // default proxy namespace (registry mirrors).
            let read = matches!(
                endpoint,
                Endpoint::Tags { .. }
                    | Endpoint::GetManifest { .. }
                    | Endpoint::GetBlob { .. }
                    | Endpoint::Referrers { .. }
            );
            if let Some(proxy) = state.proxy.as_ref().filter(|_| read) {
                if let Some(repo) = endpoint.repo_mut() {
                    if let Some(alias) = proxy.alias(repo).await {
                        *repo = alias;
                    }
                }
            }
            let kind = endpoint.kind();
            let client = client_of(&state, peer, &headers);
            let response = serve(&state, endpoint, &headers, body, client)
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
    inert(response.headers_mut());
    response.extensions_mut().insert(EndpointKind(kind));
    response
}

/// Authenticate, authorize, create a missing namespace on push, then handle.
async fn serve(
    state: &V2State,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: Body,
    client: Client,
) -> Result<Response, OciError> {
    let realm = auth::realm(state.external_url.as_deref(), state.tls, headers);
    let caller = auth::identify(&state.auth, headers, client.ip, &realm).await?;
    let principal = auth::authorize(&state.auth, &caller, &endpoint, &realm).await?;
    let mut endpoint = endpoint;
    if client.zone == Zone::External {
        check_external_access(state, &endpoint).await?;
        external_mount_source(state, &mut endpoint).await?;
    }
    if let Endpoint::StartUpload { repo, .. } | Endpoint::PutManifest { repo, .. } = &endpoint {
        if let Some(p) = state.proxy.as_ref().and_then(|p| p.of(repo)) {
            return Err(OciError::new(
                StatusCode::FORBIDDEN,
                "DENIED",
                format!(
                    "namespace {} is a pull-through cache of the remote registry {}: it takes no pushes",
                    p.namespace, p.remote
                ),
            ));
        }
        match state
            .auth
            .directory()
            .ensure_namespace(&principal, repo)
            .await
        {
            Ok(()) => {}
            Err(DirectoryError::Forbidden(m) | DirectoryError::LimitExceeded(m)) => {
                return Err(OciError::new(StatusCode::FORBIDDEN, "DENIED", m))
            }
            Err(e) => {
                return Err(OciError::internal(
                    e.fault(),
                    &format!("creating a namespace on push failed: {e}"),
                ))
            }
        }
    }
    // External downloads are capped per stream; internal ones pay nothing.
    let cap = (client.zone == Zone::External && state.external_bandwidth > 0)
        .then_some(state.external_bandwidth);
    let requester = handlers::Requester {
        principal: &principal,
        addr: client.ip,
        download_cap: cap,
    };
    handlers::handle(
        &state.management,
        &state.auth,
        state.proxy.as_ref(),
        &requester,
        endpoint,
        headers,
        body,
    )
    .await
}

/// The per-namespace external-access switch (see
/// [`berth_core::Directory::external_refusal`]) for each repository the
/// endpoint touches.
async fn check_external_access(state: &V2State, endpoint: &Endpoint) -> Result<(), OciError> {
    let Access::Repository(needed) = endpoint.access() else {
        return Ok(());
    };
    for (repo, action) in &needed {
        let refusal = state
            .auth
            .directory()
            .external_refusal(repo.namespace(), *action == Action::Pull)
            .await
            .map_err(|e| {
                OciError::internal(
                    e.fault(),
                    &format!("reading a namespace's external access failed: {e}"),
                )
            })?;
        if let Some(message) = refusal {
            return Err(OciError::new(StatusCode::FORBIDDEN, "DENIED", message));
        }
    }
    Ok(())
}

/// An external client's mount from a repository it could not pull from
/// outside (see [`berth_core::Directory::external_mount_allowed`]) becomes
/// a plain upload.
async fn external_mount_source(state: &V2State, endpoint: &mut Endpoint) -> Result<(), OciError> {
    let Endpoint::StartUpload { mount, from, .. } = endpoint else {
        return Ok(());
    };
    if mount.is_none() {
        return Ok(());
    }
    let allowed = state
        .auth
        .directory()
        .external_mount_allowed(from.as_ref())
        .await
        .map_err(|e| {
            OciError::internal(
                e.fault(),
                &format!("reading a namespace's external access failed: {e}"),
            )
        })?;
    if !allowed {
        *mount = None;
        *from = None;
    }
    Ok(())
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
