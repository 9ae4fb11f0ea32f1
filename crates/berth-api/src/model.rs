//! The JSON documents of the management API. Times are RFC 3339 UTC
//! strings; sizes are bytes.

use std::collections::BTreeMap;

use berth_core::token::rfc3339;
use berth_core::{parse_labels, ImageListView, ImageView, Page, TagView};
use berth_meta::{Account, ApiToken, AuditEntry, Member, NamespaceSummary, RegistryUser};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// RFC 3339 of Unix milliseconds.
pub fn time(ms: i64) -> String {
    rfc3339(ms.div_euclid(1000))
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T: ToSchema> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Items matching, over all pages.
    pub total: i64,
    /// This page (from 1).
    pub page: i64,
    /// Page size.
    pub per_page: i64,
}

impl<T: ToSchema> Paged<T> {
    /// From a service page.
    pub fn from_page<S>(page: Page<S>, f: impl FnMut(S) -> T) -> Self {
        let page = page.map(f);
        Paged {
            items: page.items,
            total: page.total,
            page: page.page,
            per_page: page.per_page,
        }
    }
}

/// Paging and sorting parameters shared by the lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page number, from 1 (default 1) to 1000000000.
    #[param(minimum = 1, maximum = 1_000_000_000)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    /// Only items whose name contains this.
    pub q: Option<String>,
    /// Sort key; see each list. Prefix with `-` for descending.
    pub sort: Option<String>,
}

/// A namespace in lists and answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamespaceView {
    /// Globally unique name.
    #[schema(example = "team-a")]
    pub name: String,
    /// Stable resource id.
    #[schema(example = "ns-42")]
    pub resource_id: String,
    /// `available`, or `deleting` while its images are being deleted.
    pub status: String,
    /// Anyone may pull.
    pub public: bool,
    /// Pulls of all its images.
    pub pull_count: i64,
    /// Images it holds.
    pub image_count: i64,
    /// Owning project group.
    pub project_group: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Whether clients outside the internal networks may reach it.
    pub external_access: bool,
    /// Created.
    pub created: String,
    /// Last changed.
    pub updated: String,
}

impl From<NamespaceSummary> for NamespaceView {
    fn from(s: NamespaceSummary) -> Self {
        let labels = parse_labels(&s.namespace.labels).into_iter().collect();
        let n = s.namespace;
        NamespaceView {
            resource_id: format!("ns-{}", n.id),
            name: n.name,
            status: n.status,
            public: n.public,
            pull_count: s.pull_count,
            image_count: s.image_count,
            project_group: s.group_name,
            description: n.description,
            category: n.category,
            labels,
            external_access: n.external_access,
            created: time(n.created_at),
            updated: time(n.updated_at),
        }
    }
}

/// A namespace to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNamespace {
    /// Name: lowercase letters and digits, separated by `.`, `_`, `__` or `-`.
    #[schema(
        example = "team-a",
        max_length = 255,
        pattern = "^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$"
    )]
    pub name: String,
    /// Public (anyone pulls); default private.
    #[serde(default)]
    pub public: bool,
    /// Owning project group; default the caller's own group.
    pub project_group: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Category.
    #[serde(default)]
    pub category: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Changes to a namespace; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNamespace {
    /// Public or private.
    pub public: Option<bool>,
    /// Description.
    pub description: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Labels (replacing all).
    pub labels: Option<BTreeMap<String, String>>,
    /// The external access switch.
    pub external_access: Option<bool>,
}

/// Namespace list parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NamespaceParams {
    /// `mine` (default: namespaces you belong to), `shared` (public ones) or
    /// `all` (platform administrators).
    #[param(pattern = "^(mine|shared|all)$")]
    pub tab: Option<String>,
    /// Only this project group's.
    pub project_group: Option<String>,
    /// `public` or `private`.
    #[param(pattern = "^(public|private)$")]
    pub visibility: Option<String>,
    /// Label `key` or `key=value`.
    pub label: Option<String>,
}

/// How a delete treats images.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteNamespaceParams {
    /// Also delete every image the namespace holds (without it, a namespace
    /// with images is refused with 409).
    #[serde(default)]
    pub delete_all_images: bool,
}

