//! The one typed IPv4 CIDR (`10.96.0.0/12`) every daemon parses its ranges into: the Service range,
//! the cluster (pod) CIDR, node pod CIDRs, egress ranges. Parsing accepts a host address inside the
//! range (`10.96.0.1/12`) and keeps it; [`Ipv4Cidr::network`] masks it, [`Ipv4Cidr::is_network`]
//! tells whether it was the network address itself (callers that require one say so in their error).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 address with a prefix length, as written: `10.244.1.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    len: u8,
}

/// Why a string is not an IPv4 CIDR; the message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not a CIDR like 10.96.0.0/12 (address/prefix length)")]
    Shape(String),
    #[error("{0:?}: only IPv4 ranges are supported")]
    NotIpv4(String),
    #[error("{0:?}: the prefix length must be 0..=32")]
    PrefixLength(String),
}

impl Ipv4Cidr {
    /// A CIDR from an address and a prefix length (`None` when `len > 32`).
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Ipv4Cidr> {
        (len <= 32).then_some(Ipv4Cidr { addr, len })
    }

    /// The address as written (may be a host address inside the range).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The mask as a number: `/24` is `0xffff_ff00`.
    pub fn mask(&self) -> u32 {
        u32::MAX.checked_shl(32 - self.len as u32).unwrap_or(0)
    }

    /// The network address: the address with the host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The last address of the range.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !self.mask())
    }

    /// Whether the address as written is the network address.
    pub fn is_network(&self) -> bool {
        self.addr == self.network()
    }

    /// The same range written with its network address.
    pub fn trunc(&self) -> Ipv4Cidr {
        Ipv4Cidr { addr: self.network(), len: self.len }
    }

    /// How many addresses the range holds (2^(32 - len)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.len as u32)
    }

    /// Whether `ip` lies inside the range (network and broadcast included).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// Whether the two ranges share any address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// The `i`-th subnet of prefix length `len` inside this range (`None` past the end or when
    /// `len` is shorter than this range's).
    pub fn subnet(&self, len: u8, i: u64) -> Option<Ipv4Cidr> {
        if len < self.len || len > 32 || i >= 1u64 << (len - self.len) {
            return None;
        }
        let base = u64::from(u32::from(self.network())) + (i << (32 - len as u32));
        Some(Ipv4Cidr { addr: Ipv4Addr::from(base as u32), len })
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Ipv4Cidr, CidrError> {
        let (ip, len) = s.split_once('/').ok_or_else(|| CidrError::Shape(s.to_string()))?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CidrError::Shape(s.to_string()));
        }
        let addr = match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) => a,
            Ok(std::net::IpAddr::V6(_)) => return Err(CidrError::NotIpv4(s.to_string())),
            Err(_) => return Err(CidrError::Shape(s.to_string())),
        };
        let len: u8 = len.parse().map_err(|_| CidrError::PrefixLength(s.to_string()))?;
        Ipv4Cidr::new(addr, len).ok_or_else(|| CidrError::PrefixLength(s.to_string()))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl serde::Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ipv4Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        let r = c("10.96.0.0/12");
        assert_eq!((r.addr(), r.prefix_len()), (Ipv4Addr::new(10, 96, 0, 0), 12));
        assert_eq!(r.to_string(), "10.96.0.0/12");
        assert_eq!(r.broadcast(), Ipv4Addr::new(10, 111, 255, 255));
        assert_eq!(r.size(), 1 << 20);
        assert!(r.is_network());
        let h = c("10.96.0.1/12");
        assert!(!h.is_network());
        assert_eq!(h.trunc(), r);
        assert_eq!(c("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(c("1.2.3.4/32").broadcast(), Ipv4Addr::new(1, 2, 3, 4));
    }

    #[test]
    fn rejects_what_is_not_a_cidr() {
        for bad in ["10.96.0.0", "10.96/12", "10.96.0.0/", "10.96.0.0/+1", "x/8", "10.0.0.0/12/3"] {
            assert!(matches!(bad.parse::<Ipv4Cidr>(), Err(CidrError::Shape(_))), "{bad}");
        }
        assert_eq!("fd00::/64".parse::<Ipv4Cidr>(), Err(CidrError::NotIpv4("fd00::/64".into())));
        assert_eq!("10.0.0.0/33".parse::<Ipv4Cidr>(), Err(CidrError::PrefixLength("10.0.0.0/33".into())));
        assert_eq!(
            "10.0.0.0/1".parse::<Ipv4Cidr>().map(|c| c.prefix_len()),
            Ok(1),
            "short prefixes are fine here; callers bound them"
        );
    }

    #[test]
    fn contains_overlaps_subnets() {
        let pods = c("10.244.0.0/16");
        assert!(pods.contains(Ipv4Addr::new(10, 244, 255, 255)));
        assert!(!pods.contains(Ipv4Addr::new(10, 245, 0, 0)));
        assert!(pods.overlaps(&c("10.244.3.0/24")));
        assert!(c("10.0.0.0/8").overlaps(&pods));
        assert!(!pods.overlaps(&c("10.96.0.0/12")));
        assert_eq!(pods.subnet(24, 0), Some(c("10.244.0.0/24")));
        assert_eq!(pods.subnet(24, 255), Some(c("10.244.255.0/24")));
        assert_eq!(pods.subnet(24, 256), None);
        assert_eq!(pods.subnet(8, 0), None);
    }

    #[test]
    fn serde_round_trip() {
        let v: Ipv4Cidr = serde_yaml::from_str("10.96.0.0/12").unwrap();
        assert_eq!(serde_yaml::to_string(&v).unwrap().trim(), "10.96.0.0/12");
        let e = serde_yaml::from_str::<Ipv4Cidr>("10.96/12").unwrap_err().to_string();
        assert!(e.contains("is not a CIDR"), "{e}");
    }
}
