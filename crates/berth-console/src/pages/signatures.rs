//! The namespace "Signatures" tab: the platform's signature policy (read
//! only here), the namespace's own (its administrators set it), and a dry
//! run listing the current tags the policies would refuse.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use berth_core::pull_policy::{KeySetting, SignaturePolicy, SignatureSettings};
use berth_core::DirectoryError;
use berth_signature::Mode;
use berth_web::WebState;

use crate::extract::Posted;
use crate::respond::{back, html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

/// A policy as the page shows it.
pub struct PolicyLine {
    pub mode: String,
    /// (name, kind, fingerprint).
    pub keys: Vec<(String, String, String)>,
    pub tags: String,
    pub by: String,
}

fn line(p: &SignaturePolicy) -> PolicyLine {
    PolicyLine {
        mode: p.mode.as_str().to_owned(),
        keys: p
            .keys
            .iter()
            .map(|k| {
                (
                    k.name.clone(),
                    k.key.kind().as_str().to_owned(),
                    k.key.fingerprint().to_owned(),
                )
            })
            .collect(),
        tags: if p.settings.tags.is_empty() {
            "every image".into()
        } else {
            p.settings.tags.join(", ")
        },
        by: format!("{} by {}", when(p.updated_at), p.updated_by),
    }
}

/// A dry-run row: (image, tag, digest, reason).
pub type Row = (String, String, String, String);

#[derive(Template)]
#[template(path = "signatures.html")]
pub struct SignaturesPage {
    pub l: Layout,
    pub ns: String,
    pub platform: Option<PolicyLine>,
    pub own: Option<PolicyLine>,
    pub mode: String,
    pub keys_text: String,
    pub tags_text: String,
    /// Dry run: (checked, refused, audited), when asked for.
    pub dry_run: Option<(usize, Vec<Row>, Vec<Row>)>,
}

/// Keys as typed: a name on its own line, then its PEM block; repeated.
pub fn parse_keys(text: &str) -> Result<Vec<KeySetting>, String> {
    let mut keys = Vec::new();
    let mut name: Option<String> = None;
    let mut block: Option<Vec<&str>> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(b) = block.as_mut() {
            b.push(trimmed);
            if trimmed.starts_with("-----END ") {
                let pem = b.join("\n");
                let n = name
                    .take()
                    .ok_or("each key needs a name on the line before its PEM block")?;
                keys.push(KeySetting {
                    name: n,
                    public_key: pem,
                });
                block = None;
            }
        } else if trimmed.starts_with("-----BEGIN ") {
            block = Some(vec![trimmed]);
        } else if !trimmed.is_empty() {
            if let Some(n) = &name {
                return Err(format!("key {n:?} has no PEM block after its name"));
            }
            name = Some(trimmed.to_owned());
        }
    }
    if block.is_some() {
        return Err("a PEM block has no -----END line".into());
    }
    if let Some(n) = name {
        return Err(format!("key {n:?} has no PEM block after its name"));
    }
    Ok(keys)
}

fn keys_text(p: &SignaturePolicy) -> String {
    p.settings
        .keys
        .iter()
        .map(|k| format!("{}\n{}", k.name, k.public_key.trim()))
        .collect::<Vec<_>>()
        .join("\n\n")
}

pub async fn page(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(ns): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let policies = state.management.pull_policies();
    let own = policies
        .get(&viewer.principal, Some(&ns))
        .await
        .map_err(err)?;
    let platform = policies.get(&viewer.principal, None).await.map_err(err)?;
    let dry_run = if q.contains_key("dry_run") {
        let d = policies
            .dry_run(&viewer.principal, &ns)
            .await
            .map_err(err)?;
        let rows = |v: Vec<berth_core::pull_policy::DryRunRow>| {
            v.into_iter()
                .map(|r| (r.repository, r.tag, r.digest, r.reason))
                .collect()
        };
        Some((d.checked, rows(d.refused), rows(d.audited)))
    } else {
        None
    };
    Ok(html(
        SignaturesPage {
            l: Layout::new(&viewer, "namespaces").messages(&q),
            mode: own.as_ref().map_or("off", |p| p.mode.as_str()).to_owned(),
            keys_text: own.as_ref().map(keys_text).unwrap_or_default(),
            tags_text: own
                .as_ref()
                .map(|p| p.settings.tags.join(", "))
                .unwrap_or_default(),
            platform: platform.as_ref().map(line),
            own: own.as_ref().map(line),
            dry_run,
            ns,
        }
        .render(),
    ))
}

pub async fn save(State(state): State<WebState>, Path(ns): Path<String>, form: Posted) -> Response {
    let to = format!("/namespaces/{ns}/signatures");
    let Some(mode) = Mode::parse(form.get("mode")) else {
        return back(&to, "error", "choose off, audit or enforce");
    };
    let keys = match parse_keys(form.get("keys")) {
        Ok(k) => k,
        Err(e) => return back(&to, "error", &e),
    };
    let tags = form
        .get("tags")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    match state
        .management
        .pull_policies()
        .set(
            &form.viewer.principal,
            Some(&ns),
            mode,
            &SignatureSettings { keys, tags },
        )
        .await
    {
        Ok(p) => back(
            &to,
            "notice",
            &format!("Signature policy saved: {}.", p.mode.as_str()),
        ),
        Err(e) if e.is_internal() => PageError::from(e).into_response(),
        Err(e) => back(&to, "error", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_as_name_then_pem_block() {
        let text = "release\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n\n  ci  \n-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----\n";
        let keys = parse_keys(text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].name, "ci");
        assert_eq!(
            keys[0].public_key,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
        );
        assert!(parse_keys("").unwrap().is_empty());
        assert!(
            parse_keys("-----BEGIN PUBLIC KEY-----\nA\n-----END PUBLIC KEY-----")
                .unwrap_err()
                .contains("needs a name")
        );
        assert!(parse_keys("a\nb").unwrap_err().contains("no PEM block"));
        assert!(parse_keys("a\n-----BEGIN PUBLIC KEY-----\nA")
            .unwrap_err()
            .contains("no -----END"));
    }
}
