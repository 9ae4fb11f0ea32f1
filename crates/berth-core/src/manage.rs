//! The management service behind the REST API and the console: listings
//! with statistics, namespace edits and deletes, image and tag deletes,
//! personal API tokens, console sessions and audit queries. The access
//! rules are the [`Directory`]'s and [`crate::access::allowed`]'s; the
//! registry operations are the [`Registry`]'s. Both surfaces call this, so
//! no rule has a second implementation.

use std::sync::Arc;
use std::time::Duration;

use berth_meta::{
    ApiToken, AuditEntry, AuditQuery, ImageListQuery, ImageScope, ManagementStore, Member,
    NamespaceQuery, NamespaceScope, NamespaceSort, NamespaceSummary, NamespaceUpdate, NewApiToken,
    RepositoryQuery, RepositorySort, RepositorySummary, TagFacts, TagQuery, TagSort, TagSummary,
    Window,
};
use berth_oci::{media_types, RepoName, Tag};

use crate::access::{Actions, Principal};
use crate::clock::now_millis;
use crate::directory::{Directory, NamespaceSpec};
use crate::error::DirectoryError;
use crate::events::{kind, Event};
use crate::policy::{retention_plan, NamespacePolicy};
use crate::registry::Registry;
use crate::validate::{check_labels, check_text, labels_json};

type Result<T> = std::result::Result<T, DirectoryError>;

/// Largest page a list returns.
pub const MAX_PER_PAGE: i64 = 100;
/// Prefix of personal API tokens (recognisable in logs and by secret scanners).
pub const API_TOKEN_PREFIX: &str = "berth_pat_";
/// How often a token's "last used" time is written at most.
const TOKEN_TOUCH_INTERVAL_MS: i64 = 60_000;

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

/// Page number (from 1) and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// Page, from 1.
    pub page: i64,
    /// Items per page, 1 to [`MAX_PER_PAGE`].
    pub per_page: i64,
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            page: 1,
            per_page: 20,
        }
    }
}

/// The highest page number a list takes.
pub const MAX_PAGE: i64 = 1_000_000_000;

impl Paging {
    /// Checked paging.
    pub fn new(page: Option<i64>, per_page: Option<i64>) -> Result<Paging> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(20);
        if page < 1 {
            return Err(DirectoryError::Invalid("page starts at 1".into()));
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(DirectoryError::Invalid(format!(
                "per_page must be between 1 and {MAX_PER_PAGE}"
            )));
        }
        // A fixed bound the API document can state (page × per_page must
        // not overflow either way).
        if page > MAX_PAGE || page.checked_mul(per_page).is_none() {
            return Err(DirectoryError::Invalid(format!(
                "page is at most {MAX_PAGE}"
            )));
        }
        Ok(Paging { page, per_page })
    }

    fn window(self) -> Window {
        Window {
            offset: (self.page - 1) * self.per_page,
            limit: self.per_page,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Items matching in all pages.
    pub total: i64,
    /// This page's number.
    pub page: i64,
    /// Page size.
    pub per_page: i64,
}

impl<T> Page<T> {
    fn new(items: Vec<T>, total: i64, paging: Paging) -> Self {
        Page {
            items,
            total,
            page: paging.page,
            per_page: paging.per_page,
        }
    }

    /// Turn each item into another.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            page: self.page,
            per_page: self.per_page,
        }
    }
}

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

/// An image or tag list request.
#[derive(Debug, Clone, Default)]
pub struct ListFilter<S> {
    /// Name contains.
    pub name: Option<String>,
    /// Sort key.
    pub sort: S,
    /// Descending.
    pub descending: bool,
    /// Page.
    pub paging: Paging,
}

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

/// A namespace's policies with its storage use.
#[derive(Debug, Clone)]
pub struct PolicyView {
    /// The policies.
    pub policy: NamespacePolicy,
    /// Bytes of the distinct blobs the namespace holds.
    pub used_bytes: i64,
}

/// What a retention run did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct RetentionReport {
    /// Whether nothing was deleted.
    pub dry_run: bool,
    /// Tags deleted (or to delete), with whether their image went too.
    pub deleted: Vec<(TagFacts, bool)>,
    /// Tags kept.
    pub kept: usize,
}