/// A batch of namespaces to delete.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchDeleteNamespaces {
    /// Names.
    #[schema(min_items = 1, max_items = 100)]
    pub names: Vec<String>,
    /// Also delete their images.
    #[serde(default)]
    pub delete_all_images: bool,
}

/// A batch of names to delete (images or tags).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchDelete {
    /// Names.
    #[schema(min_items = 1, max_items = 100)]
    pub names: Vec<String>,
}

/// The outcome of a batch.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct BatchResult {
    /// Names done.
    pub deleted: Vec<String>,
    /// Names refused, each with its problem.
    pub failed: Vec<BatchFailure>,
}

/// One refused item of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchFailure {
    /// Name.
    pub name: String,
    /// Stable code.
    pub code: String,
    /// Why.
    pub detail: String,
}

/// What a namespace delete did.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamespaceDeleted {
    /// Name.
    pub name: String,
    /// Images deleted with it.
    pub images_deleted: usize,
}

/// An image (repository) in a namespace.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageJson {
    /// Name inside the namespace (may contain `/`).
    #[schema(example = "web/frontend")]
    pub name: String,
    /// Full repository name.
    #[schema(example = "team-a/web/frontend")]
    pub repository: String,
    /// Most recently pushed tag.
    pub latest_tag: Option<String>,
    /// Pulls of the image.
    pub pull_count: i64,
    /// Last pull.
    pub last_pulled: Option<String>,
    /// `docker pull` of the latest tag.
    #[schema(example = "docker pull registry.example.com/team-a/web/frontend:1.2")]
    pub pull_command: Option<String>,
    /// Number of tags.
    pub tag_count: i64,
    /// Bytes of the distinct layers and configs of its manifests.
    pub size: i64,
    /// Created.
    pub created: String,
    /// Last push.
    pub updated: String,
}

impl From<ImageView> for ImageJson {
    fn from(v: ImageView) -> Self {
        let s = v.summary;
        ImageJson {
            name: v.short_name,
            repository: s.name,
            latest_tag: s.latest_tag,
            pull_count: s.pull_count,
            last_pulled: s.last_pulled_at.map(time),
            pull_command: v.pull_command,
            tag_count: s.tag_count,
            size: s.size,
            created: time(s.created_at),
            updated: time(s.updated_at),
        }
    }
}

/// Which images the list across namespaces shows, and filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImageListParams {
    /// Every image (platform administrators; others get 403).
    pub all: Option<bool>,
    /// Also the images of public namespaces you do not belong to.
    pub shared: Option<bool>,
    /// Also the platform namespace's images.
    pub platform: Option<bool>,
    /// Only this namespace's images.
    #[param(
        max_length = 255,
        pattern = "^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$"
    )]
    pub namespace: Option<String>,
    /// Only images of this project group's namespaces.
    pub project_group: Option<String>,
    /// `public` or `private`: only images of such namespaces.
    #[param(pattern = "^(public|private)$")]
    pub visibility: Option<String>,
}

/// An image in the list across namespaces.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageListJson {
    /// The image, as in a namespace's list.
    #[serde(flatten)]
    pub image: ImageJson,
    /// Its namespace.
    #[schema(example = "team-a")]
    pub namespace: String,
    /// The namespace's status: `available` or `deleting`.
    pub namespace_status: String,
    /// The namespace's visibility: `public` or `private`.
    pub visibility: String,
    /// The namespace's project group.
    pub project_group: String,
}

impl From<ImageListView> for ImageListJson {
    fn from(v: ImageListView) -> Self {
        ImageListJson {
            image: v.image.into(),
            namespace: v.namespace,
            namespace_status: v.namespace_status,
            visibility: if v.public { "public" } else { "private" }.to_owned(),
            project_group: v.group,
        }
    }
}

/// A tag of an image.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagJson {
    /// Tag.
    pub name: String,
    /// Manifest digest.
    pub digest: String,
    /// `docker pull` of this tag.
    pub pull_command: String,
    /// Pulls through this tag (or of its manifest by digest).
    pub pull_count: i64,
    /// Last pull.
    pub last_pulled: Option<String>,
    /// Bytes (manifest, config and layers; for an index, of all its images).
    pub size: i64,
    /// Manifest media type.
    pub media_type: String,
    /// Platforms of an index (`os/arch[/variant]`); empty for one image.
    pub platforms: Vec<String>,
    /// When the tag was pushed.
    pub pushed: String,
    /// With several regions: the regions the image is whole in now
    /// (`available`), and those it is still being copied to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<TagRegionJson>,
}

