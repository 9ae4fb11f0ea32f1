//! The management contract ([`ManagementStore`]): paginated, filtered and
//! sorted lists with their statistics for the management API and console,
//! namespace updates, whole-image deletes, personal API tokens, console
//! sessions and audit log queries. Pagination happens in the database.

use async_trait::async_trait;
use berth_oci::{Digest, RepoName};

use crate::directory::Namespace;
use crate::error::MetaResult;

/// A window of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Rows to skip.
    pub offset: i64,
    /// Rows to return at most.
    pub limit: i64,
}

/// Which namespaces a listing may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceScope {
    /// All (platform administrators).
    All,
    /// Those the account belongs to, through its project groups or a role on
    /// the namespace itself.
    MemberOf(i64),
    /// Public ones only.
    Public,
}

/// Sort keys of the namespace list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NamespaceSort {
    /// By name.
    #[default]
    Name,
    /// By creation time.
    Created,
    /// By last change.
    Updated,
    /// By aggregated pull count.
    Pulls,
    /// By image count.
    Images,
}

/// A namespace list request.
#[derive(Debug, Clone)]
pub struct NamespaceQuery<'a> {
    /// Which namespaces may be shown.
    pub scope: NamespaceScope,
    /// Only this project group's.
    pub group: Option<&'a str>,
    /// Only public (`Some(true)`) or private (`Some(false)`) ones.
    pub public: Option<bool>,
    /// Name contains this (lowercase).
    pub name_contains: Option<&'a str>,
    /// Has this label: `(key, Some(value))` or any value `(key, None)`.
    pub label: Option<(&'a str, Option<&'a str>)>,
    /// Sort key.
    pub sort: NamespaceSort,
    /// Descending order.
    pub descending: bool,
    /// The window.
    pub window: Window,
}

/// A namespace with its statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceSummary {
    /// The namespace.
    pub namespace: Namespace,
    /// Owning project group's name.
    pub group_name: String,
    /// Images (repositories holding at least one manifest).
    pub image_count: i64,
    /// Pulls of all its images.
    pub pull_count: i64,
}

/// Changes to a namespace; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct NamespaceUpdate<'a> {
    /// Public or private.
    pub public: Option<bool>,
    /// Description.
    pub description: Option<&'a str>,
    /// Category.
    pub category: Option<&'a str>,
    /// Labels as a JSON object.
    pub labels: Option<&'a str>,
    /// External access switch.
    pub external_access: Option<bool>,
}

/// Sort keys of the image list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RepositorySort {
    /// By name.
    #[default]
    Name,
    /// By last push.
    Updated,
    /// By pull count.
    Pulls,
    /// By creation time.
    Created,
}

/// An image list request.
#[derive(Debug, Clone)]
pub struct RepositoryQuery<'a> {
    /// The namespace.
    pub namespace: &'a str,
    /// Name contains this (lowercase).
    pub name_contains: Option<&'a str>,
    /// Only these repositories (`None`: all of the namespace).
    pub only: Option<&'a [String]>,
    /// Sort key.
    pub sort: RepositorySort,
    /// Descending order.
    pub descending: bool,
    /// The window.
    pub window: Window,
}

/// An image (repository) with its statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySummary {
    /// Full name, `namespace/…`.
    pub name: String,
    /// The most recently pushed tag.
    pub latest_tag: Option<String>,
    /// Number of tags.
    pub tag_count: i64,
    /// Image pulls.
    pub pull_count: i64,
    /// Last pull, Unix milliseconds.
    pub last_pulled_at: Option<i64>,
    /// Bytes of the distinct blobs its manifests reference.
    pub size: i64,
    /// Created, Unix milliseconds.
    pub created_at: i64,
    /// Last manifest push (or creation, before any), Unix milliseconds.
    pub updated_at: i64,
}

