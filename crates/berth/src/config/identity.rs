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
    /// LDAP directories, asked in order.
    pub ldap: Vec<LdapSection>,
    /// External groups to roles, applied at each sign-in.
    pub group_mappings: Vec<GroupMappingSection>,
    /// Trust rules of workload identity (read-only in the API).
    pub trust_rules: Vec<TrustRuleSection>,
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
            ldap: Vec::new(),
            group_mappings: Vec::new(),
            trust_rules: Vec::new(),
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

/// `[[identity.ldap]]`: an LDAP directory (search-then-bind).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LdapSection {
    /// Short name; accounts' origin is `ldap:<name>`.
    pub name: String,
    /// `ldaps://host:636`, or `ldap://host:389` (with `starttls`).
    pub url: String,
    /// Upgrade `ldap://` with StartTLS.
    pub starttls: bool,
    /// A CA certificate file (PEM) to trust instead of the system's.
    pub ca_cert: Option<PathBuf>,
    /// The service account that searches.
    pub bind_dn: String,
    /// Its password.
    pub bind_password: Option<Secret>,
    /// Where users are.
    pub user_base: String,
    /// Finds one active user; `{username}` is replaced, escaped (e.g.
    /// `(&(uid={username})(objectClass=inetOrgPerson))`; Active
    /// Directory: `(&(sAMAccountName={username})(!(userAccountControl:1.2.840.113556.1.4.803:=2)))`).
    pub user_filter: String,
    /// The lasting id of a user (`entryUUID`; Active Directory: `objectGUID`).
    pub id_attribute: String,
    /// The e-mail attribute.
    pub email_attribute: String,
    /// A user attribute that lists its groups' DNs (`memberOf`).
    pub member_of_attribute: Option<String>,
    /// Where groups are, to find them by a search instead (or as well).
    pub group_base: Option<String>,
    /// Finds the groups of a member; `{dn}` is replaced, escaped.
    pub group_filter: String,
    /// Follow groups that are members of groups (with a group search).
    pub nested_groups: bool,
    /// Seconds what the directory says is kept: a user removed or
    /// disabled there is refused within this time.
    pub cache_secs: u64,
    /// Connection and operation timeout, seconds.
    pub timeout_secs: u64,
}

impl Default for LdapSection {
    fn default() -> Self {
        LdapSection {
            name: String::new(),
            url: String::new(),
            starttls: false,
            ca_cert: None,
            bind_dn: String::new(),
            bind_password: None,
            user_base: String::new(),
            user_filter: "(uid={username})".into(),
            id_attribute: "entryUUID".into(),
            email_attribute: "mail".into(),
            member_of_attribute: None,
            group_base: None,
            group_filter: "(member={dn})".into(),
            nested_groups: false,
            cache_secs: 300,
            timeout_secs: 5,
        }
    }
}

impl LdapSection {
    /// The core's form, the CA certificate read.
    pub fn to_core(&self) -> anyhow::Result<berth_core::identity::LdapDirectory> {
        let what = format!("identity.ldap {:?}", self.name);
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        {
            bail!("{what}: name: lowercase letters, digits and '-'");
        }
        let scheme_ok =
            self.url.starts_with("ldaps://") || (self.url.starts_with("ldap://") && self.starttls);
        let loopback =
            self.url.starts_with("ldap://127.") || self.url.starts_with("ldap://localhost");
        if !scheme_ok && !loopback {
            bail!("{what}: use ldaps://, or ldap:// with starttls = true (passwords cross the network)");
        }
        if !self.user_filter.contains("{username}") {
            bail!("{what}: user_filter must hold {{username}}");
        }
        if self.user_base.is_empty() || self.bind_dn.is_empty() {
            bail!("{what}: user_base and bind_dn are required");
        }
        let ca_pem = match &self.ca_cert {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("{what}: reading ca_cert {}", path.display()))?,
            ),
            None => None,
        };
        Ok(berth_core::identity::LdapDirectory {
            name: self.name.clone(),
            url: self.url.clone(),
            starttls: self.starttls,
            ca_pem,
            bind_dn: self.bind_dn.clone(),
            bind_password: self
                .bind_password
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default(),
            user_base: self.user_base.clone(),
            user_filter: self.user_filter.clone(),
            id_attribute: self.id_attribute.clone(),
            email_attribute: self.email_attribute.clone(),
            member_of_attribute: self.member_of_attribute.clone(),
            group_base: self.group_base.clone(),
            group_filter: self.group_filter.clone(),
            nested_groups: self.nested_groups,
            cache: Duration::from_secs(self.cache_secs),
            timeout: Duration::from_secs(self.timeout_secs.max(1)),
        })
    }
}

/// `[[identity.trust_rules]]`: JWTs of `issuer` for `audience` whose
/// `sub` matches `subject` and whose `claims` match log in as
/// `registry_user` (which must exist when a token comes).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TrustRuleSection {
    /// Unique name.
    pub name: String,
    /// Issuer URL, exactly as the tokens' `iss`.
    pub issuer: String,
    /// The audience tokens must carry.
    pub audience: String,
    /// Glob on `sub`.
    pub subject: String,
    /// Claim path → glob.
    pub claims: std::collections::BTreeMap<String, String>,
    /// The registry user.
    pub registry_user: String,
}

impl TrustRuleSection {
    /// The core's form.
    pub fn to_core(&self) -> berth_core::identity::TrustRuleSpec {
        berth_core::identity::TrustRuleSpec {
            name: self.name.clone(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            subject: self.subject.clone(),
            claims: self.claims.clone(),
            registry_user: self.registry_user.clone(),
        }
    }
}

impl GroupMappingSection {
    /// The core's form.
    pub fn to_core(&self) -> anyhow::Result<berth_core::identity::GroupMapping> {
        use berth_core::identity::MappedGrant;
        let what = format!("identity.group_mappings ({} {:?})", self.origin, self.group);
        if self.origin.is_empty() || self.group.is_empty() {
            bail!("{what}: origin and group are required");
        }
        let grant = MappedGrant::from_fields(
            self.platform_admin,
            self.project_group.as_deref(),
            self.namespace.as_deref(),
            self.role.as_deref(),
        )
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
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
        let mut dirs = std::collections::BTreeSet::new();
        for d in &self.ldap {
            if !dirs.insert(&d.name) {
                bail!("identity.ldap {:?} is declared twice", d.name);
            }
        }
        for m in &self.group_mappings {
            m.to_core()?;
        }
        let mut rules = std::collections::BTreeSet::new();
        for r in &self.trust_rules {
            berth_core::identity::Workload::check_declared(&r.to_core())
                .map_err(|e| anyhow::anyhow!("identity.trust_rules: {e}"))?;
            if !rules.insert(&r.name) {
                bail!("identity.trust_rules {:?} is declared twice", r.name);
            }
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