/// Whether an image is available in a region.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagRegionJson {
    /// Region.
    pub region: String,
    /// Every blob of the image is in the region's storage (else pending;
    /// a pull there still works, fetching what is missing).
    pub available: bool,
}

impl From<TagView> for TagJson {
    fn from(v: TagView) -> Self {
        let s = v.summary;
        TagJson {
            name: s.name,
            digest: s.digest.to_string(),
            pull_command: v.pull_command,
            pull_count: s.pull_count,
            last_pulled: s.last_pulled_at.map(time),
            size: s.size,
            media_type: s.media_type,
            platforms: v.platforms,
            pushed: time(s.pushed_at),
            regions: Vec::new(),
        }
    }
}

/// What deleting a tag did.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagDeletedJson {
    /// Tag.
    pub tag: String,
    /// The image went too (it was its last tag).
    pub image_deleted: bool,
}

/// A member and its role.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberJson {
    /// Account.
    pub account: String,
    /// `admin`, `developer` or `guest`.
    pub role: String,
}

impl From<Member> for MemberJson {
    fn from(m: Member) -> Self {
        MemberJson {
            account: m.account_name,
            role: m.role,
        }
    }
}

/// A role to give.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// `admin`, `developer` or `guest`.
    #[schema(value_type = RoleName, example = "developer")]
    pub role: String,
}

/// A per-repository permission.
/// A role in a project group or namespace.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the accepted values; parsed by berth-core
pub enum RoleName {
    /// Everything, including members and grants.
    Admin,
    /// Pull, push and delete.
    Developer,
    /// Pull.
    Guest,
}

/// A per-image permission.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the accepted values; parsed by berth-core
pub enum PermissionName {
    /// Pull.
    Read,
    /// Pull and push.
    Write,
    /// Pull, push and delete.
    Manage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionJson {
    /// Name inside the namespace.
    pub repository: String,
    /// Account.
    pub account: String,
    /// `read`, `write` or `manage`.
    pub permission: String,
}

/// A permission to give.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPermission {
    /// `read`, `write` or `manage`.
    #[schema(value_type = PermissionName, example = "write")]
    pub permission: String,
}

/// A registry user's grant on a namespace.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantJson {
    /// Registry user.
    pub registry_user: String,
    /// May pull.
    pub pull: bool,
    /// May push (and pull).
    pub push: bool,
}

/// Pull and push rights to grant (both false removes the grant).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetGrant {
    /// May pull.
    pub pull: bool,
    /// May push (implies pull).
    pub push: bool,
}

/// A registry user.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistryUserJson {
    /// Name (its `docker login` user name).
    pub name: String,
    /// Description.
    pub description: String,
    /// Enabled.
    pub enabled: bool,
    /// Expiry.
    pub expires: Option<String>,
    /// Owning account.
    pub owner: String,
    /// Created.
    pub created: String,
}

impl RegistryUserJson {
    /// With the owner's name.
    pub fn new(u: RegistryUser, owner: String) -> Self {
        RegistryUserJson {
            name: u.name,
            description: u.description,
            enabled: u.enabled,
            expires: u.expires_at.map(time),
            owner,
            created: time(u.created_at),
        }
    }
}

/// A registry user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRegistryUser {
    /// Name.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{1,63}$")]
    pub name: String,
    /// Password; generated (and shown once) when absent.
    #[schema(min_length = 8)]
    pub password: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Expiry (RFC 3339).
    #[schema(format = DateTime)]
    pub expires: Option<String>,
    /// Owning account (platform administrators only); default the caller.
    pub owner: Option<String>,
}

/// A created registry user, with its password when generated.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedRegistryUser {
    /// The user.
    pub user: RegistryUserJson,
    /// The generated password, shown only this once.
    pub password: Option<String>,
}

/// Changes to a registry user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRegistryUser {
    /// A new password (not together with `generate_password: true`).
    #[schema(min_length = 8)]
    pub password: Option<String>,
    /// Generate a new password (shown once).
    #[serde(default)]
    pub generate_password: bool,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// The outcome of a registry user change.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdatedRegistryUser {
    /// The generated password, shown only this once.
    pub password: Option<String>,
}

