//! The `default/kubernetes` Service, which pods reach the api-server through, maintained as
//! kube-apiserver does (`controlplane/controller/kubernetesservice` and its Endpoints reconciler):
//!
//! * the Service: selector-less, `type: ClusterIP`, the first address of `--service-cluster-ip-range`
//!   (10.96.0.1, which the api-server's certificate names), one port `https` 443/TCP → the api-server's
//!   own port, labels `provider: kubernetes` and `component: apiserver`. Created when missing; its ports
//!   and type are put back when someone changed them;
//! * its Endpoints: one subset, this api-server's `--advertise-address` (default: the listen address) and
//!   port `https`, labelled `endpointslice.kubernetes.io/skip-mirror: "true"`; rewritten when they say
//!   anything else. A loopback advertise address (a test cluster on 127.0.0.1) gets no Endpoints: pods
//!   could not reach it, and Endpoints may not name one.
//!
//! [`run`] reconciles at start and every 10 s (Kubernetes' endpoint interval). One api-server per cluster
//! is assumed: several would each write their own address (Kubernetes keeps a lease per api-server and
//! lists them all).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use navarch_api::Object;
use navarch_api::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, IntOrString, ObjectMeta, Service, ServicePort,
    ServiceSpec,
};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::ApiError;
use crate::registry::{FieldManager, Registry, SERVER_MANAGER};

pub const NAMESPACE: &str = "default";
pub const NAME: &str = "kubernetes";
/// The Service's port, and its name.
pub const SERVICE_PORT: i32 = 443;
pub const PORT_NAME: &str = "https";
/// How often the Service and its Endpoints are checked.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Tells an EndpointSlice mirroring controller to leave these Endpoints alone.
const SKIP_MIRROR: (&str, &str) = ("endpointslice.kubernetes.io/skip-mirror", "true");

/// What the Service and its Endpoints must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesService {
    /// The first address of the Service range.
    pub cluster_ip: Ipv4Addr,
    /// The api-server's port (the target port, and the Endpoints' port).
    pub port: u16,
    /// The address pods reach the api-server at; `None` (or loopback): no Endpoints.
    pub advertise: Option<IpAddr>,
}

impl KubernetesService {
    pub fn from_config(config: &Config) -> KubernetesService {
        KubernetesService {
            cluster_ip: config.service_cluster_ip_range.reserved(),
            port: config.listen.port(),
            advertise: config.advertised(),
        }
    }

    /// The address the Endpoints name, if pods can reach it.
    pub fn endpoint_ip(&self) -> Option<IpAddr> {
        self.advertise.filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
    }

    fn ports(&self) -> Vec<ServicePort> {
        vec![ServicePort {
            name: PORT_NAME.into(),
            protocol: "TCP".into(),
            port: SERVICE_PORT,
            target_port: Some(IntOrString::int(i32::from(self.port))),
            ..Default::default()
        }]
    }

