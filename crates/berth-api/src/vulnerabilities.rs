//! Vulnerabilities: an image's inventory and findings, advisory imports
//! (OSV documents, platform administrators), and the images an advisory
//! affects or that hold a package, across the namespaces one may see.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use berth_core::vulnerabilities::{Answer, ImportReport};
use berth_oci::Digest;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::model::time;
use crate::params::repo_name;
use berth_web::WebState;

/// A package an advisory affects in an image.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingJson {
    /// The advisory (`GHSA-…`, `CVE-…`, `DSA-…`).
    pub advisory: String,
    /// `unknown`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The package's ecosystem (`Debian:12`, `PyPI`, `npm`, `Go`, `crates.io`).
    pub ecosystem: String,
    /// The package.
    pub package: String,
    /// Its installed version.
    pub installed: String,
    /// The first version that fixes it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// The file it was read from.
    pub path: String,
    /// When Berth first found it (RFC 3339).
    pub found: String,
}

/// An installed package.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackageJson {
    /// Ecosystem.
    pub ecosystem: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Source package, for distribution packages built from another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The file it was read from, or `sbom:<digest>` for a package named
    /// only by an SBOM attached to the image.
    pub path: String,
}

/// An SBOM attached to the image (a referrer) whose packages joined its
/// inventory.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachedSbomJson {
    /// The referrer's manifest digest.
    pub digest: String,
    /// `SPDX-2.3`, `CycloneDX-1.5`, … (empty when it was not read).
    pub format: String,
    /// The tools that made it, as it names them.
    pub tools: Vec<String>,
    /// Packages it added (those the layers did not already show).
    pub packages: usize,
    /// Entries it names without a usable package URL.
    pub unnamed: usize,
    /// Why it was not read, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an image holds and which advisories affect it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageVulnerabilitiesJson {
    /// `pending` (its inventory is not made yet) or `ready`.
    pub status: String,
    /// The distribution (`debian 12`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// A layer could not be read whole (bounds, a corrupt stream): the
    /// inventory may miss packages.
    pub incomplete: bool,
    /// Findings, most severe first.
    pub findings: Vec<FindingJson>,
    /// Installed packages.
    pub packages: Vec<PackageJson>,
    /// SBOMs attached to the image, read into its inventory.
    pub attached_sboms: Vec<AttachedSbomJson>,
}

/// An image's inventory and findings (anyone who may pull it).
#[utoipa::path(get, path = "/api/v1/namespaces/{ns}/repositories/{repo}/manifests/{digest}/vulnerabilities", tag = "vulnerabilities",
    params(("ns" = String, Path, description = "Namespace name"),
        ("repo" = String, Path, description = "Image path within the namespace"),
        ("digest" = String, Path, description = "Manifest digest")),
    responses((status = 200, body = ImageVulnerabilitiesJson),
        (status = 400, body = Problem, description = "Not an image with filesystem layers (an index or an artifact)"),
        (status = 404, body = Problem)))]
