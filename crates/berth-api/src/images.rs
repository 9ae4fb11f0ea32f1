//! Images (repositories) of a namespace and their tags. Image names may
//! contain slashes: percent-encode them in the path (`web%2Ffrontend`).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_core::model::{RepositorySort, TagSort};
use berth_core::{ImageListFilter, ListFilter, Paging};
use berth_oci::Tag;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::model::*;
use crate::params::{check_batch, each_deleted, parse_sort, repo_name, visibility};
use berth_web::WebState;

fn tag_name(tag: &str) -> ApiResult<Tag> {
    Tag::parse(tag).map_err(|e| ApiError::invalid(format!("invalid tag {tag:?}: {e}")))
}

/// Sort keys of the image lists (the OpenAPI document lists them too).
pub(crate) const IMAGE_SORT: &[(&str, RepositorySort)] = &[
    ("name", RepositorySort::Name),
    ("updated", RepositorySort::Updated),
    ("pull_count", RepositorySort::Pulls),
    ("created", RepositorySort::Created),
];

/// Sort keys of the tag list.
pub(crate) const TAG_SORT: &[(&str, TagSort)] = &[
    ("name", TagSort::Name),
    ("pushed", TagSort::Pushed),
    ("pull_count", TagSort::Pulls),
];

fn image_filter(list: &ListParams) -> ApiResult<ListFilter<RepositorySort>> {
    let (sort, descending) = parse_sort(list.sort.as_deref(), IMAGE_SORT)?;
    Ok(ListFilter {
        name: list.q.clone(),
        sort,
        descending,
        paging: Paging::new(list.page, list.per_page)?,
    })
}

/// A namespace's images with latest tag, pull count, pull command, tag
/// count and size. Sort keys: `name` (default), `updated`, `pull_count`.
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/repositories", tag = "images",
    params(("ns" = String, Path, description = "Namespace name"), ListParams),
    responses((status = 200, body = Paged<ImageJson>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn list(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
    list: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<Paged<ImageJson>>> {
    let Path(ns) = ns?;
    let filter = image_filter(&list?.0)?;
    let page = state
        .management
        .images(&caller.principal, &ns, &filter)
        .await?;
    Ok(Json(Paged::from_page(page, ImageJson::from)))
}

/// Every image you can see across namespaces ("My images"): those of the
/// namespaces you belong to and those you hold a per-image permission on
/// (an account), or of the namespaces you hold a grant in (a registry
/// user); with `shared=true` also public namespaces' images, with
/// `platform=true` the platform namespace's, with `all=true` every image
/// (platform administrators). Each image with its namespace, the
/// namespace's status, visibility and project group. Sort keys: `name`
/// (default; the full name), `updated`, `pull_count`, `created`.
#[utoipa::path(get, path = "/api/v1/repositories", tag = "images",
    params(ListParams, ImageListParams),
    responses((status = 200, body = Paged<ImageListJson>), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn list_all(
    State(state): State<WebState>,
    caller: Caller,
    list: Result<Query<ListParams>, QueryRejection>,
    params: Result<Query<ImageListParams>, QueryRejection>,
) -> ApiResult<Json<Paged<ImageListJson>>> {
    let list = list?.0;
    let params = params?.0;
    let (sort, descending) = parse_sort(list.sort.as_deref(), IMAGE_SORT)?;
    let public = visibility(params.visibility.as_deref())?;
    let filter = ImageListFilter {
        all: params.all.unwrap_or(false),
        shared: params.shared.unwrap_or(false),
        platform: params.platform.unwrap_or(false),
        namespace: params.namespace,
        group: params.project_group,
        public,
        name: list.q,
        sort,
        descending,
        paging: Paging::new(list.page, list.per_page)?,
    };
    let page = state
        .management
        .image_list(&caller.principal, &filter)
        .await?;
    Ok(Json(Paged::from_page(page, ImageListJson::from)))
}

/// Delete several images of any namespaces (full names, `namespace/name`);
/// each is deleted or refused on its own, by the same rules as one delete.
#[utoipa::path(post, path = "/api/v1/repositories/batch-delete", tag = "images",
    request_body = BatchDelete,
    responses((status = 200, body = BatchResult), (status = 400, body = Problem)))]
pub(crate) async fn batch_delete_any(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<BatchDelete>, JsonRejection>,
) -> ApiResult<Json<BatchResult>> {
    let actor = caller.account()?;
    let Json(body) = body?;
    check_batch(&body.names)?;
    let state = &state;
    let result = each_deleted(body.names, |name| async move {
        let Some((ns, repo)) = name.split_once('/') else {
            return Err(ApiError::invalid(format!(
                "{name:?} is not an image name of the form namespace/name"
            )));
        };
        Ok(state
            .management
            .delete_image(actor, &repo_name(ns, repo)?)
            .await?)
    })
    .await;
    Ok(Json(result))
}

/// The platform images: the platform namespace's images, which everyone
/// may pull.
#[utoipa::path(get, path = "/api/v1/platform/repositories", tag = "images",
    params(ListParams),
    responses((status = 200, body = Paged<ImageJson>), (status = 400, body = Problem)))]
