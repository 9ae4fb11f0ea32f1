//! Regions and synchronization: an image's synchronization rules, manual
//! synchronization, the records of every synchronization, a namespace's
//! replication regions, and the regions' storage use and backlog.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_core::model::{SyncRecord, SyncRecordQuery, SyncRule};
use berth_core::platform::{SyncRuleSpec, SyncTags};
use berth_core::Paging;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::model::{time, Paged};
use crate::params::{repo_name, time_param};
use berth_web::WebState;

/// A synchronization rule of an image.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRuleJson {
    /// Rule id.
    pub id: i64,
    /// Source image (namespace/name).
    pub repository: String,
    /// Region the copies' blobs are placed in.
    pub target_region: String,
    /// Namespace (organization) the copies go to, under the same image name.
    pub target_namespace: String,
    /// Whether a differing tag in the target is overwritten; if not, the
    /// record says `conflict` and the rule's author is notified.
    pub overwrite: bool,
    /// Who made the rule.
    pub author: String,
    /// When (RFC 3339).
    pub created_at: String,
}

impl From<SyncRule> for SyncRuleJson {
    fn from(r: SyncRule) -> Self {
        SyncRuleJson {
            id: r.id,
            repository: r.repo,
            target_region: r.target_region,
            target_namespace: r.target_namespace,
            overwrite: r.overwrite,
            author: r.author,
            created_at: time(r.created_at),
        }
    }
}

/// A new synchronization rule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSyncRule {
    /// Target region (one of `GET /api/v1/regions`).
    pub target_region: String,
    /// Target namespace; you need push rights there.
    pub target_namespace: String,
    /// Overwrite a differing tag in the target (default false).
    #[serde(default)]
    pub overwrite: bool,
}

/// Synchronize tags now (images pushed before the rule existed).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSync {
    /// Only this rule (default: every rule of the image).
    pub rule: Option<i64>,
    /// These tags; leave out and set `all` for every tag.
    pub tags: Option<Vec<String>>,
    /// Every tag of the image.
    #[serde(default)]
    pub all: bool,
}

/// The records a synchronization made.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStarted {
    /// Record ids, one per tag and rule.
    pub records: Vec<i64>,
}

/// A synchronization record: one tag to one target.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRecordJson {
    /// Record id.
    pub id: i64,
    /// The rule it followed (absent when deleted since).
    pub rule: Option<i64>,
    /// Source image.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Manifest digest the tag pointed at.
    pub digest: String,
    /// `waiting`, `running`, `succeeded`, `failed` or `conflict`.
    pub status: String,
    /// `automatic` (a push) or `manual`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Target region.
    pub target_region: String,
    /// Target namespace.
    pub target_namespace: String,
    /// Whether the rule overwrites.
    pub overwrite: bool,
    /// Who caused it (the pusher, or who started it by hand).
    pub operator: String,
    /// Queued (RFC 3339).
    pub created_at: String,
    /// Last attempt's start.
    pub started_at: Option<String>,
    /// End.
    pub finished_at: Option<String>,
    /// Seconds from start to end.
    pub duration_seconds: Option<f64>,
    /// Bytes copied between regions.
    pub bytes_copied: i64,
    /// Blobs copied.
    pub blobs_copied: i64,
    /// Blobs the target region already held.
    pub blobs_present: i64,
    /// Attempts.
    pub attempts: i64,
    /// Why it failed or conflicted.
    pub error: Option<String>,
    /// `sync` (between regions) or `replication` (with a remote registry).
    pub record_kind: String,
    /// For a replication task: its rule, run, remote and direction.
    pub replication: Option<ReplicationTaskJson>,
}

/// What makes a record a replication task with a remote registry; its
/// `repository` is then the local image (the source of a push, the
/// destination of a pull).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplicationTaskJson {
    /// The replication rule (absent when deleted since).
    pub rule: Option<i64>,
    /// The run (absent for tasks a push or a delete triggered).
    pub run: Option<i64>,
    /// The remote registry.
    pub remote: String,
    /// The repository on the remote.
    pub remote_repository: String,
    /// `push` or `pull`.
    pub direction: String,
    /// `copy` or `delete`.
    pub action: String,
}

impl From<SyncRecord> for SyncRecordJson {
    fn from(r: SyncRecord) -> Self {
        SyncRecordJson {
            id: r.id,
            rule: r.rule_id,
            repository: r.repo,
            tag: r.tag,
            digest: r.digest,
            status: r.status,
            kind: r.trigger,
            target_region: r.target_region,
            target_namespace: r.target_namespace,
            overwrite: r.overwrite,
            operator: r.operator,
            created_at: time(r.created_at),
            started_at: r.started_at.map(time),
            finished_at: r.finished_at.map(time),
            duration_seconds: match (r.started_at, r.finished_at) {
                (Some(s), Some(f)) => Some(f.saturating_sub(s) as f64 / 1000.0),
                _ => None,
            },
            bytes_copied: r.bytes_copied,
            blobs_copied: r.blobs_copied,
            blobs_present: r.blobs_present,
            attempts: r.attempts,
            error: r.error,
            record_kind: r.kind,
            replication: r.replication.map(|t| ReplicationTaskJson {
                rule: t.rule_id,
                run: t.run_id,
                remote: t.remote,
                remote_repository: t.remote_repo,
                direction: t.direction,
                action: t.action,
            }),
        }
    }
}

