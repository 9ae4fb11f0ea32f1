//! Namespaces: views, edits, deletes, members, permissions and grants.

use std::collections::BTreeMap;

use berth_core::model::{Member, NamespaceSummary};
use berth_core::parse_labels;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::time;

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

/// What a namespace delete did.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamespaceDeleted {
    /// Name.
    pub name: String,
    /// Images deleted with it.
    pub images_deleted: usize,
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
