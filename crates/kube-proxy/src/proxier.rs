//! The syncer: turns the service ports into kernel state, fully on the first sync (one nftables
//! transaction that replaces the table, so a restarted kube-proxy never leaves a gap) and by
//! difference after that. A failed transaction makes the next sync a full one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Instant;

use crate::kernel::{Kernel, KernelError, ensure_service_link, route_commands};
use crate::model::ServicePort;
use crate::nft::{self, Desired, RuleConfig};

/// What one sync did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncOutcome {
    pub full: bool,
    /// Rules and map elements written or removed.
    pub touched: usize,
    /// Rules and map elements programmed after it.
    pub programmed: usize,
}

/// Service ports by Service (`namespace/name`); an empty list means the Service is gone (or has
/// nothing to program).
pub type ByService = BTreeMap<String, Vec<ServicePort>>;

pub struct Proxier<K: Kernel> {
    kernel: K,
    rules: RuleConfig,
    service_cidr: String,
    /// What is programmed, per Service; None until the first full sync succeeded.
    applied: Option<BTreeMap<String, Desired>>,
    routes: Option<BTreeSet<Ipv4Addr>>,
    /// How many applied Services hold each `@hairpin` IP (valid with `applied`).
    hairpin: BTreeMap<Ipv4Addr, usize>,
}

fn cluster_ips(ports: &[ServicePort]) -> BTreeSet<Ipv4Addr> {
    ports.iter().map(|p| p.cluster_ip).collect()
}

impl<K: Kernel> Proxier<K> {
    pub fn new(kernel: K, rules: RuleConfig, service_cidr: String) -> Proxier<K> {
        Proxier { kernel, rules, service_cidr, applied: None, routes: None, hairpin: BTreeMap::new() }
    }

    /// Whether the next sync must be a full one (first, or after a failure).
    pub fn needs_full(&self) -> bool {
        self.applied.is_none() || self.routes.is_none()
    }

    /// Programs exactly `all` (every Service), replacing the table in one transaction.
    pub async fn sync_full(&mut self, all: &ByService) -> Result<SyncOutcome, KernelError> {
        let started = Instant::now();
        let fragments: BTreeMap<String, Desired> =
            all.iter().map(|(k, ports)| (k.clone(), nft::desired(ports, &self.rules))).collect();
        let mut merged = Desired::default();
        let mut hairpin = BTreeMap::new();
        for f in fragments.values() {
            merged.chains.extend(f.chains.iter().map(|(k, v)| (k.clone(), v.clone())));
            merged.sets.extend(f.sets.iter().map(|(k, v)| (k.clone(), v.clone())));
            merged.elements.extend(f.elements.iter().map(|(k, v)| (k.clone(), v.clone())));
            for ip in &f.hairpin {
                *hairpin.entry(*ip).or_insert(0) += 1;
            }
        }
        merged.hairpin = hairpin.keys().copied().collect();
        self.applied = None;
        self.kernel.nft(&nft::full_script(&merged, &self.rules)).await?;
        self.applied = Some(fragments);
        self.hairpin = hairpin;
        let wanted: BTreeSet<Ipv4Addr> = all.values().flat_map(|p| cluster_ips(p)).collect();
        self.routes = None;
        ensure_service_link(&self.kernel).await?;
        let current = self.kernel.service_routes().await?;
        let commands = route_commands(&current, &wanted, &self.service_cidr, true);
        self.kernel.ip_batch(&commands).await?;
        self.routes = Some(wanted);
        let size = merged.size();
        tracing::debug!(took = ?started.elapsed(), size, "full sync");
        Ok(SyncOutcome { full: true, touched: size, programmed: size })
    }

