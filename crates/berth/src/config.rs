//! Configuration: typed structs read from an optional TOML file, then
//! overridden by `BERTH_*` environment variables. Every field has a default,
//! so Berth runs with no configuration at all.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
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
}

/// A pull-through cache namespace (`[[proxy_namespaces]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyNamespaceSection {
    /// The local namespace (created when missing).
    pub namespace: String,
    /// The remote registry it caches (declared or registered).
    pub remote: String,
    /// Seconds a cached tag is served before a HEAD checks it upstream.
    pub revalidate_secs: u64,
    /// Serve repositories of namespaces that do not exist here from this
    /// one (for the Docker daemon's `registry-mirrors`); at most one.
    pub default: bool,
    /// Create the namespace public (anyone may pull: mirrors need it).
    pub public: bool,
}

impl Default for ProxyNamespaceSection {
    fn default() -> Self {
        ProxyNamespaceSection {
            namespace: String::new(),
            remote: String::new(),
            revalidate_secs: 300,
            default: false,
            public: false,
        }
    }
}

impl ProxyNamespaceSection {
    /// The core's form.
    pub fn to_core(&self) -> berth_core::platform::ProxyNamespace {
        berth_core::platform::ProxyNamespace {
            namespace: self.namespace.clone(),
            remote: self.remote.clone(),
            revalidate: Duration::from_secs(self.revalidate_secs),
            default: self.default,
            public: self.public,
        }
    }
}

/// A remote registry declared in the configuration file (`[[remotes]]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteSection {
    /// Name, unique.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// User name.
    pub username: Option<String>,
    /// Password or access token.
    pub password: Option<Secret>,
    /// Accept any TLS certificate (lab registries only).
    pub insecure_skip_verify: bool,
    /// A CA certificate file (PEM) to trust besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// The registry's token service when it is on another host (a URL
    /// prefix, such as `https://auth.docker.io/token`): only then are the
    /// credentials sent there.
    pub token_realm: Option<String>,
}

impl RemoteSection {
    /// The declared remote, its CA certificate read.
    pub fn to_core(&self) -> anyhow::Result<berth_core::platform::DeclaredRemote> {
        let ca_pem = match &self.ca_cert {
            Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
                format!(
                    "reading the CA certificate of remote {}: {}",
                    self.name,
                    path.display()
                )
            })?),
            None => None,
        };
        Ok(berth_core::platform::DeclaredRemote {
            name: self.name.clone(),
            url: self.url.clone(),
            username: self.username.clone(),
            password: self.password.as_ref().map(|p| p.expose().to_owned()),
            insecure: self.insecure_skip_verify,
            ca_pem,
            token_realm: self.token_realm.clone(),
        })
    }
}

/// Webhook deliveries.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksSection {
    /// Whether namespace webhooks may target loopback, private and
    /// link-local addresses; platform webhooks always may
    /// (`BERTH_WEBHOOKS_ALLOW_PRIVATE_TARGETS`, default false).
    pub allow_private_targets: bool,
    /// Seconds one delivery attempt may take (`BERTH_WEBHOOKS_TIMEOUT_SECS`).
    pub timeout_secs: u64,
}

impl Default for WebhooksSection {
    fn default() -> Self {
        let core = berth_core::events::WebhookConfig::default();
        WebhooksSection {
            allow_private_targets: core.allow_private_targets,
            timeout_secs: core.timeout.as_secs(),
        }
    }
}

impl WebhooksSection {
    /// The delivery settings.
    pub fn to_core(&self) -> berth_core::events::WebhookConfig {
        berth_core::events::WebhookConfig {
            allow_private_targets: self.allow_private_targets,
            timeout: Duration::from_secs(self.timeout_secs.max(1)),
        }
    }
}

/// One region of the platform.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegionConfig {
    /// Its blob storage, in the form of the top-level `storage` table.
    pub storage: StorageConfig,
    /// The region's internal networks; on its nodes they replace
    /// `network.internal_networks`.
    pub internal_networks: Option<Vec<String>>,
    /// Whether the region's clients may pull over the internal network
    /// (default true); false treats every client of the region's nodes as
    /// external (external access switch, bandwidth cap).
    pub internal_pulls: Option<bool>,
}

/// The job queue's worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsSection {
    /// Jobs run at once on this node, 0 for none: the node then only
    /// serves requests (`BERTH_JOBS_CONCURRENCY`).
    pub concurrency: usize,
    /// Seconds a claimed job stays this node's without renewal; a dead
    /// node's jobs go to others after it (`BERTH_JOBS_LEASE_SECS`).
    pub lease_secs: u64,
    /// Attempts before a job is given up (`BERTH_JOBS_MAX_ATTEMPTS`).
    pub max_attempts: i64,
    /// Longest wait between attempts, seconds (`BERTH_JOBS_MAX_BACKOFF_SECS`).
    pub max_backoff_secs: u64,
    /// Seconds between reconcile passes of this node's region, 0 for none
    /// (`BERTH_JOBS_RECONCILE_SECS`).
    pub reconcile_secs: u64,
}

impl Default for JobsSection {
    fn default() -> Self {
        let core = berth_core::jobs::WorkerConfig::default();
        JobsSection {
            concurrency: core.concurrency,
            lease_secs: core.lease.as_secs(),
            max_attempts: core.max_attempts,
            max_backoff_secs: core.max_backoff.as_secs(),
            reconcile_secs: core.reconcile_every.as_secs(),
        }
    }
}

impl JobsSection {
    /// The worker's settings.
    pub fn to_core(&self) -> berth_core::jobs::WorkerConfig {
        berth_core::jobs::WorkerConfig {
            concurrency: self.concurrency,
            lease: Duration::from_secs(self.lease_secs),
            max_attempts: self.max_attempts,
            max_backoff: Duration::from_secs(self.max_backoff_secs),
            reconcile_every: Duration::from_secs(self.reconcile_secs),
            ..berth_core::jobs::WorkerConfig::default()
        }
    }
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
        }
    }
}

