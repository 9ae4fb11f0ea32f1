//! Trust rules in SQL (`IdentityStore`). Written once for both databases.

use async_trait::async_trait;
use sqlx::Row;

use super::{DbRow, Store};
use crate::error::{MetaError, MetaResult};
use crate::identity::{
    GroupMappingRecord, IdentityStore, MappedMembership, MembershipKind, NewTrustRule, TrustRule,
};

const SELECT: &str = "SELECT t.id, t.name, t.issuer, t.audience, t.subject, t.claims, \
     t.registry_user_id, u.name AS registry_user, t.created_by, t.created_at \
     FROM trust_rules t JOIN registry_users u ON u.id = t.registry_user_id";

fn rule_row(r: &DbRow) -> MetaResult<TrustRule> {
    Ok(TrustRule {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        issuer: r.try_get("issuer")?,
        audience: r.try_get("audience")?,
        subject: r.try_get("subject")?,
        claims: r.try_get("claims")?,
        registry_user_id: r.try_get("registry_user_id")?,
        registry_user: r.try_get("registry_user")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The membership table of a kind and its target column.
fn table(kind: MembershipKind) -> (&'static str, &'static str) {
    match kind {
        MembershipKind::Group => ("group_members", "group_id"),
        MembershipKind::Namespace => ("namespace_members", "namespace_id"),
    }
}

const MAPPING: &str = "SELECT id, origin, external_group, grant_kind, target, role, created_by, \
     created_at FROM group_mappings";

fn mapping_row(r: &DbRow) -> MetaResult<GroupMappingRecord> {
    Ok(GroupMappingRecord {
        id: r.try_get("id")?,
        origin: r.try_get("origin")?,
        external_group: r.try_get("external_group")?,
        grant_kind: r.try_get("grant_kind")?,
        target: r.try_get("target")?,
        role: r.try_get("role")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

#[async_trait]
impl IdentityStore for Store {
    async fn create_group_mapping(&self, m: &GroupMappingRecord) -> MetaResult<GroupMappingRecord> {
        // In a transaction: a RETURNING row read outside one comes before
        // SQLite's commit, which could still fail.
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "INSERT INTO group_mappings (origin, external_group, grant_kind, target, role, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (origin, external_group, grant_kind, target) DO NOTHING \
             RETURNING id, origin, external_group, grant_kind, target, role, created_by, created_at",
        )
        .bind(&m.origin)
        .bind(&m.external_group)
        .bind(&m.grant_kind)
        .bind(&m.target)
        .bind(&m.role)
        .bind(&m.created_by)
        .bind(m.created_at)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match row {
            Some(r) => mapping_row(&r),
            None => Err(MetaError::Conflict(format!(
                "a mapping of {} {} to that",
                m.origin, m.external_group
            ))),
        }
    }

    async fn group_mappings(&self) -> MetaResult<Vec<GroupMappingRecord>> {
        let rows = sqlx::query(&format!("{MAPPING} ORDER BY id"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(mapping_row).collect()
    }

    async fn delete_group_mapping(&self, id: i64) -> MetaResult<Option<GroupMappingRecord>> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "DELETE FROM group_mappings WHERE id = $1 \
             RETURNING id, origin, external_group, grant_kind, target, role, created_by, created_at",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(mapping_row).transpose()
    }

    async fn mapped_memberships(&self, account_id: i64) -> MetaResult<Vec<MappedMembership>> {
        let rows = sqlx::query(
            "SELECT 'group' AS kind, g.id AS target_id, g.name AS target, m.role \
             FROM group_members m JOIN project_groups g ON g.id = m.group_id \
             WHERE m.account_id = $1 AND m.source = 'mapping' \
             UNION ALL \
             SELECT 'namespace' AS kind, n.id AS target_id, n.name AS target, m.role \
             FROM namespace_members m JOIN namespaces n ON n.id = m.namespace_id \
             WHERE m.account_id = $1 AND m.source = 'mapping'",
        )
        .bind(account_id)
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(MappedMembership {
                    kind: if kind == "group" {
                        MembershipKind::Group
                    } else {
                        MembershipKind::Namespace
                    },
                    target_id: r.try_get("target_id")?,
                    target: r.try_get("target")?,
                    role: r.try_get("role")?,
                })
            })
            .collect()
    }

    async fn set_mapped_membership(
        &self,
        kind: MembershipKind,
        target_id: i64,
        account_id: i64,
        role: &str,
    ) -> MetaResult<bool> {
        let (table, column) = table(kind);
        let sql = format!(
            "INSERT INTO {table} ({column}, account_id, role, source) VALUES ($1, $2, $3, 'mapping') \
             ON CONFLICT ({column}, account_id) DO UPDATE SET role = excluded.role \
             WHERE {table}.source = 'mapping' AND {table}.role <> excluded.role"
        );
        let done = sqlx::query(&sql)
            .bind(target_id)
            .bind(account_id)
            .bind(role)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_mapped_membership(
        &self,
        kind: MembershipKind,
        target_id: i64,
        account_id: i64,
    ) -> MetaResult<bool> {
        let (table, column) = table(kind);
        let sql = format!(
            "DELETE FROM {table} WHERE {column} = $1 AND account_id = $2 AND source = 'mapping'"
        );
        let done = sqlx::query(&sql)
            .bind(target_id)
            .bind(account_id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_admin_by_mapping(
        &self,
        account_id: i64,
        admin: bool,
        now: i64,
    ) -> MetaResult<bool> {
        let sql = if admin {
            "UPDATE accounts SET is_admin = 1, admin_by_mapping = 1, updated_at = $2 \
             WHERE id = $1 AND is_admin = 0"
        } else {
            "UPDATE accounts SET is_admin = 0, admin_by_mapping = 0, updated_at = $2 \
             WHERE id = $1 AND admin_by_mapping = 1"
        };
        let done = sqlx::query(sql)
            .bind(account_id)
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_trust_rule(&self, t: &NewTrustRule<'_>) -> MetaResult<TrustRule> {
        let done = sqlx::query(
            "INSERT INTO trust_rules (name, issuer, audience, subject, claims, \
             registry_user_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(t.name)
        .bind(t.issuer)
        .bind(t.audience)
        .bind(t.subject)
        .bind(t.claims)
        .bind(t.registry_user_id)
        .bind(t.created_by)
        .bind(t.now)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(MetaError::Conflict(format!(
                "a trust rule named {}",
                t.name
            )));
        }
        let sql = format!("{SELECT} WHERE t.name = $1");
        let row = sqlx::query(&sql)
            .bind(t.name)
            .fetch_one(&self.write)
            .await?;
        rule_row(&row)
    }

    async fn trust_rules(&self) -> MetaResult<Vec<TrustRule>> {
        let sql = format!("{SELECT} ORDER BY t.name");
        let rows = sqlx::query(&sql).fetch_all(&self.read).await?;
        rows.iter().map(rule_row).collect()
    }

    async fn trust_rules_of(&self, registry_user: &str) -> MetaResult<Vec<TrustRule>> {
        let sql = format!("{SELECT} WHERE u.name = $1 ORDER BY t.name");
        let rows = sqlx::query(&sql)
            .bind(registry_user)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(rule_row).collect()
    }

    async fn trust_rule(&self, name: &str) -> MetaResult<Option<TrustRule>> {
        let sql = format!("{SELECT} WHERE t.name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(rule_row).transpose()
    }

    async fn delete_trust_rule(&self, name: &str) -> MetaResult<bool> {
        let done = sqlx::query("DELETE FROM trust_rules WHERE name = $1")
            .bind(name)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
