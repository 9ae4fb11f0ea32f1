//! Replication with remote registries (platform administrators): rules,
//! starting a run by hand, runs with their outcome, and tasks (records of
//! the one record model, shown like synchronization records).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_core::model::run_status;
use berth_core::model::{ReplicationRule, ReplicationRun, SyncRecordQuery};
use berth_core::platform::{rule_filters, Filters, PatternSet, RuleSpec};
use berth_core::Paging;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::model::{time, Paged};
use crate::sync::{SyncRecordJson, SyncStatusParam};
use berth_web::WebState;

/// Glob patterns (`*` any run of characters, `?` one) to include (none:
/// everything) and exclude.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatternsJson {
    /// A name must match one of these (when any are given).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub include: Vec<String>,
    /// ... and none of these.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub exclude: Vec<String>,
}

/// What a rule covers.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FiltersJson {
    /// Source repository names (`team/*`, `library/alpine`).
    #[serde(default)]
    pub repositories: PatternsJson,
    /// Tags (`v*`, `latest`).
    #[serde(default)]
    pub tags: PatternsJson,
}

impl From<Filters> for FiltersJson {
    fn from(f: Filters) -> Self {
        FiltersJson {
            repositories: PatternsJson {
                include: f.repositories.include,
                exclude: f.repositories.exclude,
            },
            tags: PatternsJson {
                include: f.tags.include,
                exclude: f.tags.exclude,
            },
        }
    }
}

impl From<FiltersJson> for Filters {
    fn from(f: FiltersJson) -> Self {
        Filters {
            repositories: PatternSet {
                include: f.repositories.include,
                exclude: f.repositories.exclude,
            },
            tags: PatternSet {
                include: f.tags.include,
                exclude: f.tags.exclude,
            },
        }
    }
}

/// Which way a rule copies.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// This registry to the remote.
    Push,
    /// The remote to this registry.
    Pull,
}

/// When a rule runs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Only when started (`POST .../run`).
    #[default]
    Manual,
    /// Every push of a covered tag (push rules), in the push's
    /// transaction; and every deletion when deletions are replicated.
    OnPush,
    /// Every `interval_seconds`.
    Schedule,
}

/// A replication rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleJson {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `push` or `pull`.
    pub direction: String,
    /// The remote registry (`GET /api/v1/remotes`).
    pub remote: String,
    /// What it covers.
    pub filters: FiltersJson,
    /// Pull: the local namespace (and path) copies go to. Push: the path
    /// prefix on the remote (empty: the source's names).
    pub destination: String,
    /// Leading path components dropped from source names before the
    /// destination is put in front (-1: all but the last).
    pub flatten: i64,
    /// Overwrite a differing destination tag; when false it is left alone
    /// and the task ends as a `conflict`.
    #[serde(rename = "override")]
    pub overwrite: bool,
    /// Replicate deletions (push rules on push: a deleted tag or image is
    /// deleted on the remote; pull runs: local tags the remote no longer
    /// has are deleted).
    pub replicate_deletions: bool,
    /// Copy the manifests that refer to each copied one (signatures,
    /// SBOMs: the referrers API).
    pub referrers: bool,
    /// Bandwidth limit per task, KiB/s (0: none).
    pub bandwidth_kib: i64,
    /// `manual`, `on_push` or `schedule`.
    pub trigger: String,
    /// Seconds between scheduled runs.
    pub interval_seconds: Option<i64>,
    /// The next scheduled run (RFC 3339).
    pub next_run_at: Option<String>,
    /// Disabled rules neither trigger nor run on schedule.
    pub enabled: bool,
    /// Who made it.
    pub author: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

impl From<ReplicationRule> for RuleJson {
    fn from(r: ReplicationRule) -> Self {
        RuleJson {
            filters: rule_filters(&r).into(),
            id: r.id,
            name: r.name,
            description: r.description,
            direction: r.direction,
            remote: r.remote,
            destination: r.destination,
            flatten: r.flatten,
            overwrite: r.overwrite,
            replicate_deletions: r.deletions,
            referrers: r.referrers,
            bandwidth_kib: r.bandwidth / 1024,
            trigger: r.trigger,
            interval_seconds: r.interval_secs,
            next_run_at: r.next_run_at.map(time),
            enabled: r.enabled,
            author: r.author,
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
        }
    }
}

