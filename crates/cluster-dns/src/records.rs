//! The records of the cluster domain, computed per query from the Services and Endpoints in memory
//! ([`ClusterView`]): [`answer`] is a pure function of that view and the question.
//!
//! Following Kubernetes' DNS specification (schema 1.1.0):
//! * `<svc>.<ns>.svc.<zone>`: A/AAAA of the ClusterIPs; for a headless Service (`clusterIP: None`)
//!   those of its ready endpoints (`subsets[].addresses`); CNAME to `spec.externalName` for an
//!   ExternalName Service.
//! * `<host>.<svc>.<ns>.svc.<zone>`: A of a headless Service's endpoint, by its `hostname` or, without
//!   one, its dashed IP (CoreDNS' naming).
//! * `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: SRV for each named port, targeting the Service name
//!   (ClusterIP) or each endpoint's name (headless), with the targets' addresses as additional records.
//! * PTR for ClusterIPs and for headless endpoints that have a hostname; `dns-version.<zone>` TXT;
//!   SOA and NS at the apex; `<a-b-c-d>.<ns>.pod.<zone>` A (CoreDNS' `pods insecure`).
//! * A name that does not exist is NXDOMAIN, an existing one without records of the asked type is
//!   NODATA; both carry the zone's SOA in the authority section (negative caching, RFC 2308).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use navarch_api::Resource;
use navarch_api::v1::{EndpointAddress, Endpoints, Service, ServiceSpec};
use navarch_client::{ObjectRef, Store};

use crate::names::{ClusterName, dash, parse, zone_name};

/// The version of the Kubernetes DNS schema served at `dns-version.<zone>`.
pub const SCHEMA_VERSION: &str = "1.1.0";
/// How deep CNAMEs inside the cluster domain are followed.
const MAX_CNAME_DEPTH: usize = 8;

/// What the records are computed from.
pub trait ClusterView {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>>;
    fn endpoints(&self, namespace: &str, name: &str) -> Option<Arc<Endpoints>>;
    /// Every Service (for reverse lookups and namespace existence).
    fn services(&self) -> Vec<Arc<Service>>;
}

/// The reflector stores of Services and Endpoints in all namespaces.
#[derive(Debug, Clone)]
pub struct Stores {
    pub services: Store<Service>,
    pub endpoints: Store<Endpoints>,
}

impl Stores {
    /// True once both have their first complete list.
    pub fn is_ready(&self) -> bool {
        self.services.is_ready() && self.endpoints.is_ready()
    }
}

impl ClusterView for Stores {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(&ObjectRef::new(namespace, name))
    }

    fn endpoints(&self, namespace: &str, name: &str) -> Option<Arc<Endpoints>> {
        self.endpoints.get(&ObjectRef::new(namespace, name))
    }

    fn services(&self) -> Vec<Arc<Service>> {
        self.services.state()
    }
}

/// The cluster domain and the parameters of its records.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Lower case, fully qualified (`cluster.local.`).
    pub origin: Name,
    pub ttl: u32,
}

impl Zone {
    pub fn new(domain: &str, ttl: u32) -> Zone {
        Zone { origin: zone_name(domain), ttl }
    }

    /// `relative` + the zone (`web.default.svc` → `web.default.svc.cluster.local.`).
    fn name(&self, relative: &str) -> Name {
        Name::from_ascii(relative)
            .and_then(|n| n.append_domain(&self.origin))
            .unwrap_or_else(|_| self.origin.clone())
    }

    fn ns_name(&self) -> Name {
        self.name("ns.dns")
    }

    fn record(&self, name: &Name, data: RData) -> Record {
        Record::from_rdata(name.clone(), self.ttl, data)
    }

    /// The zone's SOA (mname `ns.dns.<zone>`, like CoreDNS; the TTL is also the negative-caching TTL).
    pub fn soa(&self, serial: u32) -> Record {
        let soa = SOA::new(self.ns_name(), self.name("hostmaster"), serial, 7200, 1800, 86400, self.ttl);
        self.record(&self.origin, RData::SOA(soa))
    }
}

