//! The syncer: turns the service ports into kernel state, fully on the first sync (one nftables
//! transaction that replaces the table, so a restarted kube-proxy never leaves a gap) and by
//! difference after that. A failed transaction makes the next sync a full one.

use std::collections::BTreeSet;
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

pub struct Proxier<K: Kernel> {
    kernel: K,
    rules: RuleConfig,
    service_cidr: String,
    applied: Option<Desired>,
    routes: Option<BTreeSet<Ipv4Addr>>,
}

impl<K: Kernel> Proxier<K> {
    pub fn new(kernel: K, rules: RuleConfig, service_cidr: String) -> Proxier<K> {
        Proxier { kernel, rules, service_cidr, applied: None, routes: None }
    }

    pub async fn sync(&mut self, ports: &[ServicePort]) -> Result<SyncOutcome, KernelError> {
        let started = Instant::now();
        let new = nft::desired(ports, &self.rules);
        let (script, full, touched) = match &self.applied {
            None => (nft::full_script(&new), true, new.size()),
            Some(old) => {
                let (s, t) = nft::diff_script(old, &new);
                (s, false, t)
            }
        };
        if !script.is_empty()
            && let Err(e) = self.kernel.nft(&script).await
        {
            self.applied = None;
            return Err(e);
        }
        let programmed = new.size();
        self.applied = Some(new);
        let wanted: BTreeSet<Ipv4Addr> = ports.iter().map(|p| p.cluster_ip).collect();
        let first = self.routes.is_none();
        let current = match &self.routes {
            Some(r) => r.clone(),
            None => {
                ensure_service_link(&self.kernel).await?;
                self.kernel.service_routes().await?
            }
        };
        let commands = route_commands(&current, &wanted, &self.service_cidr, first);
        if !commands.is_empty()
            && let Err(e) = self.kernel.ip_batch(&commands).await
        {
            self.routes = None;
            return Err(e);
        }
        self.routes = Some(wanted);
        tracing::debug!(full, touched, programmed, took = ?started.elapsed(), "synced");
        Ok(SyncOutcome { full, touched, programmed })
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
        ServicePort {
            id: format!("default/s{ip}/tcp/80"),
            protocol: "tcp",
            cluster_ip: ip.parse().unwrap(),
            port: 80,
            node_port: None,
            external_ips: vec![],
            affinity_seconds: None,
            external_local: false,
            endpoints: eps
                .iter()
                .map(|e| Endpoint { ip: e.parse().unwrap(), port: 8080, node: String::new() })
                .collect(),
        }
    }

    #[tokio::test]
    async fn full_then_partial_then_full_after_a_failure() {
        let rec: &'static Recorder = Box::leak(Box::default());
        let rules = RuleConfig { cluster_cidr: None, node_name: "n".into() };
        let mut p = Proxier::new(rec, rules, "10.96.0.0/12".into());
        let a = port("10.96.0.1", &["10.244.0.2"]);
        let out = p.sync(std::slice::from_ref(&a)).await.unwrap();
        assert!(out.full && out.programmed == out.touched);
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
        let out = p.sync(std::slice::from_ref(&a)).await.unwrap();
        assert_eq!((out.full, out.touched), (false, 0));
        assert_eq!(rec.nft.lock().unwrap().len(), n);
        // A failed transaction: the next sync is full again.
        *rec.fail_nft.lock().unwrap() = true;
        let b = port("10.96.0.2", &["10.244.0.3"]);
        assert!(p.sync(&[a.clone(), b.clone()]).await.is_err());
        assert!(p.sync(&[a, b]).await.unwrap().full);
    }
}
