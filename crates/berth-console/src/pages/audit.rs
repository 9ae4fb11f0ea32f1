//! The audit log, filtered and paged.

use askama::Template;
use axum::extract::{Query, State};
use berth_core::{AuditFilter, DirectoryError};
use berth_web::WebState;

use crate::forms::*;
use crate::respond::{html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

pub async fn audit(State(state): State<WebState>, viewer: Viewer, Query(q): Q) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let text = |k: &str| Some(param(&q, k).to_owned()).filter(|s| !s.is_empty());
    let filter = AuditFilter {
        namespace: text("namespace"),
        actor: text("actor"),
        action: text("action"),
        before_id: param(&q, "before").parse().ok(),
        limit: Some(50),
        ..AuditFilter::default()
    };
    let entries = state
        .management
        .audit(&viewer.principal, &filter)
        .await
        .map_err(err)?;
    let older = (entries.len() == 50).then(|| {
        format!(
            "/audit?namespace={}&actor={}&action={}&before={}",
            enc(param(&q, "namespace")),
            enc(param(&q, "actor")),
            enc(param(&q, "action")),
            entries.last().map(|e| e.id).unwrap_or_default()
        )
    });
    let page = AuditPage {
        l: Layout::new(&viewer, "audit").messages(&q),
        namespace: param(&q, "namespace").to_owned(),
        actor: param(&q, "actor").to_owned(),
        action: param(&q, "action").to_owned(),
        entries: entries
            .into_iter()
            .map(|e| AuditRow {
                at: when(e.at),
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e.detail,
                client: e.client_addr.unwrap_or_default(),
            })
            .collect(),
        older,
    };
    Ok(html(page.render()))
}
