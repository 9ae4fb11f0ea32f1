//! The web console: server-rendered pages (askama templates compiled into
//! the binary, one stylesheet and one small script embedded too), served at
//! `/` by the same binary. No Node.js is needed to build or run it.
//!
//! Every page and form calls the management service (`berth-core`), the
//! same one the REST API calls, so no rule has a second implementation.
//! Logging in creates the same console session the API accepts; every form
//! carries the session's CSRF token. Errors become readable pages, or a
//! message on the page a form came from.
//!
//! Layering: calls `berth-core` (and uses `berth-meta` and `berth-oci`
//! types); shares the state and session cookie with the API through
//! `berth-web`; is called by the `berth` binary, which mounts [`router`].

mod extract;
mod forms;
mod pages;
mod respond;
mod router;
mod viewer;
mod views;

pub use router::router;
