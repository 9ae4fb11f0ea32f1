//! Namespaces: creation, members, per-repository permissions and grants.

use berth_meta::{MetaError, Namespace, NewNamespace};
use berth_oci::RepoName;

use crate::access::{Principal, RepoPermission, Role};
use crate::clock::now_millis;
use crate::error::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

use super::Directory;

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

impl Directory {
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
    pub(super) async fn administered_namespace(
        &self,
        actor: &Principal,
        name: &str,
    ) -> Result<Namespace> {
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
}
