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
