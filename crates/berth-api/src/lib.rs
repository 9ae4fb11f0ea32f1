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
//!
//! # In detail
//!
//! the /api/v1 surface: axum handlers over `Management`, each annotated with
//! `utoipa` so the OpenAPI document is generated from the code (served at
//! `/api/v1/openapi.json`, snapshot-tested). `access` declares who may call
//! each operation, published as `x-berth-access` in the document (the
//! authorization test derives its expectations from it). `auth` identifies
//! the caller (Basic through `Auth::login` with its throttling, `Bearer
//! berth_pat_…` tokens, or the session cookie with a CSRF token on changing
//! requests; the token is handed out only to the console's own pages);
//! `error` owns the wire format, RFC 9457 problem documents with a stable
//! `code`; extractor rejections (bad JSON, query or path) become problems
//! too, as do unknown endpoints (404) and methods (405). Answers are inert in
//! a browser, as on /v2.

pub mod access;
pub mod auth;
pub mod error;
mod gc;
mod group_mappings;
mod images;
mod integrity;
pub mod model;
mod namespaces;
mod openapi;
mod params;
mod people;
mod policies;
mod remote_replication;
mod remotes;
mod router;
mod sboms;
mod signature_policies;
mod sync;
mod trust_rules;
mod vulnerabilities;
mod vulnerability_policies;
mod webhooks;

pub use openapi::{openapi_json, ApiDoc};
pub use router::router;
