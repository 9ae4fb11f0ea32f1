//! The platform's regions, each with its blob storage, and the counters of
//! what moves between them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use berth_blob::BlobStore;

/// The name of the one region of a platform configured without regions.
pub const DEFAULT_REGION: &str = "default";

/// A region: its name and its blob storage.
#[derive(Debug, Clone)]
pub struct Region {
    /// Name, as configured.
    pub name: String,
    /// Where its blobs are.
    pub blobs: Arc<dyn BlobStore>,
}

/// Every region of the platform, and which one this node is in.
#[derive(Debug, Clone)]
pub struct Regions {
    list: Vec<Region>,
    local: usize,
}

impl Regions {
    /// A platform of one region.
    pub fn single(blobs: Arc<dyn BlobStore>) -> Self {
        Regions {
            list: vec![Region {
                name: DEFAULT_REGION.to_owned(),
                blobs,
            }],
            local: 0,
        }
    }

    /// Several regions; this node is in `local`.
    pub fn new(local: &str, list: Vec<Region>) -> Result<Self, String> {
        let index = list
            .iter()
            .position(|r| r.name == local)
            .ok_or_else(|| format!("region {local:?} is not among the configured regions"))?;
        Ok(Regions { list, local: index })
    }

    /// This node's region.
    pub fn local(&self) -> &Region {
        &self.list[self.local]
    }

    /// A region by name.
    pub fn get(&self, name: &str) -> Option<&Region> {
        self.list.iter().find(|r| r.name == name)
    }

    /// Every region, in configuration order.
    pub fn all(&self) -> &[Region] {
        &self.list
    }

    /// Whether there is more than one.
    pub fn is_multi(&self) -> bool {
        self.list.len() > 1
    }
}

/// Upper bounds (seconds) of the replication lag histogram's buckets.
pub const LAG_BUCKETS: [f64; 11] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// A histogram of replication lag in one region.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LagHistogram {
    /// Observations at or below each of [`LAG_BUCKETS`] (not cumulative).
    pub buckets: [u64; LAG_BUCKETS.len()],
    /// Observations above the last bucket.
    pub over: u64,
    /// Sum of the observations, seconds.
    pub sum: f64,
}

impl LagHistogram {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum::<u64>() + self.over
    }
}

/// What moved between regions since this process started.
#[derive(Debug, Default)]
pub struct PlatformStats {
    /// Bytes copied into this node's stores by replication and synchronization.
    pub bytes_copied: AtomicU64,
    /// Blobs copied.
    pub blobs_copied: AtomicU64,
    /// Pulls of a blob the local region did not hold yet, served from another.
    pub on_demand_fetches: AtomicU64,
    /// Webhook deliveries this node made that the receiver took.
    pub webhooks_delivered: AtomicU64,
    /// Webhook delivery attempts that failed (each retry counts).
    pub webhook_attempts_failed: AtomicU64,
    lag: Mutex<BTreeMap<String, LagHistogram>>,
}

impl PlatformStats {
    /// Record that an image pushed `seconds` ago is now whole in `region`.
    pub fn observe_lag(&self, region: &str, seconds: f64) {
        let mut lag = self.lag.lock().unwrap_or_else(|e| e.into_inner());
        let h = lag.entry(region.to_owned()).or_default();
        match LAG_BUCKETS.iter().position(|b| seconds <= *b) {
            Some(i) => h.buckets[i] += 1,
            None => h.over += 1,
        }
        h.sum += seconds;
    }

    /// The lag histograms by region.
    pub fn lag(&self) -> BTreeMap<String, LagHistogram> {
        self.lag.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn copied(&self, bytes: u64) {
        self.bytes_copied.fetch_add(bytes, Ordering::Relaxed);
        self.blobs_copied.fetch_add(1, Ordering::Relaxed);
    }
}
