//! The Endpoints controller: for every Service with a selector, an Endpoints object of the same name
//! listing the matching pods that have an IP: ready ones under `addresses`, the others under
//! `notReadyAddresses`, with each Service port's target port resolved per pod (a number, or the name
//! of one of the pod's container ports). Pods resolving to the same ports share a subset. Endpoints
//! it made (annotation `endpoints.kubernetes.io/last-change-trigger-time`) whose Service is gone are
//! deleted. [`spawn`] wires it to the shared Service and pod reflectors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectMeta, ObjectReference, Pod, Service,
};
use navarch_client::{Action, Client, Controller, ObjectRef, Store};
use tokio_util::sync::CancellationToken;

use crate::replicaset::{is_active, is_ready};
use crate::run::{Reconciler, Wiring};

pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// How often Endpoints of deleted Services are looked for.
const SWEEP: Duration = Duration::from_secs(5);

/// A pod's port for a Service port: the target port as a number, or the container port of that name.
fn resolve(pod: &Pod, sp: &navarch_api::v1::ServicePort) -> Option<i32> {
    let protocol = if sp.protocol.is_empty() { "TCP" } else { sp.protocol.as_str() };
    match &sp.target_port {
        None => Some(sp.port),
        Some(t) => match t.as_int() {
            Some(0) => Some(sp.port),
            Some(n) => Some(n),
            None => {
                let name = t.as_str().unwrap_or_default();
                pod.spec.as_ref()?.containers.iter().flat_map(|c| c.ports.iter()).find_map(|p| {
                    let pp = if p.protocol.is_empty() { "TCP" } else { p.protocol.as_str() };
                    (p.name == name && pp == protocol).then_some(p.container_port)
                })
            }
        },
    }
}

/// (name, port, protocol) of one Service port on one pod.
type ResolvedPort = (String, i32, String);

/// The subsets of `svc` from the pods of its namespace.
pub fn subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    if spec.selector.is_empty() {
        return vec![];
    }
    // Resolved port list → (ready, not ready) addresses.
    let mut groups: BTreeMap<Vec<ResolvedPort>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for p in pods {
        let m = p.meta();
        let ip = p.status.as_ref().map(|s| s.pod_ip.clone()).unwrap_or_default();
        if ip.is_empty() || !is_active(p) || !spec.selector.iter().all(|(k, v)| m.labels.get(k) == Some(v)) {
            continue;
        }
        let ports: Vec<ResolvedPort> = spec
            .ports
            .iter()
            .filter_map(|sp| {
                let protocol = if sp.protocol.is_empty() { "TCP".to_string() } else { sp.protocol.clone() };
                resolve(p, sp).map(|port| (sp.name.clone(), port, protocol))
            })
            .collect();
        if ports.is_empty() && !spec.ports.is_empty() {
            continue;
        }
        let pspec = p.spec.clone().unwrap_or_default();
        let addr = EndpointAddress {
            ip,
            hostname: if !pspec.hostname.is_empty() && pspec.subdomain == svc.meta().name {
                pspec.hostname.clone()
            } else {
                String::new()
            },
            node_name: (!pspec.node_name.is_empty()).then(|| pspec.node_name.clone()),
            target_ref: Some(ObjectReference {
                kind: "Pod".into(),
                namespace: m.namespace.clone(),
                name: m.name.clone(),
                uid: m.uid.clone(),
                ..Default::default()
            }),
        };
        let g = groups.entry(ports).or_default();
        if is_ready(p) || spec.publish_not_ready_addresses {
            g.0.push(addr);
        } else {
            g.1.push(addr);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: ready,
                not_ready_addresses: not_ready,
                ports: ports
                    .into_iter()
                    .map(|(name, port, protocol)| EndpointPort { name, port, protocol, ..Default::default() })
                    .collect(),
            }
        })
        .collect()
}

pub struct EndpointsController {
    pub client: Client,
    pub pods: Store<Pod>,
}

impl Reconciler<Service> for EndpointsController {
    type Error = navarch_client::Error;