/// A rule to create, or the full new state of one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    /// Unique name: 1 to 64 lower-case letters, digits, `-`, `_` or `.`.
    #[schema(pattern = "^[a-z0-9._-]{1,64}$", min_length = 1, max_length = 64)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
    /// Which way it copies.
    pub direction: Direction,
    /// The remote registry.
    #[schema(max_length = 64)]
    pub remote: String,
    /// What it covers (default: everything).
    #[serde(default)]
    pub filters: FiltersJson,
    /// Pull: a local namespace (required). Push: a path prefix on the
    /// remote (default: none).
    #[serde(default)]
    #[schema(max_length = 255)]
    pub destination: String,
    /// Leading path components to drop (-1: all but the last; default 0).
    #[serde(default)]
    #[schema(minimum = -1, maximum = 16)]
    pub flatten: i64,
    /// Overwrite differing destination tags (default true).
    #[serde(default = "yes", rename = "override")]
    pub overwrite: bool,
    /// Replicate deletions (default false).
    #[serde(default)]
    pub replicate_deletions: bool,
    /// Copy referrers such as signatures too (default false).
    #[serde(default)]
    pub referrers: bool,
    /// KiB/s per task (default 0: no limit).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub bandwidth_kib: i64,
    /// When it runs (default manual).
    #[serde(default)]
    pub trigger: Trigger,
    /// Seconds between scheduled runs (schedule only; at least 10).
    #[schema(minimum = 10, maximum = 31_622_400)]
    pub interval_seconds: Option<i64>,
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl RuleBody {
    fn spec(self) -> RuleSpec {
        RuleSpec {
            name: self.name,
            description: self.description,
            direction: match self.direction {
                Direction::Push => "push",
                Direction::Pull => "pull",
            }
            .to_owned(),
            remote: self.remote,
            filters: self.filters.into(),
            destination: self.destination,
            flatten: self.flatten,
            overwrite: self.overwrite,
            deletions: self.replicate_deletions,
            referrers: self.referrers,
            bandwidth: self
                .bandwidth_kib
                .clamp(-1, 10_000_000)
                .saturating_mul(1024),
            trigger: match self.trigger {
                Trigger::Manual => "manual",
                Trigger::OnPush => "on_push",
                Trigger::Schedule => "schedule",
            }
            .to_owned(),
            interval_secs: self.interval_seconds,
            enabled: self.enabled,
        }
    }
}

/// How a run's tasks stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunTasksJson {
    /// Tasks made.
    pub total: i64,
    /// Queued or waiting to retry.
    pub waiting: i64,
    /// Being carried out.
    pub running: i64,
    /// Done.
    pub succeeded: i64,
    /// Given up.
    pub failed: i64,
    /// Left alone (the destination differs, the rule does not override).
    pub conflict: i64,
    /// Bytes transferred.
    pub bytes: i64,
}

/// A run of a rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunJson {
    /// Id.
    pub id: i64,
    /// The rule (absent when deleted since).
    pub rule: Option<i64>,
    /// The rule's name.
    pub rule_name: String,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// Who started it.
    pub operator: String,
    /// `listing` (finding what to copy), `running`, `succeeded`, `failed`
    /// (listing failed, or a task did) or `conflict` (a task was left alone).
    pub status: String,
    /// Why listing failed.
    pub error: Option<String>,
    /// Started (RFC 3339).
    pub created_at: String,
    /// When its tasks were made.
    pub listed_at: Option<String>,
    /// Its tasks.
    pub tasks: RunTasksJson,
}

impl From<ReplicationRun> for RunJson {
    fn from(r: ReplicationRun) -> Self {
        let t = r.tasks;
        let status = match r.status.as_str() {
            run_status::LISTING => "listing",
            run_status::FAILED => "failed",
            _ if t.waiting + t.running > 0 => "running",
            _ if t.failed > 0 => "failed",
            _ if t.conflict > 0 => "conflict",
            _ => "succeeded",
        };
        RunJson {
            id: r.id,
            rule: r.rule_id,
            rule_name: r.rule_name,
            trigger: r.trigger,
            operator: r.operator,
            status: status.to_owned(),
            error: r.error,
            created_at: time(r.created_at),
            listed_at: r.listed_at.map(time),
            tasks: RunTasksJson {
                total: t.total,
                waiting: t.waiting,
                running: t.running,
                succeeded: t.succeeded,
                failed: t.failed,
                conflict: t.conflict,
                bytes: t.bytes,
            },
        }
    }
}

/// A run started.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    /// The run's id.
    pub run: i64,
}

/// Which runs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// Runs of this rule.
    #[param(minimum = 1)]
    pub rule: Option<i64>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1_000_000_000)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Which tasks to list, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TasksQuery {
    /// Tasks of this run.
    #[param(minimum = 1)]
    pub run: Option<i64>,
    /// Tasks of this rule.
    #[param(minimum = 1)]
    pub rule: Option<i64>,
    /// Only tasks in this state.
    pub status: Option<SyncStatusParam>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1_000_000_000)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Ids start at 1.
fn positive_id(name: &str, id: Option<i64>) -> Result<(), ApiError> {
    match id {
        Some(i) if i < 1 => Err(ApiError::invalid(format!(
            "{name} must be an id (1 or more)"
        ))),
        _ => Ok(()),
    }
}

/// Replication rules (platform administrators).
#[utoipa::path(get, path = "/api/v1/replication/rules", tag = "replication",
    responses((status = 200, body = Vec<RuleJson>), (status = 403, body = Problem)))]
pub(crate) async fn rules(
    State(state): State<WebState>,
    caller: Caller,
) -> ApiResult<Json<Vec<RuleJson>>> {
    let actor = caller.account()?;
    let rules = state.replications.rules(actor).await?;
    Ok(Json(rules.into_iter().map(RuleJson::from).collect()))
}

