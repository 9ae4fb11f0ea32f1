//! The management views in SQL (`ManagementStore`): paginated lists of
//! namespaces, images and tags with their statistics, API tokens, console
//! sessions and audit queries. Written once for both databases.
//!
//! A namespace's repositories are those whose name lies strictly between
//! `ns/` and `ns0` (`0` follows `/`), a range scan on the unique name index.

use async_trait::async_trait;
use berth_oci::RepoName;
use sqlx::Row;

use super::directory::{namespace_row, one};
use super::{DbRow, Store, JSON_IN_ARRAY};
use crate::views::{
    ApiToken, AuditQuery, ImageListQuery, ImageListing, ManagementStore, NamespaceQuery,
    NamespaceScope, NamespaceSort, NamespaceSummary, NamespaceUpdate, NewApiToken, RepositoryQuery,
    RepositorySort, RepositorySummary, Session, TagQuery, TagSort, TagSummary,
};
use crate::{AuditEntry, MetaError, MetaResult};

/// A LIKE pattern matching values that contain `s` (escape character `!`).
pub(crate) fn contains_pattern(s: &str) -> String {
    format!("%{}%", like_escape(s))
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(c);
    }
    out
}

/// The LIKE pattern for a label filter over the compact JSON `labels`
/// column. Sound because label keys and values may not contain quotes or
/// backslashes (the service validates them), so `"key":` only ever matches
/// a key.
fn label_pattern(key: &str, value: Option<&str>) -> String {
    let key = serde_json::to_string(key).unwrap_or_default();
    match value {
        Some(v) => {
            let v = serde_json::to_string(v).unwrap_or_default();
            format!("%{}:{}%", like_escape(&key), like_escape(&v))
        }
        None => format!("%{}:%", like_escape(&key)),
    }
}

fn order(descending: bool) -> &'static str {
    if descending {
        "DESC"
    } else {
        "ASC"
    }
}

const NAMESPACE_SUMMARY: &str =
    "SELECT n.id, n.name, n.group_id, n.public, n.description, n.category, n.labels, \
     n.status, n.external_access, n.created_at, n.updated_at, g.name AS group_name, \
     (SELECT COUNT(*) FROM repositories r WHERE r.name > n.name || '/' AND r.name < n.name || '0' \
        AND r.pushed_at IS NOT NULL) AS image_count, \
     (SELECT CAST(COALESCE(SUM(r.pull_count), 0) AS BIGINT) FROM repositories r \
        WHERE r.name > n.name || '/' AND r.name < n.name || '0') AS pull_count \
     FROM namespaces n JOIN project_groups g ON g.id = n.group_id";

const NAMESPACE_FILTER: &str = " WHERE ($1 IS NULL OR g.name = $1) \
     AND ($2 IS NULL OR n.public = $2) \
     AND ($3 IS NULL OR n.name LIKE $3 ESCAPE '!') \
     AND ($4 IS NULL OR n.labels LIKE $4 ESCAPE '!') \
     AND ($5 IS NULL OR n.public = 1) \
     AND ($6 IS NULL OR n.group_id IN (SELECT gm.group_id FROM group_members gm WHERE gm.account_id = $6) \
          OR n.id IN (SELECT nm.namespace_id FROM namespace_members nm WHERE nm.account_id = $6))";

/// An image's statistics; `r` is the repository. Only ever computed for
/// the rows of one page.
macro_rules! repository_columns {
    () => {
        "SELECT r.name, r.created_at, r.pull_count, r.last_pulled_at, r.pushed_at AS updated_at, \
         (SELECT COUNT(*) FROM tags t WHERE t.repo_id = r.id) AS tag_count, \
         (SELECT t.name FROM tags t WHERE t.repo_id = r.id ORDER BY t.pushed_at DESC, t.name DESC LIMIT 1) AS latest_tag, \
         (SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b WHERE b.digest IN \
            (SELECT mr.ref_digest FROM manifest_refs mr WHERE mr.repo_id = r.id AND mr.kind = 0)) AS size"
    };
}

const REPOSITORY_SUMMARY: &str = concat!(repository_columns!(), " FROM repositories r");

/// A repository is an image while it holds a manifest: its last push is
/// set by the push and cleared with its last manifest (migration 0014).
const IS_IMAGE: &str = "r.pushed_at IS NOT NULL";

