//! Images and tags: lists with pull commands and platforms, and deletes
//! (with their audit entries and events).

use berth_meta::{
    ImageListQuery, ImageScope, RepositoryQuery, RepositorySort, RepositorySummary, TagQuery,
    TagSort, TagSummary,
};
use berth_oci::{media_types, Reference, RepoName, Tag};

use crate::access::{Actions, Principal};
use crate::error::DirectoryError;
use crate::events::{kind, Event};
use crate::RegistryError;

use super::paging::{ListFilter, Page, Paging};
use super::{image_deleted_event, Management};

type Result<T> = std::result::Result<T, DirectoryError>;

/// An image in a list, with its pull command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageView {
    /// Statistics.
    pub summary: RepositorySummary,
    /// Name inside the namespace (after `namespace/`).
    pub short_name: String,
    /// `docker pull …` of the latest tag.
    pub pull_command: Option<String>,
}

/// A request for the images a caller sees across namespaces ("My images"):
/// those of the namespaces it belongs to, and on request the shared (public)
/// and platform ones, or every image for a platform administrator.
#[derive(Debug, Clone, Default)]
pub struct ImageListFilter {
    /// Every image (platform administrators only).
    pub all: bool,
    /// Also the images of public namespaces.
    pub shared: bool,
    /// Also the platform namespace's images.
    pub platform: bool,
    /// Only this namespace's.
    pub namespace: Option<String>,
    /// Only those of this project group's namespaces.
    pub group: Option<String>,
    /// Only public or only private namespaces'.
    pub public: Option<bool>,
    /// Full name contains.
    pub name: Option<String>,
    /// Sort key.
    pub sort: RepositorySort,
    /// Descending.
    pub descending: bool,
    /// Page.
    pub paging: Paging,
}

/// An image in a list across namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageListView {
    /// The image, as in a namespace's list.
    pub image: ImageView,
    /// Its namespace.
    pub namespace: String,
    /// The namespace's status.
    pub namespace_status: String,
    /// The namespace is public.
    pub public: bool,
    /// The namespace's project group.
    pub group: String,
}

/// A tag in a list, with its pull command and platforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagView {
    /// Statistics.
    pub summary: TagSummary,
    /// `docker pull …:tag`.
    pub pull_command: String,
    /// `os/architecture[/variant]` of each image of an index.
    pub platforms: Vec<String>,
}

/// What deleting a tag did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagDeleted {
    /// It was the image's last tag, so the image went with it.
    pub image_deleted: bool,
}

/// `os/arch[/variant]` of each manifest in an index.
fn index_platforms(content: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(content) else {
        return Vec::new();
    };
    let Some(list) = v.get("manifests").and_then(|m| m.as_array()) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|m| {
            let p = m.get("platform")?;
            let os = p.get("os")?.as_str()?;
            let arch = p.get("architecture")?.as_str()?;
            if os == "unknown" {
                // Attestation manifests of buildx.
                return None;
            }
            Some(match p.get("variant").and_then(|v| v.as_str()) {
                Some(var) => format!("{os}/{arch}/{var}"),
                None => format!("{os}/{arch}"),
            })
        })
        .collect()
}

fn is_index(media_type: &str) -> bool {
    media_type == media_types::OCI_INDEX || media_type == media_types::DOCKER_LIST
}

impl Management {
    async fn repo_actions(&self, actor: &Principal, repo: &RepoName) -> Result<Actions> {
        self.directory.actions(actor, repo).await
    }

    /// A page of a namespace's images. Shows the images the actor may pull:
    /// all of them with a namespace-wide right, else those it holds a
    /// per-repository permission on.
    pub async fn images(
        &self,
        actor: &Principal,
        namespace: &str,
        filter: &ListFilter<RepositorySort>,
    ) -> Result<Page<ImageView>> {
        let ns = self.directory.visible_namespace(actor, namespace).await?;
        self.current_pulls().await?;
        let wide = self
            .directory
            .namespace_actions(actor, namespace)
            .await?
            .pull;
        let only: Option<Vec<String>> = if wide {
            None
        } else {
            let mut names = Vec::new();
            if let Principal::Account { id, .. } = actor {
                for p in self.directory.store().repository_permissions(ns.id).await? {
                    if p.account_id == *id {
                        names.push(p.repository);
                    }
                }
            }
            Some(names)
        };
        let name = filter.name.as_deref().map(str::to_ascii_lowercase);
        let (items, total) = self
            .store
            .repositories_page(&RepositoryQuery {
                namespace,
                name_contains: name.as_deref(),
                only: only.as_deref(),
                sort: filter.sort,
                descending: filter.descending,
                window: filter.paging.window(),
            })
            .await?;
        let page = Page::new(items, total, filter.paging);
        Ok(page.map(|summary| self.image_view(summary)))
    }