/// A console session as the surfaces see it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Who is logged in.
    pub principal: Principal,
    /// The token unsafe requests must carry.
    pub csrf_token: String,
}

/// A freshly created session.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Cookie value (secret).
    pub cookie: String,
    /// CSRF token.
    pub csrf_token: String,
    /// Lifetime.
    pub max_age: Duration,
}

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

/// The management service.
#[derive(Debug, Clone)]
pub struct Management {
    directory: Directory,
    registry: Registry,
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
            directory,
            registry,
            store,
            config: Arc::new(config),
        }
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

    // ---- namespaces --------------------------------------------------------

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

    /// Create a namespace (see [`Directory::create_namespace`]).
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

    // ---- images and tags ---------------------------------------------------

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

    async fn check_no_immutable_tags(&self, repo: &RepoName) -> Result<()> {
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

    /// Delete a tag, and its image when it was the last; audit both.
    /// `None` when the tag did not exist.
    async fn remove_tag(
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

    // ---- namespace policies --------------------------------------------------

    /// A namespace's policies and storage use (its members).
    pub async fn policy(&self, actor: &Principal, namespace: &str) -> Result<PolicyView> {
        let ns = self.directory.member_namespace(actor, namespace).await?;
        let policy = self.registry.policy(&ns.name).await?;
        let used_bytes = self.registry.meta().namespace_usage(&ns.name).await?;
        Ok(PolicyView { policy, used_bytes })
    }

    /// Replace a namespace's policies (its administrators).
    pub async fn set_policy(
        &self,
        actor: &Principal,
        namespace: &str,
        policy: &NamespacePolicy,
    ) -> Result<PolicyView> {
        let ns = self.directory.admin_namespace(actor, namespace).await?;
        policy.validate().map_err(DirectoryError::Invalid)?;
        // The quota bounds the tenant: it is the platform's to set. The
        // namespace's administrators see it, and may send it back as it is.
        if !actor.is_platform_admin()
            && self.registry.policy(&ns.name).await?.quota_bytes != policy.quota_bytes
        {
            return Err(DirectoryError::Forbidden(
                "the storage quota is set by platform administrators; leave quota_bytes as it is"
                    .into(),
            ));
        }
        if !self
            .registry
            .meta()
            .set_namespace_policy(&ns.name, &policy.to_record(), now_millis())
            .await?
        {
            return Err(DirectoryError::NotFound(format!("namespace {namespace}")));
        }
        let detail = format!(
            "immutable tags {:?}; quota {}; {} retention rule(s)",
            policy.immutable_tags,
            policy
                .quota_bytes
                .map(|q| format!("{q} bytes"))
                .unwrap_or_else(|| "none".into()),
            policy.retention.len()
        );
        self.directory
            .record(actor, "namespace.policy", &ns.name, &detail)
            .await?;
        self.policy(actor, namespace).await
    }

    /// Apply a namespace's retention rules (its administrators); a dry run
    /// only lists the tags that would go.
    pub async fn run_retention(
        &self,
        actor: &Principal,
        namespace: &str,
        dry_run: bool,
    ) -> Result<RetentionReport> {
        let ns = self.directory.admin_namespace(actor, namespace).await?;
        self.apply_retention(actor, &ns.name, dry_run).await
    }

    /// Apply the retention rules of every namespace that has some (the
    /// schedule). Returns the tags deleted.
    pub async fn run_all_retention(&self) -> Result<usize> {
        let mut deleted = 0;
        for ns in self.registry.meta().retention_namespaces().await? {
            let report = self.apply_retention(&Principal::System, &ns, false).await?;
            deleted += report.deleted.len();
        }
        Ok(deleted)
    }

    async fn apply_retention(
        &self,
        actor: &Principal,
        namespace: &str,
        dry_run: bool,
    ) -> Result<RetentionReport> {
        // Pull counts decide too: write the pending ones first.
        self.current_pulls().await?;
        let policy = self.registry.policy(namespace).await?;
        let tags = self.registry.meta().namespace_tags(namespace).await?;
        let plan = retention_plan(&policy, &tags, now_millis());
        let mut report = RetentionReport {
            dry_run,
            kept: tags.len() - plan.len(),
            deleted: Vec::with_capacity(plan.len()),
        };
        for t in plan {
            if dry_run {
                report.deleted.push((t, false));
                continue;
            }
            let repo =
                RepoName::parse(&t.repo).map_err(|e| DirectoryError::Invalid(e.to_string()))?;
            if let Some(image_deleted) = self
                .remove_tag(
                    actor,
                    &repo,
                    &t.tag,
                    "removed by the namespace's retention rules",
                )
                .await?
            {
                report.deleted.push((t, image_deleted));
            }
        }
        let detail = format!(
            "{}{} tag(s) deleted, {} kept",
            if dry_run { "dry run: " } else { "" },
            report.deleted.len(),
            report.kept
        );
        self.directory
            .record(actor, "namespace.retention", namespace, &detail)
            .await?;
        if !dry_run {
            self.emit(&[Event::new(kind::RETENTION_RUN, Some(namespace))
                .actor(actor.name())
                .with("tags_deleted", report.deleted.len())
                .with("tags_kept", report.kept)
                .with(
                    "deleted",
                    report
                        .deleted
                        .iter()
                        .map(|(t, image)| {
                            serde_json::json!({"repository": t.repo, "tag": t.tag, "image_deleted": image})
                        })
                        .collect::<Vec<_>>(),
                )
                .build()])
                .await;
        }
        Ok(report)
    }

    // ---- API tokens --------------------------------------------------------

    fn account_id(actor: &Principal) -> Result<i64> {
        match actor {
            Principal::Account { id, .. } => Ok(*id),
            _ => Err(DirectoryError::Forbidden(
                "only accounts have API tokens".into(),
            )),
        }
    }

    /// Create a personal API token; the secret is returned once.
    pub async fn create_token(
        &self,
        actor: &Principal,
        name: &str,
        expires_at: Option<i64>,
    ) -> Result<(ApiToken, String)> {
        let account_id = Self::account_id(actor)?;
        if name.trim().is_empty() {
            return Err(DirectoryError::Invalid("name the token".into()));
        }
        check_text("token name", name, 64)?;
        if expires_at.is_some_and(|t| t <= now_millis()) {
            return Err(DirectoryError::Invalid(
                "the expiry lies in the past".into(),
            ));
        }
        let secret = format!("{API_TOKEN_PREFIX}{}", crate::password::random_secret(32));
        let prefix: String = secret.chars().take(API_TOKEN_PREFIX.len() + 6).collect();
        let token = self
            .store
            .create_api_token(&NewApiToken {
                account_id,
                name,
                token_hash: &crate::password::secret_hash(&secret),
                prefix: &prefix,
                expires_at,
                now: now_millis(),
            })
            .await?;
        self.directory
            .record(actor, "token.create", actor.name(), name)
            .await?;
        Ok((token, secret))
    }

    /// The actor's tokens.
    pub async fn tokens(&self, actor: &Principal) -> Result<Vec<ApiToken>> {
        Ok(self.store.api_tokens_of(Self::account_id(actor)?).await?)
    }

    /// Revoke one of the actor's tokens.
    pub async fn revoke_token(&self, actor: &Principal, id: i64) -> Result<()> {
        if !self
            .store
            .delete_api_token(Self::account_id(actor)?, id)
            .await?
        {
            return Err(DirectoryError::NotFound(format!("token {id}")));
        }
        self.directory
            .record(actor, "token.revoke", actor.name(), &id.to_string())
            .await
    }

    /// Revoke every one of the actor's tokens. Returns how many.
    pub async fn revoke_all_tokens(&self, actor: &Principal) -> Result<u64> {
        let revoked = self
            .store
            .delete_api_tokens_of(Self::account_id(actor)?)
            .await?;
        self.directory
            .record(
                actor,
                "token.revoke_all",
                actor.name(),
                &format!("{revoked} token(s)"),
            )
            .await?;
        Ok(revoked)
    }

    /// The account an API token belongs to; fails for unknown, expired or
    /// revoked tokens and disabled accounts.
    pub async fn authenticate_token(&self, secret: &str) -> Result<Principal> {
        if !secret.starts_with(API_TOKEN_PREFIX) {
            return Err(DirectoryError::AuthenticationFailed);
        }
        let token = self
            .store
            .api_token_by_hash(&crate::password::secret_hash(secret))
            .await?
            .ok_or(DirectoryError::AuthenticationFailed)?;
        let now = now_millis();
        if token.expires_at.is_some_and(|t| t <= now) {
            return Err(DirectoryError::AuthenticationFailed);
        }
        let principal = self.account_principal(token.account_id).await?;
        if token
            .last_used_at
            .is_none_or(|t| now - t > TOKEN_TOUCH_INTERVAL_MS)
        {
            self.store.touch_api_token(token.id, now).await?;
        }
        Ok(principal)
    }

    async fn account_principal(&self, id: i64) -> Result<Principal> {
        match self.directory.store().account_by_id(id).await? {
            Some(a) if !a.disabled => Ok(Principal::Account {
                id: a.id,
                name: a.name,
                is_admin: a.is_admin,
            }),
            _ => Err(DirectoryError::AuthenticationFailed),
        }
    }

    // ---- console sessions --------------------------------------------------

    /// Start a session for an account that has logged in.
    pub async fn create_session(&self, principal: &Principal) -> Result<NewSession> {
        let account_id = Self::account_id(principal)?;
        let cookie = crate::password::random_secret(32);
        let csrf_token = crate::password::random_secret(24);
        let now = now_millis();
        let lifetime = self.config.session_lifetime;
        self.store
            .create_session(
                &crate::password::secret_hash(&cookie),
                account_id,
                &csrf_token,
                now,
                now + lifetime.as_millis() as i64,
            )
            .await?;
        // Now and then, forget expired sessions.
        if now % 16 == 0 {
            self.store.delete_expired_sessions(now).await?;
        }
        Ok(NewSession {
            cookie,
            csrf_token,
            max_age: lifetime,
        })
    }

    /// The session a cookie belongs to.
    pub async fn session(&self, cookie: &str) -> Result<SessionInfo> {
        let session = self
            .store
            .session(&crate::password::secret_hash(cookie), now_millis())
            .await?
            .ok_or(DirectoryError::AuthenticationFailed)?;
        Ok(SessionInfo {
            principal: self.account_principal(session.account_id).await?,
            csrf_token: session.csrf_token,
        })
    }

    /// End a session.
    pub async fn end_session(&self, cookie: &str) -> Result<()> {
        Ok(self
            .store
            .delete_session(&crate::password::secret_hash(cookie))
            .await?)
    }

    // ---- audit log ---------------------------------------------------------

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

    /// Members of a namespace (see [`Directory::namespace_members`]).
    pub async fn namespace_members(&self, actor: &Principal, name: &str) -> Result<Vec<Member>> {
        self.directory.namespace_members(actor, name).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::parse_labels;

    #[test]
    fn labels_are_checked() {
        let ok = vec![("team".to_owned(), "web ops".to_owned())];
        assert!(check_labels(&ok).is_ok());
        for bad in [
            ("".to_owned(), "x".to_owned()),
            ("-x".to_owned(), "x".to_owned()),
            ("k".to_owned(), "a\"b".to_owned()),
            ("k".to_owned(), "a\\b".to_owned()),
            ("k".to_owned(), "x".repeat(129)),
        ] {
            assert!(check_labels(std::slice::from_ref(&bad)).is_err(), "{bad:?}");
        }
        let dup = vec![
            ("a".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
        ];
        assert!(check_labels(&dup).is_err());
        assert_eq!(parse_labels(&labels_json(&ok)), ok);
    }

    #[test]
    fn paging_is_checked() {
        assert_eq!(Paging::new(None, None).unwrap(), Paging::default());
        assert!(Paging::new(Some(0), None).is_err());
        assert!(Paging::new(None, Some(101)).is_err());
        assert!(Paging::new(Some(i64::MAX), Some(100)).is_err());
        assert_eq!(
            Paging::new(Some(3), Some(10)).unwrap().window(),
            Window {
                offset: 20,
                limit: 10
            }
        );
    }

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
