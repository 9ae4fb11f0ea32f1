//! Namespace policies (pure): immutable tag patterns, a storage quota and
//! retention rules, their validation, and the retention decision.
//!
//! Patterns are globs (`*` any run, `?` one character). Retention rules are
//! *retain* rules, as in Harbor: a tag is in a rule's scope when its
//! repository (the path after the namespace) and its name match the rule's
//! patterns; a tag in the scope of at least one rule is deleted unless one
//! of those rules retains it. Tags in no rule's scope, and immutable tags,
//! are never deleted by retention.

use std::collections::HashMap;

use berth_meta::{PolicyRecord, TagFacts};
use berth_oci::{first_match, glob_match, validate_pattern};
use serde::{Deserialize, Serialize};

/// Most immutable-tag patterns per namespace.
pub const MAX_IMMUTABLE_PATTERNS: usize = 50;
/// Most retention rules per namespace.
pub const MAX_RETENTION_RULES: usize = 20;

const DAY_MS: i64 = 86_400_000;

/// One retention rule: keep the `keep_last` most recently pushed or pulled
/// matching tags of each repository, or those pushed or pulled within
/// `keep_days` days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Pattern of repository paths within the namespace (`*` for all).
    #[serde(default = "everything")]
    pub repositories: String,
    /// Pattern of tags (`*` for all).
    #[serde(default = "everything")]
    pub tags: String,
    /// Keep this many most recently active matching tags per repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Keep matching tags pushed or pulled within this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_days: Option<u32>,
}

fn everything() -> String {
    "*".into()
}

/// A namespace's policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespacePolicy {
    /// Patterns of tags that cannot be overwritten or deleted.
    pub immutable_tags: Vec<String>,
    /// Most bytes of distinct blobs the namespace may hold.
    pub quota_bytes: Option<i64>,
    /// Retention rules.
    pub retention: Vec<RetentionRule>,
    /// Attach each image's SBOM (SPDX 2.3, made from its inventory) as a
    /// referrer, so that tools reading referrers find it.
    pub attach_sbom: bool,
}

impl NamespacePolicy {
    /// Check every pattern, number and count; the message names the problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.immutable_tags.len() > MAX_IMMUTABLE_PATTERNS {
            return Err(format!(
                "at most {MAX_IMMUTABLE_PATTERNS} immutable tag patterns"
            ));
        }
        for p in &self.immutable_tags {
            validate_pattern(p).map_err(|e| format!("immutable tags: {e}"))?;
        }
        if let Some(q) = self.quota_bytes {
            if q <= 0 {
                return Err("the storage quota must be a positive number of bytes".into());
            }
        }
        if self.retention.len() > MAX_RETENTION_RULES {
            return Err(format!("at most {MAX_RETENTION_RULES} retention rules"));
        }
        for (i, rule) in self.retention.iter().enumerate() {
            let n = i + 1;
            validate_pattern(&rule.repositories)
                .map_err(|e| format!("retention rule {n}: repositories: {e}"))?;
            validate_pattern(&rule.tags).map_err(|e| format!("retention rule {n}: tags: {e}"))?;
            match (rule.keep_last, rule.keep_days) {
                (Some(k), None) if (1..=100_000).contains(&k) => {}
                (None, Some(d)) if (1..=36_500).contains(&d) => {}
                (Some(_), None) => {
                    return Err(format!("retention rule {n}: keep_last must be 1 to 100000"))
                }
                (None, Some(_)) => {
                    return Err(format!("retention rule {n}: keep_days must be 1 to 36500"))
                }
                _ => {
                    return Err(format!(
                        "retention rule {n}: give exactly one of keep_last and keep_days"
                    ))
                }
            }
        }
        Ok(())
    }

    /// Read the stored form.
    pub fn from_record(record: PolicyRecord) -> Result<Self, String> {
        let retention = if record.retention.trim().is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&record.retention)
                .map_err(|e| format!("stored retention rules are invalid: {e}"))?
        };
        Ok(NamespacePolicy {
            immutable_tags: record.immutable_tags,
            quota_bytes: record.quota_bytes,
            retention,
            attach_sbom: record.attach_sbom,
        })
    }

    /// The stored form.
    pub fn to_record(&self) -> PolicyRecord {
        PolicyRecord {
            immutable_tags: self.immutable_tags.clone(),
            quota_bytes: self.quota_bytes,
            retention: serde_json::to_string(&self.retention).unwrap_or_else(|_| "[]".into()),
            attach_sbom: self.attach_sbom,
        }
    }

    /// The immutable pattern `tag` matches, if any.
    pub fn immutable<'a>(&'a self, tag: &str) -> Option<&'a str> {
        first_match(&self.immutable_tags, tag)
    }
}

