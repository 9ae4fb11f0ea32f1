//! The records the services take and answer with, as the HTTP surfaces
//! name them. Today most are the store's own rows, re-exported here so
//! that the surfaces depend on core alone: a schema change stops at core,
//! which can put a type of its own behind the same name without either
//! surface noticing.

pub use berth_meta::platform::remote_replication::run_status;
pub use berth_meta::{
    Account, ApiToken, AuditEntry, GcRun, Member, NamespaceSort, NamespaceSummary, ProjectGroup,
    RegistryUser, ReplicationRule, ReplicationRun, RepositorySort, SyncRecord, SyncRecordQuery,
    SyncRule, TagSort, Webhook, WebhookDelivery, WebhookUpdate,
};