    /// Programs the differences for the Services in `changed` (others stay as they are); a full
    /// sync when none succeeded yet.
    pub async fn sync_changed(&mut self, changed: &ByService) -> Result<SyncOutcome, KernelError> {
        let (Some(mut applied), Some(routes)) = (self.applied.take(), self.routes.take()) else {
            return Err(KernelError::Command { cmd: "sync".into(), message: "no full sync yet".into() });
        };
        // Until this succeeds both stay None: a failure makes the next sync a full one.
        let empty = Desired::default();
        let mut script = String::new();
        let mut touched = 0;
        let mut new_fragments = Vec::new();
        let (mut add_ips, mut del_ips) = (BTreeSet::new(), BTreeSet::new());
        // Counts change in place: if this sync fails, the next (full) one recomputes them.
        let mut hairpin_before = BTreeMap::new();
        // Services that go first, so an IP or port they free can be taken by another in the same pass.
        let order =
            changed.iter().filter(|(_, p)| p.is_empty()).chain(changed.iter().filter(|(_, p)| !p.is_empty()));
        for (key, ports) in order {
            let new = nft::desired(ports, &self.rules);
            let old = applied.get(key).unwrap_or(&empty);
            let (s, t) = nft::diff_script(old, &new);
            script.push_str(&s);
            touched += t;
            let (old_ips, new_ips): (BTreeSet<Ipv4Addr>, BTreeSet<Ipv4Addr>) = (
                old.elements
                    .keys()
                    .filter(|(m, _)| m == "cluster-ips")
                    .filter_map(|(_, ip)| ip.parse().ok())
                    .collect(),
                cluster_ips(ports),
            );
            del_ips.extend(old_ips.difference(&new_ips).copied());
            add_ips.extend(new_ips.difference(&old_ips).copied());
            for ip in old.hairpin.iter().chain(&new.hairpin) {
                hairpin_before.entry(*ip).or_insert_with(|| self.hairpin.contains_key(ip));
            }
            for ip in &old.hairpin {
                if let Some(n) = self.hairpin.get_mut(ip) {
                    *n -= 1;
                }
            }
            for ip in &new.hairpin {
                *self.hairpin.entry(*ip).or_insert(0) += 1;
            }
            new_fragments.push((key.clone(), new));
        }
        // Shared between Services: an IP goes when no Service holds it any more.
        let (mut hp_add, mut hp_del) = (BTreeSet::new(), BTreeSet::new());
        for (ip, before) in hairpin_before {
            let after = self.hairpin.get(&ip).is_some_and(|n| *n > 0);
            if !after {
                self.hairpin.remove(&ip);
            }
            match (before, after) {
                (false, true) => hp_add.insert(ip),
                (true, false) => hp_del.insert(ip),
                _ => false,
            };
        }
        touched += hp_add.len() + hp_del.len();
        script.push_str(&nft::hairpin_script(&hp_add, &hp_del));
        if !script.is_empty() {
            self.kernel.nft(&script).await?;
        }
        for (key, f) in new_fragments {
            if f == Desired::default() {
                applied.remove(&key);
            } else {
                applied.insert(key, f);
            }
        }
        let programmed = applied.values().map(Desired::size).sum::<usize>()
            - applied.values().map(|f| f.hairpin.len()).sum::<usize>()
            + self.hairpin.len();
        self.applied = Some(applied);
        let del_ips: BTreeSet<Ipv4Addr> = del_ips.difference(&add_ips).copied().collect();
        let wanted: BTreeSet<Ipv4Addr> = routes.difference(&del_ips).copied().chain(add_ips).collect();
        let commands = route_commands(&routes, &wanted, &self.service_cidr, false);
        if !commands.is_empty() {
            self.kernel.ip_batch(&commands).await?;
        }
        self.routes = Some(wanted);
        tracing::debug!(services = changed.len(), touched, "partial sync");
        Ok(SyncOutcome { full: false, touched, programmed })
    }
}

