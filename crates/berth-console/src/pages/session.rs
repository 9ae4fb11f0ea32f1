//! Signing in and out of the console.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::access::Principal;
use berth_core::AuthError;
use berth_web::{cookie, ClientIp, WebState, SESSION_COOKIE};

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{html, PageError};
use crate::views::*;

pub async fn login_page(State(state): State<WebState>, Query(q): Q) -> Response {
    let next = param(&q, "next");
    html(
        LoginPage {
            error: q.get("error").cloned(),
            next: local_path(next).unwrap_or_default().to_owned(),
            username: String::new(),
            providers: providers(&state),
            next_enc: enc(local_path(next).unwrap_or_default()),
        }
        .render(),
    )
}

pub async fn login(
    State(state): State<WebState>,
    client: ClientIp,
    body: axum::body::Bytes,
) -> Response {
    let fields: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let user = fields.get("username").map(|s| s.trim()).unwrap_or("");
    let password = fields.get("password").map(String::as_str).unwrap_or("");
    // Only local paths, so the login cannot be used to redirect elsewhere.
    let next = fields
        .get("next")
        .and_then(|n| local_path(n))
        .unwrap_or("/namespaces")
        .to_owned();
    let fail = |message: &str, status: StatusCode| {
        (
            status,
            html(
                LoginPage {
                    error: Some(message.to_owned()),
                    next: next.clone(),
                    username: user.to_owned(),
                    providers: providers(&state),
                    next_enc: enc(&next),
                }
                .render(),
            ),
        )
            .into_response()
    };
    let principal = match state.auth.login(user, password, client.0).await {
        Ok(p @ Principal::Account { .. }) => p,
        Ok(_) => {
            return fail(
                "Registry users cannot use the console; log in with an account.",
                StatusCode::FORBIDDEN,
            )
        }
        Err(AuthError::Throttled { retry_after }) => {
            return fail(
                &format!("Too many failed logins. Try again in {retry_after} seconds."),
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
        Err(AuthError::Busy { retry_after }) => {
            return fail(
                &format!("Too many logins at once. Try again in {retry_after} seconds."),
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
        Err(AuthError::Internal(e)) => return PageError::from(e).into_response(),
        Err(AuthError::IssuerUnavailable(reason)) => {
            tracing::warn!(reason, "directory unavailable at a console login");
            return fail(
                "The directory that checks this name cannot be reached right now. Try again later.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
        Err(_) => return fail("Wrong account name or password.", StatusCode::UNAUTHORIZED),
    };
    match state.management.create_session(&principal).await {
        Ok(session) => {
            let mut resp = Redirect::to(&next).into_response();
            resp.headers_mut().insert(
                header::SET_COOKIE,
                state.session_cookie(&session.cookie, session.max_age.as_secs()),
            );
            resp
        }
        Err(e) => PageError::from(e).into_response(),
    }
}

pub async fn logout(
    State(state): State<WebState>,
    headers: axum::http::HeaderMap,
    form: Posted,
) -> Response {
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.management.end_session(&c).await {
            return PageError::from(e).into_response();
        }
    }
    // An account of an OpenID provider signs out there too, when the
    // provider offers it (RP-initiated logout), and comes back here.
    let origin = match state.auth.directory().account(form.viewer.name()).await {
        Ok(a) => a.origin,
        Err(_) => String::new(),
    };
    // (Through a page of ours: the console's policy lets forms lead only
    // here, and the provider is another origin.)
    let to = match origin.strip_prefix("oidc:") {
        Some(name) if state.sign_in.providers().iter().any(|p| p.name == name) => {
            format!("/login/oidc/{name}/signed-out")
        }
        _ => "/login".to_owned(),
    };
    let mut resp = Redirect::to(&to).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, state.session_cookie("", 0));
    resp
}

/// The identity providers' buttons on the login page: (name, text).
pub(crate) fn providers(state: &WebState) -> Vec<(String, String)> {
    state
        .sign_in
        .providers()
        .iter()
        .map(|p| (p.name.clone(), p.display_name.clone()))
        .collect()
}

/// This console's base URL: the configured external URL, else this
/// request's host.
pub(crate) fn base_url(state: &WebState, headers: &axum::http::HeaderMap) -> String {
    if let Some(url) = &state.external_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
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
