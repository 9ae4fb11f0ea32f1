//! Namespace lists with statistics, edits, deletes, grants and members.

use berth_meta::{
    Member, NamespaceQuery, NamespaceScope, NamespaceSort, NamespaceSummary, NamespaceUpdate,
};
use berth_oci::RepoName;

use crate::access::Principal;
use crate::clock::now_millis;
use crate::directory::NamespaceSpec;
use crate::error::DirectoryError;
use crate::events::{kind, Event};
use crate::validate::{check_labels, check_text, labels_json};

use super::paging::{Page, Paging};
use super::{image_deleted_event, Management};

type Result<T> = std::result::Result<T, DirectoryError>;

/// Which namespaces a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NamespaceTab {
    /// Those the account belongs to.
    #[default]
    Mine,
    /// Every public namespace.
    Shared,
    /// All (platform administrators).
    All,
}

/// A namespace list request.
#[derive(Debug, Clone, Default)]
pub struct NamespaceFilter {
    /// Which namespaces.
    pub tab: NamespaceTab,
    /// Of this project group.
    pub group: Option<String>,
    /// Public or private only.
    pub public: Option<bool>,
    /// Name contains.
    pub name: Option<String>,
    /// Label `key` or `key=value`.
    pub label: Option<String>,
    /// Sort key.
    pub sort: NamespaceSort,
    /// Descending.
    pub descending: bool,
    /// Page.
    pub paging: Paging,
}

/// Changes to a namespace; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct NamespaceChanges {
    /// Public or private.
    pub public: Option<bool>,
    /// Description.
    pub description: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Labels (replacing all).
    pub labels: Option<Vec<(String, String)>>,
    /// External access switch.
    pub external_access: Option<bool>,
}

