//! Registry users (for `docker login`): the list, creation, password resets and deletes.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_core::{DirectoryError, RegistryUserSpec};
use berth_web::WebState;

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{back, html, secret_page, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

pub async fn registry_users(
    State(state): State<WebState>,
    viewer: Viewer,
    Query(q): Q,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let directory = state.management.directory();
    let users = directory
        .registry_users(&viewer.principal)
        .await
        .map_err(err)?;
    let mut rows = Vec::with_capacity(users.len());
    for u in users {
        let owner = directory
            .store()
            .account_by_id(u.owner_id)
            .await
            .map_err(|e| err(DirectoryError::Meta(e)))?
            .map(|a| a.name)
            .unwrap_or_default();
        rows.push(UserRow {
            name: u.name,
            description: u.description,
            enabled: u.enabled,
            expires: when_opt(u.expires_at),
            owner,
            created: when(u.created_at),
        });
    }
    let rules = state.workload.list(&viewer.principal).await.map_err(err)?;
    let page = RegistryUsersPage {
        l: Layout::new(&viewer, "registry-users").messages(&q),
        users: rows,
        rules,
    };
    Ok(html(page.render()))
}

pub async fn create_registry_user(State(state): State<WebState>, form: Posted) -> Response {
    let spec = RegistryUserSpec {
        name: form.get("name").to_owned(),
        password: Some(form.get("password").to_owned()).filter(|p| !p.is_empty()),
        description: form.get("description").to_owned(),
        ..RegistryUserSpec::default()
    };
    match state
        .management
        .directory()
        .create_registry_user(&form.viewer.principal, &spec)
        .await
    {
        Ok((user, Some(password))) => secret_page(
            &form.viewer,
            format!("Registry user {} created", user.name),
            format!("Its password for docker login as {}:", user.name),
            password,
            "/registry-users",
        ),
        Ok((user, None)) => back(
            "/registry-users",
            "notice",
            &format!("Registry user {} created.", user.name),
        ),
        Err(e) => outcome("/registry-users", Err(e)),
    }
}

pub async fn registry_user_action(
    State(state): State<WebState>,
    Path((name, action)): Path<(String, String)>,
    form: Posted,
) -> Response {
    let directory = state.management.directory();
    let actor = &form.viewer.principal;
    let r = match action.as_str() {
        "password" => match directory
            .set_registry_user_password(actor, &name, None)
            .await
        {
            Ok(Some(password)) => {
                state.auth.forget(&name);
                return secret_page(
                    &form.viewer,
                    format!("New password for {name}"),
                    "The old password no longer works. The new one:".into(),
                    password,
                    "/registry-users",
                );
            }
            Ok(None) => Ok("Password changed.".to_owned()),
            Err(e) => Err(e),
        },
        "enable" => directory
            .set_registry_user_enabled(actor, &name, true)
            .await
            .map(|_| format!("{name} enabled.")),
        "disable" => directory
            .set_registry_user_enabled(actor, &name, false)
            .await
            .map(|_| format!("{name} disabled.")),
        "delete" => directory
            .delete_registry_user(actor, &name)
            .await
            .map(|_| format!("{name} deleted.")),
        _ => {
            return PageError::new(StatusCode::NOT_FOUND, "There is no such action.")
                .for_viewer(&form.viewer)
                .into_response()
        }
    };
    state.auth.forget(&name);
    outcome("/registry-users", r)
}
