//! The directory service: accounts, project groups, namespaces, members,
//! per-repository permissions, registry users and grants; authentication;
//! and the facts that [`crate::access::allowed`] decides on. Every change of
//! membership or grant, and every failed login, goes to the audit log.

use std::sync::Arc;

use berth_meta::{
    Account, DirectoryStore, Grant, Member, MetaError, Namespace, NewAccount, NewNamespace,
    NewRegistryUser, ProjectGroup, RegistryUser, RepositoryPermission,
};
use berth_oci::RepoName;

use crate::access::{self, Actions, Facts, NamespaceFacts, Principal, RepoPermission, Role};
use crate::clock::now_millis;
use crate::error::DirectoryError;
use crate::password;
use crate::read_cache::{FactsKey, ReadCache};

/// Directory rules that configuration can change.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// The namespace everyone may pull from (the "platform images").
    pub platform_namespace: String,
    /// Whether a push to a missing namespace creates it.
    pub auto_create_namespaces: bool,
    /// How many namespaces a project group may own, unless the group has a
    /// limit of its own.
    pub namespaces_per_group: i64,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            platform_namespace: "library".into(),
            auto_create_namespaces: true,
            namespaces_per_group: 8,
        }
    }
}

type Result<T> = std::result::Result<T, DirectoryError>;

/// A namespace to create.
#[derive(Debug, Clone, Default)]
pub struct NamespaceSpec {
    /// Name: one path component of the OCI name grammar.
    pub name: String,
    /// Owning project group; the actor's default group when absent.
    pub group: Option<String>,
    /// Public (anyone pulls) or private.
    pub public: bool,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Labels.
    pub labels: Vec<(String, String)>,
}

/// A registry user to create.
#[derive(Debug, Clone, Default)]
pub struct RegistryUserSpec {
    /// Globally unique name.
    pub name: String,
    /// Chosen password; generated when absent.
    pub password: Option<String>,
    /// Description.
    pub description: String,
    /// Expiry, Unix milliseconds.
    pub expires_at: Option<i64>,
    /// Owning account; the actor when absent.
    pub owner: Option<String>,
}

/// The directory service.
#[derive(Debug, Clone)]
pub struct Directory {
    store: Arc<dyn DirectoryStore>,
    config: Arc<DirectoryConfig>,
    /// Namespaces' records and callers' access facts for hot reads.
    cache: Arc<ReadCache>,
}

fn check_password(p: &str) -> Result<()> {
    if p.chars().count() < password::MIN_PASSWORD_LEN {
        return Err(DirectoryError::Invalid(format!(
            "passwords need at least {} characters",
            password::MIN_PASSWORD_LEN
        )));
    }
    Ok(())
}