/// Which images a list across namespaces may show: the union of the parts
/// that are set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageScope<'a> {
    /// Every image (platform administrators).
    pub all: bool,
    /// Those of the namespaces this account belongs to (a project-group or
    /// namespace role), and those it holds a per-repository permission on.
    pub account: Option<i64>,
    /// Those of public namespaces.
    pub public: bool,
    /// Those of the platform namespace (its name).
    pub platform: Option<&'a str>,
}

/// A request for images across namespaces.
#[derive(Debug, Clone)]
pub struct ImageListQuery<'a> {
    /// Which images may be shown.
    pub scope: ImageScope<'a>,
    /// Only this namespace's.
    pub namespace: Option<&'a str>,
    /// Only those of this project group's namespaces.
    pub group: Option<&'a str>,
    /// Only public (`Some(true)`) or private (`Some(false)`) namespaces'.
    pub public: Option<bool>,
    /// Full name contains this (lowercase).
    pub name_contains: Option<&'a str>,
    /// Sort key (`Name` sorts by the full name).
    pub sort: RepositorySort,
    /// Descending order.
    pub descending: bool,
    /// The window.
    pub window: Window,
}

/// An image in a list across namespaces: its statistics and its namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageListing {
    /// The image's statistics.
    pub summary: RepositorySummary,
    /// Its namespace.
    pub namespace: String,
    /// The namespace's status (`available`, `deleting`).
    pub namespace_status: String,
    /// The namespace is public.
    pub public: bool,
    /// The namespace's project group.
    pub group_name: String,
}

/// Sort keys of the tag list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagSort {
    /// By name.
    #[default]
    Name,
    /// By push time.
    Pushed,
    /// By pull count.
    Pulls,
}

/// A tag list request.
#[derive(Debug, Clone)]
pub struct TagQuery<'a> {
    /// The repository.
    pub repo: &'a RepoName,
    /// Name contains this.
    pub name_contains: Option<&'a str>,
    /// Sort key.
    pub sort: TagSort,
    /// Descending order.
    pub descending: bool,
    /// The window.
    pub window: Window,
}

/// A tag with what it points at and its statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSummary {
    /// Tag name.
    pub name: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest media type.
    pub media_type: String,
    /// Bytes: the manifest, its blobs, and for an index its children's blobs.
    pub size: i64,
    /// Pushed (tag last moved), Unix milliseconds.
    pub pushed_at: i64,
    /// Pulls through this tag (or of its manifest by digest).
    pub pull_count: i64,
    /// Last pull, Unix milliseconds.
    pub last_pulled_at: Option<i64>,
}

/// A personal API token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Id.
    pub id: i64,
    /// Owning account.
    pub account_id: i64,
    /// Name given by its owner.
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// Created, Unix milliseconds.
    pub created_at: i64,
    /// Last used, Unix milliseconds (updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// Expiry, Unix milliseconds.
    pub expires_at: Option<i64>,
}

/// A new API token.
#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    /// Owning account.
    pub account_id: i64,
    /// Name.
    pub name: &'a str,
    /// SHA-256 of the secret, hex.
    pub token_hash: &'a str,
    /// First characters of the secret.
    pub prefix: &'a str,
    /// Expiry.
    pub expires_at: Option<i64>,
    /// Now.
    pub now: i64,
}

/// A console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account logged in.
    pub account_id: i64,
    /// The token forms and API calls must echo.
    pub csrf_token: String,
    /// Expiry, Unix milliseconds.
    pub expires_at: i64,
}

