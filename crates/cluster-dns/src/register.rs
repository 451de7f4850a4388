//! Registration as the cluster's DNS, the way Kubernetes publishes its own: the selector-less
//! Service `kube-system/kube-dns` (ClusterIP `--service-ip`, ports `dns` 53/UDP and `dns-tcp`
//! 53/TCP, label `k8s-app: kube-dns`) and its Endpoints, to which each running instance adds its
//! `--advertise-address` (one instance per node may run; their addresses are merged), and from
//! which it removes it on a clean shutdown. Pods reach the DNS through that ClusterIP (kube-proxy).
//!
//! The Service, once it exists, is left as it is (another instance or the operator may have made
//! it); only the Endpoints are written, with optimistic concurrency.

use std::collections::BTreeMap;
use std::net::IpAddr;

use navarch_api::Resource;
use navarch_api::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, IntOrString, Namespace, ObjectMeta, Service,
    ServicePort, ServiceSpec,
};
use navarch_client::{Client, Error as ApiError};

use crate::Error;

pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "kube-dns";
const LABEL: (&str, &str) = ("k8s-app", "kube-dns");
/// Attempts of a read-modify-write of the Endpoints that lose the race to another writer.
const ATTEMPTS: usize = 8;

/// This instance's registration.
#[derive(Debug, Clone)]
pub struct Registration {
    client: Client,
    /// The address pods reach this instance at.
    pub address: IpAddr,
    /// The ClusterIP asked for when creating the Service.
    pub service_ip: IpAddr,
    /// The port this instance serves on (the Endpoints' port; 53 normally).
    pub port: u16,
}

fn labels() -> BTreeMap<String, String> {
    [(LABEL.0.to_string(), LABEL.1.to_string())].into()
}

/// The ports of the Endpoints for an instance serving on `port`.
pub fn endpoint_ports(port: u16) -> Vec<EndpointPort> {
    [("dns", "UDP"), ("dns-tcp", "TCP")]
        .into_iter()
        .map(|(name, protocol)| EndpointPort {
            name: name.into(),
            port: i32::from(port),
            protocol: protocol.into(),
            ..Default::default()
        })
        .collect()
}

fn same_ports(a: &[EndpointPort], b: &[EndpointPort]) -> bool {
    let key = |ps: &[EndpointPort]| {
        let mut v: Vec<(String, i32, String)> =
            ps.iter().map(|p| (p.name.clone(), p.port, p.protocol.clone())).collect();
        v.sort();
        v
    };
    key(a) == key(b)
}

/// True when `endpoints` lists `address` in a subset with the ports of an instance serving on `port`.
pub fn is_registered(endpoints: &Endpoints, address: IpAddr, port: u16) -> bool {
    let ours = endpoint_ports(port);
    endpoints
        .subsets
        .iter()
        .any(|s| same_ports(&s.ports, &ours) && s.addresses.iter().any(|a| a.ip.parse() == Ok(address)))
}

/// The subsets of `current` with `remove` taken out of every subset and `add` put in the subset
/// with this instance's ports (created if needed); empty subsets are dropped, addresses sorted.
/// Pure: the merge of several instances' registrations.
pub fn merge_subsets(
    current: &[EndpointSubset],
    add: Option<IpAddr>,
    remove: Option<IpAddr>,
    port: u16,
) -> Vec<EndpointSubset> {
    let ours = endpoint_ports(port);
    let is = |a: &EndpointAddress, ip: Option<IpAddr>| ip.is_some_and(|ip| a.ip.parse() == Ok(ip));
    let mut subsets: Vec<EndpointSubset> = current
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.addresses.retain(|a| !is(a, remove) && !is(a, add));
            s.not_ready_addresses.retain(|a| !is(a, remove) && !is(a, add));
            s
        })
        .collect();
    if let Some(ip) = add {
        let address = EndpointAddress { ip: ip.to_string(), ..Default::default() };
        match subsets.iter_mut().find(|s| same_ports(&s.ports, &ours)) {
            Some(s) => s.addresses.push(address),
            None => {
                subsets.push(EndpointSubset { addresses: vec![address], ports: ours, ..Default::default() })
            }
        }
    }
    subsets.retain(|s| !s.addresses.is_empty() || !s.not_ready_addresses.is_empty());
    for s in &mut subsets {
        s.addresses.sort_by_key(|a| a.ip.parse::<IpAddr>().ok());
    }
    subsets
}

impl Registration {
    pub fn new(client: Client, address: IpAddr, service_ip: IpAddr, port: u16) -> Registration {
        Registration { client, address, service_ip, port }
    }