/// A query's bound values, in the order of their `$n`.
enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

/// The WHERE clause of an image list across namespaces and its values:
/// only the parts the query sets, each on the repositories' own columns
/// (the namespace is one), so the planner can use their indexes.
fn image_filter<'a>(q: &'a ImageListQuery<'a>, pattern: Option<&'a str>) -> (String, Vec<Arg<'a>>) {
    let mut args = Vec::new();
    let mut arg = |a: Arg<'a>| {
        args.push(a);
        format!("${}", args.len())
    };
    let mut parts = vec![IS_IMAGE.to_owned()];
    if !q.scope.all {
        // The namespaces shown whole, and the images shown by a permission.
        let mut whole = vec!["0 = 1".to_owned()];
        let mut single = String::new();
        if let Some(account) = q.scope.account {
            let a = arg(Arg::Int(account));
            whole.push(format!(
                "n.group_id IN (SELECT gm.group_id FROM group_members gm WHERE gm.account_id = {a}) \
                 OR n.id IN (SELECT nm.namespace_id FROM namespace_members nm WHERE nm.account_id = {a})"
            ));
            single = format!(
                " OR r.name IN (SELECT rp.repository FROM repository_permissions rp WHERE rp.account_id = {a})"
            );
        }
        if q.scope.public {
            whole.push("n.public <> 0".to_owned());
        }
        if let Some(platform) = q.scope.platform {
            whole.push(format!("n.name = {}", arg(Arg::Text(platform))));
        }
        parts.push(format!(
            "(r.namespace IN (SELECT n.name FROM namespaces n WHERE {}){single})",
            whole.join(" OR ")
        ));
    }
    if let Some(ns) = q.namespace {
        parts.push(format!("r.namespace = {}", arg(Arg::Text(ns))));
    }
    if let Some(group) = q.group {
        parts.push(format!(
            "r.namespace IN (SELECT n.name FROM namespaces n JOIN project_groups g ON g.id = n.group_id \
             WHERE g.name = {})",
            arg(Arg::Text(group))
        ));
    }
    if let Some(public) = q.public {
        parts.push(format!(
            "r.namespace IN (SELECT n.name FROM namespaces n WHERE n.public = {})",
            arg(Arg::Int(i64::from(public)))
        ));
    }
    if let Some(p) = pattern {
        parts.push(format!("r.name LIKE {} ESCAPE '!'", arg(Arg::Text(p))));
    }
    (format!(" WHERE {}", parts.join(" AND ")), args)
}

/// An image list's ORDER BY: the key, then the unique name to break ties
/// (not twice: SQLite would then pass over the covering name index).
fn repository_order(sort: RepositorySort, descending: bool) -> String {
    let dir = order(descending);
    match sort {
        RepositorySort::Name => format!("r.name {dir}"),
        other => format!("{} {dir}, r.name {dir}", repository_sort_column(other)),
    }
}

/// The expression an image list sorts by.
fn repository_sort_column(sort: RepositorySort) -> &'static str {
    match sort {
        RepositorySort::Name => "r.name",
        RepositorySort::Updated => "r.pushed_at",
        RepositorySort::Pulls => "r.pull_count",
        RepositorySort::Created => "r.created_at",
    }
}

const TAG_COLUMNS: &str = "SELECT t.name, t.digest, m.media_type, t.pushed_at, t.pull_count, t.last_pulled_at, \
     m.size + (SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs b WHERE b.digest IN ( \
        SELECT r1.ref_digest FROM manifest_refs r1 WHERE r1.repo_id = t.repo_id AND r1.digest = t.digest AND r1.kind = 0 \
        UNION SELECT r2.ref_digest FROM manifest_refs r1 JOIN manifest_refs r2 \
          ON r2.repo_id = r1.repo_id AND r2.digest = r1.ref_digest AND r2.kind = 0 \
        WHERE r1.repo_id = t.repo_id AND r1.digest = t.digest AND r1.kind = 1)) AS size";

const API_TOKEN: &str =
    "SELECT id, account_id, name, prefix, created_at, last_used_at, expires_at FROM api_tokens";

pub(crate) fn namespace_summary_row(r: &DbRow) -> MetaResult<NamespaceSummary> {
    Ok(NamespaceSummary {
        namespace: namespace_row(r)?,
        group_name: r.try_get("group_name")?,
        image_count: r.try_get("image_count")?,
        pull_count: r.try_get("pull_count")?,
    })
}

