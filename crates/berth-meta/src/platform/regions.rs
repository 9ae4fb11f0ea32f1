//! What the metadata says of regions' storage: the blobs an image needs
//! and what each region holds.

/// A blob an image needs, with its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBlob {
    /// Digest.
    pub digest: String,
    /// Bytes.
    pub size: i64,
}

/// What a region's storage holds, by the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionUsage {
    /// Region.
    pub region: String,
    /// Blobs recorded there.
    pub blobs: i64,
    /// Their bytes.
    pub bytes: i64,
}
