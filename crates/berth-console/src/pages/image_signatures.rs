//! An image's "Signatures" tab: for each tag (the first page of 50), the
//! signatures of its digest, who signed and whether what the policies
//! governing the namespace trust verifies each, or why not.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use berth_core::DirectoryError;
use berth_web::WebState;

use crate::forms::{first_tags, page_image};
use crate::respond::{html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

/// One signature line: (source, verified, signer or problem).
pub type Line = (String, bool, String);

#[derive(Template)]
#[template(path = "image_signatures.html")]
pub struct ImageSignaturesPage {
    pub l: Layout,
    pub ns: String,
    pub image: String,
    pub image_q: String,
    pub repository: String,
    /// (tag, digest, signatures).
    pub tags: Vec<(String, String, Vec<Line>)>,
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
    let mut seen: HashMap<String, Vec<Line>> = HashMap::new();
    let mut tags = Vec::new();
    for t in list {
        let digest = t.summary.digest.to_string();
        if !seen.contains_key(&digest) {
            let checks = state
                .management
                .pull_policies()
                .signatures(&viewer.principal, &repo, &t.summary.digest)
                .await
                .map_err(err)?;
            let lines = checks
                .into_iter()
                .map(|c| match c.signer {
                    Some(s) => (c.source, true, format!("signed by {s}")),
                    None => (c.source, false, c.problem.unwrap_or_default()),
                })
                .collect();
            seen.insert(digest.clone(), lines);
        }
        tags.push((t.summary.name, digest.clone(), seen[&digest].clone()));
    }
    Ok(html(
        ImageSignaturesPage {
            l: Layout::new(&viewer, "images").messages(&q),
            image_q: enc(&image),
            repository: repo.to_string(),
            image,
            ns,
            tags,
        }
        .render(),
    ))
}
