//! The registry's [`Triggers`]: each pushed tag is synchronized by the
//! repository's synchronization rules and replicated by on-push
//! replication rules; deletions are replicated by the rules that ask.

use std::sync::Arc;

use berth_meta::{MetaError, NewEvent, NewSyncRecord, PlatformStore};
use berth_oci::{Digest, RepoName, Tag};

use super::remote_replication::{deletion_tasks, push_tasks, Deletion};
use crate::registry::Triggers;

/// The rules of the platform's tables.
#[derive(Debug, Clone)]
pub struct RuleTriggers {
    store: Arc<dyn PlatformStore>,
}

impl RuleTriggers {
    /// Rules read from `store`.
    pub fn new(store: Arc<dyn PlatformStore>) -> Self {
        RuleTriggers { store }
    }
}

#[async_trait::async_trait]
impl Triggers for RuleTriggers {
    async fn pushed(
        &self,
        repo: &RepoName,
        digest: &Digest,
        tags: &[Tag],
        actor: &str,
        region: &str,
    ) -> Result<Vec<NewSyncRecord>, MetaError> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let rules = self.store.replication_rules().await?;
        let mut out = push_tasks(&rules, repo, digest, tags, actor, region);
        for rule in self.store.sync_rules(repo.as_str()).await? {
            for tag in tags {
                out.push(NewSyncRecord {
                    rule_id: rule.id,
                    repo: repo.to_string(),
                    tag: tag.to_string(),
                    digest: digest.to_string(),
                    target_region: rule.target_region.clone(),
                    target_namespace: rule.target_namespace.clone(),
                    overwrite: rule.overwrite,
                    trigger: "automatic".to_owned(),
                    operator: actor.to_owned(),
                    replication: None,
                });
            }
        }
        Ok(out)
    }

    async fn happened(
        &self,
        events: &[NewEvent],
        region: &str,
    ) -> Result<Vec<NewSyncRecord>, MetaError> {
        let deletions: Vec<_> = events.iter().filter_map(Deletion::of).collect();
        if deletions.is_empty() {
            return Ok(Vec::new());
        }
        let rules = self.store.replication_rules().await?;
        Ok(deletion_tasks(&rules, &deletions, region))
    }
}
