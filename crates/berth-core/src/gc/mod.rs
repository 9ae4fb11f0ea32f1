//! Online garbage collection: reclaims what nothing needs any more while the
//! registry keeps serving pushes and pulls.
//!
//! A run goes through these steps, each in short batches:
//! 1. **uploads**: upload sessions idle longer than the upload expiry;
//! 2. **manifests** (when enabled): untagged manifests nothing needs (no
//!    index lists them, no referrer refers to them, and they are not
//!    referrers of a present subject), pushed before the grace period;
//! 3. **accounting**: links a manifest needs and its repository lost are
//!    restored and audited (usage is the sum of linked blobs; nothing
//!    Berth does loses one, a database restored or edited by hand can);
//! 4. **links**: a repository's links to blobs that no manifest of that
//!    repository references, made before the grace period (layers of
//!    deleted images, and layers uploaded but never used by a manifest);
//! 5. **blobs**: blobs nothing links, references or is about to commit are
//!    claimed, their bytes deleted, and forgotten; in up to sixteen shards of
//!    the digest space, which the node running the collection and every
//!    node that runs jobs take one at a time (`blob_step`);
//! 6. **sweep** (full runs only): the storage is listed for objects no
//!    metadata knows (left by a crash between storing and recording).
//!
//! Correctness does not depend on timing. Each deciding step runs under the
//! store's collection lock, which every reference-creating transaction
//! (link, manifest push, upload pin) holds shared; a claimed blob can be
//! neither linked nor committed, and an upload pins its digest before its
//! bytes move into place. So a blob being uploaded, mounted or referenced by
//! a manifest being pushed is never deleted: the push either completes
//! first, and its references protect the blob, or it is refused cleanly
//! (`MANIFEST_BLOB_UNKNOWN`) and nothing committed is ever left dangling.
//! The grace period only decides how long an uploaded layer may wait for
//! its manifest before it counts as abandoned.
//!
//! The metadata knows what is unreferenced, so only the optional full sweep
//! lists the storage.

mod blob_step;
mod collector;
mod run;

pub use blob_step::GC_HELP_JOB;
pub use collector::Collector;
pub use run::{progress, GcCause, GcConfig, GcError, GcOptions, GcProgress};