/// What to do with a question.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Not a name of ours: ask the upstream resolvers.
    Forward,
    /// An authoritative answer.
    Answer(Answer),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    /// The SOA, for NXDOMAIN and NODATA.
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// The last CNAME points outside the cluster domain: the target is to be resolved upstream and
    /// its records appended.
    pub chase: Option<Name>,
}

impl Answer {
    fn new(rcode: ResponseCode) -> Answer {
        Answer { rcode, answers: Vec::new(), authorities: Vec::new(), additionals: Vec::new(), chase: None }
    }
}

/// What exists at one name.
#[derive(Debug, Default)]
struct Node {
    ips: Vec<IpAddr>,
    cname: Option<Name>,
    /// SRV records with the addresses of their targets.
    srv: Vec<(SRV, Vec<IpAddr>)>,
    txt: Option<&'static str>,
    apex: bool,
}

fn spec(svc: &Service) -> Option<&ServiceSpec> {
    svc.spec.as_ref()
}

fn is_external_name(s: &ServiceSpec) -> bool {
    s.r#type == "ExternalName"
}

fn is_headless(s: &ServiceSpec) -> bool {
    s.cluster_ip == "None"
}

/// The ClusterIPs of a Service (none when headless or ExternalName).
fn cluster_ips(s: &ServiceSpec) -> Vec<IpAddr> {
    if is_external_name(s) || is_headless(s) {
        return Vec::new();
    }
    let listed: Vec<&String> =
        if s.cluster_i_ps.is_empty() { vec![&s.cluster_ip] } else { s.cluster_i_ps.iter().collect() };
    listed.into_iter().filter_map(|ip| ip.parse().ok()).collect()
}

fn protocol_of(p: &str) -> &str {
    if p.is_empty() { "TCP" } else { p }
}

/// The label of a headless Service's endpoint: its hostname, or its dashed IP.
fn endpoint_label(a: &EndpointAddress, ip: IpAddr) -> String {
    match ip {
        _ if !a.hostname.is_empty() => a.hostname.to_ascii_lowercase(),
        IpAddr::V4(v4) => dash(v4),
        IpAddr::V6(v6) => v6.segments().map(|s| format!("{s:x}")).join("-"),
    }
}

/// Ready addresses: (label, ip), sorted and deduplicated.
fn ready(eps: Option<&Endpoints>) -> Vec<(String, IpAddr)> {
    let mut out: BTreeSet<(String, IpAddr)> = BTreeSet::new();
    for s in eps.map(|e| e.subsets.as_slice()).unwrap_or_default() {
        for a in &s.addresses {
            if let Ok(ip) = a.ip.parse::<IpAddr>() {
                out.insert((endpoint_label(a, ip), ip));
            }
        }
    }
    out.into_iter().collect()
}

fn sorted(mut ips: Vec<IpAddr>) -> Vec<IpAddr> {
    ips.sort();
    ips.dedup();
    ips
}

