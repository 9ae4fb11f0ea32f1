//! The console's pages and form handlers. Each calls the management
//! service; a refused form goes back to its page with the service's message.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use berth_api::auth::{cookie, SESSION_COOKIE};
use berth_api::{ApiState, ClientIp};
use berth_core::access::{Principal, RepoPermission, Role};
use berth_core::{
    AuditFilter, AuthError, DirectoryError, ImageView, ListFilter, NamespaceChanges,
    NamespaceFilter, NamespaceSpec, NamespaceTab, Paging, RegistryUserSpec,
};
use berth_meta::{NamespaceSort, RepositorySort, TagSort};
use berth_oci::{RepoName, Tag};

use crate::views::*;
use crate::{back, enc, html, PageError, PageResult, Posted, Viewer};

type Q = Query<HashMap<String, String>>;

pub(crate) fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> &'a str {
    q.get(name).map(|s| s.trim()).unwrap_or("")
}

pub(crate) fn page_number(q: &HashMap<String, String>) -> i64 {
    param(q, "page").parse().unwrap_or(1).max(1)
}

pub(crate) fn host(state: &ApiState) -> String {
    state.management.config().registry_host.clone()
}

/// Run a form action and go back to `to` with its outcome.
pub(crate) fn outcome(to: &str, result: Result<String, DirectoryError>) -> Response {
    match result {
        Ok(notice) => back(to, "notice", &notice),
        Err(e) if e.is_internal() => PageError::from(e).into_response(),
        Err(e) => back(to, "error", &e.to_string()),
    }
}

// ---- login -------------------------------------------------------------------

pub async fn login_page(Query(q): Q) -> Response {
    let next = param(&q, "next");
    html(
        LoginPage {
            error: q.get("error").cloned(),
            next: crate::local_path(next).unwrap_or_default().to_owned(),
            username: String::new(),
        }
        .render(),
    )
}

pub async fn login(
    State(state): State<ApiState>,
    client: ClientIp,
    body: axum::body::Bytes,
) -> Response {
    let fields: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let user = fields.get("username").map(|s| s.trim()).unwrap_or("");
    let password = fields.get("password").map(String::as_str).unwrap_or("");
    // Only local paths, so the login cannot be used to redirect elsewhere.
    let next = fields
        .get("next")
        .and_then(|n| crate::local_path(n))
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
    State(state): State<ApiState>,
    headers: axum::http::HeaderMap,
    form: Posted,
) -> Response {
    let _ = form.viewer.name();
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.management.end_session(&c).await {
            return PageError::from(e).into_response();
        }
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, state.session_cookie("", 0));
    resp
}

// ---- namespaces --------------------------------------------------------------

pub async fn namespaces(State(state): State<ApiState>, viewer: Viewer, Query(q): Q) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let tab = match param(&q, "tab") {
        "" | "mine" => "mine",
        "shared" => "shared",
        "platform" => "platform",
        "all" if viewer.principal.is_platform_admin() => "all",
        other => {
            return Err(PageError::new(
                StatusCode::NOT_FOUND,
                format!("There is no tab {other:?}."),
            )
            .for_viewer(&viewer))
        }
    };
    let search = param(&q, "q").to_owned();
    let paging = Paging::new(Some(page_number(&q)), Some(20)).map_err(err)?;
    let sort_key = param(&q, "sort");
    let base = format!(
        "/namespaces?tab={tab}&q={}&sort={}",
        enc(&search),
        enc(sort_key)
    );
    let platform = state
        .management
        .directory()
        .config()
        .platform_namespace
        .clone();
    let mut page = NamespacesPage {
        l: Layout::new(&viewer, "namespaces").messages(&q),
        tab: tab.to_owned(),
        q: search.clone(),
        host: host(&state),
        platform: platform.clone(),
        rows: Vec::new(),
        images: Vec::new(),
        groups: Vec::new(),
        pager: Pager {
            page: 1,
            pages: 1,
            total: 0,
            prev: None,
            next: None,
        },
        sort_url_name: format!("/namespaces?tab={tab}&q={}&sort=name", enc(&search)),
        sort_url_pulls: format!("/namespaces?tab={tab}&q={}&sort=-pull_count", enc(&search)),
        sort_url_images: format!("/namespaces?tab={tab}&q={}&sort=-image_count", enc(&search)),
        sort_url_updated: format!("/namespaces?tab={tab}&q={}&sort=-updated", enc(&search)),
    };
    if tab == "platform" {
        let filter = ListFilter {
            name: (!search.is_empty()).then(|| search.clone()),
            sort: RepositorySort::Name,
            descending: false,
            paging,
        };
        let list = state
            .management
            .images(&viewer.principal, &platform, &filter)
            .await
            .map_err(err)?;
        page.pager = Pager::new(&list, &base);
        page.images = list
            .items
            .into_iter()
            .map(|i| ImageRow::new(i, &platform))
            .collect();
    } else {
        let (sort, descending) = match sort_key {
            "-pull_count" => (NamespaceSort::Pulls, true),
            "-image_count" => (NamespaceSort::Images, true),
            "-updated" => (NamespaceSort::Updated, true),
            _ => (NamespaceSort::Name, false),
        };
        let filter = NamespaceFilter {
            tab: match tab {
                "shared" => NamespaceTab::Shared,
                "all" => NamespaceTab::All,
                _ => NamespaceTab::Mine,
            },
            name: (!search.is_empty()).then(|| search.clone()),
            sort,
            descending,
            paging,
            ..NamespaceFilter::default()
        };
        let list = state
            .management
            .namespaces(&viewer.principal, &filter)
            .await
            .map_err(err)?;
        page.pager = Pager::new(&list, &base);
        page.rows = list.items.into_iter().map(NamespaceRow::from).collect();
        page.groups = state
            .management
            .directory()
            .groups(&viewer.principal)
            .await
            .map_err(err)?
            .into_iter()
            .map(|g| g.name)
            .collect();
    }
    Ok(html(page.render()))
}

