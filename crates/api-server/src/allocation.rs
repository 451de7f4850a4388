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
//!
//! This file owns the shared vocabulary (what a Service holds, who holds a key) and the etcd side
//! ([`ServiceAllocator`]: allocation keys, picking, committing with the Service). The rest has its own
//! file: `range` (the cluster IP and node port ranges and random picks from them), `plan` (what one
//! write of a Service claims and releases, and the update rules that decide it), `repair` (the
//! start-up repair).

mod plan;
mod range;
mod repair;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use navarch_api::Object;
use navarch_api::v1::Service;

use self::plan::IpClaim;
pub use self::plan::{Plan, prepare_update};
pub use self::range::{IpRange, PortRange, Ranges};
pub use self::repair::RepairReport;
use crate::codec::encode_value;
use crate::storage::{Sidecar, Storage, StorageError, Write};

/// Ranges with at most this many candidates are listed before the first pick.
const LIST_FIRST: u64 = 256;
/// Failed writes of random picks after which the allocated values are listed.
const LIST_AFTER_FAILURES: usize = 2;
/// Writes attempted when concurrent writers keep taking the values picked.
const ATTEMPTS: usize = 16;

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
}
