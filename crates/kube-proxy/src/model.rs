//! What the kernel should do for a Service: one [`ServicePort`] per port of each Service with a
//! ClusterIP, with its ready endpoints resolved from the Service's Endpoints (ports matched by name,
//! as Kubernetes does). Pure: no I/O.

use std::net::Ipv4Addr;

use navarch_api::Resource;
use navarch_api::v1::{Endpoints, Service};

/// Kubernetes' default ClientIP affinity timeout (3 hours).
pub const DEFAULT_AFFINITY_SECONDS: u32 = 10800;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// The node the endpoint runs on (for externalTrafficPolicy: Local).
    pub node: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServicePort {
    /// `namespace/name/protocol/port-name-or-number`: unique, and a valid nftables name part.
    pub id: String,
    pub protocol: &'static str,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    /// Allocated node port (NodePort and LoadBalancer Services).
    pub node_port: Option<u16>,
    /// `spec.externalIPs` and `status.loadBalancer.ingress[].ip`: reached on `port` from outside.
    pub external_ips: Vec<Ipv4Addr>,
    /// ClientIP session affinity timeout.
    pub affinity_seconds: Option<u32>,
    /// externalTrafficPolicy: Local (external traffic only to endpoints on this node, source kept).
    pub external_local: bool,
    /// Ready endpoints, sorted.
    pub endpoints: Vec<Endpoint>,
}

fn protocol(p: &str) -> Option<&'static str> {
    match p {
        "" | "TCP" => Some("tcp"),
        "UDP" => Some("udp"),
        "SCTP" => Some("sctp"),
        _ => None,
    }
}

/// The service ports of `svc` that kube-proxy programs (none for headless and ExternalName
/// Services, or before the api-server allocated a ClusterIP).
pub fn service_ports(svc: &Service, endpoints: Option<&Endpoints>) -> Vec<ServicePort> {
    let Some(spec) = svc.spec.as_ref() else { return Vec::new() };
    if spec.r#type == "ExternalName" {
        return Vec::new();
    }
    let Ok(cluster_ip) = spec.cluster_ip.parse::<Ipv4Addr>() else { return Vec::new() };
    let m = svc.meta();
    let mut external_ips: Vec<Ipv4Addr> =
        spec.external_i_ps.iter().filter_map(|ip| ip.parse().ok()).collect();
    if let Some(lb) = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()) {
        external_ips.extend(lb.ingress.iter().filter_map(|i| i.ip.parse::<Ipv4Addr>().ok()));
    }
    external_ips.sort();
    external_ips.dedup();
    let affinity_seconds = (spec.session_affinity == "ClientIP").then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .filter(|t| *t > 0)
            .map(|t| t as u32)
            .unwrap_or(DEFAULT_AFFINITY_SECONDS)
    });
    let node_ports = matches!(spec.r#type.as_str(), "NodePort" | "LoadBalancer");
    spec.ports
        .iter()
        .filter_map(|p| {
            let proto = protocol(&p.protocol)?;
            let port = u16::try_from(p.port).ok().filter(|p| *p > 0)?;
            let label = if p.name.is_empty() { port.to_string() } else { p.name.clone() };
            let mut eps: Vec<Endpoint> = endpoints
                .map(|e| {
                    e.subsets
                        .iter()
                        .filter_map(|s| {
                            let ep = s
                                .ports
                                .iter()
                                .find(|ep| ep.name == p.name && protocol(&ep.protocol) == Some(proto))?;
                            let target = u16::try_from(ep.port).ok().filter(|p| *p > 0)?;
                            Some(s.addresses.iter().filter_map(move |a| {
                                Some(Endpoint {
                                    ip: a.ip.parse().ok()?,
                                    port: target,
                                    node: a.node_name.clone().unwrap_or_default(),
                                })
                            }))
                        })
                        .flatten()
                        .collect()
                })
                .unwrap_or_default();
            eps.sort();
            eps.dedup();
            Some(ServicePort {
                id: format!("{}/{}/{proto}/{label}", m.namespace, m.name),
                protocol: proto,
                cluster_ip,
                port,
                node_port: u16::try_from(p.node_port).ok().filter(|n| node_ports && *n > 0),
                external_ips: external_ips.clone(),
                affinity_seconds,
                external_local: spec.external_traffic_policy == "Local",
                endpoints: eps,
            })
        })
        .collect()
}

