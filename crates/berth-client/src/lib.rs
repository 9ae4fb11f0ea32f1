//! An OCI Distribution client for talking to registries Berth does not
//! run: another Berth, Distribution, Harbor, Docker Hub. It authenticates
//! as they ask (Docker token flow after a `Bearer` challenge, or HTTP
//! Basic), reads manifests and blobs (with `Range`, streamed), and writes
//! them: mounts, monolithic uploads streamed from any byte stream, and
//! chunked uploads that resume at the offset the server reports. No blob is
//! ever held whole in memory. What it trusts of a registry is in `guard`
//! (credentials only to its origin or configured token realm, redirects
//! checked, answers bounded).
//!
//! Layering: a leaf beside `berth-meta` and `berth-blob`, over `berth-oci`
//! only; `berth-core` (replication, the pull-through cache), the benchmark
//! and the tests call it.

mod auth;
mod client;
mod error;
mod guard;
mod wire;

pub use auth::Credentials;
pub use client::{
    BlobRead, ClientOptions, Manifest, ManifestHead, Mount, RegistryClient, Upload,
    MAX_MANIFEST_BYTES,
};
pub use error::ClientError;
pub use wire::MANIFEST_TYPES;
