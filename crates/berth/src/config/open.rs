//! What the configuration opens: the network zones, the space reserve,
//! the blob stores of this node and of each region.

use std::path::PathBuf;

use anyhow::Context;

use super::sections::*;
use super::Config;

impl Config {
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
