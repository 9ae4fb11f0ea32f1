//! Garbage collection for platform administrators: start a preview or a
//! collection, and follow each run's progress (rate, share done, time
//! left) and what it reclaimed.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_core::model::GcRun;
use berth_core::{gc_progress, DirectoryError, GcCause, GcError, GcOptions};
use berth_web::WebState;

use crate::extract::Posted;
use crate::respond::{back, html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

/// Runs listed.
const SHOWN: i64 = 20;

/// A run as the table shows it.
pub struct RunRow {
    pub id: i64,
    pub kind: &'static str,
    pub cause: String,
    pub actor: String,
    pub status: String,
    pub stage: String,
    pub started: String,
    pub duration: String,
    pub blobs: String,
    pub bytes: String,
    pub rate: String,
    pub percent: String,
    pub eta: String,
    pub other: String,
    pub error: String,
}

fn seconds(s: f64) -> String {
    let s = s.round() as i64;
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

impl RunRow {
    fn new(r: GcRun) -> Self {
        let p = gc_progress(&r);
        let c = r.counts;
        let end = r.finished_at.unwrap_or(r.updated_at);
        let blobs = if c.blobs_expected > 0 {
            format!("{} of {}", c.blobs_deleted, c.blobs_expected)
        } else {
            c.blobs_deleted.to_string()
        };
        RunRow {
            id: r.id,
            kind: match (r.dry_run, r.full_sweep) {
                (true, _) => "preview",
                (false, true) => "full collection",
                (false, false) => "collection",
            },
            cause: r.cause,
            actor: r.actor,
            status: r.status,
            stage: r.stage,
            started: when(r.started_at),
            duration: seconds(end.saturating_sub(r.started_at) as f64 / 1000.0),
            blobs,
            bytes: size(c.bytes_reclaimed),
            rate: match (p.blobs_per_second, p.bytes_per_second) {
                (Some(b), Some(s)) => format!("{b:.0} blobs/s, {}/s", size(s as i64)),
                (Some(b), None) => format!("{b:.0} blobs/s"),
                _ => "—".into(),
            },
            percent: p.percent.map(|x| format!("{x:.0}%")).unwrap_or_default(),
            eta: p.eta_seconds.map(seconds).unwrap_or_else(|| "—".into()),
            other: format!(
                "{} upload(s), {} untagged manifest(s), {} link(s), {} orphan(s) deleted; \
                 {} missing link(s) restored",
                c.uploads_expired,
                c.manifests_deleted,
                c.links_deleted,
                c.orphans_deleted,
                c.links_restored
            ),
            error: r.error.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "gc.html")]
pub struct GcPage {
    pub l: Layout,
    pub runs: Vec<RunRow>,
    /// A run is going on: the page reloads itself.
    pub running: bool,
}

fn forbidden() -> DirectoryError {
    DirectoryError::Forbidden("garbage collection is for platform administrators".into())
}

/// A collector's failure as the directory's errors carry it (a database
/// fault stays a fault, a storage one a registry fault).
fn page_error(e: GcError, viewer: &Viewer) -> PageError {
    let e = match e {
        GcError::Meta(m) => DirectoryError::Meta(m),
        GcError::Registry(r) => DirectoryError::Registry(r),
        GcError::Storage(b) => DirectoryError::Registry(b.into()),
        GcError::Running(id) => DirectoryError::Conflict(format!("garbage collection run {id}")),
        GcError::Aborted(why) => {
            tracing::error!(error = %why, "garbage collection task ended abnormally");
            return PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Try again; if it persists, ask your \
                 administrator to look at the server log.",
            )
            .for_viewer(viewer);
        }
    };
    PageError::from(e).for_viewer(viewer)
}

pub async fn page(
    State(state): State<WebState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    if !viewer.principal.is_platform_admin() {
        return Err(PageError::from(forbidden()).for_viewer(&viewer));
    }
    let runs = state
        .collector
        .runs(SHOWN)
        .await
        .map_err(|e| page_error(e, &viewer))?;
    Ok(html(
        GcPage {
            l: Layout::new(&viewer, "gc").messages(&q),
            running: runs.iter().any(|r| r.status == "running"),
            runs: runs.into_iter().map(RunRow::new).collect(),
        }
        .render(),
    ))
}

/// Start a preview (`dry_run`) or a collection in the background.
pub async fn start(State(state): State<WebState>, form: Posted) -> Response {
    let viewer = &form.viewer;
    if !viewer.principal.is_platform_admin() {
        return PageError::from(forbidden())
            .for_viewer(viewer)
            .into_response();
    }
    let dry_run = match form.get("kind") {
        "preview" => true,
        "collect" => false,
        _ => return back("/gc", "error", "choose a preview or a collection"),
    };
    let options = GcOptions {
        dry_run,
        full_sweep: form.checked("full"),
        cause: GcCause::Api,
        actor: viewer.name().to_owned(),
    };
    match state.collector.spawn(options).await {
        Ok(run) => back(
            "/gc",
            "notice",
            &format!(
                "{} {} started.",
                if dry_run { "Preview" } else { "Collection" },
                run.id
            ),
        ),
        Err(GcError::Running(id)) => back(
            "/gc",
            "error",
            &format!("run {id} is still going on this node"),
        ),
        Err(e) => page_error(e, viewer).into_response(),
    }
}
