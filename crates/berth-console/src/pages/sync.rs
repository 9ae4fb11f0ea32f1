//! The image page's synchronization tab: its rules with the "Set image
//! synchronization" dialog, manual synchronization, and the
//! synchronization records; and the regions column of the tag list.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use berth_core::model::SyncRecordQuery;
use berth_core::platform::{SyncRuleSpec, SyncTags};
use berth_core::{DirectoryError, Page, Paging, TagView};
use berth_oci::RepoName;
use berth_web::WebState;

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

const STATUSES: [&str; 5] = ["waiting", "running", "succeeded", "failed", "conflict"];

/// A rule row.
pub struct RuleRow {
    pub id: i64,
    pub target_region: String,
    pub target_namespace: String,
    pub overwrite: bool,
    pub author: String,
    pub created: String,
}

/// A record row.
pub struct RecordRow {
    pub id: i64,
    pub tag: String,
    pub digest: String,
    pub short_digest: String,
    pub status: String,
    pub kind: String,
    pub started: String,
    pub duration: String,
    pub target_region: String,
    pub target_namespace: String,
    pub operator: String,
    pub bytes: String,
    pub blobs_copied: i64,
    pub blobs_present: i64,
    pub attempts: i64,
    pub error: String,
}

#[derive(Template)]
#[template(path = "sync.html")]
pub struct SyncPage {
    pub l: Layout,
    pub ns: String,
    pub image: String,
    pub image_q: String,
    pub repository: String,
    pub may_manage: bool,
    pub regions: Vec<String>,
    pub rules: Vec<RuleRow>,
    pub records: Vec<RecordRow>,
    pub statuses: Vec<&'static str>,
    pub status: String,
    pub pager: Pager,
}

/// Tag rows with the regions each image is whole in (several regions).
pub(crate) async fn with_regions(
    state: &WebState,
    repo: &RepoName,
    tags: Vec<TagView>,
) -> Result<Vec<TagRow>, DirectoryError> {
    let registry = state.management.registry();
    let mut rows = Vec::with_capacity(tags.len());
    for tag in tags {
        let mut row = TagRow::from(tag);
        if registry.regions().is_multi() {
            row.regions = registry
                .image_availability(repo.as_str(), &row.digest)
                .await?
                .into_iter()
                .map(|a| (a.region, a.available))
                .collect();
        }
        rows.push(row);
    }
    Ok(rows)
}

pub async fn sync_page(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(ns): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    // The image must be visible: its summary says so.
    let (image, repo, _) = page_image(&state, &viewer, &ns, &q).await?;
    let status = param(&q, "status").to_owned();
    if !status.is_empty() && !STATUSES.contains(&status.as_str()) {
        return Err(err(DirectoryError::Invalid(format!(
            "unknown status {status:?}"
        ))));
    }
    let paging = Paging::new(Some(page_number(&q)), Some(50)).map_err(err)?;
    let rules = state
        .sync
        .rules(&viewer.principal, &repo)
        .await
        .map_err(err)?;
    let (records, total) = state
        .sync
        .records(
            &viewer.principal,
            &SyncRecordQuery {
                repo: Some(repo.to_string()),
                status: (!status.is_empty()).then(|| status.clone()),
                limit: paging.per_page,
                offset: (paging.page - 1) * paging.per_page,
                ..SyncRecordQuery::default()
            },
        )
        .await
        .map_err(err)?;
    let may_manage = state
        .sync
        .may_manage(&viewer.principal, &repo)
        .await
        .map_err(err)?;
    let page = Page::<()> {
        items: Vec::new(),
        total,
        page: paging.page,
        per_page: paging.per_page,
    };
    let view = SyncPage {
        l: Layout::new(&viewer, "images").messages(&q),
        pager: Pager::new(
            &page,
            &format!(
                "/namespaces/{ns}/sync?image={}&status={}",
                enc(&image),
                enc(&status)
            ),
        ),
        regions: state
            .management
            .registry()
            .regions()
            .all()
            .iter()
            .map(|r| r.name.clone())
            .collect(),
        rules: rules
            .into_iter()
            .map(|r| RuleRow {
                id: r.id,
                target_region: r.target_region,
                target_namespace: r.target_namespace,
                overwrite: r.overwrite,
                author: r.author,
                created: when(r.created_at),
            })
            .collect(),
        records: records
            .into_iter()
            .map(|r| RecordRow {
                id: r.id,
                short_digest: r.digest.chars().take(19).collect(),
                digest: r.digest,
                tag: r.tag,
                status: r.status,
                kind: r.trigger,
                started: when_opt(r.started_at.or(Some(r.created_at))),
                duration: match (r.started_at, r.finished_at) {
                    (Some(s), Some(f)) => format!("{:.1} s", f.saturating_sub(s) as f64 / 1000.0),
                    _ => "–".to_owned(),
                },
                target_region: r.target_region,
                target_namespace: r.target_namespace,
                operator: r.operator,
                bytes: size(r.bytes_copied),
                blobs_copied: r.blobs_copied,
                blobs_present: r.blobs_present,
                attempts: r.attempts,
                error: r.error.unwrap_or_default(),
            })
            .collect(),
        statuses: STATUSES.to_vec(),
        status,
        may_manage,
        repository: repo.to_string(),
        image_q: enc(&image),
        image,
        ns,
    };
    Ok(html(view.render()))
}

fn sync_url(ns: &str, image: &str) -> String {
    format!("/namespaces/{ns}/sync?image={}", enc(image))
}

pub async fn add_rule(
    State(state): State<WebState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let image = form.get("image").to_owned();
    let to = sync_url(&ns, &image);
    let result = async {
        let repo = repo_name(&ns, &image)?;
        let rule = state
            .sync
            .add_rule(
                &form.viewer.principal,
                &repo,
                &SyncRuleSpec {
                    target_region: form.get("target_region").to_owned(),
                    target_namespace: form.get("target_namespace").to_owned(),
                    overwrite: form.get("overwrite") == "yes",
                },
            )
            .await?;
        Ok(format!(
            "New tags of {image} will be copied to {}/{} in region {}.",
            rule.target_namespace, image, rule.target_region
        ))
    }
    .await;
    outcome(&to, result)
}

fn rule_id(form: &Posted) -> Result<i64, DirectoryError> {
    form.get("rule")
        .parse()
        .map_err(|_| DirectoryError::Invalid("no rule chosen".into()))
}

pub async fn delete_rule(
    State(state): State<WebState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let image = form.get("image").to_owned();
    let to = sync_url(&ns, &image);
    let result = async {
        let repo = repo_name(&ns, &image)?;
        state
            .sync
            .delete_rule(&form.viewer.principal, &repo, rule_id(&form)?)
            .await?;
        Ok("Rule deleted; its records stay.".to_owned())
    }
    .await;
    outcome(&to, result)
}

pub async fn run_sync(
    State(state): State<WebState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let image = form.get("image").to_owned();
    let to = sync_url(&ns, &image);
    let result = async {
        let repo = repo_name(&ns, &image)?;
        let listed: Vec<String> = form
            .get("tags")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let tags = if listed.is_empty() {
            SyncTags::All
        } else {
            SyncTags::Some(listed)
        };
        let ids = state
            .sync
            .sync_now(&form.viewer.principal, &repo, Some(rule_id(&form)?), &tags)
            .await?;
        Ok(format!("{} synchronization(s) queued.", ids.len()))
    }
    .await;
    outcome(&to, result)
}
