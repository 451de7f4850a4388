//! The ranges Services draw from: [`IpRange`] (`--service-cluster-ip-range`, IPv4) and [`PortRange`]
//! (`--service-node-port-range`), with their parsing, membership and random picks.

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;
use std::net::Ipv4Addr;

use navarch_api::cidr::{CidrError, Ipv4Cidr};
use rand::Rng;

/// Random probes before scanning the range from a random offset.
const RANDOM_PROBES: usize = 32;
/// The largest range accepted (Kubernetes' limit: 2^20 addresses, i.e. /12 for IPv4).
const MIN_PREFIX_LEN: u8 = 12;

/// An IPv4 range of Service cluster IPs (`--service-cluster-ip-range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: u32,
    len: u8,
}

impl IpRange {
    /// Parses `10.96.0.0/16`: IPv4, a network address, between /12 and /30.
    pub fn parse(s: &str) -> Result<IpRange, String> {
        let s = s.trim();
        let invalid = || format!("invalid CIDR {s:?} (want an IPv4 network such as 10.96.0.0/16)");
        let cidr: Ipv4Cidr = s.parse().map_err(|e| match e {
            CidrError::NotIpv4(_) => format!("only IPv4 ranges are supported, got {s:?}"),
            CidrError::Shape(_) | CidrError::PrefixLength(_) => invalid(),
        })?;
        let len = cidr.prefix_len();
        if len < MIN_PREFIX_LEN {
            return Err(format!("{s} is too large: the prefix length must be at least /{MIN_PREFIX_LEN}"));
        }
        if len > 30 {
            return Err(format!("{s} is too small: the prefix length must be at most /30"));
        }
        if !cidr.is_network() {
            return Err(format!("{s} is not a network address (did you mean {}?)", cidr.trunc()));
        }
        Ok(IpRange { network: u32::from(cidr.network()), len })
    }

    fn broadcast(&self) -> u32 {
        self.network | (u32::MAX >> self.len)
    }

    /// Whether a Service may hold `ip`: inside the range, neither its network nor its broadcast address.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let v = u32::from(ip);
        v > self.network && v < self.broadcast()
    }

    /// The first host address, kept for the `kubernetes` Service: given explicitly, never picked.
    pub fn reserved(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }

    /// How many addresses random picks choose from.
    pub fn pickable(&self) -> u64 {
        u64::from(self.broadcast() - self.network) - 2
    }

    /// The `i`th address random picks choose from (`i < pickable()`).
    fn nth(&self, i: u64) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 2 + i as u32)
    }

    /// A random address not in `avoid` (never the reserved ones); `None` when there is none.
    pub fn pick(&self, avoid: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        pick(self.pickable(), |i| self.nth(i), avoid)
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.len)
    }
}