#[cfg(test)]
impl ServicePort {
    /// A TCP port 80 of `cluster_ip` to `endpoints`, nothing else set (tests).
    pub(crate) fn tcp80(id: impl Into<String>, cluster_ip: &str, endpoints: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            id: id.into(),
            protocol: "tcp",
            cluster_ip: cluster_ip.parse().expect("an IPv4 address"),
            port: 80,
            node_port: None,
            external_ips: vec![],
            affinity_seconds: None,
            external_local: false,
            endpoints,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(y: &str) -> Service {
        serde_yaml::from_str(y).unwrap()
    }

    fn eps(y: &str) -> Endpoints {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn ports_and_endpoints_by_name() {
        let s = svc(
            "{metadata: {name: web, namespace: default}, spec: {type: NodePort, clusterIP: 10.96.0.10, sessionAffinity: ClientIP, ports: [{name: http, port: 80, nodePort: 30080}, {name: dns, port: 53, protocol: UDP}]}}",
        );
        let e = eps(
            "{metadata: {name: web, namespace: default}, subsets: [{addresses: [{ip: 10.244.0.5, nodeName: n1}, {ip: 10.244.0.4, nodeName: n2}], notReadyAddresses: [{ip: 10.244.0.9}], ports: [{name: http, port: 9376}, {name: dns, port: 5353, protocol: UDP}]}]}",
        );
        let sp = service_ports(&s, Some(&e));
        assert_eq!(sp.len(), 2);
        assert_eq!(sp[0].id, "default/web/tcp/http");
        assert_eq!(sp[0].node_port, Some(30080));
        assert_eq!(sp[0].affinity_seconds, Some(DEFAULT_AFFINITY_SECONDS));
        let ips: Vec<String> = sp[0].endpoints.iter().map(|e| format!("{}:{}", e.ip, e.port)).collect();
        assert_eq!(ips, ["10.244.0.4:9376", "10.244.0.5:9376"], "ready only, sorted");
        assert_eq!(sp[1].protocol, "udp");
        assert_eq!(sp[1].endpoints[0].port, 5353);
    }

    #[test]
    fn nothing_for_headless_external_name_or_unallocated() {
        assert!(
            service_ports(&svc("{metadata: {name: h}, spec: {clusterIP: None, ports: [{port: 80}]}}"), None)
                .is_empty()
        );
        assert!(
            service_ports(&svc("{metadata: {name: x}, spec: {type: ExternalName, externalName: a.b}}"), None)
                .is_empty()
        );
        assert!(service_ports(&svc("{metadata: {name: n}, spec: {ports: [{port: 80}]}}"), None).is_empty());
        // An unnamed port is keyed by its number; no Endpoints: no endpoints.
        let sp = service_ports(
            &svc("{metadata: {name: n, namespace: a}, spec: {clusterIP: 10.96.0.2, ports: [{port: 80}]}}"),
            None,
        );
        assert_eq!((sp[0].id.as_str(), sp[0].endpoints.len(), sp[0].node_port), ("a/n/tcp/80", 0, None));
    }

    #[test]
    fn external_and_load_balancer_ips() {
        let s = svc(
            "{metadata: {name: lb, namespace: default}, spec: {type: LoadBalancer, clusterIP: 10.96.0.11, externalTrafficPolicy: Local, externalIPs: [192.168.50.5], ports: [{port: 80, nodePort: 31000}]}, status: {loadBalancer: {ingress: [{ip: 10.0.0.2}]}}}",
        );
        let sp = service_ports(&s, None);
        assert_eq!(
            sp[0].external_ips,
            vec!["10.0.0.2".parse::<Ipv4Addr>().unwrap(), "192.168.50.5".parse().unwrap()]
        );
        assert!(sp[0].external_local);
    }
}