/// A console account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountJson {
    /// Login name.
    pub name: String,
    /// E-mail.
    pub email: String,
    /// Platform administrator.
    pub is_admin: bool,
    /// Disabled.
    pub disabled: bool,
    /// Has an independent registry password.
    pub has_registry_password: bool,
    /// Created.
    pub created: String,
}

impl From<Account> for AccountJson {
    fn from(a: Account) -> Self {
        AccountJson {
            name: a.name,
            email: a.email,
            is_admin: a.is_admin,
            disabled: a.disabled,
            has_registry_password: a.registry_password_hash.is_some(),
            created: time(a.created_at),
        }
    }
}

/// An account to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Login name.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{1,63}$", example = "team-a")]
    pub name: String,
    /// E-mail.
    #[serde(default)]
    pub email: String,
    /// Console password.
    #[schema(min_length = 8)]
    pub password: String,
    /// Platform administrator.
    #[serde(default)]
    pub is_admin: bool,
}

/// Changes to an account (platform administrators).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    /// Disable or enable.
    pub disabled: Option<bool>,
}

/// Changes to one's own account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// New console password.
    #[schema(min_length = 8)]
    pub console_password: Option<String>,
    /// Set an independent registry password (for `docker login`).
    #[schema(min_length = 8)]
    pub registry_password: Option<String>,
    /// Remove the independent registry password.
    #[serde(default)]
    pub clear_registry_password: bool,
    /// The current console password: required to change either password
    /// when calling with a session or an API token (HTTP Basic has just
    /// given it).
    pub current_password: Option<String>,
}

/// What "sign out everywhere" ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedOut {
    /// Console sessions ended (this one included).
    pub sessions_ended: u64,
}

/// What revoking every API token removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokensRevoked {
    /// Tokens revoked.
    pub revoked: u64,
}

/// A personal API token (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenJson {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// First characters, to recognise it.
    pub prefix: String,
    /// Created.
    pub created: String,
    /// Last used.
    pub last_used: Option<String>,
    /// Expiry.
    pub expires: Option<String>,
}

impl From<ApiToken> for TokenJson {
    fn from(t: ApiToken) -> Self {
        TokenJson {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created: time(t.created_at),
            last_used: t.last_used_at.map(time),
            expires: t.expires_at.map(time),
        }
    }
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Name: 1 to 64 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: String,
    /// Expiry (RFC 3339); never when absent.
    #[schema(format = DateTime)]
    pub expires: Option<String>,
}

/// A created token with its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token.
    pub token: TokenJson,
    /// The secret for `Authorization: Bearer …`, shown only this once.
    pub secret: String,
}

/// A project group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupJson {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The group's own namespace limit, if set.
    pub namespace_limit: Option<i64>,
    /// The limit in force.
    pub effective_namespace_limit: i64,
    /// Namespaces it owns.
    pub namespace_count: i64,
    /// Most bytes its namespaces may hold together, set by platform
    /// administrators (`null`: no group quota).
    pub storage_quota_bytes: Option<i64>,
    /// Bytes its namespaces hold (each namespace's distinct blobs, summed).
    pub storage_used_bytes: i64,
    /// Created.
    pub created: String,
}

/// A project group with its members.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDetail {
    /// The group.
    #[serde(flatten)]
    pub group: GroupJson,
    /// Members and their group roles.
    pub members: Vec<MemberJson>,
}

/// A project group to create (platform administrators).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// Name.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{1,63}$", example = "team-a")]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// An account to make its admin.
    pub admin: Option<String>,
}

/// Changes to a project group (platform administrators).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    /// Its own namespace limit; `null` returns to the global default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub namespace_limit: Option<Option<i64>>,
    /// Its storage quota in bytes (platform administrators); `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub storage_quota_bytes: Option<Option<i64>>,
}

/// Tell an absent field (`None`) from `null` (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

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

/// Console login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Account name.
    pub username: String,
    /// Console password.
    pub password: String,
}

/// The session's account and CSRF token.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionJson {
    /// Account name.
    pub account: String,
    /// Platform administrator.
    pub is_admin: bool,
    /// Send as `X-CSRF-Token` with every changing request made with the cookie.
    pub csrf_token: Option<String>,
}
