//! The directory: who exists and who may do what. Accounts, project groups,
//! namespaces, memberships, per-repository permissions, registry users and
//! their grants, the audit log and settings.
//!
//! Roles and permissions are stored as the strings the services layer
//! defines (`admin`, `developer`, `guest`; `read`, `write`, `manage`); this
//! layer only keeps them.

use async_trait::async_trait;

use crate::error::MetaResult;

/// A console account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub id: i64,
    /// Login name, globally unique.
    pub name: String,
    /// Email address.
    pub email: String,
    /// argon2id hash of the console password.
    pub password_hash: String,
    /// argon2id hash of the independent registry password, if set.
    pub registry_password_hash: Option<String>,
    /// Platform administrator.
    pub is_admin: bool,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// Moved on by every password change, disabling and "sign out
    /// everywhere": refresh tokens of an older generation are refused.
    pub token_generation: i64,
    /// The project group new namespaces go to by default.
    pub default_group_id: Option<i64>,
    /// Created, Unix milliseconds.
    pub created_at: i64,
    /// Last changed, Unix milliseconds.
    pub updated_at: i64,
    /// Where it comes from: `local`, `oidc:<provider>`, `ldap:<directory>`.
    pub origin: String,
    /// The provider's stable id for it (OIDC `sub`, LDAP DN).
    pub external_subject: Option<String>,
    /// Platform administrator because a group mapping says so.
    pub admin_by_mapping: bool,
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    /// Login name.
    pub name: &'a str,
    /// Email.
    pub email: &'a str,
    /// argon2id hash of the console password.
    pub password_hash: &'a str,
    /// Platform administrator.
    pub is_admin: bool,
    /// `local`, `oidc:<provider>` or `ldap:<directory>`.
    pub origin: &'a str,
    /// The provider's stable id for it.
    pub external_subject: Option<&'a str>,
    /// Now, Unix milliseconds.
    pub now: i64,
}

/// A project group: the tenant that owns namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectGroup {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Per-group namespace limit, when it differs from the global one.
    pub namespace_limit: Option<i64>,
    /// Most bytes its namespaces may hold together (platform
    /// administrators set it), if limited.
    pub quota_bytes: Option<i64>,
    /// Created, Unix milliseconds.
    pub created_at: i64,
}

/// A namespace (a Harbor "project"): owns repositories `namespace/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// Id.
    pub id: i64,
    /// Globally unique name (one path component).
    pub name: String,
    /// Owning project group.
    pub group_id: i64,
    /// Anyone may pull.
    pub public: bool,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Labels as a JSON object of strings.
    pub labels: String,
    /// `available` or `deleting`.
    pub status: String,
    /// Whether external clients may reach it.
    pub external_access: bool,
    /// Created, Unix milliseconds.
    pub created_at: i64,
    /// Last changed, Unix milliseconds.
    pub updated_at: i64,
}

/// A new namespace.
#[derive(Debug, Clone)]
pub struct NewNamespace<'a> {
    /// Name.
    pub name: &'a str,
    /// Owning group.
    pub group_id: i64,
    /// Public or private.
    pub public: bool,
    /// Description.
    pub description: &'a str,
    /// Category.
    pub category: &'a str,
    /// Labels as a JSON object.
    pub labels: &'a str,
    /// Refuse (with `LimitReached`) when the group already owns this many.
    pub group_limit: Option<i64>,
    /// Now, Unix milliseconds.
    pub now: i64,
}

/// A member of a group or namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Account id.
    pub account_id: i64,
    /// Account name.
    pub account_name: String,
    /// Role string.
    pub role: String,
}

/// An account's permission on one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryPermission {
    /// Full repository name (`namespace/…`).
    pub repository: String,
    /// Account id.
    pub account_id: i64,
    /// Account name.
    pub account_name: String,
    /// Permission string.
    pub permission: String,
}

/// Credentials an account made for other developers or CI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryUser {
    /// Id.
    pub id: i64,
    /// Globally unique user name.
    pub name: String,
    /// argon2id hash of the password.
    pub password_hash: String,
    /// Description.
    pub description: String,
    /// Disabled users cannot log in.
    pub enabled: bool,
    /// Moved on by every password change and disabling: refresh tokens
    /// of an older generation are refused.
    pub token_generation: i64,
    /// Expiry, Unix milliseconds.
    pub expires_at: Option<i64>,
    /// The account that owns it.
    pub owner_id: i64,
    /// Created, Unix milliseconds.
    pub created_at: i64,
    /// Last changed, Unix milliseconds.
    pub updated_at: i64,
}

/// A new registry user.
#[derive(Debug, Clone)]
pub struct NewRegistryUser<'a> {
    /// Name.
    pub name: &'a str,
    /// argon2id hash of the password.
    pub password_hash: &'a str,
    /// Description.
    pub description: &'a str,
    /// Expiry, Unix milliseconds.
    pub expires_at: Option<i64>,
    /// Owning account.
    pub owner_id: i64,
    /// Now, Unix milliseconds.
    pub now: i64,
}

