//! Authentication (passwords of accounts and registry users) and the
//! facts [`crate::access::allowed`] decides on, read through the cache;
//! namespace auto-creation on push.

use std::sync::Arc;

use berth_meta::Namespace;
use berth_oci::RepoName;

use crate::access::{self, Actions, Facts, NamespaceFacts, Principal, RepoPermission, Role};
use crate::clock::now_millis;
use crate::error::DirectoryError;
use crate::password;
use crate::read_cache::FactsKey;

type Result<T> = std::result::Result<T, DirectoryError>;

use super::namespaces::NamespaceSpec;
use super::Directory;

impl Directory {
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
            // An account of an identity provider has no console password
            // here: it signs in there, and uses its registry password or
            // an API token on the command line.
            let console =
                account.origin == "local" && verify(secret, Some(&account.password_hash)).await?;
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

    /// Whether `secret` is the independent registry password of `account`
    /// (nothing audited: the caller decides what a failure means).
    pub async fn is_registry_password(
        &self,
        account: &berth_meta::Account,
        secret: &str,
    ) -> Result<bool> {
        match &account.registry_password_hash {
            Some(h) => password::verify(secret, Some(h))
                .await
                .map_err(|e| DirectoryError::Busy(e.to_string())),
            None => Ok(false),
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
        if account.origin != "local" {
            return Ok(false);
        }
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

    /// Why an external client may not do this in `namespace` (`None`: it
    /// may). With its external-access switch off, a namespace takes only
    /// external pulls, and those only when it is public. A namespace that
    /// does not exist yet (a push creates it) starts with the switch on.
    pub async fn external_refusal(&self, namespace: &str, pull: bool) -> Result<Option<String>> {
        Ok(match self.namespace_for_access(namespace).await? {
            Some(ns) => {
                crate::zones::external_refusal(&ns.name, ns.external_access, ns.public, pull)
            }
            None => None,
        })
    }

    /// Whether an external client may mount a blob from `from`: only from a
    /// repository it could pull from outside. Without `from` any
    /// repository could be picked, so no.
    pub async fn external_mount_allowed(&self, from: Option<&RepoName>) -> Result<bool> {
        let Some(from) = from else {
            return Ok(false);
        };
        match self.namespace(from.namespace()).await {
            Ok(ns) => {
                Ok(
                    crate::zones::external_refusal(&ns.name, ns.external_access, ns.public, true)
                        .is_none(),
                )
            }
            Err(DirectoryError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
