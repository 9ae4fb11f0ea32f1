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
//!
//! # In detail
//!
//! the one OCI Distribution client for registries Berth does not run (another
//! Berth, Distribution, Harbor, Docker Hub): the Docker token flow after a
//! `Bearer` challenge (tokens cached per scope) or HTTP Basic; manifests by
//! tag or digest (a digest is verified), blob `HEAD` and ranged `GET`
//! streamed; mounts, monolithic uploads streamed from any byte stream, and
//! chunked uploads that resume at the offset the server reports; tag lists
//! across `Link` pages. Credentials (and tokens) go only to the registry's
//! own origin, or to a token realm configured with it; never from HTTPS to
//! plain HTTP; redirects are checked at every hop; every answer read whole is
//! bounded. Errors say whether a retry may help (`is_transient`). Remote
//! replication and the pull-through cache build on it; tests drive it against
//! Berth and the reference registry.

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
