//! Project groups: the list, one group's page, members, namespace limit and quota.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use berth_core::DirectoryError;
use berth_web::WebState;

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{back, html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

pub async fn groups(State(state): State<WebState>, viewer: Viewer, Query(q): Q) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let directory = state.management.directory();
    let mut rows = Vec::new();
    for g in directory.groups(&viewer.principal).await.map_err(err)? {
        let count = directory
            .store()
            .count_group_namespaces(g.id)
            .await
            .map_err(|e| err(DirectoryError::Meta(e)))?;
        rows.push(GroupRow {
            limit: g
                .namespace_limit
                .unwrap_or(directory.config().namespaces_per_group),
            name: g.name,
            description: g.description,
            count,
            created: when(g.created_at),
        });
    }
    let page = GroupsPage {
        l: Layout::new(&viewer, "project-groups").messages(&q),
        groups: rows,
    };
    Ok(html(page.render()))
}

pub async fn create_group(State(state): State<WebState>, form: Posted) -> Response {
    let name = form.get("name").to_owned();
    let admin = Some(form.get("admin")).filter(|a| !a.is_empty());
    let r = state
        .management
        .directory()
        .create_group(
            &form.viewer.principal,
            &name,
            form.get("description"),
            admin,
        )
        .await
        .map(|_| format!("Project group {name} created."));
    outcome("/project-groups", r)
}

pub async fn group(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Q,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let directory = state.management.directory();
    let members = directory
        .group_members(&viewer.principal, &name)
        .await
        .map_err(err)?;
    let g = directory.group(&name).await.map_err(err)?;
    let count = directory
        .store()
        .count_group_namespaces(g.id)
        .await
        .map_err(|e| err(DirectoryError::Meta(e)))?;
    let used = directory
        .store()
        .group_usage(g.id)
        .await
        .map_err(|e| err(DirectoryError::Meta(e)))?;
    let page = GroupPage {
        l: Layout::new(&viewer, "project-groups").messages(&q),
        used: size(used),
        quota: g.quota_bytes.map(size),
        quota_text: g.quota_bytes.map(|q| q.to_string()).unwrap_or_default(),
        limit: g
            .namespace_limit
            .unwrap_or(directory.config().namespaces_per_group),
        own_limit: g.namespace_limit.map(|l| l.to_string()).unwrap_or_default(),
        name: g.name,
        description: g.description,
        count,
        members: members
            .into_iter()
            .map(|m| (m.account_name, m.role))
            .collect(),
    };
    Ok(html(page.render()))
}

pub async fn set_group_member(
    State(state): State<WebState>,
    Path(group): Path<String>,
    form: Posted,
) -> Response {
    let account = form.get("account").to_owned();
    let r = match role(form.get("role")) {
        Ok(role) => state
            .management
            .directory()
            .set_group_member(&form.viewer.principal, &group, &account, role)
            .await
            .map(|_| format!("{account} is now {} of {group}.", role.as_str())),
        Err(e) => Err(e),
    };
    outcome(&format!("/project-groups/{group}"), r)
}

pub async fn remove_group_member(
    State(state): State<WebState>,
    Path(group): Path<String>,
    form: Posted,
) -> Response {
    let account = form.get("account").to_owned();
    let r = state
        .management
        .directory()
        .remove_group_member(&form.viewer.principal, &group, &account)
        .await
        .map(|_| format!("{account} removed."));
    outcome(&format!("/project-groups/{group}"), r)
}

pub async fn set_group_limit(
    State(state): State<WebState>,
    Path(group): Path<String>,
    form: Posted,
) -> Response {
    let to = format!("/project-groups/{group}");
    let limit = match form.get("limit") {
        "" => None,
        s => match s.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return back(&to, "error", "The limit must be a whole number."),
        },
    };
    let r = state
        .management
        .directory()
        .set_group_namespace_limit(&form.viewer.principal, &group, limit)
        .await
        .map(|_| "Limit saved.".to_owned());
    outcome(&to, r)
}

pub async fn set_group_quota(
    State(state): State<WebState>,
    Path(group): Path<String>,
    form: Posted,
) -> Response {
    let to = format!("/project-groups/{group}");
    let quota = match super::policies::parse_size(form.get("quota")) {
        Ok(q) => q,
        Err(e) => return back(&to, "error", &e),
    };
    let r = state
        .management
        .directory()
        .set_group_quota(&form.viewer.principal, &group, quota)
        .await
        .map(|_| "Storage quota saved.".to_owned());
    outcome(&to, r)
}
