//! `BERTH_*` environment variables, each onto its field.

use std::path::PathBuf;

use anyhow::bail;

use super::sections::*;
use super::{list, parse, Config, Secret};

impl Config {
    pub(super) fn apply_env(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        match key {
            "BERTH_LISTEN" => self.listen = parse(key, value)?,
            "BERTH_DATA_DIR" => self.data_dir = PathBuf::from(value),
            "BERTH_EXTERNAL_URL" => self.external_url = Some(value.to_owned()),
            "BERTH_LOG" => self.log = value.to_owned(),
            "BERTH_IDENTITY_CLOCK_SKEW_SECS" => self.identity.clock_skew_secs = parse(key, value)?,
            "BERTH_IDENTITY_CACHE_SECS" => self.identity.cache_secs = parse(key, value)?,
            "BERTH_IDENTITY_KEY_REFRESH_SECS" => {
                self.identity.key_refresh_secs = parse(key, value)?
            }
            "BERTH_IDENTITY_CA_CERT" => self.identity.ca_cert = Some(PathBuf::from(value)),
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
            "BERTH_ADVISORY_FEED" => self.registry.advisory_feed = Some(value.to_owned()),
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
            "BERTH_GC_BATCH" => self.gc.batch = parse(key, value)?,
            "BERTH_GC_OBJECTS_PER_SEC" => self.gc.objects_per_sec = parse(key, value)?,
            "BERTH_GC_LEASE_SECS" => self.gc.lease_secs = parse(key, value)?,
            "BERTH_INTEGRITY_SCRUB_INTERVAL_SECS" => {
                self.integrity.scrub_interval_secs = parse(key, value)?
            }
            "BERTH_INTEGRITY_SCRUB_BYTES_PER_SEC" => {
                self.integrity.scrub_bytes_per_sec = parse(key, value)?
            }
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
}
