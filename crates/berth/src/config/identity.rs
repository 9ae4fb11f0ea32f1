//! The `[identity]` section: external identity providers (OpenID Connect
//! for the console), and the checks of external tokens shared by sign-in
//! and workload identity.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use super::Secret;

/// `[identity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentitySection {
    /// Clock skew allowed on tokens' `exp`, `iat` and `nbf`, seconds
    /// (`BERTH_IDENTITY_CLOCK_SKEW_SECS`).
    pub clock_skew_secs: u64,
    /// How long issuers' metadata and keys are kept, seconds; an unknown
    /// key id fetches the keys sooner (`BERTH_IDENTITY_CACHE_SECS`).
    pub cache_secs: u64,
    /// Least seconds between two fetches of an issuer's keys when tokens
    /// name a key id Berth does not hold (`BERTH_IDENTITY_KEY_REFRESH_SECS`).
    pub key_refresh_secs: u64,
    /// A CA certificate file (PEM) to trust for identity providers besides
    /// the system's (`BERTH_IDENTITY_CA_CERT`).
    pub ca_cert: Option<PathBuf>,
    /// OpenID Connect providers for console sign-in, a button each.
    pub oidc: Vec<OidcProviderSection>,
    /// External groups to roles, applied at each sign-in.
    pub group_mappings: Vec<GroupMappingSection>,
}

impl Default for IdentitySection {
    fn default() -> Self {
        let d = berth_core::identity::IdentityConfig::default();
        IdentitySection {
            clock_skew_secs: d.clock_skew.as_secs(),
            cache_secs: d.cache_ttl.as_secs(),
            key_refresh_secs: d.refresh_interval.as_secs(),
            ca_cert: None,
            oidc: Vec::new(),
            group_mappings: Vec::new(),
        }
    }
}

/// `[[identity.oidc]]`: an OpenID provider.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct OidcProviderSection {
    /// Short name: in URLs and in accounts' origin (`oidc:<name>`).
    pub name: String,
    /// The button's text.
    pub display_name: Option<String>,
    /// Issuer URL; its metadata is at `/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client registered at the provider for Berth.
    pub client_id: String,
    /// Its secret (a public client with PKCE only when absent).
    pub client_secret: Option<Secret>,
    /// Scopes asked for besides `openid` (default: `profile email`).
    pub scopes: Option<Vec<String>>,
    /// The claim that names the account (default `preferred_username`).
    pub username_claim: Option<String>,
    /// The claim path that lists the user's groups (`groups`,
    /// `realm_access.roles`, …); none when groups are not used.
    pub groups_claim: Option<String>,
}

/// `[[identity.group_mappings]]`: members of `group` (as `origin`
/// reports it) get one of: platform administrator, a role in a project
/// group, a role on a namespace.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct GroupMappingSection {
    /// `oidc:<provider>` or `ldap:<directory>`.
    pub origin: String,
    /// The group: a value of the provider's groups claim, or an LDAP
    /// group's DN.
    pub group: String,
    /// Make members platform administrators.
    pub platform_admin: bool,
    /// Give members `role` in this project group.
    pub project_group: Option<String>,
    /// Give members `role` on this namespace.
    pub namespace: Option<String>,
    /// `guest`, `developer` or `admin`.
    pub role: Option<String>,
}

impl GroupMappingSection {
    /// The core's form.
    pub fn to_core(&self) -> anyhow::Result<berth_core::identity::GroupMapping> {
        use berth_core::identity::MappedGrant;
        let what = format!("identity.group_mappings ({} {:?})", self.origin, self.group);
        if self.origin.is_empty() || self.group.is_empty() {
            bail!("{what}: origin and group are required");
        }
        let role = || {
            let r = self
                .role
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("{what}: role is required"))?;
            berth_core::access::Role::parse_input(r).map_err(|e| anyhow::anyhow!("{what}: {e}"))
        };
        let grant = match (self.platform_admin, &self.project_group, &self.namespace) {
            (true, None, None) if self.role.is_none() => MappedGrant::PlatformAdmin,
            (false, Some(g), None) => MappedGrant::ProjectGroup {
                name: g.clone(),
                role: role()?,
            },
            (false, None, Some(n)) => MappedGrant::Namespace {
                name: n.clone(),
                role: role()?,
            },
            _ => bail!(
                "{what}: give exactly one of platform_admin = true, project_group + role, namespace + role"
            ),
        };
        Ok(berth_core::identity::GroupMapping {
            origin: self.origin.clone(),
            group: self.group.clone(),
            grant,
        })
    }
}

impl OidcProviderSection {
    /// The core's form.
    pub fn to_core(&self) -> berth_core::identity::OidcProvider {
        berth_core::identity::OidcProvider {
            name: self.name.clone(),
            display_name: self
                .display_name
                .clone()
                .unwrap_or_else(|| self.name.clone()),
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.as_ref().map(|s| s.expose().to_owned()),
            scopes: self
                .scopes
                .clone()
                .unwrap_or_else(|| vec!["profile".into(), "email".into()]),
            username_claim: self
                .username_claim
                .clone()
                .unwrap_or_else(|| "preferred_username".into()),
            groups_claim: self.groups_claim.clone(),
        }
    }
}

impl IdentitySection {
    /// Check what can be checked before start.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut names = std::collections::BTreeSet::new();
        for p in &self.oidc {
            if p.name.is_empty()
                || !p
                    .name
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            {
                bail!(
                    "identity.oidc name {:?}: lowercase letters, digits and '-'",
                    p.name
                );
            }
            if !names.insert(&p.name) {
                bail!("identity.oidc {:?} is declared twice", p.name);
            }
            berth_core::identity::Issuers::check_issuer_url(&p.issuer)
                .map_err(|e| anyhow::anyhow!("identity.oidc {:?}: {e}", p.name))?;
            if p.client_id.is_empty() {
                bail!("identity.oidc {:?}: client_id is required", p.name);
            }
        }
        for m in &self.group_mappings {
            m.to_core()?;
        }
        Ok(())
    }

    /// The service layer's settings, the CA certificate read.
    pub fn to_core(&self) -> anyhow::Result<berth_core::identity::IdentityConfig> {
        let ca_pem = match &self.ca_cert {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading identity.ca_cert {}", path.display()))?,
            ),
            None => None,
        };
        Ok(berth_core::identity::IdentityConfig {
            clock_skew: Duration::from_secs(self.clock_skew_secs),
            cache_ttl: Duration::from_secs(self.cache_secs),
            refresh_interval: Duration::from_secs(self.key_refresh_secs),
            ca_pem,
            ..Default::default()
        })
    }
}