/// The names whose records exist, with those records; `None` for a name that does not exist.
fn node(view: &impl ClusterView, zone: &Zone, name: &ClusterName) -> Option<Node> {
    let service = |ns: &str, svc: &str| view.service(ns, svc).filter(|s| s.spec.is_some());
    Some(match name {
        ClusterName::Apex => Node { apex: true, ..Node::default() },
        ClusterName::DnsVersion => Node { txt: Some(SCHEMA_VERSION), ..Node::default() },
        ClusterName::Interior => Node::default(),
        ClusterName::NameServer => Node {
            ips: service("kube-system", "kube-dns")
                .and_then(|s| spec(&s).map(cluster_ips))
                .unwrap_or_default(),
            ..Node::default()
        },
        ClusterName::Namespace { namespace } => {
            view.services().iter().any(|s| s.meta().namespace == *namespace).then(Node::default)?
        }
        ClusterName::Service { namespace, service: name } => {
            let svc = service(namespace, name)?;
            let s = spec(&svc)?;
            if is_external_name(s) {
                let mut target = Name::from_ascii(s.external_name.trim_end_matches('.')).ok()?;
                target.set_fqdn(true);
                Node { cname: Some(target), ..Node::default() }
            } else if is_headless(s) {
                let eps = view.endpoints(namespace, name);
                Node {
                    ips: sorted(ready(eps.as_deref()).into_iter().map(|(_, ip)| ip).collect()),
                    ..Node::default()
                }
            } else {
                Node { ips: cluster_ips(s), ..Node::default() }
            }
        }
        ClusterName::Endpoint { namespace, service: name, host } => {
            let svc = service(namespace, name)?;
            if !spec(&svc).is_some_and(is_headless) {
                return None;
            }
            let ips: Vec<IpAddr> = ready(view.endpoints(namespace, name).as_deref())
                .into_iter()
                .filter(|(label, _)| label == host)
                .map(|(_, ip)| ip)
                .collect();
            if ips.is_empty() {
                return None;
            }
            Node { ips, ..Node::default() }
        }
        ClusterName::SrvProtocol { namespace, service: name, protocol } => {
            let svc = service(namespace, name)?;
            let s = spec(&svc).filter(|s| !is_external_name(s))?;
            let eps = view.endpoints(namespace, name);
            let in_spec = s.ports.iter().any(|p| !p.name.is_empty() && protocol_of(&p.protocol) == protocol);
            let in_eps = is_headless(s)
                && eps
                    .iter()
                    .flat_map(|e| &e.subsets)
                    .flat_map(|s| &s.ports)
                    .any(|p| !p.name.is_empty() && protocol_of(&p.protocol) == protocol);
            (in_spec || in_eps).then(Node::default)?
        }
        ClusterName::Srv { namespace, service: name, port, protocol } => {
            let svc = service(namespace, name)?;
            let s = spec(&svc).filter(|s| !is_external_name(s))?;
            let matches = |n: &str, p: &str| n == port && protocol_of(p) == protocol;
            let in_spec = s.ports.iter().find(|p| matches(&p.name, &p.protocol));
            let service_name = zone.name(&format!("{name}.{namespace}.svc"));
            if !is_headless(s) {
                let p = in_spec?;
                let number = u16::try_from(p.port).ok()?;
                return Some(Node {
                    srv: vec![(SRV::new(0, 100, number, service_name), cluster_ips(s))],
                    ..Node::default()
                });
            }
            let eps = view.endpoints(namespace, name);
            let mut targets: BTreeSet<(String, u16, IpAddr)> = BTreeSet::new();
            let mut named = in_spec.is_some();
            for subset in eps.iter().flat_map(|e| &e.subsets) {
                for p in subset.ports.iter().filter(|p| matches(&p.name, &p.protocol)) {
                    named = true;
                    let Ok(number) = u16::try_from(p.port) else { continue };
                    for a in &subset.addresses {
                        if let Ok(ip) = a.ip.parse::<IpAddr>() {
                            targets.insert((endpoint_label(a, ip), number, ip));
                        }
                    }
                }
            }
            if !named {
                return None;
            }
            // CoreDNS' weights: equal shares of 100 among the targets.
            let weight = u16::try_from((100 / targets.len().max(1)).max(1)).unwrap_or(1);
            let srv = targets
                .into_iter()
                .map(|(label, number, ip)| {
                    let target = zone.name(&format!("{label}.{name}.{namespace}.svc"));
                    (SRV::new(0, weight, number, target), vec![ip])
                })
                .collect();
            Node { srv, ..Node::default() }
        }
        ClusterName::Pod { ip } => Node { ips: vec![IpAddr::V4(*ip)], ..Node::default() },
        ClusterName::Unknown => return None,
    })
}

fn address_records(zone: &Zone, name: &Name, ips: &[IpAddr], qtype: RecordType) -> Vec<Record> {
    ips.iter()
        .filter_map(|ip| match (ip, qtype) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(*v6))),
            _ => None,
        })
        .map(|data| zone.record(name, data))
        .collect()
}

/// `d.c.b.a.in-addr.arpa.` → a.b.c.d.
fn reverse_v4(name: &Name) -> Option<Ipv4Addr> {
    let lower = name.to_lowercase();
    let labels: Vec<&[u8]> = lower.iter().collect();
    let [d, c, b, a, b"in-addr", b"arpa"] = labels.as_slice() else { return None };
    let octet = |l: &[u8]| std::str::from_utf8(l).ok().filter(|s| !s.starts_with('+'))?.parse::<u8>().ok();
    Some(Ipv4Addr::new(octet(a)?, octet(b)?, octet(c)?, octet(d)?))
}