    /// A page of the images the actor sees across namespaces (see
    /// [`ImageListFilter`]): an account's by its roles and per-repository
    /// permissions, public namespaces' on request, the platform namespace's
    /// on request. (Registry users do not manage: the API and console refuse
    /// them before this.)
    pub async fn image_list(
        &self,
        actor: &Principal,
        filter: &ImageListFilter,
    ) -> Result<Page<ImageListView>> {
        if filter.all && !actor.is_platform_admin() {
            return Err(DirectoryError::Forbidden(
                "only platform administrators list all images".into(),
            ));
        }
        if let Some(ns) = &filter.namespace {
            if ns.is_empty() || ns.contains('/') || RepoName::parse(ns).is_err() {
                return Err(DirectoryError::Invalid(format!(
                    "invalid namespace name {ns:?}"
                )));
            }
        }
        self.current_pulls().await?;
        let platform = self.directory.config().platform_namespace.as_str();
        let scope = ImageScope {
            all: filter.all || matches!(actor, Principal::System),
            account: match actor {
                Principal::Account { id, .. } => Some(*id),
                _ => None,
            },
            public: filter.shared,
            platform: filter.platform.then_some(platform),
        };
        let name = filter.name.as_deref().map(str::to_ascii_lowercase);
        let (items, total) = self
            .store
            .images_page(&ImageListQuery {
                scope,
                namespace: filter.namespace.as_deref(),
                group: filter.group.as_deref(),
                public: filter.public,
                name_contains: name.as_deref(),
                sort: filter.sort,
                descending: filter.descending,
                window: filter.paging.window(),
            })
            .await?;
        let page = Page::new(items, total, filter.paging);
        Ok(page.map(|l| ImageListView {
            image: self.image_view(l.summary),
            namespace: l.namespace,
            namespace_status: l.namespace_status,
            public: l.public,
            group: l.group_name,
        }))
    }

    fn image_view(&self, summary: RepositorySummary) -> ImageView {
        let short_name = summary
            .name
            .split_once('/')
            .map(|(_, r)| r.to_owned())
            .unwrap_or_default();
        let pull_command = summary
            .latest_tag
            .as_deref()
            .map(|t| self.pull_command(&summary.name, t));
        ImageView {
            summary,
            short_name,
            pull_command,
        }
    }

    async fn pullable(&self, actor: &Principal, repo: &RepoName) -> Result<()> {
        if !self.repo_actions(actor, repo).await?.pull {
            // Not revealing whether it exists.
            return Err(DirectoryError::NotFound(format!("image {repo}")));
        }
        Ok(())
    }

