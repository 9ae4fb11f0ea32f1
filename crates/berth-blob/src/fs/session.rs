//! What one upload keeps between requests on this node: its lock, its
//! incremental hash state and a parked pipe.

use super::*;

/// Incremental hash state of an upload: valid while `offset` equals the file size.
#[derive(Debug)]
pub(super) struct HashState {
    pub(super) offset: u64,
    pub(super) hasher: Hasher,
}

/// How long a parked pipe waits for its upload's next chunk before it is
/// drained and its hashing thread given back.
pub(super) const PARK_IDLE: Duration = Duration::from_secs(1);

/// The pipe of a chunk request that ended at a `DIRECT_ALIGN` boundary,
/// left running for the upload's next chunk: that chunk neither waits for
/// the last blocks to be written and hashed nor starts a hashing thread of
/// its own, and the hashing thread (a push's critical path) does not idle
/// between chunks. Anything else that touches the upload (a status query,
/// a commit, a deletion, a chunk that cannot continue the pipe, or
/// `PARK_IDLE` without a chunk) drains it first.
pub(super) struct Parked {
    pub(super) pipe: Pipe,
    /// The upload's `O_DIRECT` descriptor and the same file without it.
    pub(super) direct: (Arc<std::fs::File>, Arc<std::fs::File>),
    pub(super) large: LargeBlocks,
    /// A free block buffer for the next chunk's first block.
    pub(super) spare: Option<AlignedBuf>,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked")
            .field("start", &self.pipe.start)
            .field("end", &self.pipe.end)
            .field("in_flight", &self.pipe.writes.len())
            .finish()
    }
}

/// What an upload's lock guards.
#[derive(Debug, Default)]
pub(super) struct UploadSlot {
    /// The incremental hash, if it is still valid (not while a pipe is
    /// parked: its hashing thread has it).
    pub(super) hash: Option<HashState>,
    /// A write that failed after its request had been answered (see
    /// `upload_append`): the upload's next request reports it.
    /// Its kind is kept: a full disk must still read as one.
    pub(super) failed: Option<(io::ErrorKind, String)>,
    /// A pipe waiting for the next chunk.
    pub(super) parked: Option<Parked>,
    /// How many times a pipe was parked here, so that an idle timer drains
    /// only the pipe it was started for.
    pub(super) parkings: u64,
    /// Whether this process wrote the upload's file from its start or has
    /// checked it for holes (see `FsBlobStore::check_holes`).
    pub(super) checked: bool,
}

impl UploadSlot {
    /// Drain a parked pipe, if any: its hash becomes the upload's again,
    /// or its failure the next request's error, with the file cut where
    /// the failed block starts.
    pub(super) async fn unpark(&mut self) {
        let Some(Parked {
            pipe,
            direct: (_, plain),
            large,
            ..
        }) = self.parked.take()
        else {
            return;
        };
        match pipe.drain().await {
            Ok((hasher, end)) => {
                self.hash = hasher.map(|hasher| HashState {
                    offset: end,
                    hasher,
                });
            }
            Err((e, cut)) => {
                self.hash = None;
                self.failed = Some((
                    e.io_kind(),
                    match plain.set_len(cut) {
                        Ok(()) => e.to_string(),
                        Err(cut_failed) => format!("{e}; cutting the upload failed: {cut_failed}"),
                    },
                ));
            }
        }
        drop(large);
    }

    /// The failure of a write this upload's client has not been told of.
    /// Whether a pending failure is the storage's being full.
    pub(super) fn failed_for_space(&self) -> bool {
        matches!(
            &self.failed,
            Some((io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded, _))
        )
    }

    pub(super) fn take_failure(&mut self) -> Result<(), BlobError> {
        match self.failed.take() {
            Some((kind, e)) => Err(BlobError::Io(io::Error::new(
                kind,
                format!("an earlier write to this upload failed: {e}"),
            ))),
            None => Ok(()),
        }
    }
}

pub(super) type UploadLock = Arc<Mutex<UploadSlot>>;
