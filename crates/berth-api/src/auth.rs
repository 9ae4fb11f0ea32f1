//! Who is calling: HTTP Basic with account credentials, `Authorization:
//! Bearer <personal API token>`, or the console's session cookie. Requests
//! that change something with the cookie must echo the session's CSRF
//! token in `X-CSRF-Token`, which another site cannot read.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use berth_core::access::Principal;
use berth_core::{DirectoryError, API_TOKEN_PREFIX};

use crate::error::ApiError;
use crate::ApiState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "berth_session";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// No credentials.
    Anonymous,
    /// HTTP Basic.
    Basic,
    /// A personal API token.
    Token,
    /// The console's session cookie.
    Session,
}

/// The caller of an API request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// How.
    pub via: Via,
}

impl Caller {
    /// The principal, or 401 for anonymous callers.
    pub fn account(&self) -> Result<&Principal, ApiError> {
        match self.principal {
            Principal::Anonymous => Err(ApiError::unauthorized(
                "log in: HTTP Basic with an account, a Bearer API token, or the console session",
            )),
            _ => Ok(&self.principal),
        }
    }
}

/// A cookie's value.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The client's address, as the /v2 surface sees it: behind trusted
/// proxies, the address they forward (for login throttling and the audit
/// log: behind a load balancer, every client is not the balancer).
pub fn client_ip(state: &ApiState, parts: &Parts) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let forwarded: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    state.network.client(peer, &forwarded)
}

/// Whether a browser's request provably comes from a page of Berth's own
/// origin: `Sec-Fetch-Site: same-origin`, or (from a browser that does not
/// send that header) an `Origin` naming the host asked. A script of
/// another site, or of a sandboxed answer (whose origin is opaque), does
/// not pass, whatever cookies ride along.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match get("sec-fetch-site") {
        Some(site) => site.eq_ignore_ascii_case("same-origin"),
        None => match (get("origin"), get("host")) {
            (Some(origin), Some(host)) => {
                let origin = origin.trim();
                origin
                    .strip_prefix("https://")
                    .or_else(|| origin.strip_prefix("http://"))
                    .is_some_and(|o| o.eq_ignore_ascii_case(host.trim()))
            }
            _ => false,
        },
    }
}

/// Whether a request was sent by another site, as far as the browser says.
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| {
            s.eq_ignore_ascii_case("cross-site") || s.eq_ignore_ascii_case("same-site")
        })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn auth_failure(e: DirectoryError) -> ApiError {
    match e {
        DirectoryError::AuthenticationFailed => {
            ApiError::unauthorized("invalid, expired or revoked credentials")
        }
        other => other.into(),
    }
}

/// Basic credentials of an account (registry users cannot manage).
async fn basic(state: &ApiState, value: &str, client: IpAddr) -> Result<Principal, ApiError> {
    let decoded = STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::unauthorized("malformed Basic credentials"))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| ApiError::unauthorized("malformed Basic credentials"))?;
    match state.auth.login(user, password, client).await {
        Ok(p @ Principal::Account { .. }) => Ok(p),
        Ok(_) => Err(ApiError::forbidden(
            "registry users pull and push only; log in with an account to manage",
        )),
        Err(e) => Err(ApiError::login(e)),
    }
}

/// Identify the caller from the request head.
pub async fn identify(state: &ApiState, parts: &Parts) -> Result<Caller, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        return match scheme.to_ascii_lowercase().as_str() {
            "basic" => Ok(Caller {
                principal: basic(state, rest, client_ip(state, parts)).await?,
                via: Via::Basic,
            }),
            "bearer" if rest.trim().starts_with(API_TOKEN_PREFIX) => Ok(Caller {
                principal: state
                    .management
                    .authenticate_token(rest.trim())
                    .await
                    .map_err(auth_failure)?,
                via: Via::Token,
            }),
            "bearer" => Err(ApiError::unauthorized(format!(
                "Bearer credentials must be a personal API token ({API_TOKEN_PREFIX}…)"
            ))),
            _ => Err(ApiError::unauthorized(
                "unsupported Authorization scheme: use Basic or Bearer",
            )),
        };
    }
    if let Some(cookie) = cookie(&parts.headers, SESSION_COOKIE) {
        let session = match state.management.session(&cookie).await {
            Ok(s) => s,
            Err(DirectoryError::AuthenticationFailed) => {
                return Err(ApiError::unauthorized(
                    "the console session has expired; log in again",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && cross_site(&parts.headers) {
            return Err(ApiError::forbidden(
                "a request made with the session cookie from another site is refused",
            ));
        }
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !constant_time_eq(sent, session.csrf_token.as_bytes()) {
                return Err(ApiError::forbidden(
                    "missing or wrong X-CSRF-Token for a request made with the session cookie",
                ));
            }
        }
        return Ok(Caller {
            principal: session.principal,
            via: Via::Session,
        });
    }
    Ok(Caller {
        principal: Principal::Anonymous,
        via: Via::Anonymous,
    })
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        identify(state, parts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; berth_session=xyz"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn same_origin_needs_the_browser_to_say_so() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "none")])));
        // An opaque (sandboxed) origin.
        assert!(!same_origin(&h(&[
            ("origin", "null"),
            ("host", "berth.example")
        ])));
        assert!(same_origin(&h(&[
            ("origin", "https://berth.example"),
            ("host", "berth.example")
        ])));
        assert!(!same_origin(&h(&[
            ("origin", "https://evil.example"),
            ("host", "berth.example")
        ])));
        // Cookies alone (curl, a script outside a browser): no proof.
        assert!(!same_origin(&h(&[("host", "berth.example")])));
        assert!(cross_site(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(!cross_site(&h(&[("sec-fetch-site", "same-origin")])));
        assert!(!cross_site(&h(&[])));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