pub(crate) async fn platform(
    State(state): State<WebState>,
    caller: Caller,
    list: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<Paged<ImageJson>>> {
    let filter = image_filter(&list?.0)?;
    let ns = state
        .management
        .directory()
        .config()
        .platform_namespace
        .clone();
    let page = state
        .management
        .images(&caller.principal, &ns, &filter)
        .await?;
    Ok(Json(Paged::from_page(page, ImageJson::from)))
}

/// One image.
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/repositories/{repo}", tag = "images",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image name inside the namespace, slashes as %2F")),
    responses((status = 200, body = ImageJson), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn get_one(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<ImageJson>> {
    let Path((ns, repo)) = path?;
    let image = state
        .management
        .image(&caller.principal, &repo_name(&ns, &repo)?)
        .await?;
    Ok(Json(image.into()))
}

/// Delete an image with all its tags. Its storage is reclaimed by garbage
/// collection; it cannot be recovered.
#[utoipa::path(delete, path = "/api/v1/namespaces/{ns}/repositories/{repo}", tag = "images",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image name inside the namespace, slashes as %2F")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((ns, repo)) = path?;
    state
        .management
        .delete_image(actor, &repo_name(&ns, &repo)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete several images of a namespace (names inside the namespace).
#[utoipa::path(post, path = "/api/v1/namespaces/{ns}/repositories/batch-delete", tag = "images",
    params(("ns" = String, Path, description = "Namespace name")),
    request_body = BatchDelete,
    responses((status = 200, body = BatchResult), (status = 400, body = Problem)))]
pub(crate) async fn batch_delete(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
    body: Result<Json<BatchDelete>, JsonRejection>,
) -> ApiResult<Json<BatchResult>> {
    let actor = caller.account()?;
    let Path(ns) = ns?;
    let Json(body) = body?;
    check_batch(&body.names)?;
    // A namespace the caller cannot see is not found, before any item.
    state.management.namespace(actor, &ns).await?;
    let (state, ns) = (&state, &ns);
    let result = each_deleted(body.names, |name| async move {
        Ok(state
            .management
            .delete_image(actor, &repo_name(ns, &name)?)
            .await?)
    })
    .await;
    Ok(Json(result))
}

/// An image's tags with digest, pull command, pull count, last pull, size,
/// media type, platforms and push time, with `signatures=true` each one's
/// signatures, with `vulnerabilities=true` its advisories per severity.
/// Sort keys: `name` (default), `pushed`, `pull_count`.
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/repositories/{repo}/tags", tag = "images",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image name inside the namespace, slashes as %2F"),
        ListParams, TagListOptions),
    responses((status = 200, body = Paged<TagJson>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn tags(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    list: Result<Query<ListParams>, QueryRejection>,
    options: Result<Query<TagListOptions>, QueryRejection>,
) -> ApiResult<Json<Paged<TagJson>>> {
    let Path((ns, repo)) = path?;
    let Query(list) = list?;
    let Query(options) = options?;
    let (sort, descending) = parse_sort(list.sort.as_deref(), TAG_SORT)?;
    let filter = ListFilter {
        name: list.q.clone(),
        sort,
        descending,
        paging: Paging::new(list.page, list.per_page)?,
    };
    let page = state
        .management
        .tags(&caller.principal, &repo_name(&ns, &repo)?, &filter)
        .await?;
    let mut paged = Paged::from_page(page, TagJson::from);
    let registry = state.management.registry();
    if registry.regions().is_multi() {
        let full = repo_name(&ns, &repo)?;
        for tag in &mut paged.items {
            tag.regions = registry
                .image_availability(full.as_str(), &tag.digest)
                .await
                .map_err(|e| ApiError::from(berth_core::DirectoryError::from(e)))?
                .into_iter()
                .map(|a| crate::model::TagRegionJson {
                    region: a.region,
                    available: a.available,
                })
                .collect();
        }
    }
    if options.signatures == Some(true) {
        let full = repo_name(&ns, &repo)?;
        let mut seen: std::collections::HashMap<String, Vec<SignatureJson>> = Default::default();
        for tag in &mut paged.items {
            if !seen.contains_key(&tag.digest) {
                let digest = berth_oci::Digest::parse(&tag.digest)
                    .map_err(|e| ApiError::invalid(e.to_string()))?;
                let checks = state
                    .management
                    .pull_policies()
                    .signatures(&caller.principal, &full, &digest)
                    .await?;
                seen.insert(
                    tag.digest.clone(),
                    checks.into_iter().map(Into::into).collect(),
                );
            }
            tag.signatures = seen.get(&tag.digest).cloned();
        }
    }
    if options.vulnerabilities == Some(true) {
        let full = repo_name(&ns, &repo)?;
        let mut seen: std::collections::HashMap<String, VulnerabilitySummaryJson> =
            Default::default();
        for tag in &mut paged.items {
            if !seen.contains_key(&tag.digest) {
                let digest = berth_oci::Digest::parse(&tag.digest)
                    .map_err(|e| ApiError::invalid(e.to_string()))?;
                let summary = state
                    .management
                    .vulnerabilities()
                    .summary(&caller.principal, &full, &digest)
                    .await?;
                seen.insert(tag.digest.clone(), summary.into());
            }
            tag.vulnerabilities = seen.get(&tag.digest).cloned();
        }
    }
    Ok(Json(paged))
}

/// Delete a tag. Deleting an image's last tag deletes the image.
#[utoipa::path(delete, path = "/api/v1/namespaces/{ns}/repositories/{repo}/tags/{tag}", tag = "images",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image name inside the namespace, slashes as %2F"),
        ("tag" = String, Path, description = "Tag")),
    responses((status = 200, body = TagDeletedJson), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn delete_tag(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> ApiResult<Json<TagDeletedJson>> {
    let actor = caller.account()?;
    let Path((ns, repo, tag)) = path?;
    let outcome = state
        .management
        .delete_tag(actor, &repo_name(&ns, &repo)?, &tag_name(&tag)?)
        .await?;
    Ok(Json(TagDeletedJson {
        tag,
        image_deleted: outcome.image_deleted,
    }))
}

/// Delete several tags of an image.
#[utoipa::path(post, path = "/api/v1/namespaces/{ns}/repositories/{repo}/tags/batch-delete", tag = "images",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image name inside the namespace, slashes as %2F")),
    request_body = BatchDelete,
    responses((status = 200, body = BatchResult), (status = 400, body = Problem)))]
pub(crate) async fn batch_delete_tags(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<BatchDelete>, JsonRejection>,
) -> ApiResult<Json<BatchResult>> {
    let actor = caller.account()?;
    let Path((ns, repo)) = path?;
    let Json(body) = body?;
    check_batch(&body.names)?;
    let repo = repo_name(&ns, &repo)?;
    let (state, repo) = (&state, &repo);
    let result = each_deleted(body.names, |name| async move {
        state
            .management
            .delete_tag(actor, repo, &tag_name(&name)?)
            .await?;
        Ok(())
    })
    .await;
    Ok(Json(result))
}
