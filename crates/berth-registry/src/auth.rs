//! Docker token authentication on the wire: the `/auth/token` endpoint and
//! the check every /v2 request passes before its handler runs.
//!
//! Callers present a bearer token from `/auth/token`, HTTP Basic
//! credentials (simple clients), or nothing (anonymous). Missing access
//! answers 401 with a `WWW-Authenticate: Bearer` challenge naming the scope
//! (with `error="insufficient_scope"` when a token lacks it); an
//! authenticated caller who may not answers 403 `DENIED`.

use std::net::IpAddr;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::access::{Actions, Principal};
use berth_core::identity::looks_like_jwt;
use berth_core::token::{rfc3339, Claims, ResourceScope};
use berth_core::{Auth, AuthError};
use berth_oci::RepoName;
use futures_util::StreamExt;
use serde_json::json;

use crate::endpoint::{Access, Action, Endpoint};
use crate::error::OciError;

/// How the caller identified itself.
#[derive(Debug)]
pub(crate) enum Caller {
    /// No credentials.
    Anonymous,
    /// HTTP Basic, verified.
    Basic(Principal),
    /// A verified access token.
    Bearer(Box<Claims>),
}

impl Caller {
    pub(crate) fn principal(&self) -> Principal {
        match self {
            Caller::Anonymous => Principal::Anonymous,
            Caller::Basic(p) => p.clone(),
            Caller::Bearer(c) => c.principal(),
        }
    }
}

/// Where clients fetch tokens.
pub(crate) fn realm(external_url: Option<&str>, tls: bool, headers: &HeaderMap) -> String {
    match external_url {
        Some(u) => format!("{}/auth/token", u.trim_end_matches('/')),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
                .unwrap_or("localhost");
            format!("{}://{host}/auth/token", if tls { "https" } else { "http" })
        }
    }
}

fn challenge(realm: &str, service: &str, scope: Option<&str>, error: Option<&str>) -> String {
    let mut c = format!("Bearer realm=\"{realm}\",service=\"{service}\"");
    if let Some(s) = scope.filter(|s| !s.is_empty()) {
        c.push_str(&format!(",scope=\"{s}\""));
    }
    if let Some(e) = error {
        c.push_str(&format!(",error=\"{e}\""));
    }
    c
}

fn unauthorized(
    realm: &str,
    service: &str,
    scope: Option<&str>,
    error: Option<&str>,
    message: &str,
) -> OciError {
    OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message).with_header(
        header::WWW_AUTHENTICATE,
        challenge(realm, service, scope, error),
    )
}

fn denied(message: String) -> OciError {
    OciError::new(StatusCode::FORBIDDEN, "DENIED", message)
}

fn throttled(e: &AuthError, retry_after: u64) -> OciError {
    OciError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TOOMANYREQUESTS",
        e.to_string(),
    )
    .with_header(header::RETRY_AFTER, retry_after.to_string())
}

fn internal(e: AuthError) -> OciError {
    OciError::internal(e.fault(), &e)
}

/// Identify the caller of a /v2 request.
pub(crate) async fn identify(
    auth: &Auth,
    headers: &HeaderMap,
    client: IpAddr,
    realm: &str,
) -> Result<Caller, OciError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Caller::Anonymous);
    };
    let value = value.to_str().unwrap_or("");
    if let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    {
        return match auth.verify_access(token.trim()) {
            Ok(claims) => Ok(Caller::Bearer(Box::new(claims))),
            Err(e) => Err(unauthorized(
                realm,
                auth.service(),
                None,
                Some("invalid_token"),
                &e.to_string(),
            )),
        };
    }
    let Some((user, password)) = crate::wire::basic_credentials(value) else {
        return Err(unauthorized(
            realm,
            auth.service(),
            None,
            None,
            "unsupported Authorization header: use Basic or Bearer",
        ));
    };
    match auth.login(&user, &password, client).await {
        Ok(p) => Ok(Caller::Basic(p)),
        Err(e @ (AuthError::Throttled { retry_after } | AuthError::Busy { retry_after })) => {
            Err(throttled(&e, retry_after))
        }
        Err(AuthError::Failed | AuthError::Token(_)) => Err(unauthorized(
            realm,
            auth.service(),
            None,
            None,
            "invalid username or password",
        )),
        Err(e @ AuthError::Refused(_)) => Err(unauthorized(
            realm,
            auth.service(),
            None,
            None,
            &e.to_string(),
        )),
        Err(e @ AuthError::IssuerUnavailable(_)) => Err(issuer_unavailable(e)),
        Err(e @ AuthError::Internal(_)) => Err(internal(e)),
    }
}

fn issuer_unavailable(e: AuthError) -> OciError {
    OciError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        e.to_string(),
    )
    .with_header(header::RETRY_AFTER, "5")
}

fn needs(a: Actions, action: Action) -> bool {
    match action {
        Action::Pull => a.pull,
        Action::Push => a.push,
        Action::Delete => a.delete,
    }
}

