//! Who is calling: HTTP Basic with account credentials, `Authorization:
//! Bearer <personal API token>`, or the console's session cookie. Requests
//! that change something with the cookie must echo the session's CSRF
//! token in `X-CSRF-Token`, which another site cannot read.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use berth_core::access::Principal;
use berth_core::{DirectoryError, API_TOKEN_PREFIX};
use berth_web::{client_ip, cookie, cross_site, WebState, SESSION_COOKIE};

use crate::error::ApiError;

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

    /// The principal if a platform administrator; 401 for anonymous
    /// callers, 403 saying that `what` is for administrators otherwise.
    pub fn platform_admin(&self, what: &str) -> Result<&Principal, ApiError> {
        let principal = self.account()?;
        if principal.is_platform_admin() {
            Ok(principal)
        } else {
            Err(ApiError::forbidden(format!(
                "{what} is for platform administrators"
            )))
        }
    }
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
async fn basic(state: &WebState, value: &str, client: IpAddr) -> Result<Principal, ApiError> {
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
pub async fn identify(state: &WebState, parts: &Parts) -> Result<Caller, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        return match scheme.to_ascii_lowercase().as_str() {
            "basic" => Ok(Caller {
                principal: basic(state, rest, client_ip(&state.network, parts)).await?,
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

impl FromRequestParts<WebState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, ApiError> {
        identify(state, parts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
