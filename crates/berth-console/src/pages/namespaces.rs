//! Namespaces: the list, one namespace's page, edits and deletes, its images and an image's tags.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_core::model::{NamespaceSort, RepositorySort, TagSort};
use berth_core::{
    DirectoryError, ListFilter, NamespaceChanges, NamespaceFilter, NamespaceSpec, NamespaceTab,
    Paging,
};
use berth_oci::Tag;
use berth_web::WebState;

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{back, html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

pub async fn namespaces(State(state): State<WebState>, viewer: Viewer, Query(q): Q) -> PageResult {
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

pub async fn create_namespace(State(state): State<WebState>, form: Posted) -> Response {
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
    State(state): State<WebState>,
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
    State(state): State<WebState>,
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

pub async fn delete_namespace(State(state): State<WebState>, form: Posted) -> Response {
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

/// Delete the selected namespaces (each done or refused on its own).
pub async fn delete_namespaces(State(state): State<WebState>, form: Posted) -> Response {
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
    State(state): State<WebState>,
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
    State(state): State<WebState>,
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

pub async fn delete_image(
    State(state): State<WebState>,
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
    State(state): State<WebState>,
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
        tags: super::sync::with_regions(&state, &repo, list.items)
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
    State(state): State<WebState>,
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