pub(crate) async fn image(
    State(state): State<WebState>,
    caller: Caller,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> ApiResult<Json<ImageVulnerabilitiesJson>> {
    let Path((ns, repo, digest)) = path?;
    let repo = repo_name(&ns, &repo)?;
    let digest = Digest::parse(&digest)
        .map_err(|e| ApiError::not_found(format!("no manifest {digest:?} ({e})")))?;
    let report = state
        .management
        .vulnerabilities()
        .image(&caller.principal, &repo, &digest)
        .await?;
    let findings = report
        .findings
        .into_iter()
        .map(|f| FindingJson {
            advisory: f.advisory_id,
            severity: f.severity,
            ecosystem: f.ecosystem,
            package: f.package,
            installed: f.version,
            fixed: f.fixed,
            path: f.path,
            found: time(f.found_at),
        })
        .collect();
    Ok(Json(match report.inventory {
        None => ImageVulnerabilitiesJson {
            status: "pending".into(),
            os: None,
            incomplete: false,
            findings,
            packages: Vec::new(),
            attached_sboms: Vec::new(),
        },
        Some(inv) => ImageVulnerabilitiesJson {
            status: "ready".into(),
            os: inv.os.map(|o| format!("{} {}", o.id, o.version_id)),
            incomplete: inv.incomplete,
            findings,
            packages: inv
                .packages
                .into_iter()
                .map(|p| PackageJson {
                    ecosystem: p.ecosystem,
                    name: p.name,
                    version: p.version,
                    source: p.source,
                    path: p.path,
                })
                .collect(),
            attached_sboms: inv
                .attached
                .into_iter()
                .map(|a| AttachedSbomJson {
                    digest: a.digest,
                    format: a.format,
                    tools: a.tools,
                    packages: a.packages,
                    unnamed: a.unnamed,
                    error: a.error,
                })
                .collect(),
        },
    }))
}

/// A document an import refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusedJson {
    /// Its position in `advisories`.
    pub index: usize,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportJson {
    /// Advisories new or changed.
    pub imported: usize,
    /// Advisories already stored as they are.
    pub unchanged: usize,
    /// Documents refused.
    pub refused: Vec<RefusedJson>,
    /// Images re-matched (only those holding a package the new advisories name).
    pub images_matched: usize,
    /// Findings that are new.
    pub new_findings: usize,
}

impl From<ImportReport> for ImportJson {
    fn from(r: ImportReport) -> Self {
        ImportJson {
            imported: r.imported,
            unchanged: r.unchanged,
            refused: r
                .invalid
                .into_iter()
                .map(|(index, reason)| RefusedJson { index, reason })
                .collect(),
            images_matched: r.images_matched,
            new_findings: r.new_findings,
        }
    }
}

/// Advisories to import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// OSV documents as osv.dev, GitHub, PyPA, Go, RustSec, Debian, Ubuntu
    /// and Alpine publish them (each is checked on its own: a bad one is
    /// refused, the others imported). At most 10,000 a request (400 past
    /// that) within the 1 MiB body limit (413 past that).
    #[schema(value_type = Vec<Object>)]
    pub advisories: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Import advisories in the OSV format (platform administrators). Only
/// the images holding a package they name are re-matched.
#[utoipa::path(post, path = "/api/v1/advisories", tag = "vulnerabilities",
    request_body = ImportBody,
    responses((status = 200, body = ImportJson), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn import(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<ImportBody>, JsonRejection>,
) -> ApiResult<Json<ImportJson>> {
    let actor = caller.account()?;
    state.management.vulnerabilities().may_import(actor)?;
    let Json(body) = body?;
    let documents: Vec<Vec<u8>> = body
        .advisories
        .iter()
        .map(|d| {
            serde_json::Value::Object(d.clone())
                .to_string()
                .into_bytes()
        })
        .collect();
    let report = state
        .management
        .vulnerabilities()
        .import(actor, &documents)
        .await?;
    Ok(Json(report.into()))
}

/// An image in an answer, in one repository.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageHitJson {
    /// The repository (`namespace/name`).
    pub repository: String,
    /// The manifest digest.
    pub digest: String,
    /// Its tags in that repository.
    pub tags: Vec<String>,
    /// The package's ecosystem.
    pub ecosystem: String,
    /// The package.
    pub package: String,
    /// Its installed version.
    pub installed: String,
    /// The first fixed version (advisory answers), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// The severity (advisory answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

/// Images matching a question, in the repositories the caller may pull
/// from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImagesAnswerJson {
    /// The images (one row per repository and package).
    pub images: Vec<ImageHitJson>,
    /// More images matched than an answer holds (1000).
    pub truncated: bool,
}

impl From<Answer> for ImagesAnswerJson {
    fn from(a: Answer) -> Self {
        ImagesAnswerJson {
            images: a
                .images
                .into_iter()
                .map(|h| ImageHitJson {
                    repository: h.repository,
                    digest: h.digest,
                    tags: h.tags,
                    ecosystem: h.ecosystem,
                    package: h.package,
                    installed: h.installed,
                    fixed: h.fixed,
                    severity: h.severity,
                })
                .collect(),
            truncated: a.truncated,
        }
    }
}

/// The images an advisory affects, across the namespaces the caller may
/// pull from.
#[utoipa::path(get, path = "/api/v1/advisories/{id}/images", tag = "vulnerabilities",
    params(("id" = String, Path, description = "Advisory id (GHSA-…, CVE-…, DSA-…)")),
    responses((status = 200, body = ImagesAnswerJson), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn affected(
    State(state): State<WebState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ImagesAnswerJson>> {
    let actor = caller.account()?;
    let Path(id) = id?;
    let answer = state
        .management
        .vulnerabilities()
        .affected_by(actor, &id)
        .await?;
    Ok(Json(answer.into()))
}

/// Which package to look for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PackageQuery {
    /// The package's name (as its ecosystem writes it).
    #[param(min_length = 1, max_length = 214)]
    pub name: String,
    /// Its ecosystem (`PyPI`, `npm`, `Go`, `crates.io`, `Maven`, `Debian`,
    /// `Debian:12`, `Alpine`, …); any when absent.
    #[param(max_length = 64)]
    pub ecosystem: Option<String>,
    /// Only installed versions below this one (compared as the ecosystem
    /// orders versions).
    #[param(max_length = 128)]
    pub below: Option<String>,
}

/// The images holding a package (below a version, when given), across
/// the namespaces the caller may pull from.
#[utoipa::path(get, path = "/api/v1/images/by-package", tag = "vulnerabilities",
    params(PackageQuery),
    responses((status = 200, body = ImagesAnswerJson), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(crate) async fn by_package(
    State(state): State<WebState>,
    caller: Caller,
    query: Result<Query<PackageQuery>, QueryRejection>,
) -> ApiResult<Json<ImagesAnswerJson>> {
    let actor = caller.account()?;
    let Query(q) = query?;
    for (what, value, max) in [
        ("name", Some(&q.name), 214),
        ("ecosystem", q.ecosystem.as_ref(), 64),
        ("below", q.below.as_ref(), 128),
    ] {
        if value.is_some_and(|v| v.chars().count() > max) {
            return Err(ApiError::invalid(format!(
                "{what} is longer than {max} characters"
            )));
        }
    }
    let answer = state
        .management
        .vulnerabilities()
        .holding(
            actor,
            q.ecosystem.as_deref().filter(|e| !e.is_empty()),
            &q.name,
            q.below.as_deref().filter(|b| !b.is_empty()),
        )
        .await?;
    Ok(Json(answer.into()))
}