/// Names of accounts, groups and registry users: 2 to 64 of `[a-z0-9._-]`,
/// starting with a letter or digit.
fn check_name(kind: &str, name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = (2..=64).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!(
            "invalid {kind} name {name:?}: 2 to 64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

impl Directory {
    /// A directory over its store.
    pub fn new(store: Arc<dyn DirectoryStore>, config: DirectoryConfig) -> Self {
        Directory {
            store,
            config: Arc::new(config),
            cache: Arc::default(),
        }
    }

    /// Answer access checks from `cache` (shared with the registry and
    /// following the change feed).
    pub fn with_read_cache(mut self, cache: Arc<ReadCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The configuration in force.
    pub fn config(&self) -> &DirectoryConfig {
        &self.config
    }

    /// The store (for listings).
    pub fn store(&self) -> &Arc<dyn DirectoryStore> {
        &self.store
    }

    async fn audit(
        &self,
        actor: &Principal,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<()> {
        // Every change made on behalf of someone is audited once it is
        // done: this node's cached reads go at once (other nodes hear of
        // it through the change feed), so a caller reads its own writes.
        self.cache.clear();
        self.store
            .append_audit(actor.name(), action, target, detail, None, now_millis())
            .await?;
        Ok(())
    }

    /// On first start: create the platform admin `admin` with `password`, or
    /// a generated one that is returned (to be printed once). Does nothing
    /// when accounts exist.
    pub async fn bootstrap(&self, admin_password: Option<&str>) -> Result<Option<String>> {
        if self.store.count_accounts().await? > 0 {
            return Ok(None);
        }
        let (pw, generated) = match admin_password {
            Some(p) => (p.to_owned(), None),
            None => {
                let p = password::generate();
                (p.clone(), Some(p))
            }
        };
        let admin = match self
            .create_account(&Principal::System, "admin", "", &pw, true)
            .await
        {
            Ok(a) => a,
            // Another node bootstrapped at the same moment.
            Err(DirectoryError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if self
            .store
            .namespace_by_name(&self.config.platform_namespace)
            .await?
            .is_none()
        {
            let group = admin
                .default_group_id
                .ok_or_else(|| DirectoryError::NotFound("admin group".into()))?;
            let created = self
                .store
                .create_namespace(&NewNamespace {
                    name: &self.config.platform_namespace,
                    group_id: group,
                    public: true,
                    description: "Platform images",
                    category: "",
                    labels: "{}",
                    group_limit: None,
                    now: now_millis(),
                })
                .await;
            match created {
                Ok(_) | Err(MetaError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(generated)
    }

    // ---- accounts and groups ----------------------------------------------

    /// Create an account with a default project group named after it, of
    /// which it is the admin. Only platform admins create accounts.
    pub async fn create_account(
        &self,
        actor: &Principal,
        name: &str,
        email: &str,
        console_password: &str,
        is_admin: bool,
    ) -> Result<Account> {
        if !actor.is_platform_admin() {
            return Err(DirectoryError::Forbidden(
                "only platform administrators create accounts".into(),
            ));
        }
        check_name("account", name)?;
        check_password(console_password)?;
        if self.store.registry_user_by_name(name).await?.is_some() {
            return Err(DirectoryError::Conflict(format!(
                "a registry user named {name}"
            )));
        }
        let hash = password::hash(console_password)
            .await
            .map_err(DirectoryError::Hashing)?;
        let now = now_millis();
        let account = self
            .store
            .create_account(&NewAccount {
                name,
                email,
                password_hash: &hash,
                is_admin,
                now,
            })
            .await?;
        let group = match self
            .store
            .create_group(name, &format!("Default group of {name}"), now)
            .await
        {
            Ok(g) => g,
            Err(MetaError::Conflict(_)) => self
                .store
                .group_by_name(name)
                .await?
                .ok_or_else(|| DirectoryError::NotFound(format!("project group {name}")))?,
            Err(e) => return Err(e.into()),
        };
        if self.store.group_members(group.id).await?.is_empty() {
            self.store
                .set_group_member(group.id, account.id, Role::Admin.as_str())
                .await?;
        }
        self.store
            .set_default_group(account.id, group.id, now)
            .await?;
        self.audit(
            actor,
            "account.create",
            name,
            if is_admin { "platform admin" } else { "" },
        )
        .await?;
        self.account(name).await
    }

    /// An account by name.
    pub async fn account(&self, name: &str) -> Result<Account> {
        self.store
            .account_by_name(name)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("account {name}")))
    }

    /// Change an account's console password (itself or a platform admin).
    /// Its refresh tokens and console sessions are revoked on every node,
    /// except the session `keep` (the cookie of the session that asked).
    pub async fn set_console_password(
        &self,
        actor: &Principal,
        name: &str,
        new: &str,
        keep: Option<&str>,
    ) -> Result<()> {
        let account = self.account(name).await?;
        self.check_self_or_admin(actor, &account)?;
        check_password(new)?;
        let hash = password::hash(new).await.map_err(DirectoryError::Hashing)?;
        self.store
            .set_account_password(account.id, &hash, now_millis())
            .await?;
        self.revoke(account.id, keep).await?;
        self.audit(actor, "account.password", name, "console password changed")
            .await
    }

    /// End every console session of an account but `keep` (a session
    /// cookie) and refuse every refresh token issued to it so far.
    async fn revoke(&self, account_id: i64, keep: Option<&str>) -> Result<u64> {
        let keep = keep.map(password::secret_hash);
        Ok(self
            .store
            .revoke_account_tokens(account_id, keep.as_deref())
            .await?)
    }

    /// "Sign out everywhere": end every console session of the actor's
    /// account (this one too) and refuse every refresh token (`docker
    /// login`'s identity tokens) issued to it so far, on every node.
    /// Returns the sessions ended.
    pub async fn sign_out_everywhere(&self, actor: &Principal) -> Result<u64> {
        let Principal::Account { id, name, .. } = actor else {
            return Err(DirectoryError::Forbidden(
                "only accounts have sessions".into(),
            ));
        };
        let ended = self.revoke(*id, None).await?;
        self.audit(
            actor,
            "account.sign_out_everywhere",
            name,
            &format!("{ended} console session(s) ended; refresh tokens revoked"),
        )
        .await?;
        Ok(ended)
    }

    /// Set or clear an account's independent registry password. Its
    /// refresh tokens and other console sessions are revoked, as for the
    /// console password.
    pub async fn set_registry_password(
        &self,
        actor: &Principal,
        name: &str,
        new: Option<&str>,
        keep: Option<&str>,
    ) -> Result<()> {
        let account = self.account(name).await?;
        self.check_self_or_admin(actor, &account)?;
        let hash = match new {
            Some(p) => {
                check_password(p)?;
                Some(password::hash(p).await.map_err(DirectoryError::Hashing)?)
            }
            None => None,
        };
        self.store
            .set_registry_password(account.id, hash.as_deref(), now_millis())
            .await?;
        self.revoke(account.id, keep).await?;
        let what = if new.is_some() {
            "registry password set"
        } else {
            "registry password cleared"
        };
        self.audit(actor, "account.registry_password", name, what)
            .await
    }

    /// Disable or enable an account (platform admins).
    pub async fn set_account_disabled(
        &self,
        actor: &Principal,
        name: &str,
        disabled: bool,
    ) -> Result<()> {
        if !actor.is_platform_admin() {
            return Err(DirectoryError::Forbidden(
                "only platform administrators disable accounts".into(),
            ));
        }
        let account = self.account(name).await?;
        self.store
            .set_account_disabled(account.id, disabled, now_millis())
            .await?;
        if disabled {
            self.revoke(account.id, None).await?;
        }
        self.audit(
            actor,
            if disabled {
                "account.disable"
            } else {
                "account.enable"
            },
            name,
            "",
        )
        .await
    }

    fn check_self_or_admin(&self, actor: &Principal, account: &Account) -> Result<()> {
        match actor {
            Principal::Account { id, .. } if *id == account.id => Ok(()),
            a if a.is_platform_admin() => Ok(()),
            _ => Err(DirectoryError::Forbidden(
                "only the account itself or a platform administrator may do this".into(),
            )),
        }
    }

    /// Create a project group (platform admins), with `admin` as its admin when given.
    pub async fn create_group(
        &self,
        actor: &Principal,
        name: &str,
        description: &str,
        admin: Option<&str>,
    ) -> Result<ProjectGroup> {
        if !actor.is_platform_admin() {
            return Err(DirectoryError::Forbidden(
                "only platform administrators create project groups".into(),
            ));
        }
        check_name("project group", name)?;
        let group = self
            .store
            .create_group(name, description, now_millis())
            .await?;
        self.audit(actor, "group.create", name, description).await?;
        if let Some(admin) = admin {
            self.set_group_member(actor, name, admin, Role::Admin)
                .await?;
        }
        Ok(group)
    }

    /// Set or clear a group's own namespace limit (platform admins).
    pub async fn set_group_namespace_limit(
        &self,
        actor: &Principal,
        group: &str,
        limit: Option<i64>,
    ) -> Result<()> {
        if !actor.is_platform_admin() {
            return Err(DirectoryError::Forbidden(
                "only platform administrators change namespace limits".into(),
            ));
        }
        if limit.is_some_and(|l| l < 0) {
            return Err(DirectoryError::Invalid("a limit cannot be negative".into()));
        }
        let g = self.group(group).await?;
        self.store.set_group_namespace_limit(g.id, limit).await?;
        let what = limit
            .map(|l| l.to_string())
            .unwrap_or_else(|| "default".into());
        self.audit(actor, "group.namespace_limit", group, &what)
            .await
    }

    /// Set or clear a project group's storage quota (platform admins): a
    /// bound on what the tenant may store, which its own administrators
    /// see but cannot change.
    pub async fn set_group_quota(
        &self,
        actor: &Principal,
        group: &str,
        quota: Option<i64>,
    ) -> Result<()> {
        if !actor.is_platform_admin() {
            return Err(DirectoryError::Forbidden(
                "only platform administrators set storage quotas".into(),
            ));
        }
        if quota.is_some_and(|q| q <= 0) {
            return Err(DirectoryError::Invalid(
                "the storage quota must be a positive number of bytes".into(),
            ));
        }
        let g = self.group(group).await?;
        self.store.set_group_quota(g.id, quota).await?;
        let what = quota
            .map(|q| format!("{q} bytes"))
            .unwrap_or_else(|| "none".into());
        self.audit(actor, "group.quota", group, &what).await
    }

    /// A project group by name.
    pub async fn group(&self, name: &str) -> Result<ProjectGroup> {
        self.store
            .group_by_name(name)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("project group {name}")))
    }

    async fn administers_group(&self, actor: &Principal, group_id: i64) -> Result<bool> {
        Ok(match actor {
            a if a.is_platform_admin() => true,
            Principal::Account { id, .. } => {
                self.store
                    .group_role(group_id, *id)
                    .await?
                    .as_deref()
                    .and_then(Role::parse)
                    == Some(Role::Admin)
            }
            _ => false,
        })
    }

    async fn administered_group(&self, actor: &Principal, name: &str) -> Result<ProjectGroup> {
        let g = self.group(name).await?;
        if !self.administers_group(actor, g.id).await? {
            return Err(DirectoryError::Forbidden(format!(
                "you do not administer project group {name}"
            )));
        }
        Ok(g)
    }

    /// Add an account to a group or change its role (group admins).
    pub async fn set_group_member(
        &self,
        actor: &Principal,
        group: &str,
        account: &str,
        role: Role,
    ) -> Result<()> {
        let g = self.administered_group(actor, group).await?;
        let a = self.account(account).await?;
        self.store
            .set_group_member(g.id, a.id, role.as_str())
            .await?;
        self.audit(
            actor,
            "group.member.set",
            group,
            &format!("{account}={}", role.as_str()),
        )
        .await
    }

    /// Remove an account from a group (group admins).
    pub async fn remove_group_member(
        &self,
        actor: &Principal,
        group: &str,
        account: &str,
    ) -> Result<()> {
        let g = self.administered_group(actor, group).await?;
        let a = self.account(account).await?;
        if !self.store.remove_group_member(g.id, a.id).await? {
            return Err(DirectoryError::NotFound(format!(
                "{account} in project group {group}"
            )));
        }
        self.audit(actor, "group.member.remove", group, account)
            .await
    }

    // ---- namespaces --------------------------------------------------------

    /// A namespace by name.
    pub async fn namespace(&self, name: &str) -> Result<Namespace> {
        self.store
            .namespace_by_name(name)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("namespace {name}")))
    }

    /// Create a namespace in a group the actor may create namespaces in
    /// (group admin or developer; platform admins anywhere).
    pub async fn create_namespace(
        &self,
        actor: &Principal,
        spec: &NamespaceSpec,
    ) -> Result<Namespace> {
        crate::validate::check_labels(&spec.labels)?;
        crate::validate::check_text("description", &spec.description, 1024)?;
        crate::validate::check_text("category", &spec.category, 64)?;
        if spec.name.contains('/') || RepoName::parse(&spec.name).is_err() {
            return Err(DirectoryError::Invalid(format!(
                "invalid namespace name {:?}: lowercase letters and digits, separated by '.', '_', '__' or '-', no '/'",
                spec.name
            )));
        }
        let group = match (&spec.group, actor) {
            (Some(g), _) => self.group(g).await?,
            (None, Principal::Account { name, .. }) => {
                let account = self.account(name).await?;
                let id = account.default_group_id.ok_or_else(|| {
                    DirectoryError::Invalid(
                        "the account has no default project group; name one".into(),
                    )
                })?;
                self.store
                    .group_by_id(id)
                    .await?
                    .ok_or_else(|| DirectoryError::NotFound("default project group".into()))?
            }
            (None, _) => {
                return Err(DirectoryError::Invalid(
                    "name the project group that owns the namespace".into(),
                ))
            }
        };
        let may = match actor {
            a if a.is_platform_admin() => true,
            Principal::Account { id, .. } => matches!(
                self.store
                    .group_role(group.id, *id)
                    .await?
                    .as_deref()
                    .and_then(Role::parse),
                Some(Role::Admin | Role::Developer)
            ),
            _ => false,
        };
        if !may {
            return Err(DirectoryError::Forbidden(format!(
                "you may not create namespaces in project group {}",
                group.name
            )));
        }
        let labels: serde_json::Map<String, serde_json::Value> = spec
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let limit = group
            .namespace_limit
            .unwrap_or(self.config.namespaces_per_group);
        let ns = self
            .store
            .create_namespace(&NewNamespace {
                name: &spec.name,
                group_id: group.id,
                public: spec.public,
                description: &spec.description,
                category: &spec.category,
                labels: &serde_json::Value::Object(labels).to_string(),
                group_limit: Some(limit),
                now: now_millis(),
            })
            .await
            .map_err(|e| match e {
                MetaError::LimitReached => DirectoryError::LimitExceeded(format!(
                    "project group {} already has {limit} namespaces, its limit; delete one or ask a platform administrator to raise the limit",
                    group.name
                )),
                other => other.into(),
            })?;
        self.audit(
            actor,
            "namespace.create",
            &spec.name,
            &format!("group={} public={}", group.name, spec.public),
        )
        .await?;
        Ok(ns)
    }

    /// Whether the actor administers the namespace (namespace or group admin, or platform admin).
    pub async fn administers_namespace(&self, actor: &Principal, ns: &Namespace) -> Result<bool> {
        Ok(match actor {
            a if a.is_platform_admin() => true,
            Principal::Account { id, .. } => {
                let g = self
                    .store
                    .group_role(ns.group_id, *id)
                    .await?
                    .as_deref()
                    .and_then(Role::parse);
                let n = self
                    .store
                    .namespace_role(ns.id, *id)
                    .await?
                    .as_deref()
                    .and_then(Role::parse);
                g.max(n) == Some(Role::Admin)
            }
            _ => false,
        })
    }

    /// A namespace the actor administers. One it may not even see is
    /// reported as not found, exactly like a name that does not exist, so
    /// that refusals do not tell other tenants' names apart.
    async fn administered_namespace(&self, actor: &Principal, name: &str) -> Result<Namespace> {
        let ns = self.namespace(name).await?;
        if !self.administers_namespace(actor, &ns).await? {
            if !ns.public && !self.is_namespace_member(actor, &ns).await? {
                return Err(DirectoryError::NotFound(format!("namespace {name}")));
            }
            return Err(DirectoryError::Forbidden(format!(
                "you do not administer namespace {name}"
            )));
        }
        Ok(ns)
    }

    /// Make a namespace public or private (namespace admins).
    pub async fn set_namespace_public(
        &self,
        actor: &Principal,
        name: &str,
        public: bool,
    ) -> Result<()> {
        let ns = self.administered_namespace(actor, name).await?;
        self.store
            .set_namespace_public(ns.id, public, now_millis())
            .await?;
        self.audit(
            actor,
            "namespace.visibility",
            name,
            if public { "public" } else { "private" },
        )
        .await
    }

    /// Give an account a role on a namespace (namespace admins).
    pub async fn set_namespace_member(
        &self,
        actor: &Principal,
        namespace: &str,
        account: &str,
        role: Role,
    ) -> Result<()> {
        let ns = self.administered_namespace(actor, namespace).await?;
        let a = self.account(account).await?;
        self.store
            .set_namespace_member(ns.id, a.id, role.as_str())
            .await?;
        self.audit(
            actor,
            "namespace.member.set",
            namespace,
            &format!("{account}={}", role.as_str()),
        )
        .await
    }

    /// Take an account's role on a namespace away (namespace admins).
    pub async fn remove_namespace_member(
        &self,
        actor: &Principal,
        namespace: &str,
        account: &str,
    ) -> Result<()> {
        let ns = self.administered_namespace(actor, namespace).await?;
        let a = self.account(account).await?;
        if !self.store.remove_namespace_member(ns.id, a.id).await? {
            return Err(DirectoryError::NotFound(format!(
                "{account} on namespace {namespace}"
            )));
        }
        self.audit(actor, "namespace.member.remove", namespace, account)
            .await
    }

    /// Give an account a permission on one repository (namespace admins).
    pub async fn set_repository_permission(
        &self,
        actor: &Principal,
        repository: &RepoName,
        account: &str,
        permission: RepoPermission,
    ) -> Result<()> {
        let ns = self
            .administered_namespace(actor, repository.namespace())
            .await?;
        let a = self.account(account).await?;
        self.store
            .set_repository_permission(ns.id, repository.as_str(), a.id, permission.as_str())
            .await?;
        self.audit(
            actor,
            "repository.permission.set",
            repository.as_str(),
            &format!("{account}={}", permission.as_str()),
        )
        .await
    }

    /// Remove an account's permission on one repository (namespace admins).
    pub async fn remove_repository_permission(
        &self,
        actor: &Principal,
        repository: &RepoName,
        account: &str,
    ) -> Result<()> {
        self.administered_namespace(actor, repository.namespace())
            .await?;
        let a = self.account(account).await?;
        if !self
            .store
            .remove_repository_permission(repository.as_str(), a.id)
            .await?
        {
            return Err(DirectoryError::NotFound(format!(
                "{account}'s permission on {repository}"
            )));
        }
        self.audit(
            actor,
            "repository.permission.remove",
            repository.as_str(),
            account,
        )
        .await
    }

    // ---- registry users ----------------------------------------------------

    /// Create a registry user owned by the actor (or, for platform admins, by
    /// `spec.owner`). Returns the user and the generated password, if any.
    pub async fn create_registry_user(
        &self,
        actor: &Principal,
        spec: &RegistryUserSpec,
    ) -> Result<(RegistryUser, Option<String>)> {
        check_name("registry user", &spec.name)?;
        let owner = match (&spec.owner, actor) {
            (Some(owner), a) if a.is_platform_admin() => self.account(owner).await?,
            (None, Principal::Account { name, .. }) => self.account(name).await?,
            (Some(owner), Principal::Account { name, .. }) if owner == name => {
                self.account(name).await?
            }
            (Some(_), _) => {
                return Err(DirectoryError::Forbidden(
                    "only platform administrators create registry users for others".into(),
                ))
            }
            (None, _) => {
                return Err(DirectoryError::Invalid(
                    "name the account that owns the registry user".into(),
                ))
            }
        };
        if self.store.account_by_name(&spec.name).await?.is_some() {
            return Err(DirectoryError::Conflict(format!(
                "an account named {}",
                spec.name
            )));
        }
        let (pw, generated) = match &spec.password {
            Some(p) => {
                check_password(p)?;
                (p.clone(), None)
            }
            None => {
                let p = password::generate();
                (p.clone(), Some(p))
            }
        };
        let hash = password::hash(&pw).await.map_err(DirectoryError::Hashing)?;
        let user = self
            .store
            .create_registry_user(&NewRegistryUser {
                name: &spec.name,
                password_hash: &hash,
                description: &spec.description,
                expires_at: spec.expires_at,
                owner_id: owner.id,
                now: now_millis(),
            })
            .await?;
        self.audit(
            actor,
            "registry_user.create",
            &spec.name,
            &format!("owner={}", owner.name),
        )
        .await?;
        Ok((user, generated))
    }

    async fn owned_registry_user(&self, actor: &Principal, name: &str) -> Result<RegistryUser> {
        let user = self
            .store
            .registry_user_by_name(name)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("registry user {name}")))?;
        match actor {
            a if a.is_platform_admin() => Ok(user),
            Principal::Account { id, .. } if *id == user.owner_id => Ok(user),
            _ => Err(DirectoryError::Forbidden(format!(
                "registry user {name} is not yours"
            ))),
        }
    }

    /// Enable or disable a registry user (its owner or a platform admin).
    pub async fn set_registry_user_enabled(
        &self,
        actor: &Principal,
        name: &str,
        enabled: bool,
    ) -> Result<()> {
        let user = self.owned_registry_user(actor, name).await?;
        self.store
            .set_registry_user_enabled(user.id, enabled, now_millis())
            .await?;
        self.audit(
            actor,
            if enabled {
                "registry_user.enable"
            } else {
                "registry_user.disable"
            },
            name,
            "",
        )
        .await
    }

    /// Grant a registry user pull and/or push on a namespace. The actor must
    /// own the user and administer the namespace.
    pub async fn set_grant(
        &self,
        actor: &Principal,
        user: &str,
        namespace: &str,
        pull: bool,
        push: bool,
    ) -> Result<()> {
        let user = self.owned_registry_user(actor, user).await?;
        let ns = self.administered_namespace(actor, namespace).await?;
        if !pull && !push {
            self.store.remove_grant(user.id, ns.id).await?;
            return self
                .audit(actor, "grant.remove", namespace, &user.name)
                .await;
        }
        // Push implies pull.
        self.store
            .set_grant(user.id, ns.id, pull || push, push)
            .await?;
        self.audit(
            actor,
            "grant.set",
            namespace,
            &format!("{} pull={} push={}", user.name, pull || push, push),
        )
        .await
    }

    /// A registry user's grants (its owner or a platform admin).
    pub async fn grants(&self, actor: &Principal, user: &str) -> Result<Vec<Grant>> {
        let user = self.owned_registry_user(actor, user).await?;
        Ok(self.store.grants_of(user.id).await?)
    }

    /// Registry users: the actor's own, or all for platform admins.
    pub async fn registry_users(&self, actor: &Principal) -> Result<Vec<RegistryUser>> {
        match actor {
            a if a.is_platform_admin() => Ok(self.store.list_registry_users(None).await?),
            Principal::Account { id, .. } => Ok(self.store.list_registry_users(Some(*id)).await?),
            _ => Err(DirectoryError::Forbidden(
                "only accounts have registry users".into(),
            )),
        }
    }

    /// Set a registry user's password, or generate one (returned once).
    pub async fn set_registry_user_password(
        &self,
        actor: &Principal,
        name: &str,
        new: Option<&str>,
    ) -> Result<Option<String>> {
        let user = self.owned_registry_user(actor, name).await?;
        let (pw, generated) = match new {
            Some(p) => {
                check_password(p)?;
                (p.to_owned(), None)
            }
            None => {
                let p = password::generate();
                (p.clone(), Some(p))
            }
        };
        let hash = password::hash(&pw).await.map_err(DirectoryError::Hashing)?;
        self.store
            .set_registry_user_password(user.id, &hash, now_millis())
            .await?;
        self.audit(actor, "registry_user.password", name, "")
            .await?;
        Ok(generated)
    }

    /// Delete a registry user and its grants (its owner or a platform admin).
    pub async fn delete_registry_user(&self, actor: &Principal, name: &str) -> Result<()> {
        let user = self.owned_registry_user(actor, name).await?;
        self.store.delete_registry_user(user.id).await?;
        self.audit(actor, "registry_user.delete", name, "").await
    }

    /// All accounts (platform admins).
    pub async fn accounts(&self, actor: &Principal) -> Result<Vec<Account>> {
        if !actor.is_platform_admin() {
            return Err(DirectoryError::Forbidden(
                "only platform administrators list accounts".into(),
            ));
        }
        Ok(self.store.list_accounts().await?)
    }

    /// Project groups: all for platform admins, else those the account is in.
    pub async fn groups(&self, actor: &Principal) -> Result<Vec<ProjectGroup>> {
        let all = self.store.list_groups().await?;
        match actor {
            a if a.is_platform_admin() => Ok(all),
            Principal::Account { id, .. } => {
                let mut mine = Vec::new();
                for g in all {
                    if self.store.group_role(g.id, *id).await?.is_some() {
                        mine.push(g);
                    }
                }
                Ok(mine)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// A group's members (its members and platform admins may look).
    pub async fn group_members(&self, actor: &Principal, group: &str) -> Result<Vec<Member>> {
        let g = self.group(group).await?;
        let may = match actor {
            a if a.is_platform_admin() => true,
            Principal::Account { id, .. } => self.store.group_role(g.id, *id).await?.is_some(),
            _ => false,
        };
        if !may {
            return Err(DirectoryError::NotFound(format!("project group {group}")));
        }
        Ok(self.store.group_members(g.id).await?)
    }

    /// Whether the actor belongs to the namespace (through its group, a
    /// namespace role or a repository permission), or is a platform admin.
    pub async fn is_namespace_member(&self, actor: &Principal, ns: &Namespace) -> Result<bool> {
        Ok(match actor {
            a if a.is_platform_admin() => true,
            Principal::Account { id, .. } => {
                self.store.group_role(ns.group_id, *id).await?.is_some()
                    || self.store.namespace_role(ns.id, *id).await?.is_some()
                    || self
                        .store
                        .repository_permissions(ns.id)
                        .await?
                        .iter()
                        .any(|p| p.account_id == *id)
            }
            _ => false,
        })
    }

    /// A namespace the actor may see: public ones, or ones it belongs to.
    /// Others are reported as not found, so names do not leak.
    pub async fn visible_namespace(&self, actor: &Principal, name: &str) -> Result<Namespace> {
        let ns = self.namespace(name).await?;
        if ns.public || self.is_namespace_member(actor, &ns).await? {
            Ok(ns)
        } else {
            Err(DirectoryError::NotFound(format!("namespace {name}")))
        }
    }

    /// A namespace's direct members (visible to its members).
    pub async fn namespace_members(&self, actor: &Principal, name: &str) -> Result<Vec<Member>> {
        let ns = self.member_namespace(actor, name).await?;
        Ok(self.store.namespace_members(ns.id).await?)
    }

    /// A namespace's per-repository permissions (visible to its members).
    pub async fn repository_permissions(
        &self,
        actor: &Principal,
        name: &str,
    ) -> Result<Vec<RepositoryPermission>> {
        let ns = self.member_namespace(actor, name).await?;
        Ok(self.store.repository_permissions(ns.id).await?)
    }

    /// A namespace the actor belongs to (else not found).
    pub async fn member_namespace(&self, actor: &Principal, name: &str) -> Result<Namespace> {
        let ns = self.namespace(name).await?;
        if self.is_namespace_member(actor, &ns).await? {
            Ok(ns)
        } else {
            Err(DirectoryError::NotFound(format!("namespace {name}")))
        }
    }

    /// A namespace the actor administers (else forbidden).
    pub async fn admin_namespace(&self, actor: &Principal, name: &str) -> Result<Namespace> {
        self.administered_namespace(actor, name).await
    }

    /// Record an audit entry of a client's request, with its address.
    pub async fn record_from(
        &self,
        actor: &Principal,
        action: &str,
        target: &str,
        detail: &str,
        client_addr: &str,
    ) -> Result<()> {
        self.store
            .append_audit(
                actor.name(),
                action,
                target,
                detail,
                Some(client_addr),
                now_millis(),
            )
            .await?;
        Ok(())
    }

    /// Record an audit entry on behalf of another service.
    pub async fn record(
        &self,
        actor: &Principal,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<()> {
        self.audit(actor, action, target, detail).await
    }

    // ---- authentication and authorization ----------------------------------

    /// Check `docker login` credentials: an account's console password or
    /// independent registry password, or a registry user's password. Failures
    /// are audited with the client address.
    pub async fn authenticate(
        &self,
        username: &str,
        secret: &str,
        client_addr: Option<&str>,
    ) -> Result<Principal> {
        let result = self.check_credentials(username, secret).await;
        if let Err(DirectoryError::AuthenticationFailed) = &result {
            self.store
                .append_audit(
                    username,
                    "auth.failure",
                    "registry",
                    "invalid credentials or disabled user",
                    client_addr,
                    now_millis(),
                )
                .await?;
        }
        result
    }

    async fn check_credentials(&self, username: &str, secret: &str) -> Result<Principal> {
        let verify = |secret: &str, hash: Option<&str>| {
            let (secret, hash) = (secret.to_owned(), hash.map(str::to_owned));
            async move {
                password::verify(&secret, hash.as_deref())
                    .await
                    .map_err(|e| DirectoryError::Busy(e.to_string()))
            }
        };
        if let Some(account) = self.store.account_by_name(username).await? {
            let console = verify(secret, Some(&account.password_hash)).await?;
            let registry = match &account.registry_password_hash {
                Some(h) if !console => verify(secret, Some(h)).await?,
                _ => false,
            };
            if (console || registry) && !account.disabled {
                return Ok(Principal::Account {
                    id: account.id,
                    name: account.name,
                    is_admin: account.is_admin,
                });
            }
            return Err(DirectoryError::AuthenticationFailed);
        }
        let user = self.store.registry_user_by_name(username).await?;
        let ok = verify(secret, user.as_ref().map(|u| u.password_hash.as_str())).await?;
        match user {
            Some(u) if ok && u.enabled && u.expires_at.is_none_or(|t| t > now_millis()) => {
                Ok(Principal::RegistryUser {
                    id: u.id,
                    name: u.name,
                })
            }
            _ => Err(DirectoryError::AuthenticationFailed),
        }
    }

    /// Whether `secret` is the console password of the account `principal`
    /// (asked again before a password change made with a session or a
    /// token).
    pub async fn is_console_password(&self, principal: &Principal, secret: &str) -> Result<bool> {
        let Principal::Account { id, .. } = principal else {
            return Ok(false);
        };
        let Some(account) = self.store.account_by_id(*id).await? else {
            return Ok(false);
        };
        password::verify(secret, Some(&account.password_hash))
            .await
            .map_err(|e| DirectoryError::Busy(e.to_string()))
    }

    /// What the directory knows about `principal` and `repo`.
    pub async fn facts(&self, principal: &Principal, repo: &RepoName) -> Result<Facts> {
        let key = FactsKey::of(principal);
        if let Some(facts) = key.and_then(|k| self.cache.facts(k, repo.as_str())) {
            return Ok(facts);
        }
        let ticket = self.cache.ticket();
        let facts = self.read_facts(principal, repo).await?;
        // What decides about a namespace that does not exist yet is not
        // announced by the change feed: never kept.
        if let (Some(key), Some(_)) = (key, facts.namespace) {
            self.cache
                .put_facts(ticket, key, repo.as_str(), facts.clone());
        }
        Ok(facts)
    }

    /// A namespace's record for access checks (from the read cache when it
    /// holds it); `None` when there is no such namespace.
    pub async fn namespace_for_access(&self, name: &str) -> Result<Option<Arc<Namespace>>> {
        if let Some(ns) = self.cache.namespace(name) {
            return Ok(Some(ns));
        }
        let ticket = self.cache.ticket();
        let found = self.store.namespace_by_name(name).await?.map(Arc::new);
        if let Some(ns) = &found {
            self.cache.put_namespace(ticket, ns.clone());
        }
        Ok(found)
    }

    async fn read_facts(&self, principal: &Principal, repo: &RepoName) -> Result<Facts> {
        let ns_name = repo.namespace();
        let Some(ns) = self.namespace_for_access(ns_name).await? else {
            return Ok(Facts {
                may_create_namespace: self.may_auto_create(principal).await?,
                ..Facts::default()
            });
        };
        let mut facts = Facts {
            namespace: Some(NamespaceFacts {
                public: ns.public,
                platform: ns.name == self.config.platform_namespace,
            }),
            ..Facts::default()
        };
        match principal {
            Principal::Account { id, .. } => {
                facts.group_role = self
                    .store
                    .group_role(ns.group_id, *id)
                    .await?
                    .as_deref()
                    .and_then(Role::parse);
                facts.namespace_role = self
                    .store
                    .namespace_role(ns.id, *id)
                    .await?
                    .as_deref()
                    .and_then(Role::parse);
                facts.repo_permission = self
                    .store
                    .repository_permission(repo.as_str(), *id)
                    .await?
                    .as_deref()
                    .and_then(RepoPermission::parse);
            }
            Principal::RegistryUser { id, .. } => {
                facts.grant = self
                    .store
                    .grants_of(*id)
                    .await?
                    .into_iter()
                    .find(|g| g.namespace_id == ns.id)
                    .map(|g| (g.can_pull, g.can_push));
            }
            Principal::Anonymous | Principal::System => {}
        }
        Ok(facts)
    }

    async fn may_auto_create(&self, principal: &Principal) -> Result<bool> {
        if !self.config.auto_create_namespaces {
            return Ok(false);
        }
        let Principal::Account { id, is_admin, .. } = principal else {
            return Ok(false);
        };
        let Some(account) = self.store.account_by_id(*id).await? else {
            return Ok(false);
        };
        let Some(group) = account.default_group_id else {
            return Ok(false);
        };
        // The group's namespace limit is checked when the push creates
        // the namespace (race-free, and refused with a message naming it).
        Ok(*is_admin
            || matches!(
                self.store
                    .group_role(group, *id)
                    .await?
                    .as_deref()
                    .and_then(Role::parse),
                Some(Role::Admin | Role::Developer)
            ))
    }

    /// The actions `principal` may take on `repo`.
    pub async fn actions(&self, principal: &Principal, repo: &RepoName) -> Result<Actions> {
        Ok(access::allowed(
            principal,
            &self.facts(principal, repo).await?,
        ))
    }

    /// The actions `principal` may take on every repository of a namespace
    /// (by roles, grants and visibility; per-repository permissions aside).
    pub async fn namespace_actions(
        &self,
        principal: &Principal,
        namespace: &str,
    ) -> Result<Actions> {
        // The namespace's own name as a repository: its namespace is the
        // namespace, whatever the length of the name.
        let any = RepoName::parse(namespace).map_err(|e| DirectoryError::Invalid(e.to_string()))?;
        let mut facts = self.facts(principal, &any).await?;
        facts.repo_permission = None;
        Ok(access::allowed(principal, &facts))
    }

    /// Before a push into a namespace that does not exist: create it (private,
    /// in the pusher's default group) when the pusher may.
    pub async fn ensure_namespace(&self, principal: &Principal, repo: &RepoName) -> Result<()> {
        if self
            .store
            .namespace_by_name(repo.namespace())
            .await?
            .is_some()
        {
            return Ok(());
        }
        if !self.may_auto_create(principal).await? {
            return Err(DirectoryError::Forbidden(format!(
                "namespace {} does not exist",
                repo.namespace()
            )));
        }
        let spec = NamespaceSpec {
            name: repo.namespace().to_owned(),
            ..NamespaceSpec::default()
        };
        match self.create_namespace(principal, &spec).await {
            Ok(_) | Err(DirectoryError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
