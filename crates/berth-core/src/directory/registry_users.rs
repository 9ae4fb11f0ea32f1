//! Registry users (robot accounts): creation, passwords, expiry, grants.

use berth_meta::{
    Account, Grant, Member, Namespace, NewRegistryUser, ProjectGroup, RegistryUser,
    RepositoryPermission,
};

use crate::access::Principal;
use crate::clock::now_millis;
use crate::error::DirectoryError;
use crate::password;

type Result<T> = std::result::Result<T, DirectoryError>;

use super::{check_name, check_password, Directory};

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

impl Directory {
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

    pub(crate) async fn owned_registry_user(
        &self,
        actor: &Principal,
        name: &str,
    ) -> Result<RegistryUser> {
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
}
