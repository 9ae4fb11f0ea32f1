//! SBOMs: an image's inventory as SPDX 2.3 or CycloneDX 1.5 JSON, for
//! anyone who may pull the image.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_core::vulnerabilities::SbomFormat;
use berth_oci::Digest;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::params::repo_name;
use berth_web::WebState;

/// Which SBOM format.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SbomQuery {
    /// `spdx` (SPDX 2.3, the default) or `cyclonedx` (CycloneDX 1.5).
    #[param(pattern = "^(spdx|cyclonedx)$")]
    pub format: Option<String>,
}

/// While the inventory is not made yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct SbomPendingJson {
    /// `pending`.
    pub status: String,
    /// What to do.
    pub detail: String,
}

/// An image's package inventory as an SBOM (anyone who may pull it); 202
/// with `{"status": "pending"}` while the inventory is not made yet (try
/// again shortly).
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/repositories/{repo}/manifests/{digest}/sbom", tag = "vulnerabilities",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image path within the namespace"),
        ("digest" = String, Path, description = "Manifest digest"),
        SbomQuery),
    responses(
        (status = 200, description = "SPDX 2.3 or CycloneDX 1.5 JSON", content(
            (Object = "application/spdx+json"),
            (Object = "application/vnd.cyclonedx+json"))),
        (status = 202, body = SbomPendingJson, description = "The inventory is not made yet"),
        (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn sbom(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String, String)>, PathRejection>,
    query: Result<Query<SbomQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Path((ns, repo, digest)) = path?;
    let Query(q) = query?;
    let repo = repo_name(&ns, &repo)?;
    let digest = Digest::parse(&digest)
        .map_err(|e| ApiError::not_found(format!("no manifest {digest:?} ({e})")))?;
    let (format, content_type) = match q.format.as_deref() {
        None | Some("spdx") => (SbomFormat::Spdx, "application/spdx+json"),
        Some("cyclonedx") => (
            SbomFormat::CycloneDx,
            "application/vnd.cyclonedx+json; version=1.5",
        ),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "format {other:?}: use spdx or cyclonedx"
            )))
        }
    };
    let Some(doc) = state
        .management
        .vulnerabilities()
        .sbom(&caller.principal, &repo, &digest, format)
        .await?
    else {
        let pending = SbomPendingJson {
            status: "pending".into(),
            detail: format!("the inventory of {repo}@{digest} is not made yet; try again shortly"),
        };
        return Ok((StatusCode::ACCEPTED, Json(pending)).into_response());
    };
    Ok(([(header::CONTENT_TYPE, content_type)], doc.to_string()).into_response())
}
