//! The management service behind the REST API and the console: listings
//! with statistics, namespace edits and deletes, image and tag deletes,
//! personal API tokens, console sessions and audit queries. The access
//! rules are the [`Directory`]'s and [`crate::access::allowed`]'s; the
//! registry operations are the [`Registry`]'s. Both surfaces call this, so
//! no rule has a second implementation.
//!
//! One file per concern: `namespaces`, `images` (images and tags),
//! `retention` (policies and retention runs), `regions` (storage use
//! and backlog per region), `tokens` (personal API
//! tokens), `sessions` (console sessions), `audit`, and `paging`.

mod audit;
mod images;
mod namespaces;
mod paging;
mod regions;
mod retention;
mod sessions;
mod tokens;

pub use audit::AuditFilter;
pub use images::{ImageListFilter, ImageListView, ImageView, TagDeleted, TagView};
pub use namespaces::{NamespaceChanges, NamespaceFilter, NamespaceTab};
pub use paging::{ListFilter, Page, Paging, MAX_PER_PAGE};
pub use regions::RegionStatus;
pub use retention::{PolicyView, RetentionReport};
pub use sessions::{NewSession, SessionInfo};
pub use tokens::API_TOKEN_PREFIX;

use std::sync::Arc;
use std::time::Duration;

use berth_meta::ManagementStore;
use berth_oci::RepoName;

use crate::access::Principal;
use crate::directory::Directory;
use crate::error::DirectoryError;
use crate::events::{kind, Event};
use crate::registry::Registry;

type Result<T> = std::result::Result<T, DirectoryError>;

/// Management settings.
#[derive(Debug, Clone)]
pub struct ManagementConfig {
    /// Host (and port) clients pull from, for pull commands.
    pub registry_host: String,
    /// How long a console session lasts.
    pub session_lifetime: Duration,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        ManagementConfig {
            registry_host: "localhost:5000".into(),
            session_lifetime: Duration::from_secs(12 * 3600),
        }
    }
}

/// The management service.
#[derive(Debug, Clone)]
pub struct Management {
    directory: Directory,
    registry: Registry,
    pull_policies: crate::pull_policy::PullPolicies,
    vulnerabilities: crate::vulnerabilities::Vulnerabilities,
    store: Arc<dyn ManagementStore>,
    config: Arc<ManagementConfig>,
}

impl Management {
    /// The service over the directory, the registry and the management store.
    pub fn new(
        directory: Directory,
        registry: Registry,
        store: Arc<dyn ManagementStore>,
        config: ManagementConfig,
    ) -> Self {
        Management {
            pull_policies: crate::pull_policy::PullPolicies::new(
                directory.clone(),
                registry.clone(),
            ),
            vulnerabilities: crate::vulnerabilities::Vulnerabilities::new(
                directory.clone(),
                registry.clone(),
            ),
            directory,
            registry,
            store,
            config: Arc::new(config),
        }
    }

    /// The pull-policy hook and its policies.
    pub fn pull_policies(&self) -> &crate::pull_policy::PullPolicies {
        &self.pull_policies
    }

    /// Inventories, advisories and findings.
    pub fn vulnerabilities(&self) -> &crate::vulnerabilities::Vulnerabilities {
        &self.vulnerabilities
    }

    /// The directory service.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The registry service.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The settings.
    pub fn config(&self) -> &ManagementConfig {
        &self.config
    }

    /// `docker pull host/repo:tag`.
    pub fn pull_command(&self, repo: &str, tag: &str) -> String {
        format!("docker pull {}/{repo}:{tag}", self.config.registry_host)
    }

    /// Make pending pull counts visible, so lists show exact, current figures.
    async fn current_pulls(&self) -> Result<()> {
        self.registry.flush_pulls().await?;
        Ok(())
    }

    /// Queue events for webhooks. What they report is done and audited
    /// already, so a failure to queue them is logged, not answered.
    async fn emit(&self, events: &[berth_meta::NewEvent]) {
        if let Err(e) = self.registry.emit(events).await {
            tracing::error!(error = %e, "could not queue events for webhooks");
        }
    }

    /// A store call that frees space, retried in the space reserve when
    /// the disk is full (see [`Registry::freeing`]).
    async fn freeing<T, E: crate::error::FaultOf, Fut>(
        &self,
        op: impl FnMut() -> Fut,
    ) -> std::result::Result<T, E>
    where
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
    {
        self.registry.freeing(op).await
    }

    /// An audit entry of a delete, written in the space reserve if need be.
    async fn record(
        &self,
        actor: &Principal,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<()> {
        self.freeing(|| self.directory.record(actor, action, target, detail))
            .await
    }
}

/// The event of an image (a repository with all its tags) deleted.
fn image_deleted_event(actor: &Principal, repo: &RepoName) -> berth_meta::NewEvent {
    Event::new(kind::IMAGE_DELETE, Some(repo.namespace()))
        .actor(actor.name())
        .with("repository", repo.as_str())
        .with("digest", serde_json::Value::Null)
        .build()
}
