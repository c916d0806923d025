//! IPv4 networks, for the servers that admit clients by source address (`pg_hba.conf`).
//!
//! On a single-node Kubernetes whose pods live in their own network namespace, a server on the
//! host is reached from the pod network (e.g. `10.244.0.0/16`) through a veth pair, not from
//! 127.0.0.1: the harness must be told which networks to let in.

use std::net::Ipv4Addr;

/// An IPv4 network in CIDR notation (`10.244.0.0/16`; a bare address means `/32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix: u8,
}

/// Why a string is not an IPv4 CIDR.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidrError {
    /// The part before `/` is not an IPv4 address.
    #[error("`{0}` is not an IPv4 address")]
    Address(String),
    /// The part after `/` is not a number from 0 to 32.
    #[error("`{0}` is not a prefix length (0..=32)")]
    Prefix(String),
    /// Bits are set after the prefix (`10.244.1.0/16`): almost always a typo for another
    /// network, so it is refused rather than silently masked.
    #[error("`{0}` has host bits set; did you mean {1}?")]
    HostBits(String, Ipv4Cidr),
}

impl Ipv4Cidr {
    /// The network `addr/prefix`; fails if `prefix` > 32 or `addr` has bits past the prefix.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, CidrError> {
        if prefix > 32 {
            return Err(CidrError::Prefix(prefix.to_string()));
        }
        let net = Self { addr, prefix };
        let masked = Self {
            addr: Ipv4Addr::from(u32::from(addr) & net.mask()),
            prefix,
        };
        if masked != net {
            return Err(CidrError::HostBits(net.to_string(), masked));
        }
        Ok(net)
    }

    /// The one-address network `addr/32`.
    pub fn host(addr: Ipv4Addr) -> Self {
        Self { addr, prefix: 32 }
    }

    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| CidrError::Address(addr.to_owned()))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| CidrError::Prefix(prefix.to_owned()))?;
        Self::new(addr, prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_matches() {
        let pods: Ipv4Cidr = "10.244.0.0/16".parse().unwrap();
        assert_eq!(pods.to_string(), "10.244.0.0/16");
        assert!(pods.contains(Ipv4Addr::new(10, 244, 3, 7)));
        assert!(!pods.contains(Ipv4Addr::new(10, 245, 0, 1)));
        let one: Ipv4Cidr = "10.201.0.1".parse().unwrap();
        assert_eq!(one, Ipv4Cidr::host(Ipv4Addr::new(10, 201, 0, 1)));
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(203, 0, 113, 9)));
    }

    #[test]
    fn refuses_what_is_not_a_network() {
        assert!(matches!(
            "10.244.0.0/33".parse::<Ipv4Cidr>(),
            Err(CidrError::Prefix(_))
        ));
        assert!(matches!(
            "10.244.0/16".parse::<Ipv4Cidr>(),
            Err(CidrError::Address(_))
        ));
        let err = "10.244.1.0/16".parse::<Ipv4Cidr>().unwrap_err();
        assert!(
            err.to_string().contains("did you mean 10.244.0.0/16"),
            "{err}"
        );
    }
}
