//! Pull policies ([`PullPolicyStore`]): what a manifest read must satisfy,
//! per namespace and as the platform's default. What a policy means
//! (signatures, severities) is the services layer's; this layer keeps the
//! records, and its triggers announce every change on the change feed.

use async_trait::async_trait;

use crate::error::MetaResult;

/// A stored pull policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPolicyRecord {
    /// Id.
    pub id: i64,
    /// The namespace's name; `None` for the platform default.
    pub namespace: Option<String>,
    /// What it checks (`signature`).
    pub kind: String,
    /// `off`, `audit` or `enforce`.
    pub mode: String,
    /// The kind's settings, JSON.
    pub settings: String,
    /// Who last set it.
    pub updated_by: String,
    /// When, Unix milliseconds.
    pub updated_at: i64,
}

/// A policy to set.
#[derive(Debug, Clone)]
pub struct PullPolicyInput<'a> {
    /// The namespace's id; `None` for the platform default.
    pub namespace_id: Option<i64>,
    /// Kind.
    pub kind: &'a str,
    /// Mode.
    pub mode: &'a str,
    /// Settings, JSON.
    pub settings: &'a str,
    /// Who.
    pub updated_by: &'a str,
    /// Now, Unix milliseconds.
    pub now: i64,
}

/// The pull-policy contract, implemented by each database backend.
#[async_trait]
pub trait PullPolicyStore: Send + Sync + std::fmt::Debug {
    /// Every policy (a handful per namespace at most; nodes cache them).
    async fn pull_policies(&self) -> MetaResult<Vec<PullPolicyRecord>>;
    /// Create or replace the policy of a kind for a namespace (or the
    /// platform).
    async fn set_pull_policy(&self, p: &PullPolicyInput<'_>) -> MetaResult<PullPolicyRecord>;
    /// Delete one; whether it existed.
    async fn delete_pull_policy(&self, namespace_id: Option<i64>, kind: &str) -> MetaResult<bool>;
}