/// Create a replication rule (platform administrators).
#[utoipa::path(post, path = "/api/v1/replication/rules", tag = "replication",
    request_body(content = RuleBody, content_type = "application/json"),
    responses((status = 201, body = RuleJson), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn create(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<RuleBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<RuleJson>)> {
    let actor = caller.account()?;
    let Json(b) = body?;
    let rule = state.replications.create(actor, &b.spec()).await?;
    Ok((StatusCode::CREATED, Json(rule.into())))
}

/// A replication rule.
#[utoipa::path(get, path = "/api/v1/replication/rules/{id}", tag = "replication",
    params(("id" = i64, Path, description = "Rule id", minimum = 1)),
    responses((status = 200, body = RuleJson), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn get_one(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<RuleJson>> {
    let actor = caller.account()?;
    let Path(id) = path?;
    Ok(Json(state.replications.rule(actor, id).await?.into()))
}

/// Replace a replication rule's settings.
#[utoipa::path(put, path = "/api/v1/replication/rules/{id}", tag = "replication",
    params(("id" = i64, Path, description = "Rule id", minimum = 1)),
    request_body(content = RuleBody, content_type = "application/json"),
    responses((status = 200, body = RuleJson), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn update(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
    body: Result<Json<RuleBody>, JsonRejection>,
) -> ApiResult<Json<RuleJson>> {
    let actor = caller.account()?;
    let Path(id) = path?;
    let Json(b) = body?;
    Ok(Json(
        state
            .replications
            .update(actor, id, &b.spec())
            .await?
            .into(),
    ))
}

/// Delete a replication rule (its runs and tasks stay on record).
#[utoipa::path(delete, path = "/api/v1/replication/rules/{id}", tag = "replication",
    params(("id" = i64, Path, description = "Rule id", minimum = 1)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn delete(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<StatusCode> {
    let actor = caller.account()?;
    let Path(id) = path?;
    state.replications.delete(actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start a run of a rule now: a job lists what it covers and queues a task
/// per tag.
#[utoipa::path(post, path = "/api/v1/replication/rules/{id}/run", tag = "replication",
    params(("id" = i64, Path, description = "Rule id", minimum = 1)),
    responses((status = 202, body = RunStarted), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn run(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<(StatusCode, Json<RunStarted>)> {
    let actor = caller.account()?;
    let Path(id) = path?;
    let run = state.replications.run_now(actor, id).await?;
    Ok((StatusCode::ACCEPTED, Json(RunStarted { run })))
}

/// Runs, newest first.
#[utoipa::path(get, path = "/api/v1/replication/runs", tag = "replication",
    params(RunsQuery),
    responses((status = 200, body = Paged<RunJson>), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn runs(
    State(state): State<WebState>,
    caller: Caller,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> ApiResult<Json<Paged<RunJson>>> {
    let actor = caller.account()?;
    let Query(q) = query?;
    let paging = Paging::new(q.page, q.per_page)?;
    positive_id("rule", q.rule)?;
    let (items, total) = state
        .replications
        .runs(
            actor,
            q.rule,
            paging.per_page,
            (paging.page - 1).saturating_mul(paging.per_page),
        )
        .await?;
    Ok(Json(Paged {
        items: items.into_iter().map(RunJson::from).collect(),
        total,
        page: paging.page,
        per_page: paging.per_page,
    }))
}

/// A run, with its tasks counted.
#[utoipa::path(get, path = "/api/v1/replication/runs/{id}", tag = "replication",
    params(("id" = i64, Path, description = "Run id", minimum = 1)),
    responses((status = 200, body = RunJson), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn run_one(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<RunJson>> {
    let actor = caller.account()?;
    let Path(id) = path?;
    Ok(Json(state.replications.run(actor, id).await?.into()))
}

/// Replication tasks (of a run, of a rule, or all), newest first.
#[utoipa::path(get, path = "/api/v1/replication/tasks", tag = "replication",
    params(TasksQuery),
    responses((status = 200, body = Paged<SyncRecordJson>), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn tasks(
    State(state): State<WebState>,
    caller: Caller,
    query: Result<Query<TasksQuery>, QueryRejection>,
) -> ApiResult<Json<Paged<SyncRecordJson>>> {
    let actor = caller.account()?;
    let Query(q) = query?;
    let paging = Paging::new(q.page, q.per_page)?;
    positive_id("run", q.run)?;
    positive_id("rule", q.rule)?;
    let (items, total) = state
        .replications
        .tasks(
            actor,
            SyncRecordQuery {
                run: q.run,
                replication_rule: q.rule,
                status: q.status.map(|s| s.as_str().to_owned()),
                limit: paging.per_page,
                offset: (paging.page - 1).saturating_mul(paging.per_page),
                ..SyncRecordQuery::default()
            },
        )
        .await?;
    Ok(Json(Paged {
        items: items.into_iter().map(SyncRecordJson::from).collect(),
        total,
        page: paging.page,
        per_page: paging.per_page,
    }))
}
