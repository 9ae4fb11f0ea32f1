//! Group mappings (platform administrators): external groups of an
//! identity provider or directory to platform administrator, project-group
//! roles and namespace roles. Those of the configuration file are listed
//! read-only.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_core::identity::{GroupMapping, MappedGrant, MappingRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::model::time;
use berth_web::WebState;

/// A group mapping.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMappingJson {
    /// Id (absent for mappings of the configuration file).
    pub id: Option<i64>,
    /// `oidc:<provider>` or `ldap:<directory>`.
    pub origin: String,
    /// The external group: a claim value, or an LDAP group DN.
    pub group: String,
    /// Members become platform administrators.
    pub platform_admin: bool,
    /// Or get `role` in this project group.
    pub project_group: Option<String>,
    /// Or get `role` on this namespace.
    pub namespace: Option<String>,
    /// `guest`, `developer` or `admin`.
    pub role: Option<String>,
    /// Declared in the configuration file: read-only here.
    pub read_only: bool,
    /// Who made it.
    pub created_by: String,
    /// When (RFC 3339; absent for declared ones).
    pub created_at: Option<String>,
}

impl From<MappingRow> for GroupMappingJson {
    fn from(r: MappingRow) -> Self {
        let (platform_admin, project_group, namespace, role) = match r.mapping.grant {
            MappedGrant::PlatformAdmin => (true, None, None, None),
            MappedGrant::ProjectGroup { name, role } => {
                (false, Some(name), None, Some(role.as_str().to_owned()))
            }
            MappedGrant::Namespace { name, role } => {
                (false, None, Some(name), Some(role.as_str().to_owned()))
            }
        };
        GroupMappingJson {
            read_only: r.id.is_none(),
            created_at: r.id.map(|_| time(r.created_at)),
            id: r.id,
            origin: r.mapping.origin,
            group: r.mapping.group,
            platform_admin,
            project_group,
            namespace,
            role,
            created_by: r.created_by,
        }
    }
}

/// A group mapping to add: one of `platform_admin`, `project_group` +
/// `role`, `namespace` + `role`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupMapping {
    /// `oidc:<provider>` or `ldap:<directory>`, configured.
    #[schema(pattern = "^(oidc|ldap):[a-z0-9-]+$")]
    pub origin: String,
    /// The external group.
    #[schema(min_length = 1, max_length = 1024)]
    pub group: String,
    /// Members become platform administrators.
    #[serde(default)]
    pub platform_admin: bool,
    /// A project group that exists.
    pub project_group: Option<String>,
    /// A namespace that exists.
    pub namespace: Option<String>,
    /// `guest`, `developer` or `admin`.
    pub role: Option<String>,
}

/// Every group mapping: the configuration file's, then those made here.
#[utoipa::path(get, path = "/api/v1/group-mappings", tag = "accounts",
    responses((status = 200, body = Vec<GroupMappingJson>), (status = 403, body = Problem)))]
pub(crate) async fn list(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<Vec<GroupMappingJson>>> {
    let actor = caller.account()?;
    let rows = state.sign_in.mappings().rows(actor).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Add a group mapping; it applies at each member's next sign-in.
#[utoipa::path(post, path = "/api/v1/group-mappings", tag = "accounts",
    request_body(content = CreateGroupMapping, content_type = "application/json"),
    responses((status = 201, body = GroupMappingJson), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn create(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<CreateGroupMapping>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<GroupMappingJson>)> {
    let actor = caller.account()?;
    let Json(b) = body?;
    let grant = MappedGrant::from_fields(
        b.platform_admin,
        b.project_group.as_deref(),
        b.namespace.as_deref(),
        b.role.as_deref(),
    )
    .map_err(ApiError::invalid)?;
    let row = state
        .sign_in
        .mappings()
        .create(
            actor,
            &GroupMapping {
                origin: b.origin,
                group: b.group,
                grant,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Delete a group mapping made here; the roles it gave go at each
/// member's next sign-in.
#[utoipa::path(delete, path = "/api/v1/group-mappings/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "Mapping id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path(id) = path?;
    state.sign_in.mappings().delete(actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Groups to try against the mapping table.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingPreviewRequest {
    /// `oidc:<provider>` or `ldap:<directory>`.
    pub origin: String,
    /// The groups the provider would report (claim values or group DNs).
    #[schema(max_items = 1000)]
    pub groups: Vec<String>,
}

/// What those groups would give.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingPreviewJson {
    /// Each grant in words, with the group that gives it.
    pub grants: Vec<String>,
}

/// Dry run: what an account of `origin` in `groups` would get at its
/// next sign-in.
#[utoipa::path(post, path = "/api/v1/group-mappings/preview", tag = "accounts",
    request_body(content = MappingPreviewRequest, content_type = "application/json"),
    responses((status = 200, body = MappingPreviewJson), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn preview(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<MappingPreviewRequest>, JsonRejection>,
) -> ApiResult<Json<MappingPreviewJson>> {
    let actor = caller.account()?;
    let Json(b) = body?;
    if b.groups.len() > 1000 {
        return Err(ApiError::invalid("groups: at most 1000"));
    }
    let grants = state
        .sign_in
        .mappings()
        .preview(actor, &b.origin, &b.groups)
        .await?;
    Ok(Json(MappingPreviewJson { grants }))
}
