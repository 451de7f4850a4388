//! Node IPAM: gives every Node without a `spec.podCIDR` the lowest free subnet of the cluster CIDR
//! (`--cluster-cidr`, default 10.244.0.0/16, subnets of `--node-cidr-mask-size`, default /24), as
//! Kubernetes' node-ipam controller does. A kubelet without a configured pod CIDR waits for it.
//! [`spawn`] wires it to the shared Node reflector.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use navarch_api::v1::Node;
use navarch_api::{Ipv4Cidr, Resource};
use navarch_client::{Action, Client, Controller, Store};

use crate::run::{Reconciler, Wiring};

/// A cluster CIDR cut into node subnets.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Subnets {
    base: u32,
    prefix: u8,
    mask: u8,
}

impl Subnets {
    /// `cluster_cidr` cut into subnets of prefix length `mask`.
    pub fn new(cluster_cidr: Ipv4Cidr, mask: u8) -> Result<Subnets, String> {
        let prefix = cluster_cidr.prefix_len();
        if prefix > 30 || mask > 30 || mask < prefix {
            return Err(format!(
                "{cluster_cidr:?} with node mask /{mask}: the node mask must be between the prefix and 30",
                cluster_cidr = cluster_cidr.to_string()
            ));
        }
        Ok(Subnets { base: u32::from(cluster_cidr.network()), prefix, mask })
    }

    pub fn parse(cluster_cidr: &str, mask: u8) -> Result<Subnets, String> {
        Subnets::new(cluster_cidr.parse().map_err(|e: navarch_api::CidrError| e.to_string())?, mask)
    }

    pub fn count(&self) -> u32 {
        1u32 << (self.mask - self.prefix)
    }

    pub fn nth(&self, i: u32) -> String {
        let ip = Ipv4Addr::from(self.base + (i << (32 - self.mask as u32)));
        format!("{ip}/{}", self.mask)
    }

    /// The lowest subnet not in `used`.
    pub fn first_free(&self, used: &HashSet<String>) -> Option<String> {
        (0..self.count()).map(|i| self.nth(i)).find(|s| !used.contains(s))
    }
}

pub struct NodeIpam {
    pub client: Client,
    pub nodes: Store<Node>,
    pub subnets: Subnets,
    /// CIDRs this process handed out, so a store that has not caught up yet never leads to the
    /// same CIDR twice. (Run with one worker.)
    pub allocated: std::sync::Mutex<HashSet<String>>,
}

impl Reconciler<Node> for NodeIpam {
    type Error = navarch_client::Error;

    async fn reconcile(&self, node: Arc<Node>) -> Result<Action, navarch_client::Error> {
        if node.spec.as_ref().is_some_and(|s| !s.pod_cidr.is_empty())
            || !node.meta().deletion_timestamp.is_empty()
        {
            return Ok(Action::await_change());
        }
        if !self.nodes.is_ready() {
            return Ok(Action::requeue(std::time::Duration::from_millis(500)));
        }
        let mut used: HashSet<String> = self
            .nodes
            .state()
            .iter()
            .filter_map(|n| n.spec.as_ref().map(|s| s.pod_cidr.clone()))
            .filter(|c| !c.is_empty())
            .collect();
        used.extend(self.allocated.lock().expect("allocation lock").iter().cloned());
        let Some(cidr) = self.subnets.first_free(&used) else {
            tracing::warn!(node = %node.meta().name, "no free pod CIDR left in the cluster CIDR");
            return Ok(Action::requeue(std::time::Duration::from_secs(30)));
        };
        let mut n = (*node).clone();
        let spec = n.spec.get_or_insert_with(Default::default);
        spec.pod_cidr = cidr.clone();
        spec.pod_cid_rs = vec![cidr.clone()];
        // A conflict (stale copy, or a CIDR taken meanwhile) retries from the store.
        self.client.api::<Node>("").update(&n).await?;
        self.allocated.lock().expect("allocation lock").insert(cidr.clone());
        tracing::info!(node = %node.meta().name, %cidr, "assigned a pod CIDR");
        Ok(Action::await_change())
    }
}

/// Runs Node IPAM on the shared Node reflector, one reconcile at a time.
pub fn spawn(w: &mut Wiring, subnets: Subnets) {
    let nodes = &w.informers.nodes;
    let controller = Controller::for_shared(nodes).concurrency(1);
    let ctx = Arc::new(NodeIpam {
        client: w.client.clone(),
        nodes: nodes.store(),
        subnets,
        allocated: Default::default(),
    });
    w.controller(controller, ctx, std::time::Duration::from_secs(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_in_order_skipping_used_ones() {
        let s = Subnets::parse("10.244.0.0/16", 24).unwrap();
        assert_eq!(s.count(), 256);
        assert_eq!(s.nth(0), "10.244.0.0/24");
        assert_eq!(s.nth(255), "10.244.255.0/24");
        let used: HashSet<String> = ["10.244.0.0/24".to_string(), "10.244.2.0/24".to_string()].into();
        assert_eq!(s.first_free(&used).as_deref(), Some("10.244.1.0/24"));
        assert!(Subnets::parse("10.244.0.0/16", 8).is_err());
        assert!(Subnets::parse("nonsense", 24).is_err());
        let tiny = Subnets::parse("10.0.0.0/24", 24).unwrap();
        assert_eq!(tiny.first_free(&["10.0.0.0/24".to_string()].into()), None);
    }
}
