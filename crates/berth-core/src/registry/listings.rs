//! Listings: tags (paged in memory from the read cache), the catalog and
//! referrers.

use std::sync::Arc;

use berth_oci::{media_types, Digest, RepoName};
use serde_json::{json, Map, Value};

use crate::RegistryError;

use super::Registry;

type Result<T> = std::result::Result<T, RegistryError>;

impl Registry {
    /// A page of tags; `NameUnknown` for a repository that does not exist.
    pub async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        n: i64,
    ) -> Result<Vec<String>> {
        let all = match self.cache.tag_list(repo.as_str()) {
            Some(all) => all,
            None => {
                let ticket = self.cache.ticket();
                let limit = crate::read_cache::MAX_CACHED_TAGS as i64;
                // A first page of a short list is the whole list: keep it.
                let page = self
                    .meta
                    .list_tags(
                        repo,
                        last,
                        if last.is_none() { limit.max(n) + 1 } else { n },
                    )
                    .await?
                    .ok_or_else(|| RegistryError::NameUnknown(repo.to_string()))?;
                if last.is_some() || page.len() as i64 > limit {
                    return Ok(page.into_iter().take(n.max(0) as usize).collect());
                }
                let all = Arc::new(page);
                self.cache.put_tag_list(ticket, repo.as_str(), all.clone());
                all
            }
        };
        // Tags sort as the database sorts them (bytewise).
        let start = match last {
            Some(last) => all.partition_point(|t| t.as_str() <= last),
            None => 0,
        };
        Ok(all
            .iter()
            .skip(start)
            .take(n.max(0) as usize)
            .cloned()
            .collect())
    }

    /// A page of repository names.
    pub async fn catalog(&self, last: Option<&str>, n: i64) -> Result<Vec<String>> {
        Ok(self.meta.catalog(last, n).await?)
    }

    /// A page of the repository names `principal` may pull (`platform` is
    /// the platform namespace, which everyone may), as
    /// [`crate::access::allowed`] decides, chosen by the database.
    pub async fn visible_catalog(
        &self,
        principal: &crate::access::Principal,
        platform: &str,
        last: Option<&str>,
        n: i64,
    ) -> Result<Vec<String>> {
        use crate::access::Principal;
        let scope = berth_meta::CatalogScope {
            all: principal.is_platform_admin(),
            account: match principal {
                Principal::Account { id, .. } => Some(*id),
                _ => None,
            },
            registry_user: match principal {
                Principal::RegistryUser { id, .. } => Some(*id),
                _ => None,
            },
            platform: Some(platform),
        };
        Ok(self.meta.catalog_visible(&scope, last, n).await?)
    }

    /// The referrers of `digest` as an OCI image index (JSON bytes).
    pub async fn referrers(
        &self,
        repo: &RepoName,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<u8>> {
        let rows = self.meta.referrers(repo, digest, artifact_type).await?;
        let manifests: Vec<Value> = rows
            .into_iter()
            .map(|r| {
                let mut d = Map::new();
                d.insert("mediaType".into(), json!(r.media_type));
                d.insert("digest".into(), json!(r.digest.as_str()));
                d.insert("size".into(), json!(r.size));
                if let Some(t) = r.artifact_type {
                    d.insert("artifactType".into(), json!(t));
                }
                if let Some(a) = r
                    .annotations
                    .and_then(|a| serde_json::from_str::<Value>(&a).ok())
                {
                    d.insert("annotations".into(), a);
                }
                Value::Object(d)
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_INDEX,
            "manifests": manifests,
        });
        Ok(index.to_string().into_bytes())
    }
}
