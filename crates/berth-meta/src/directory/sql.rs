//! The directory's tables in SQL (`DirectoryStore`): accounts, project
//! groups, namespaces, members, permissions, registry users, grants, the
//! audit log, settings and login failures. Written once for both databases.

use async_trait::async_trait;
use sqlx::Row;

use super::{Db, DbRow, Store};
use crate::directory::{
    Account, AuditEntry, DirectoryStore, Grant, Member, Namespace, NewAccount, NewNamespace,
    NewRegistryUser, ProjectGroup, RegistryUser, RepositoryPermission,
};
use crate::error::{MetaError, MetaResult};

const ACCOUNT: &str = "SELECT id, name, email, password_hash, registry_password_hash, \
     is_admin, disabled, token_generation, default_group_id, created_at, updated_at, origin, \
     external_subject, admin_by_mapping FROM accounts";
const GROUP: &str =
    "SELECT id, name, description, namespace_limit, quota_bytes, created_at FROM project_groups";
const NAMESPACE: &str =
    "SELECT id, name, group_id, public, description, category, labels, status, \
     external_access, created_at, updated_at FROM namespaces";
const REGISTRY_USER: &str = "SELECT id, name, password_hash, description, enabled, \
     token_generation, expires_at, owner_id, created_at, updated_at FROM registry_users";

/// Turn a unique-constraint violation into `Conflict(what)`.
pub(crate) fn conflict(what: String) -> impl FnOnce(sqlx::Error) -> MetaError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => MetaError::Conflict(what),
        _ => MetaError::Database(e),
    }
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

