//! Sign-in through an OpenID provider: leaving for the provider with a
//! pending sign-in kept in an HttpOnly cookie (state, nonce, PKCE
//! verifier), and coming back to its callback.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::identity::{Pending, SignInError};
use berth_web::{cookie, ClientIp, WebState};

use super::session::{base_url, local_path, providers};
use crate::forms::*;
use crate::respond::{html, PageError};
use crate::views::*;

/// The cookie that carries a pending sign-in, only to the callback.
const PENDING_COOKIE: &str = "berth_sso";
const PENDING_PATH: &str = "/login/oidc";

fn pending_cookie(state: &WebState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    // SameSite=Lax: the provider's redirect back is a top-level GET, which
    // carries Lax cookies; nothing else from another site does.
    let c = format!(
        "{PENDING_COOKIE}={value}; Path={PENDING_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    );
    HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static(""))
}

/// The URL the provider sends the browser back to: under the configured
/// external URL, else this request's host.
fn callback_url(state: &WebState, headers: &HeaderMap, name: &str) -> String {
    format!("{}{PENDING_PATH}/{name}/callback", base_url(state, headers))
}

/// The login page again, with why the sign-in did not happen.
pub(crate) fn login_failed(state: &WebState, status: StatusCode, message: &str) -> Response {
    (
        status,
        html(
            LoginPage {
                error: Some(message.to_owned()),
                next: String::new(),
                username: String::new(),
                providers: providers(state),
                next_enc: String::new(),
            }
            .render(),
        ),
    )
        .into_response()
}

fn failure(state: &WebState, e: SignInError) -> Response {
    match e {
        SignInError::UnknownProvider(_) => {
            login_failed(state, StatusCode::NOT_FOUND, &e.to_string())
        }
        SignInError::Unavailable(reason) => {
            tracing::warn!(reason, "sign-in provider unavailable");
            login_failed(
                state,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("Sign-in is unavailable right now: {reason}. Accounts with a Berth password can still log in."),
            )
        }
        SignInError::Refused(reason) => login_failed(state, StatusCode::FORBIDDEN, &reason),
        SignInError::Directory(e) => PageError::from(e).into_response(),
    }
}

/// `GET /login/oidc/{name}`: off to the provider.
pub async fn start(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Q,
) -> Response {
    let next = local_path(param(&q, "next")).unwrap_or("/namespaces");
    let redirect_uri = callback_url(&state, &headers, &name);
    match state.sign_in.begin(&name, &redirect_uri, next).await {
        Ok((url, pending)) => {
            let mut resp = Redirect::to(&url).into_response();
            resp.headers_mut().insert(
                header::SET_COOKIE,
                pending_cookie(&state, &pending.encode(), 600),
            );
            resp
        }
        Err(e) => failure(&state, e),
    }
}

/// `GET /login/oidc/{name}/callback`: back from the provider.
pub async fn callback(
    State(state): State<WebState>,
    client: ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Q,
) -> Response {
    let clear = pending_cookie(&state, "", 0);
    let answer = |mut resp: Response| {
        resp.headers_mut().append(header::SET_COOKIE, clear.clone());
        resp
    };
    if let Some(error) = q.get("error") {
        let detail = q
            .get("error_description")
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return answer(login_failed(
            &state,
            StatusCode::FORBIDDEN,
            &format!("The provider did not sign you in: {error}{detail}."),
        ));
    }
    let pending = cookie(&headers, PENDING_COOKIE)
        .and_then(|c| Pending::decode(&c))
        .filter(|p| p.provider == name);
    let (Some(pending), Some(code), Some(got_state)) = (pending, q.get("code"), q.get("state"))
    else {
        return answer(login_failed(
            &state,
            StatusCode::BAD_REQUEST,
            "This sign-in has expired or was not started in this browser. Start again.",
        ));
    };
    let redirect_uri = callback_url(&state, &headers, &name);
    let signed = state
        .sign_in
        .finish(
            &pending,
            got_state,
            code,
            &redirect_uri,
            Some(&client.0.to_string()),
        )
        .await;
    let principal = match signed {
        Ok(s) => s.principal,
        Err(e) => return answer(failure(&state, e)),
    };
    match state.management.create_session(&principal).await {
        Ok(session) => {
            let next = local_path(&pending.next).unwrap_or("/namespaces");
            let mut resp = Redirect::to(next).into_response();
            resp.headers_mut().insert(
                header::SET_COOKIE,
                state.session_cookie(&session.cookie, session.max_age.as_secs()),
            );
            answer(resp)
        }
        Err(e) => answer(PageError::from(e).into_response()),
    }
}

/// `GET /login/oidc/{name}/signed-out`: after the console's sign-out, on to
/// the provider's end-session page (RP-initiated logout) when it has one.
pub async fn signed_out(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let back = format!("{}/login", base_url(&state, &headers));
    let display = state
        .sign_in
        .providers()
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.display_name.clone());
    match (
        display,
        state
            .sign_in
            .logout_url(&format!("oidc:{name}"), &back)
            .await,
    ) {
        (Some(provider), Some(to)) => html(SignedOutPage { to, provider }.render()),
        _ => Redirect::to("/login").into_response(),
    }
}
