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
//!
//! # In detail
//!
//! the web console at `/`: askama templates compiled into the binary, one
//! stylesheet and one small script (dialogs, copy to clipboard) embedded with
//! `include_str!`. Pages call `Management` (and the `Directory` through it),
//! exactly like the API; the session is the API's (`berth_session` cookie,
//! `Management::session`), and every form carries the session's CSRF token,
//! checked by the `Posted` extractor. Refused forms return to their page with
//! the service's message; missing or forbidden things get a readable error
//! page with the right status. Every page is sent with a
//! Content-Security-Policy allowing only the console's own script and
//! stylesheet (no inline script or style anywhere), no framing, and a
//! same-origin referrer policy.

mod extract;
mod forms;
mod pages;
mod respond;
mod router;
mod viewer;
mod views;

pub use router::router;