    /// The Service this instance creates when there is none.
    pub fn service(&self) -> Service {
        let port = |name: &str, protocol: &str| ServicePort {
            name: name.into(),
            protocol: protocol.into(),
            port: 53,
            target_port: Some(IntOrString::int(i32::from(self.port))),
            ..Default::default()
        };
        Service {
            metadata: Some(ObjectMeta {
                name: NAME.into(),
                namespace: NAMESPACE.into(),
                labels: labels(),
                ..Default::default()
            }),
            spec: Some(ServiceSpec {
                r#type: "ClusterIP".into(),
                cluster_ip: self.service_ip.to_string(),
                ports: vec![port("dns", "UDP"), port("dns-tcp", "TCP")],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Makes sure the namespace, the Service and this instance's address in the Endpoints exist.
    #[tracing::instrument(skip(self), fields(address = %self.address))]
    pub async fn ensure(&self) -> Result<(), Error> {
        self.ensure_namespace().await?;
        self.ensure_service().await?;
        self.write_endpoints(Some(self.address), None).await
    }

    /// Takes this instance's address out of the Endpoints (the Service stays, for the others).
    #[tracing::instrument(skip(self), fields(address = %self.address))]
    pub async fn remove(&self) -> Result<(), Error> {
        self.write_endpoints(None, Some(self.address)).await
    }

    async fn ensure_namespace(&self) -> Result<(), Error> {
        let api = self.client.api::<Namespace>("");
        if api.get_opt(NAMESPACE).await?.is_some() {
            return Ok(());
        }
        let ns = Namespace {
            metadata: Some(ObjectMeta { name: NAMESPACE.into(), ..Default::default() }),
            ..Default::default()
        };
        match api.create(&ns).await {
            Ok(_) => {
                tracing::info!("created namespace {NAMESPACE}");
                Ok(())
            }
            Err(ApiError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn ensure_service(&self) -> Result<(), Error> {
        let api = self.client.api::<Service>(NAMESPACE);
        if let Some(existing) = api.get_opt(NAME).await? {
            if existing.spec.as_ref().is_some_and(|s| !s.selector.is_empty()) {
                tracing::warn!(
                    "Service {NAMESPACE}/{NAME} has a selector: the endpoints controller owns its Endpoints \
                     and will overwrite this registration"
                );
            }
            return Ok(());
        }
        match api.create(&self.service()).await {
            Ok(s) => {
                let ip = s.spec.map(|s| s.cluster_ip).unwrap_or_default();
                tracing::info!(cluster_ip = %ip, "created Service {NAMESPACE}/{NAME}");
                Ok(())
            }
            // Another instance was quicker.
            Err(ApiError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(Error::Registration(format!(
                "creating Service {NAMESPACE}/{NAME} with clusterIP {}: {e}",
                self.service_ip
            ))),
        }
    }

    /// Read-modify-write of the Endpoints, retried when another writer got in between.
    async fn write_endpoints(&self, add: Option<IpAddr>, remove: Option<IpAddr>) -> Result<(), Error> {
        let api = self.client.api::<Endpoints>(NAMESPACE);
        for _ in 0..ATTEMPTS {
            let current = api.get_opt(NAME).await?;
            let subsets = merge_subsets(
                current.as_ref().map(|e| e.subsets.as_slice()).unwrap_or_default(),
                add,
                remove,
                self.port,
            );
            let result = match current {
                Some(e) if e.subsets == subsets => return Ok(()),
                Some(mut e) => {
                    e.subsets = subsets;
                    let m = e.meta_mut();
                    m.labels.extend(labels());
                    api.update(&e).await
                }
                None if add.is_none() => return Ok(()),
                None => {
                    let e = Endpoints {
                        metadata: Some(ObjectMeta {
                            name: NAME.into(),
                            namespace: NAMESPACE.into(),
                            labels: labels(),
                            ..Default::default()
                        }),
                        subsets,
                        ..Default::default()
                    };
                    api.create(&e).await
                }
            };
            match result {
                Ok(_) => {
                    let what = if add.is_some() { "registered in" } else { "removed from" };
                    tracing::info!("{what} Endpoints {NAMESPACE}/{NAME}");
                    return Ok(());
                }
                Err(ApiError::Conflict(_) | ApiError::AlreadyExists(_) | ApiError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Registration(format!(
            "Endpoints {NAMESPACE}/{NAME} kept changing under {ATTEMPTS} attempts"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(subsets: &[EndpointSubset]) -> Vec<Vec<String>> {
        subsets.iter().map(|s| s.addresses.iter().map(|a| a.ip.clone()).collect()).collect()
    }

    #[test]
    fn instances_merge_their_addresses() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let one = merge_subsets(&[], ip("10.0.0.2"), None, 53);
        assert_eq!(ips(&one), [["10.0.0.2"]]);
        assert_eq!(one[0].ports, endpoint_ports(53));
        assert_eq!(one[0].ports[0].name, "dns");
        assert_eq!(one[0].ports[1].protocol, "TCP");
        // A second instance joins; the first registers again (idempotent).
        let two = merge_subsets(&one, ip("10.0.0.1"), None, 53);
        assert_eq!(ips(&two), [["10.0.0.1", "10.0.0.2"]]);
        assert_eq!(merge_subsets(&two, ip("10.0.0.2"), None, 53), two);
        // An instance on another port has a subset of its own.
        let three = merge_subsets(&two, ip("10.0.0.3"), None, 5353);
        assert_eq!(ips(&three), [vec!["10.0.0.1", "10.0.0.2"], vec!["10.0.0.3"]]);
        // Leaving: only that address goes; an emptied subset goes too.
        let left = merge_subsets(&three, None, ip("10.0.0.3"), 5353);
        assert_eq!(ips(&left), [["10.0.0.1", "10.0.0.2"]]);
        let left = merge_subsets(&left, None, ip("10.0.0.1"), 53);
        assert_eq!(ips(&left), [["10.0.0.2"]]);
        assert!(merge_subsets(&left, None, ip("10.0.0.2"), 53).is_empty());
        let e = Endpoints { subsets: three, ..Default::default() };
        assert!(is_registered(&e, ip("10.0.0.3").unwrap(), 5353));
        assert!(!is_registered(&e, ip("10.0.0.3").unwrap(), 53));
        assert!(!is_registered(&e, ip("10.0.0.9").unwrap(), 53));
    }
}
