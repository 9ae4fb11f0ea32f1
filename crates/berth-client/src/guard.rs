//! What the client trusts of a registry, and how far: credentials go
//! only to its own origin, redirects are checked at every hop, and answers
//! read whole are bounded.

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Url;

use crate::error::{chain, ClientError, Result};
use crate::wire::content_length;

/// Most bytes of an error answer read for its message.
pub(crate) const MAX_ERROR_BYTES: usize = 64 << 10;
/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

/// An answer's body of at most `limit` bytes: a registry's answers are
/// read whole only where they are small by nature (manifests, lists,
/// tokens), and one that sends more is refused, never buffered.
pub(crate) async fn read_bounded(r: reqwest::Response, limit: usize, what: &str) -> Result<Bytes> {
    let too_large = || {
        ClientError::Protocol(format!(
            "{what} of more than {limit} bytes (the most this client reads)"
        ))
    };
    if content_length(r.headers()).is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut out = bytes::BytesMut::new();
    let mut body = r.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ClientError::Transport(chain(&e)))?;
        if out.len() + chunk.len() > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// At most the first `limit` bytes of an answer, as text (lossy): enough
/// for an error message, never the whole of a large body.
pub(crate) async fn read_prefix(r: reqwest::Response, limit: usize) -> String {
    let mut out = Vec::new();
    let mut body = r.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        let room = limit - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether two URLs have the same origin (scheme, host, port).
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether a host is a loopback, private or link-local address (given as
/// an address, or `localhost`): somewhere a remote on the internet must
/// not send Berth.
fn internal_host(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            a.is_loopback() || a.is_private() || a.is_link_local() || a.is_unspecified()
        }
        Ok(std::net::IpAddr::V6(a)) => {
            let first = a.segments()[0];
            a.is_loopback()
                || a.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_private() || v4.is_link_local())
        }
        Err(_) => {
            let d = host.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

/// Redirects are re-checked at every hop: never more than
/// [`MAX_REDIRECTS`], never from HTTPS to plain HTTP, and never to a
/// loopback, private or link-local address unless the registry itself is
/// on one (a registry on the internet cannot point Berth inside its
/// network). reqwest drops `Authorization` on a redirect to another host.
pub(crate) fn redirect_policy(base: Url) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let from = attempt.previous().last().cloned();
        let to = attempt.url().clone();
        let to = &to;
        if to.scheme() != "https" && to.scheme() != "http" {
            return attempt.error(format!("a redirect to {to}: not HTTP"));
        }
        if from.as_ref().is_some_and(|f| f.scheme() == "https") && to.scheme() != "https" {
            return attempt.error(format!(
                "a redirect from HTTPS to plain HTTP ({to}) refused"
            ));
        }
        if internal_host(to) && !internal_host(&base) {
            return attempt.error(format!(
                "a redirect to an internal address ({to}) from a registry that is not on one refused"
            ));
        }
        attempt.follow()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_internal_hosts() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(
            &u("https://a.example/v2/x"),
            &u("https://A.example:443/")
        ));
        assert!(!same_origin(
            &u("https://a.example/"),
            &u("http://a.example/")
        ));
        assert!(!same_origin(
            &u("https://a.example/"),
            &u("https://a.example:8443/")
        ));
        assert!(!same_origin(
            &u("https://a.example/"),
            &u("https://b.example/")
        ));
        for internal in [
            "http://127.0.0.1/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:192.168.0.1]/",
            "http://localhost:5000/",
        ] {
            assert!(internal_host(&u(internal)), "{internal}");
        }
        for public in [
            "https://registry-1.docker.io/",
            "http://8.8.8.8/",
            "https://[2606:4700::1]/",
        ] {
            assert!(!internal_host(&u(public)), "{public}");
        }
    }
}
