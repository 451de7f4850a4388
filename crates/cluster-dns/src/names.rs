//! The names of the cluster domain (Kubernetes' DNS specification, with CoreDNS' additions), parsed
//! from a query name. Pure: no lookups.

use std::net::Ipv4Addr;

use hickory_server::proto::rr::Name;

/// What a name under the cluster domain designates. Labels are lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterName {
    /// The cluster domain itself (SOA, NS).
    Apex,
    /// `dns-version.<zone>`: TXT with the schema version.
    DnsVersion,
    /// `svc.<zone>`, `pod.<zone>`, `dns.<zone>`: names with children and no records.
    Interior,
    /// `ns.dns.<zone>`: the name server of the SOA and NS records.
    NameServer,
    /// `<ns>.svc.<zone>` or `<ns>.pod.<zone>`.
    Namespace { namespace: String },
    /// `<svc>.<ns>.svc.<zone>`.
    Service { namespace: String, service: String },
    /// `<host>.<svc>.<ns>.svc.<zone>`: an endpoint of a headless Service, by its `hostname` or its
    /// dashed IP (`10-244-1-5`).
    Endpoint { namespace: String, service: String, host: String },
    /// `_<proto>.<svc>.<ns>.svc.<zone>`: the parent of the SRV names of that protocol.
    SrvProtocol { namespace: String, service: String, protocol: String },
    /// `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: SRV of a named port. `protocol` is `TCP`, `UDP`, `SCTP`.
    Srv { namespace: String, service: String, port: String, protocol: String },
    /// `<a-b-c-d>.<ns>.pod.<zone>`: a pod's A record (CoreDNS' `pods insecure`: the IP is not checked
    /// against pods).
    Pod { ip: Ipv4Addr },
    /// Anything else under the zone: does not exist.
    Unknown,
}

/// The domain's labels as a lower-case, fully qualified name (`cluster.local.`).
pub fn zone_name(domain: &str) -> Name {
    let mut n = Name::from_ascii(domain.trim_end_matches('.')).unwrap_or_else(|_| Name::root());
    n.set_fqdn(true);
    n.to_lowercase()
}

