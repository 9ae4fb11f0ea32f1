//! What console handlers read from queries and forms the same way: query
//! parameters and page numbers, the image a page is about, batch
//! selections and what a batch did, and a form action's outcome.

use std::collections::HashMap;

use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use berth_core::access::Role;
use berth_core::{DirectoryError, ImageView};
use berth_oci::RepoName;
use berth_web::WebState;

use crate::extract::Posted;
use crate::respond::{back, PageError};
use crate::viewer::Viewer;

pub(crate) type Q = Query<HashMap<String, String>>;

pub(crate) fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> &'a str {
    q.get(name).map(|s| s.trim()).unwrap_or("")
}

pub(crate) fn page_number(q: &HashMap<String, String>) -> i64 {
    param(q, "page").parse().unwrap_or(1).max(1)
}

pub(crate) fn host(state: &WebState) -> String {
    state.management.config().registry_host.clone()
}

/// Run a form action and go back to `to` with its outcome.
pub(crate) fn outcome(to: &str, result: Result<String, DirectoryError>) -> Response {
    match result {
        Ok(notice) => back(to, "notice", &notice),
        Err(e) if e.is_internal() => PageError::from(e).into_response(),
        Err(e) => back(to, "error", &e.to_string()),
    }
}

/// Most items one batch may name, as in the API.
const BATCH_MAX: usize = 100;

/// What a batch did, as one message: each item deleted or refused with its
/// reason. An internal failure ends the batch on an error page.
pub(crate) struct Batch {
    what: &'static str,
    deleted: Vec<String>,
    refused: Vec<(String, String)>,
    /// Said after the list of deleted items.
    pub(crate) note: String,
}

impl Batch {
    pub(crate) fn new(what: &'static str) -> Self {
        Batch {
            what,
            deleted: Vec::new(),
            refused: Vec::new(),
            note: String::new(),
        }
    }

    /// Record one item's result; an internal failure is returned instead.
    pub(crate) fn record<T>(
        &mut self,
        item: String,
        r: Result<T, DirectoryError>,
    ) -> Result<(), PageError> {
        match r {
            Ok(_) => self.deleted.push(item),
            Err(e) if e.is_internal() => return Err(PageError::from(e)),
            Err(e) => self.refused.push((item, e.to_string())),
        }
        Ok(())
    }

    pub(crate) fn respond(self, to: &str) -> Response {
        let mut message = String::new();
        if !self.deleted.is_empty() {
            message = format!(
                "Deleted {} {}(s): {}.",
                self.deleted.len(),
                self.what,
                self.deleted.join(", ")
            );
            message.push_str(&self.note);
        }
        if self.refused.is_empty() {
            return back(to, "notice", &message);
        }
        let refused: Vec<String> = self
            .refused
            .iter()
            .map(|(item, why)| format!("{item} ({why})"))
            .collect();
        message = format!("{message} Not deleted: {}.", refused.join("; "))
            .trim()
            .to_owned();
        back(to, "error", &message)
    }
}

/// The selection of a batch form: 1 to 100 names, else `None`.
pub(crate) fn selection(form: &Posted, field: &str) -> Option<Vec<String>> {
    let names = form.all(field);
    (!names.is_empty() && names.len() <= BATCH_MAX).then_some(names)
}

/// Back to `to`, saying the selection was empty or too large.
pub(crate) fn bad_selection(to: &str) -> Response {
    back(
        to,
        "error",
        &format!("Select 1 to {BATCH_MAX} items to delete."),
    )
}

/// The image an image page is about (`?image=`, inside namespace `ns`):
/// its name in the namespace, its full name and its summary; not found
/// when the viewer may not pull it.
pub(crate) async fn page_image(
    state: &WebState,
    viewer: &Viewer,
    ns: &str,
    q: &HashMap<String, String>,
) -> Result<(String, RepoName, ImageView), PageError> {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(viewer);
    let image = param(q, "image").to_owned();
    let repo = repo_name(ns, &image).map_err(err)?;
    let summary = state
        .management
        .image(&viewer.principal, &repo)
        .await
        .map_err(err)?;
    Ok((image, repo, summary))
}

/// The first 50 tags of an image by name (its per-tag tabs).
pub(crate) async fn first_tags(
    state: &WebState,
    viewer: &Viewer,
    repo: &RepoName,
) -> Result<Vec<berth_core::TagView>, PageError> {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(viewer);
    let filter = berth_core::ListFilter {
        name: None,
        sort: berth_core::model::TagSort::Name,
        descending: false,
        paging: berth_core::Paging::new(Some(1), Some(50)).map_err(err)?,
    };
    Ok(state
        .management
        .tags(&viewer.principal, repo, &filter)
        .await
        .map_err(err)?
        .items)
}

pub(crate) fn repo_name(ns: &str, image: &str) -> Result<RepoName, DirectoryError> {
    RepoName::parse(&format!("{ns}/{image}"))
        .map_err(|e| DirectoryError::Invalid(format!("invalid image name {image:?}: {e}")))
}

/// A role named in a form.
pub(crate) fn role(s: &str) -> Result<Role, DirectoryError> {
    Role::parse_input(s).map_err(DirectoryError::Invalid)
}
