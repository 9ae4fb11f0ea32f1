//! What a change to the registry sets off beyond the registry itself:
//! synchronization rules and replication rules with other registries.
//! The registry asks its `Triggers` and queues what they answer in the
//! change's own transaction; `platform` implements them (the registry
//! knows no rules), so the layers call downward only.

use berth_meta::{MetaError, NewEvent, NewSyncRecord};
use berth_oci::{Digest, RepoName, Tag};

/// The work rules attach to pushes and deletions.
#[async_trait::async_trait]
pub trait Triggers: Send + Sync + std::fmt::Debug {
    /// The synchronizations and replication tasks a push of `repo@digest`
    /// with `tags`, by `actor`, in `region` sets off.
    async fn pushed(
        &self,
        repo: &RepoName,
        digest: &Digest,
        tags: &[Tag],
        actor: &str,
        region: &str,
    ) -> Result<Vec<NewSyncRecord>, MetaError>;

    /// The tasks `events` set off in `region` (deletions that rules
    /// replicate).
    async fn happened(
        &self,
        events: &[NewEvent],
        region: &str,
    ) -> Result<Vec<NewSyncRecord>, MetaError>;
}

/// No rules: a registry on its own, as unit tests build it.
#[derive(Debug, Default)]
pub struct NoTriggers;

#[async_trait::async_trait]
impl Triggers for NoTriggers {
    async fn pushed(
        &self,
        _: &RepoName,
        _: &Digest,
        _: &[Tag],
        _: &str,
        _: &str,
    ) -> Result<Vec<NewSyncRecord>, MetaError> {
        Ok(Vec::new())
    }

    async fn happened(&self, _: &[NewEvent], _: &str) -> Result<Vec<NewSyncRecord>, MetaError> {
        Ok(Vec::new())
    }
}