pub async fn create_namespace(State(state): State<ApiState>, form: Posted) -> Response {
    let labels = match parse_label_text(form.get("labels")) {
        Ok(l) => l,
        Err(e) => return back("/namespaces", "error", &e),
    };
    let spec = NamespaceSpec {
        name: form.get("name").to_owned(),
        group: Some(form.get("project_group").to_owned()).filter(|g| !g.is_empty()),
        public: form.checked("public"),
        description: form.get("description").to_owned(),
        category: form.get("category").to_owned(),
        labels,
    };
    match state
        .management
        .create_namespace(&form.viewer.principal, &spec)
        .await
    {
        Ok(ns) => back(
            &format!("/namespaces/{}", ns.namespace.name),
            "notice",
            &format!("Namespace {} created.", ns.namespace.name),
        ),
        Err(e) => outcome("/namespaces", Err(e)),
    }
}

pub async fn namespace(
    State(state): State<ApiState>,
    viewer: Viewer,
    Path(ns): Path<String>,
    Query(q): Q,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let summary = state
        .management
        .namespace(&viewer.principal, &ns)
        .await
        .map_err(err)?;
    let search = param(&q, "q").to_owned();
    let filter = ListFilter {
        name: (!search.is_empty()).then(|| search.clone()),
        sort: RepositorySort::Name,
        descending: false,
        paging: Paging::new(Some(page_number(&q)), Some(20)).map_err(err)?,
    };
    let list = state
        .management
        .images(&viewer.principal, &ns, &filter)
        .await
        .map_err(err)?;
    let page = NamespacePage {
        l: Layout::new(&viewer, "namespaces").messages(&q),
        pager: Pager::new(&list, &format!("/namespaces/{ns}?q={}", enc(&search))),
        images: list
            .items
            .into_iter()
            .map(|i| ImageRow::new(i, &ns))
            .collect(),
        ns: NamespaceRow::from(summary),
        q: search,
        host: host(&state),
        edit: param(&q, "edit") == "1",
        platform: state
            .management
            .directory()
            .config()
            .platform_namespace
            .clone(),
    };
    Ok(html(page.render()))
}

pub async fn edit_namespace(
    State(state): State<ApiState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let to = format!("/namespaces/{ns}");
    let labels = match parse_label_text(form.get("labels")) {
        Ok(l) => l,
        Err(e) => return back(&to, "error", &e),
    };
    let changes = NamespaceChanges {
        public: Some(form.checked("public")),
        description: Some(form.get("description").to_owned()),
        category: Some(form.get("category").to_owned()),
        labels: Some(labels),
        external_access: Some(form.checked("external_access")),
    };
    let r = state
        .management
        .update_namespace(&form.viewer.principal, &ns, &changes)
        .await
        .map(|_| "Saved.".to_owned());
    outcome(&to, r)
}

pub async fn delete_namespace(State(state): State<ApiState>, form: Posted) -> Response {
    let name = form.get("name").to_owned();
    let all = form.checked("delete_all_images");
    match state
        .management
        .delete_namespace(&form.viewer.principal, &name, all)
        .await
    {
        Ok(images) => back(
            "/namespaces",
            "notice",
            &format!("Namespace {name} deleted with {images} image(s)."),
        ),
        Err(e) if e.is_internal() => PageError::from(e).into_response(),
        Err(e) => back("/namespaces", "error", &e.to_string()),
    }
}

