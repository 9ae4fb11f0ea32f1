//! The namespace "Policies" tab: storage use against the quota, immutable
//! tag patterns, retention rules, and retention previews and runs.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use berth_core::policy::{NamespacePolicy, RetentionRule};
use berth_core::DirectoryError;
use berth_web::WebState;

use crate::extract::Posted;
use crate::respond::{back, html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

#[derive(Template)]
#[template(path = "policies.html")]
pub struct PoliciesPage {
    pub l: Layout,
    pub ns: String,
    pub used: String,
    pub quota: Option<String>,
    pub percent: Option<i64>,
    pub immutable_text: String,
    pub quota_text: String,
    pub rules_text: String,
    pub attach_sbom: bool,
    /// A retention preview: (image, tag, digest).
    pub preview: Option<Vec<(String, String, String)>>,
}

/// `10 GiB`, `500M`, `1024` (bytes) or empty (no quota).
pub fn parse_size(s: &str) -> Result<Option<i64>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: i64 = number.parse().map_err(|_| {
        format!("quota {s:?}: write a number of bytes, optionally with K, M, G or T")
    })?;
    let factor: i64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "quota {s:?}: unknown unit {other:?}; use K, M, G or T"
            ))
        }
    };
    n.checked_mul(factor)
        .map(Some)
        .ok_or_else(|| format!("quota {s:?} is too large"))
}

