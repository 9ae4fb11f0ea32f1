//! What a request says of its sender: cookies, whether a browser sent it
//! from Berth's own pages, and the client's address behind trusted proxies.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use berth_core::zones::NetworkPolicy;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "berth_session";

/// A cookie's value.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The client's address, as the /v2 surface sees it: behind trusted
/// proxies, the address they forward (for login throttling and the audit
/// log: behind a load balancer, every client is not the balancer).
pub fn client_ip(network: &NetworkPolicy, parts: &Parts) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let forwarded: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    network.client(peer, &forwarded)
}

/// Whether a browser's request provably comes from a page of Berth's own
/// origin: `Sec-Fetch-Site: same-origin`, or (from a browser that does not
/// send that header) an `Origin` naming the host asked. A script of
/// another site, or of a sandboxed answer (whose origin is opaque), does
/// not pass, whatever cookies ride along.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match get("sec-fetch-site") {
        Some(site) => site.eq_ignore_ascii_case("same-origin"),
        None => match (get("origin"), get("host")) {
            (Some(origin), Some(host)) => {
                let origin = origin.trim();
                origin
                    .strip_prefix("https://")
                    .or_else(|| origin.strip_prefix("http://"))
                    .is_some_and(|o| o.eq_ignore_ascii_case(host.trim()))
            }
            _ => false,
        },
    }
}

/// Whether a request was sent by another site, as far as the browser says.
pub fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| {
            s.eq_ignore_ascii_case("cross-site") || s.eq_ignore_ascii_case("same-site")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; berth_session=xyz"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn same_origin_needs_the_browser_to_say_so() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "none")])));
        // An opaque (sandboxed) origin.
        assert!(!same_origin(&h(&[
            ("origin", "null"),
            ("host", "berth.example")
        ])));
        assert!(same_origin(&h(&[
            ("origin", "https://berth.example"),
            ("host", "berth.example")
        ])));
        assert!(!same_origin(&h(&[
            ("origin", "https://evil.example"),
            ("host", "berth.example")
        ])));
        // Cookies alone (curl, a script outside a browser): no proof.
        assert!(!same_origin(&h(&[("host", "berth.example")])));
        assert!(cross_site(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(!cross_site(&h(&[("sec-fetch-site", "same-origin")])));
        assert!(!cross_site(&h(&[])));
    }
}
