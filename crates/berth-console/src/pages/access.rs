//! A namespace's access page: members, per-image permissions and registry-user grants.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use berth_core::access::RepoPermission;
use berth_core::DirectoryError;
use berth_web::WebState;

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

pub async fn access(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(ns): Path<String>,
    Query(q): Q,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let directory = state.management.directory();
    let members = directory
        .namespace_members(&viewer.principal, &ns)
        .await
        .map_err(err)?;
    let permissions = directory
        .repository_permissions(&viewer.principal, &ns)
        .await
        .map_err(err)?;
    let grants = state
        .management
        .namespace_grants(&viewer.principal, &ns)
        .await
        .map_err(err)?;
    let prefix = format!("{ns}/");
    let page = AccessPage {
        l: Layout::new(&viewer, "namespaces").messages(&q),
        members: members
            .into_iter()
            .map(|m| (m.account_name, m.role))
            .collect(),
        permissions: permissions
            .into_iter()
            .map(|p| {
                let image = p
                    .repository
                    .strip_prefix(&prefix)
                    .unwrap_or(&p.repository)
                    .to_owned();
                (image, p.account_name, p.permission)
            })
            .collect(),
        grants,
        ns,
    };
    Ok(html(page.render()))
}

pub async fn set_member(
    State(state): State<WebState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let account = form.get("account").to_owned();
    let r = match role(form.get("role")) {
        Ok(role) => state
            .management
            .directory()
            .set_namespace_member(&form.viewer.principal, &ns, &account, role)
            .await
            .map(|_| format!("{account} is now {} of {ns}.", role.as_str())),
        Err(e) => Err(e),
    };
    outcome(&format!("/namespaces/{ns}/access"), r)
}

pub async fn remove_member(
    State(state): State<WebState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let account = form.get("account").to_owned();
    let r = state
        .management
        .directory()
        .remove_namespace_member(&form.viewer.principal, &ns, &account)
        .await
        .map(|_| format!("{account} removed."));
    outcome(&format!("/namespaces/{ns}/access"), r)
}

/// Where a permission form goes back to: the image's permissions tab when
/// it came from there, else the namespace's access page.
fn permissions_page(ns: &str, form: &Posted) -> String {
    if form.get("from") == "image" {
        format!(
            "/namespaces/{ns}/image-permissions?image={}",
            enc(form.get("image"))
        )
    } else {
        format!("/namespaces/{ns}/access")
    }
}

pub async fn set_permission(
    State(state): State<WebState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let account = form.get("account").to_owned();
    let image = form.get("image").to_owned();
    let r = async {
        let permission =
            RepoPermission::parse_input(form.get("permission")).map_err(DirectoryError::Invalid)?;
        let repo = repo_name(&ns, &image)?;
        state
            .management
            .directory()
            .set_repository_permission(&form.viewer.principal, &repo, &account, permission)
            .await?;
        Ok(format!(
            "{account} may now {} {image}.",
            permission.as_str()
        ))
    }
    .await;
    outcome(&permissions_page(&ns, &form), r)
}

pub async fn remove_permission(
    State(state): State<WebState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let account = form.get("account").to_owned();
    let image = form.get("image").to_owned();
    let r = async {
        let repo = repo_name(&ns, &image)?;
        state
            .management
            .directory()
            .remove_repository_permission(&form.viewer.principal, &repo, &account)
            .await?;
        Ok(format!("Permission of {account} on {image} removed."))
    }
    .await;
    outcome(&permissions_page(&ns, &form), r)
}

pub async fn set_grant(
    State(state): State<WebState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let user = form.get("user").to_owned();
    let (pull, push) = (form.checked("pull"), form.checked("push"));
    let r = state
        .management
        .directory()
        .set_grant(&form.viewer.principal, &user, &ns, pull, push)
        .await
        .map(|_| format!("Grant of {user} saved."));
    outcome(&format!("/namespaces/{ns}/access"), r)
}

pub async fn remove_grant(
    State(state): State<WebState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let user = form.get("user").to_owned();
    let r = state
        .management
        .directory()
        .set_grant(&form.viewer.principal, &user, &ns, false, false)
        .await
        .map(|_| format!("Grant of {user} removed."));
    outcome(&format!("/namespaces/{ns}/access"), r)
}