/// An audit log query; entries come newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery<'a> {
    /// Entries about this namespace or its repositories.
    pub namespace: Option<&'a str>,
    /// By this actor.
    pub actor: Option<&'a str>,
    /// With this action, or (ending in `.`) this action prefix.
    pub action: Option<&'a str>,
    /// At or after, Unix milliseconds.
    pub since: Option<i64>,
    /// Before, Unix milliseconds.
    pub until: Option<i64>,
    /// Entries older than this id (keyset pagination).
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// The management contract, implemented by each database backend.
#[async_trait]
pub trait ManagementStore: Send + Sync + std::fmt::Debug {
    /// A page of namespaces with statistics, and the total matching.
    async fn namespaces_page(
        &self,
        query: &NamespaceQuery<'_>,
    ) -> MetaResult<(Vec<NamespaceSummary>, i64)>;
    /// Statistics of one namespace.
    async fn namespace_summary(&self, name: &str) -> MetaResult<Option<NamespaceSummary>>;
    /// Change a namespace.
    async fn update_namespace(
        &self,
        id: i64,
        update: &NamespaceUpdate<'_>,
        now: i64,
    ) -> MetaResult<()>;
    /// Set a namespace's status (`available`, `deleting`).
    async fn set_namespace_status(&self, id: i64, status: &str) -> MetaResult<()>;

    /// Registry users granted on a namespace: (name, pull, push).
    async fn namespace_grants(&self, namespace_id: i64) -> MetaResult<Vec<(String, bool, bool)>>;

    /// A page of a namespace's images, and the total matching.
    async fn repositories_page(
        &self,
        query: &RepositoryQuery<'_>,
    ) -> MetaResult<(Vec<RepositorySummary>, i64)>;
    /// A page of the images `query.scope` shows across namespaces, and the
    /// total matching. Only the page's rows are summarised.
    async fn images_page(&self, query: &ImageListQuery<'_>)
        -> MetaResult<(Vec<ImageListing>, i64)>;
    /// One image's statistics.
    async fn repository_summary(&self, repo: &RepoName) -> MetaResult<Option<RepositorySummary>>;
    /// Names of a namespace's repositories (all of them).
    async fn namespace_repositories(&self, namespace: &str) -> MetaResult<Vec<String>>;
    /// Delete an image: its manifests, tags and blob links. Returns whether it existed.
    async fn delete_repository(&self, repo: &RepoName) -> MetaResult<bool>;
    /// A page of an image's tags, and the total; `None` for an unknown image.
    async fn tags_page(&self, query: &TagQuery<'_>) -> MetaResult<Option<(Vec<TagSummary>, i64)>>;
    /// Number of tags an image has.
    async fn tag_count(&self, repo: &RepoName) -> MetaResult<i64>;

    /// Store a new API token.
    async fn create_api_token(&self, token: &NewApiToken<'_>) -> MetaResult<ApiToken>;
    /// The token with this secret hash.
    async fn api_token_by_hash(&self, token_hash: &str) -> MetaResult<Option<ApiToken>>;
    /// An account's tokens.
    async fn api_tokens_of(&self, account_id: i64) -> MetaResult<Vec<ApiToken>>;
    /// Revoke every token of an account. Returns how many.
    async fn delete_api_tokens_of(&self, account_id: i64) -> MetaResult<u64>;
    /// Revoke a token of an account. Returns whether it existed.
    async fn delete_api_token(&self, account_id: i64, id: i64) -> MetaResult<bool>;
    /// Note a token's use.
    async fn touch_api_token(&self, id: i64, now: i64) -> MetaResult<()>;

    /// Store a console session.
    async fn create_session(
        &self,
        id_hash: &str,
        account_id: i64,
        csrf_token: &str,
        now: i64,
        expires_at: i64,
    ) -> MetaResult<()>;
    /// A session that has not expired by `now`.
    async fn session(&self, id_hash: &str, now: i64) -> MetaResult<Option<Session>>;
    /// End a session.
    async fn delete_session(&self, id_hash: &str) -> MetaResult<()>;
    /// Forget expired sessions. Returns how many.
    async fn delete_expired_sessions(&self, now: i64) -> MetaResult<u64>;

    /// Audit entries matching the query, newest first.
    async fn audit_page(&self, query: &AuditQuery<'_>) -> MetaResult<Vec<crate::AuditEntry>>;
}
