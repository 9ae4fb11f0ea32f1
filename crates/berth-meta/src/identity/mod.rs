//! External identities: trust rules of workload identity
//! ([`IdentityStore`]). The rules' matching is the services layer's; this
//! layer keeps them.

use async_trait::async_trait;

use crate::error::MetaResult;

/// A trust rule: a JWT from `issuer` for `audience` whose `sub` matches
/// `subject` and whose `claims` match stands in for a registry user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRule {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Issuer URL (`iss`, exactly).
    pub issuer: String,
    /// Audience the token must carry.
    pub audience: String,
    /// Glob on `sub`.
    pub subject: String,
    /// JSON object: claim path → glob.
    pub claims: String,
    /// The registry user it logs in as.
    pub registry_user_id: i64,
    /// That user's name.
    pub registry_user: String,
    /// Who created it.
    pub created_by: String,
    /// When, Unix milliseconds.
    pub created_at: i64,
}

/// A new trust rule.
#[derive(Debug, Clone)]
pub struct NewTrustRule<'a> {
    /// Unique name.
    pub name: &'a str,
    /// Issuer URL.
    pub issuer: &'a str,
    /// Audience.
    pub audience: &'a str,
    /// Glob on `sub`.
    pub subject: &'a str,
    /// JSON object: claim path → glob.
    pub claims: &'a str,
    /// The registry user.
    pub registry_user_id: i64,
    /// Who.
    pub created_by: &'a str,
    /// Now, Unix milliseconds.
    pub now: i64,
}

/// Trust rules.
#[async_trait]
pub trait IdentityStore: Send + Sync + std::fmt::Debug {
    /// Create one; `Conflict` when the name is taken.
    async fn create_trust_rule(&self, rule: &NewTrustRule<'_>) -> MetaResult<TrustRule>;
    /// Every rule, by name.
    async fn trust_rules(&self) -> MetaResult<Vec<TrustRule>>;
    /// The rules of one registry user (by its name).
    async fn trust_rules_of(&self, registry_user: &str) -> MetaResult<Vec<TrustRule>>;
    /// One by name.
    async fn trust_rule(&self, name: &str) -> MetaResult<Option<TrustRule>>;
    /// Delete one; whether it existed.
    async fn delete_trust_rule(&self, name: &str) -> MetaResult<bool>;
}
