//! LoadBalancer Services without a cloud, as k3s's service load balancer does: a Service of
//! `type: LoadBalancer` gets the InternalIPs of the Ready nodes in `status.loadBalancer.ingress`,
//! and kube-proxy on every node forwards `<node IP>:<port>` to the Service's endpoints. A Service
//! that stops being a LoadBalancer has the status cleared. [`spawn`] wires it to the shared Service and
//! Node reflectors.

use std::sync::Arc;

use navarch_api::Resource;
use navarch_api::v1::{LoadBalancerIngress, LoadBalancerStatus, Node, Service};
use navarch_client::{Action, Client, Controller, ObjectRef, Store};

use crate::run::{Reconciler, Wiring};

/// The ingress of a LoadBalancer Service: the Ready, schedulable nodes' InternalIPs, sorted.
pub fn ingress_for(nodes: &[Arc<Node>]) -> Vec<LoadBalancerIngress> {
    let mut ips: Vec<String> = nodes
        .iter()
        .filter(|n| n.meta().deletion_timestamp.is_empty())
        .filter(|n| !n.spec.as_ref().is_some_and(|s| s.unschedulable))
        .filter(|n| {
            n.status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
        })
        .filter_map(|n| {
            n.status.as_ref()?.addresses.iter().find(|a| a.r#type == "InternalIP").map(|a| a.address.clone())
        })
        .collect();
    ips.sort();
    ips.dedup();
    ips.into_iter()
        .map(|ip| LoadBalancerIngress { ip, ip_mode: Some("VIP".into()), ..Default::default() })
        .collect()
}

pub struct LoadBalancerController {
    pub client: Client,
    pub nodes: Store<Node>,
}

impl Reconciler<Service> for LoadBalancerController {
    type Error = navarch_client::Error;

    async fn reconcile(&self, svc: Arc<Service>) -> Result<Action, navarch_client::Error> {
        if !self.nodes.is_ready() {
            return Ok(Action::requeue(std::time::Duration::from_millis(500)));
        }
        let is_lb = svc.spec.as_ref().is_some_and(|s| s.r#type == "LoadBalancer");
        let wanted = if is_lb { ingress_for(&self.nodes.state()) } else { Vec::new() };
        let current = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .map(|l| l.ingress.clone())
            .unwrap_or_default();
        if current == wanted {
            return Ok(Action::await_change());
        }
        let mut u = (*svc).clone();
        u.status.get_or_insert_with(Default::default).load_balancer =
            Some(LoadBalancerStatus { ingress: wanted.clone() });
        match self.client.api::<Service>(&svc.meta().namespace).update_status(&u).await {
            Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(service = %svc.meta().name, namespace = %svc.meta().namespace, ingress = ?wanted.iter().map(|i| i.ip.as_str()).collect::<Vec<_>>(), "load balancer status");
        Ok(Action::await_change())
    }
}

/// The Services of `type: LoadBalancer`.
fn load_balancers(services: &Store<Service>) -> Vec<ObjectRef> {
    services
        .state()
        .iter()
        .filter(|s| s.spec.as_ref().is_some_and(|s| s.r#type == "LoadBalancer"))
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// Runs the LoadBalancer controller on the shared Service reflector: every LoadBalancer Service is
/// re-synced when a node changes, every Service after a node relist.
pub fn spawn(w: &mut Wiring) {
    let (services, nodes) = (&w.informers.services, &w.informers.nodes);
    let all = services.store();
    let controller = Controller::for_shared(services)
        .concurrency(w.workers)
        .watches_shared(nodes, move |_: &Node| load_balancers(&all));
    let ctx = Arc::new(LoadBalancerController { client: w.client.clone(), nodes: nodes.store() });
    w.controller(controller, ctx, std::time::Duration::from_secs(2));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_schedulable_nodes_only() {
        let node = |y: &str| -> Arc<Node> { Arc::new(serde_yaml::from_str(y).unwrap()) };
        let nodes = vec![
            node(
                "{metadata: {name: b}, status: {addresses: [{type: InternalIP, address: 10.0.0.3}], conditions: [{type: Ready, status: 'True'}]}}",
            ),
            node(
                "{metadata: {name: a}, status: {addresses: [{type: Hostname, address: a}, {type: InternalIP, address: 10.0.0.2}], conditions: [{type: Ready, status: 'True'}]}}",
            ),
            node(
                "{metadata: {name: down}, status: {addresses: [{type: InternalIP, address: 10.0.0.4}], conditions: [{type: Ready, status: Unknown}]}}",
            ),
            node(
                "{metadata: {name: cordoned}, spec: {unschedulable: true}, status: {addresses: [{type: InternalIP, address: 10.0.0.5}], conditions: [{type: Ready, status: 'True'}]}}",
            ),
        ];
        let ips: Vec<String> = ingress_for(&nodes).into_iter().map(|i| i.ip).collect();
        assert_eq!(ips, ["10.0.0.2", "10.0.0.3"]);
    }
}
