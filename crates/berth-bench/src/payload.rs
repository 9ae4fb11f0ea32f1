//! What the scenarios push: deterministic pseudo-random blobs, their digests,
//! image manifests.

use berth_oci::{Algorithm, Digest};
use bytes::Bytes;
use serde_json::json;

pub(crate) const BIG: usize = 100 << 20;

pub(crate) const CHUNK: usize = 5 << 20;

/// 100 MiB pushes of each kind per round.
pub(crate) const PUSHES: usize = 3;

pub(crate) const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Deterministic pseudo-random bytes (xorshift), distinct per seed.
pub(crate) fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub(crate) fn sha256(b: &[u8]) -> String {
    Digest::of_bytes(Algorithm::Sha256, b).to_string()
}

/// An OCI image manifest of a config and layers.
pub(crate) fn manifest_body(
    config: (&str, usize),
    layers: &[(String, usize)],
) -> anyhow::Result<Vec<u8>> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, s)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}))
        .collect();
    Ok(serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers,
    }))?)
}

/// Source of distinct content seeds within one run.
pub(crate) static SEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 20);

/// A blob of `len` bytes in 1 MiB pieces, each distinct (per seed and
/// position), made as they are consumed so the client never holds the blob.
pub(crate) fn pieces(len: usize, seed: u64) -> impl Iterator<Item = Bytes> {
    pieces_from(len, seed, 0)
}

/// [`pieces`] from piece `first` on (each made only when consumed: a
/// `skip` would make and drop every piece before it).
pub(crate) fn pieces_from(len: usize, seed: u64, first: usize) -> impl Iterator<Item = Bytes> {
    const PIECE: usize = 1 << 20;
    let base = data(PIECE, seed);
    (first..len.div_ceil(PIECE)).map(move |i| {
        let mut piece = base[..PIECE.min(len - i * PIECE)].to_vec();
        let tag = (i as u64).to_le_bytes();
        let n = tag.len().min(piece.len());
        piece[..n].copy_from_slice(&tag[..n]);
        Bytes::from(piece)
    })
}
