//! Namespaces: list (mine, shared, all), create, get, update, delete (one or
//! a batch), and their members, per-repository permissions and grants.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_core::access::{RepoPermission, Role};
use berth_core::model::NamespaceSort;
use berth_core::{NamespaceChanges, NamespaceFilter, NamespaceSpec, NamespaceTab, Paging};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::model::*;
use crate::params::{check_batch, each_deleted, parse_sort, repo_name, visibility};
use berth_web::WebState;

pub(crate) fn role(s: &str) -> ApiResult<Role> {
    Role::parse_input(s).map_err(ApiError::invalid)
}

pub(crate) fn namespace_filter(
    list: &ListParams,
    params: &NamespaceParams,
    default_tab: NamespaceTab,
) -> ApiResult<NamespaceFilter> {
    let tab = match params.tab.as_deref() {
        None => default_tab,
        Some("mine") => NamespaceTab::Mine,
        Some("shared") => NamespaceTab::Shared,
        Some("all") => NamespaceTab::All,
        Some(t) => {
            return Err(ApiError::invalid(format!(
                "unknown tab {t:?}: use mine, shared or all"
            )))
        }
    };
    let public = visibility(params.visibility.as_deref())?;
    let (sort, descending) = parse_sort(list.sort.as_deref(), NAMESPACE_SORT)?;
    Ok(NamespaceFilter {
        tab,
        group: params.project_group.clone(),
        public,
        name: list.q.clone(),
        label: params.label.clone(),
        sort,
        descending,
        paging: Paging::new(list.page, list.per_page)?,
    })
}

/// List namespaces with their statistics.
///
/// Sort keys: `name` (default), `created`, `updated`, `pull_count`,
/// `image_count`.
#[utoipa::path(get, path = "/api/v1/namespaces", tag = "namespaces",
    params(ListParams, NamespaceParams),
    responses((status = 200, body = Paged<NamespaceView>), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn list(
    State(state): State<WebState>,
    caller: Caller,
    list: Result<Query<ListParams>, QueryRejection>,
    params: Result<Query<NamespaceParams>, QueryRejection>,
) -> ApiResult<Json<Paged<NamespaceView>>> {
    let filter = namespace_filter(&list?.0, &params?.0, NamespaceTab::Mine)?;
    let page = state
        .management
        .namespaces(&caller.principal, &filter)
        .await?;
    Ok(Json(Paged::from_page(page, NamespaceView::from)))
}

/// Every public namespace, for everyone (anonymous callers too).
#[utoipa::path(get, path = "/api/v1/shared/namespaces", tag = "namespaces",
    params(ListParams),
    responses((status = 200, body = Paged<NamespaceView>), (status = 400, body = Problem)))]
pub(crate) async fn shared(
    State(state): State<WebState>,
    caller: Caller,
    list: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<Paged<NamespaceView>>> {
    let params = NamespaceParams {
        tab: Some("shared".into()),
        ..NamespaceParams::default()
    };
    let filter = namespace_filter(&list?.0, &params, NamespaceTab::Shared)?;
    let page = state
        .management
        .namespaces(&caller.principal, &filter)
        .await?;
    Ok(Json(Paged::from_page(page, NamespaceView::from)))
}

/// Create a namespace.
#[utoipa::path(post, path = "/api/v1/namespaces", tag = "namespaces",
    request_body = CreateNamespace,
    responses((status = 201, body = NamespaceView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "The project group does not exist"),
        (status = 409, body = Problem)))]
pub(crate) async fn create(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<CreateNamespace>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<NamespaceView>)> {
    let actor = caller.account()?;
    let Json(body) = body?;
    let spec = NamespaceSpec {
        name: body.name,
        group: body.project_group,
        public: body.public,
        description: body.description,
        category: body.category,
        labels: body.labels.into_iter().collect(),
    };
    let ns = state.management.create_namespace(actor, &spec).await?;
    Ok((StatusCode::CREATED, Json(ns.into())))
}

/// One namespace.
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}", tag = "namespaces",
    params(("ns" = String, Path, description = "Namespace name")),
    responses((status = 200, body = NamespaceView), (status = 404, body = Problem)))]
