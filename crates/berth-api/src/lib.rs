//! The /api/v1 management surface: JSON over the management service, with
//! an OpenAPI 3 document generated from these handlers and served at
//! `/api/v1/openapi.json`.
//!
//! Callers authenticate with HTTP Basic (account credentials), a personal
//! API token (`Authorization: Bearer berth_pat_…`), or the console's session
//! cookie plus `X-CSRF-Token` on changing requests ([`auth`]). Errors are
//! RFC 9457 problem documents with a stable `code` ([`error`]).
//!
//! Image names may contain slashes; in paths they are one segment with the
//! slashes percent-encoded: `/api/v1/namespaces/team/repositories/web%2Ffrontend/tags`.
//!
//! Layering: calls `berth-core` (and uses types of `berth-meta` and
//! `berth-oci`); is called by the `berth` binary (which mounts [`router`])
//! the console shares the state and session cookie through `berth-web`.

pub mod access;
pub mod auth;
pub mod error;
mod gc;
mod images;
pub mod model;
mod namespaces;
mod openapi;
mod params;
mod people;
mod policies;
mod remotes;
mod replication;
mod router;
mod sync;
mod webhooks;

pub use openapi::{openapi_json, ApiDoc};
pub use router::router;
