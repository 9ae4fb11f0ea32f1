//! What the two web surfaces, the management API (`berth-api`) and the
//! console (`berth-console`), share: the services they call
//! ([`WebState`]), the session cookie, whether a browser's request comes
//! from Berth's own pages, and the client's address behind trusted
//! proxies. Each surface keeps its own wire format and errors; neither
//! calls the other.
//!
//! Layering: calls `berth-core`; is called by `berth-api`,
//! `berth-console` and the binary, which builds the state.

mod request;
mod state;

pub use request::{client_ip, cookie, cross_site, same_origin, SESSION_COOKIE};
pub use state::{ClientIp, WebState};
