//! "Images": every image the viewer sees across namespaces, narrowed by a
//! namespace drop-down, searched, sorted, paged and deleted in batches; and
//! the image page's permissions tab (its per-image Read/Write/Manage
//! permissions). The image page's other tabs are its tags (`namespaces.rs`) and
//! its synchronization records (`sync.rs`).

use std::collections::{BTreeSet, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use berth_core::model::{NamespaceSort, RepositorySort};
use berth_core::{DirectoryError, ImageListFilter, NamespaceFilter, NamespaceTab, Paging};
use berth_oci::RepoName;
use berth_web::WebState;

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

/// What the list shows: `mine`, `shared` (mine and public namespaces',
/// the platform's among them) or `all` (platform administrators).
const SHOW: &[&str] = &["mine", "shared", "all"];

/// Sort choices: (value, label, key, descending).
const SORTS: &[(&str, &str, RepositorySort, bool)] = &[
    ("name", "Name", RepositorySort::Name, false),
    ("-updated", "Last push", RepositorySort::Updated, true),
    ("-pull_count", "Most pulled", RepositorySort::Pulls, true),
    ("-created", "Newest", RepositorySort::Created, true),
];

/// Namespaces offered in the drop-down, at most.
const NAMESPACE_CHOICES: i64 = 100;

pub async fn images(
    State(state): State<WebState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let show = match param(&q, "show") {
        "" => "mine",
        s if SHOW.contains(&s) => s,
        s => {
            return Err(err(DirectoryError::Invalid(format!(
                "unknown choice {s:?}: show mine, shared or all"
            ))))
        }
    };
    let sort = match param(&q, "sort") {
        "" => "name",
        s => s,
    };
    let Some(&(_, _, key, descending)) = SORTS.iter().find(|(v, ..)| *v == sort) else {
        return Err(err(DirectoryError::Invalid(format!(
            "unknown sort {sort:?}"
        ))));
    };
    let namespace = param(&q, "namespace").to_owned();
    let search = param(&q, "q").to_owned();
    let filter = ImageListFilter {
        all: show == "all",
        shared: show == "shared",
        platform: show == "shared",
        namespace: (!namespace.is_empty()).then(|| namespace.clone()),
        name: (!search.is_empty()).then(|| search.clone()),
        sort: key,
        descending,
        paging: Paging::new(Some(page_number(&q)), Some(20)).map_err(err)?,
        ..ImageListFilter::default()
    };
    let list = state
        .management
        .image_list(&viewer.principal, &filter)
        .await
        .map_err(err)?;
    // The drop-down: the namespaces the same choice shows.
    let tabs: &[NamespaceTab] = match show {
        "all" => &[NamespaceTab::All],
        "shared" => &[NamespaceTab::Mine, NamespaceTab::Shared],
        _ => &[NamespaceTab::Mine],
    };
    let mut namespaces = BTreeSet::new();
    for tab in tabs {
        let page = state
            .management
            .namespaces(
                &viewer.principal,
                &NamespaceFilter {
                    tab: *tab,
                    sort: NamespaceSort::Name,
                    paging: Paging::new(Some(1), Some(NAMESPACE_CHOICES)).map_err(err)?,
                    ..NamespaceFilter::default()
                },
            )
            .await
            .map_err(err)?;
        namespaces.extend(page.items.into_iter().map(|n| n.namespace.name));
    }
    if !namespace.is_empty() {
        namespaces.insert(namespace.clone());
    }
    let base = format!(
        "/images?show={show}&namespace={}&q={}&sort={}",
        enc(&namespace),
        enc(&search),
        enc(sort)
    );
    let page = ImagesPage {
        l: Layout::new(&viewer, "images").messages(&q),
        pager: Pager::new(&list, &base),
        images: list.items.into_iter().map(ListedImageRow::new).collect(),
        namespaces: namespaces.into_iter().collect(),
        namespace,
        show: show.to_owned(),
        sort: sort.to_owned(),
        sorts: SORTS.iter().map(|(v, label, ..)| (*v, *label)).collect(),
        q: search,
        host: host(&state),
        back: base,
    };
    Ok(html(page.render()))
}

/// Where a form on the images page goes back to: the list it came from.
fn back_to(form: &Posted) -> String {
    let to = form.get("back");
    if to.starts_with("/images?") || to == "/images" {
        to.to_owned()
    } else {
        "/images".to_owned()
    }
}

/// Delete the selected images (full names) of any namespaces, each with all
/// its tags; each is deleted or refused on its own.
pub async fn delete_images(State(state): State<WebState>, form: Posted) -> Response {
    let to = back_to(&form);
    let images = match selection(&form, "image") {
        Some(n) => n,
        None => return bad_selection(&to),
    };
    let mut batch = Batch::new("image");
    for image in images {
        let r = match RepoName::parse(&image) {
            Ok(repo) if repo.as_str() != repo.namespace() => {
                state
                    .management
                    .delete_image(&form.viewer.principal, &repo)
                    .await
            }
            _ => Err(DirectoryError::Invalid(format!(
                "{image:?} is not an image name of the form namespace/name"
            ))),
        };
        if let Err(e) = batch.record(image, r) {
            return e.into_response();
        }
    }
    batch.respond(&to)
}

/// The image page's permissions tab: who holds Read, Write or Manage on
/// this image, editable by those who administer the namespace.
pub async fn permissions(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(ns): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let (image, repo, summary) = page_image(&state, &viewer, &ns, &q).await?;
    let directory = state.management.directory();
    // Members of the namespace see its permissions (a public image's
    // other viewers do not); its administrators change them.
    let permissions = match directory
        .repository_permissions(&viewer.principal, &ns)
        .await
    {
        Ok(all) => Some(
            all.into_iter()
                .filter(|p| p.repository == repo.as_str())
                .map(|p| (p.account_name, p.permission))
                .collect(),
        ),
        Err(DirectoryError::NotFound(_) | DirectoryError::Forbidden(_)) => None,
        Err(e) => return Err(err(e)),
    };
    let may_edit = match directory.admin_namespace(&viewer.principal, &ns).await {
        Ok(_) => true,
        Err(DirectoryError::NotFound(_) | DirectoryError::Forbidden(_)) => false,
        Err(e) => return Err(err(e)),
    };
    let page = ImagePermissionsPage {
        l: Layout::new(&viewer, "images").messages(&q),
        repository: repo.to_string(),
        image_q: enc(&image),
        image,
        ns,
        host: host(&state),
        tags: summary.summary.tag_count,
        pulls: summary.summary.pull_count,
        size: size(summary.summary.size),
        permissions,
        may_edit,
    };
    Ok(html(page.render()))
}
