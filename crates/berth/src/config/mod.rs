//! Configuration: typed structs read from an optional TOML file, then
//! overridden by `BERTH_*` environment variables. Every field has a default,
//! so Berth runs with no configuration at all.

mod env;
mod identity;
mod open;
mod sections;
#[cfg(test)]
mod tests;
mod validate;

pub use identity::{
    GroupMappingSection, IdentitySection, LdapSection, OidcProviderSection, TrustRuleSection,
};
pub use sections::*;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// A value that must never appear in logs or `Debug` output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`BERTH_LISTEN`).
    pub listen: SocketAddr,
    /// Directory for the embedded database and blobs (`BERTH_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The URL clients reach Berth at, e.g. `https://registry.example.com` (`BERTH_EXTERNAL_URL`).
    pub external_url: Option<String>,
    /// Log filter, e.g. `info` or `berth=debug` (`BERTH_LOG`).
    pub log: String,
    /// Metadata database.
    pub database: DatabaseConfig,
    /// Blob storage.
    pub storage: StorageConfig,
    /// TLS; plain HTTP when absent.
    pub tls: Option<TlsConfig>,
    /// Registry rules.
    pub registry: RegistrySection,
    /// Tenancy and access rules.
    pub access: AccessSection,
    /// Token authentication.
    pub auth: AuthSection,
    /// Network zones.
    pub network: NetworkSection,
    /// Garbage collection.
    pub gc: GcSection,
    /// The background integrity scrub.
    pub integrity: IntegritySection,
    /// What one connection may cost.
    pub connections: ConnectionsSection,
    /// Password of the platform administrator `admin`, created on first
    /// start; generated and logged once when absent (`BERTH_ADMIN_PASSWORD`).
    pub admin_password: Option<Secret>,
    /// Seconds between writes of batched pull counts (`BERTH_PULL_FLUSH_SECS`).
    pub pull_flush_secs: u64,
    /// Memory for hot reads (tags, manifests, access facts), MiB; 0 turns
    /// the read cache off (`BERTH_READ_CACHE_MIB`).
    pub read_cache_mib: u64,
    /// Seconds in-flight requests get to finish on shutdown (`BERTH_SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace_secs: u64,
    /// This node's region, one of `regions` (`BERTH_REGION`).
    pub region: Option<String>,
    /// The platform's regions by name, each with its blob storage; none
    /// for a platform of one region (the top-level `storage`).
    pub regions: BTreeMap<String, RegionConfig>,
    /// The job queue's worker on this node.
    pub jobs: JobsSection,
    /// Webhook deliveries.
    pub webhooks: WebhooksSection,
    /// The key that seals secrets at rest: passwords of remote registries
    /// registered through the API, webhook secrets and the token signing
    /// key (`BERTH_ENCRYPTION_KEY`, at least 32 characters; the same on
    /// every node). Without it, only remotes declared here may have a
    /// password, and the others are stored in clear.
    pub encryption_key: Option<Secret>,
    /// Earlier encryption keys, while rotating: values sealed with them
    /// still open, and are sealed again with `encryption_key` at start
    /// (`BERTH_PREVIOUS_ENCRYPTION_KEY`, one).
    pub previous_encryption_keys: Vec<Secret>,
    /// Remote registries declared here (read-only in the API).
    pub remotes: Vec<RemoteSection>,
    /// Namespaces that are pull-through caches of remote registries.
    pub proxy_namespaces: Vec<ProxyNamespaceSection>,
    /// External identity: providers for sign-in, checks of external tokens.
    pub identity: IdentitySection,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 5000)),
            data_dir: PathBuf::from("berth-data"),
            external_url: None,
            log: "info".into(),
            database: DatabaseConfig::default(),
            storage: StorageConfig::default(),
            tls: None,
            registry: RegistrySection::default(),
            access: AccessSection::default(),
            auth: AuthSection::default(),
            network: NetworkSection::default(),
            gc: GcSection::default(),
            integrity: IntegritySection::default(),
            connections: ConnectionsSection::default(),
            admin_password: None,
            pull_flush_secs: 2,
            read_cache_mib: 8,
            shutdown_grace_secs: 30,
            region: None,
            regions: BTreeMap::new(),
            jobs: JobsSection::default(),
            webhooks: WebhooksSection::default(),
            encryption_key: None,
            previous_encryption_keys: Vec::new(),
            remotes: Vec::new(),
            proxy_namespaces: Vec::new(),
            identity: IdentitySection::default(),
        }
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> anyhow::Result<T>
where
    T::Err: fmt::Display,
{
    value
        .parse()
        .map_err(|e| anyhow::anyhow!("{key}={value:?} is not valid: {e}"))
}

impl Config {
    /// Load from an optional TOML file, then apply `BERTH_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.with_env(env)
    }

    /// Read the TOML text of a configuration file (none: the defaults),
    /// then apply `BERTH_*` variables from `env`, and validate.
    pub fn parse(
        text: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let config = match text {
            Some(text) => toml::from_str(text).context("parsing the configuration")?,
            None => Config::default(),
        };
        config.with_env(env)
    }

    /// Apply `BERTH_*` variables from `env`, then validate.
    fn with_env(mut self, env: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Self> {
        for (key, value) in env {
            if key.starts_with("BERTH_") {
                self.apply_env(&key, &value)?;
            }
        }
        self.validate()?;
        Ok(self)
    }
}
