//! Namespace policies: immutable tag patterns, the storage quota with the
//! namespace's use, and retention rules, with on-demand (and dry) runs.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::Json;
use berth_core::policy::{NamespacePolicy, RetentionRule};
use berth_core::{PolicyView, RetentionReport};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use berth_web::WebState;

/// A retention rule: keep the `keep_last` most recently pushed or pulled
/// matching tags of each repository, or those pushed or pulled within
/// `keep_days` days (exactly one of the two). Tags in the scope of some rule
/// and retained by none are deleted; other tags are untouched.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRuleJson {
    /// Pattern of repository paths within the namespace (`*` any run, `?` one character; default `*`).
    #[serde(default = "everything")]
    pub repositories: String,
    /// Pattern of tags (default `*`).
    #[serde(default = "everything")]
    pub tags: String,
    /// Keep this many most recently active matching tags per repository (1 to 100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100_000)]
    pub keep_last: Option<u32>,
    /// Keep matching tags pushed or pulled within this many days (1 to 36500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 36_500)]
    pub keep_days: Option<u32>,
}

fn everything() -> String {
    "*".into()
}

/// A namespace's policies.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// Patterns of tags that can be neither overwritten nor deleted (e.g. `v*`, `release-?`).
    #[serde(default)]
    pub immutable_tags: Vec<String>,
    /// Most bytes of distinct blobs the namespace may hold; null for no quota.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub quota_bytes: Option<i64>,
    /// Retention rules.
    #[serde(default)]
    pub retention: Vec<RetentionRuleJson>,
    /// Attach each image's SBOM (SPDX 2.3, from its inventory) as an OCI
    /// referrer of the image once it is inventoried.
    #[serde(default)]
    pub attach_sbom: bool,
}

/// A namespace's policies and its storage use.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyJson {
    /// Patterns of tags that can be neither overwritten nor deleted.
    pub immutable_tags: Vec<String>,
    /// The storage quota in bytes, if any.
    pub quota_bytes: Option<i64>,
    /// Bytes of distinct blobs the namespace holds (each blob once).
    pub used_bytes: i64,
    /// Retention rules.
    pub retention: Vec<RetentionRuleJson>,
    /// Whether each image's SBOM is attached as a referrer.
    pub attach_sbom: bool,
}

impl From<PolicyView> for PolicyJson {
    fn from(v: PolicyView) -> Self {
        PolicyJson {
            immutable_tags: v.policy.immutable_tags,
            quota_bytes: v.policy.quota_bytes,
            used_bytes: v.used_bytes,
            attach_sbom: v.policy.attach_sbom,
            retention: v
                .policy
                .retention
                .into_iter()
                .map(|r| RetentionRuleJson {
                    repositories: r.repositories,
                    tags: r.tags,
                    keep_last: r.keep_last,
                    keep_days: r.keep_days,
                })
                .collect(),
        }
    }
}

/// Run the rules now, or only list what they would delete. `dry_run` is
/// required, so that a request can never delete tags by leaving it out.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRun {
    /// Only list the tags that would be deleted (`true`), or delete them (`false`).
    pub dry_run: bool,
}

/// A tag retention deleted (or would delete).
#[derive(Debug, Serialize, ToSchema)]
pub struct RetainedOut {
    /// Image (repository).
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Manifest digest.
    pub digest: String,
    /// It was the image's last tag, so the image went too.
    pub image_deleted: bool,
}

/// What a retention run did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionJson {
    /// Whether nothing was deleted.
    pub dry_run: bool,
    /// Tags deleted (or that would be).
    pub deleted: Vec<RetainedOut>,
    /// Tags kept.
    pub kept: usize,
}

impl From<RetentionReport> for RetentionJson {
    fn from(r: RetentionReport) -> Self {
        RetentionJson {
            dry_run: r.dry_run,
            kept: r.kept,
            deleted: r
                .deleted
                .into_iter()
                .map(|(t, image_deleted)| RetainedOut {
                    repository: t.repo,
                    tag: t.tag,
                    digest: t.digest,
                    image_deleted,
                })
                .collect(),
        }
    }
}

/// A namespace's policies and storage use (its members).
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/policies", tag = "namespaces",
    params(("ns" = String, Path, description = "Namespace name")),
    responses((status = 200, body = PolicyJson), (status = 404, body = Problem)))]
pub(crate) async fn get(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<PolicyJson>> {
    let actor = caller.account()?;
    let Path(ns) = ns?;
    Ok(Json(state.management.policy(actor, &ns).await?.into()))
}

/// Replace a namespace's policies (its administrators).
#[utoipa::path(put, path = "/api/v1/namespaces/{ns}/policies", tag = "namespaces",
    params(("ns" = String, Path, description = "Namespace name")),
    request_body = PolicyBody,
    responses((status = 200, body = PolicyJson), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn put(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
    body: Result<Json<PolicyBody>, JsonRejection>,
) -> ApiResult<Json<PolicyJson>> {
    let actor = caller.account()?;
    let Path(ns) = ns?;
    let Json(body) = body?;
    let policy = NamespacePolicy {
        immutable_tags: body.immutable_tags,
        quota_bytes: body.quota_bytes,
        retention: body
            .retention
            .into_iter()
            .map(|r| RetentionRule {
                repositories: r.repositories,
                tags: r.tags,
                keep_last: r.keep_last,
                keep_days: r.keep_days,
            })
            .collect(),
        attach_sbom: body.attach_sbom,
    };
    Ok(Json(
        state
            .management
            .set_policy(actor, &ns, &policy)
            .await?
            .into(),
    ))
}

/// Apply the namespace's retention rules now (its administrators); with
/// `dry_run`, list exactly the tags that would be deleted.
#[utoipa::path(post, path = "/api/v1/namespaces/{ns}/retention/run", tag = "namespaces",
    params(("ns" = String, Path, description = "Namespace name")),
    request_body = RetentionRun,
    responses((status = 200, body = RetentionJson), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn run_retention(
    State(state): State<WebState>,
    caller: Caller,
    ns: Result<Path<String>, PathRejection>,
    body: Result<Json<RetentionRun>, JsonRejection>,
) -> ApiResult<Json<RetentionJson>> {
    let actor = caller.account()?;
    let Path(ns) = ns?;
    let Json(body) = body?;
    let report = state
        .management
        .run_retention(actor, &ns, body.dry_run)
        .await?;
    Ok(Json(report.into()))
}