/// Removes the table and the ClusterIP routes (`--cleanup`). The `unreachable` route over the
/// Service range stays: it belongs to the node (the kubelet installs it too).
pub async fn cleanup<K: Kernel>(k: &K) -> Result<(), KernelError> {
    k.nft(&nft::cleanup_script()).await?;
    let _ = k.ip_batch(&format!("link del {}\n", crate::kernel::SERVICE_LINK)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::model::Endpoint;

    #[derive(Default)]
    struct Recorder {
        nft: Mutex<Vec<String>>,
        ip: Mutex<Vec<String>>,
        fail_nft: Mutex<bool>,
    }

    impl Kernel for &'static Recorder {
        async fn nft(&self, script: &str) -> Result<(), KernelError> {
            if std::mem::take(&mut *self.fail_nft.lock().unwrap()) {
                return Err(KernelError::Command { cmd: "nft".into(), message: "boom".into() });
            }
            self.nft.lock().unwrap().push(script.to_string());
            Ok(())
        }
        async fn ip_batch(&self, commands: &str) -> Result<(), KernelError> {
            self.ip.lock().unwrap().push(commands.to_string());
            Ok(())
        }
        async fn service_routes(&self) -> Result<BTreeSet<Ipv4Addr>, KernelError> {
            Ok(["10.96.0.99".parse().unwrap()].into())
        }
    }

    fn port(ip: &str, eps: &[&str]) -> ServicePort {
        let endpoints =
            eps.iter().map(|e| Endpoint { ip: e.parse().unwrap(), port: 8080, node: String::new() });
        ServicePort::tcp80(format!("default/s{ip}/tcp/80"), ip, endpoints.collect())
    }

    fn by_service(ports: &[ServicePort]) -> ByService {
        let mut m = ByService::new();
        for p in ports {
            m.entry(p.id.rsplitn(3, '/').last().unwrap().to_string()).or_default().push(p.clone());
        }
        m
    }

    #[tokio::test]
    async fn full_then_partial_then_full_after_a_failure() {
        let rec: &'static Recorder = Box::leak(Box::default());
        let rules = RuleConfig { cluster_cidr: None, node_name: "n".into() };
        let mut p = Proxier::new(rec, rules, "10.96.0.0/12".into());
        assert!(p.needs_full());
        let a = port("10.96.0.1", &["10.244.0.2"]);
        let out = p.sync_full(&by_service(std::slice::from_ref(&a))).await.unwrap();
        assert!(out.full && out.programmed == out.touched);
        assert!(!p.needs_full());
        assert!(
            rec.nft.lock().unwrap()[0]
                .starts_with("table ip navarch-proxy {}\ndelete table ip navarch-proxy\n")
        );
        let ip = rec.ip.lock().unwrap().join("");
        assert!(ip.contains("route replace unreachable 10.96.0.0/12"), "{ip}");
        assert!(ip.contains("route replace 10.96.0.1/32 dev navarch-svc"), "{ip}");
        assert!(ip.contains("route del 10.96.0.99/32 dev navarch-svc"), "a stale route goes: {ip}");
        // Same state: nothing written.
        let n = rec.nft.lock().unwrap().len();
        let out = p.sync_changed(&by_service(std::slice::from_ref(&a))).await.unwrap();
        assert_eq!((out.full, out.touched), (false, 0));
        assert_eq!(rec.nft.lock().unwrap().len(), n);
        // A new Service: only its part, and its route.
        let b = port("10.96.0.2", &["10.244.0.3"]);
        let out = p.sync_changed(&by_service(std::slice::from_ref(&b))).await.unwrap();
        assert!(out.touched > 0 && out.programmed > out.touched, "{out:?}");
        let last = rec.nft.lock().unwrap().last().unwrap().clone();
        assert!(!last.contains("10.96.0.1 ") && last.contains("10.96.0.2"), "{last}");
        assert!(rec.ip.lock().unwrap().last().unwrap().contains("route replace 10.96.0.2/32"));
        // b goes: its route goes.
        let gone: ByService = [(b.id.rsplitn(3, '/').last().unwrap().to_string(), vec![])].into();
        p.sync_changed(&gone).await.unwrap();
        assert!(rec.ip.lock().unwrap().last().unwrap().contains("route del 10.96.0.2/32"));
        // Two Services share a pod: its hairpin element stays until neither holds it.
        let c = port("10.96.0.3", &["10.244.0.2"]);
        p.sync_changed(&by_service(std::slice::from_ref(&c))).await.unwrap();
        assert!(!rec.nft.lock().unwrap().last().unwrap().contains("hairpin"), "already held by a");
        let gone_a: ByService = [(a.id.rsplitn(3, '/').last().unwrap().to_string(), vec![])].into();
        p.sync_changed(&gone_a).await.unwrap();
        assert!(!rec.nft.lock().unwrap().last().unwrap().contains("hairpin"), "still held by c");
        let gone_c: ByService = [(c.id.rsplitn(3, '/').last().unwrap().to_string(), vec![])].into();
        p.sync_changed(&gone_c).await.unwrap();
        let last = rec.nft.lock().unwrap().last().unwrap().clone();
        assert!(
            last.contains("delete element ip navarch-proxy hairpin { 10.244.0.2 . 10.244.0.2 }"),
            "{last}"
        );
        // A failed transaction: the next sync must be full.
        *rec.fail_nft.lock().unwrap() = true;
        assert!(p.sync_changed(&by_service(std::slice::from_ref(&b))).await.is_err());
        assert!(p.needs_full());
        assert!(p.sync_full(&by_service(&[a, b])).await.unwrap().full);
    }
}
