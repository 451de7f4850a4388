//! Cluster IPs and node ports of Services, allocated by the api-server as Kubernetes' does.
//!
//! * A Service that is not `ExternalName` and not headless (`clusterIP: None`) gets a cluster IP from
//!   `--service-cluster-ip-range` (default `10.96.0.0/12`): the one it asks for if that is inside the
//!   range and free, else one picked at random. Random picks never take the network address, the
//!   broadcast address or the range's first host address (`10.96.0.1`, kept for the `kubernetes`
//!   Service; it can only be given explicitly).
//! * `NodePort` and `LoadBalancer` Services get a node port from `--service-node-port-range` (default
//!   `30000-32767`) for every port whose `nodePort` is 0 (not for a `LoadBalancer` with
//!   `allocateLoadBalancerNodePorts: false`), and a `LoadBalancer` with `externalTrafficPolicy: Local`
//!   gets a `healthCheckNodePort`. Node ports are allocated per port number, whatever the protocol
//!   (Kubernetes' allocator does the same); ports of one Service with the same `port` (e.g. 53/TCP and
//!   53/UDP) share one node port.
//!
//! The allocations live in etcd, one key per allocated value, whose value names the holder
//! (`<namespace>/<name>/<uid>`):
//!
//! ```text
//! <prefix>/ranges/serviceips/<ip>              e.g. /registry/ranges/serviceips/10.96.0.10
//! <prefix>/ranges/servicenodeports/<port>      e.g. /registry/ranges/servicenodeports/30080
//! ```
//!
//! (Not under `<prefix>/services/`: that prefix holds Services only, and is what the Service watch and
//! lists read.) A key is created (`version == 0` compare) and deleted in the same etcd transaction as
//! the Service that takes or gives back the value ([`Storage::write`] with a [`Sidecar`]), so a Service
//! and its allocations are committed together or not at all: two concurrent creates can never get the
//! same value, a failed write leaks nothing, and a restart rebuilds nothing. A random pick that turns
//! out to be taken is picked again (a bounded number of times; small or crowded ranges are listed first);
//! a given value that is taken is an Invalid error, as in Kubernetes.
//!
//! At start, [`ServiceAllocator::repair`] does what Kubernetes' repair loops do: it removes allocation
//! keys that no Service holds and records values that Services hold without a key (objects stored
//! before allocation existed), logging each.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::hash::Hash;
use std::net::Ipv4Addr;

use navarch_api::Object;
use navarch_api::v1::{Service, ServiceSpec};
use rand::Rng;

use crate::codec::{self, decode_value, encode_value};
use crate::storage::{Sidecar, Storage, StorageError, Write};

/// Ranges with at most this many candidates are listed before the first pick.
const LIST_FIRST: u64 = 256;
/// Failed writes of random picks after which the allocated values are listed.
const LIST_AFTER_FAILURES: usize = 2;
/// Writes attempted when concurrent writers keep taking the values picked.
const ATTEMPTS: usize = 16;
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
        let (ip, len) = s.split_once('/').ok_or_else(invalid)?;
        let ip: std::net::IpAddr = ip.parse().map_err(|_| invalid())?;
        let std::net::IpAddr::V4(ip) = ip else {
            return Err(format!("only IPv4 ranges are supported, got {s:?}"));
        };
        if len.is_empty() || !len.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid());
        }
        let len: u8 = len.parse().map_err(|_| invalid())?;
        if len > 32 {
            return Err(invalid());
        }
        if len < MIN_PREFIX_LEN {
            return Err(format!("{s} is too large: the prefix length must be at least /{MIN_PREFIX_LEN}"));
        }
        if len > 30 {
            return Err(format!("{s} is too small: the prefix length must be at most /30"));
        }
        let mask = u32::MAX << (32 - len);
        let network = u32::from(ip) & mask;
        if network != u32::from(ip) {
            return Err(format!(
                "{s} is not a network address (did you mean {}/{len}?)",
                Ipv4Addr::from(network)
            ));
        }
        Ok(IpRange { network, len })
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

/// What a stored Service holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    pub ip: Option<Ipv4Addr>,
    pub node_ports: BTreeSet<u16>,
}

impl Holdings {
    pub fn is_empty(&self) -> bool {
        self.ip.is_none() && self.node_ports.is_empty()
    }
}