pub(crate) fn repository_summary_row(r: &DbRow) -> MetaResult<RepositorySummary> {
    let created_at: i64 = r.try_get("created_at")?;
    Ok(RepositorySummary {
        name: r.try_get("name")?,
        latest_tag: r.try_get("latest_tag")?,
        tag_count: r.try_get("tag_count")?,
        pull_count: r.try_get("pull_count")?,
        last_pulled_at: r.try_get("last_pulled_at")?,
        size: r.try_get("size")?,
        created_at,
        updated_at: r
            .try_get::<Option<i64>, _>("updated_at")?
            .unwrap_or(created_at),
    })
}

pub(crate) fn tag_summary_row(r: &DbRow) -> MetaResult<TagSummary> {
    let digest: String = r.try_get("digest")?;
    Ok(TagSummary {
        name: r.try_get("name")?,
        digest: digest
            .parse()
            .map_err(|e: berth_oci::DigestError| MetaError::Corrupt(e.to_string()))?,
        media_type: r.try_get("media_type")?,
        size: r.try_get("size")?,
        pushed_at: r.try_get("pushed_at")?,
        pull_count: r.try_get("pull_count")?,
        last_pulled_at: r.try_get("last_pulled_at")?,
    })
}

pub(crate) fn api_token_row(r: &DbRow) -> MetaResult<ApiToken> {
    Ok(ApiToken {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

pub(crate) async fn repo_id(store: &Store, repo: &RepoName) -> MetaResult<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM repositories WHERE name = $1")
        .bind(repo.as_str())
        .fetch_optional(&store.read)
        .await?;
    Ok(row.map(|r| r.0))
}

#[async_trait]
impl ManagementStore for Store {
    async fn namespaces_page(
        &self,
        q: &NamespaceQuery<'_>,
    ) -> MetaResult<(Vec<NamespaceSummary>, i64)> {
        let name = q.name_contains.map(contains_pattern);
        let label = q.label.map(|(k, v)| label_pattern(k, v));
        let public_only = matches!(q.scope, NamespaceScope::Public).then_some(1i64);
        let member = match q.scope {
            NamespaceScope::MemberOf(id) => Some(id),
            _ => None,
        };
        let column = match q.sort {
            NamespaceSort::Name => "name",
            NamespaceSort::Created => "created_at",
            NamespaceSort::Updated => "updated_at",
            NamespaceSort::Pulls => "pull_count",
            NamespaceSort::Images => "image_count",
        };
        let dir = order(q.descending);
        let sql = format!(
            "SELECT * FROM ({NAMESPACE_SUMMARY}{NAMESPACE_FILTER}) s \
             ORDER BY s.{column} {dir}, s.name {dir} LIMIT $7 OFFSET $8"
        );
        let rows = sqlx::query(&sql)
            .bind(q.group)
            .bind(q.public.map(i64::from))
            .bind(name.as_deref())
            .bind(label.as_deref())
            .bind(public_only)
            .bind(member)
            .bind(q.window.limit)
            .bind(q.window.offset)
            .fetch_all(&self.read)
            .await?;
        let items = rows
            .iter()
            .map(namespace_summary_row)
            .collect::<MetaResult<Vec<_>>>()?;
        let count_sql = format!(
            "SELECT COUNT(*) FROM namespaces n JOIN project_groups g ON g.id = n.group_id{NAMESPACE_FILTER}"
        );
        let (total,): (i64,) = sqlx::query_as(&count_sql)
            .bind(q.group)
            .bind(q.public.map(i64::from))
            .bind(name.as_deref())
            .bind(label.as_deref())
            .bind(public_only)
            .bind(member)
            .fetch_one(&self.read)
            .await?;
        Ok((items, total))
    }

    async fn namespace_summary(&self, name: &str) -> MetaResult<Option<NamespaceSummary>> {
        one(
            self,
            &format!("{NAMESPACE_SUMMARY} WHERE n.name = $1"),
            name,
            namespace_summary_row,
        )
        .await
    }

    async fn update_namespace(&self, id: i64, u: &NamespaceUpdate<'_>, now: i64) -> MetaResult<()> {
        sqlx::query(
            "UPDATE namespaces SET \
             public = COALESCE($2, public), description = COALESCE($3, description), \
             category = COALESCE($4, category), labels = COALESCE($5, labels), \
             external_access = COALESCE($6, external_access), updated_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(u.public.map(i64::from))
        .bind(u.description)
        .bind(u.category)
        .bind(u.labels)
        .bind(u.external_access.map(i64::from))
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn set_namespace_status(&self, id: i64, status: &str) -> MetaResult<()> {
        sqlx::query("UPDATE namespaces SET status = $2 WHERE id = $1")
            .bind(id)
            .bind(status)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn namespace_grants(&self, namespace_id: i64) -> MetaResult<Vec<(String, bool, bool)>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT u.name, g.can_pull, g.can_push FROM registry_user_grants g \
             JOIN registry_users u ON u.id = g.registry_user_id WHERE g.namespace_id = $1 ORDER BY u.name",
        )
        .bind(namespace_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(n, pull, push)| (n, pull != 0, push != 0))
            .collect())
    }

    async fn repositories_page(
        &self,
        q: &RepositoryQuery<'_>,
    ) -> MetaResult<(Vec<RepositorySummary>, i64)> {
        let lo = format!("{}/", q.namespace);
        let hi = format!("{}0", q.namespace);
        let name = q.name_contains.map(contains_pattern);
        // A restricted listing (per-repository permissions only) is
        // passed as a JSON array so both databases take one parameter.
        let only = q
            .only
            .map(|names| serde_json::to_string(names).unwrap_or_default());
        let only_clause = if only.is_some() {
            JSON_IN_ARRAY
        } else {
            " AND $4 IS NULL"
        };
        let filter = format!(
            " WHERE r.name > $1 AND r.name < $2 AND ($3 IS NULL OR r.name LIKE $3 ESCAPE '!'){only_clause} \
             AND {IS_IMAGE}"
        );
        let order = repository_order(q.sort, q.descending);
        // The window is chosen first; only its rows are summarised.
        // CROSS JOIN keeps SQLite from scanning the repositories
        // around the window (as in `tags_page`).
        let sql = format!(
            "{columns} FROM (SELECT r.id AS page_id FROM repositories r{filter} \
             ORDER BY {order} LIMIT $5 OFFSET $6) w \
             CROSS JOIN repositories r WHERE r.id = w.page_id \
             ORDER BY {order}",
            columns = repository_columns!()
        );
        let rows = sqlx::query(&sql)
            .bind(&lo)
            .bind(&hi)
            .bind(name.as_deref())
            .bind(only.as_deref())
            .bind(q.window.limit)
            .bind(q.window.offset)
            .fetch_all(&self.read)
            .await?;
        let items = rows
            .iter()
            .map(repository_summary_row)
            .collect::<MetaResult<Vec<_>>>()?;
        let (total,): (i64,) =
            sqlx::query_as(&format!("SELECT COUNT(*) FROM repositories r{filter}"))
                .bind(&lo)
                .bind(&hi)
                .bind(name.as_deref())
                .bind(only.as_deref())
                .fetch_one(&self.read)
                .await?;
        Ok((items, total))
    }

    async fn images_page(&self, q: &ImageListQuery<'_>) -> MetaResult<(Vec<ImageListing>, i64)> {
        let pattern = q.name_contains.map(contains_pattern);
        let (filter, args) = image_filter(q, pattern.as_deref());
        let order = repository_order(q.sort, q.descending);
        let (limit, offset) = (args.len() + 1, args.len() + 2);
        // The window is chosen on the repositories' own columns;
        // only its rows are summarised and joined to their namespace.
        let sql = format!(
            "{columns}, n.name AS namespace_name, n.status AS namespace_status, \
             n.public AS namespace_public, g.name AS group_name \
             FROM (SELECT r.id AS page_id FROM repositories r{filter} \
             ORDER BY {order} LIMIT ${limit} OFFSET ${offset}) w \
             CROSS JOIN repositories r JOIN namespaces n ON n.name = r.namespace \
             JOIN project_groups g ON g.id = n.group_id WHERE r.id = w.page_id \
             ORDER BY {order}",
            columns = repository_columns!()
        );
        let mut page = sqlx::query(&sql);
        for a in &args {
            page = match a {
                Arg::Int(v) => page.bind(*v),
                Arg::Text(v) => page.bind(*v),
            };
        }
        let rows = page
            .bind(q.window.limit)
            .bind(q.window.offset)
            .fetch_all(&self.read)
            .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(ImageListing {
                    summary: repository_summary_row(r)?,
                    namespace: r.try_get("namespace_name")?,
                    namespace_status: r.try_get("namespace_status")?,
                    public: r.try_get::<i64, _>("namespace_public")? != 0,
                    group_name: r.try_get("group_name")?,
                })
            })
            .collect::<MetaResult<Vec<_>>>()?;
        let count_sql = format!("SELECT COUNT(*) FROM repositories r{filter}");
        let mut count = sqlx::query_as::<_, (i64,)>(&count_sql);
        for a in &args {
            count = match a {
                Arg::Int(v) => count.bind(*v),
                Arg::Text(v) => count.bind(*v),
            };
        }
        let (total,) = count.fetch_one(&self.read).await?;
        Ok((items, total))
    }

    async fn repository_summary(&self, repo: &RepoName) -> MetaResult<Option<RepositorySummary>> {
        one(
            self,
            &format!("{REPOSITORY_SUMMARY} WHERE r.name = $1"),
            repo.as_str(),
            repository_summary_row,
        )
        .await
    }

    async fn namespace_repositories(&self, namespace: &str) -> MetaResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM repositories WHERE name > $1 AND name < $2 ORDER BY name",
        )
        .bind(format!("{namespace}/"))
        .bind(format!("{namespace}0"))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn delete_repository(&self, repo: &RepoName) -> MetaResult<bool> {
        // Manifests, references, tags and blob links go with it
        // (ON DELETE CASCADE); blobs stay for garbage collection.
        let done = sqlx::query("DELETE FROM repositories WHERE name = $1")
            .bind(repo.as_str())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn tags_page(&self, q: &TagQuery<'_>) -> MetaResult<Option<(Vec<TagSummary>, i64)>> {
        let Some(repo_id) = repo_id(self, q.repo).await? else {
            return Ok(None);
        };
        let name = q.name_contains.map(contains_pattern);
        let filter = " WHERE t.repo_id = $1 AND ($2 IS NULL OR t.name LIKE $2 ESCAPE '!')";
        let column = match q.sort {
            TagSort::Name => "t.name",
            TagSort::Pushed => "t.pushed_at",
            TagSort::Pulls => "t.pull_count",
        };
        let dir = order(q.descending);
        // The window is chosen on the tag index alone; only its rows
        // are joined and sized (a deep OFFSET skips index entries,
        // not computed rows). CROSS JOIN keeps SQLite from putting
        // the window inside the tag scan; PostgreSQL plans it freely.
        let sql = format!(
            "{TAG_COLUMNS} FROM (SELECT t.name AS page_name FROM tags t{filter} \
             ORDER BY {column} {dir}, t.name {dir} LIMIT $3 OFFSET $4) w \
             CROSS JOIN tags t \
             JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest \
             WHERE t.repo_id = $1 AND t.name = w.page_name \
             ORDER BY {column} {dir}, t.name {dir}"
        );
        let rows = sqlx::query(&sql)
            .bind(repo_id)
            .bind(name.as_deref())
            .bind(q.window.limit)
            .bind(q.window.offset)
            .fetch_all(&self.read)
            .await?;
        let items = rows
            .iter()
            .map(tag_summary_row)
            .collect::<MetaResult<Vec<_>>>()?;
        let (total,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM tags t{filter}"))
            .bind(repo_id)
            .bind(name.as_deref())
            .fetch_one(&self.read)
            .await?;
        Ok(Some((items, total)))
    }

    async fn tag_count(&self, repo: &RepoName) -> MetaResult<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM tags t JOIN repositories r ON r.id = t.repo_id WHERE r.name = $1",
        )
        .bind(repo.as_str())
        .fetch_one(&self.write)
        .await?;
        Ok(n)
    }

    async fn create_api_token(&self, t: &NewApiToken<'_>) -> MetaResult<ApiToken> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "INSERT INTO api_tokens (account_id, name, token_hash, prefix, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, account_id, name, prefix, created_at, last_used_at, expires_at",
        )
        .bind(t.account_id)
        .bind(t.name)
        .bind(t.token_hash)
        .bind(t.prefix)
        .bind(t.now)
        .bind(t.expires_at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        api_token_row(&row)
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> MetaResult<Option<ApiToken>> {
        one(
            self,
            &format!("{API_TOKEN} WHERE token_hash = $1"),
            token_hash,
            api_token_row,
        )
        .await
    }

    async fn api_tokens_of(&self, account_id: i64) -> MetaResult<Vec<ApiToken>> {
        let rows = sqlx::query(&format!("{API_TOKEN} WHERE account_id = $1 ORDER BY id"))
            .bind(account_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(api_token_row).collect()
    }

    async fn delete_api_tokens_of(&self, account_id: i64) -> MetaResult<u64> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE account_id = $1")
            .bind(account_id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    async fn delete_api_token(&self, account_id: i64, id: i64) -> MetaResult<bool> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_api_token(&self, id: i64, now: i64) -> MetaResult<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn create_session(
        &self,
        id_hash: &str,
        account_id: i64,
        csrf_token: &str,
        now: i64,
        expires_at: i64,
    ) -> MetaResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, account_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(account_id)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str, now: i64) -> MetaResult<Option<Session>> {
        let row: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT account_id, csrf_token, expires_at FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(account_id, csrf_token, expires_at)| Session {
            account_id,
            csrf_token,
            expires_at,
        }))
    }

    async fn delete_session(&self, id_hash: &str) -> MetaResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: i64) -> MetaResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    async fn audit_page(&self, q: &AuditQuery<'_>) -> MetaResult<Vec<AuditEntry>> {
        let (action_exact, action_prefix) = match q.action {
            Some(a) if a.ends_with('.') => (None, Some(a)),
            Some(a) => (Some(a), None),
            None => (None, None),
        };
        let rows: Vec<(i64, i64, String, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, at, actor, action, target, detail, client_addr FROM audit_log \
             WHERE ($1 IS NULL OR target = $1 OR substr(target, 1, length($1) + 1) = $1 || '/') \
             AND ($2 IS NULL OR actor = $2) \
             AND ($3 IS NULL OR action = $3) \
             AND ($4 IS NULL OR substr(action, 1, length($4)) = $4) \
             AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6) \
             AND ($7 IS NULL OR id < $7) \
             ORDER BY id DESC LIMIT $8",
        )
        .bind(q.namespace)
        .bind(q.actor)
        .bind(action_exact)
        .bind(action_prefix)
        .bind(q.since)
        .bind(q.until)
        .bind(q.before_id)
        .bind(q.limit)
        .fetch_all(&self.read)
        .await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_filters_hold_only_what_is_asked() {
        let mut q = ImageListQuery {
            scope: crate::ImageScope {
                all: true,
                ..Default::default()
            },
            namespace: Some("team"),
            group: None,
            public: None,
            name_contains: None,
            sort: RepositorySort::Name,
            descending: false,
            window: crate::Window {
                offset: 0,
                limit: 20,
            },
        };
        let (sql, args) = image_filter(&q, None);
        assert_eq!(sql, " WHERE r.pushed_at IS NOT NULL AND r.namespace = $1");
        assert_eq!(args.len(), 1);
        // An anonymous caller asking for nothing shared sees nothing.
        q.scope = crate::ImageScope::default();
        q.namespace = None;
        let (sql, args) = image_filter(&q, Some("%a%"));
        assert!(
            sql.contains("WHERE 0 = 1)") && sql.ends_with("r.name LIKE $1 ESCAPE '!'"),
            "{sql}"
        );
        assert_eq!(args.len(), 1);
        // An account: its roles' namespaces and its per-image permissions,
        // one value bound once; then the platform's name.
        q.scope = crate::ImageScope {
            account: Some(7),
            public: true,
            platform: Some("library"),
            ..Default::default()
        };
        let (sql, args) = image_filter(&q, None);
        assert!(
            sql.contains("gm.account_id = $1") && sql.contains("rp.account_id = $1"),
            "{sql}"
        );
        assert!(sql.contains("n.public <> 0 OR n.name = $2"), "{sql}");
        assert_eq!(args.len(), 2);
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("a_b%c!"), "%a!_b!%c!!%");
        assert_eq!(label_pattern("team", Some("web")), "%\"team\":\"web\"%");
        assert_eq!(label_pattern("tier_1", None), "%\"tier!_1\":%");
    }
}
