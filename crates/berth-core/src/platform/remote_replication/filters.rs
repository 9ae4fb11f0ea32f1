//! What a replication rule covers: repository and tag filters (glob
//! patterns to include and exclude) and where copies go (a destination
//! with Harbor-like path flattening).

use berth_oci::{glob_match, validate_pattern};
use serde::{Deserialize, Serialize};

/// Patterns to include (empty: everything) and to exclude.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternSet {
    /// A name matches when it matches one of these (or there are none).
    #[serde(default)]
    pub include: Vec<String>,
    /// ... and none of these.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl PatternSet {
    /// Whether `name` passes.
    pub fn matches(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| glob_match(p, name)))
            && !self.exclude.iter().any(|p| glob_match(p, name))
    }

    /// The include patterns when every one names a single thing (no
    /// wildcard): then they can be used as they are, without a listing.
    pub fn literals(&self) -> Option<&[String]> {
        (!self.include.is_empty()
            && self
                .include
                .iter()
                .all(|p| !p.contains('*') && !p.contains('?')))
        .then_some(self.include.as_slice())
    }

    fn check(&self, what: &str) -> Result<(), String> {
        for p in self.include.iter().chain(&self.exclude) {
            validate_pattern(p).map_err(|e| format!("{what} pattern {p:?}: {e}"))?;
        }
        if self.include.len() + self.exclude.len() > 100 {
            return Err(format!("at most 100 {what} patterns"));
        }
        Ok(())
    }
}

/// A rule's filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Repository names (the source's).
    #[serde(default)]
    pub repositories: PatternSet,
    /// Tags.
    #[serde(default)]
    pub tags: PatternSet,
}

impl Filters {
    /// Check every pattern.
    pub fn check(&self) -> Result<(), String> {
        self.repositories.check("repository")?;
        self.tags.check("tag")
    }
}

/// The destination name of source repository `name`: drop `flatten`
/// leading path components (-1: all but the last; never the last), then
/// put it under `destination` (if any).
pub fn destination_name(name: &str, flatten: i64, destination: &str) -> String {
    let parts: Vec<&str> = name.split('/').collect();
    let last = parts.len() - 1;
    let drop = if flatten < 0 {
        last
    } else {
        (flatten as usize).min(last)
    };
    let kept = parts[drop..].join("/");
    if destination.is_empty() {
        kept
    } else {
        format!("{}/{kept}", destination.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_include_then_exclude() {
        let set = PatternSet {
            include: vec!["team/*".into()],
            exclude: vec!["team/tmp-*".into()],
        };
        assert!(set.matches("team/app"));
        assert!(set.matches("team/a/b"));
        assert!(!set.matches("team/tmp-1"));
        assert!(!set.matches("other/app"));
        assert!(PatternSet::default().matches("anything"));
        assert_eq!(set.literals(), None);
        let lit = PatternSet {
            include: vec!["library/alpine".into()],
            exclude: vec![],
        };
        assert_eq!(lit.literals(), Some(&["library/alpine".to_owned()][..]));
    }

    #[test]
    fn flattening_is_harbors() {
        assert_eq!(destination_name("a/b/c", 0, "dr"), "dr/a/b/c");
        assert_eq!(destination_name("a/b/c", 1, "dr"), "dr/b/c");
        assert_eq!(destination_name("a/b/c", 2, "dr"), "dr/c");
        assert_eq!(destination_name("a/b/c", 9, "dr"), "dr/c");
        assert_eq!(destination_name("a/b/c", -1, "dr"), "dr/c");
        assert_eq!(destination_name("a/b/c", 1, ""), "b/c");
        assert_eq!(destination_name("app", 1, "x/"), "x/app");
    }

    #[test]
    fn bad_patterns_are_refused() {
        let f: Filters = serde_json::from_str(
            r#"{"repositories":{"include":["team/*"]},"tags":{"exclude":["*-rc"]}}"#,
        )
        .unwrap();
        assert!(f.check().is_ok());
        assert!(serde_json::from_str::<Filters>(r#"{"repos":{}}"#).is_err());
    }
}