/// `10-244-1-5` → 10.244.1.5.
pub fn dashed_ip(label: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = label.split('-').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

/// 10.244.1.5 → `10-244-1-5`.
pub fn dash(ip: Ipv4Addr) -> String {
    ip.octets().map(|o| o.to_string()).join("-")
}

fn protocol(label: &str) -> Option<String> {
    match label {
        "_tcp" => Some("TCP".into()),
        "_udp" => Some("UDP".into()),
        "_sctp" => Some("SCTP".into()),
        _ => None,
    }
}

/// `name` relative to `zone` (both compared case-insensitively); `None` when it is not under it.
pub fn parse(zone: &Name, name: &Name) -> Option<ClusterName> {
    let name = name.to_lowercase();
    if !zone.zone_of(&name) {
        return None;
    }
    // Counted by hand: `num_labels` does not count a leading `*`.
    let own = name.iter().count() - zone.iter().count();
    let mut labels = Vec::with_capacity(own);
    for l in name.iter().take(own) {
        match std::str::from_utf8(l) {
            Ok(s) if !s.contains('.') => labels.push(s.to_string()),
            _ => return Some(ClusterName::Unknown),
        }
    }
    let l: Vec<&str> = labels.iter().map(String::as_str).collect();
    let s = |i: usize| l[i].to_string();
    Some(match l.as_slice() {
        [] => ClusterName::Apex,
        ["dns-version"] => ClusterName::DnsVersion,
        ["svc" | "pod" | "dns"] => ClusterName::Interior,
        ["ns", "dns"] => ClusterName::NameServer,
        [_, "svc" | "pod"] => ClusterName::Namespace { namespace: s(0) },
        [_, _, "svc"] => ClusterName::Service { namespace: s(1), service: s(0) },
        [p, _, _, "svc"] if p.starts_with('_') => match protocol(p) {
            Some(protocol) => ClusterName::SrvProtocol { namespace: s(2), service: s(1), protocol },
            None => ClusterName::Unknown,
        },
        [_, _, _, "svc"] => ClusterName::Endpoint { namespace: s(2), service: s(1), host: s(0) },
        [port, p, _, _, "svc"] if port.len() > 1 && port.starts_with('_') => match protocol(p) {
            Some(protocol) => {
                ClusterName::Srv { namespace: s(3), service: s(2), port: port[1..].to_string(), protocol }
            }
            None => ClusterName::Unknown,
        },
        [ip, _, "pod"] => match dashed_ip(ip) {
            Some(ip) => ClusterName::Pod { ip },
            None => ClusterName::Unknown,
        },
        _ => ClusterName::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> Option<ClusterName> {
        parse(&zone_name("cluster.local"), &Name::from_ascii(name).unwrap())
    }

    #[test]
    fn parses_the_cluster_names() {
        use ClusterName::*;
        let ns = |s: &str| s.to_string();
        assert_eq!(p("example.com."), None);
        assert_eq!(p("local."), None);
        assert_eq!(p("cluster.local."), Some(Apex));
        assert_eq!(p("Cluster.LOCAL."), Some(Apex));
        assert_eq!(p("dns-version.cluster.local."), Some(DnsVersion));
        assert_eq!(p("svc.cluster.local."), Some(Interior));
        assert_eq!(p("ns.dns.cluster.local."), Some(NameServer));
        assert_eq!(p("default.svc.cluster.local."), Some(Namespace { namespace: ns("default") }));
        assert_eq!(
            p("Web.Default.svc.cluster.local."),
            Some(Service { namespace: ns("default"), service: ns("web") })
        );
        assert_eq!(
            p("web-0.db.prod.svc.cluster.local."),
            Some(Endpoint { namespace: ns("prod"), service: ns("db"), host: ns("web-0") })
        );
        assert_eq!(
            p("_http._tcp.web.default.svc.cluster.local."),
            Some(Srv { namespace: ns("default"), service: ns("web"), port: ns("http"), protocol: ns("TCP") })
        );
        assert_eq!(
            p("_dns._UDP.kube-dns.kube-system.svc.cluster.local."),
            Some(Srv {
                namespace: ns("kube-system"),
                service: ns("kube-dns"),
                port: ns("dns"),
                protocol: ns("UDP")
            })
        );
        assert_eq!(
            p("_tcp.web.default.svc.cluster.local."),
            Some(SrvProtocol { namespace: ns("default"), service: ns("web"), protocol: ns("TCP") })
        );
        assert_eq!(p("_xyz.web.default.svc.cluster.local."), Some(Unknown));
        assert_eq!(p("_http._quic.web.default.svc.cluster.local."), Some(Unknown));
        assert_eq!(
            p("10-244-1-5.default.pod.cluster.local."),
            Some(Pod { ip: Ipv4Addr::new(10, 244, 1, 5) })
        );
        assert_eq!(p("10-244-1-256.default.pod.cluster.local."), Some(Unknown));
        // The search-path misses of a pod (`ndots:5`) are ours to deny (no Service `com`).
        assert_eq!(
            p("example.com.default.svc.cluster.local."),
            Some(Endpoint { namespace: ns("default"), service: ns("com"), host: ns("example") })
        );
        assert_eq!(p("www.example.com.default.svc.cluster.local."), Some(Unknown));
        assert_eq!(p("a.b.c.d.e.f.cluster.local."), Some(Unknown));
        assert_eq!(p("web.default.cluster.local."), Some(Unknown));
        assert_eq!(p("*.cluster.local."), Some(Unknown));
    }

    #[test]
    fn dashed_ips() {
        assert_eq!(dashed_ip("10-0-0-1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(dashed_ip("10-0-0"), None);
        assert_eq!(dashed_ip("10-0-0-+1"), None);
        assert_eq!(dash(Ipv4Addr::new(10, 244, 0, 7)), "10-244-0-7");
    }
}