/// A registry user's rights on one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Registry user id.
    pub registry_user_id: i64,
    /// Namespace id.
    pub namespace_id: i64,
    /// Namespace name.
    pub namespace: String,
    /// May pull.
    pub can_pull: bool,
    /// May push (and so pull).
    pub can_push: bool,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Id (increasing).
    pub id: i64,
    /// When, Unix milliseconds.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What, e.g. `auth.failure`, `grant.set`.
    pub action: String,
    /// On what.
    pub target: String,
    /// Details.
    pub detail: String,
    /// From where.
    pub client_addr: Option<String>,
}

/// The directory contract, implemented by each database backend.
#[async_trait]
pub trait DirectoryStore:
    crate::identity::IdentityStore + crate::pull_policy::PullPolicyStore + Send + Sync + std::fmt::Debug
{
    /// How many accounts exist.
    async fn count_accounts(&self) -> MetaResult<i64>;
    /// The account an identity provider (`origin`) knows by `subject`.
    async fn account_by_external(&self, origin: &str, subject: &str)
        -> MetaResult<Option<Account>>;
    /// Create an account (`Conflict` if the name is taken).
    async fn create_account(&self, account: &NewAccount<'_>) -> MetaResult<Account>;
    /// An account by name.
    async fn account_by_name(&self, name: &str) -> MetaResult<Option<Account>>;
    /// An account by id.
    async fn account_by_id(&self, id: i64) -> MetaResult<Option<Account>>;
    /// All accounts by name.
    async fn list_accounts(&self) -> MetaResult<Vec<Account>>;
    /// Set the console password hash (revoking refresh tokens).
    async fn set_account_password(&self, id: i64, hash: &str, now: i64) -> MetaResult<()>;
    /// Set or clear the independent registry password hash (revoking
    /// refresh tokens).
    async fn set_registry_password(&self, id: i64, hash: Option<&str>, now: i64) -> MetaResult<()>;
    /// Enable or disable an account (revoking refresh tokens).
    async fn set_account_disabled(&self, id: i64, disabled: bool, now: i64) -> MetaResult<()>;
    /// Revoke what an account holds beyond its password: move its token
    /// generation on (older refresh tokens are refused) and end its console
    /// sessions, except the one whose id hash is `keep`. Returns the
    /// sessions ended.
    async fn revoke_account_tokens(&self, id: i64, keep: Option<&str>) -> MetaResult<u64>;
    /// Set an account's default group.
    async fn set_default_group(&self, id: i64, group_id: i64, now: i64) -> MetaResult<()>;

    /// Create a project group (`Conflict` if the name is taken).
    async fn create_group(
        &self,
        name: &str,
        description: &str,
        now: i64,
    ) -> MetaResult<ProjectGroup>;
    /// A group by name.
    async fn group_by_name(&self, name: &str) -> MetaResult<Option<ProjectGroup>>;
    /// A group by id.
    async fn group_by_id(&self, id: i64) -> MetaResult<Option<ProjectGroup>>;
    /// All groups by name.
    async fn list_groups(&self) -> MetaResult<Vec<ProjectGroup>>;
    /// Add a member or change their role.
    async fn set_group_member(&self, group_id: i64, account_id: i64, role: &str) -> MetaResult<()>;
    /// Remove a member. Returns whether they were one.
    async fn remove_group_member(&self, group_id: i64, account_id: i64) -> MetaResult<bool>;
    /// Members of a group.
    async fn group_members(&self, group_id: i64) -> MetaResult<Vec<Member>>;
    /// An account's role in a group.
    async fn group_role(&self, group_id: i64, account_id: i64) -> MetaResult<Option<String>>;

    /// Create a namespace (`Conflict` if the name is taken, `LimitReached`
    /// if the group owns `group_limit` namespaces already; the count and the
    /// insert are one statement).
    async fn create_namespace(&self, namespace: &NewNamespace<'_>) -> MetaResult<Namespace>;
    /// A namespace by name.
    async fn namespace_by_name(&self, name: &str) -> MetaResult<Option<Namespace>>;
    /// All namespaces by name.
    async fn list_namespaces(&self) -> MetaResult<Vec<Namespace>>;
    /// Set (or clear) a group's own namespace limit.
    async fn set_group_namespace_limit(&self, group_id: i64, limit: Option<i64>) -> MetaResult<()>;
    /// Set or clear a group's storage quota.
    async fn set_group_quota(&self, group_id: i64, quota: Option<i64>) -> MetaResult<()>;
    /// Bytes a group's namespaces hold: each namespace's distinct blobs,
    /// summed over its namespaces.
    async fn group_usage(&self, group_id: i64) -> MetaResult<i64>;
    /// Number of namespaces a group owns.
    async fn count_group_namespaces(&self, group_id: i64) -> MetaResult<i64>;
    /// Make a namespace public or private.
    async fn set_namespace_public(&self, id: i64, public: bool, now: i64) -> MetaResult<()>;
    /// Delete a namespace record. Returns whether it existed.
    async fn delete_namespace(&self, id: i64) -> MetaResult<bool>;
    /// Add a namespace member or change their role.
    async fn set_namespace_member(
        &self,
        namespace_id: i64,
        account_id: i64,
        role: &str,
    ) -> MetaResult<()>;
    /// Remove a namespace member. Returns whether they were one.
    async fn remove_namespace_member(&self, namespace_id: i64, account_id: i64)
        -> MetaResult<bool>;
    /// Members of a namespace.
    async fn namespace_members(&self, namespace_id: i64) -> MetaResult<Vec<Member>>;
    /// An account's role on a namespace.
    async fn namespace_role(
        &self,
        namespace_id: i64,
        account_id: i64,
    ) -> MetaResult<Option<String>>;

    /// Give an account a permission on one repository.
    async fn set_repository_permission(
        &self,
        namespace_id: i64,
        repository: &str,
        account_id: i64,
        permission: &str,
    ) -> MetaResult<()>;
    /// Take it away. Returns whether it existed.
    async fn remove_repository_permission(
        &self,
        repository: &str,
        account_id: i64,
    ) -> MetaResult<bool>;
    /// Per-repository permissions within a namespace.
    async fn repository_permissions(
        &self,
        namespace_id: i64,
    ) -> MetaResult<Vec<RepositoryPermission>>;
    /// An account's permission on one repository.
    async fn repository_permission(
        &self,
        repository: &str,
        account_id: i64,
    ) -> MetaResult<Option<String>>;

    /// Create a registry user (`Conflict` if the name is taken).
    async fn create_registry_user(&self, user: &NewRegistryUser<'_>) -> MetaResult<RegistryUser>;
    /// A registry user by name.
    async fn registry_user_by_name(&self, name: &str) -> MetaResult<Option<RegistryUser>>;
    /// Registry users, of one owner or all.
    async fn list_registry_users(&self, owner_id: Option<i64>) -> MetaResult<Vec<RegistryUser>>;
    /// Set a registry user's password hash (revoking refresh tokens).
    async fn set_registry_user_password(&self, id: i64, hash: &str, now: i64) -> MetaResult<()>;
    /// Enable or disable a registry user (revoking refresh tokens).
    async fn set_registry_user_enabled(&self, id: i64, enabled: bool, now: i64) -> MetaResult<()>;
    /// Delete a registry user. Returns whether it existed.
    async fn delete_registry_user(&self, id: i64) -> MetaResult<bool>;
    /// Set a registry user's rights on a namespace.
    async fn set_grant(
        &self,
        registry_user_id: i64,
        namespace_id: i64,
        can_pull: bool,
        can_push: bool,
    ) -> MetaResult<()>;
    /// Remove them. Returns whether they existed.
    async fn remove_grant(&self, registry_user_id: i64, namespace_id: i64) -> MetaResult<bool>;
    /// All grants of a registry user.
    async fn grants_of(&self, registry_user_id: i64) -> MetaResult<Vec<Grant>>;

    /// Append to the audit log.
    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        client_addr: Option<&str>,
        at: i64,
    ) -> MetaResult<()>;
    /// The newest audit entries first.
    async fn list_audit(&self, limit: i64) -> MetaResult<Vec<AuditEntry>>;

    /// A setting.
    async fn get_setting(&self, key: &str) -> MetaResult<Option<String>>;
    /// Store a setting unless one exists; returns the value in force (so
    /// several nodes racing to create a key agree on one).
    async fn init_setting(&self, key: &str, value: &str) -> MetaResult<String>;
    /// Replace a setting's value if it still is `old` (nodes racing to
    /// rewrite one agree); returns whether it was replaced.
    async fn replace_setting(&self, key: &str, old: &str, new: &str) -> MetaResult<bool>;

    /// Credential changes (recorded by triggers) at or after `since`
    /// (Unix milliseconds), oldest first, at most `limit`: id, name, time.
    async fn credential_changes(
        &self,
        since: i64,
        limit: i64,
    ) -> MetaResult<Vec<(i64, String, i64)>>;
    /// Forget credential changes and login failures older than `before`.
    async fn prune_login_state(&self, before: i64) -> MetaResult<()>;
    /// The latest time any of `keys` is blocked until.
    async fn login_blocked_until(&self, keys: &[String]) -> MetaResult<Option<i64>>;
    /// Count a failed login under `key`; a count older than `window_start`
    /// starts again. Returns the new count.
    async fn record_login_failure(&self, key: &str, now: i64, window_start: i64)
        -> MetaResult<i64>;
    /// Block `key` until `until`.
    async fn block_login(&self, key: &str, until: i64) -> MetaResult<()>;
    /// Forget the failures of `keys`.
    async fn clear_login_failures(&self, keys: &[String]) -> MetaResult<()>;
}
