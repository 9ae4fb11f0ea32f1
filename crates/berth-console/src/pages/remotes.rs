//! The platform administrators' "Remote registries" page: registered and
//! declared remotes, a connection test per remote, and a form to add one
//! (its password sealed, never shown again).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use berth_core::platform::{ProxyNamespace, Remote, RemoteSpec};
use berth_core::DirectoryError;
use berth_web::WebState;

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

pub struct RemoteRow {
    pub remote: Remote,
    pub created: String,
}

#[derive(Template)]
#[template(path = "remotes.html")]
pub struct RemotesPage {
    pub l: Layout,
    pub rows: Vec<RemoteRow>,
    /// Pull-through cache namespaces (from the configuration file).
    pub proxies: Vec<ProxyNamespace>,
}

pub async fn page(
    State(state): State<WebState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let remotes = state
        .remotes
        .list(&viewer.principal)
        .await
        .map_err(|e| PageError::from(e).for_viewer(&viewer))?;
    let rows = remotes
        .into_iter()
        .map(|remote| RemoteRow {
            created: if remote.declared {
                "configuration file".into()
            } else {
                format!("{} by {}", when(remote.created_at), remote.created_by)
            },
            remote,
        })
        .collect();
    Ok(html(
        RemotesPage {
            l: Layout::new(&viewer, "remotes").messages(&q),
            rows,
            proxies: state
                .proxy
                .as_ref()
                .map(|p| p.namespaces().to_vec())
                .unwrap_or_default(),
        }
        .render(),
    ))
}

pub async fn create(State(state): State<WebState>, form: Posted) -> Response {
    let opt = |name: &str| Some(form.get(name).to_owned()).filter(|s| !s.is_empty());
    let spec = RemoteSpec {
        url: opt("url"),
        username: opt("username"),
        password: opt("password"),
        insecure: Some(form.checked("insecure")),
        ca_pem: opt("ca_certificate"),
        token_realm: opt("token_realm"),
    };
    let name = form.get("name").to_owned();
    let result = state
        .remotes
        .create(&form.viewer.principal, &name, spec)
        .await
        .map(|r| format!("Remote registry {} registered.", r.name));
    outcome("/remotes", result)
}

/// Test the connection, or delete.
pub async fn action(
    State(state): State<WebState>,
    Path((name, action)): Path<(String, String)>,
    form: Posted,
) -> Response {
    let actor = &form.viewer.principal;
    let result = match action.as_str() {
        "test" => match state.remotes.test(actor, &name).await {
            Ok(t) if t.ok => Ok(format!("{name}: {}.", t.message)),
            Ok(t) => Err(DirectoryError::Invalid(format!(
                "{name}: the connection failed: {}",
                t.message
            ))),
            Err(e) => Err(e),
        },
        "delete" => state
            .remotes
            .delete(actor, &name)
            .await
            .map(|()| format!("Remote registry {name} deleted.")),
        other => Err(DirectoryError::Invalid(format!("unknown action {other:?}"))),
    };
    outcome("/remotes", result)
}