    /// One image.
    pub async fn image(&self, actor: &Principal, repo: &RepoName) -> Result<ImageView> {
        self.pullable(actor, repo).await?;
        self.current_pulls().await?;
        let summary = self
            .store
            .repository_summary(repo)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("image {repo}")))?;
        Ok(self.image_view(summary))
    }

    /// Delete an image with all its tags (needs the delete right).
    pub async fn delete_image(&self, actor: &Principal, repo: &RepoName) -> Result<()> {
        self.pullable(actor, repo).await?;
        if !self.repo_actions(actor, repo).await?.delete {
            return Err(DirectoryError::Forbidden(format!(
                "you may not delete images in {}",
                repo.namespace()
            )));
        }
        self.check_no_immutable_tags(repo).await?;
        if !self.freeing(|| self.store.delete_repository(repo)).await? {
            return Err(DirectoryError::NotFound(format!("image {repo}")));
        }
        self.record(actor, "repository.delete", repo.as_str(), "")
            .await?;
        self.emit(&[image_deleted_event(actor, repo)]).await;
        Ok(())
    }

    pub(super) async fn check_no_immutable_tags(&self, repo: &RepoName) -> Result<()> {
        match self.registry.immutable_tag(repo).await? {
            Some((tag, pattern)) => Err(DirectoryError::Forbidden(format!(
                "image {repo} has the immutable tag {tag} (namespace {} protects tags matching {pattern:?}); remove the rule first",
                repo.namespace()
            ))),
            None => Ok(()),
        }
    }

    /// A page of an image's tags.
    pub async fn tags(
        &self,
        actor: &Principal,
        repo: &RepoName,
        filter: &ListFilter<TagSort>,
    ) -> Result<Page<TagView>> {
        self.pullable(actor, repo).await?;
        self.current_pulls().await?;
        let (items, total) = self
            .store
            .tags_page(&TagQuery {
                repo,
                name_contains: filter.name.as_deref(),
                sort: filter.sort,
                descending: filter.descending,
                window: filter.paging.window(),
            })
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("image {repo}")))?;
        let mut views = Vec::with_capacity(items.len());
        for summary in items {
            let platforms = if is_index(&summary.media_type) {
                match self
                    .registry
                    .meta()
                    .manifest_by_digest(repo, &summary.digest)
                    .await?
                {
                    Some(m) => index_platforms(&m.content),
                    None => Vec::new(),
                }
            } else {
                Vec::new()
            };
            views.push(TagView {
                pull_command: self.pull_command(repo.as_str(), &summary.name),
                summary,
                platforms,
            });
        }
        Ok(Page::new(views, total, filter.paging))
    }

    /// Delete one tag (needs the delete right). The last tag of an image
    /// takes the image with it.
    pub async fn delete_tag(
        &self,
        actor: &Principal,
        repo: &RepoName,
        tag: &Tag,
    ) -> Result<TagDeleted> {
        self.pullable(actor, repo).await?;
        if !self.repo_actions(actor, repo).await?.delete {
            return Err(DirectoryError::Forbidden(format!(
                "you may not delete tags in {}",
                repo.namespace()
            )));
        }
        if let Some(pattern) = self
            .registry
            .policy(repo.namespace())
            .await?
            .immutable(tag.as_str())
        {
            return Err(DirectoryError::Forbidden(format!(
                "tag {tag} in {repo} is immutable (namespace {} protects tags matching {pattern:?}) and cannot be deleted",
                repo.namespace()
            )));
        }
        match self.remove_tag(actor, repo, tag.as_str(), "").await? {
            Some(image_deleted) => Ok(TagDeleted { image_deleted }),
            None => Err(DirectoryError::NotFound(format!("tag {repo}:{tag}"))),
        }
    }

    /// A manifest or tag deleted through the registry API, with OCI's
    /// meaning (a tag delete leaves its image; a digest delete takes the
    /// manifest and its tags), then its audit entry and its event. The
    /// delete is done once it returns: a failed audit entry or event is
    /// logged, not answered.
    pub async fn delete_manifest(
        &self,
        actor: &Principal,
        client_addr: &str,
        repo: &RepoName,
        reference: &Reference,
    ) -> std::result::Result<(), RegistryError> {
        self.registry.delete_manifest(repo, reference).await?;
        let (action, target) = match reference {
            Reference::Tag(t) => ("tag.delete", format!("{repo}:{t}")),
            Reference::Digest(d) => ("manifest.delete", format!("{repo}@{d}")),
        };
        if let Err(e) = self
            .directory
            .record_from(actor, action, &target, "", client_addr)
            .await
        {
            tracing::error!(error = %e, target, "could not audit a delete");
        }
        let event = match reference {
            Reference::Tag(t) => {
                Event::new(kind::TAG_DELETE, Some(repo.namespace())).with("tag", t.as_str())
            }
            Reference::Digest(d) => {
                Event::new(kind::IMAGE_DELETE, Some(repo.namespace())).with("digest", d.as_str())
            }
        }
        .actor(actor.name())
        .client_address(Some(client_addr))
        .with("repository", repo.as_str())
        .build();
        self.emit(&[event]).await;
        Ok(())
    }

    /// Delete a tag, and its image when it was the last; audit both.
    /// `None` when the tag did not exist.
    pub(super) async fn remove_tag(
        &self,
        actor: &Principal,
        repo: &RepoName,
        tag: &str,
        why: &str,
    ) -> Result<Option<bool>> {
        let tag = Tag::parse(tag).map_err(|e| DirectoryError::Invalid(e.to_string()))?;
        if !self
            .freeing(|| self.registry.meta().delete_tag(repo, &tag))
            .await?
        {
            return Ok(None);
        }
        let action = if why.is_empty() {
            "tag.delete"
        } else {
            "tag.retention"
        };
        let detail = if why.is_empty() {
            tag.to_string()
        } else {
            format!("{tag}: {why}")
        };
        self.record(actor, action, repo.as_str(), &detail).await?;
        let mut events = vec![Event::new(kind::TAG_DELETE, Some(repo.namespace()))
            .actor(actor.name())
            .with("repository", repo.as_str())
            .with("tag", tag.as_str())
            .with("reason", (!why.is_empty()).then_some(why))
            .build()];
        let image_deleted = self.store.tag_count(repo).await? == 0;
        if image_deleted {
            self.freeing(|| self.store.delete_repository(repo)).await?;
            self.record(
                actor,
                "repository.delete",
                repo.as_str(),
                "its last tag was deleted",
            )
            .await?;
            events.push(image_deleted_event(actor, repo));
        }
        self.emit(&events).await;
        Ok(Some(image_deleted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_of_an_index() {
        let index = br#"{"manifests":[
            {"platform":{"os":"linux","architecture":"amd64"}},
            {"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
            {"platform":{"os":"unknown","architecture":"unknown"}}]}"#;
        assert_eq!(index_platforms(index), vec!["linux/amd64", "linux/arm/v7"]);
        assert!(index_platforms(b"not json").is_empty());
    }
}
