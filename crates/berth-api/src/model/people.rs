//! Registry users, accounts, API tokens and project groups.

use berth_core::model::{Account, ApiToken, RegistryUser};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::namespaces::MemberJson;
use super::{double_option, time};

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
    /// Where it comes from: `local` (a Berth password), `oidc:<provider>`
    /// or `ldap:<directory>` (signs in there).
    pub origin: String,
    /// Platform administrator because a group mapping says so.
    pub admin_by_group_mapping: bool,
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
            origin: a.origin,
            admin_by_group_mapping: a.admin_by_mapping,
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
