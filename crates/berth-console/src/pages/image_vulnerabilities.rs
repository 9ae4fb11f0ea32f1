//! An image's "Vulnerabilities" tab: for each tag (the first page of 50),
//! its advisories counted per severity and, for an image, each finding
//! (advisory, package, installed and fixed version).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use berth_core::vulnerabilities::{Summary, SummaryStatus};
use berth_core::DirectoryError;
use berth_web::WebState;

use crate::forms::{first_tags, page_image};
use crate::respond::{html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

/// One finding as shown.
#[derive(Clone)]
pub struct Finding {
    pub advisory: String,
    pub severity: String,
    pub ecosystem: String,
    pub package: String,
    pub installed: String,
    pub fixed: Option<String>,
}

/// One tag's row.
pub struct Row {
    pub tag: String,
    pub digest: String,
    /// `ready`, `pending` or `not applicable`.
    pub status: &'static str,
    /// (severity, count) of those present, most severe first.
    pub counts: Vec<(&'static str, usize)>,
    pub findings: Vec<Finding>,
}

#[derive(Template)]
#[template(path = "image_vulnerabilities.html")]
pub struct ImageVulnerabilitiesPage {
    pub l: Layout,
    pub ns: String,
    pub image: String,
    pub image_q: String,
    pub repository: String,
    pub rows: Vec<Row>,
}

fn counts(s: &Summary) -> Vec<(&'static str, usize)> {
    [
        ("critical", s.critical),
        ("high", s.high),
        ("medium", s.medium),
        ("low", s.low),
        ("unknown", s.unknown),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .collect()
}

pub async fn page(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(ns): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let (image, repo, _) = page_image(&state, &viewer, &ns, &q).await?;
    let list = first_tags(&state, &viewer, &repo).await?;
    let vulnerabilities = state.management.vulnerabilities();
    let mut seen: HashMap<String, (Summary, Vec<Finding>)> = HashMap::new();
    let mut rows = Vec::new();
    for t in list {
        let digest = t.summary.digest.to_string();
        if !seen.contains_key(&digest) {
            let summary = vulnerabilities
                .summary(&viewer.principal, &repo, &t.summary.digest)
                .await
                .map_err(err)?;
            // An artifact has no findings; an index's are its images' (its
            // summary sums them), and it has none of its own.
            let findings = match summary.status {
                SummaryStatus::NotApplicable => Vec::new(),
                _ => match vulnerabilities
                    .image(&viewer.principal, &repo, &t.summary.digest)
                    .await
                {
                    Ok(report) => report.findings,
                    Err(DirectoryError::Invalid(_)) => Vec::new(),
                    Err(e) => return Err(err(e)),
                },
            }
            .into_iter()
            .map(|f| Finding {
                advisory: f.advisory_id,
                severity: f.severity,
                ecosystem: f.ecosystem,
                package: f.package,
                installed: f.version,
                fixed: f.fixed,
            })
            .collect();
            seen.insert(digest.clone(), (summary, findings));
        }
        let (summary, findings) = &seen[&digest];
        rows.push(Row {
            tag: t.summary.name,
            digest: digest.clone(),
            status: match summary.status {
                SummaryStatus::Ready => "ready",
                SummaryStatus::Pending => "pending",
                SummaryStatus::NotApplicable => "not applicable",
            },
            counts: counts(summary),
            findings: findings.clone(),
        });
    }
    Ok(html(
        ImageVulnerabilitiesPage {
            l: Layout::new(&viewer, "images").messages(&q),
            image_q: enc(&image),
            repository: repo.to_string(),
            image,
            ns,
            rows,
        }
        .render(),
    ))
}
