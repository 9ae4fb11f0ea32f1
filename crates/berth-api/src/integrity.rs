//! Integrity checks: start one (platform administrators), follow it, and
//! read what earlier checks and the background scrub found.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use berth_core::integrity::{CheckOptions, IntegrityError, IntegrityRun};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::gc::RunsQuery;
use crate::model::time;
use berth_web::WebState;

/// What to check.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCheck {
    /// Copy damaged or missing blobs back from a good copy in another
    /// region (default false: only report).
    #[serde(default)]
    pub repair: bool,
    /// Re-hash at most this many bytes a second (default: no limit).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub bytes_per_second: Option<i64>,
}

/// One problem a check found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemJson {
    /// damaged, missing, dangling or orphan.
    pub kind: String,
    /// The region whose storage it concerns (empty for the database).
    pub region: String,
    /// The blob or manifest digest.
    pub digest: String,
    /// What was found, and what was done about it.
    pub detail: String,
}

/// An integrity check.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrityRunJson {
    /// Run id.
    pub id: i64,
    /// What started it: schedule, cli or api.
    pub cause: String,
    /// Who started it.
    pub actor: String,
    /// Whether it repaired what it could.
    pub repair: bool,
    /// running, succeeded or failed.
    pub status: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// Last progress report (RFC 3339).
    pub updated_at: String,
    /// End (RFC 3339).
    pub finished_at: Option<String>,
    /// Blob copies re-hashed (one per region holding the blob).
    pub blobs_checked: i64,
    /// Bytes re-hashed.
    pub bytes_checked: i64,
    /// Stored blobs whose bytes no longer hash to their digest.
    pub damaged: i64,
    /// Blobs a region should hold and does not.
    pub missing: i64,
    /// Damaged or missing blobs copied back from a good copy.
    pub repaired: i64,
    /// Manifest references whose target is gone.
    pub dangling: i64,
    /// Stored objects no blob row knows (`berth gc --full` reclaims them).
    pub orphans: i64,
    /// The first problems found (all are counted, logged and audited).
    pub problems: Vec<ProblemJson>,
    /// Why it failed.
    pub error: Option<String>,
}

impl From<IntegrityRun> for IntegrityRunJson {
    fn from(r: IntegrityRun) -> Self {
        let c = r.counts;
        IntegrityRunJson {
            id: r.id,
            cause: r.cause,
            actor: r.actor,
            repair: r.repair,
            status: r.status,
            started_at: time(r.started_at),
            updated_at: time(r.updated_at),
            finished_at: r.finished_at.map(time),
            blobs_checked: c.blobs_checked,
            bytes_checked: c.bytes_checked,
            damaged: c.damaged,
            missing: c.missing,
            repaired: c.repaired,
            dangling: c.dangling,
            orphans: c.orphans,
            problems: r
                .problems
                .into_iter()
                .map(|p| ProblemJson {
                    kind: p.kind,
                    region: p.region,
                    digest: p.digest,
                    detail: p.detail,
                })
                .collect(),
            error: r.error,
        }
    }
}

impl From<IntegrityError> for ApiError {
    fn from(e: IntegrityError) -> Self {
        match e.fault() {
            Some(fault) => ApiError::fault(fault, &e),
            None => ApiError::internal(e),
        }
    }
}

/// Start an integrity check in the background (platform administrators):
/// every stored blob re-hashed in every region that claims it, dangling
/// references and orphaned objects found. Follow it with
/// `GET /api/v1/integrity/runs/{id}`. The body is required (`{}` only
/// reports).
#[utoipa::path(post, path = "/api/v1/integrity/runs", tag = "integrity",
    request_body(content = StartCheck, description = "What to check", content_type = "application/json"),
    responses((status = 202, body = IntegrityRunJson), (status = 400, body = Problem),
        (status = 403, body = Problem)))]
pub(crate) async fn start(
    State(state): State<WebState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<IntegrityRunJson>)> {
    let actor = caller.platform_admin("integrity checking")?;
    // As with collections: a request says what it wants, or nothing runs.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            r#"a JSON body is required: {} to check, {"repair": true} to check and repair"#,
        ));
    }
    let request: StartCheck = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?;
    if request.bytes_per_second.is_some_and(|b| b < 1) {
        return Err(ApiError::invalid("bytes_per_second must be at least 1"));
    }
    let run = state
        .integrity
        .spawn(CheckOptions {
            repair: request.repair,
            bytes_per_sec: request.bytes_per_second.map(|b| b as u64),
            cause: "api".into(),
            actor: actor.name().to_owned(),
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

/// Recent integrity checks and scrubs, newest first (platform administrators).
#[utoipa::path(get, path = "/api/v1/integrity/runs", tag = "integrity", params(RunsQuery),
    responses((status = 200, body = Vec<IntegrityRunJson>), (status = 403, body = Problem)))]
pub(crate) async fn runs(
    State(state): State<WebState>,
    caller: Caller,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<IntegrityRunJson>>> {
    caller.platform_admin("integrity checking")?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 100"));
    }
    let runs = state.integrity.runs(limit).await?;
    Ok(Json(runs.into_iter().map(IntegrityRunJson::from).collect()))
}

/// One integrity check, with what it found so far (platform administrators).
#[utoipa::path(get, path = "/api/v1/integrity/runs/{id}", tag = "integrity",
    params(("id" = i64, Path, description = "Run id")),
    responses((status = 200, body = IntegrityRunJson), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub(crate) async fn run(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<IntegrityRunJson>> {
    caller.platform_admin("integrity checking")?;
    let Path(id) = path?;
    match state.integrity.run_of(id).await? {
        Some(run) => Ok(Json(run.into())),
        None => Err(ApiError::not_found(format!("no integrity check {id}"))),
    }
}