pub(crate) async fn get_one(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<NamespaceView>> {
    let Path(ns) = ns?;
    let summary = state.management.namespace(&caller.principal, &ns).await?;
    Ok(Json(summary.into()))
}

/// Change a namespace: visibility, description, category, labels, the
/// external access switch.
#[utoipa::path(patch, path = "/api/v1/namespaces/{ns}", tag = "namespaces",
    params(("ns" = String, Path, description = "Namespace name")),
    request_body = UpdateNamespace,
    responses((status = 200, body = NamespaceView), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn update(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdateNamespace>, JsonRejection>,
) -> ApiResult<Json<NamespaceView>> {
    let actor = caller.account()?;
    let Path(ns) = ns?;
    let Json(body) = body?;
    let changes = NamespaceChanges {
        public: body.public,
        description: body.description,
        category: body.category,
        labels: body.labels.map(|l| l.into_iter().collect()),
        external_access: body.external_access,
    };
    let summary = state
        .management
        .update_namespace(actor, &ns, &changes)
        .await?;
    Ok(Json(summary.into()))
}

/// Delete a namespace. One holding images is refused (409) unless
/// `delete_all_images=true`; deleted images cannot be recovered.
#[utoipa::path(delete, path = "/api/v1/namespaces/{ns}", tag = "namespaces",
    params(("ns" = String, Path, description = "Namespace name"), DeleteNamespaceParams),
    responses((status = 200, body = NamespaceDeleted), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
    params: Result<Query<DeleteNamespaceParams>, QueryRejection>,
) -> ApiResult<Json<NamespaceDeleted>> {
    let actor = caller.account()?;
    let Path(ns) = ns?;
    let Query(params) = params?;
    let images_deleted = state
        .management
        .delete_namespace(actor, &ns, params.delete_all_images)
        .await?;
    Ok(Json(NamespaceDeleted {
        name: ns,
        images_deleted,
    }))
}

/// Delete several namespaces; each is done or refused on its own.
#[utoipa::path(post, path = "/api/v1/namespaces/batch-delete", tag = "namespaces",
    request_body = BatchDeleteNamespaces,
    responses((status = 200, body = BatchResult), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(crate) async fn batch_delete(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<BatchDeleteNamespaces>, JsonRejection>,
) -> ApiResult<Json<BatchResult>> {
    let actor = caller.account()?;
    let Json(body) = body?;
    check_batch(&body.names)?;
    let (state, all) = (&state, body.delete_all_images);
    let result = each_deleted(body.names, |name| async move {
        state.management.delete_namespace(actor, &name, all).await?;
        Ok(())
    })
    .await;
    Ok(Json(result))
}

/// The namespace's members (accounts with a role on the namespace itself;
/// project group members have their group role too).
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/members", tag = "access",
    params(("ns" = String, Path, description = "Namespace name")),
    responses((status = 200, body = Vec<MemberJson>), (status = 404, body = Problem)))]
pub(crate) async fn members(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Vec<MemberJson>>> {
    let actor = caller.account()?;
    let Path(ns) = ns?;
    let members = state.management.namespace_members(actor, &ns).await?;
    Ok(Json(members.into_iter().map(MemberJson::from).collect()))
}

/// Give an account a role on the namespace (namespace administrators).
#[utoipa::path(put, path = "/api/v1/namespaces/{ns}/members/{account}", tag = "access",
    params(("ns" = String, Path, description = "Namespace name"), ("account" = String, Path, description = "Account name")),
    request_body = SetRole,
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn set_member(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<SetRole>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((ns, account)) = path?;
    let Json(body) = body?;
    state
        .management
        .directory()
        .set_namespace_member(actor, &ns, &account, role(&body.role)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take an account's role on the namespace away.
#[utoipa::path(delete, path = "/api/v1/namespaces/{ns}/members/{account}", tag = "access",
    params(("ns" = String, Path, description = "Namespace name"), ("account" = String, Path, description = "Account name")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn remove_member(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((ns, account)) = path?;
    state
        .management
        .directory()
        .remove_namespace_member(actor, &ns, &account)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Registry users granted pull or push on the namespace.
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/grants", tag = "access",
    params(("ns" = String, Path, description = "Namespace name")),
    responses((status = 200, body = Vec<GrantJson>), (status = 404, body = Problem)))]
pub(crate) async fn grants(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Vec<GrantJson>>> {
    let actor = caller.account()?;
    let Path(ns) = ns?;
    let grants = state.management.namespace_grants(actor, &ns).await?;
    Ok(Json(
        grants
            .into_iter()
            .map(|(registry_user, pull, push)| GrantJson {
                registry_user,
                pull,
                push,
            })
            .collect(),
    ))
}

/// Grant a registry user pull and/or push (both false removes the grant).
/// The caller must own the user and administer the namespace.
#[utoipa::path(put, path = "/api/v1/namespaces/{ns}/grants/{user}", tag = "access",
    params(("ns" = String, Path, description = "Namespace name"), ("user" = String, Path, description = "Registry user")),
    request_body = SetGrant,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn set_grant(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<SetGrant>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((ns, user)) = path?;
    let Json(body) = body?;
    state
        .management
        .directory()
        .set_grant(actor, &user, &ns, body.pull, body.push)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a registry user's grant.
#[utoipa::path(delete, path = "/api/v1/namespaces/{ns}/grants/{user}", tag = "access",
    params(("ns" = String, Path, description = "Namespace name"), ("user" = String, Path, description = "Registry user")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn remove_grant(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((ns, user)) = path?;
    state
        .management
        .directory()
        .set_grant(actor, &user, &ns, false, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Per-repository permissions in the namespace.
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/permissions", tag = "access",
    params(("ns" = String, Path, description = "Namespace name")),
    responses((status = 200, body = Vec<PermissionJson>), (status = 404, body = Problem)))]
pub(crate) async fn permissions(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Vec<PermissionJson>>> {
    let actor = caller.account()?;
    let Path(ns) = ns?;
    let list = state
        .management
        .directory()
        .repository_permissions(actor, &ns)
        .await?;
    let prefix = format!("{ns}/");
    Ok(Json(
        list.into_iter()
            .map(|p| PermissionJson {
                repository: p
                    .repository
                    .strip_prefix(&prefix)
                    .unwrap_or(&p.repository)
                    .to_owned(),
                account: p.account_name,
                permission: p.permission,
            })
            .collect(),
    ))
}

/// Sort keys of the namespace lists (the OpenAPI document lists them too).
pub(crate) const NAMESPACE_SORT: &[(&str, NamespaceSort)] = &[
    ("name", NamespaceSort::Name),
    ("created", NamespaceSort::Created),
    ("updated", NamespaceSort::Updated),
    ("pull_count", NamespaceSort::Pulls),
    ("image_count", NamespaceSort::Images),
];

/// Give an account a permission on one image (namespace administrators).
/// Percent-encode slashes in the image name (`web%2Ffrontend`).
#[utoipa::path(put, path = "/api/v1/namespaces/{ns}/permissions/{repo}/{account}", tag = "access",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image name inside the namespace, slashes as %2F"),
        ("account" = String, Path, description = "Account name")),
    request_body = SetPermission,
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn set_permission(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String, String)>, PathRejection>,
    body: Result<Json<SetPermission>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((ns, repo, account)) = path?;
    let Json(body) = body?;
    let permission = RepoPermission::parse_input(&body.permission).map_err(ApiError::invalid)?;
    state
        .management
        .directory()
        .set_repository_permission(actor, &repo_name(&ns, &repo)?, &account, permission)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove an account's permission on one image.
#[utoipa::path(delete, path = "/api/v1/namespaces/{ns}/permissions/{repo}/{account}", tag = "access",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image name inside the namespace, slashes as %2F"),
        ("account" = String, Path, description = "Account name")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn remove_permission(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((ns, repo, account)) = path?;
    state
        .management
        .directory()
        .remove_repository_permission(actor, &repo_name(&ns, &repo)?, &account)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