/// An inclusive range of node ports (`--service-node-port-range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// Parses `30000-32767` (first-last, inclusive) or `30000+2767` (first+offset), as Kubernetes does.
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let s = s.trim();
        let invalid = || format!("invalid port range {s:?} (want first-last, such as 30000-32767)");
        let port = |v: &str| -> Result<u16, String> {
            let v = v.trim();
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit()) {
                return Err(invalid());
            }
            v.parse::<u16>().map_err(|_| invalid())
        };
        let (first, last) = if let Some((a, b)) = s.split_once('-') {
            (port(a)?, port(b)?)
        } else if let Some((a, n)) = s.split_once('+') {
            let a = port(a)?;
            (a, a.checked_add(port(n)?).ok_or_else(invalid)?)
        } else {
            return Err(invalid());
        };
        if first == 0 || first > last {
            return Err(invalid());
        }
        Ok(PortRange { first, last })
    }

    pub fn contains(&self, port: i32) -> bool {
        (i32::from(self.first)..=i32::from(self.last)).contains(&port)
    }

    pub fn size(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }

    /// A random port not in `avoid`; `None` when there is none.
    pub fn pick(&self, avoid: &HashSet<u16>) -> Option<u16> {
        pick(self.size(), |i| self.first + i as u16, avoid)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// A random one of `n` candidates (`nth(i)`) not in `avoid`: random probes, then a scan from a random
/// offset (Kubernetes' bitmap allocator scans the same way).
fn pick<T: Eq + Hash + Copy>(n: u64, nth: impl Fn(u64) -> T, avoid: &HashSet<T>) -> Option<T> {
    if n == 0 {
        return None;
    }
    let mut rng = rand::rng();
    for _ in 0..RANDOM_PROBES {
        let c = nth(rng.random_range(0..n));
        if !avoid.contains(&c) {
            return Some(c);
        }
    }
    let start = rng.random_range(0..n);
    (0..n).map(|i| nth((start + i) % n)).find(|c| !avoid.contains(c))
}

/// The two ranges Services draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranges {
    pub ips: IpRange,
    pub ports: PortRange,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn ip_ranges() {
        let r = IpRange::parse("10.96.0.0/16").unwrap();
        assert_eq!(r.to_string(), "10.96.0.0/16");
        assert_eq!(r.reserved(), Ipv4Addr::new(10, 96, 0, 1));
        assert_eq!(r.pickable(), 65533);
        assert!(r.contains("10.96.0.1".parse().unwrap()), "the reserved address can be given");
        assert!(r.contains("10.96.255.254".parse().unwrap()));
        assert!(!r.contains("10.96.0.0".parse().unwrap()), "network address");
        assert!(!r.contains("10.96.255.255".parse().unwrap()), "broadcast address");
        assert!(!r.contains("10.97.0.1".parse().unwrap()));
        let small = IpRange::parse(" 10.100.0.0/29 ").unwrap();
        assert_eq!(small.pickable(), 5);
        assert_eq!(IpRange::parse("10.100.0.0/30").unwrap().pickable(), 1);
        assert_eq!(IpRange::parse("10.0.0.0/12").unwrap().pickable(), (1 << 20) - 3);
        for (bad, why) in [
            ("10.96.0.0", "invalid CIDR"),
            ("10.96.0.0/", "invalid CIDR"),
            ("10.96.0.0/+8", "invalid CIDR"),
            ("10.96.0.0/33", "invalid CIDR"),
            ("10.96.0.256/16", "invalid CIDR"),
            ("10.96.1.0/16", "not a network address (did you mean 10.96.0.0/16?)"),
            ("fd00::/108", "only IPv4"),
            ("10.0.0.0/8", "too large"),
            ("10.96.0.0/31", "too small"),
            ("10.96.0.0/32", "too small"),
        ] {
            let err = IpRange::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn random_ips_skip_reserved_addresses() {
        let r = IpRange::parse("10.100.0.0/29").unwrap();
        let mut seen = BTreeSet::new();
        for _ in 0..2000 {
            let ip = r.pick(&HashSet::new()).unwrap();
            assert!(r.contains(ip) && ip != r.reserved(), "{ip}");
            seen.insert(ip);
        }
        let want: BTreeSet<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(10, 100, 0, i)).collect();
        assert_eq!(seen, want, "every pickable address, only those");
        // With all but one taken, the scan finds it; with all taken, none.
        let mut avoid: HashSet<Ipv4Addr> = want.iter().copied().collect();
        avoid.remove(&Ipv4Addr::new(10, 100, 0, 4));
        for _ in 0..50 {
            assert_eq!(r.pick(&avoid), Some(Ipv4Addr::new(10, 100, 0, 4)));
        }
        avoid.insert(Ipv4Addr::new(10, 100, 0, 4));
        assert_eq!(r.pick(&avoid), None);
        let one = IpRange::parse("10.100.0.0/30").unwrap();
        assert_eq!(one.pick(&HashSet::new()), Some(Ipv4Addr::new(10, 100, 0, 2)));
    }

    #[test]
    fn port_ranges() {
        let r = PortRange::parse("30000-32767").unwrap();
        assert_eq!(r.to_string(), "30000-32767");
        assert_eq!(r.size(), 2768);
        assert!(r.contains(30000) && r.contains(32767) && !r.contains(29999) && !r.contains(32768));
        assert_eq!(PortRange::parse("30000+99").unwrap().to_string(), "30000-30099");
        assert_eq!(PortRange::parse("8080-8080").unwrap().size(), 1);
        for bad in ["", "30000", "32767-30000", "0-10", "30000-70000", "a-b", "-5", "1+65535", "1--2"] {
            assert!(PortRange::parse(bad).unwrap_err().contains("invalid port range"), "{bad}");
        }
        let tiny = PortRange::parse("40000-40002").unwrap();
        let mut seen = BTreeSet::new();
        for _ in 0..300 {
            seen.insert(tiny.pick(&HashSet::from([40001])).unwrap());
        }
        assert_eq!(seen, BTreeSet::from([40000, 40002]));
        assert_eq!(tiny.pick(&HashSet::from([40000, 40001, 40002])), None);
    }
}
