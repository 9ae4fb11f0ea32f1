//! The audit log.

use berth_core::model::AuditEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::time;

/// An audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditJson {
    /// Id (increasing).
    pub id: i64,
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What, e.g. `namespace.create`.
    pub action: String,
    /// On what.
    pub target: String,
    /// Details.
    pub detail: String,
    /// Client address, when known.
    pub client_addr: Option<String>,
}

impl From<AuditEntry> for AuditJson {
    fn from(e: AuditEntry) -> Self {
        AuditJson {
            id: e.id,
            at: time(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail,
            client_addr: e.client_addr,
        }
    }
}

/// Audit log filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// About this namespace (and its images).
    pub namespace: Option<String>,
    /// By this actor.
    pub actor: Option<String>,
    /// This action, or a prefix ending in `.` (such as `namespace.`).
    pub action: Option<String>,
    /// At or after (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Before (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Entries older than this id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// At most this many, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Entries, newest first.
    pub items: Vec<AuditJson>,
    /// Pass as `before` for the next page; absent on the last.
    pub next_before: Option<i64>,
}
