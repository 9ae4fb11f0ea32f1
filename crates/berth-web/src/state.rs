//! The state both web surfaces are given: the services they call
//! ([`WebState`]) and the client's address ([`ClientIp`]).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use berth_core::events::Webhooks;
use berth_core::platform::{Proxy, Remotes, Replications, Synchronizer};
use berth_core::{Auth, Collector, Management};

use crate::request::{client_ip, SESSION_COOKIE};

/// The services the management API and the console call, and how they
/// set cookies.
#[derive(Debug, Clone)]
pub struct WebState {
    /// The management service.
    pub management: Management,
    /// The garbage collector.
    pub collector: Collector,
    /// Integrity checks.
    pub integrity: berth_core::integrity::Integrity,
    /// Synchronization rules and records.
    pub sync: Synchronizer,
    /// Webhooks and their deliveries.
    pub webhooks: Webhooks,
    /// Remote registries.
    pub remotes: Remotes,
    /// Replication rules with remote registries, their runs and tasks.
    pub replications: Replications,
    /// The pull-through cache, when proxy namespaces are configured.
    pub proxy: Option<Proxy>,
    /// Logins (throttled) for Basic and the session endpoint.
    pub auth: Arc<Auth>,
    /// Trust rules of workload identity.
    pub workload: berth_core::identity::Workload,
    /// The URL clients reach Berth at, when configured.
    pub external_url: Option<String>,
    /// Console sign-in through identity providers.
    pub sign_in: berth_core::identity::SignIn,
    /// LDAP directories.
    pub ldap: berth_core::identity::Ldap,
    /// Mark the session cookie `Secure` (Berth serves TLS, or sits behind a
    /// TLS proxy).
    pub secure_cookies: bool,
    /// Internal networks and trusted proxies (whose forwarded client
    /// address login throttling keys on).
    pub network: Arc<berth_core::zones::NetworkPolicy>,
}

impl WebState {
    /// A `Set-Cookie` value for the session cookie (`max_age` 0 clears it).
    pub fn session_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let cookie = format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
            SESSION_COOKIE
        );
        HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static(""))
    }
}

/// The client's IP address.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<WebState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Infallible> {
        Ok(ClientIp(client_ip(&state.network, parts)))
    }
}