pub(crate) fn account_row(r: &DbRow) -> MetaResult<Account> {
    Ok(Account {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        password_hash: r.try_get("password_hash")?,
        registry_password_hash: r.try_get("registry_password_hash")?,
        is_admin: r.try_get::<i64, _>("is_admin")? != 0,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        token_generation: r.try_get("token_generation")?,
        default_group_id: r.try_get("default_group_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        origin: r.try_get("origin")?,
        external_subject: r.try_get("external_subject")?,
        admin_by_mapping: r.try_get::<i64, _>("admin_by_mapping")? != 0,
    })
}

pub(crate) fn group_row(r: &DbRow) -> MetaResult<ProjectGroup> {
    Ok(ProjectGroup {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        namespace_limit: r.try_get("namespace_limit")?,
        quota_bytes: r.try_get("quota_bytes")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(crate) fn namespace_row(r: &DbRow) -> MetaResult<Namespace> {
    Ok(Namespace {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        group_id: r.try_get("group_id")?,
        public: r.try_get::<i64, _>("public")? != 0,
        description: r.try_get("description")?,
        category: r.try_get("category")?,
        labels: r.try_get("labels")?,
        status: r.try_get("status")?,
        external_access: r.try_get::<i64, _>("external_access")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(crate) fn registry_user_row(r: &DbRow) -> MetaResult<RegistryUser> {
    Ok(RegistryUser {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        password_hash: r.try_get("password_hash")?,
        description: r.try_get("description")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        token_generation: r.try_get("token_generation")?,
        expires_at: r.try_get("expires_at")?,
        owner_id: r.try_get("owner_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub(crate) fn member_row(r: &DbRow) -> MetaResult<Member> {
    Ok(Member {
        account_id: r.try_get("account_id")?,
        account_name: r.try_get("name")?,
        role: r.try_get("role")?,
    })
}

/// The row `sql` finds for one text parameter, mapped.
pub(crate) async fn one<T>(
    store: &Store,
    sql: &str,
    bind: &str,
    map: fn(&DbRow) -> MetaResult<T>,
) -> MetaResult<Option<T>> {
    sqlx::query(sql)
        .bind(bind)
        .fetch_optional(&store.read)
        .await?
        .as_ref()
        .map(map)
        .transpose()
}

pub(crate) async fn one_by_id<T>(
    store: &Store,
    sql: &str,
    id: i64,
    map: fn(&DbRow) -> MetaResult<T>,
) -> MetaResult<Option<T>> {
    sqlx::query(sql)
        .bind(id)
        .fetch_optional(&store.write)
        .await?
        .as_ref()
        .map(map)
        .transpose()
}

pub(crate) async fn exec<'q>(
    store: &Store,
    query: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>,
) -> MetaResult<u64> {
    Ok(query.execute(&store.write).await?.rows_affected())
}

#[async_trait]
impl DirectoryStore for Store {
    async fn count_accounts(&self) -> MetaResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.read)
            .await?;
        Ok(n)
    }

    async fn account_by_external(
        &self,
        origin: &str,
        subject: &str,
    ) -> MetaResult<Option<Account>> {
        let sql = format!("{} WHERE origin = $1 AND external_subject = $2", ACCOUNT);
        let row = sqlx::query(&sql)
            .bind(origin)
            .bind(subject)
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(account_row).transpose()
    }

    async fn create_account(&self, a: &NewAccount<'_>) -> MetaResult<Account> {
        // In a transaction: an INSERT … RETURNING read outside one
        // yields its row before SQLite commits, and a failed commit
        // (a full disk) would then be lost.
        let mut tx = self.write.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO accounts (name, email, password_hash, is_admin, created_at, updated_at, \
             origin, external_subject) VALUES ($1, $2, $3, $4, $5, $5, $6, $7) RETURNING id",
        )
        .bind(a.name)
        .bind(a.email)
        .bind(a.password_hash)
        .bind(flag(a.is_admin))
        .bind(a.now)
        .bind(a.origin)
        .bind(a.external_subject)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!("account {}", a.name)))?;
        tx.commit().await?;
        one_by_id(self, &format!("{ACCOUNT} WHERE id = $1"), id, account_row)
            .await?
            .ok_or_else(|| MetaError::Corrupt("account vanished after insert".into()))
    }

    async fn account_by_name(&self, name: &str) -> MetaResult<Option<Account>> {
        one(
            self,
            &format!("{ACCOUNT} WHERE name = $1"),
            name,
            account_row,
        )
        .await
    }

    async fn account_by_id(&self, id: i64) -> MetaResult<Option<Account>> {
        one_by_id(self, &format!("{ACCOUNT} WHERE id = $1"), id, account_row).await
    }

    async fn list_accounts(&self) -> MetaResult<Vec<Account>> {
        let rows = sqlx::query(&format!("{ACCOUNT} ORDER BY name"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(account_row).collect()
    }

    async fn set_account_password(&self, id: i64, hash: &str, now: i64) -> MetaResult<()> {
        exec(self, sqlx::query("UPDATE accounts SET password_hash = $2, updated_at = $3, token_generation = token_generation + 1 WHERE id = $1").bind(id).bind(hash).bind(now)).await?;
        Ok(())
    }

    async fn set_registry_password(&self, id: i64, hash: Option<&str>, now: i64) -> MetaResult<()> {
        exec(self, sqlx::query("UPDATE accounts SET registry_password_hash = $2, updated_at = $3, token_generation = token_generation + 1 WHERE id = $1").bind(id).bind(hash).bind(now)).await?;
        Ok(())
    }

    async fn set_account_disabled(&self, id: i64, disabled: bool, now: i64) -> MetaResult<()> {
        exec(self, sqlx::query("UPDATE accounts SET disabled = $2, updated_at = $3, token_generation = token_generation + 1 WHERE id = $1").bind(id).bind(flag(disabled)).bind(now)).await?;
        Ok(())
    }

    async fn revoke_account_tokens(&self, id: i64, keep: Option<&str>) -> MetaResult<u64> {
        let mut tx = self.write.begin().await?;
        sqlx::query("UPDATE accounts SET token_generation = token_generation + 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let ended = sqlx::query(
            "DELETE FROM sessions WHERE account_id = $1 AND id_hash <> COALESCE($2, '')",
        )
        .bind(id)
        .bind(keep)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(ended)
    }

    async fn set_default_group(&self, id: i64, group_id: i64, now: i64) -> MetaResult<()> {
        exec(
            self,
            sqlx::query("UPDATE accounts SET default_group_id = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(group_id)
                .bind(now),
        )
        .await?;
        Ok(())
    }

    async fn create_group(
        &self,
        name: &str,
        description: &str,
        now: i64,
    ) -> MetaResult<ProjectGroup> {
        let mut tx = self.write.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO project_groups (name, description, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(description)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!("project group {name}")))?;
        tx.commit().await?;
        one_by_id(self, &format!("{GROUP} WHERE id = $1"), id, group_row)
            .await?
            .ok_or_else(|| MetaError::Corrupt("group vanished after insert".into()))
    }

    async fn group_by_name(&self, name: &str) -> MetaResult<Option<ProjectGroup>> {
        one(self, &format!("{GROUP} WHERE name = $1"), name, group_row).await
    }

    async fn group_by_id(&self, id: i64) -> MetaResult<Option<ProjectGroup>> {
        one_by_id(self, &format!("{GROUP} WHERE id = $1"), id, group_row).await
    }

    async fn list_groups(&self) -> MetaResult<Vec<ProjectGroup>> {
        let rows = sqlx::query(&format!("{GROUP} ORDER BY name"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(group_row).collect()
    }

    async fn set_group_member(&self, group_id: i64, account_id: i64, role: &str) -> MetaResult<()> {
        exec(
            self,
            sqlx::query(
                "INSERT INTO group_members (group_id, account_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (group_id, account_id) DO UPDATE SET role = excluded.role, source = 'manual'",
            )
            .bind(group_id)
            .bind(account_id)
            .bind(role),
        )
        .await?;
        Ok(())
    }

    async fn remove_group_member(&self, group_id: i64, account_id: i64) -> MetaResult<bool> {
        Ok(exec(
            self,
            sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND account_id = $2")
                .bind(group_id)
                .bind(account_id),
        )
        .await?
            > 0)
    }

    async fn group_members(&self, group_id: i64) -> MetaResult<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT m.account_id, a.name, m.role FROM group_members m \
             JOIN accounts a ON a.id = m.account_id WHERE m.group_id = $1 ORDER BY a.name",
        )
        .bind(group_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(member_row).collect()
    }

    async fn group_role(&self, group_id: i64, account_id: i64) -> MetaResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT role FROM group_members WHERE group_id = $1 AND account_id = $2",
        )
        .bind(group_id)
        .bind(account_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| r.0))
    }

    async fn create_namespace(&self, n: &NewNamespace<'_>) -> MetaResult<Namespace> {
        let mut tx = self.write.begin().await?;
        let row: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO namespaces (name, group_id, public, description, category, labels, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $7 \
             WHERE $8 IS NULL OR (SELECT COUNT(*) FROM namespaces WHERE group_id = $2) < $8 RETURNING id",
        )
        .bind(n.name)
        .bind(n.group_id)
        .bind(flag(n.public))
        .bind(n.description)
        .bind(n.category)
        .bind(n.labels)
        .bind(n.now)
        .bind(n.group_limit)
        .fetch_optional(&mut *tx)
        .await
        .map_err(conflict(format!("namespace {}", n.name)))?;
        tx.commit().await?;
        let (id,) = row.ok_or(MetaError::LimitReached)?;
        one_by_id(
            self,
            &format!("{NAMESPACE} WHERE id = $1"),
            id,
            namespace_row,
        )
        .await?
        .ok_or_else(|| MetaError::Corrupt("namespace vanished after insert".into()))
    }

    async fn namespace_by_name(&self, name: &str) -> MetaResult<Option<Namespace>> {
        one(
            self,
            &format!("{NAMESPACE} WHERE name = $1"),
            name,
            namespace_row,
        )
        .await
    }

    async fn list_namespaces(&self) -> MetaResult<Vec<Namespace>> {
        let rows = sqlx::query(&format!("{NAMESPACE} ORDER BY name"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(namespace_row).collect()
    }

    async fn set_group_quota(&self, group_id: i64, quota: Option<i64>) -> MetaResult<()> {
        exec(
            self,
            sqlx::query("UPDATE project_groups SET quota_bytes = $2 WHERE id = $1")
                .bind(group_id)
                .bind(quota),
        )
        .await?;
        Ok(())
    }

    async fn group_usage(&self, group_id: i64) -> MetaResult<i64> {
        let (used,): (i64,) = sqlx::query_as(super::registry::GROUP_USAGE)
            .bind(group_id)
            .fetch_one(&self.read)
            .await?;
        Ok(used)
    }

    async fn set_group_namespace_limit(&self, group_id: i64, limit: Option<i64>) -> MetaResult<()> {
        exec(
            self,
            sqlx::query("UPDATE project_groups SET namespace_limit = $2 WHERE id = $1")
                .bind(group_id)
                .bind(limit),
        )
        .await?;
        Ok(())
    }

    async fn count_group_namespaces(&self, group_id: i64) -> MetaResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM namespaces WHERE group_id = $1")
            .bind(group_id)
            .fetch_one(&self.read)
            .await?;
        Ok(n)
    }

    async fn set_namespace_public(&self, id: i64, public: bool, now: i64) -> MetaResult<()> {
        exec(
            self,
            sqlx::query("UPDATE namespaces SET public = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(flag(public))
                .bind(now),
        )
        .await?;
        Ok(())
    }

    async fn delete_namespace(&self, id: i64) -> MetaResult<bool> {
        Ok(exec(
            self,
            sqlx::query("DELETE FROM namespaces WHERE id = $1").bind(id),
        )
        .await?
            > 0)
    }

    async fn set_namespace_member(
        &self,
        namespace_id: i64,
        account_id: i64,
        role: &str,
    ) -> MetaResult<()> {
        exec(self, sqlx::query(
            "INSERT INTO namespace_members (namespace_id, account_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (namespace_id, account_id) DO UPDATE SET role = excluded.role, source = 'manual'",
        ).bind(namespace_id).bind(account_id).bind(role)).await?;
        Ok(())
    }

    async fn remove_namespace_member(
        &self,
        namespace_id: i64,
        account_id: i64,
    ) -> MetaResult<bool> {
        Ok(exec(
            self,
            sqlx::query(
                "DELETE FROM namespace_members WHERE namespace_id = $1 AND account_id = $2",
            )
            .bind(namespace_id)
            .bind(account_id),
        )
        .await?
            > 0)
    }

    async fn namespace_members(&self, namespace_id: i64) -> MetaResult<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT m.account_id, a.name, m.role FROM namespace_members m \
             JOIN accounts a ON a.id = m.account_id WHERE m.namespace_id = $1 ORDER BY a.name",
        )
        .bind(namespace_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(member_row).collect()
    }

    async fn namespace_role(
        &self,
        namespace_id: i64,
        account_id: i64,
    ) -> MetaResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT role FROM namespace_members WHERE namespace_id = $1 AND account_id = $2",
        )
        .bind(namespace_id)
        .bind(account_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| r.0))
    }

    async fn set_repository_permission(
        &self,
        namespace_id: i64,
        repository: &str,
        account_id: i64,
        permission: &str,
    ) -> MetaResult<()> {
        exec(self, sqlx::query(
            "INSERT INTO repository_permissions (namespace_id, repository, account_id, permission) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repository, account_id) DO UPDATE SET permission = excluded.permission",
        ).bind(namespace_id).bind(repository).bind(account_id).bind(permission)).await?;
        Ok(())
    }

    async fn remove_repository_permission(
        &self,
        repository: &str,
        account_id: i64,
    ) -> MetaResult<bool> {
        Ok(exec(
            self,
            sqlx::query(
                "DELETE FROM repository_permissions WHERE repository = $1 AND account_id = $2",
            )
            .bind(repository)
            .bind(account_id),
        )
        .await?
            > 0)
    }

    async fn repository_permissions(
        &self,
        namespace_id: i64,
    ) -> MetaResult<Vec<RepositoryPermission>> {
        let rows: Vec<(String, i64, String, String)> = sqlx::query_as(
            "SELECT p.repository, p.account_id, a.name, p.permission FROM repository_permissions p \
             JOIN accounts a ON a.id = p.account_id WHERE p.namespace_id = $1 ORDER BY p.repository, a.name",
        ).bind(namespace_id).fetch_all(&self.read).await?;
        Ok(rows
            .into_iter()
            .map(
                |(repository, account_id, account_name, permission)| RepositoryPermission {
                    repository,
                    account_id,
                    account_name,
                    permission,
                },
            )
            .collect())
    }

    async fn repository_permission(
        &self,
        repository: &str,
        account_id: i64,
    ) -> MetaResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT permission FROM repository_permissions WHERE repository = $1 AND account_id = $2")
            .bind(repository).bind(account_id).fetch_optional(&self.read).await?;
        Ok(row.map(|r| r.0))
    }

    async fn create_registry_user(&self, u: &NewRegistryUser<'_>) -> MetaResult<RegistryUser> {
        let mut tx = self.write.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO registry_users (name, password_hash, description, expires_at, owner_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(u.name)
        .bind(u.password_hash)
        .bind(u.description)
        .bind(u.expires_at)
        .bind(u.owner_id)
        .bind(u.now)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!("registry user {}", u.name)))?;
        tx.commit().await?;
        one_by_id(
            self,
            &format!("{REGISTRY_USER} WHERE id = $1"),
            id,
            registry_user_row,
        )
        .await?
        .ok_or_else(|| MetaError::Corrupt("registry user vanished after insert".into()))
    }

    async fn registry_user_by_name(&self, name: &str) -> MetaResult<Option<RegistryUser>> {
        one(
            self,
            &format!("{REGISTRY_USER} WHERE name = $1"),
            name,
            registry_user_row,
        )
        .await
    }

    async fn list_registry_users(&self, owner_id: Option<i64>) -> MetaResult<Vec<RegistryUser>> {
        let rows = sqlx::query(&format!(
            "{REGISTRY_USER} WHERE ($1 IS NULL OR owner_id = $1) ORDER BY name"
        ))
        .bind(owner_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(registry_user_row).collect()
    }

    async fn set_registry_user_password(&self, id: i64, hash: &str, now: i64) -> MetaResult<()> {
        exec(self, sqlx::query("UPDATE registry_users SET password_hash = $2, updated_at = $3, token_generation = token_generation + 1 WHERE id = $1").bind(id).bind(hash).bind(now)).await?;
        Ok(())
    }

    async fn set_registry_user_enabled(&self, id: i64, enabled: bool, now: i64) -> MetaResult<()> {
        exec(self, sqlx::query("UPDATE registry_users SET enabled = $2, updated_at = $3, token_generation = token_generation + 1 WHERE id = $1").bind(id).bind(flag(enabled)).bind(now)).await?;
        Ok(())
    }

    async fn delete_registry_user(&self, id: i64) -> MetaResult<bool> {
        Ok(exec(
            self,
            sqlx::query("DELETE FROM registry_users WHERE id = $1").bind(id),
        )
        .await?
            > 0)
    }

    async fn set_grant(
        &self,
        registry_user_id: i64,
        namespace_id: i64,
        can_pull: bool,
        can_push: bool,
    ) -> MetaResult<()> {
        exec(self, sqlx::query(
            "INSERT INTO registry_user_grants (registry_user_id, namespace_id, can_pull, can_push) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (registry_user_id, namespace_id) DO UPDATE SET can_pull = excluded.can_pull, can_push = excluded.can_push",
        ).bind(registry_user_id).bind(namespace_id).bind(flag(can_pull)).bind(flag(can_push))).await?;
        Ok(())
    }

    async fn remove_grant(&self, registry_user_id: i64, namespace_id: i64) -> MetaResult<bool> {
        Ok(exec(self, sqlx::query("DELETE FROM registry_user_grants WHERE registry_user_id = $1 AND namespace_id = $2").bind(registry_user_id).bind(namespace_id)).await? > 0)
    }

    async fn grants_of(&self, registry_user_id: i64) -> MetaResult<Vec<Grant>> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT g.namespace_id, n.name, g.can_pull, g.can_push FROM registry_user_grants g \
             JOIN namespaces n ON n.id = g.namespace_id WHERE g.registry_user_id = $1 ORDER BY n.name",
        ).bind(registry_user_id).fetch_all(&self.read).await?;
        Ok(rows
            .into_iter()
            .map(|(namespace_id, namespace, pull, push)| Grant {
                registry_user_id,
                namespace_id,
                namespace,
                can_pull: pull != 0,
                can_push: push != 0,
            })
            .collect())
    }

    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        client_addr: Option<&str>,
        at: i64,
    ) -> MetaResult<()> {
        exec(self, sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail, client_addr) VALUES ($1, $2, $3, $4, $5, $6)",
        ).bind(at).bind(actor).bind(action).bind(target).bind(detail).bind(client_addr)).await?;
        Ok(())
    }

    async fn list_audit(&self, limit: i64) -> MetaResult<Vec<AuditEntry>> {
        let rows: Vec<(i64, i64, String, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, at, actor, action, target, detail, client_addr FROM audit_log ORDER BY id DESC LIMIT $1",
        ).bind(limit).fetch_all(&self.read).await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, at, actor, action, target, detail, client_addr)| AuditEntry {
                    id,
                    at,
                    actor,
                    action,
                    target,
                    detail,
                    client_addr,
                },
            )
            .collect())
    }

    async fn get_setting(&self, key: &str) -> MetaResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.0))
    }

    async fn init_setting(&self, key: &str, value: &str) -> MetaResult<String> {
        exec(
            self,
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value),
        )
        .await?;
        let (v,): (String,) = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.write)
            .await?;
        Ok(v)
    }

    async fn replace_setting(&self, key: &str, old: &str, new: &str) -> MetaResult<bool> {
        Ok(exec(
            self,
            sqlx::query("UPDATE settings SET value = $3 WHERE key = $1 AND value = $2")
                .bind(key)
                .bind(old)
                .bind(new),
        )
        .await?
            > 0)
    }

    async fn credential_changes(
        &self,
        since: i64,
        limit: i64,
    ) -> MetaResult<Vec<(i64, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT id, name, at FROM credential_changes WHERE at >= $1 ORDER BY at, id LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn prune_login_state(&self, before: i64) -> MetaResult<()> {
        exec(
            self,
            sqlx::query("DELETE FROM credential_changes WHERE at < $1").bind(before),
        )
        .await?;
        exec(self, sqlx::query(
            "DELETE FROM login_failures WHERE since < $1 AND (blocked_until IS NULL OR blocked_until < $1)",
        ).bind(before)).await?;
        Ok(())
    }

    async fn login_blocked_until(&self, keys: &[String]) -> MetaResult<Option<i64>> {
        let mut latest: Option<i64> = None;
        for key in keys {
            let row: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT blocked_until FROM login_failures WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.read)
                    .await?;
            if let Some((Some(until),)) = row {
                latest = Some(latest.map_or(until, |l| l.max(until)));
            }
        }
        Ok(latest)
    }

    async fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        window_start: i64,
    ) -> MetaResult<i64> {
        let (count,): (i64,) = sqlx::query_as(
            "INSERT INTO login_failures (key, count, since) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN login_failures.since < $3 THEN 1 ELSE login_failures.count + 1 END, \
               blocked_until = CASE WHEN login_failures.since < $3 THEN NULL ELSE login_failures.blocked_until END, \
               since = CASE WHEN login_failures.since < $3 THEN $2 ELSE login_failures.since END \
             RETURNING count",
        )
        .bind(key)
        .bind(now)
        .bind(window_start)
        .fetch_one(&self.write)
        .await?;
        Ok(count)
    }

    async fn block_login(&self, key: &str, until: i64) -> MetaResult<()> {
        exec(
            self,
            sqlx::query("UPDATE login_failures SET blocked_until = $2 WHERE key = $1")
                .bind(key)
                .bind(until),
        )
        .await?;
        Ok(())
    }

    async fn clear_login_failures(&self, keys: &[String]) -> MetaResult<()> {
        for key in keys {
            exec(
                self,
                sqlx::query("DELETE FROM login_failures WHERE key = $1").bind(key),
            )
            .await?;
        }
        Ok(())
    }
}
