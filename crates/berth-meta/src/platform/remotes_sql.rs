//! Remote registries in SQL (`RemoteStore`). Written once for both
//! databases.

use async_trait::async_trait;
use sqlx::Row;

use super::{DbRow, Store};
use crate::error::{MetaError, MetaResult};
use crate::platform::remotes::{RemoteRecord, RemoteStore, RemoteUpdate};

const COLUMNS: &str = "name, url, username, password_sealed, insecure, ca_pem, token_realm, \
     created_by, created_at, updated_at";

pub(crate) fn remote_row(r: &DbRow) -> MetaResult<RemoteRecord> {
    Ok(RemoteRecord {
        name: r.try_get("name")?,
        url: r.try_get("url")?,
        username: r.try_get("username")?,
        password_sealed: r.try_get("password_sealed")?,
        insecure: r.try_get::<i64, _>("insecure")? != 0,
        ca_pem: r.try_get("ca_pem")?,
        token_realm: r.try_get("token_realm")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl RemoteStore for Store {
    async fn create_remote(&self, r: &RemoteRecord) -> MetaResult<()> {
        let done = sqlx::query(
            "INSERT INTO remotes (name, url, username, password_sealed, insecure, ca_pem, \
             created_by, created_at, updated_at, token_realm) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&r.name)
        .bind(&r.url)
        .bind(r.username.as_deref())
        .bind(r.password_sealed.as_deref())
        .bind(i64::from(r.insecure))
        .bind(r.ca_pem.as_deref())
        .bind(&r.created_by)
        .bind(r.created_at)
        .bind(r.token_realm.as_deref())
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(MetaError::Conflict(format!(
                "a remote registry named {}",
                r.name
            )));
        }
        Ok(())
    }

    async fn remotes(&self) -> MetaResult<Vec<RemoteRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM remotes ORDER BY name");
        let rows = sqlx::query(&sql).fetch_all(&self.read).await?;
        rows.iter().map(remote_row).collect()
    }

    async fn remote(&self, name: &str) -> MetaResult<Option<RemoteRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM remotes WHERE name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(remote_row).transpose()
    }

    async fn update_remote(&self, name: &str, u: &RemoteUpdate) -> MetaResult<bool> {
        // `Some(None)` clears a field: CASE on a flag per field.
        let done = sqlx::query(
            "UPDATE remotes SET url = COALESCE($2, url), \
             username = CASE WHEN $3 = 1 THEN $4 ELSE username END, \
             password_sealed = CASE WHEN $5 = 1 THEN $6 ELSE password_sealed END, \
             insecure = COALESCE($7, insecure), \
             ca_pem = CASE WHEN $8 = 1 THEN $9 ELSE ca_pem END, \
             updated_at = $10, \
             token_realm = CASE WHEN $11 = 1 THEN $12 ELSE token_realm END WHERE name = $1",
        )
        .bind(name)
        .bind(u.url.as_deref())
        .bind(i64::from(u.username.is_some()))
        .bind(u.username.clone().flatten())
        .bind(i64::from(u.password_sealed.is_some()))
        .bind(u.password_sealed.clone().flatten())
        .bind(u.insecure.map(i64::from))
        .bind(i64::from(u.ca_pem.is_some()))
        .bind(u.ca_pem.clone().flatten())
        .bind(u.now)
        .bind(i64::from(u.token_realm.is_some()))
        .bind(u.token_realm.clone().flatten())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_remote(&self, name: &str) -> MetaResult<bool> {
        let done = sqlx::query("DELETE FROM remotes WHERE name = $1")
            .bind(name)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
