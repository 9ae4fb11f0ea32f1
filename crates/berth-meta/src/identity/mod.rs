//! External identities ([`IdentityStore`]): trust rules of workload
//! identity and the memberships group mappings make. The matching is the services layer's; this layer keeps
//! the records.

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

/// A group mapping as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMappingRecord {
    /// Id.
    pub id: i64,
    /// `oidc:<provider>` or `ldap:<directory>`.
    pub origin: String,
    /// The external group.
    pub external_group: String,
    /// `platform_admin`, `project_group` or `namespace`.
    pub grant_kind: String,
    /// The project group or namespace (`""` for `platform_admin`).
    pub target: String,
    /// The role (`""` for `platform_admin`).
    pub role: String,
    /// Who made it.
    pub created_by: String,
    /// When, Unix milliseconds.
    pub created_at: i64,
}

/// What a membership is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MembershipKind {
    /// A project group.
    Group,
    /// A namespace.
    Namespace,
}

/// A membership a group mapping made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedMembership {
    /// Of a group or a namespace.
    pub kind: MembershipKind,
    /// The group's or namespace's id.
    pub target_id: i64,
    /// Its name.
    pub target: String,
    /// The role.
    pub role: String,
}

/// Trust rules, external accounts, mapped memberships.
#[async_trait]
pub trait IdentityStore: Send + Sync + std::fmt::Debug {
    /// Store a group mapping (`id` and times ignored); `Conflict` when the
    /// same one exists.
    async fn create_group_mapping(&self, m: &GroupMappingRecord) -> MetaResult<GroupMappingRecord>;
    /// Every stored group mapping, oldest first.
    async fn group_mappings(&self) -> MetaResult<Vec<GroupMappingRecord>>;
    /// Delete one; whether it existed.
    async fn delete_group_mapping(&self, id: i64) -> MetaResult<Option<GroupMappingRecord>>;
    /// The memberships group mappings gave an account.
    async fn mapped_memberships(&self, account_id: i64) -> MetaResult<Vec<MappedMembership>>;
    /// Give a membership by mapping: added when absent, its role changed
    /// when a mapping made it; one made by hand is left alone. Whether
    /// anything changed.
    async fn set_mapped_membership(
        &self,
        kind: MembershipKind,
        target_id: i64,
        account_id: i64,
        role: &str,
    ) -> MetaResult<bool>;
    /// Take back a membership a mapping made (one made by hand stays).
    async fn remove_mapped_membership(
        &self,
        kind: MembershipKind,
        target_id: i64,
        account_id: i64,
    ) -> MetaResult<bool>;
    /// Make an account platform administrator by mapping, or take back
    /// what a mapping gave (an administrator made by hand stays). Whether
    /// anything changed.
    async fn set_admin_by_mapping(
        &self,
        account_id: i64,
        admin: bool,
        now: i64,
    ) -> MetaResult<bool>;

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