    async fn reconcile(&self, svc: Arc<Service>) -> Result<Action, navarch_client::Error> {
        let m = svc.meta();
        if svc.spec.as_ref().is_none_or(|s| s.selector.is_empty()) {
            // Endpoints of selector-less Services are the user's.
            return Ok(Action::await_change());
        }
        if !self.pods.is_ready() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let pods: Vec<Arc<Pod>> =
            self.pods.state().into_iter().filter(|p| p.meta().namespace == m.namespace).collect();
        let want = subsets(&svc, &pods);
        let api = self.client.api::<Endpoints>(&m.namespace);
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        match api.get_opt(&m.name).await? {
            Some(mut ep) => {
                if ep.subsets == want && ep.meta().labels == m.labels {
                    return Ok(Action::await_change());
                }
                ep.subsets = want;
                ep.meta_mut().labels = m.labels.clone();
                ep.meta_mut().annotations.insert(TRIGGER_TIME.into(), now);
                api.update(&ep).await?;
            }
            None => {
                let mut ep = Endpoints {
                    metadata: Some(ObjectMeta {
                        name: m.name.clone(),
                        namespace: m.namespace.clone(),
                        labels: m.labels.clone(),
                        annotations: [(TRIGGER_TIME.to_string(), now)].into(),
                        ..Default::default()
                    }),
                    subsets: want,
                    ..Default::default()
                };
                ep.set_type_meta();
                match api.create(&ep).await {
                    Ok(_) | Err(navarch_client::Error::AlreadyExists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(Action::await_change())
    }
}

impl EndpointsController {
    /// Deletes the Endpoints this controller made whose Service no longer exists.
    pub async fn remove_leftovers(&self, services: &Store<Service>) -> Result<usize, navarch_client::Error> {
        let all = self.client.api::<Endpoints>("").list(&Default::default()).await?.items;
        let mut n = 0;
        for ep in all {
            let m = ep.meta();
            let key = navarch_client::ObjectRef::new(&m.namespace, &m.name);
            if m.annotations.contains_key(TRIGGER_TIME) && services.get(&key).is_none() {
                let params =
                    navarch_client::DeleteParams { precondition_uid: m.uid.clone(), ..Default::default() };
                match self.client.api::<Endpoints>(&m.namespace).delete(&m.name, &params).await {
                    Ok(_) => n += 1,
                    Err(navarch_client::Error::NotFound(_)) | Err(navarch_client::Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }

    /// Every [`SWEEP`] until `stop`: [`remove_leftovers`](Self::remove_leftovers), once `services`
    /// is listed.
    async fn sweep(&self, services: Store<Service>, stop: CancellationToken) {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = services.wait_until_ready() => {}
        }
        loop {
            match self.remove_leftovers(&services).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(endpoints = n, "removed the Endpoints of deleted Services"),
                Err(e) => tracing::warn!(error = %e, "Endpoints sweep"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(SWEEP) => {}
            }
        }
    }
}

/// The Services of `namespace`.
fn services_in(services: &Store<Service>, namespace: &str) -> Vec<ObjectRef> {
    services.keys().into_iter().filter(|k| k.namespace == namespace).collect()
}

/// Runs the Endpoints controller: Services, re-synced on any pod change in their namespace (a pod's
/// labels may have moved away), and all of them after a pod relist; and the sweep of the Endpoints of
/// deleted Services.
pub fn spawn(w: &mut Wiring) {
    let (services, pods) = (w.informers.services.store(), &w.informers.pods);
    let in_namespace = services.clone();
    let controller = Controller::for_shared(&w.informers.services)
        .concurrency(w.workers)
        .watches_shared(pods, move |p: &Pod| services_in(&in_namespace, &p.meta().namespace));
    let ctx = Arc::new(EndpointsController { client: w.client.clone(), pods: pods.store() });
    let (sweeper, stop) = (ctx.clone(), w.stop.clone());
    w.spawn(async move { sweeper.sweep(services, stop).await });
    w.controller(controller, ctx, Duration::from_secs(2));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool, extra_ports: &str) -> Arc<Pod> {
        let cond = if ready { "[{type: Ready, status: 'True'}]" } else { "[]" };
        Arc::new(
            serde_yaml::from_str(&format!(
                "{{metadata: {{name: {name}, namespace: ns, uid: u-{name}, labels: {{app: web}}}}, spec: {{nodeName: n1, containers: [{{name: c, image: x, ports: [{extra_ports}]}}]}}, status: {{phase: Running, podIP: '{ip}', conditions: {cond}}}}}"
            ))
            .unwrap(),
        )
    }

    #[test]
    fn ready_and_not_ready_with_named_ports() {
        let svc: Service = serde_yaml::from_str(
            "{metadata: {name: web, namespace: ns}, spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: web}]}}",
        )
        .unwrap();
        let pods = vec![
            pod("a", "10.0.0.2", true, "{name: web, containerPort: 8080}"),
            pod("b", "10.0.0.1", false, "{name: web, containerPort: 8080}"),
            pod("c", "10.0.0.3", true, "{name: web, containerPort: 9090}"),
            pod("no-port", "10.0.0.4", true, "{name: other, containerPort: 1}"),
            pod("no-ip", "", true, "{name: web, containerPort: 8080}"),
        ];
        let s = subsets(&svc, &pods);
        assert_eq!(s.len(), 2, "{s:?}");
        let by_port: BTreeMap<i32, &EndpointSubset> = s.iter().map(|x| (x.ports[0].port, x)).collect();
        let p8080 = by_port[&8080];
        assert_eq!(p8080.addresses.iter().map(|a| a.ip.as_str()).collect::<Vec<_>>(), ["10.0.0.2"]);
        assert_eq!(p8080.not_ready_addresses.iter().map(|a| a.ip.as_str()).collect::<Vec<_>>(), ["10.0.0.1"]);
        assert_eq!(p8080.ports[0].name, "http");
        assert_eq!(p8080.addresses[0].target_ref.as_ref().unwrap().name, "a");
        assert_eq!(p8080.addresses[0].node_name.as_deref(), Some("n1"));
        assert_eq!(by_port[&9090].addresses[0].ip, "10.0.0.3");
    }

    #[test]
    fn numeric_and_default_target_ports() {
        let svc: Service = serde_yaml::from_str(
            "{metadata: {name: web, namespace: ns}, spec: {selector: {app: web}, ports: [{port: 80}, {name: m, port: 81, targetPort: 9100}]}}",
        )
        .unwrap();
        let s = subsets(&svc, &[pod("a", "10.0.0.2", true, "")]);
        assert_eq!(s[0].ports.iter().map(|p| p.port).collect::<Vec<_>>(), [80, 9100]);
    }

    #[test]
    fn hostnames_for_pods_of_the_governing_service_and_publish_not_ready() {
        let headless = |publish: bool| -> Service {
            serde_yaml::from_str(&format!(
                "{{metadata: {{name: web, namespace: ns}}, spec: {{clusterIP: None, publishNotReadyAddresses: {publish}, selector: {{app: web}}, ports: [{{port: 80}}]}}}}"
            ))
            .unwrap()
        };
        let with_identity = |name: &str, ip: &str, ready: bool, subdomain: &str| -> Arc<Pod> {
            let mut p = (*pod(name, ip, ready, "")).clone();
            let spec = p.spec.as_mut().unwrap();
            spec.hostname = name.into();
            spec.subdomain = subdomain.into();
            Arc::new(p)
        };
        let pods = vec![
            with_identity("web-0", "10.0.0.1", true, "web"),
            with_identity("web-1", "10.0.0.2", false, "web"),
            // Another Service's subdomain: no hostname here (Kubernetes' rule).
            with_identity("other-0", "10.0.0.3", true, "other"),
        ];
        let s = subsets(&headless(false), &pods);
        let hosts = |a: &[EndpointAddress]| -> Vec<(String, String)> {
            a.iter().map(|a| (a.ip.clone(), a.hostname.clone())).collect()
        };
        assert_eq!(
            hosts(&s[0].addresses),
            [("10.0.0.1".into(), "web-0".into()), ("10.0.0.3".into(), String::new())]
        );
        assert_eq!(hosts(&s[0].not_ready_addresses), [("10.0.0.2".into(), "web-1".into())]);
        // publishNotReadyAddresses: every pod is an address (a StatefulSet's peers find each other
        // before they are ready).
        let s = subsets(&headless(true), &pods);
        assert_eq!(s[0].addresses.len(), 3);
        assert!(s[0].not_ready_addresses.is_empty());
    }
}
