//! The platform's regions as administrators see them: storage use and
//! the job queue's backlog per region.

use crate::access::Principal;
use crate::error::DirectoryError;

use super::Management;

type Result<T> = std::result::Result<T, DirectoryError>;

/// One region's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionStatus {
    /// Its name.
    pub name: String,
    /// Whether this node serves it.
    pub local: bool,
    /// Blobs recorded there.
    pub blobs: i64,
    /// Their bytes.
    pub bytes: i64,
    /// Jobs waiting for its workers.
    pub jobs_waiting: i64,
    /// Jobs its workers are running.
    pub jobs_running: i64,
    /// Jobs that gave up.
    pub jobs_failed: i64,
}

impl Management {
    /// Every region with its storage use and backlog (platform
    /// administrators).
    pub async fn regions(&self, actor: &Principal) -> Result<Vec<RegionStatus>> {
        if !actor.is_platform_admin() {
            return Err(DirectoryError::Forbidden(
                "regions are for platform administrators".into(),
            ));
        }
        let platform = self.registry.platform();
        let usage = platform.region_usage().await?;
        let jobs = platform.job_counts().await?;
        let regions = self.registry.regions();
        let local = &regions.local().name;
        Ok(regions
            .all()
            .iter()
            .map(|r| {
                let used = usage.iter().find(|u| u.region == r.name);
                let count = |state: &str| {
                    jobs.iter()
                        .filter(|j| {
                            j.region.as_deref() == Some(r.name.as_str()) && j.state == state
                        })
                        .map(|j| j.count)
                        .sum()
                };
                RegionStatus {
                    name: r.name.clone(),
                    local: &r.name == local,
                    blobs: used.map_or(0, |u| u.blobs),
                    bytes: used.map_or(0, |u| u.bytes),
                    jobs_waiting: count("waiting"),
                    jobs_running: count("running"),
                    jobs_failed: count("failed"),
                }
            })
            .collect())
    }
}
