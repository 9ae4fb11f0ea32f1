//! The directory service: accounts, project groups, namespaces, members,
//! per-repository permissions, registry users and grants; authentication;
//! and the facts that [`crate::access::allowed`] decides on. Every change of
//! membership or grant, and every failed login, goes to the audit log.
//!
//! One file per concern: `accounts` (accounts and project groups),
//! `namespaces`, `registry_users`, and `authentication` (passwords and
//! the access facts, read through the cache).

mod accounts;
mod authentication;
mod namespaces;
mod registry_users;

pub use namespaces::NamespaceSpec;
pub use registry_users::RegistryUserSpec;

use std::sync::Arc;

use berth_meta::{DirectoryStore, MetaError, NewNamespace};

use crate::access::Principal;
use crate::clock::now_millis;
use crate::error::DirectoryError;
use crate::password;
use crate::read_cache::ReadCache;

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
pub(crate) fn check_name(kind: &str, name: &str) -> Result<()> {
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
}