/// Most items one batch may name, as in the API.
const BATCH_MAX: usize = 100;

/// What a batch did, as one message: each item deleted or refused with its
/// reason. An internal failure ends the batch on an error page.
pub(crate) struct Batch {
    what: &'static str,
    deleted: Vec<String>,
    refused: Vec<(String, String)>,
    /// Said after the list of deleted items.
    note: String,
}

impl Batch {
    pub(crate) fn new(what: &'static str) -> Self {
        Batch {
            what,
            deleted: Vec::new(),
            refused: Vec::new(),
            note: String::new(),
        }
    }

    /// Record one item's result; an internal failure is returned instead.
    pub(crate) fn record<T>(
        &mut self,
        item: String,
        r: Result<T, DirectoryError>,
    ) -> Result<(), PageError> {
        match r {
            Ok(_) => self.deleted.push(item),
            Err(e) if e.is_internal() => return Err(PageError::from(e)),
            Err(e) => self.refused.push((item, e.to_string())),
        }
        Ok(())
    }

    pub(crate) fn respond(self, to: &str) -> Response {
        let mut message = String::new();
        if !self.deleted.is_empty() {
            message = format!(
                "Deleted {} {}(s): {}.",
                self.deleted.len(),
                self.what,
                self.deleted.join(", ")
            );
            message.push_str(&self.note);
        }
        if self.refused.is_empty() {
            return back(to, "notice", &message);
        }
        let refused: Vec<String> = self
            .refused
            .iter()
            .map(|(item, why)| format!("{item} ({why})"))
            .collect();
        message = format!("{message} Not deleted: {}.", refused.join("; "))
            .trim()
            .to_owned();
        back(to, "error", &message)
    }
}

/// The selection of a batch form: 1 to 100 names, else `None`.
pub(crate) fn selection(form: &Posted, field: &str) -> Option<Vec<String>> {
    let names = form.all(field);
    (!names.is_empty() && names.len() <= BATCH_MAX).then_some(names)
}

/// Back to `to`, saying the selection was empty or too large.
pub(crate) fn bad_selection(to: &str) -> Response {
    back(
        to,
        "error",
        &format!("Select 1 to {BATCH_MAX} items to delete."),
    )
}

/// Delete the selected namespaces (each done or refused on its own).
pub async fn delete_namespaces(State(state): State<ApiState>, form: Posted) -> Response {
    let names = match selection(&form, "name") {
        Some(n) => n,
        None => return bad_selection("/namespaces"),
    };
    let all = form.checked("delete_all_images");
    let mut batch = Batch::new("namespace");
    for name in names {
        let r = state
            .management
            .delete_namespace(&form.viewer.principal, &name, all)
            .await;
        if let Err(e) = batch.record(name, r) {
            return e.into_response();
        }
    }
    batch.respond("/namespaces")
}

