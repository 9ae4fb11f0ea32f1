//! Accounts and project groups: creation, passwords, membership, limits.

use berth_meta::{Account, MetaError, NewAccount, ProjectGroup};

use crate::access::{Principal, Role};
use crate::clock::now_millis;
use crate::error::DirectoryError;
use crate::password;

type Result<T> = std::result::Result<T, DirectoryError>;

use super::{check_name, check_password, Directory};

impl Directory {
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
        self.provision(
            actor,
            &NewAccount {
                name,
                email,
                password_hash: &hash,
                is_admin,
                origin: "local",
                external_subject: None,
                now: now_millis(),
            },
            if is_admin { "platform admin" } else { "" },
        )
        .await
    }

    /// Store a new account with its default project group (of its name,
    /// where it is an administrator), audited as made by `actor`: for
    /// accounts made by administrators and by a first sign-in.
    pub(crate) async fn provision(
        &self,
        actor: &Principal,
        new: &NewAccount<'_>,
        detail: &str,
    ) -> Result<Account> {
        let (name, now) = (new.name, new.now);
        let account = self.store.create_account(new).await?;
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
        self.audit(actor, "account.create", name, detail).await?;
        self.account(name).await
    }

    /// Whether `principal` is an account with a Berth console password
    /// (a local one). Accounts of identity providers have none: their
    /// sign-in at the provider stands for it where a change asks for it.
    pub async fn has_console_password(&self, principal: &Principal) -> Result<bool> {
        let Principal::Account { id, .. } = principal else {
            return Ok(false);
        };
        Ok(self
            .store
            .account_by_id(*id)
            .await?
            .is_some_and(|a| a.origin == "local"))
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
        if account.origin != "local" {
            return Err(DirectoryError::Invalid(format!(
                "{name} signs in through {}: its password is kept there, not in Berth",
                account.origin
            )));
        }
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
}