/// One rule per line: `repositories=PATTERN tags=PATTERN keep_last=N` (or
/// `keep_days=N`); the patterns default to `*`; `#` starts a comment.
pub fn parse_rules(text: &str) -> Result<Vec<RetentionRule>, String> {
    let mut rules = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut rule = RetentionRule {
            repositories: "*".into(),
            tags: "*".into(),
            keep_last: None,
            keep_days: None,
        };
        for word in line.split_whitespace() {
            let n = i + 1;
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("rule on line {n}: {word:?} is not key=value"))?;
            let number = || {
                value
                    .parse::<u32>()
                    .map_err(|_| format!("rule on line {n}: {key} needs a whole number"))
            };
            match key {
                "repositories" => rule.repositories = value.to_owned(),
                "tags" => rule.tags = value.to_owned(),
                "keep_last" => rule.keep_last = Some(number()?),
                "keep_days" => rule.keep_days = Some(number()?),
                other => {
                    return Err(format!(
                        "rule on line {n}: unknown key {other:?}; use repositories, tags, keep_last or keep_days"
                    ))
                }
            }
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// The rules as the form shows them.
pub fn rules_text(rules: &[RetentionRule]) -> String {
    rules
        .iter()
        .map(|r| {
            let keep = match (r.keep_last, r.keep_days) {
                (Some(n), _) => format!("keep_last={n}"),
                (None, Some(d)) => format!("keep_days={d}"),
                (None, None) => String::new(),
            };
            format!("repositories={} tags={} {keep}", r.repositories, r.tags)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn render(
    state: &WebState,
    viewer: &Viewer,
    ns: String,
    q: &HashMap<String, String>,
    preview: Option<Vec<(String, String, String)>>,
) -> PageResult {
    let view = state
        .management
        .policy(&viewer.principal, &ns)
        .await
        .map_err(|e| PageError::from(e).for_viewer(viewer))?;
    let p = view.policy;
    let page = PoliciesPage {
        l: Layout::new(viewer, "namespaces").messages(q),
        used: size(view.used_bytes),
        quota: p.quota_bytes.map(size),
        percent: p
            .quota_bytes
            .map(|quota| (view.used_bytes.saturating_mul(100) / quota.max(1)).min(100)),
        immutable_text: p.immutable_tags.join(", "),
        quota_text: p.quota_bytes.map(|q| q.to_string()).unwrap_or_default(),
        rules_text: rules_text(&p.retention),
        attach_sbom: p.attach_sbom,
        preview,
        ns,
    };
    Ok(html(page.render()))
}

pub async fn policies(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(ns): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    render(&state, &viewer, ns, &q, None).await
}

pub async fn save(State(state): State<WebState>, Path(ns): Path<String>, form: Posted) -> Response {
    let to = format!("/namespaces/{ns}/policies");
    // The quota is the platform's: others' forms leave it as it is.
    let quota = if form.viewer.principal.is_platform_admin() {
        parse_size(form.get("quota"))
    } else {
        match state.management.policy(&form.viewer.principal, &ns).await {
            Ok(view) => Ok(view.policy.quota_bytes),
            Err(e) if e.is_internal() => return PageError::from(e).into_response(),
            Err(e) => return back(&to, "error", &e.to_string()),
        }
    };
    let parsed = (|| {
        let immutable_tags = form
            .get("immutable_tags")
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Ok::<_, String>(NamespacePolicy {
            immutable_tags,
            quota_bytes: quota?,
            retention: parse_rules(form.get("retention"))?,
            attach_sbom: form.get("attach_sbom") == "on",
        })
    })();
    let policy = match parsed {
        Ok(p) => p,
        Err(e) => return back(&to, "error", &e),
    };
    match state
        .management
        .set_policy(&form.viewer.principal, &ns, &policy)
        .await
    {
        Ok(_) => back(&to, "notice", "Policies saved."),
        Err(e) if e.is_internal() => PageError::from(e).into_response(),
        Err(e) => back(&to, "error", &e.to_string()),
    }
}

pub async fn retention(
    State(state): State<WebState>,
    Path(ns): Path<String>,
    form: Posted,
) -> Response {
    let to = format!("/namespaces/{ns}/policies");
    let dry_run = form.get("action") != "run";
    let report = match state
        .management
        .run_retention(&form.viewer.principal, &ns, dry_run)
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_internal() => return PageError::from(e).into_response(),
        Err(e @ DirectoryError::NotFound(_)) => return PageError::from(e).into_response(),
        Err(e) => return back(&to, "error", &e.to_string()),
    };
    if !dry_run {
        let images = report.deleted.iter().filter(|d| d.1).count();
        return back(
            &to,
            "notice",
            &format!(
                "Retention deleted {} tag(s) and {images} image(s); {} tag(s) kept.",
                report.deleted.len(),
                report.kept
            ),
        );
    }
    let prefix = format!("{ns}/");
    let preview = report
        .deleted
        .into_iter()
        .map(|(t, _)| {
            let image = t.repo.strip_prefix(&prefix).unwrap_or(&t.repo).to_owned();
            (image, t.tag, t.digest)
        })
        .collect();
    let mut q = HashMap::new();
    q.insert(
        "notice".to_owned(),
        format!("Dry run: the rules would keep {} tag(s).", report.kept),
    );
    match render(&state, &form.viewer, ns, &q, Some(preview)).await {
        Ok(page) => page,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size(""), Ok(None));
        assert_eq!(parse_size("1024"), Ok(Some(1024)));
        assert_eq!(parse_size("10 GiB"), Ok(Some(10 << 30)));
        assert_eq!(parse_size("500M"), Ok(Some(500 << 20)));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5 parsecs").unwrap_err().contains("unit"));
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn rules_round_trip_through_text() {
        let text = "repositories=web/* tags=v* keep_last=10\n# a comment\nkeep_days=30\n";
        let rules = parse_rules(text).expect("rules");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].repositories, "web/*");
        assert_eq!(rules[0].keep_last, Some(10));
        assert_eq!(
            (rules[1].tags.as_str(), rules[1].keep_days),
            ("*", Some(30))
        );
        assert_eq!(parse_rules(&rules_text(&rules)).expect("again"), rules);
        assert!(parse_rules("keep_last").unwrap_err().contains("key=value"));
        assert!(parse_rules("keep_last=x")
            .unwrap_err()
            .contains("whole number"));
        assert!(parse_rules("colour=red")
            .unwrap_err()
            .contains("unknown key"));
    }
}