impl Management {
    /// A page of namespaces with statistics.
    pub async fn namespaces(
        &self,
        actor: &Principal,
        filter: &NamespaceFilter,
    ) -> Result<Page<NamespaceSummary>> {
        self.current_pulls().await?;
        let scope = match (filter.tab, actor) {
            (NamespaceTab::Shared, _) => NamespaceScope::Public,
            (NamespaceTab::All, a) if a.is_platform_admin() => NamespaceScope::All,
            (NamespaceTab::All, _) => {
                return Err(DirectoryError::Forbidden(
                    "only platform administrators list all namespaces".into(),
                ))
            }
            (NamespaceTab::Mine, Principal::Account { id, .. }) => NamespaceScope::MemberOf(*id),
            (NamespaceTab::Mine, Principal::System) => NamespaceScope::All,
            (NamespaceTab::Mine, _) => NamespaceScope::Public,
        };
        let label = filter.label.as_deref().map(|l| match l.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (l, None),
        });
        let name = filter.name.as_deref().map(str::to_ascii_lowercase);
        let (items, total) = self
            .store
            .namespaces_page(&NamespaceQuery {
                scope,
                group: filter.group.as_deref(),
                public: filter.public,
                name_contains: name.as_deref(),
                label,
                sort: filter.sort,
                descending: filter.descending,
                window: filter.paging.window(),
            })
            .await?;
        Ok(Page::new(items, total, filter.paging))
    }

    /// One namespace with statistics (public ones, or ones the actor belongs to).
    pub async fn namespace(&self, actor: &Principal, name: &str) -> Result<NamespaceSummary> {
        self.directory.visible_namespace(actor, name).await?;
        self.current_pulls().await?;
        self.summary(name).await
    }

    async fn summary(&self, name: &str) -> Result<NamespaceSummary> {
        self.store
            .namespace_summary(name)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("namespace {name}")))
    }

    /// Create a namespace (see [`crate::Directory::create_namespace`]).
    pub async fn create_namespace(
        &self,
        actor: &Principal,
        spec: &NamespaceSpec,
    ) -> Result<NamespaceSummary> {
        let ns = self.directory.create_namespace(actor, spec).await?;
        self.summary(&ns.name).await
    }

    /// Change a namespace (its administrators).
    pub async fn update_namespace(
        &self,
        actor: &Principal,
        name: &str,
        changes: &NamespaceChanges,
    ) -> Result<NamespaceSummary> {
        let ns = self.directory.admin_namespace(actor, name).await?;
        if let Some(labels) = &changes.labels {
            check_labels(labels)?;
        }
        if let Some(d) = &changes.description {
            check_text("description", d, 1024)?;
        }
        if let Some(c) = &changes.category {
            check_text("category", c, 64)?;
        }
        if changes.public == Some(false) && ns.name == self.directory.config().platform_namespace {
            return Err(DirectoryError::Invalid(
                "the platform namespace stays public".into(),
            ));
        }
        let labels = changes.labels.as_deref().map(labels_json);
        self.store
            .update_namespace(
                ns.id,
                &NamespaceUpdate {
                    public: changes.public,
                    description: changes.description.as_deref(),
                    category: changes.category.as_deref(),
                    labels: labels.as_deref(),
                    external_access: changes.external_access,
                },
                now_millis(),
            )
            .await?;
        let mut what = Vec::new();
        if let Some(p) = changes.public {
            what.push(format!("public={p}"));
        }
        if let Some(e) = changes.external_access {
            what.push(format!("external_access={e}"));
        }
        if changes.description.is_some() {
            what.push("description".into());
        }
        if changes.category.is_some() {
            what.push("category".into());
        }
        if changes.labels.is_some() {
            what.push("labels".into());
        }
        self.directory
            .record(actor, "namespace.update", name, &what.join(" "))
            .await?;
        self.summary(name).await
    }

    /// Delete a namespace (its administrators). One that still holds images
    /// is refused unless `delete_all_images`; then its images go first. The
    /// platform namespace cannot be deleted. Returns the images deleted.
    pub async fn delete_namespace(
        &self,
        actor: &Principal,
        name: &str,
        delete_all_images: bool,
    ) -> Result<usize> {
        let ns = self.directory.admin_namespace(actor, name).await?;
        if ns.name == self.directory.config().platform_namespace {
            return Err(DirectoryError::Invalid(
                "the platform namespace cannot be deleted".into(),
            ));
        }
        let images = self.store.namespace_repositories(name).await?;
        let summary = self.summary(name).await?;
        if summary.image_count > 0 && !delete_all_images {
            return Err(DirectoryError::NotEmpty(format!(
                "namespace {name} still holds {} image(s); delete them first, or delete the namespace with all its images (delete_all_images=true)",
                summary.image_count
            )));
        }
        for image in &images {
            let repo =
                RepoName::parse(image).map_err(|e| DirectoryError::Invalid(e.to_string()))?;
            self.check_no_immutable_tags(&repo).await?;
        }
        self.freeing(|| self.store.set_namespace_status(ns.id, "deleting"))
            .await?;
        let mut deleted = 0;
        for image in &images {
            let repo =
                RepoName::parse(image).map_err(|e| DirectoryError::Invalid(e.to_string()))?;
            if self.freeing(|| self.store.delete_repository(&repo)).await? {
                deleted += 1;
                self.record(actor, "repository.delete", image, "with its namespace")
                    .await?;
                self.emit(&[image_deleted_event(actor, &repo)]).await;
            }
        }
        self.freeing(|| self.directory.store().delete_namespace(ns.id))
            .await?;
        self.record(
            actor,
            "namespace.delete",
            name,
            &format!("{deleted} image(s) deleted"),
        )
        .await?;
        // Its own webhooks went with it: the platform's hear of it.
        self.emit(&[Event::new(kind::NAMESPACE_DELETE, Some(name))
            .actor(actor.name())
            .with("images_deleted", deleted)
            .build()])
            .await;
        Ok(deleted)
    }

    /// Members, per-repository permissions and grants listings are the
    /// directory's; grants on one namespace are listed here.
    pub async fn namespace_grants(
        &self,
        actor: &Principal,
        name: &str,
    ) -> Result<Vec<(String, bool, bool)>> {
        let ns = self.directory.member_namespace(actor, name).await?;
        Ok(self.store.namespace_grants(ns.id).await?)
    }

    /// Members of a namespace (see [`crate::Directory::namespace_members`]).
    pub async fn namespace_members(&self, actor: &Principal, name: &str) -> Result<Vec<Member>> {
        self.directory.namespace_members(actor, name).await
    }
}