/// Metadata database settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` for PostgreSQL; absent for the embedded SQLite file
    /// `<data_dir>/berth.db` (`BERTH_DATABASE_URL`).
    pub url: Option<Secret>,
    /// PostgreSQL pool size (`BERTH_DATABASE_MAX_CONNECTIONS`).
    pub max_connections: u32,
    /// Seconds a request waits for a PostgreSQL connection before it is
    /// answered 503 (`BERTH_DATABASE_ACQUIRE_TIMEOUT_SECS`).
    pub acquire_timeout_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 16,
            acquire_timeout_secs: 5,
        }
    }
}

/// What one connection may cost: how long its request headers may take,
/// how long its request body may stall, and how many connections may be
/// open at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionsSection {
    /// Seconds a client has to send a request's headers, and that an idle
    /// kept-alive connection stays open (`BERTH_HEADER_READ_TIMEOUT_SECS`).
    pub header_read_timeout_secs: u64,
    /// Seconds a request body may send nothing before the request fails;
    /// idle time, not total time (`BERTH_BODY_IDLE_TIMEOUT_SECS`).
    pub body_idle_timeout_secs: u64,
    /// Most connections open at once, 0 for no bound (`BERTH_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Most connections open at once from one client address, 0 for no
    /// bound; trusted proxies are exempt (`BERTH_MAX_CONNECTIONS_PER_CLIENT`).
    pub max_connections_per_client: usize,
}

impl Default for ConnectionsSection {
    fn default() -> Self {
        ConnectionsSection {
            header_read_timeout_secs: 30,
            body_idle_timeout_secs: 60,
            max_connections: 4096,
            max_connections_per_client: 256,
        }
    }
}

/// Which blob storage backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// A local filesystem (the default).
    #[default]
    Fs,
    /// An S3-compatible bucket, shared by several nodes.
    S3,
}

/// Blob storage settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `fs` or `s3` (`BERTH_STORAGE_KIND`).
    pub kind: StorageKind,
    /// Filesystem root for blobs; default `<data_dir>/blobs` (`BERTH_STORAGE_PATH`).
    pub path: Option<PathBuf>,
    /// The bucket, with `kind = "s3"`.
    pub s3: S3Section,
    /// Bytes kept free beside the embedded database so that deletes and
    /// garbage collection work on a full disk; 0 for none
    /// (`BERTH_STORAGE_RESERVE_BYTES`; default 16 MiB).
    pub reserve_bytes: Option<u64>,
}

/// An S3-compatible bucket.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Section {
    /// Endpoint URL, e.g. `http://127.0.0.1:3900`; absent for AWS (`BERTH_S3_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Bucket name (`BERTH_S3_BUCKET`).
    pub bucket: String,
    /// Region (`BERTH_S3_REGION`; default `us-east-1`, Garage's is `garage`).
    pub region: String,
    /// Key prefix inside the bucket (`BERTH_S3_PREFIX`).
    pub prefix: String,
    /// Path-style requests, as most self-hosted services want (`BERTH_S3_PATH_STYLE`; default true).
    pub path_style: bool,
    /// Access key id (`BERTH_S3_ACCESS_KEY_ID`).
    pub access_key_id: String,
    /// Secret access key (`BERTH_S3_SECRET_ACCESS_KEY`).
    pub secret_access_key: Secret,
    /// Part size in MiB, at least 5 (`BERTH_S3_PART_SIZE_MIB`; default 8).
    /// An upload holds at most two parts in memory.
    pub part_size_mib: usize,
    /// Answer blob downloads with a 307 to a presigned URL of the bucket,
    /// except for clients under the external bandwidth cap
    /// (`BERTH_S3_REDIRECT`; default false).
    pub redirect: bool,
    /// How long those URLs stay valid (`BERTH_S3_REDIRECT_SECS`; default 300).
    pub redirect_secs: u64,
}

impl Default for S3Section {
    fn default() -> Self {
        S3Section {
            endpoint: None,
            bucket: String::new(),
            region: "us-east-1".into(),
            prefix: String::new(),
            path_style: true,
            access_key_id: String::new(),
            secret_access_key: Secret::new(""),
            part_size_mib: 8,
            redirect: false,
            redirect_secs: 300,
        }
    }
}

impl S3Section {
    /// The blob layer's view of these settings.
    pub fn to_blob(&self) -> berth_blob::S3Config {
        berth_blob::S3Config {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            prefix: self.prefix.clone(),
            path_style: self.path_style,
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.expose().to_owned(),
            part_size: self.part_size_mib << 20,
            redirect: self
                .redirect
                .then(|| Duration::from_secs(self.redirect_secs)),
        }
    }
}

/// TLS certificate and key (PEM files).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (`BERTH_TLS_CERT`).
    pub cert: PathBuf,
    /// Private key (`BERTH_TLS_KEY`).
    pub key: PathBuf,
}

/// Registry rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySection {
    /// Largest manifest accepted (`BERTH_MAX_MANIFEST_BYTES`).
    pub max_manifest_bytes: u64,
    /// Largest blob accepted (`BERTH_MAX_BLOB_BYTES`).
    pub max_blob_bytes: u64,
    /// Idle upload sessions are discarded after this many seconds (`BERTH_UPLOAD_EXPIRY_SECS`).
    pub upload_expiry_secs: u64,
    /// Whether deletes are allowed (`BERTH_DELETES_ENABLED`).
    pub deletes_enabled: bool,
    /// Most tags per repository, 0 for no limit (`BERTH_TAGS_PER_REPOSITORY`).
    pub tags_per_repository: i64,
    /// Seconds without a push or pull after which a tag may be evicted to
    /// make room (`BERTH_TAG_IDLE_SECS`; default 30 days).
    pub tag_idle_secs: u64,
}