/// Which records to list, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// Source image, `namespace/name` (needs pull rights on it).
    #[param(
        pattern = "^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)+$",
        max_length = 255
    )]
    pub repository: Option<String>,
    /// Source images of this namespace (its members).
    #[param(
        pattern = "^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$",
        max_length = 255
    )]
    pub namespace: Option<String>,
    /// Only records in this state.
    pub status: Option<SyncStatusParam>,
    /// Created at or after (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Created before (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1_000_000_000)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// The states of a synchronization record.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatusParam {
    /// Queued.
    Waiting,
    /// Being copied.
    Running,
    /// Copied.
    Succeeded,
    /// Given up.
    Failed,
    /// The target's tag differs and the rule does not overwrite.
    Conflict,
}

impl SyncStatusParam {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SyncStatusParam::Waiting => "waiting",
            SyncStatusParam::Running => "running",
            SyncStatusParam::Succeeded => "succeeded",
            SyncStatusParam::Failed => "failed",
            SyncStatusParam::Conflict => "conflict",
        }
    }
}

/// A region of the platform, for platform administrators.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionJson {
    /// Name.
    pub name: String,
    /// Whether the node answering is in it.
    pub local: bool,
    /// Blobs its storage holds, by the metadata.
    pub blobs: i64,
    /// Their bytes.
    pub bytes: i64,
    /// Jobs waiting for its workers (replication backlog).
    pub jobs_waiting: i64,
    /// Jobs its workers run now.
    pub jobs_running: i64,
    /// Jobs given up after too many attempts.
    pub jobs_failed: i64,
}

/// Where a namespace's images are replicated.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replication {
    /// Region names; `null` for every region (the default), `[]` for none
    /// beyond the region each image is pushed in.
    pub regions: Option<Vec<String>>,
}

/// An image's synchronization rules.
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/repositories/{repo}/sync-rules", tag = "synchronization",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image name inside the namespace, slashes as %2F")),
    responses((status = 200, body = Vec<SyncRuleJson>), (status = 404, body = Problem)))]
