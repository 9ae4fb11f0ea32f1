//! Garbage collection: start a run (platform administrators), follow its
//! progress, and read what earlier runs reclaimed.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_core::model::GcRun;
use berth_core::{GcCause, GcError, GcOptions};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::model::time;
use berth_web::WebState;

/// What to collect. `dry_run` is required, so that a request can never
/// delete anything by leaving it out.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartGc {
    /// Only report what would be reclaimed (`true`), or collect (`false`).
    pub dry_run: bool,
    /// Also list the storage for objects no metadata knows.
    #[serde(default)]
    pub full: bool,
}

/// A garbage collection run.
#[derive(Debug, Serialize, ToSchema)]
pub struct GcRunJson {
    /// Run id.
    pub id: i64,
    /// What started it: schedule, cli or api.
    pub cause: String,
    /// Who started it.
    pub actor: String,
    /// Whether it only reported what it would reclaim.
    pub dry_run: bool,
    /// Whether it also listed the storage.
    pub full: bool,
    /// running, finished, failed or abandoned.
    pub status: String,
    /// The step it is in: uploads, manifests, accounting, links, blobs, sweep, preview, done.
    pub stage: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// Last progress report (RFC 3339).
    pub updated_at: String,
    /// End (RFC 3339).
    pub finished_at: Option<String>,
    /// Seconds from start to end (or to the last report while running).
    pub duration_seconds: f64,
    /// Idle upload sessions discarded.
    pub uploads_expired: i64,
    /// Untagged manifests deleted (or that would be).
    pub manifests_deleted: i64,
    /// Repository links to unreferenced blobs removed.
    pub links_deleted: i64,
    /// Missing repository blob links restored (blobs a manifest references
    /// that its repository no longer linked; each is audited).
    pub links_restored: i64,
    /// Blobs whose bytes were deleted.
    pub blobs_deleted: i64,
    /// Storage objects no metadata knew, deleted by a full run.
    pub orphans_deleted: i64,
    /// Bytes reclaimed (or reclaimable, for a dry run).
    pub bytes_reclaimed: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// How fast its blob step goes and how long it has left.
    pub progress: GcProgressJson,
}

/// A run's blob step: what it expected, its rate and the time it has left
/// (`null` until the step begins, and for dry runs).
#[derive(Debug, Serialize, ToSchema)]
pub struct GcProgressJson {
    /// Blobs the step expected to delete when it began (an estimate:
    /// pushes and deletes go on meanwhile).
    pub blobs_expected: i64,
    /// Their bytes.
    pub bytes_expected: i64,
    /// When the step began (RFC 3339).
    pub started_at: Option<String>,
    /// When it ended (RFC 3339).
    pub ended_at: Option<String>,
    /// Blobs deleted a second.
    pub blobs_per_second: Option<f64>,
    /// Bytes reclaimed a second.
    pub bytes_per_second: Option<f64>,
    /// Share of the expected blobs deleted (0–100).
    pub percent: Option<f64>,
    /// Seconds left at the rate so far (0 once the step ended).
    pub eta_seconds: Option<f64>,
}

impl From<GcRun> for GcRunJson {
    fn from(r: GcRun) -> Self {
        let p = berth_core::gc_progress(&r);
        let progress = GcProgressJson {
            blobs_expected: r.counts.blobs_expected,
            bytes_expected: r.counts.bytes_expected,
            started_at: r.blobs_started_at.map(time),
            ended_at: r.blobs_ended_at.map(time),
            blobs_per_second: p.blobs_per_second,
            bytes_per_second: p.bytes_per_second,
            percent: p.percent,
            eta_seconds: p.eta_seconds,
        };
        let end = r.finished_at.unwrap_or(r.updated_at);
        GcRunJson {
            id: r.id,
            cause: r.cause,
            actor: r.actor,
            dry_run: r.dry_run,
            full: r.full_sweep,
            status: r.status,
            stage: r.stage,
            started_at: time(r.started_at),
            updated_at: time(r.updated_at),
            finished_at: r.finished_at.map(time),
            duration_seconds: end.saturating_sub(r.started_at) as f64 / 1000.0,
            uploads_expired: r.counts.uploads_expired,
            manifests_deleted: r.counts.manifests_deleted,
            links_deleted: r.counts.links_deleted,
            links_restored: r.counts.links_restored,
            blobs_deleted: r.counts.blobs_deleted,
            orphans_deleted: r.counts.orphans_deleted,
            bytes_reclaimed: r.counts.bytes_reclaimed,
            error: r.error,
            progress,
        }
    }
}

/// How many runs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// Newest runs first, at most this many (1–100, default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

impl From<GcError> for ApiError {
    fn from(e: GcError) -> Self {
        match e {
            GcError::Running(_) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            other => match other.fault() {
                Some(fault) => ApiError::fault(fault, &other),
                None => ApiError::internal(other),
            },
        }
    }
}

/// Start a garbage collection in the background (platform administrators).
/// Follow it with `GET /api/v1/gc/runs/{id}`. The body is required: without
/// one (or without `dry_run`) the request is refused with 400 and nothing runs.
#[utoipa::path(post, path = "/api/v1/gc/runs", tag = "garbage collection",
    request_body(content = StartGc, description = "Which collection to run", content_type = "application/json"),
    responses((status = 202, body = GcRunJson), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn start(
    State(state): State<WebState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<GcRunJson>)> {
    let actor = caller.platform_admin("garbage collection")?;
    // A collection deletes data: it is never started by a request that
    // does not say which kind it wants.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            r#"a JSON body is required: {"dry_run": true} to preview, {"dry_run": false} to collect"#,
        ));
    }
    let request: StartGc = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?;
    let run = state
        .collector
        .spawn(GcOptions {
            dry_run: request.dry_run,
            full_sweep: request.full,
            cause: GcCause::Api,
            actor: actor.name().to_owned(),
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

/// Recent garbage collection runs, newest first (platform administrators).
#[utoipa::path(get, path = "/api/v1/gc/runs", tag = "garbage collection", params(RunsQuery),
    responses((status = 200, body = Vec<GcRunJson>), (status = 403, body = Problem)))]
pub(crate) async fn runs(
    State(state): State<WebState>,
    caller: Caller,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<GcRunJson>>> {
    caller.platform_admin("garbage collection")?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 100"));
    }
    let runs = state.collector.runs(limit).await?;
    Ok(Json(runs.into_iter().map(GcRunJson::from).collect()))
}

/// One garbage collection run, with its progress while it runs (platform
/// administrators).
#[utoipa::path(get, path = "/api/v1/gc/runs/{id}", tag = "garbage collection",
    params(("id" = i64, Path, description = "Run id")),
    responses((status = 200, body = GcRunJson), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub(crate) async fn run(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<GcRunJson>> {
    caller.platform_admin("garbage collection")?;
    let Path(id) = path?;
    match state.collector.run_record(id).await? {
        Some(run) => Ok(Json(run.into())),
        None => Err(ApiError::not_found(format!(
            "no garbage collection run {id}"
        ))),
    }
}