impl Default for RegistrySection {
    fn default() -> Self {
        let d = berth_core::RegistryConfig::default();
        RegistrySection {
            max_manifest_bytes: d.max_manifest_bytes,
            max_blob_bytes: d.max_blob_bytes,
            upload_expiry_secs: d.upload_expiry.as_secs(),
            deletes_enabled: d.deletes_enabled,
            tags_per_repository: d.tags_per_repository,
            tag_idle_secs: d.tag_idle.as_secs(),
        }
    }
}

impl RegistrySection {
    /// The service-layer view of these settings.
    pub fn to_core(&self) -> berth_core::RegistryConfig {
        berth_core::RegistryConfig {
            max_manifest_bytes: self.max_manifest_bytes,
            max_blob_bytes: self.max_blob_bytes,
            upload_expiry: Duration::from_secs(self.upload_expiry_secs),
            deletes_enabled: self.deletes_enabled,
            tags_per_repository: self.tags_per_repository,
            tag_idle: Duration::from_secs(self.tag_idle_secs),
        }
    }
}

/// Garbage collection.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcSection {
    /// Seconds between scheduled collections, 0 for none (`BERTH_GC_INTERVAL_SECS`; default a day).
    pub interval_secs: u64,
    /// Seconds an unreferenced layer or untagged manifest is kept before it
    /// counts as garbage (`BERTH_GC_GRACE_SECS`; default an hour).
    pub grace_secs: u64,
    /// Whether untagged manifests nothing needs are deleted (`BERTH_GC_DELETE_UNTAGGED`; default false).
    pub delete_untagged: bool,
    /// Seconds between scheduled runs of the namespaces' retention rules, 0
    /// for none (`BERTH_RETENTION_INTERVAL_SECS`; default a day).
    pub retention_interval_secs: u64,
}

impl Default for GcSection {
    fn default() -> Self {
        let d = berth_core::GcConfig::default();
        GcSection {
            interval_secs: d.interval.as_secs(),
            grace_secs: d.grace.as_secs(),
            delete_untagged: d.delete_untagged,
            retention_interval_secs: 86_400,
        }
    }
}

impl GcSection {
    /// The service-layer view of these settings.
    pub fn to_core(&self) -> berth_core::GcConfig {
        berth_core::GcConfig {
            interval: Duration::from_secs(self.interval_secs),
            grace: Duration::from_secs(self.grace_secs),
            delete_untagged: self.delete_untagged,
            ..berth_core::GcConfig::default()
        }
    }
}

/// Tenancy and access rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessSection {
    /// The namespace everyone may pull from (`BERTH_PLATFORM_NAMESPACE`).
    pub platform_namespace: String,
    /// Whether a push to a missing namespace creates it (`BERTH_AUTO_CREATE_NAMESPACES`).
    pub auto_create_namespaces: bool,
    /// Namespaces a project group may own unless it has its own limit
    /// (`BERTH_NAMESPACES_PER_GROUP`).
    pub namespaces_per_group: i64,
}

impl Default for AccessSection {
    fn default() -> Self {
        let d = berth_core::DirectoryConfig::default();
        AccessSection {
            platform_namespace: d.platform_namespace,
            auto_create_namespaces: d.auto_create_namespaces,
            namespaces_per_group: d.namespaces_per_group,
        }
    }
}

impl AccessSection {
    /// The service-layer view of these settings.
    pub fn to_core(&self) -> berth_core::DirectoryConfig {
        berth_core::DirectoryConfig {
            platform_namespace: self.platform_namespace.clone(),
            auto_create_namespaces: self.auto_create_namespaces,
            namespaces_per_group: self.namespaces_per_group,
        }
    }
}