fn scope_for(repo: &RepoName, action: Action) -> String {
    let actions = match action {
        Action::Pull => "pull",
        Action::Push => "pull,push",
        Action::Delete => "delete",
    };
    format!("repository:{repo}:{actions}")
}

/// Check that the caller may make this request; returns its principal.
pub(crate) async fn authorize(
    auth: &Auth,
    caller: &Caller,
    endpoint: &Endpoint,
    realm: &str,
) -> Result<Principal, OciError> {
    let principal = caller.principal();
    let service = auth.service();
    match endpoint.access() {
        Access::Base => match caller {
            Caller::Anonymous => Err(unauthorized(
                realm,
                service,
                None,
                None,
                "authentication required",
            )),
            _ => Ok(principal),
        },
        Access::Catalog => match caller {
            Caller::Anonymous => Err(unauthorized(
                realm,
                service,
                Some("registry:catalog:*"),
                None,
                "authentication required",
            )),
            Caller::Bearer(c) if !c.catalog() => Err(unauthorized(
                realm,
                service,
                Some("registry:catalog:*"),
                Some("insufficient_scope"),
                "the token does not grant the catalog",
            )),
            _ => Ok(principal),
        },
        Access::Repository(needed) => {
            // Why the first missing action is missing decides the answer.
            enum Refusal {
                /// Credentials (or a new token) would help: 401 with a challenge.
                Challenge,
                /// The caller may not: 403.
                Denied(String),
            }
            let mut refusal = None;
            for (repo, action) in &needed {
                let granted = match caller {
                    // A token's reads stand for its lifetime; what it may
                    // change is asked of the directory again, so a role
                    // removed since, or a namespace another tenant created
                    // since the token was granted for a missing one, is
                    // not written to on an old grant.
                    Caller::Bearer(c) if *action != Action::Pull => {
                        let token = c.repository_actions(repo.as_str());
                        if needs(token, *action) {
                            let now = auth.actions(&principal, repo).await.map_err(internal)?;
                            Actions {
                                pull: token.pull && now.pull,
                                push: token.push && now.push,
                                delete: token.delete && now.delete,
                            }
                        } else {
                            token
                        }
                    }
                    Caller::Bearer(c) => c.repository_actions(repo.as_str()),
                    _ => auth.actions(&principal, repo).await.map_err(internal)?,
                };
                if needs(granted, *action) {
                    continue;
                }
                let may = match caller {
                    Caller::Anonymous | Caller::Basic(_) => false,
                    // A token without the scope: would a new token help?
                    Caller::Bearer(_) => needs(
                        auth.actions(&principal, repo).await.map_err(internal)?,
                        *action,
                    ),
                };
                refusal = Some(if may || principal == Principal::Anonymous {
                    Refusal::Challenge
                } else {
                    Refusal::Denied(format!("requested access to {repo} is denied"))
                });
                break;
            }
            match refusal {
                None => Ok(principal),
                Some(Refusal::Denied(message)) => Err(denied(message)),
                Some(Refusal::Challenge) => {
                    // A token holder who may do it needs a token with more scope.
                    let error = (matches!(caller, Caller::Bearer(_))
                        && principal != Principal::Anonymous)
                        .then_some("insufficient_scope");
                    // Every scope the request wants, not only the missing
                    // one, as Distribution does: a client asks for exactly
                    // the challenge's scopes, and one round trip must do.
                    let scopes: Vec<String> = endpoint
                        .wanted()
                        .iter()
                        .map(|(repo, action)| scope_for(repo, *action))
                        .collect();
                    Err(unauthorized(
                        realm,
                        service,
                        Some(&scopes.join(" ")),
                        error,
                        "authentication required",
                    ))
                }
            }
        }
    }
}