/// The path of a repository within its namespace (`web/frontend` of `team/web/frontend`).
fn path_in_namespace(repo: &str) -> &str {
    repo.split_once('/').map(|(_, p)| p).unwrap_or(repo)
}

fn activity(t: &TagFacts) -> i64 {
    t.pushed_at.max(t.last_pulled_at.unwrap_or(0))
}

/// The tags retention deletes, at time `now` (Unix milliseconds), in
/// repository and tag order.
pub fn retention_plan(policy: &NamespacePolicy, tags: &[TagFacts], now: i64) -> Vec<TagFacts> {
    if policy.retention.is_empty() {
        return Vec::new();
    }
    // For each rule and repository, the matching tags from most to least
    // recently active; a keep_last rule retains the first `keep_last`.
    let mut ranked: HashMap<(usize, &str), Vec<&TagFacts>> = HashMap::new();
    for t in tags {
        for (i, rule) in policy.retention.iter().enumerate() {
            if rule.keep_last.is_some()
                && glob_match(&rule.repositories, path_in_namespace(&t.repo))
                && glob_match(&rule.tags, &t.tag)
            {
                ranked.entry((i, t.repo.as_str())).or_default().push(t);
            }
        }
    }
    for list in ranked.values_mut() {
        list.sort_by(|a, b| activity(b).cmp(&activity(a)).then(a.tag.cmp(&b.tag)));
    }
    let mut plan = Vec::new();
    for t in tags {
        if policy.immutable(&t.tag).is_some() {
            continue;
        }
        let mut in_scope = false;
        let mut retained = false;
        for (i, rule) in policy.retention.iter().enumerate() {
            if !(glob_match(&rule.repositories, path_in_namespace(&t.repo))
                && glob_match(&rule.tags, &t.tag))
            {
                continue;
            }
            in_scope = true;
            retained |= match (rule.keep_last, rule.keep_days) {
                (Some(k), _) => ranked
                    .get(&(i, t.repo.as_str()))
                    .and_then(|l| l.iter().position(|x| x.tag == t.tag))
                    .is_some_and(|rank| rank < k as usize),
                (None, Some(d)) => activity(t) >= now - i64::from(d) * DAY_MS,
                (None, None) => true,
            };
        }
        if in_scope && !retained {
            plan.push(t.clone());
        }
    }
    plan
}

/// The tag limit's rule: which tags make room for a push into a full
/// repository. Idle tags go, those neither pushed nor pulled since
/// `idle_before`, earliest pushed first, never a tag being pushed or one an
/// immutable pattern protects; `None` when too few are idle. Run by the
/// store inside the push's transaction.
pub fn tags_to_evict(e: &berth_meta::Eviction<'_>) -> Option<Vec<String>> {
    let mut idle: Vec<&(String, String, i64, Option<i64>)> = e
        .tags
        .iter()
        .filter(|(name, _, pushed, pulled)| {
            *pushed < e.idle_before
                && pulled.is_none_or(|p| p < e.idle_before)
                && !e.pushing.iter().any(|t| t.as_str() == name)
                && berth_oci::first_match(e.immutable, name).is_none()
        })
        .collect();
    if idle.len() < e.needed {
        return None;
    }
    idle.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    Some(
        idle.into_iter()
            .take(e.needed)
            .map(|t| t.0.clone())
            .collect(),
    )
}

