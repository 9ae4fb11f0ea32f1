//! The viewer's own account: passwords, sessions and personal API tokens.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::{AuthError, DirectoryError};
use berth_web::{ClientIp, WebState};

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{back, html, secret_page, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

pub async fn account(State(state): State<WebState>, viewer: Viewer, Query(q): Q) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let a = state
        .management
        .directory()
        .account(viewer.name())
        .await
        .map_err(err)?;
    let tokens = state
        .management
        .tokens(&viewer.principal)
        .await
        .map_err(err)?;
    let page = AccountPage {
        l: Layout::new(&viewer, "account").messages(&q),
        email: a.email,
        origin: a.origin,
        has_registry_password: a.registry_password_hash.is_some(),
        tokens: tokens
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                prefix: t.prefix,
                created: when(t.created_at),
                last_used: when_opt(t.last_used_at),
                expires: t.expires_at.map(when).unwrap_or_else(|| "never".into()),
            })
            .collect(),
        api: format!("http://{}", host(&state)),
    };
    Ok(html(page.render()))
}

/// The current console password, asked before either password changes;
/// `Err` is the answer to give when it is wrong.
async fn confirm_current(
    state: &WebState,
    form: &Posted,
    client: ClientIp,
) -> Result<(), Response> {
    // An account of an identity provider has no console password here.
    match state
        .auth
        .directory()
        .has_console_password(&form.viewer.principal)
        .await
    {
        Ok(false) => return Ok(()),
        Ok(true) => {}
        Err(e) => return Err(PageError::from(e).into_response()),
    }
    match state
        .auth
        .confirm_password(
            &form.viewer.principal,
            form.get("current_password"),
            client.0,
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(
            AuthError::Failed
            | AuthError::Token(_)
            | AuthError::Refused(_)
            | AuthError::IssuerUnavailable(_),
        ) => Err(back("/account", "error", "The current password is wrong.")),
        Err(AuthError::Throttled { retry_after } | AuthError::Busy { retry_after }) => Err(back(
            "/account",
            "error",
            &format!("Too many attempts. Try again in {retry_after} seconds."),
        )),
        Err(AuthError::Internal(e)) => Err(PageError::from(e).into_response()),
    }
}

pub async fn change_password(
    State(state): State<WebState>,
    client: ClientIp,
    form: Posted,
) -> Response {
    if let Err(answer) = confirm_current(&state, &form, client).await {
        return answer;
    }
    let name = form.viewer.name().to_owned();
    let r = state
        .management
        .directory()
        .set_console_password(
            &form.viewer.principal,
            &name,
            form.get("password"),
            Some(&form.viewer.cookie),
        )
        .await
        .map(|_| "Console password changed; every other session is signed out.".to_owned());
    state.auth.forget(&name);
    outcome("/account", r)
}

pub async fn registry_password(
    State(state): State<WebState>,
    client: ClientIp,
    form: Posted,
) -> Response {
    if let Err(answer) = confirm_current(&state, &form, client).await {
        return answer;
    }
    let name = form.viewer.name().to_owned();
    let directory = state.management.directory();
    let keep = Some(form.viewer.cookie.as_str());
    let r = if form.get("action") == "clear" {
        directory
            .set_registry_password(&form.viewer.principal, &name, None, keep)
            .await
            .map(|_| "Registry password removed.".to_owned())
    } else {
        directory
            .set_registry_password(
                &form.viewer.principal,
                &name,
                Some(form.get("password")),
                keep,
            )
            .await
            .map(|_| "Registry password set; use it with docker login.".to_owned())
    };
    state.auth.forget(&name);
    outcome("/account", r)
}

/// End every session of the account, this one too, and revoke its refresh
/// tokens.
pub async fn sign_out_everywhere(State(state): State<WebState>, form: Posted) -> Response {
    match state
        .management
        .directory()
        .sign_out_everywhere(&form.viewer.principal)
        .await
    {
        Ok(_) => {
            state.auth.forget(form.viewer.name());
            let mut resp = Redirect::to("/login").into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, state.session_cookie("", 0));
            resp
        }
        Err(e) => outcome("/account", Err(e)),
    }
}

pub async fn revoke_all_tokens(State(state): State<WebState>, form: Posted) -> Response {
    let r = state
        .management
        .revoke_all_tokens(&form.viewer.principal)
        .await
        .map(|n| format!("{n} API token(s) revoked."));
    outcome("/account", r)
}

pub async fn create_token(State(state): State<WebState>, form: Posted) -> Response {
    match state
        .management
        .create_token(&form.viewer.principal, form.get("name"), None)
        .await
    {
        Ok((token, secret)) => secret_page(
            &form.viewer,
            format!("API token {} created", token.name),
            "Send it as Authorization: Bearer <token>.".into(),
            secret,
            "/account",
        ),
        Err(e) => outcome("/account", Err(e)),
    }
}

pub async fn revoke_token(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    form: Posted,
) -> Response {
    let r = state
        .management
        .revoke_token(&form.viewer.principal, id)
        .await
        .map(|_| "Token revoked.".to_owned());
    outcome("/account", r)
}