/// The cluster names of `ip`: Services with that ClusterIP, headless endpoints with a hostname.
fn ptr_targets(view: &impl ClusterView, zone: &Zone, ip: IpAddr) -> Vec<Name> {
    let mut out = BTreeSet::new();
    for svc in view.services() {
        let (m, Some(s)) = (svc.meta(), spec(&svc)) else { continue };
        if cluster_ips(s).contains(&ip) {
            out.insert(zone.name(&format!("{}.{}.svc", m.name, m.namespace)));
        } else if is_headless(s) {
            let eps = view.endpoints(&m.namespace, &m.name);
            for a in eps.iter().flat_map(|e| &e.subsets).flat_map(|s| &s.addresses) {
                if !a.hostname.is_empty() && a.ip.parse() == Ok(ip) {
                    out.insert(zone.name(&format!("{}.{}.{}.svc", a.hostname, m.name, m.namespace)));
                }
            }
        }
    }
    out.into_iter().collect()
}

/// The answer to `qname`/`qtype` from `view`; `serial` is the SOA serial.
pub fn answer(view: &impl ClusterView, zone: &Zone, serial: u32, qname: &Name, qtype: RecordType) -> Outcome {
    if let Some(ip) = reverse_v4(qname) {
        if qtype != RecordType::PTR {
            return Outcome::Forward;
        }
        let targets = ptr_targets(view, zone, IpAddr::V4(ip));
        if targets.is_empty() {
            return Outcome::Forward;
        }
        let mut a = Answer::new(ResponseCode::NoError);
        a.answers = targets.into_iter().map(|t| zone.record(qname, RData::PTR(PTR(t)))).collect();
        return Outcome::Answer(a);
    }
    match parse(&zone.origin, qname) {
        None => Outcome::Forward,
        Some(name) => Outcome::Answer(lookup(view, zone, serial, qname, &name, qtype, 0)),
    }
}

fn lookup(
    view: &impl ClusterView,
    zone: &Zone,
    serial: u32,
    qname: &Name,
    name: &ClusterName,
    qtype: RecordType,
    depth: usize,
) -> Answer {
    let Some(node) = node(view, zone, name) else {
        let mut a = Answer::new(ResponseCode::NXDomain);
        a.authorities.push(zone.soa(serial));
        return a;
    };
    let mut a = Answer::new(ResponseCode::NoError);
    if let Some(target) = node.cname {
        a.answers.push(zone.record(qname, RData::CNAME(CNAME(target.clone()))));
        if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
            return a;
        }
        match parse(&zone.origin, &target) {
            // A CNAME to another cluster name: follow it here.
            Some(inner) if depth < MAX_CNAME_DEPTH => {
                let rest = lookup(view, zone, serial, &target, &inner, qtype, depth + 1);
                a.rcode = rest.rcode;
                a.answers.extend(rest.answers);
                a.authorities = rest.authorities;
                a.additionals = rest.additionals;
                a.chase = rest.chase;
            }
            Some(_) => a.rcode = ResponseCode::ServFail,
            None => a.chase = Some(target),
        }
        return a;
    }
    let any = qtype == RecordType::ANY;
    a.answers.extend(address_records(zone, qname, &node.ips, qtype));
    if qtype == RecordType::SRV || any {
        for (srv, ips) in &node.srv {
            for t in [RecordType::A, RecordType::AAAA] {
                for r in address_records(zone, &srv.target, ips, t) {
                    if !a.additionals.contains(&r) {
                        a.additionals.push(r);
                    }
                }
            }
            a.answers.push(zone.record(qname, RData::SRV(srv.clone())));
        }
    }
    if let Some(txt) = node.txt.filter(|_| qtype == RecordType::TXT || any) {
        a.answers.push(zone.record(qname, RData::TXT(TXT::new(vec![txt.to_string()]))));
    }
    if node.apex {
        if qtype == RecordType::SOA || any {
            let mut soa = zone.soa(serial);
            soa.name = qname.clone();
            a.answers.push(soa);
        }
        if qtype == RecordType::NS || any {
            a.answers.push(zone.record(qname, RData::NS(NS(zone.ns_name()))));
            let kube_dns = node_ips_of_nameserver(view);
            for t in [RecordType::A, RecordType::AAAA] {
                a.additionals.extend(address_records(zone, &zone.ns_name(), &kube_dns, t));
            }
        }
    }
    if a.answers.is_empty() {
        a.additionals.clear();
        a.authorities.push(zone.soa(serial));
    }
    a
}

