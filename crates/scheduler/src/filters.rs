//! Filters: can this pod run on this node? Each returns kube-scheduler's reason when it cannot, so the
//! unschedulable message reads like Kubernetes' (`0/3 nodes are available: 2 Insufficient cpu, ...`).

use navarch_api::v1::{Pod, Taint, Toleration};

use crate::cycle::Cycle;
use crate::interpod;
use crate::node_info::NodeInfo;
use crate::resources::Resources;
use crate::volumes;

/// Every reason `node` cannot take the cycle's pod (empty: it fits).
pub fn filter(cycle: &Cycle, node: &NodeInfo) -> Vec<String> {
    let (pod, req, vols) = (cycle.pod, &cycle.req, cycle.vols);
    let mut reasons = Vec::new();
    if node.unschedulable && !tolerates_unschedulable(pod) {
        reasons.push("node(s) were unschedulable".to_string());
    }
    if !node.ready {
        reasons.push("node(s) were not ready".to_string());
    }
    reasons.extend(fit_resources(req, node));
    if !matches_node_selector_and_affinity(pod, node) {
        reasons.push("node(s) didn't match Pod's node affinity/selector".to_string());
    }
    if let Some(t) = untolerated_taint(pod, &node.taints) {
        reasons.push(format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value));
    }
    if !host_ports_free(pod, node) {
        reasons.push("node(s) didn't have free ports for the requested pod ports".to_string());
    }
    reasons.extend(crate::interpod::filter(cycle, node).map(String::from));
    reasons.extend(crate::spread::filter(cycle, node).map(String::from));
    if let Some(v) = vols {
        reasons.extend(v.reasons(&node.node).into_iter().map(String::from));
    }
    reasons
}

/// Whether evicting pods could make the node fit: Kubernetes' preemption skips nodes whose failure is
/// UnschedulableAndUnresolvable; only resources, host ports, anti-affinity, topology spread skew and
/// ReadWriteOncePod conflicts are `Unschedulable`.
pub fn preemption_might_help(reasons: &[String]) -> bool {
    reasons.iter().all(|r| {
        r.starts_with("Insufficient ")
            || r == "Too many pods"
            || r == "node(s) didn't have free ports for the requested pod ports"
            || r == interpod::REASON_ANTI_AFFINITY
            || r == interpod::REASON_EXISTING_ANTI_AFFINITY
            || r == volumes::REASON_RWOP_CONFLICT
            || r == crate::spread::REASON_CONSTRAINTS
    })
}

fn tolerates_unschedulable(pod: &Pod) -> bool {
    tolerations(pod).iter().any(|t| {
        tolerates(
            t,
            &Taint {
                key: navarch_api::taints::UNSCHEDULABLE.into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            },
        )
    })
}

pub fn fit_resources(req: &Resources, node: &NodeInfo) -> Vec<String> {
    let (a, used) = (&node.allocatable, &node.requested);
    let mut r = Vec::new();
    if used.pods + 1 > a.pods {
        r.push("Too many pods".to_string());
    }
    if req.milli_cpu > 0 && used.milli_cpu + req.milli_cpu > a.milli_cpu {
        r.push("Insufficient cpu".to_string());
    }
    if req.memory > 0 && used.memory + req.memory > a.memory {
        r.push("Insufficient memory".to_string());
    }
    if req.ephemeral_storage > 0 && used.ephemeral_storage + req.ephemeral_storage > a.ephemeral_storage {
        r.push("Insufficient ephemeral-storage".to_string());
    }
    r
}

pub use navarch_api::node_affinity::term_matches;

pub fn matches_node_selector_and_affinity(pod: &Pod, node: &NodeInfo) -> bool {
    pod.spec.as_ref().is_none_or(|spec| navarch_api::node_affinity::matches_node(spec, &node.node))
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec.as_ref().map(|s| s.tolerations.as_slice()).unwrap_or_default()
}

pub use navarch_api::taints::tolerates;

/// The first NoSchedule/NoExecute taint the pod does not tolerate.
pub fn untolerated_taint<'a>(pod: &Pod, taints: &'a [Taint]) -> Option<&'a Taint> {
    navarch_api::taints::untolerated(tolerations(pod), taints, |t| {
        t.effect == "NoSchedule" || t.effect == "NoExecute"
    })
}

/// (protocol, hostIP, hostPort) the pod wants.
pub fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter())
        .flat_map(|c| c.ports.iter())
        .filter(|p| p.host_port > 0)
        .map(|p| {
            let proto = if p.protocol.is_empty() { "TCP".to_string() } else { p.protocol.clone() };
            let ip = if p.host_ip.is_empty() { "0.0.0.0".to_string() } else { p.host_ip.clone() };
            (proto, ip, p.host_port)
        })
        .collect()
}

fn host_ports_free(pod: &Pod, node: &NodeInfo) -> bool {
    let wanted = host_ports(pod);
    if wanted.is_empty() {
        return true;
    }
    let used: Vec<(String, String, i32)> = node.pods.values().flat_map(|p| host_ports(p)).collect();
    !wanted.iter().any(|(proto, ip, port)| {
        used.iter().any(|(up, uip, uport)| {
            up == proto && uport == port && (ip == "0.0.0.0" || uip == "0.0.0.0" || ip == uip)
        })
    })
}
