//! Network zones: every request is internal or external by its client
//! address. The client address is the peer's, unless the peer is a trusted
//! reverse proxy, in which case `X-Forwarded-For` is read from the right,
//! skipping trusted proxies, and the first other address is the client's.
//! Pure: no I/O.

use std::net::IpAddr;
use std::str::FromStr;

/// An address block such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `a.b.c.d/n`, `x::y/n`, or a single address (a /32 or /128).
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address block such as 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Where a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// In one of the internal networks.
    Internal,
    /// Anywhere else.
    External,
}

/// The internal networks and the trusted proxies.
#[derive(Debug, Clone)]
pub struct NetworkPolicy {
    /// Internal networks.
    pub internal: Vec<Cidr>,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
}

/// The default internal networks: loopback and the private ranges.
pub const DEFAULT_INTERNAL: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
];

impl Default for NetworkPolicy {
    fn default() -> Self {
        NetworkPolicy {
            internal: DEFAULT_INTERNAL
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl NetworkPolicy {
    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(ip))
    }

    /// The client's address: the peer's, or, behind trusted proxies, the
    /// right-most `X-Forwarded-For` entry that is not a trusted proxy.
    /// Unparsable entries stop the walk at the last trusted hop.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.trusted(peer) {
            return peer;
        }
        let mut client = peer;
        for entry in forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .rev()
        {
            match entry.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusted(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }

    /// The zone of a client address.
    pub fn zone(&self, client: IpAddr) -> Zone {
        if self.internal.iter().any(|c| c.contains(client)) {
            Zone::Internal
        } else {
            Zone::External
        }
    }
}

/// What the external-access switch allows an external client on a
/// namespace: everything when the switch is on; with it off, only pulls of
/// a public namespace. Returns the refusal message otherwise.
pub fn external_refusal(
    namespace: &str,
    switch_on: bool,
    public: bool,
    is_pull: bool,
) -> Option<String> {
    if switch_on || (public && is_pull) {
        return None;
    }
    Some(format!(
        "namespace {namespace} refuses external {}: its external-access switch is off; use the internal network",
        if is_pull { "pulls" } else { "pushes and deletes" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses() {
        let cases = [
            ("10.0.0.0/8", "10.200.3.4", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("172.16.0.0/12", "172.31.255.255", true),
            ("172.16.0.0/12", "172.32.0.0", false),
            ("127.0.0.1/32", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("fc00::/7", "fd12::1", true),
            ("fc00::/7", "fe80::1", false),
            ("::1/128", "::1", true),
            ("127.0.0.0/8", "::ffff:127.0.0.5", true),
            ("10.0.0.0/8", "::1", false),
        ];
        for (block, addr, expect) in cases {
            let c: Cidr = block.parse().unwrap();
            assert_eq!(c.contains(ip(addr)), expect, "{block} ∋ {addr}");
        }
        for bad in ["", "10.0.0.0/33", "::/129", "nope/8", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn clients_behind_trusted_proxies() {
        let p = NetworkPolicy {
            internal: vec!["10.0.0.0/8".parse().unwrap()],
            trusted_proxies: vec!["10.0.0.5/32".parse().unwrap(), "10.0.0.6".parse().unwrap()],
        };
        // Not from a proxy: the header is ignored (it could be forged).
        assert_eq!(p.client(ip("8.8.8.8"), &["10.1.1.1"]), ip("8.8.8.8"));
        // From a proxy: the right-most untrusted entry.
        assert_eq!(
            p.client(ip("10.0.0.5"), &["1.2.3.4, 9.9.9.9"]),
            ip("9.9.9.9")
        );
        assert_eq!(
            p.client(ip("10.0.0.5"), &["1.2.3.4", "10.0.0.6"]),
            ip("1.2.3.4")
        );
        // A forged left part does not help an external client.
        assert_eq!(
            p.client(ip("10.0.0.5"), &["10.9.9.9, 5.5.5.5"]),
            ip("5.5.5.5")
        );
        assert_eq!(p.client(ip("10.0.0.5"), &[]), ip("10.0.0.5"));
        assert_eq!(p.client(ip("10.0.0.5"), &["garbage"]), ip("10.0.0.5"));
        assert_eq!(p.zone(ip("10.3.3.3")), Zone::Internal);
        assert_eq!(p.zone(ip("5.5.5.5")), Zone::External);
        let d = NetworkPolicy::default();
        for internal in ["127.0.0.1", "192.168.1.1", "172.20.0.1", "::1"] {
            assert_eq!(d.zone(ip(internal)), Zone::Internal, "{internal}");
        }
        assert_eq!(d.zone(ip("203.0.113.7")), Zone::External);
    }

    #[test]
    fn the_switch_decides() {
        assert_eq!(external_refusal("a", true, false, false), None);
        assert_eq!(external_refusal("a", false, true, true), None);
        assert!(external_refusal("a", false, true, false).is_some());
        let m = external_refusal("a", false, false, true).unwrap();
        assert!(m.contains("external-access switch"), "{m}");
    }
}