    /// The Service as created.
    pub fn service(&self) -> Service {
        let labels: BTreeMap<String, String> = [("provider", "kubernetes"), ("component", "apiserver")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        Service {
            metadata: Some(ObjectMeta {
                name: NAME.into(),
                namespace: NAMESPACE.into(),
                labels: labels.into_iter().collect(),
                ..Default::default()
            }),
            spec: Some(ServiceSpec {
                r#type: "ClusterIP".into(),
                cluster_ip: self.cluster_ip.to_string(),
                session_affinity: "None".into(),
                ports: self.ports(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `current` with the ports and type put back, if they changed (Kubernetes' `checkServiceFormat`:
    /// name, protocol, port and target port of each port).
    pub fn service_update(&self, current: &Service) -> Option<Service> {
        let want = self.ports();
        let spec = current.spec.clone().unwrap_or_default();
        let same_port = |a: &ServicePort, b: &ServicePort| {
            a.name == b.name && a.protocol == b.protocol && a.port == b.port && a.target_port == b.target_port
        };
        let correct = spec.r#type == "ClusterIP"
            && spec.ports.len() == want.len()
            && spec.ports.iter().zip(&want).all(|(a, b)| same_port(a, b));
        if correct {
            return None;
        }
        let mut svc = current.clone();
        let s = svc.spec.get_or_insert_with(Default::default);
        s.r#type = "ClusterIP".into();
        s.ports = want;
        Some(svc)
    }

    fn subsets(&self, ip: IpAddr) -> Vec<EndpointSubset> {
        vec![EndpointSubset {
            addresses: vec![EndpointAddress { ip: ip.to_string(), ..Default::default() }],
            ports: vec![EndpointPort {
                name: PORT_NAME.into(),
                port: i32::from(self.port),
                protocol: "TCP".into(),
                ..Default::default()
            }],
            ..Default::default()
        }]
    }

    /// The Endpoints to write: new ones when there are none, `current` with its subsets (and label)
    /// rewritten when they differ, `None` when they are right or there is no reachable address.
    pub fn endpoints_update(&self, current: Option<&Endpoints>) -> Option<Endpoints> {
        let ip = self.endpoint_ip()?;
        let subsets = self.subsets(ip);
        let mut ep = match current {
            None => Endpoints {
                metadata: Some(ObjectMeta {
                    name: NAME.into(),
                    namespace: NAMESPACE.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Some(ep) if ep.subsets == subsets => return None,
            Some(ep) => ep.clone(),
        };
        ep.metadata
            .get_or_insert_with(Default::default)
            .labels
            .insert(SKIP_MIRROR.0.into(), SKIP_MIRROR.1.into());
        ep.subsets = subsets;
        Some(ep)
    }

    /// One pass: the Service, then its Endpoints.
    pub async fn reconcile(&self, registry: &Registry) -> Result<(), ApiError> {
        let manager = || FieldManager::update(SERVER_MANAGER);
        match registry.get("Service", NAMESPACE, NAME).await {
            Ok(Object::Service(svc)) => {
                if let Some(svc) = self.service_update(&svc) {
                    tracing::info!("putting back the ports of the default/kubernetes Service");
                    registry.update(Object::Service(svc), false, false, manager()).await?;
                }
            }
            Ok(_) => {}
            Err(ApiError::NotFound { .. }) => {
                let mut svc = self.service();
                navarch_api::Resource::set_type_meta(&mut svc);
                match registry.create(Object::Service(svc), false, manager()).await {
                    Ok(_) => {
                        tracing::info!(cluster_ip = %self.cluster_ip, "created the default/kubernetes Service")
                    }
                    Err(ApiError::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        let current = match registry.get("Endpoints", NAMESPACE, NAME).await {
            Ok(Object::Endpoints(ep)) => Some(ep),
            Ok(_) => return Ok(()),
            Err(ApiError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let Some(mut ep) = self.endpoints_update(current.as_ref()) else { return Ok(()) };
        navarch_api::Resource::set_type_meta(&mut ep);
        let r = match current {
            None => registry.create(Object::Endpoints(ep), false, manager()).await,
            Some(_) => registry.update(Object::Endpoints(ep), false, false, manager()).await,
        };
        match r {
            Ok(_) => Ok(()),
            // Someone wrote meanwhile: the next pass looks again.
            Err(ApiError::AlreadyExists { .. } | ApiError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Reconciles the Service and its Endpoints every [`INTERVAL`] until `shutdown`.
pub async fn run(registry: Arc<Registry>, want: KubernetesService, shutdown: CancellationToken) {
    match want.advertise {
        Some(ip) if want.endpoint_ip().is_none() => tracing::warn!(
            %ip,
            "advertise address not reachable from pods: the default/kubernetes Service gets no Endpoints (set --advertise-address)"
        ),
        None => tracing::warn!(
            "no advertise address (listening on 0.0.0.0): the default/kubernetes Service gets no Endpoints (set --advertise-address)"
        ),
        Some(_) => {}
    }
    loop {
        if let Err(e) = want.reconcile(&registry).await {
            tracing::warn!(error = %e, "reconciling the default/kubernetes Service");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(advertise: &str) -> KubernetesService {
        KubernetesService {
            cluster_ip: Ipv4Addr::new(10, 96, 0, 1),
            port: 6443,
            advertise: advertise.parse().ok(),
        }
    }

    #[test]
    fn the_service_is_kubernetes_own() {
        let expected: Service = serde_yaml::from_str(
            "{metadata: {name: kubernetes, namespace: default, labels: {provider: kubernetes, component: apiserver}}, \
             spec: {type: ClusterIP, clusterIP: 10.96.0.1, sessionAffinity: None, \
             ports: [{name: https, protocol: TCP, port: 443, targetPort: 6443}]}}",
        )
        .unwrap();
        assert_eq!(want("10.0.0.5").service(), expected);
    }

    #[test]
    fn changed_ports_or_type_are_put_back() {
        let w = want("10.0.0.5");
        let svc = w.service();
        assert_eq!(w.service_update(&svc), None);
        let mut changed = svc.clone();
        changed.spec.as_mut().unwrap().ports[0].target_port = Some(IntOrString::int(8443));
        changed.spec.as_mut().unwrap().r#type = "NodePort".into();
        changed.metadata.as_mut().unwrap().resource_version = "42".into();
        let fixed = w.service_update(&changed).unwrap();
        assert_eq!(fixed.spec.as_ref().unwrap().ports, svc.spec.as_ref().unwrap().ports);
        assert_eq!(fixed.spec.as_ref().unwrap().r#type, "ClusterIP");
        assert_eq!(fixed.metadata.unwrap().resource_version, "42", "a compare-and-swap on what was read");
    }

    #[test]
    fn endpoints_name_the_advertised_address() {
        let w = want("10.0.0.5");
        let ep = w.endpoints_update(None).unwrap();
        let expected: Endpoints = serde_yaml::from_str(
            "{metadata: {name: kubernetes, namespace: default, labels: {endpointslice.kubernetes.io/skip-mirror: 'true'}}, \
             subsets: [{addresses: [{ip: 10.0.0.5}], ports: [{name: https, port: 6443, protocol: TCP}]}]}",
        )
        .unwrap();
        assert_eq!(ep, expected);
        assert_eq!(w.endpoints_update(Some(&ep)), None, "right already");
        let moved = want("10.0.0.6").endpoints_update(Some(&ep)).unwrap();
        assert_eq!(moved.subsets[0].addresses[0].ip, "10.0.0.6");
        // Loopback or nothing: no Endpoints at all.
        assert_eq!(want("127.0.0.1").endpoints_update(None), None);
        assert_eq!(want("").endpoints_update(None), None);
    }
}