/// Delete the selected images of a namespace, each with all its tags.
pub async fn delete_images(
    State(state): State<ApiState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let page = format!("/namespaces/{ns}");
    let images = match selection(&form, "image") {
        Some(n) => n,
        None => return bad_selection(&page),
    };
    let mut batch = Batch::new("image");
    for image in images {
        let r = match repo_name(&ns, &image) {
            Ok(repo) => {
                state
                    .management
                    .delete_image(&form.viewer.principal, &repo)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = batch.record(image, r) {
            return e.into_response();
        }
    }
    batch.respond(&page)
}

/// Delete the selected tags of an image; the last one takes the image.
pub async fn delete_tags(
    State(state): State<ApiState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let image = form.get("image").to_owned();
    let tags_page = format!("/namespaces/{ns}/tags?image={}", enc(&image));
    let tags = match selection(&form, "tag") {
        Some(n) => n,
        None => return bad_selection(&tags_page),
    };
    let repo = match repo_name(&ns, &image) {
        Ok(r) => r,
        Err(e) => return outcome(&tags_page, Err(e)),
    };
    let mut batch = Batch::new("tag");
    let mut image_deleted = false;
    for tag in tags {
        let r = match Tag::parse(&tag) {
            Ok(t) => state
                .management
                .delete_tag(&form.viewer.principal, &repo, &t)
                .await
                .map(|d| image_deleted |= d.image_deleted),
            Err(e) => Err(DirectoryError::Invalid(format!("invalid tag: {e}"))),
        };
        if let Err(e) = batch.record(tag, r) {
            return e.into_response();
        }
    }
    if image_deleted {
        batch.note = format!(" Image {image} was deleted with its last tag.");
        return batch.respond(&format!("/namespaces/{ns}"));
    }
    batch.respond(&tags_page)
}

/// The image an image page is about (`?image=`, inside namespace `ns`):
/// its name in the namespace, its full name and its summary; not found
/// when the viewer may not pull it.
pub(crate) async fn page_image(
    state: &ApiState,
    viewer: &Viewer,
    ns: &str,
    q: &HashMap<String, String>,
) -> Result<(String, RepoName, ImageView), PageError> {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(viewer);
    let image = param(q, "image").to_owned();
    let repo = repo_name(ns, &image).map_err(err)?;
    let summary = state
        .management
        .image(&viewer.principal, &repo)
        .await
        .map_err(err)?;
    Ok((image, repo, summary))
}

pub(crate) fn repo_name(ns: &str, image: &str) -> Result<RepoName, DirectoryError> {
    RepoName::parse(&format!("{ns}/{image}"))
        .map_err(|e| DirectoryError::Invalid(format!("invalid image name {image:?}: {e}")))
}

pub async fn delete_image(
    State(state): State<ApiState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let image = form.get("image").to_owned();
    let r = match repo_name(&ns, &image) {
        Ok(repo) => state
            .management
            .delete_image(&form.viewer.principal, &repo)
            .await
            .map(|_| format!("Image {image} deleted with all its tags.")),
        Err(e) => Err(e),
    };
    outcome(&format!("/namespaces/{ns}"), r)
}

pub async fn tags(
    State(state): State<ApiState>,
    viewer: Viewer,
    Path(ns): Path<String>,
    Query(q): Q,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let (image, repo, summary) = page_image(&state, &viewer, &ns, &q).await?;
    let search = param(&q, "q").to_owned();
    let filter = ListFilter {
        name: (!search.is_empty()).then(|| search.clone()),
        sort: TagSort::Name,
        descending: false,
        paging: Paging::new(Some(page_number(&q)), Some(50)).map_err(err)?,
    };
    let list = state
        .management
        .tags(&viewer.principal, &repo, &filter)
        .await
        .map_err(err)?;
    let page = TagsPage {
        l: Layout::new(&viewer, "images").messages(&q),
        pager: Pager::new(
            &list,
            &format!(
                "/namespaces/{ns}/tags?image={}&q={}",
                enc(&image),
                enc(&search)
            ),
        ),
        tags: crate::sync::with_regions(&state, &repo, list.items)
            .await
            .map_err(err)?,
        multi_region: state.management.registry().regions().is_multi(),
        repository: repo.to_string(),
        ns,
        image_q: enc(&image),
        image,
        host: host(&state),
        q: search,
        pulls: summary.summary.pull_count,
        size: size(summary.summary.size),
    };
    Ok(html(page.render()))
}

pub async fn delete_tag(
    State(state): State<ApiState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let image = form.get("image").to_owned();
    let tag = form.get("tag").to_owned();
    let tags_page = format!("/namespaces/{ns}/tags?image={}", enc(&image));
    let repo = match repo_name(&ns, &image) {
        Ok(r) => r,
        Err(e) => return outcome(&tags_page, Err(e)),
    };
    let tag_name = match Tag::parse(&tag) {
        Ok(t) => t,
        Err(e) => return back(&tags_page, "error", &format!("invalid tag {tag:?}: {e}")),
    };
    match state
        .management
        .delete_tag(&form.viewer.principal, &repo, &tag_name)
        .await
    {
        Ok(d) if d.image_deleted => back(
            &format!("/namespaces/{ns}"),
            "notice",
            &format!("Tag {tag} deleted; it was the last, so image {image} was deleted too."),
        ),
        Ok(_) => back(&tags_page, "notice", &format!("Tag {tag} deleted.")),
        Err(e) => outcome(&tags_page, Err(e)),
    }
}

// ---- access ------------------------------------------------------------------

pub async fn access(
    State(state): State<ApiState>,
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

fn role(s: &str) -> Result<Role, DirectoryError> {
    Role::parse_input(s).map_err(DirectoryError::Invalid)
}

pub async fn set_member(
    State(state): State<ApiState>,
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
    State(state): State<ApiState>,
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
    State(state): State<ApiState>,
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
    State(state): State<ApiState>,
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
    State(state): State<ApiState>,
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
    State(state): State<ApiState>,
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

// ---- registry users ----------------------------------------------------------

pub async fn registry_users(
    State(state): State<ApiState>,
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
    let page = RegistryUsersPage {
        l: Layout::new(&viewer, "registry-users").messages(&q),
        users: rows,
    };
    Ok(html(page.render()))
}

pub async fn create_registry_user(State(state): State<ApiState>, form: Posted) -> Response {
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
        ),
        Ok((user, None)) => back(
            "/registry-users",
            "notice",
            &format!("Registry user {} created.", user.name),
        ),
        Err(e) => outcome("/registry-users", Err(e)),
    }
}

fn secret_page(viewer: &Viewer, title: String, explanation: String, secret: String) -> Response {
    let back = if title.starts_with("API token") {
        "/account"
    } else {
        "/registry-users"
    };
    html(
        SecretPage {
            l: Layout::new(viewer, "registry-users"),
            title,
            explanation,
            secret,
            back: back.to_owned(),
        }
        .render(),
    )
}

pub async fn registry_user_action(
    State(state): State<ApiState>,
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

// ---- project groups -------------------------------------------------------

pub async fn groups(State(state): State<ApiState>, viewer: Viewer, Query(q): Q) -> PageResult {
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

pub async fn create_group(State(state): State<ApiState>, form: Posted) -> Response {
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
    State(state): State<ApiState>,
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
        used: crate::views::size(used),
        quota: g.quota_bytes.map(crate::views::size),
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
    State(state): State<ApiState>,
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
    State(state): State<ApiState>,
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
    State(state): State<ApiState>,
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
    State(state): State<ApiState>,
    Path(group): Path<String>,
    form: Posted,
) -> Response {
    let to = format!("/project-groups/{group}");
    let quota = match crate::policies::parse_size(form.get("quota")) {
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

// ---- account -------------------------------------------------------------------

pub async fn account(State(state): State<ApiState>, viewer: Viewer, Query(q): Q) -> PageResult {
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
    state: &ApiState,
    form: &Posted,
    client: ClientIp,
) -> Result<(), Response> {
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
        Err(AuthError::Failed | AuthError::Token(_)) => {
            Err(back("/account", "error", "The current password is wrong."))
        }
        Err(AuthError::Throttled { retry_after } | AuthError::Busy { retry_after }) => Err(back(
            "/account",
            "error",
            &format!("Too many attempts. Try again in {retry_after} seconds."),
        )),
        Err(AuthError::Internal(e)) => Err(PageError::from(e).into_response()),
    }
}

pub async fn change_password(
    State(state): State<ApiState>,
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
    State(state): State<ApiState>,
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
pub async fn sign_out_everywhere(State(state): State<ApiState>, form: Posted) -> Response {
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

pub async fn revoke_all_tokens(State(state): State<ApiState>, form: Posted) -> Response {
    let r = state
        .management
        .revoke_all_tokens(&form.viewer.principal)
        .await
        .map(|n| format!("{n} API token(s) revoked."));
    outcome("/account", r)
}

pub async fn create_token(State(state): State<ApiState>, form: Posted) -> Response {
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
        ),
        Err(e) => outcome("/account", Err(e)),
    }
}

pub async fn revoke_token(
    State(state): State<ApiState>,
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

// ---- audit log -------------------------------------------------------------------

pub async fn audit(State(state): State<ApiState>, viewer: Viewer, Query(q): Q) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let text = |k: &str| Some(param(&q, k).to_owned()).filter(|s| !s.is_empty());
    let filter = AuditFilter {
        namespace: text("namespace"),
        actor: text("actor"),
        action: text("action"),
        before_id: param(&q, "before").parse().ok(),
        limit: Some(50),
        ..AuditFilter::default()
    };
    let entries = state
        .management
        .audit(&viewer.principal, &filter)
        .await
        .map_err(err)?;
    let older = (entries.len() == 50).then(|| {
        format!(
            "/audit?namespace={}&actor={}&action={}&before={}",
            enc(param(&q, "namespace")),
            enc(param(&q, "actor")),
            enc(param(&q, "action")),
            entries.last().map(|e| e.id).unwrap_or_default()
        )
    });
    let page = AuditPage {
        l: Layout::new(&viewer, "audit").messages(&q),
        namespace: param(&q, "namespace").to_owned(),
        actor: param(&q, "actor").to_owned(),
        action: param(&q, "action").to_owned(),
        entries: entries
            .into_iter()
            .map(|e| AuditRow {
                at: when(e.at),
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e.detail,
                client: e.client_addr.unwrap_or_default(),
            })
            .collect(),
        older,
    };
    Ok(html(page.render()))
}
