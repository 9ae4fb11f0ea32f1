//! The change feed: what changed in the database that a node may hold in
//! memory (its read cache of tags, manifests and access facts).
//!
//! Triggers announce every such change in the writing transaction (see
//! migration 0013), so no code path can forget to: PostgreSQL delivers the
//! announcements on the channel `berth_changes` at commit; SQLite appends
//! them to the table `change_feed`, which the feed reads every 100 ms.

use async_trait::async_trait;

pub(crate) mod feeds;

use crate::error::MetaResult;

/// One announced change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A repository's tags or manifests changed (or it was deleted).
    Repository(String),
    /// Namespaces, memberships, repository permissions or grants changed.
    Access,
    /// A pull policy changed.
    PullPolicy,
    /// An image's inventory or findings changed (its manifest digest).
    Findings(String),
}

impl Change {
    /// Parse an announcement's payload; `None` for one this version does
    /// not know (a newer node's).
    pub fn parse(payload: &str) -> Option<Change> {
        match payload {
            "a" => Some(Change::Access),
            "p" => Some(Change::PullPolicy),
            _ => {
                if let Some(repo) = payload.strip_prefix("r:") {
                    Some(Change::Repository(repo.to_owned()))
                } else {
                    payload
                        .strip_prefix("v:")
                        .map(|digest| Change::Findings(digest.to_owned()))
                }
            }
        }
    }
}

/// A subscription to the change feed.
#[async_trait]
pub trait ChangeFeed: Send {
    /// Wait for the next changes. An empty list says the feed is connected
    /// (on the first call and after every reconnection) or quiet. An error
    /// says it broke: what was announced meanwhile may be lost, so the
    /// caller must drop what it holds; the next call reconnects.
    async fn next(&mut self) -> MetaResult<Vec<Change>>;
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn parses_payloads() {
        assert_eq!(Change::parse("a"), Some(Change::Access));
        assert_eq!(Change::parse("p"), Some(Change::PullPolicy));
        assert_eq!(
            Change::parse("r:team/app"),
            Some(Change::Repository("team/app".into()))
        );
        assert_eq!(
            Change::parse("v:sha256:ab"),
            Some(Change::Findings("sha256:ab".into()))
        );
        assert_eq!(Change::parse("x:unknown"), None);
    }
}
