//! Pure OCI types and validation: digests, repository names, tags, references,
//! media types, manifest parsing and content hashing.
//!
//! Layering: this crate is the bottom layer. It performs no I/O and depends on
//! no other Berth crate; every other crate may depend on it.
//!
//! # In detail
//!
//! name patterns (`glob_match`: `*`, `?`), digests (`sha256`, `sha512`) and
//! streaming hashers (the `sha2` crate, which uses the CPU's SHA extensions
//! when present), repository names, tags and references per the spec grammar,
//! and manifest parsing: OCI image manifest and index, Docker schema 2
//! manifest and list, any other `application/…+json` media type (nothing a
//! browser renders or runs, since a manifest is served with its media type);
//! schema 1 is refused. No I/O.

mod digest;
mod glob;
mod manifest;
mod name;
mod resumable;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use glob::{first_match, glob_match, validate_pattern, PatternError, MAX_PATTERN_LEN};
pub use manifest::{
    is_manifest_media_type, is_valid_media_type, media_types, Descriptor, ManifestError,
    ManifestKind, ParsedManifest,
};
pub use name::{NameError, Reference, RepoName, Tag, MAX_NAME_LEN};
pub use resumable::{HashStateError, ResumableHasher};
