//! Audit log queries: who may read which entries.

use berth_meta::{AuditEntry, AuditQuery};

use crate::access::Principal;
use crate::error::DirectoryError;

use super::paging::MAX_PER_PAGE;
use super::Management;

type Result<T> = std::result::Result<T, DirectoryError>;

/// An audit log request.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// About this namespace.
    pub namespace: Option<String>,
    /// By this actor.
    pub actor: Option<String>,
    /// This action, or an action prefix ending in `.`.
    pub action: Option<String>,
    /// At or after (Unix ms).
    pub since: Option<i64>,
    /// Before (Unix ms).
    pub until: Option<i64>,
    /// Older than this entry id.
    pub before_id: Option<i64>,
    /// At most this many (1 to [`MAX_PER_PAGE`]).
    pub limit: Option<i64>,
}

impl Management {
    /// Audit entries, newest first. Platform admins see all; namespace
    /// administrators see their namespace's (name it); others see their own.
    pub async fn audit(&self, actor: &Principal, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let limit = filter.limit.unwrap_or(50);
        if !(1..=MAX_PER_PAGE).contains(&limit) {
            return Err(DirectoryError::Invalid(format!(
                "limit must be between 1 and {MAX_PER_PAGE}"
            )));
        }
        let mut actor_filter = filter.actor.clone();
        if !actor.is_platform_admin() {
            let own_namespace = match &filter.namespace {
                Some(ns) => self.directory.admin_namespace(actor, ns).await.is_ok(),
                None => false,
            };
            if !own_namespace {
                match &actor_filter {
                    Some(a) if a != actor.name() => {
                        return Err(DirectoryError::Forbidden(
                            "you may read only your own entries, or those of a namespace you administer".into(),
                        ))
                    }
                    _ => actor_filter = Some(actor.name().to_owned()),
                }
            }
        }
        Ok(self
            .store
            .audit_page(&AuditQuery {
                namespace: filter.namespace.as_deref(),
                actor: actor_filter.as_deref(),
                action: filter.action.as_deref(),
                since: filter.since,
                until: filter.until,
                before_id: filter.before_id,
                limit,
            })
            .await?)
    }
}
