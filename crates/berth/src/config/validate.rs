//! Checks of a whole configuration, with messages that name the key.

use anyhow::bail;

use super::sections::*;
use super::Config;

impl Config {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        self.identity.validate()?;
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
        if let Some(feed) = &self.registry.advisory_feed {
            if let Err(e) = berth_oci::RepoName::parse(feed) {
                bail!("registry.advisory_feed {feed:?} is not a repository name such as security/advisories ({e})");
            }
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
        if !(1..=1000).contains(&self.gc.batch) {
            bail!("gc.batch must be between 1 and 1000 (S3 deletes at most 1,000 keys a request)");
        }
        if self.gc.lease_secs < 1 {
            bail!("gc.lease_secs must be at least 1");
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
