//! The database as the blob storage's upload journal: a backend that must
//! remember an upload between requests (S3's multipart id, parts and hash
//! state) keeps it in the upload's row, where every node finds it.

use std::sync::Arc;

use async_trait::async_trait;
use berth_blob::{BlobError, SavedUpload, UploadJournal};
use berth_meta::MetaStore;

/// Upload state kept in the upload sessions' rows.
#[derive(Debug, Clone)]
pub struct MetaJournal {
    meta: Arc<dyn MetaStore>,
}

impl MetaJournal {
    /// A journal over `meta`.
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        MetaJournal { meta }
    }
}

#[async_trait]
impl UploadJournal for MetaJournal {
    async fn load(&self, id: &str) -> Result<Option<SavedUpload>, BlobError> {
        let row = self
            .meta
            .upload_state(id)
            .await
            .map_err(|e| BlobError::Journal(Box::new(e)))?;
        Ok(row.map(|(version, state)| SavedUpload { version, state }))
    }

    async fn save(&self, id: &str, version: i64, state: &str) -> Result<bool, BlobError> {
        self.meta
            .save_upload_state(id, version, state)
            .await
            .map_err(|e| BlobError::Journal(Box::new(e)))
    }
}