/// `GET`/`POST /auth/token`.
pub(crate) async fn token_endpoint(
    auth: &Auth,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    client: IpAddr,
) -> Response {
    token_response(auth, method, query, headers, body, client)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn token_response(
    auth: &Auth,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    client: IpAddr,
) -> Result<Response, OciError> {
    let login_failed = |e: AuthError| match e {
        AuthError::Throttled { retry_after } | AuthError::Busy { retry_after } => {
            throttled(&e, retry_after)
        }
        e @ AuthError::Internal(_) => internal(e),
        e @ AuthError::IssuerUnavailable(_) => issuer_unavailable(e),
        other => OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", other.to_string()),
    };
    let params: Vec<(String, String)>;
    let mut exchanged = false;
    let (principal, with_refresh, refresh_given) = if *method == Method::GET {
        params = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        let offline = params
            .iter()
            .any(|(k, v)| k == "offline_token" && v == "true");
        match headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            None => (Principal::Anonymous, false, None),
            Some(v) => {
                let (u, p) = crate::wire::basic_credentials(v).ok_or_else(|| {
                    OciError::new(
                        StatusCode::UNAUTHORIZED,
                        "UNAUTHORIZED",
                        "the token endpoint takes HTTP Basic credentials",
                    )
                })?;
                (
                    auth.login(&u, &p, client).await.map_err(login_failed)?,
                    offline && !looks_like_jwt(&p),
                    None,
                )
            }
        }
    } else if *method == Method::POST {
        let mut bytes = Vec::new();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                OciError::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", e.to_string())
            })?;
            if bytes.len() + chunk.len() > 64 * 1024 {
                return Err(OciError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "UNSUPPORTED",
                    "token request too large",
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        params = form_urlencoded::parse(&bytes).into_owned().collect();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        match get("grant_type") {
            Some("password") => {
                let (Some(u), Some(p)) = (get("username"), get("password")) else {
                    return Err(oauth_error(
                        "invalid_request",
                        "username and password are required",
                    ));
                };
                // A workload's JWT gets no refresh token: what it logs in
                // with must end when the JWT does.
                let offline = get("access_type") == Some("offline") && !looks_like_jwt(p);
                (
                    auth.login(u, p, client).await.map_err(login_failed)?,
                    offline,
                    None,
                )
            }
            Some(TOKEN_EXCHANGE) => {
                exchanged = true;
                (exchange(auth, &params, client).await?, false, None)
            }
            Some("refresh_token") => {
                let r = get("refresh_token")
                    .ok_or_else(|| oauth_error("invalid_request", "refresh_token is required"))?;
                let p = auth.refresh(r).await.map_err(|e| match e {
                    e @ AuthError::Internal(_) => internal(e),
                    _ => OciError::new(
                        StatusCode::UNAUTHORIZED,
                        "UNAUTHORIZED",
                        "the refresh token is invalid or expired; log in again",
                    ),
                })?;
                (p, false, Some(r.to_owned()))
            }
            Some(other) => {
                return Err(oauth_error(
                    "unsupported_grant_type",
                    &format!("grant_type {other:?} is not supported"),
                ))
            }
            None => return Err(oauth_error("invalid_request", "grant_type is required")),
        }
    } else {
        return Err(OciError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "use GET or POST",
        )
        .with_header(header::ALLOW, "GET, POST"));
    };
    let requested = ResourceScope::parse_all(
        params
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str()),
    );
    let granted = auth
        .grant(&principal, &requested)
        .await
        .map_err(login_failed)?;
    let scope_text = granted
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let (token, expires_in, issued_at) = auth.access_token(&principal, granted);
    let mut body = json!({
        "token": token,
        "access_token": token,
        "expires_in": expires_in,
        "issued_at": rfc3339(issued_at),
        "scope": scope_text,
    });
    if exchanged {
        body["issued_token_type"] = json!("urn:ietf:params:oauth:token-type:access_token");
        body["token_type"] = json!("Bearer");
    }
    if principal != Principal::Anonymous {
        if let Some(r) = refresh_given {
            body["refresh_token"] = json!(r);
        } else if with_refresh {
            body["refresh_token"] =
                json!(auth.refresh_token(&principal).await.map_err(login_failed)?);
        }
    }
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// RFC 8693's grant type.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// An RFC 8693 token exchange: `subject_token` (a JWT of an issuer a trust
/// rule names) for a registry token; `username` may name the registry user.
async fn exchange(
    auth: &Auth,
    params: &[(String, String)],
    client: IpAddr,
) -> Result<Principal, OciError> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let token = get("subject_token")
        .ok_or_else(|| oauth_error("invalid_request", "subject_token is required"))?;
    match get("subject_token_type") {
        Some(
            "urn:ietf:params:oauth:token-type:jwt"
            | "urn:ietf:params:oauth:token-type:id_token"
            | "urn:ietf:params:oauth:token-type:access_token",
        ) => {}
        Some(other) => {
            return Err(oauth_error(
                "invalid_request",
                &format!("subject_token_type {other:?} is not supported: give a JWT"),
            ))
        }
        None => {
            return Err(oauth_error(
                "invalid_request",
                "subject_token_type is required",
            ))
        }
    }
    if !looks_like_jwt(token) {
        return Err(oauth_error("invalid_request", "subject_token is not a JWT"));
    }
    match auth.exchange(get("username"), token, client).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(OciError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "identity token refused: that registry user has no trust rule",
        )),
        Err(e @ AuthError::IssuerUnavailable(_)) => Err(issuer_unavailable(e)),
        Err(e @ AuthError::Internal(_)) => Err(internal(e)),
        Err(e @ (AuthError::Throttled { retry_after } | AuthError::Busy { retry_after })) => {
            Err(throttled(&e, retry_after))
        }
        Err(e) => Err(OciError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            e.to_string(),
        )),
    }
}

fn oauth_error(error: &str, description: &str) -> OciError {
    OciError::new(
        StatusCode::BAD_REQUEST,
        "UNSUPPORTED",
        format!("{error}: {description}"),
    )
}