/// Network zones: which clients are internal, which proxies are believed,
/// and the download cap for external clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSection {
    /// Internal networks as CIDRs (`BERTH_INTERNAL_NETWORKS`, comma-separated).
    pub internal_networks: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`BERTH_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<String>,
    /// Blob download cap per stream for external clients, bytes per second;
    /// 0 for none (`BERTH_EXTERNAL_BANDWIDTH`).
    pub external_bandwidth: u64,
}

impl Default for NetworkSection {
    fn default() -> Self {
        NetworkSection {
            internal_networks: berth_core::zones::DEFAULT_INTERNAL
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            trusted_proxies: Vec::new(),
            external_bandwidth: 1 << 20,
        }
    }
}

impl NetworkSection {
    /// The service-layer policy (after `validate`, every block parses).
    pub fn to_core(&self) -> anyhow::Result<berth_core::zones::NetworkPolicy> {
        let parse = |list: &[String], what: &str| {
            list.iter()
                .map(|c| {
                    c.parse::<berth_core::zones::Cidr>()
                        .map_err(|e| anyhow::anyhow!("network.{what}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        };
        Ok(berth_core::zones::NetworkPolicy {
            internal: parse(&self.internal_networks, "internal_networks")?,
            trusted_proxies: parse(&self.trusted_proxies, "trusted_proxies")?,
        })
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

/// Token authentication settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// The `service` in challenges and tokens (`BERTH_AUTH_SERVICE`).
    pub service: String,
    /// Access token lifetime in seconds (`BERTH_TOKEN_LIFETIME_SECS`).
    pub token_lifetime_secs: u64,
    /// Refresh (identity) token lifetime in seconds (`BERTH_REFRESH_TOKEN_LIFETIME_SECS`).
    pub refresh_token_lifetime_secs: u64,
    /// Console session lifetime in seconds (`BERTH_SESSION_LIFETIME_SECS`).
    pub session_lifetime_secs: u64,
    /// Failed logins (any names) one client address may make within 15
    /// minutes before it is refused for a minute
    /// (`BERTH_LOGIN_FAILURES_PER_CLIENT`).
    pub login_failures_per_client: i64,
    /// Failed logins of one name from one client before each further one
    /// doubles a block (`BERTH_LOGIN_FAILURES_PER_NAME_AND_CLIENT`).
    pub login_failures_per_name_and_client: i64,
    /// Failed logins of one name from anywhere before its logins are rate
    /// limited (`BERTH_LOGIN_FAILURES_PER_NAME`).
    pub login_failures_per_name: i64,
}

impl Default for AuthSection {
    fn default() -> Self {
        let d = berth_core::AuthConfig::default();
        AuthSection {
            service: d.service,
            token_lifetime_secs: d.token_lifetime.as_secs(),
            refresh_token_lifetime_secs: d.refresh_lifetime.as_secs(),
            session_lifetime_secs: berth_core::ManagementConfig::default()
                .session_lifetime
                .as_secs(),
            login_failures_per_client: d.login_failures_per_client,
            login_failures_per_name_and_client: d.login_failures_per_name_and_client,
            login_failures_per_name: d.login_failures_per_name,
        }
    }
}

impl AuthSection {
    /// The service-layer view of these settings.
    pub fn to_core(&self) -> berth_core::AuthConfig {
        berth_core::AuthConfig {
            service: self.service.clone(),
            token_lifetime: Duration::from_secs(self.token_lifetime_secs),
            refresh_lifetime: Duration::from_secs(self.refresh_token_lifetime_secs),
            login_failures_per_client: self.login_failures_per_client.max(1),
            login_failures_per_name_and_client: self.login_failures_per_name_and_client.max(1),
            login_failures_per_name: self.login_failures_per_name.max(1),
        }
    }
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

    fn apply_env(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        match key {
            "BERTH_LISTEN" => self.listen = parse(key, value)?,
            "BERTH_DATA_DIR" => self.data_dir = PathBuf::from(value),
            "BERTH_EXTERNAL_URL" => self.external_url = Some(value.to_owned()),
            "BERTH_LOG" => self.log = value.to_owned(),
            "BERTH_DATABASE_URL" => self.database.url = Some(Secret::new(value)),
            "BERTH_DATABASE_MAX_CONNECTIONS" => self.database.max_connections = parse(key, value)?,
            "BERTH_DATABASE_ACQUIRE_TIMEOUT_SECS" => {
                self.database.acquire_timeout_secs = parse(key, value)?
            }
            "BERTH_HEADER_READ_TIMEOUT_SECS" => {
                self.connections.header_read_timeout_secs = parse(key, value)?
            }
            "BERTH_BODY_IDLE_TIMEOUT_SECS" => {
                self.connections.body_idle_timeout_secs = parse(key, value)?
            }
            "BERTH_MAX_CONNECTIONS" => self.connections.max_connections = parse(key, value)?,
            "BERTH_MAX_CONNECTIONS_PER_CLIENT" => {
                self.connections.max_connections_per_client = parse(key, value)?
            }
            "BERTH_STORAGE_PATH" => self.storage.path = Some(PathBuf::from(value)),
            "BERTH_STORAGE_KIND" => {
                self.storage.kind = match value {
                    "fs" => StorageKind::Fs,
                    "s3" => StorageKind::S3,
                    _ => bail!("BERTH_STORAGE_KIND={value:?} is not valid: use fs or s3"),
                }
            }
            "BERTH_S3_ENDPOINT" => self.storage.s3.endpoint = Some(value.to_owned()),
            "BERTH_S3_BUCKET" => self.storage.s3.bucket = value.to_owned(),
            "BERTH_S3_REGION" => self.storage.s3.region = value.to_owned(),
            "BERTH_S3_PREFIX" => self.storage.s3.prefix = value.to_owned(),
            "BERTH_S3_PATH_STYLE" => self.storage.s3.path_style = parse(key, value)?,
            "BERTH_S3_ACCESS_KEY_ID" => self.storage.s3.access_key_id = value.to_owned(),
            "BERTH_S3_SECRET_ACCESS_KEY" => self.storage.s3.secret_access_key = Secret::new(value),
            "BERTH_S3_PART_SIZE_MIB" => self.storage.s3.part_size_mib = parse(key, value)?,
            "BERTH_S3_REDIRECT" => self.storage.s3.redirect = parse(key, value)?,
            "BERTH_S3_REDIRECT_SECS" => self.storage.s3.redirect_secs = parse(key, value)?,
            "BERTH_STORAGE_RESERVE_BYTES" => self.storage.reserve_bytes = Some(parse(key, value)?),
            "BERTH_TLS_CERT" | "BERTH_TLS_KEY" => {
                let tls = self.tls.get_or_insert_with(|| TlsConfig {
                    cert: PathBuf::new(),
                    key: PathBuf::new(),
                });
                if key == "BERTH_TLS_CERT" {
                    tls.cert = PathBuf::from(value);
                } else {
                    tls.key = PathBuf::from(value);
                }
            }
            "BERTH_MAX_MANIFEST_BYTES" => self.registry.max_manifest_bytes = parse(key, value)?,
            "BERTH_MAX_BLOB_BYTES" => self.registry.max_blob_bytes = parse(key, value)?,
            "BERTH_UPLOAD_EXPIRY_SECS" => self.registry.upload_expiry_secs = parse(key, value)?,
            "BERTH_TAGS_PER_REPOSITORY" => self.registry.tags_per_repository = parse(key, value)?,
            "BERTH_TAG_IDLE_SECS" => self.registry.tag_idle_secs = parse(key, value)?,
            "BERTH_DELETES_ENABLED" => self.registry.deletes_enabled = parse(key, value)?,
            "BERTH_ADMIN_PASSWORD" => self.admin_password = Some(Secret::new(value)),
            "BERTH_PLATFORM_NAMESPACE" => self.access.platform_namespace = value.to_owned(),
            "BERTH_AUTO_CREATE_NAMESPACES" => {
                self.access.auto_create_namespaces = parse(key, value)?
            }
            "BERTH_NAMESPACES_PER_GROUP" => self.access.namespaces_per_group = parse(key, value)?,
            "BERTH_AUTH_SERVICE" => self.auth.service = value.to_owned(),
            "BERTH_TOKEN_LIFETIME_SECS" => self.auth.token_lifetime_secs = parse(key, value)?,
            "BERTH_REFRESH_TOKEN_LIFETIME_SECS" => {
                self.auth.refresh_token_lifetime_secs = parse(key, value)?
            }
            "BERTH_SESSION_LIFETIME_SECS" => self.auth.session_lifetime_secs = parse(key, value)?,
            "BERTH_LOGIN_FAILURES_PER_CLIENT" => {
                self.auth.login_failures_per_client = parse(key, value)?
            }
            "BERTH_LOGIN_FAILURES_PER_NAME_AND_CLIENT" => {
                self.auth.login_failures_per_name_and_client = parse(key, value)?
            }
            "BERTH_LOGIN_FAILURES_PER_NAME" => {
                self.auth.login_failures_per_name = parse(key, value)?
            }
            "BERTH_INTERNAL_NETWORKS" => self.network.internal_networks = list(value),
            "BERTH_TRUSTED_PROXIES" => self.network.trusted_proxies = list(value),
            "BERTH_EXTERNAL_BANDWIDTH" => self.network.external_bandwidth = parse(key, value)?,
            "BERTH_GC_INTERVAL_SECS" => self.gc.interval_secs = parse(key, value)?,
            "BERTH_GC_GRACE_SECS" => self.gc.grace_secs = parse(key, value)?,
            "BERTH_GC_DELETE_UNTAGGED" => self.gc.delete_untagged = parse(key, value)?,
            "BERTH_RETENTION_INTERVAL_SECS" => self.gc.retention_interval_secs = parse(key, value)?,
            "BERTH_PULL_FLUSH_SECS" => self.pull_flush_secs = parse(key, value)?,
            "BERTH_READ_CACHE_MIB" => self.read_cache_mib = parse(key, value)?,
            "BERTH_SHUTDOWN_GRACE_SECS" => self.shutdown_grace_secs = parse(key, value)?,
            "BERTH_REGION" => self.region = Some(value.to_owned()),
            "BERTH_JOBS_CONCURRENCY" => self.jobs.concurrency = parse(key, value)?,
            "BERTH_JOBS_LEASE_SECS" => self.jobs.lease_secs = parse(key, value)?,
            "BERTH_JOBS_MAX_ATTEMPTS" => self.jobs.max_attempts = parse(key, value)?,
            "BERTH_JOBS_MAX_BACKOFF_SECS" => self.jobs.max_backoff_secs = parse(key, value)?,
            "BERTH_JOBS_RECONCILE_SECS" => self.jobs.reconcile_secs = parse(key, value)?,
            "BERTH_WEBHOOKS_ALLOW_PRIVATE_TARGETS" => {
                self.webhooks.allow_private_targets = parse(key, value)?
            }
            "BERTH_WEBHOOKS_TIMEOUT_SECS" => self.webhooks.timeout_secs = parse(key, value)?,
            "BERTH_ENCRYPTION_KEY" => self.encryption_key = Some(Secret::new(value)),
            "BERTH_PREVIOUS_ENCRYPTION_KEY" => {
                self.previous_encryption_keys = vec![Secret::new(value)]
            }
            // Variables of other tools (tests, scripts) may share the prefix.
            _ => {}
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(key) = &self.encryption_key {
            if key.expose().len() < 32 {
                bail!("encryption_key (BERTH_ENCRYPTION_KEY) must be at least 32 characters");
            }
        }
        if !self.previous_encryption_keys.is_empty() && self.encryption_key.is_none() {
            bail!("previous_encryption_keys need an encryption_key to seal again with");
        }
        if self
            .previous_encryption_keys
            .iter()
            .any(|k| k.expose().len() < 32)
        {
            bail!("previous_encryption_keys must each be at least 32 characters");
        }
        let mut names = std::collections::BTreeSet::new();
        for r in &self.remotes {
            berth_core::platform::check_remote_name(&r.name)
                .map_err(|e| anyhow::anyhow!("[[remotes]]: {e}"))?;
            if !names.insert(r.name.as_str()) {
                bail!("[[remotes]]: the name {} is declared twice", r.name);
            }
            if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
                bail!("[[remotes]] {}: url must be http:// or https://", r.name);
            }
            if r.password.is_some() && r.username.is_none() {
                bail!("[[remotes]] {}: a password needs a username", r.name);
            }
        }
        let mut proxies = std::collections::BTreeSet::new();
        for p in &self.proxy_namespaces {
            if p.namespace.contains('/') || berth_oci::RepoName::parse(&p.namespace).is_err() {
                bail!(
                    "[[proxy_namespaces]]: {:?} is not a namespace name",
                    p.namespace
                );
            }
            if !proxies.insert(p.namespace.as_str()) {
                bail!(
                    "[[proxy_namespaces]]: namespace {} is declared twice",
                    p.namespace
                );
            }
            if p.remote.is_empty() {
                bail!("[[proxy_namespaces]] {}: name its remote", p.namespace);
            }
        }
        if self.proxy_namespaces.iter().filter(|p| p.default).count() > 1 {
            bail!("[[proxy_namespaces]]: at most one may be the default");
        }
        if let Some(tls) = &self.tls {
            if tls.cert.as_os_str().is_empty() || tls.key.as_os_str().is_empty() {
                bail!("TLS needs both a certificate and a key (BERTH_TLS_CERT and BERTH_TLS_KEY)");
            }
        }
        if let Some(url) = &self.database.url {
            let u = url.expose();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                bail!("database.url must be a postgres:// URL; leave it unset for the embedded SQLite database");
            }
        }
        if berth_oci::RepoName::parse(&self.access.platform_namespace).is_err()
            || self.access.platform_namespace.contains('/')
        {
            bail!(
                "access.platform_namespace {:?} is not a valid namespace name",
                self.access.platform_namespace
            );
        }
        if self.registry.tags_per_repository < 0 {
            bail!("registry.tags_per_repository cannot be negative (0 means no limit)");
        }
        if self.access.namespaces_per_group < 0 {
            bail!("access.namespaces_per_group cannot be negative");
        }
        if self.auth.token_lifetime_secs == 0
            || self.auth.refresh_token_lifetime_secs == 0
            || self.auth.session_lifetime_secs == 0
        {
            bail!("token lifetimes must be at least 1 second");
        }
        if self.auth.service.is_empty() || self.auth.service.contains('"') {
            bail!("auth.service must be a non-empty name without quotes");
        }
        self.network.to_core()?;
        if self.pull_flush_secs == 0 {
            bail!("pull_flush_secs must be at least 1");
        }
        if self.connections.header_read_timeout_secs == 0
            || self.connections.body_idle_timeout_secs == 0
        {
            bail!("connections.header_read_timeout_secs and body_idle_timeout_secs must be at least 1");
        }
        if self.database.acquire_timeout_secs == 0 {
            bail!("database.acquire_timeout_secs must be at least 1");
        }
        validate_storage(&self.storage, "storage")?;
        self.validate_regions()?;
        if self.jobs.lease_secs < 3 || self.jobs.max_attempts < 1 || self.jobs.concurrency > 256 {
            bail!("jobs.lease_secs must be at least 3, jobs.max_attempts at least 1, jobs.concurrency at most 256");
        }
        Ok(())
    }

    fn validate_regions(&self) -> anyhow::Result<()> {
        if self.regions.is_empty() {
            if let Some(region) = &self.region {
                bail!("region = {region:?} is set but no [regions] table lists the platform's regions");
            }
            return Ok(());
        }
        if self.database.url.is_none() {
            bail!(
                "several regions need PostgreSQL (database.url): the embedded SQLite database is one region; remove the [regions] table or set BERTH_DATABASE_URL"
            );
        }
        let Some(region) = &self.region else {
            bail!("[regions] lists the platform's regions, so this node must name its own: region = \"…\" (BERTH_REGION)");
        };
        if !self.regions.contains_key(region) {
            let names: Vec<&str> = self.regions.keys().map(String::as_str).collect();
            bail!(
                "region {region:?} is not among the configured regions ({})",
                names.join(", ")
            );
        }
        for (name, r) in &self.regions {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                bail!("region name {name:?} may hold only letters, digits, '-' and '_'");
            }
            validate_storage(&r.storage, &format!("regions.{name}.storage"))?;
            if let Some(nets) = &r.internal_networks {
                for n in nets {
                    n.parse::<berth_core::zones::Cidr>()
                        .map_err(|e| anyhow::anyhow!("regions.{name}.internal_networks: {e}"))?;
                }
            }
        }
        Ok(())
    }

    /// The network zones of this node: its region's internal networks when
    /// it names them, none when its region's clients may not pull over the
    /// internal network.
    pub fn network_policy(&self) -> anyhow::Result<berth_core::zones::NetworkPolicy> {
        let mut policy = self.network.to_core()?;
        if let Some(region) = self.local_region() {
            if let Some(nets) = &region.internal_networks {
                policy.internal = nets
                    .iter()
                    .map(|c| {
                        c.parse()
                            .map_err(|e| anyhow::anyhow!("internal network {c}: {e}"))
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            if region.internal_pulls == Some(false) {
                policy.internal.clear();
            }
        }
        Ok(policy)
    }

    /// This node's region's settings, with several regions.
    pub fn local_region(&self) -> Option<&RegionConfig> {
        self.region.as_ref().and_then(|r| self.regions.get(r))
    }
}

fn validate_storage(storage: &StorageConfig, at: &str) -> anyhow::Result<()> {
    {
        if storage.kind == StorageKind::S3 {
            let s3 = &storage.s3;
            if s3.bucket.is_empty() {
                bail!("{at}.s3.bucket is required with kind = \"s3\" (BERTH_S3_BUCKET)");
            }
            if let Some(endpoint) = &s3.endpoint {
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    bail!("{at}.s3.endpoint must be an http:// or https:// URL");
                }
            }
            if s3.part_size_mib < 5 || s3.part_size_mib > 5 * 1024 {
                bail!("{at}.s3.part_size_mib must be between 5 and 5120 (S3's part sizes)");
            }
            if s3.redirect && !(1..=7 * 86_400).contains(&s3.redirect_secs) {
                bail!("{at}.s3.redirect_secs must be between 1 and 604800 (a week, S3's longest)");
            }
            if s3.access_key_id.is_empty() != s3.secret_access_key.expose().is_empty() {
                bail!("{at}.s3 needs both access_key_id and secret_access_key, or neither");
            }
        }
        Ok(())
    }
}

impl Config {
    /// The space reserve beside the embedded database (none with
    /// PostgreSQL, whose disk is not Berth's). A reserve that cannot be
    /// written for another reason than a full disk is logged and skipped.
    pub fn space_reserve(&self) -> Option<berth_core::reserve::SpaceReserve> {
        let bytes = self
            .storage
            .reserve_bytes
            .unwrap_or(berth_core::reserve::DEFAULT_RESERVE_BYTES);
        if self.database.url.is_some() || bytes == 0 {
            return None;
        }
        let path = self.data_dir.join("space-reserve");
        match berth_core::reserve::SpaceReserve::open(&path, bytes) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "could not write the space reserve; deletes may fail on a full disk");
                None
            }
        }
    }

    /// Open the configured blob storage. An S3 bucket keeps its upload
    /// state in `meta`'s upload rows, so any node can continue an upload.
    pub fn open_blob_store(
        &self,
        meta: std::sync::Arc<dyn berth_meta::MetaStore>,
    ) -> anyhow::Result<std::sync::Arc<dyn berth_blob::BlobStore>> {
        self.open_storage(&self.storage, self.storage_path(), meta)
    }

    /// Open every region's blob storage (one region without a `[regions]`
    /// table).
    pub fn open_regions(
        &self,
        meta: std::sync::Arc<dyn berth_meta::MetaStore>,
    ) -> anyhow::Result<berth_core::Regions> {
        let Some(local) = &self.region else {
            return Ok(berth_core::Regions::single(self.open_blob_store(meta)?));
        };
        let mut list = Vec::new();
        for (name, r) in &self.regions {
            let path = r
                .storage
                .path
                .clone()
                .unwrap_or_else(|| self.data_dir.join(format!("blobs-{name}")));
            let blobs = self
                .open_storage(&r.storage, path, meta.clone())
                .with_context(|| format!("region {name}'s storage"))?;
            list.push(berth_core::Region {
                name: name.clone(),
                blobs,
            });
        }
        berth_core::Regions::new(local, list).map_err(|e| anyhow::anyhow!(e))
    }

    fn open_storage(
        &self,
        storage: &StorageConfig,
        path: PathBuf,
        meta: std::sync::Arc<dyn berth_meta::MetaStore>,
    ) -> anyhow::Result<std::sync::Arc<dyn berth_blob::BlobStore>> {
        Ok(match storage.kind {
            StorageKind::Fs => std::sync::Arc::new(
                berth_blob::FsBlobStore::open(&path)
                    .with_context(|| format!("opening blob storage at {}", path.display()))?,
            ),
            StorageKind::S3 => std::sync::Arc::new(
                berth_blob::S3BlobStore::new(
                    &storage.s3.to_blob(),
                    std::sync::Arc::new(berth_core::MetaJournal::new(meta)),
                )
                .context("configuring S3 blob storage")?,
            ),
        })
    }

    /// Where blobs live, for logs.
    pub fn storage_description(&self) -> String {
        if let Some(region) = &self.region {
            return format!(
                "region {region}: {}",
                self.regions.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        match self.storage.kind {
            StorageKind::Fs => self.storage_path().display().to_string(),
            StorageKind::S3 => format!(
                "s3://{}/{} at {}",
                self.storage.s3.bucket,
                self.storage.s3.prefix,
                self.storage.s3.endpoint.as_deref().unwrap_or("AWS")
            ),
        }
    }

    /// Where blobs live on a filesystem.
    pub fn storage_path(&self) -> PathBuf {
        self.storage
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn zero_config_defaults() {
        let c = Config::load(None, env(&[])).expect("defaults");
        assert_eq!(c.listen.to_string(), "0.0.0.0:5000");
        assert_eq!(c.data_dir, PathBuf::from("berth-data"));
        assert_eq!(c.storage_path(), PathBuf::from("berth-data/blobs"));
        assert!(c.database.url.is_none());
        assert_eq!(c.registry.max_manifest_bytes, 4 << 20);
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("berth.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:6000\"\ndata_dir = \"/srv/berth\"\n[registry]\ndeletes_enabled = false\n",
        )
        .expect("write");
        let c = Config::load(
            Some(&path),
            env(&[
                ("BERTH_LISTEN", "127.0.0.1:7000"),
                ("BERTH_EXTERNAL_URL", "https://r.example"),
                ("BERTH_DATABASE_URL", "postgres://u:hunter2@db/berth"),
                ("BERTH_ADMIN_PASSWORD", "swordfish-admin"),
                ("BERTH_PLATFORM_NAMESPACE", "platform"),
                ("OTHER", "x"),
            ]),
        )
        .expect("load");
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.data_dir, PathBuf::from("/srv/berth"));
        assert!(!c.registry.deletes_enabled);
        assert_eq!(c.external_url.as_deref(), Some("https://r.example"));
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("hunter2"),
            "secrets must be redacted: {debug}"
        );
    }

    #[test]
    fn regions_take_the_issue_shape_and_need_postgres() {
        let text = r#"
region = "north"
[database]
url = "postgres://berth@db/berth"
[regions.north]
storage = { kind = "fs", path = "/srv/berth/north" }
internal_networks = ["10.1.0.0/16"]
[regions.south]
storage = { kind = "s3", s3 = { endpoint = "https://s3.south.example", bucket = "berth", region = "south", access_key_id = "AK", secret_access_key = "very-secret" } }
internal_pulls = false
"#;
        let c = Config::parse(Some(text), env(&[])).expect("regions");
        assert_eq!(c.regions.len(), 2);
        assert_eq!(
            c.local_region().expect("local").storage.path.as_deref(),
            Some(Path::new("/srv/berth/north"))
        );
        let policy = c.network_policy().expect("policy");
        assert_eq!(
            policy.internal.len(),
            1,
            "the region's own internal networks"
        );
        assert!(!format!("{c:?}").contains("very-secret"));
        // A node of the south: no client is internal.
        let south = Config::parse(Some(text), env(&[("BERTH_REGION", "south")])).expect("south");
        assert!(south.network_policy().expect("policy").internal.is_empty());
        // Refused: SQLite, no region named, an unknown one, a region without the table.
        let sqlite = text.replace(r#"url = "postgres://berth@db/berth""#, "");
        let err = Config::parse(Some(&sqlite), env(&[])).expect_err("sqlite");
        assert!(err.to_string().contains("PostgreSQL"), "{err}");
        let err = Config::parse(Some(&text.replace(r#"region = "north""#, "")), env(&[]))
            .expect_err("no region");
        assert!(err.to_string().contains("BERTH_REGION"), "{err}");
        let err = Config::parse(Some(text), env(&[("BERTH_REGION", "west")])).expect_err("west");
        assert!(err.to_string().contains("north, south"), "{err}");
        let err = Config::parse(None, env(&[("BERTH_REGION", "north")])).expect_err("no table");
        assert!(err.to_string().contains("[regions]"), "{err}");
        let err = Config::parse(Some(&text.replace(r#"bucket = "berth", "#, "")), env(&[]))
            .expect_err("bucket");
        assert!(
            err.to_string().contains("regions.south.storage.s3.bucket"),
            "{err}"
        );
        let err =
            Config::parse(Some(&format!("{text}bogus = 1\n")), env(&[])).expect_err("unknown key");
        assert!(format!("{err:#}").contains("bogus"), "{err:#}");
    }

    #[test]
    fn remotes_take_the_issue_shape() {
        let text = r#"
[[remotes]]
name = "dockerhub"
url = "https://registry-1.docker.io"
username = "me"
password = "hub-token"
[[remotes]]
name = "mirror"
url = "http://10.0.0.5:5000"
"#;
        let c = Config::parse(
            Some(text),
            env(&[("BERTH_ENCRYPTION_KEY", "0123456789abcdef0123456789abcdef")]),
        )
        .expect("remotes");
        assert_eq!(c.remotes.len(), 2);
        assert_eq!(c.remotes[0].name, "dockerhub");
        assert!(!format!("{c:?}").contains("hub-token"), "redacted");
        assert!(!format!("{c:?}").contains("0123456789abcdef"), "redacted");
        let declared = c.remotes[0].to_core().expect("core");
        assert_eq!(declared.password.as_deref(), Some("hub-token"));
        let twice = format!("{text}[[remotes]]\nname = \"mirror\"\nurl = \"http://x\"\n");
        let err = Config::parse(Some(&twice), env(&[])).expect_err("twice");
        assert!(err.to_string().contains("declared twice"), "{err}");
        let err = Config::parse(
            Some("[[remotes]]\nname = \"a\"\nurl = \"http://x\"\npassword = \"p\"\n"),
            env(&[]),
        )
        .expect_err("password alone");
        assert!(err.to_string().contains("username"), "{err}");
        let err = Config::parse(
            Some("[[remotes]]\nname = \"a\"\nurl = \"http://x\"\ncolour = 1\n"),
            env(&[]),
        )
        .expect_err("unknown key");
        assert!(format!("{err:#}").contains("colour"), "{err:#}");
        let err =
            Config::parse(None, env(&[("BERTH_ENCRYPTION_KEY", "short")])).expect_err("short key");
        assert!(err.to_string().contains("32"), "{err}");
    }

    #[test]
    fn proxy_namespaces_take_the_issue_shape() {
        let text = r#"
[[remotes]]
name = "dockerhub"
url = "https://registry-1.docker.io"
[[proxy_namespaces]]
namespace = "hub"
remote = "dockerhub"
"#;
        let c = Config::parse(Some(text), env(&[])).expect("proxy");
        let p = c.proxy_namespaces[0].to_core();
        assert_eq!(
            (p.namespace.as_str(), p.remote.as_str()),
            ("hub", "dockerhub")
        );
        assert_eq!(p.revalidate, Duration::from_secs(300));
        assert!(!p.default);
        let twice = format!("{text}[[proxy_namespaces]]\nnamespace = \"hub\"\nremote = \"x\"\n");
        let err = Config::parse(Some(&twice), env(&[])).expect_err("twice");
        assert!(err.to_string().contains("twice"), "{err}");
        let err = Config::parse(
            Some("[[proxy_namespaces]]\nnamespace = \"a/b\"\nremote = \"x\"\n"),
            env(&[]),
        )
        .expect_err("bad name");
        assert!(err.to_string().contains("namespace name"), "{err}");
        let err = Config::parse(
            Some("[[proxy_namespaces]]\nnamespace = \"a\"\nremote = \"x\"\nttl = 1\n"),
            env(&[]),
        )
        .expect_err("unknown key");
        assert!(format!("{err:#}").contains("ttl"), "{err:#}");
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Config::load(None, env(&[("BERTH_LISTEN", "nope")])).expect_err("bad");
        assert!(err.to_string().contains("BERTH_LISTEN"));
        let err = Config::load(None, env(&[("BERTH_TLS_CERT", "/c.pem")])).expect_err("half tls");
        assert!(err.to_string().contains("BERTH_TLS_KEY"));
        let err = Config::load(None, env(&[("BERTH_DATABASE_URL", "mysql://x")])).expect_err("db");
        assert!(err.to_string().contains("postgres"));
        let err = Config::load(
            None,
            env(&[("BERTH_INTERNAL_NETWORKS", "10.0.0.0/8, 10.0.0.0/40")]),
        )
        .expect_err("bad block");
        assert!(err.to_string().contains("10.0.0.0/40"), "{err}");
        let c = Config::load(
            None,
            env(&[
                ("BERTH_INTERNAL_NETWORKS", "10.1.0.0/16, fd00::/8"),
                ("BERTH_TRUSTED_PROXIES", "10.1.0.9"),
                ("BERTH_EXTERNAL_BANDWIDTH", "0"),
            ]),
        )
        .expect("zones");
        assert_eq!(c.network.internal_networks, ["10.1.0.0/16", "fd00::/8"]);
        assert_eq!(
            c.network.to_core().expect("policy").trusted_proxies.len(),
            1
        );
        assert_eq!(c.network.external_bandwidth, 0);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "unknown_key = 1\n").expect("write");
        assert!(Config::load(Some(&path), env(&[])).is_err());
    }
}