fn node_ips_of_nameserver(view: &impl ClusterView) -> Vec<IpAddr> {
    view.service("kube-system", "kube-dns").and_then(|s| spec(&s).map(cluster_ips)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::str::FromStr;

    use navarch_api::v1::{EndpointPort, EndpointSubset, ObjectMeta, ServicePort};

    use super::*;

    #[derive(Default)]
    struct View {
        services: BTreeMap<(String, String), Arc<Service>>,
        endpoints: BTreeMap<(String, String), Arc<Endpoints>>,
    }

    impl ClusterView for View {
        fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
            self.services.get(&(namespace.into(), name.into())).cloned()
        }
        fn endpoints(&self, namespace: &str, name: &str) -> Option<Arc<Endpoints>> {
            self.endpoints.get(&(namespace.into(), name.into())).cloned()
        }
        fn services(&self) -> Vec<Arc<Service>> {
            self.services.values().cloned().collect()
        }
    }

    fn meta(ns: &str, name: &str) -> Option<ObjectMeta> {
        Some(ObjectMeta { name: name.into(), namespace: ns.into(), ..Default::default() })
    }

    fn port(name: &str, proto: &str, port: i32) -> ServicePort {
        ServicePort { name: name.into(), protocol: proto.into(), port, ..Default::default() }
    }

    impl View {
        fn svc(&mut self, ns: &str, name: &str, spec: ServiceSpec) -> &mut Self {
            let s = Service { metadata: meta(ns, name), spec: Some(spec), ..Default::default() };
            self.services.insert((ns.into(), name.into()), Arc::new(s));
            self
        }
        /// One subset: (ip, hostname) ready, (ip) not ready, (name, proto, port).
        fn eps(
            &mut self,
            ns: &str,
            name: &str,
            ready: &[(&str, &str)],
            not_ready: &[&str],
            ports: &[(&str, &str, i32)],
        ) {
            let addr = |ip: &str, host: &str| EndpointAddress {
                ip: ip.into(),
                hostname: host.into(),
                ..Default::default()
            };
            let e = Endpoints {
                metadata: meta(ns, name),
                subsets: vec![EndpointSubset {
                    addresses: ready.iter().map(|(ip, h)| addr(ip, h)).collect(),
                    not_ready_addresses: not_ready.iter().map(|ip| addr(ip, "")).collect(),
                    ports: ports
                        .iter()
                        .map(|(n, p, port)| EndpointPort {
                            name: (*n).into(),
                            protocol: (*p).into(),
                            port: *port,
                            ..Default::default()
                        })
                        .collect(),
                }],
                ..Default::default()
            };
            self.endpoints.insert((ns.into(), name.into()), Arc::new(e));
        }
    }

    /// A Service spec with this clusterIP (`None`: headless) and ports.
    fn with_ip(ip: &str, ports: Vec<ServicePort>) -> ServiceSpec {
        ServiceSpec { cluster_ip: ip.into(), ports, ..Default::default() }
    }

    /// An ExternalName Service spec.
    fn external(name: &str) -> ServiceSpec {
        ServiceSpec { r#type: "ExternalName".into(), external_name: name.into(), ..Default::default() }
    }

    fn cluster() -> View {
        let mut v = View::default();
        let web =
            with_ip("10.96.0.20", vec![port("http", "TCP", 80), port("", "UDP", 81), port("dns", "UDP", 53)]);
        v.svc("default", "web", ServiceSpec { cluster_i_ps: vec!["10.96.0.20".into()], ..web });
        v.svc("default", "db", with_ip("None", vec![port("pg", "TCP", 5432)]));
        v.eps(
            "default",
            "db",
            &[("10.244.0.5", "db-0"), ("10.244.0.6", "db-1"), ("10.244.0.7", "")],
            &["10.244.0.9"],
            &[("pg", "TCP", 15432)],
        );
        v.svc("default", "empty", with_ip("None", vec![]));
        v.svc("default", "ext", external("db.example.com"));
        v.svc("default", "alias", external("web.default.svc.cluster.local"));
        v.svc("default", "loop", external("loop.default.svc.cluster.local"));
        v.svc("kube-system", "kube-dns", with_ip("10.96.0.10", vec![port("dns", "UDP", 53)]));
        v
    }

    fn zone() -> Zone {
        Zone::new("cluster.local", 5)
    }

    fn ask(v: &View, name: &str, t: RecordType) -> Answer {
        match answer(v, &zone(), 42, &Name::from_ascii(name).unwrap(), t) {
            Outcome::Answer(a) => a,
            Outcome::Forward => panic!("{name} {t} was forwarded"),
        }
    }

    /// Each record as text: `name TYPE rdata`.
    fn show(rs: &[Record]) -> Vec<String> {
        rs.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect()
    }

    fn is_negative(a: &Answer, rcode: ResponseCode) -> bool {
        a.rcode == rcode
            && a.answers.is_empty()
            && a.authorities.len() == 1
            && a.authorities[0].record_type() == RecordType::SOA
    }

    #[test]
    fn cluster_ip_service() {
        let v = cluster();
        let a = ask(&v, "Web.default.svc.cluster.local.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(show(&a.answers), ["Web.default.svc.cluster.local. A 10.96.0.20"]);
        assert_eq!(a.answers[0].ttl, 5);
        assert!(a.authorities.is_empty());
        // Exists, but no IPv6: NODATA.
        assert!(is_negative(
            &ask(&v, "web.default.svc.cluster.local.", RecordType::AAAA),
            ResponseCode::NoError
        ));
        let a = ask(&v, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
        assert_eq!(
            show(&a.answers),
            ["_http._tcp.web.default.svc.cluster.local. SRV 0 100 80 web.default.svc.cluster.local."]
        );
        assert_eq!(show(&a.additionals), ["web.default.svc.cluster.local. A 10.96.0.20"]);
        let a = ask(&v, "_dns._udp.web.default.svc.cluster.local.", RecordType::SRV);
        assert_eq!(
            show(&a.answers),
            ["_dns._udp.web.default.svc.cluster.local. SRV 0 100 53 web.default.svc.cluster.local."]
        );
        // The port exists with another protocol only; unnamed ports have no SRV.
        assert!(is_negative(
            &ask(&v, "_http._udp.web.default.svc.cluster.local.", RecordType::SRV),
            ResponseCode::NXDomain
        ));
        assert!(is_negative(
            &ask(&v, "_81._udp.web.default.svc.cluster.local.", RecordType::SRV),
            ResponseCode::NXDomain
        ));
        // The SRV name asked for an A: NODATA. The protocol parent: NODATA.
        assert!(is_negative(
            &ask(&v, "_http._tcp.web.default.svc.cluster.local.", RecordType::A),
            ResponseCode::NoError
        ));
        assert!(is_negative(
            &ask(&v, "_tcp.web.default.svc.cluster.local.", RecordType::SRV),
            ResponseCode::NoError
        ));
        // No endpoint names under a ClusterIP Service.
        assert!(is_negative(
            &ask(&v, "x.web.default.svc.cluster.local.", RecordType::A),
            ResponseCode::NXDomain
        ));
        let a = ask(&v, "20.0.96.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(show(&a.answers), ["20.0.96.10.in-addr.arpa. PTR web.default.svc.cluster.local."]);
    }

    #[test]
    fn headless_service() {
        let v = cluster();
        let a = ask(&v, "db.default.svc.cluster.local.", RecordType::A);
        assert_eq!(
            show(&a.answers),
            [
                "db.default.svc.cluster.local. A 10.244.0.5",
                "db.default.svc.cluster.local. A 10.244.0.6",
                "db.default.svc.cluster.local. A 10.244.0.7"
            ]
        );
        let a = ask(&v, "db-1.db.default.svc.cluster.local.", RecordType::A);
        assert_eq!(show(&a.answers), ["db-1.db.default.svc.cluster.local. A 10.244.0.6"]);
        let a = ask(&v, "10-244-0-7.db.default.svc.cluster.local.", RecordType::A);
        assert_eq!(show(&a.answers), ["10-244-0-7.db.default.svc.cluster.local. A 10.244.0.7"]);
        // Not-ready addresses are not published; a named endpoint is not also reachable by its IP.
        assert!(is_negative(
            &ask(&v, "10-244-0-9.db.default.svc.cluster.local.", RecordType::A),
            ResponseCode::NXDomain
        ));
        assert!(is_negative(
            &ask(&v, "10-244-0-5.db.default.svc.cluster.local.", RecordType::A),
            ResponseCode::NXDomain
        ));
        let a = ask(&v, "_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV);
        assert_eq!(
            show(&a.answers),
            [
                "_pg._tcp.db.default.svc.cluster.local. SRV 0 33 15432 10-244-0-7.db.default.svc.cluster.local.",
                "_pg._tcp.db.default.svc.cluster.local. SRV 0 33 15432 db-0.db.default.svc.cluster.local.",
                "_pg._tcp.db.default.svc.cluster.local. SRV 0 33 15432 db-1.db.default.svc.cluster.local."
            ]
        );
        assert_eq!(
            show(&a.additionals),
            [
                "10-244-0-7.db.default.svc.cluster.local. A 10.244.0.7",
                "db-0.db.default.svc.cluster.local. A 10.244.0.5",
                "db-1.db.default.svc.cluster.local. A 10.244.0.6"
            ]
        );
        // PTR only for endpoints with a hostname.
        let a = ask(&v, "5.0.244.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(show(&a.answers), ["5.0.244.10.in-addr.arpa. PTR db-0.db.default.svc.cluster.local."]);
        assert_eq!(
            answer(&v, &zone(), 1, &Name::from_str("7.0.244.10.in-addr.arpa.").unwrap(), RecordType::PTR),
            Outcome::Forward
        );
        // A headless Service without endpoints exists: NODATA.
        assert!(is_negative(
            &ask(&v, "empty.default.svc.cluster.local.", RecordType::A),
            ResponseCode::NoError
        ));
    }

    #[test]
    fn statefulset_pods_by_name() {
        // A StatefulSet's pods in the Endpoints of their governing headless Service, named by hostname.
        let mut v = cluster();
        v.svc("shop", "web", with_ip("None", vec![port("http", "TCP", 80)]));
        v.eps(
            "shop",
            "web",
            &[("10.244.1.10", "web-0"), ("10.244.2.11", "web-1")],
            &[],
            &[("http", "TCP", 80)],
        );
        let a = ask(&v, "web-0.web.shop.svc.cluster.local.", RecordType::A);
        assert_eq!(show(&a.answers), ["web-0.web.shop.svc.cluster.local. A 10.244.1.10"]);
        let a = ask(&v, "WEB-1.web.shop.svc.cluster.local.", RecordType::A);
        // Case-insensitive; the answer keeps the question's case.
        assert_eq!(show(&a.answers), ["WEB-1.web.shop.svc.cluster.local. A 10.244.2.11"]);
        // An ordinal that does not run has no name; another namespace's web-0 neither.
        assert!(is_negative(
            &ask(&v, "web-2.web.shop.svc.cluster.local.", RecordType::A),
            ResponseCode::NXDomain
        ));
        assert!(is_negative(
            &ask(&v, "web-0.web.default.svc.cluster.local.", RecordType::A),
            ResponseCode::NXDomain
        ));
    }

    #[test]
    fn external_name() {
        let v = cluster();
        let a = ask(&v, "ext.default.svc.cluster.local.", RecordType::A);
        assert_eq!(show(&a.answers), ["ext.default.svc.cluster.local. CNAME db.example.com."]);
        assert_eq!(a.chase, Some(Name::from_str("db.example.com.").unwrap()));
        let a = ask(&v, "ext.default.svc.cluster.local.", RecordType::CNAME);
        assert_eq!((a.answers.len(), a.chase.is_none()), (1, true));
        // A CNAME into the cluster domain is followed here.
        let a = ask(&v, "alias.default.svc.cluster.local.", RecordType::A);
        assert_eq!(
            show(&a.answers),
            [
                "alias.default.svc.cluster.local. CNAME web.default.svc.cluster.local.",
                "web.default.svc.cluster.local. A 10.96.0.20"
            ]
        );
        assert_eq!(a.chase, None);
        assert_eq!(ask(&v, "loop.default.svc.cluster.local.", RecordType::A).rcode, ResponseCode::ServFail);
        assert!(is_negative(
            &ask(&v, "_http._tcp.ext.default.svc.cluster.local.", RecordType::SRV),
            ResponseCode::NXDomain
        ));
    }

    #[test]
    fn zone_names_and_negative_answers() {
        let v = cluster();
        let a = ask(&v, "nope.default.svc.cluster.local.", RecordType::A);
        assert!(is_negative(&a, ResponseCode::NXDomain));
        assert_eq!(
            show(&a.authorities),
            ["cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5"]
        );
        assert!(is_negative(&ask(&v, "default.svc.cluster.local.", RecordType::A), ResponseCode::NoError));
        assert!(is_negative(&ask(&v, "nons.svc.cluster.local.", RecordType::A), ResponseCode::NXDomain));
        assert!(is_negative(&ask(&v, "svc.cluster.local.", RecordType::A), ResponseCode::NoError));
        assert!(is_negative(
            &ask(&v, "google.com.default.svc.cluster.local.", RecordType::A),
            ResponseCode::NXDomain
        ));
        let a = ask(&v, "dns-version.cluster.local.", RecordType::TXT);
        assert_eq!(show(&a.answers), ["dns-version.cluster.local. TXT 1.1.0"]);
        let a = ask(&v, "cluster.local.", RecordType::SOA);
        assert_eq!(a.answers[0].record_type(), RecordType::SOA);
        let a = ask(&v, "cluster.local.", RecordType::NS);
        assert_eq!(show(&a.answers), ["cluster.local. NS ns.dns.cluster.local."]);
        assert_eq!(show(&a.additionals), ["ns.dns.cluster.local. A 10.96.0.10"]);
        let a = ask(&v, "ns.dns.cluster.local.", RecordType::A);
        assert_eq!(show(&a.answers), ["ns.dns.cluster.local. A 10.96.0.10"]);
        let a = ask(&v, "10-244-3-4.any.pod.cluster.local.", RecordType::A);
        assert_eq!(show(&a.answers), ["10-244-3-4.any.pod.cluster.local. A 10.244.3.4"]);
        for name in ["example.com.", "local.", "4.3.2.1.in-addr.arpa."] {
            assert_eq!(
                answer(&v, &zone(), 1, &Name::from_str(name).unwrap(), RecordType::A),
                Outcome::Forward,
                "{name}"
            );
        }
        let a = ask(&v, "web.default.svc.cluster.local.", RecordType::ANY);
        assert_eq!(show(&a.answers), ["web.default.svc.cluster.local. A 10.96.0.20"]);
    }

    #[test]
    fn stores_are_a_view() {
        let (services, mut w) = navarch_client::store::<Service>();
        let (endpoints, mut we) = navarch_client::store::<Endpoints>();
        let stores = Stores { services, endpoints };
        assert!(!stores.is_ready());
        let v = cluster();
        w.apply(&navarch_client::Event::Init);
        for s in v.services.values() {
            w.apply(&navarch_client::Event::InitApply((**s).clone()));
        }
        w.apply(&navarch_client::Event::InitDone);
        we.apply(&navarch_client::Event::Init);
        for e in v.endpoints.values() {
            we.apply(&navarch_client::Event::InitApply((**e).clone()));
        }
        we.apply(&navarch_client::Event::InitDone);
        assert!(stores.is_ready());
        let q = |name: &str| match answer(&stores, &zone(), 1, &Name::from_str(name).unwrap(), RecordType::A)
        {
            Outcome::Answer(a) => show(&a.answers),
            Outcome::Forward => panic!(),
        };
        assert_eq!(
            q("db-0.db.default.svc.cluster.local."),
            ["db-0.db.default.svc.cluster.local. A 10.244.0.5"]
        );
        w.apply(&navarch_client::Event::Delete((*v.services[&("default".into(), "db".into())]).clone()));
        assert!(q("db-0.db.default.svc.cluster.local.").is_empty());
    }
}