/// The cluster IP and node ports (health-check node port included) that `svc` holds.
pub fn holdings(svc: &Service) -> Holdings {
    let Some(spec) = &svc.spec else { return Holdings::default() };
    let ip = if spec.r#type == "ExternalName" { None } else { spec.cluster_ip.parse().ok() };
    let node_ports = spec
        .ports
        .iter()
        .map(|p| p.node_port)
        .chain([spec.health_check_node_port])
        .filter_map(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .collect();
    Holdings { ip, node_ports }
}

/// The value of a Service's allocation keys: `<namespace>/<name>/<uid>`.
pub fn owner(svc: &Service) -> String {
    let m = svc.metadata.as_ref();
    let field = |f: fn(&navarch_api::v1::ObjectMeta) -> &String| m.map(f).cloned().unwrap_or_default();
    format!("{}/{}/{}", field(|m| &m.namespace), field(|m| &m.name), field(|m| &m.uid))
}

fn needs_cluster_ip(s: &ServiceSpec) -> bool {
    s.r#type != "ExternalName"
}

fn needs_node_port(s: &ServiceSpec) -> bool {
    matches!(s.r#type.as_str(), "NodePort" | "LoadBalancer")
}

fn needs_health_check_node_port(s: &ServiceSpec) -> bool {
    s.r#type == "LoadBalancer" && s.external_traffic_policy == "Local"
}

fn externally_accessible(s: &ServiceSpec) -> bool {
    needs_node_port(s) || (s.r#type == "ClusterIP" && !s.external_i_ps.is_empty())
}

fn node_ports_of(s: &ServiceSpec) -> Vec<i32> {
    s.ports.iter().map(|p| p.node_port).filter(|p| *p != 0).collect()
}

/// On update, before validation (Kubernetes' `dropTypeDependentFields` and `patchAllocatedValues`):
/// values that no longer apply after a type change are cleared when the client sent them back
/// unchanged (they are released then), and allocated values the client left out are kept.
pub fn prepare_update(new: &mut Service, old: &Service) {
    let default = ServiceSpec::default();
    let old = old.spec.as_ref().unwrap_or(&default);
    let new = new.spec.get_or_insert_with(Default::default);

    // Drop what the new type does not use, unless the client changed it too (then validation speaks).
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if new.cluster_ip == old.cluster_ip && new.cluster_i_ps == old.cluster_i_ps {
            new.cluster_ip.clear();
            new.cluster_i_ps.clear();
        }
        if new.ip_families == old.ip_families {
            new.ip_families.clear();
        }
        if new.ip_family_policy == old.ip_family_policy {
            new.ip_family_policy = None;
        }
    }
    if needs_node_port(old) && !needs_node_port(new) && node_ports_of(new) == node_ports_of(old) {
        for p in &mut new.ports {
            p.node_port = 0;
        }
    }
    if needs_health_check_node_port(old)
        && !needs_health_check_node_port(new)
        && new.health_check_node_port == old.health_check_node_port
    {
        new.health_check_node_port = 0;
    }
    if old.r#type == "LoadBalancer" && new.r#type != "LoadBalancer" {
        if new.allocate_load_balancer_node_ports.is_some()
            && new.allocate_load_balancer_node_ports == old.allocate_load_balancer_node_ports
        {
            new.allocate_load_balancer_node_ports = None;
        }
        if new.load_balancer_class == old.load_balancer_class {
            new.load_balancer_class = None;
        }
    }
    if externally_accessible(old)
        && !externally_accessible(new)
        && new.external_traffic_policy == old.external_traffic_policy
    {
        new.external_traffic_policy.clear();
    }
    if old.r#type != "ExternalName" && new.r#type == "ExternalName" {
        new.internal_traffic_policy = None;
    }

    // Keep what was allocated when the client left it out.
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if new.cluster_ip.is_empty() {
            new.cluster_ip = old.cluster_ip.clone();
        }
        if new.cluster_i_ps.is_empty() {
            new.cluster_i_ps = old.cluster_i_ps.clone();
        }
        if new.ip_families.is_empty() {
            new.ip_families = old.ip_families.clone();
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        // Matched by port name; a node port the new spec uses elsewhere is not patched in.
        let new_ports: BTreeSet<i32> = node_ports_of(new).into_iter().collect();
        let by_name: BTreeMap<&str, i32> = old.ports.iter().map(|p| (p.name.as_str(), p.node_port)).collect();
        for p in new.ports.iter_mut().filter(|p| p.node_port == 0) {
            if let Some(&np) = by_name.get(p.name.as_str())
                && !new_ports.contains(&np)
            {
                p.node_port = np;
            }
        }
    }
    if needs_health_check_node_port(old)
        && needs_health_check_node_port(new)
        && new.health_check_node_port == 0
    {
        new.health_check_node_port = old.health_check_node_port;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `spec.ports[i].nodePort`
    Port(usize),
    /// `spec.healthCheckNodePort`
    HealthCheck,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Target::Port(i) => write!(f, "spec.ports[{i}].nodePort"),
            Target::HealthCheck => f.write_str("spec.healthCheckNodePort"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum IpClaim {
    Given(Ipv4Addr),
    /// Picked at random; `None` until picked.
    Random(Option<Ipv4Addr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PortClaim {
    /// The port; `None` until picked.
    port: Option<u16>,
    given: bool,
    /// Where the port goes (given: where it came from, for errors).
    targets: Vec<Target>,
}

/// What one write of a Service claims and gives back.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    ip: Option<IpClaim>,
    ports: Vec<PortClaim>,
    release: Holdings,
    /// Node ports the Service keeps or asks for by value: random picks avoid them.
    keep_ports: HashSet<u16>,
    /// Values found taken by others: random picks avoid them.
    taken_ips: HashSet<Ipv4Addr>,
    taken_ports: HashSet<u16>,
    ips_listed: bool,
    ports_listed: bool,
    failures: usize,
}

impl Plan {
    /// Nothing to claim or release: a plain write will do.
    pub fn is_empty(&self) -> bool {
        self.ip.is_none() && self.ports.is_empty() && self.release.is_empty()
    }

    /// Writes the picked values into the Service.
    fn apply(&self, svc: &mut Service) {
        let spec = svc.spec.get_or_insert_with(Default::default);
        if let Some(IpClaim::Random(Some(ip))) = &self.ip {
            spec.cluster_ip = ip.to_string();
            spec.cluster_i_ps = vec![ip.to_string()];
        }
        for c in self.ports.iter().filter(|c| !c.given) {
            let Some(port) = c.port else { continue };
            for t in &c.targets {
                match *t {
                    Target::Port(i) => spec.ports[i].node_port = port.into(),
                    Target::HealthCheck => spec.health_check_node_port = port.into(),
                }
            }
        }
    }
}

/// Why values could not be allocated.
#[derive(Debug)]
pub enum AllocError {
    /// Given values out of range or taken: `path: reason` strings, as validation errors.
    Invalid(Vec<String>),
    /// No free value is left (or concurrent writers kept taking them).
    Exhausted(String),
    Storage(StorageError),
}

impl From<StorageError> for AllocError {
    fn from(e: StorageError) -> AllocError {
        AllocError::Storage(e)
    }
}

/// What the start-up repair did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Allocation keys removed because no Service holds them.
    pub released: usize,
    /// Allocation keys written for values Services hold without one.
    pub recorded: usize,
    /// Allocation keys whose holder was corrected.
    pub corrected: usize,
}

impl Ranges {
    /// What writing `svc` (over `old` on update; both validated, `old` as stored) claims and releases.
    /// Checks the values it asks for against the ranges, and fills in what follows from the spec alone:
    /// `ipFamilies`, and the node port of a port that shares its number with one that has a node port.
    pub fn plan(&self, svc: &mut Service, old: Option<&Service>) -> Result<Plan, Vec<String>> {
        let held = old.map(holdings).unwrap_or_default();
        let spec = svc.spec.get_or_insert_with(Default::default);
        let mut errs = Vec::new();
        let mut plan = Plan::default();
        let mut kept = Holdings::default();

        if needs_cluster_ip(spec) {
            if spec.ip_families.is_empty() {
                spec.ip_families = vec!["IPv4".into()];
            }
            for (i, f) in spec.ip_families.iter().enumerate() {
                if f != "IPv4" {
                    errs.push(format!(
                        "spec.ipFamilies[{i}]: Invalid value: {f:?}: not configured on this cluster"
                    ));
                }
            }
            if spec.ip_family_policy.as_deref() == Some("RequireDualStack") {
                errs.push(
                    "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
                        .into(),
                );
            }
            if let Some(second) = spec.cluster_i_ps.get(1) {
                errs.push(format!(
                    "spec.clusterIPs[1]: Invalid value: {second:?}: this cluster is not configured for dual-stack services"
                ));
            }
            match spec.cluster_ip.as_str() {
                "None" => {}
                "" => plan.ip = Some(IpClaim::Random(None)),
                given => match given.parse::<Ipv4Addr>() {
                    Ok(ip) if held.ip == Some(ip) => kept.ip = Some(ip),
                    Ok(ip) if self.ips.contains(ip) => plan.ip = Some(IpClaim::Given(ip)),
                    _ => errs.push(format!(
                        "spec.clusterIP: Invalid value: {given:?}: provided IP is not in the valid range. The range of valid IPs is {}",
                        self.ips
                    )),
                },
            }
        }

        // Node ports asked for by value, first place each is asked for.
        let mut given: BTreeMap<u16, Target> = BTreeMap::new();
        let mut ask = |port: i32, target: Target, errs: &mut Vec<String>| {
            match u16::try_from(port).ok().filter(|p| held.node_ports.contains(p) || self.ports.contains(port)) {
                Some(p) => {
                    if target == Target::HealthCheck && given.contains_key(&p) {
                        errs.push(format!("{target}: Invalid value: {port}: provided port is already allocated"));
                    }
                    given.entry(p).or_insert(target);
                }
                None => errs.push(format!(
                    "{target}: Invalid value: {port}: provided port is not in the valid range. The range of valid ports is {}",
                    self.ports
                )),
            }
        };
        let mut random: Vec<PortClaim> = Vec::new();
        if needs_node_port(spec) {
            for (i, p) in spec.ports.iter().enumerate().filter(|(_, p)| p.node_port != 0) {
                ask(p.node_port, Target::Port(i), &mut errs);
            }
            let auto = spec.r#type == "NodePort" || spec.allocate_load_balancer_node_ports != Some(false);
            if auto {
                // Kubernetes gives ports with the same number the same node port.
                let mut by_number: BTreeMap<i32, usize> = BTreeMap::new();
                for i in 0..spec.ports.len() {
                    if spec.ports[i].node_port != 0 {
                        continue;
                    }
                    let number = spec.ports[i].port;
                    if let Some(np) = spec.ports.iter().find(|q| q.port == number && q.node_port != 0) {
                        spec.ports[i].node_port = np.node_port;
                    } else if let Some(&c) = by_number.get(&number) {
                        random[c].targets.push(Target::Port(i));
                    } else {
                        by_number.insert(number, random.len());
                        random.push(PortClaim { port: None, given: false, targets: vec![Target::Port(i)] });
                    }
                }
            }
        }
        if needs_health_check_node_port(spec) {
            match spec.health_check_node_port {
                0 => random.push(PortClaim { port: None, given: false, targets: vec![Target::HealthCheck] }),
                hc => ask(hc, Target::HealthCheck, &mut errs),
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        for (port, target) in given {
            plan.keep_ports.insert(port);
            if held.node_ports.contains(&port) {
                kept.node_ports.insert(port);
            } else {
                plan.ports.push(PortClaim { port: Some(port), given: true, targets: vec![target] });
            }
        }
        plan.ports.extend(random);
        plan.release = Holdings {
            ip: held.ip.filter(|ip| kept.ip != Some(*ip)),
            node_ports: held.node_ports.difference(&kept.node_ports).copied().collect(),
        };
        Ok(plan)
    }
}

/// Allocates Services' cluster IPs and node ports in etcd.
#[derive(Clone)]
pub struct ServiceAllocator {
    storage: Storage,
    prefix: String,
    ip_prefix: String,
    port_prefix: String,
    ips: IpRange,
    ports: PortRange,
}

impl ServiceAllocator {
    pub fn new(storage: Storage, prefix: &str, ranges: Ranges) -> ServiceAllocator {
        let prefix = prefix.trim_end_matches('/').to_string();
        ServiceAllocator {
            storage,
            ip_prefix: format!("{prefix}/ranges/serviceips/"),
            port_prefix: format!("{prefix}/ranges/servicenodeports/"),
            prefix,
            ips: ranges.ips,
            ports: ranges.ports,
        }
    }

    pub fn ranges(&self) -> Ranges {
        Ranges { ips: self.ips, ports: self.ports }
    }

    pub fn ip_key(&self, ip: Ipv4Addr) -> String {
        format!("{}{ip}", self.ip_prefix)
    }

    pub fn port_key(&self, port: u16) -> String {
        format!("{}{port}", self.port_prefix)
    }

    fn keys_of(&self, h: &Holdings) -> Vec<String> {
        h.ip.map(|ip| self.ip_key(ip))
            .into_iter()
            .chain(h.node_ports.iter().map(|p| self.port_key(*p)))
            .collect()
    }

    /// See [`Ranges::plan`].
    pub fn plan(&self, svc: &mut Service, old: Option<&Service>) -> Result<Plan, Vec<String>> {
        self.ranges().plan(svc, old)
    }

    /// The keys that deleting `svc` gives back.
    pub fn release_all(&self, svc: &Service) -> Sidecar {
        Sidecar { claim: Vec::new(), release: self.keys_of(&holdings(svc)) }
    }

    fn sidecar(&self, plan: &Plan, owner: &str) -> Sidecar {
        let mut claim = Vec::new();
        match plan.ip {
            Some(IpClaim::Given(ip)) | Some(IpClaim::Random(Some(ip))) => {
                claim.push((self.ip_key(ip), owner.as_bytes().to_vec()))
            }
            _ => {}
        }
        for c in &plan.ports {
            if let Some(p) = c.port {
                claim.push((self.port_key(p), owner.as_bytes().to_vec()));
            }
        }
        Sidecar { claim, release: self.keys_of(&plan.release) }
    }

    /// Picks values for the random claims that have none.
    async fn pick(&self, plan: &mut Plan) -> Result<(), AllocError> {
        if let Some(IpClaim::Random(None)) = plan.ip {
            if !plan.ips_listed && (self.ips.pickable() <= LIST_FIRST || plan.failures >= LIST_AFTER_FAILURES)
            {
                self.list_ips(plan).await?;
            }
            let ip = loop {
                match self.ips.pick(&plan.taken_ips) {
                    Some(ip) => break ip,
                    None if !plan.ips_listed => self.list_ips(plan).await?,
                    None => {
                        return Err(AllocError::Exhausted(format!(
                            "spec.clusterIP: Internal error: failed to allocate a serviceIP: range is full (the range of valid IPs is {})",
                            self.ips
                        )));
                    }
                }
            };
            plan.ip = Some(IpClaim::Random(Some(ip)));
        }
        for i in 0..plan.ports.len() {
            if plan.ports[i].port.is_some() {
                continue;
            }
            if !plan.ports_listed && (self.ports.size() <= LIST_FIRST || plan.failures >= LIST_AFTER_FAILURES)
            {
                self.list_ports(plan).await?;
            }
            let port = loop {
                let mut avoid = plan.taken_ports.clone();
                avoid.extend(plan.keep_ports.iter().copied());
                avoid.extend(plan.ports.iter().filter_map(|c| c.port));
                match self.ports.pick(&avoid) {
                    Some(p) => break p,
                    None if !plan.ports_listed => self.list_ports(plan).await?,
                    None => {
                        return Err(AllocError::Exhausted(format!(
                            "{}: Internal error: failed to allocate a nodePort: range is full (the range of valid ports is {})",
                            plan.ports[i].targets[0], self.ports
                        )));
                    }
                }
            };
            plan.ports[i].port = Some(port);
        }
        Ok(())
    }

    async fn list_ips(&self, plan: &mut Plan) -> Result<(), StorageError> {
        let (keys, _) = self.storage.keys_under(&self.ip_prefix, 0).await?;
        plan.taken_ips.extend(
            keys.iter().filter_map(|(k, _)| k.strip_prefix(&self.ip_prefix)?.parse::<Ipv4Addr>().ok()),
        );
        plan.ips_listed = true;
        Ok(())
    }

    async fn list_ports(&self, plan: &mut Plan) -> Result<(), StorageError> {
        let (keys, _) = self.storage.keys_under(&self.port_prefix, 0).await?;
        plan.taken_ports
            .extend(keys.iter().filter_map(|(k, _)| k.strip_prefix(&self.port_prefix)?.parse::<u16>().ok()));
        plan.ports_listed = true;
        Ok(())
    }

    /// Notes claims found taken: given ones are errors, random ones are picked again.
    fn taken(&self, plan: &mut Plan, keys: &[String]) -> Result<(), AllocError> {
        let mut errs = Vec::new();
        plan.failures += 1;
        for key in keys {
            if let Some(ip) = key.strip_prefix(&self.ip_prefix).and_then(|v| v.parse::<Ipv4Addr>().ok()) {
                match &plan.ip {
                    Some(IpClaim::Given(g)) if *g == ip => errs.push(format!(
                        "spec.clusterIP: Invalid value: {:?}: provided IP is already allocated",
                        ip.to_string()
                    )),
                    Some(IpClaim::Random(Some(r))) if *r == ip => {
                        plan.taken_ips.insert(ip);
                        plan.ip = Some(IpClaim::Random(None));
                    }
                    _ => {}
                }
            } else if let Some(port) = key.strip_prefix(&self.port_prefix).and_then(|v| v.parse::<u16>().ok())
            {
                for c in plan.ports.iter_mut().filter(|c| c.port == Some(port)) {
                    if c.given {
                        errs.push(format!(
                            "{}: Invalid value: {port}: provided port is already allocated",
                            c.targets[0]
                        ));
                    } else {
                        plan.taken_ports.insert(port);
                        c.port = None;
                    }
                }
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(AllocError::Invalid(errs)) }
    }

    /// Writes the Service in `obj` at `key` — created when `expected` is `None`, else replaced if its
    /// mod_revision is still `expected` — with the plan's claims and releases in the same transaction.
    /// Random values are picked, written into the Service, and picked again when another writer took
    /// them first. The object write's own failures (AlreadyExists, Conflict) are the inner result.
    /// `dry_run` checks the claims against etcd and writes nothing.
    pub async fn commit(
        &self,
        key: &str,
        expected: Option<i64>,
        obj: &mut Object,
        plan: &mut Plan,
        dry_run: bool,
    ) -> Result<Result<i64, StorageError>, AllocError> {
        for _ in 0..ATTEMPTS {
            self.pick(plan).await?;
            let Object::Service(svc) = obj else {
                return Err(AllocError::Storage(StorageError::NotFound(format!("{key} is not a Service"))));
            };
            plan.apply(svc);
            let side = self.sidecar(plan, &owner(svc));
            let taken = if dry_run {
                let keys: Vec<String> = side.claim.iter().map(|(k, _)| k.clone()).collect();
                let taken = self.storage.existing(&keys).await?;
                if taken.is_empty() {
                    return Ok(Ok(0));
                }
                taken
            } else {
                let value = encode_value(obj);
                let write = match expected {
                    None => Write::Create(value),
                    Some(expected) => Write::Update { expected, value },
                };
                match self.storage.write(key, write, &side).await {
                    Err(StorageError::Taken(keys)) => keys,
                    r => return Ok(r),
                }
            };
            tracing::debug!(%key, ?taken, "allocation taken by another writer; picking again");
            self.taken(plan, &taken)?;
        }
        Err(AllocError::Exhausted(
            "Internal error: failed to allocate: other writers kept taking the values picked; try again"
                .into(),
        ))
    }

    /// Kubernetes' repair loops, once: removes allocation keys that no Service holds, records values
    /// that Services hold without a key, and corrects keys naming another holder. Every change is
    /// guarded by the revisions read, so it is safe while other api-servers write.
    pub async fn repair(&self) -> Result<RepairReport, StorageError> {
        let info = navarch_api::kind_info("Service").expect("Service is a kind");
        let services = self.storage.list(&codec::kind_prefix(&self.prefix, info), None, 0, 0).await?;
        let rev = services.revision;
        // allocation key → (holder, Service key, its mod_revision)
        let mut wanted: BTreeMap<String, (String, String, i64)> = BTreeMap::new();
        for s in &services.items {
            let svc = match decode_value("Service", &s.value, s.mod_revision) {
                Ok(Object::Service(svc)) => svc,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(key = %s.key, error = %e, "repair: undecodable Service skipped");
                    continue;
                }
            };
            let holder = owner(&svc);
            let h = holdings(&svc);
            if let Some(ip) = h.ip.filter(|ip| !self.ips.contains(*ip)) {
                tracing::warn!(service = %holder, %ip, range = %self.ips,
                    "repair: cluster IP is not within the service cluster IP range; recreate the Service to move it");
            }
            for key in self.keys_of(&h) {
                if let Some((other, ..)) = wanted.get(&key) {
                    tracing::warn!(%key, first = %other, second = %holder,
                        "repair: the value is held by more than one Service");
                    continue;
                }
                wanted.insert(key, (holder.clone(), s.key.clone(), s.mod_revision));
            }
        }
        let mut report = RepairReport::default();
        for prefix in [&self.ip_prefix, &self.port_prefix] {
            let page = self.storage.list(prefix, None, rev, 0).await?;
            for a in page.items {
                let value = String::from_utf8_lossy(&a.value).into_owned();
                match wanted.remove(&a.key) {
                    None => match self.storage.delete(&a.key, a.mod_revision).await {
                        Ok(_) => {
                            tracing::info!(key = %a.key, holder = %value,
                                "repair: released an allocation no Service holds");
                            report.released += 1;
                        }
                        Err(StorageError::Conflict { .. }) => {}
                        Err(e) => return Err(e),
                    },
                    Some((holder, ..)) if holder == value => {}
                    Some((holder, ..)) => {
                        match self.storage.update(&a.key, a.mod_revision, holder.clone().into()).await {
                            Ok(_) => {
                                tracing::warn!(key = %a.key, was = %value, now = %holder,
                                "repair: corrected the holder of an allocation");
                                report.corrected += 1;
                            }
                            Err(StorageError::Conflict { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        for (key, (holder, service_key, service_rev)) in wanted {
            if self.storage.create_guarded(&key, holder.clone().into(), &service_key, service_rev).await? {
                tracing::warn!(%key, service = %holder, "repair: recorded an allocation the Service held without a key");
                report.recorded += 1;
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(spec: &str) -> Service {
        let text = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: default, uid: u1}}\nspec: {spec}\n"
        );
        let mut o = navarch_api::manifest::parse(&text, "test.yaml").unwrap().remove(0);
        crate::validation::apply_defaults(&mut o);
        let errs = crate::validation::validate(&o, None);
        assert!(errs.is_empty(), "{errs:?}");
        match o {
            Object::Service(s) => s,
            _ => unreachable!(),
        }
    }

    fn ranges() -> Ranges {
        Ranges {
            ips: IpRange::parse("10.96.0.0/16").unwrap(),
            ports: PortRange::parse("30000-32767").unwrap(),
        }
    }

    /// Plans `new` over `old` with the default ranges.
    fn planned(new: &mut Service, old: Option<&Service>) -> Result<Plan, Vec<String>> {
        ranges().plan(new, old)
    }

    fn spec(s: &Service) -> &ServiceSpec {
        s.spec.as_ref().unwrap()
    }

    #[test]
    fn plans_for_creates() {
        let mut s = svc("{ports: [{port: 80}]}");
        let p = planned(&mut s, None).unwrap();
        assert_eq!(p.ip, Some(IpClaim::Random(None)));
        assert!(p.ports.is_empty() && p.release.is_empty());
        assert_eq!(spec(&s).ip_families, ["IPv4"]);
        assert_eq!(spec(&s).ip_family_policy.as_deref(), Some("SingleStack"));

        let mut s = svc("{clusterIP: 10.96.0.1, ports: [{port: 80}]}");
        let p = planned(&mut s, None).unwrap();
        assert_eq!(
            p.ip,
            Some(IpClaim::Given("10.96.0.1".parse().unwrap())),
            "the reserved address may be given"
        );

        for ip in ["10.97.0.5", "10.96.0.0", "10.96.255.255"] {
            let mut s = svc(&format!("{{clusterIP: {ip}, ports: [{{port: 80}}]}}"));
            assert_eq!(
                planned(&mut s, None).unwrap_err(),
                [format!(
                    "spec.clusterIP: Invalid value: \"{ip}\": provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/16"
                )]
            );
        }

        let mut s = svc("{clusterIP: None}");
        let p = planned(&mut s, None).unwrap();
        assert!(p.is_empty(), "headless: nothing to allocate");
        assert_eq!(spec(&s).ip_families, ["IPv4"]);
        let mut s = svc("{type: ExternalName, externalName: example.com}");
        assert!(planned(&mut s, None).unwrap().is_empty(), "ExternalName: nothing to allocate");
        assert!(spec(&s).ip_families.is_empty());

        // NodePort: ports without a node port get one each, except that ports sharing a number share it;
        // given ones are claimed as given.
        let mut s = svc(
            "{type: NodePort, ports: [{name: a, port: 53, protocol: UDP}, {name: b, port: 53, protocol: TCP}, {name: c, port: 80, nodePort: 30080}, {name: d, port: 81}, {name: e, port: 81, protocol: UDP, nodePort: 30081}]}",
        );
        let p = planned(&mut s, None).unwrap();
        let given: Vec<(Option<u16>, Vec<Target>)> =
            p.ports.iter().filter(|c| c.given).map(|c| (c.port, c.targets.clone())).collect();
        assert_eq!(given, [(Some(30080), vec![Target::Port(2)]), (Some(30081), vec![Target::Port(4)])]);
        let random: Vec<Vec<Target>> =
            p.ports.iter().filter(|c| !c.given).map(|c| c.targets.clone()).collect();
        assert_eq!(random, [vec![Target::Port(0), Target::Port(1)]]);
        assert_eq!(spec(&s).ports[3].node_port, 30081, "port 81/TCP shares 81/UDP's node port");

        // LoadBalancer without node port allocation: only given ones; Local traffic: a health check port.
        let mut s = svc(
            "{type: LoadBalancer, allocateLoadBalancerNodePorts: false, externalTrafficPolicy: Local, ports: [{name: a, port: 80}, {name: b, port: 81, nodePort: 31000}]}",
        );
        let p = planned(&mut s, None).unwrap();
        let claims: Vec<(Option<u16>, bool, Vec<Target>)> =
            p.ports.iter().map(|c| (c.port, c.given, c.targets.clone())).collect();
        assert_eq!(
            claims,
            [(Some(31000), true, vec![Target::Port(1)]), (None, false, vec![Target::HealthCheck])]
        );

        let mut s = svc("{type: NodePort, ports: [{port: 80, nodePort: 8080}]}");
        assert_eq!(
            planned(&mut s, None).unwrap_err(),
            [
                "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"
            ]
        );
        let mut s = svc(
            "{type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 30080, ports: [{port: 80, nodePort: 30080}]}",
        );
        assert_eq!(
            planned(&mut s, None).unwrap_err(),
            ["spec.healthCheckNodePort: Invalid value: 30080: provided port is already allocated"]
        );
        let mut s = svc("{ipFamilyPolicy: RequireDualStack, ports: [{port: 80}]}");
        assert!(planned(&mut s, None).unwrap_err()[0].contains("not configured for dual-stack"));
    }

    #[test]
    fn picks_are_applied() {
        let mut s = svc(
            "{type: NodePort, ports: [{name: a, port: 53, protocol: UDP}, {name: b, port: 53}, {name: c, port: 80}]}",
        );
        let mut p = planned(&mut s, None).unwrap();
        p.ip = Some(IpClaim::Random(Some("10.96.3.4".parse().unwrap())));
        p.ports[0].port = Some(30001);
        p.ports[1].port = Some(30002);
        p.apply(&mut s);
        let sp = spec(&s);
        assert_eq!(
            (sp.cluster_ip.as_str(), sp.cluster_i_ps.as_slice()),
            ("10.96.3.4", &["10.96.3.4".to_string()][..])
        );
        let nps: Vec<i32> = sp.ports.iter().map(|p| p.node_port).collect();
        assert_eq!(nps, [30001, 30001, 30002]);
        assert_eq!(holdings(&s).node_ports, BTreeSet::from([30001, 30002]));
        assert_eq!(owner(&s), "default/s/u1");
    }

    #[test]
    fn plans_for_updates() {
        let old = svc(
            "{type: NodePort, clusterIP: 10.96.0.20, ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30081}]}",
        );

        // Unchanged (allocated values left out by the client are kept): nothing to do.
        let mut new = svc("{type: NodePort, ports: [{name: a, port: 80}, {name: b, port: 81}]}");
        prepare_update(&mut new, &old);
        assert_eq!(spec(&new).cluster_ip, "10.96.0.20");
        assert_eq!(spec(&new).ports[0].node_port, 30080);
        assert!(planned(&mut new, Some(&old)).unwrap().is_empty());

        // A changed node port: the new one claimed, the old one released.
        let mut new = old.clone();
        new.spec.as_mut().unwrap().ports[1].node_port = 30090;
        let p = planned(&mut new, Some(&old)).unwrap();
        assert_eq!(p.ports.iter().map(|c| c.port).collect::<Vec<_>>(), [Some(30090)]);
        assert_eq!(p.release, Holdings { ip: None, node_ports: BTreeSet::from([30081]) });

        // Swapping node ports between ports claims and releases nothing.
        let mut new = old.clone();
        let ports = &mut new.spec.as_mut().unwrap().ports;
        (ports[0].node_port, ports[1].node_port) = (30081, 30080);
        assert!(planned(&mut new, Some(&old)).unwrap().is_empty());

        // NodePort -> ClusterIP with the node ports sent back unchanged: cleared and released.
        let mut new = old.clone();
        new.spec.as_mut().unwrap().r#type = "ClusterIP".into();
        prepare_update(&mut new, &old);
        assert!(spec(&new).ports.iter().all(|p| p.node_port == 0));
        assert_eq!(spec(&new).external_traffic_policy, "", "only for externally accessible services");
        assert!(
            crate::validation::validate(&Object::Service(new.clone()), Some(&Object::Service(old.clone())))
                .is_empty()
        );
        let p = planned(&mut new, Some(&old)).unwrap();
        assert!(p.ip.is_none() && p.ports.is_empty());
        assert_eq!(p.release.node_ports, BTreeSet::from([30080, 30081]));

        // ClusterIP -> NodePort: node ports allocated.
        let cip = svc("{clusterIP: 10.96.0.20, ports: [{name: a, port: 80}]}");
        let mut new = cip.clone();
        new.spec.as_mut().unwrap().r#type = "NodePort".into();
        let mut o = Object::Service(new);
        crate::validation::apply_defaults(&mut o);
        let Object::Service(mut new) = o else { unreachable!() };
        prepare_update(&mut new, &cip);
        let p = planned(&mut new, Some(&cip)).unwrap();
        assert!(p.ip.is_none() && p.release.is_empty());
        assert_eq!(p.ports.len(), 1);
        assert!(!p.ports[0].given);

        // -> ExternalName: the IP is dropped and released; back: allocated again.
        let mut ext = cip.clone();
        {
            let s = ext.spec.as_mut().unwrap();
            s.r#type = "ExternalName".into();
            s.external_name = "example.com".into();
        }
        prepare_update(&mut ext, &cip);
        assert_eq!(spec(&ext).cluster_ip, "");
        assert!(spec(&ext).cluster_i_ps.is_empty() && spec(&ext).ip_families.is_empty());
        assert_eq!(spec(&ext).ip_family_policy, None);
        assert!(
            crate::validation::validate(&Object::Service(ext.clone()), Some(&Object::Service(cip.clone())))
                .is_empty()
        );
        let p = planned(&mut ext, Some(&cip)).unwrap();
        assert_eq!(p.release.ip, Some("10.96.0.20".parse().unwrap()));
        let mut back = svc("{ports: [{name: a, port: 80}]}");
        prepare_update(&mut back, &ext);
        let p = planned(&mut back, Some(&ext)).unwrap();
        assert_eq!(p.ip, Some(IpClaim::Random(None)));

        // A held IP outside a changed range stays valid.
        let narrow = Ranges { ips: IpRange::parse("10.100.0.0/24").unwrap(), ..ranges() };
        let mut same = cip.clone();
        assert!(narrow.plan(&mut same, Some(&cip)).unwrap().is_empty());
    }
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
