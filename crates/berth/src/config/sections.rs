//! The sections of the configuration file, each with its defaults and
//! its conversion to the settings of the layer it configures.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use super::Secret;

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
    /// An upload sends up to 16 MiB of parts at once while the next fills.
    pub part_size_mib: usize,
    /// Answer blob downloads with a 307 to a presigned URL of the bucket,
    /// except for clients under the external bandwidth cap
    /// (`BERTH_S3_REDIRECT`; default true). Turn it off where clients
    /// cannot reach the bucket: Berth then streams every blob itself.
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
            redirect: true,
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
    /// A repository (`security/advisories`) whose pushed artifacts are
    /// imported as OSV advisories (`BERTH_ADVISORY_FEED`; none by default).
    pub advisory_feed: Option<String>,
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
            advisory_feed: None,
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
            advisory_feed: self.advisory_feed.clone(),
        }
    }
}

/// The background integrity scrub (`berth fsck` runs one check now).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegritySection {
    /// Seconds between scheduled scrubs, 0 for none
    /// (`BERTH_INTEGRITY_SCRUB_INTERVAL_SECS`; default a week).
    pub scrub_interval_secs: u64,
    /// Bytes a scrub re-hashes per second at most, 0 for no limit
    /// (`BERTH_INTEGRITY_SCRUB_BYTES_PER_SEC`; default 50 MiB/s).
    pub scrub_bytes_per_sec: u64,
}

impl Default for IntegritySection {
    fn default() -> Self {
        let d = berth_core::integrity::IntegrityConfig::default();
        IntegritySection {
            scrub_interval_secs: d.scrub_interval.as_secs(),
            scrub_bytes_per_sec: d.scrub_bytes_per_sec,
        }
    }
}

impl IntegritySection {
    /// The service-layer view of these settings.
    pub fn to_core(&self) -> berth_core::integrity::IntegrityConfig {
        berth_core::integrity::IntegrityConfig {
            scrub_interval: Duration::from_secs(self.scrub_interval_secs),
            scrub_bytes_per_sec: self.scrub_bytes_per_sec,
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
    /// Rows a collection handles in one transaction, and blobs it deletes
    /// from storage in one request (`BERTH_GC_BATCH`; 1–1000, default 500).
    pub batch: i64,
    /// Seconds after which a collection that reported no progress is
    /// presumed dead and the next run finishes its claims
    /// (`BERTH_GC_LEASE_SECS`; default 900).
    pub lease_secs: u64,
    /// Blobs a collection deletes per second at most, 0 for no limit
    /// (`BERTH_GC_OBJECTS_PER_SEC`; default 0): pushes beside a collection
    /// keep more of a small machine.
    pub objects_per_sec: u64,
}

impl Default for GcSection {
    fn default() -> Self {
        let d = berth_core::GcConfig::default();
        GcSection {
            interval_secs: d.interval.as_secs(),
            grace_secs: d.grace.as_secs(),
            delete_untagged: d.delete_untagged,
            retention_interval_secs: 86_400,
            batch: d.batch,
            lease_secs: d.lease.as_secs(),
            objects_per_sec: d.objects_per_sec,
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
            batch: self.batch,
            lease: Duration::from_secs(self.lease_secs),
            objects_per_sec: self.objects_per_sec,
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