/// The audit entry's detail of a tag the limit evicted.
pub fn eviction_detail(e: &berth_meta::EvictedTag<'_>) -> String {
    format!(
        "tag limit {} reached; evicted idle tag {} ({}){}",
        e.max,
        e.tag,
        e.digest,
        if e.image_deleted {
            " and its image"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(repo: &str, name: &str, pushed_days_ago: i64, pulled_days_ago: Option<i64>) -> TagFacts {
        let now = 1000 * DAY_MS;
        TagFacts {
            repo: repo.into(),
            tag: name.into(),
            digest: format!("sha256:{name}"),
            pushed_at: now - pushed_days_ago * DAY_MS,
            last_pulled_at: pulled_days_ago.map(|d| now - d * DAY_MS),
        }
    }

    fn names(plan: &[TagFacts]) -> Vec<String> {
        plan.iter()
            .map(|t| format!("{}:{}", t.repo, t.tag))
            .collect()
    }

    fn rule(
        repositories: &str,
        tags: &str,
        keep_last: Option<u32>,
        keep_days: Option<u32>,
    ) -> RetentionRule {
        RetentionRule {
            repositories: repositories.into(),
            tags: tags.into(),
            keep_last,
            keep_days,
        }
    }

    #[test]
    fn keep_last_counts_per_repository_by_push_or_pull() {
        let tags = vec![
            tag("ns/web", "1", 30, None),
            tag("ns/web", "2", 20, Some(1)), // pulled yesterday: most active
            tag("ns/web", "3", 10, None),
            tag("ns/web", "4", 5, None),
            tag("ns/api", "1", 50, None),
        ];
        let policy = NamespacePolicy {
            retention: vec![rule("*", "*", Some(2), None)],
            ..Default::default()
        };
        assert_eq!(
            names(&retention_plan(&policy, &tags, 1000 * DAY_MS)),
            ["ns/web:1", "ns/web:3"]
        );
    }

    #[test]
    fn keep_days_scope_and_immutability() {
        let tags = vec![
            tag("ns/web", "v1", 90, None),
            tag("ns/web", "v2", 40, Some(3)),
            tag("ns/web", "dev-1", 90, None),
            tag("ns/web", "dev-2", 2, None),
            tag("ns/tools/ci", "v1", 200, None),
            tag("ns/web", "release-1", 400, None),
        ];
        let policy = NamespacePolicy {
            immutable_tags: vec!["release-*".into()],
            retention: vec![
                rule("web", "dev-*", None, Some(7)),
                rule("web", "v*", Some(1), None),
                rule("web", "*", None, Some(30)),
            ],
            ..Default::default()
        };
        // v1: in scope of keep_last 1 (v2 is more recent) and of 30 days: deleted.
        // v2: kept (rank 0). dev-1: old: deleted. dev-2: recent: kept.
        // tools/ci is in no rule's scope; release-1 is immutable.
        assert_eq!(
            names(&retention_plan(&policy, &tags, 1000 * DAY_MS)),
            ["ns/web:v1", "ns/web:dev-1"]
        );
        assert!(retention_plan(&NamespacePolicy::default(), &tags, 0).is_empty());
    }

    #[test]
    fn validation_names_the_problem() {
        let ok = NamespacePolicy {
            immutable_tags: vec!["v*".into()],
            quota_bytes: Some(1 << 30),
            retention: vec![rule("*", "*", Some(10), None)],
            attach_sbom: true,
        };
        assert!(ok.validate().is_ok());
        let bad = |p: NamespacePolicy, needle: &str| {
            let e = p.validate().expect_err("invalid");
            assert!(e.contains(needle), "{e}");
        };
        bad(
            NamespacePolicy {
                immutable_tags: vec!["v[1]".into()],
                ..ok.clone()
            },
            "immutable tags",
        );
        bad(
            NamespacePolicy {
                quota_bytes: Some(0),
                ..ok.clone()
            },
            "quota",
        );
        bad(
            NamespacePolicy {
                retention: vec![rule("*", "*", None, None)],
                ..ok.clone()
            },
            "exactly one",
        );
        bad(
            NamespacePolicy {
                retention: vec![rule("*", "*", Some(1), Some(1))],
                ..ok.clone()
            },
            "exactly one",
        );
        bad(
            NamespacePolicy {
                retention: vec![rule("*", "*", Some(0), None)],
                ..ok.clone()
            },
            "keep_last",
        );
        bad(
            NamespacePolicy {
                retention: vec![rule("", "*", Some(1), None)],
                ..ok.clone()
            },
            "rule 1",
        );
        let stored = ok.to_record();
        assert_eq!(NamespacePolicy::from_record(stored).expect("parse"), ok);
    }

    #[test]
    fn the_tag_limit_evicts_the_earliest_pushed_idle_tags_only() {
        let tags = vec![
            ("old".to_owned(), "sha256:a".to_owned(), 10, None),
            ("older".to_owned(), "sha256:b".to_owned(), 5, Some(20)),
            ("pulled".to_owned(), "sha256:c".to_owned(), 1, Some(500)),
            ("new".to_owned(), "sha256:d".to_owned(), 400, None),
            ("v1.0".to_owned(), "sha256:e".to_owned(), 2, None),
            ("latest".to_owned(), "sha256:f".to_owned(), 3, None),
        ];
        let pushing = vec![berth_oci::Tag::parse("latest").unwrap()];
        let immutable = vec!["v*".to_owned()];
        let ask = |needed| {
            tags_to_evict(&berth_meta::Eviction {
                tags: &tags,
                needed,
                pushing: &pushing,
                immutable: &immutable,
                idle_before: 100,
            })
        };
        // Idle: old (10) and older (5); not pulled (pulled at 500), new
        // (pushed at 400), v1.0 (immutable) or latest (being pushed).
        assert_eq!(ask(1), Some(vec!["older".to_owned()]));
        assert_eq!(ask(2), Some(vec!["older".to_owned(), "old".to_owned()]));
        assert_eq!(ask(3), None);
        let detail = eviction_detail(&berth_meta::EvictedTag {
            max: 5,
            tag: "old",
            digest: "sha256:a",
            image_deleted: true,
        });
        assert_eq!(
            detail,
            "tag limit 5 reached; evicted idle tag old (sha256:a) and its image"
        );
    }
}
