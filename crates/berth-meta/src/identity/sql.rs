//! Trust rules in SQL (`IdentityStore`). Written once for both databases.

use async_trait::async_trait;
use sqlx::Row;

use super::{DbRow, Store};
use crate::error::{MetaError, MetaResult};
use crate::identity::{IdentityStore, NewTrustRule, TrustRule};

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

#[async_trait]
impl IdentityStore for Store {
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
