//! Whether a remote registry holds a blob that Berth already holds (for
//! another tenant, say): the remote must name the same size for it in the
//! repository asked about, and send the same bytes for a sample taken at
//! a random offset. Only then may a proxy namespace or a pull rule link
//! the bytes held here instead of fetching them; a digest the remote
//! merely names is never enough, so no remote (or anyone between it and
//! Berth) can make another tenant's layer appear where it reads.

use berth_client::{ClientError, RegistryClient};
use berth_oci::Digest;
use futures_util::StreamExt;
use ring::rand::{SecureRandom, SystemRandom};

use crate::{Registry, RegistryError};

/// Bytes compared.
const SAMPLE: u64 = 4096;

/// What the remote showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holding {
    /// It holds the same bytes: link what is held here.
    Confirmed,
    /// The repository there does not have the blob.
    Absent,
    /// Neither: fetch the blob from it (its digest is checked as it comes).
    Unconfirmed,
}

/// Why the question could not be answered.
#[derive(Debug)]
pub(crate) enum ConfirmError {
    /// The remote failed.
    Remote(ClientError),
    /// Berth's own storage failed.
    Local(RegistryError),
}

/// Ask `client` whether its repository `repo` holds `digest`, which this
/// registry holds with `size` bytes.
pub(crate) async fn remote_holds(
    registry: &Registry,
    client: &RegistryClient,
    repo: &str,
    digest: &Digest,
    size: u64,
) -> Result<Holding, ConfirmError> {
    match client
        .blob_size(repo, digest)
        .await
        .map_err(ConfirmError::Remote)?
    {
        None => return Ok(Holding::Absent),
        Some(s) if s != size => return Ok(Holding::Unconfirmed),
        Some(_) => {}
    }
    let len = SAMPLE.min(size);
    if len == 0 {
        // The empty blob: its content is its digest.
        return Ok(Holding::Confirmed);
    }
    let offset = random_below(size - len + 1);
    let Some(local) = local_sample(registry, digest, offset, len)
        .await
        .map_err(ConfirmError::Local)?
    else {
        return Ok(Holding::Unconfirmed);
    };
    match client
        .blob_sample(repo, digest, offset, len)
        .await
        .map_err(ConfirmError::Remote)?
    {
        Some(remote) if remote[..] == local[..] => Ok(Holding::Confirmed),
        Some(_) => {
            tracing::warn!(%digest, repo, "a remote registry sent other bytes for a blob than those held here");
            Ok(Holding::Unconfirmed)
        }
        None => Ok(Holding::Unconfirmed),
    }
}

/// `len` bytes at `offset` of a blob in this region's storage.
async fn local_sample(
    registry: &Registry,
    digest: &Digest,
    offset: u64,
    len: u64,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let Some(mut body) = registry
        .blobs
        .open_chunks(digest, Some((offset, offset + len - 1)), len as usize)
        .await?
    else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(len as usize);
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.map_err(RegistryError::Storage)?);
    }
    Ok((out.len() as u64 == len).then_some(out))
}

/// A random number in `0..bound` (`bound` > 0).
fn random_below(bound: u64) -> u64 {
    let mut bytes = [0u8; 8];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return 0;
    }
    u64::from_le_bytes(bytes) % bound.max(1)
}

#[cfg(test)]
mod tests {
    use super::random_below;

    #[test]
    fn offsets_stay_in_bounds() {
        for bound in [1, 2, 7, 4097, u64::MAX] {
            for _ in 0..100 {
                assert!(random_below(bound) < bound);
            }
        }
    }
}