pub(crate) async fn rules(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<Vec<SyncRuleJson>>> {
    let Path((ns, repo)) = path?;
    let rules = state
        .sync
        .rules(&caller.principal, &repo_name(&ns, &repo)?)
        .await?;
    Ok(Json(rules.into_iter().map(SyncRuleJson::from).collect()))
}

/// Set image synchronization: each new tag of the image is copied to the
/// same image name in the target namespace, its blobs placed in the target
/// region. For the image's namespace admins and accounts with Manage on
/// it, who must be allowed to push to the target.
#[utoipa::path(post, path = "/api/v1/namespaces/{ns}/repositories/{repo}/sync-rules", tag = "synchronization",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image name inside the namespace, slashes as %2F")),
    request_body(content = CreateSyncRule, content_type = "application/json"),
    responses((status = 201, body = SyncRuleJson), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn add_rule(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<CreateSyncRule>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<SyncRuleJson>)> {
    let actor = caller.account()?;
    let Path((ns, repo)) = path?;
    let Json(body) = body?;
    let rule = state
        .sync
        .add_rule(
            actor,
            &repo_name(&ns, &repo)?,
            &SyncRuleSpec {
                target_region: body.target_region,
                target_namespace: body.target_namespace,
                overwrite: body.overwrite,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(rule.into())))
}

/// Delete a synchronization rule (its records stay).
#[utoipa::path(delete, path = "/api/v1/namespaces/{ns}/repositories/{repo}/sync-rules/{id}", tag = "synchronization",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image name inside the namespace, slashes as %2F"),
        ("id" = i64, Path, description = "Rule id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn delete_rule(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String, i64)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path((ns, repo, id)) = path?;
    state
        .sync
        .delete_rule(actor, &repo_name(&ns, &repo)?, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Synchronize tags now by the image's rules: one tag, several, or every
/// tag (`all`), for images pushed before the rule existed.
#[utoipa::path(post, path = "/api/v1/namespaces/{ns}/repositories/{repo}/sync", tag = "synchronization",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image name inside the namespace, slashes as %2F")),
    request_body(content = StartSync, content_type = "application/json"),
    responses((status = 202, body = SyncStarted), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn start(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<StartSync>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<SyncStarted>)> {
    let actor = caller.account()?;
    let Path((ns, repo)) = path?;
    let Json(body) = body?;
    let tags = match (body.tags, body.all) {
        (Some(_), true) => {
            return Err(ApiError::invalid("give either tags or all, not both"));
        }
        (Some(tags), false) => SyncTags::Some(tags),
        (None, true) => SyncTags::All,
        (None, false) => {
            return Err(ApiError::invalid(
                r#"say which tags: {"tags": ["v1"]} or {"all": true}"#,
            ))
        }
    };
    let records = state
        .sync
        .sync_now(actor, &repo_name(&ns, &repo)?, body.rule, &tags)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(SyncStarted { records })))
}

/// Synchronization records, newest first, by image, namespace, status and
/// time. Without an image or namespace: platform administrators only.
#[utoipa::path(get, path = "/api/v1/sync-records", tag = "synchronization", params(RecordsQuery),
    responses((status = 200, body = Paged<SyncRecordJson>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn records(
    State(state): State<WebState>,
    caller: Caller,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> ApiResult<Json<Paged<SyncRecordJson>>> {
    caller.account()?;
    let Query(q) = query?;
    let paging = Paging::new(q.page, q.per_page)?;
    if let Some(repo) = &q.repository {
        let valid = berth_oci::RepoName::parse(repo).is_ok_and(|r| r.as_str() != r.namespace());
        if !valid {
            return Err(ApiError::invalid(format!(
                "repository {repo:?} is not an image name of the form namespace/name"
            )));
        }
    }
    if let Some(ns) = &q.namespace {
        if ns.contains('/') || berth_oci::RepoName::parse(ns).is_err() {
            return Err(ApiError::invalid(format!("invalid namespace name {ns:?}")));
        }
    }
    let query = SyncRecordQuery {
        repo: q.repository.clone(),
        namespace: q.namespace.clone(),
        status: q.status.map(|s| s.as_str().to_owned()),
        since: time_param("since", q.since.as_deref())?,
        until: time_param("until", q.until.as_deref())?,
        limit: paging.per_page,
        offset: (paging.page - 1).saturating_mul(paging.per_page),
        ..SyncRecordQuery::default()
    };
    let (items, total) = state.sync.records(&caller.principal, &query).await?;
    Ok(Json(Paged {
        items: items.into_iter().map(SyncRecordJson::from).collect(),
        total,
        page: paging.page,
        per_page: paging.per_page,
    }))
}

/// The platform's regions with their storage use and replication backlog
/// (platform administrators).
#[utoipa::path(get, path = "/api/v1/regions", tag = "synchronization",
    responses((status = 200, body = Vec<RegionJson>), (status = 403, body = Problem)))]
pub(crate) async fn regions(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<Vec<RegionJson>>> {
    let actor = caller.account()?;
    let out = state
        .management
        .regions(actor)
        .await?
        .into_iter()
        .map(|r| RegionJson {
            name: r.name,
            local: r.local,
            blobs: r.blobs,
            bytes: r.bytes,
            jobs_waiting: r.jobs_waiting,
            jobs_running: r.jobs_running,
            jobs_failed: r.jobs_failed,
        })
        .collect();
    Ok(Json(out))
}

/// The regions a namespace's images are copied to: region copies, made
/// on push and on demand (its members).
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/region-copies", tag = "synchronization",
    params(("ns" = String, Path, description = "Namespace name")),
    responses((status = 200, body = Replication), (status = 404, body = Problem)))]
pub(crate) async fn copy_regions(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Replication>> {
    let Path(ns) = path?;
    state.management.namespace(&caller.principal, &ns).await?;
    let regions = state.sync.copy_regions(&ns).await?;
    Ok(Json(Replication { regions }))
}

/// Choose the regions a namespace's images are copied to (namespace
/// admins). Images already copied elsewhere stay there.
#[utoipa::path(put, path = "/api/v1/namespaces/{ns}/region-copies", tag = "synchronization",
    params(("ns" = String, Path, description = "Namespace name")),
    request_body(content = Replication, content_type = "application/json"),
    responses((status = 200, body = Replication), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn set_copy_regions(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<Replication>, JsonRejection>,
) -> ApiResult<Json<Replication>> {
    let actor = caller.account()?;
    let Path(ns) = path?;
    let Json(body) = body?;
    let regions = state
        .sync
        .set_copy_regions(actor, &ns, body.regions)
        .await?;
    Ok(Json(Replication { regions }))
}

/// The former name of `GET /api/v1/namespaces/{ns}/region-copies`, kept
/// for existing clients.
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/replication", tag = "synchronization",
    params(("ns" = String, Path, description = "Namespace name")),
    responses((status = 200, body = Replication), (status = 404, body = Problem)))]
#[deprecated = "use GET /api/v1/namespaces/{ns}/region-copies"]
pub(crate) async fn replication(
    state: State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Replication>> {
    copy_regions(state, caller, path).await
}

/// The former name of `PUT /api/v1/namespaces/{ns}/region-copies`, kept
/// for existing clients.
#[utoipa::path(put, path = "/api/v1/namespaces/{ns}/replication", tag = "synchronization",
    params(("ns" = String, Path, description = "Namespace name")),
    request_body(content = Replication, content_type = "application/json"),
    responses((status = 200, body = Replication), (status = 403, body = Problem), (status = 404, body = Problem)))]
#[deprecated = "use PUT /api/v1/namespaces/{ns}/region-copies"]
pub(crate) async fn set_replication(
    state: State<WebState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<Replication>, JsonRejection>,
) -> ApiResult<Json<Replication>> {
    set_copy_regions(state, caller, path, body).await
}
