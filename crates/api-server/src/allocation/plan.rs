//! What one write of a Service claims and gives back ([`Plan`], [`Ranges::plan`]), and how an update
//! is prepared before validation ([`prepare_update`]): which values a Service type needs, which given
//! values are in range, which ports share a node port, and what is released.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::Ipv4Addr;

use navarch_api::v1::{Service, ServiceSpec};

use super::{Holdings, Ranges, holdings};

fn needs_cluster_ip(s: &ServiceSpec) -> bool {
    s.r#type != "ExternalName"
}

fn needs_node_port(s: &ServiceSpec) -> bool {
    matches!(s.r#type.as_str(), "NodePort" | "LoadBalancer")
}

fn needs_health_check_node_port(s: &ServiceSpec) -> bool {
    s.r#type == "LoadBalancer" && s.external_traffic_policy == "Local"
}

fn externally_accessible(s: &ServiceSpec) -> bool {
    needs_node_port(s) || (s.r#type == "ClusterIP" && !s.external_i_ps.is_empty())
}

fn node_ports_of(s: &ServiceSpec) -> Vec<i32> {
    s.ports.iter().map(|p| p.node_port).filter(|p| *p != 0).collect()
}

/// On update, before validation (Kubernetes' `dropTypeDependentFields` and `patchAllocatedValues`):
/// values that no longer apply after a type change are cleared when the client sent them back
/// unchanged (they are released then), and allocated values the client left out are kept.
pub fn prepare_update(new: &mut Service, old: &Service) {
    let default = ServiceSpec::default();
    let old = old.spec.as_ref().unwrap_or(&default);
    let new = new.spec.get_or_insert_with(Default::default);

    // Drop what the new type does not use, unless the client changed it too (then validation speaks).
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if new.cluster_ip == old.cluster_ip && new.cluster_i_ps == old.cluster_i_ps {
            new.cluster_ip.clear();
            new.cluster_i_ps.clear();
        }
        if new.ip_families == old.ip_families {
            new.ip_families.clear();
        }
        if new.ip_family_policy == old.ip_family_policy {
            new.ip_family_policy = None;
        }
    }
    if needs_node_port(old) && !needs_node_port(new) && node_ports_of(new) == node_ports_of(old) {
        for p in &mut new.ports {
            p.node_port = 0;
        }
    }
    if needs_health_check_node_port(old)
        && !needs_health_check_node_port(new)
        && new.health_check_node_port == old.health_check_node_port
    {
        new.health_check_node_port = 0;
    }
    if old.r#type == "LoadBalancer" && new.r#type != "LoadBalancer" {
        if new.allocate_load_balancer_node_ports.is_some()
            && new.allocate_load_balancer_node_ports == old.allocate_load_balancer_node_ports
        {
            new.allocate_load_balancer_node_ports = None;
        }
        if new.load_balancer_class == old.load_balancer_class {
            new.load_balancer_class = None;
        }
    }
    if externally_accessible(old)
        && !externally_accessible(new)
        && new.external_traffic_policy == old.external_traffic_policy
    {
        new.external_traffic_policy.clear();
    }
    if old.r#type != "ExternalName" && new.r#type == "ExternalName" {
        new.internal_traffic_policy = None;
    }

    // Keep what was allocated when the client left it out.
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if new.cluster_ip.is_empty() {
            new.cluster_ip = old.cluster_ip.clone();
        }
        if new.cluster_i_ps.is_empty() {
            new.cluster_i_ps = old.cluster_i_ps.clone();
        }
        if new.ip_families.is_empty() {
            new.ip_families = old.ip_families.clone();
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        // Matched by port name; a node port the new spec uses elsewhere is not patched in.
        let new_ports: BTreeSet<i32> = node_ports_of(new).into_iter().collect();
        let by_name: BTreeMap<&str, i32> = old.ports.iter().map(|p| (p.name.as_str(), p.node_port)).collect();
        for p in new.ports.iter_mut().filter(|p| p.node_port == 0) {
            if let Some(&np) = by_name.get(p.name.as_str())
                && !new_ports.contains(&np)
            {
                p.node_port = np;
            }
        }
    }
    if needs_health_check_node_port(old)
        && needs_health_check_node_port(new)
        && new.health_check_node_port == 0
    {
        new.health_check_node_port = old.health_check_node_port;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// `spec.ports[i].nodePort`
    Port(usize),
    /// `spec.healthCheckNodePort`
    HealthCheck,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Target::Port(i) => write!(f, "spec.ports[{i}].nodePort"),
            Target::HealthCheck => f.write_str("spec.healthCheckNodePort"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum IpClaim {
    Given(Ipv4Addr),
    /// Picked at random; `None` until picked.
    Random(Option<Ipv4Addr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PortClaim {
    /// The port; `None` until picked.
    pub(super) port: Option<u16>,
    pub(super) given: bool,
    /// Where the port goes (given: where it came from, for errors).
    pub(super) targets: Vec<Target>,
}

/// What one write of a Service claims and gives back.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub(super) ip: Option<IpClaim>,
    pub(super) ports: Vec<PortClaim>,
    pub(super) release: Holdings,
    /// Node ports the Service keeps or asks for by value: random picks avoid them.
    pub(super) keep_ports: HashSet<u16>,
    /// Values found taken by others: random picks avoid them.
    pub(super) taken_ips: HashSet<Ipv4Addr>,
    pub(super) taken_ports: HashSet<u16>,
    pub(super) ips_listed: bool,
    pub(super) ports_listed: bool,
    pub(super) failures: usize,
}

impl Plan {
    /// Nothing to claim or release: a plain write will do.
    pub fn is_empty(&self) -> bool {
        self.ip.is_none() && self.ports.is_empty() && self.release.is_empty()
    }

    /// Writes the picked values into the Service.
    pub(super) fn apply(&self, svc: &mut Service) {
        let spec = svc.spec.get_or_insert_with(Default::default);
        if let Some(IpClaim::Random(Some(ip))) = &self.ip {
            spec.cluster_ip = ip.to_string();
            spec.cluster_i_ps = vec![ip.to_string()];
        }
        for c in self.ports.iter().filter(|c| !c.given) {
            let Some(port) = c.port else { continue };
            for t in &c.targets {
                match *t {
                    Target::Port(i) => spec.ports[i].node_port = port.into(),
                    Target::HealthCheck => spec.health_check_node_port = port.into(),
                }
            }
        }
    }
}

impl Ranges {
    /// What writing `svc` (over `old` on update; both validated, `old` as stored) claims and releases.
    /// Checks the values it asks for against the ranges, and fills in what follows from the spec alone:
    /// `ipFamilies`, and the node port of a port that shares its number with one that has a node port.
    pub fn plan(&self, svc: &mut Service, old: Option<&Service>) -> Result<Plan, Vec<String>> {
        let held = old.map(holdings).unwrap_or_default();
        let spec = svc.spec.get_or_insert_with(Default::default);
        let mut errs = Vec::new();
        let mut plan = Plan::default();
        let mut kept = Holdings::default();

        if needs_cluster_ip(spec) {
            if spec.ip_families.is_empty() {
                spec.ip_families = vec!["IPv4".into()];
            }
            for (i, f) in spec.ip_families.iter().enumerate() {
                if f != "IPv4" {
                    errs.push(format!(
                        "spec.ipFamilies[{i}]: Invalid value: {f:?}: not configured on this cluster"
                    ));
                }
            }
            if spec.ip_family_policy.as_deref() == Some("RequireDualStack") {
                errs.push(
                    "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
                        .into(),
                );
            }
            if let Some(second) = spec.cluster_i_ps.get(1) {
                errs.push(format!(
                    "spec.clusterIPs[1]: Invalid value: {second:?}: this cluster is not configured for dual-stack services"
                ));
            }
            match spec.cluster_ip.as_str() {
                "None" => {}
                "" => plan.ip = Some(IpClaim::Random(None)),
                given => match given.parse::<Ipv4Addr>() {
                    Ok(ip) if held.ip == Some(ip) => kept.ip = Some(ip),
                    Ok(ip) if self.ips.contains(ip) => plan.ip = Some(IpClaim::Given(ip)),
                    _ => errs.push(format!(
                        "spec.clusterIP: Invalid value: {given:?}: provided IP is not in the valid range. The range of valid IPs is {}",
                        self.ips
                    )),
                },
            }
        }

        // Node ports asked for by value, first place each is asked for.
        let mut given: BTreeMap<u16, Target> = BTreeMap::new();
        let mut ask = |port: i32, target: Target, errs: &mut Vec<String>| {
            match u16::try_from(port).ok().filter(|p| held.node_ports.contains(p) || self.ports.contains(port)) {
                Some(p) => {
                    if target == Target::HealthCheck && given.contains_key(&p) {
                        errs.push(format!("{target}: Invalid value: {port}: provided port is already allocated"));
                    }
                    given.entry(p).or_insert(target);
                }
                None => errs.push(format!(
                    "{target}: Invalid value: {port}: provided port is not in the valid range. The range of valid ports is {}",
                    self.ports
                )),
            }
        };
        let mut random: Vec<PortClaim> = Vec::new();
        if needs_node_port(spec) {
            for (i, p) in spec.ports.iter().enumerate().filter(|(_, p)| p.node_port != 0) {
                ask(p.node_port, Target::Port(i), &mut errs);
            }
            let auto = spec.r#type == "NodePort" || spec.allocate_load_balancer_node_ports != Some(false);
            if auto {
                // Kubernetes gives ports with the same number the same node port.
                let mut by_number: BTreeMap<i32, usize> = BTreeMap::new();
                for i in 0..spec.ports.len() {
                    if spec.ports[i].node_port != 0 {
                        continue;
                    }
                    let number = spec.ports[i].port;
                    if let Some(np) = spec.ports.iter().find(|q| q.port == number && q.node_port != 0) {
                        spec.ports[i].node_port = np.node_port;
                    } else if let Some(&c) = by_number.get(&number) {
                        random[c].targets.push(Target::Port(i));
                    } else {
                        by_number.insert(number, random.len());
                        random.push(PortClaim { port: None, given: false, targets: vec![Target::Port(i)] });
                    }
                }
            }
        }
        if needs_health_check_node_port(spec) {
            match spec.health_check_node_port {
                0 => random.push(PortClaim { port: None, given: false, targets: vec![Target::HealthCheck] }),
                hc => ask(hc, Target::HealthCheck, &mut errs),
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        for (port, target) in given {
            plan.keep_ports.insert(port);
            if held.node_ports.contains(&port) {
                kept.node_ports.insert(port);
            } else {
                plan.ports.push(PortClaim { port: Some(port), given: true, targets: vec![target] });
            }
        }
        plan.ports.extend(random);
        plan.release = Holdings {
            ip: held.ip.filter(|ip| kept.ip != Some(*ip)),
            node_ports: held.node_ports.difference(&kept.node_ports).copied().collect(),
        };
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use navarch_api::Object;

    use super::*;
    use crate::allocation::{IpRange, PortRange, owner};

    fn svc(spec: &str) -> Service {
        let text = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: default, uid: u1}}\nspec: {spec}\n"
        );
        let mut o = navarch_api::manifest::parse(&text, "test.yaml").unwrap().remove(0);
        crate::validation::apply_defaults(&mut o);
        let errs = crate::validation::validate(&o, None);
        assert!(errs.is_empty(), "{errs:?}");
        match o {
            Object::Service(s) => s,
            _ => unreachable!(),
        }
    }

    fn ranges() -> Ranges {
        Ranges {
            ips: IpRange::parse("10.96.0.0/16").unwrap(),
            ports: PortRange::parse("30000-32767").unwrap(),
        }
    }

    /// Plans `new` over `old` with the default ranges.
    fn planned(new: &mut Service, old: Option<&Service>) -> Result<Plan, Vec<String>> {
        ranges().plan(new, old)
    }

    fn spec(s: &Service) -> &ServiceSpec {
        s.spec.as_ref().unwrap()
    }

    #[test]
    fn plans_for_creates() {
        let mut s = svc("{ports: [{port: 80}]}");
        let p = planned(&mut s, None).unwrap();
        assert_eq!(p.ip, Some(IpClaim::Random(None)));
        assert!(p.ports.is_empty() && p.release.is_empty());
        assert_eq!(spec(&s).ip_families, ["IPv4"]);
        assert_eq!(spec(&s).ip_family_policy.as_deref(), Some("SingleStack"));

        let mut s = svc("{clusterIP: 10.96.0.1, ports: [{port: 80}]}");
        let p = planned(&mut s, None).unwrap();
        assert_eq!(
            p.ip,
            Some(IpClaim::Given("10.96.0.1".parse().unwrap())),
            "the reserved address may be given"
        );

        for ip in ["10.97.0.5", "10.96.0.0", "10.96.255.255"] {
            let mut s = svc(&format!("{{clusterIP: {ip}, ports: [{{port: 80}}]}}"));
            assert_eq!(
                planned(&mut s, None).unwrap_err(),
                [format!(
                    "spec.clusterIP: Invalid value: \"{ip}\": provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/16"
                )]
            );
        }

        let mut s = svc("{clusterIP: None}");
        let p = planned(&mut s, None).unwrap();
        assert!(p.is_empty(), "headless: nothing to allocate");
        assert_eq!(spec(&s).ip_families, ["IPv4"]);
        let mut s = svc("{type: ExternalName, externalName: example.com}");
        assert!(planned(&mut s, None).unwrap().is_empty(), "ExternalName: nothing to allocate");
        assert!(spec(&s).ip_families.is_empty());

        // NodePort: ports without a node port get one each, except that ports sharing a number share it;
        // given ones are claimed as given.
        let mut s = svc(
            "{type: NodePort, ports: [{name: a, port: 53, protocol: UDP}, {name: b, port: 53, protocol: TCP}, {name: c, port: 80, nodePort: 30080}, {name: d, port: 81}, {name: e, port: 81, protocol: UDP, nodePort: 30081}]}",
        );
        let p = planned(&mut s, None).unwrap();
        let given: Vec<(Option<u16>, Vec<Target>)> =
            p.ports.iter().filter(|c| c.given).map(|c| (c.port, c.targets.clone())).collect();
        assert_eq!(given, [(Some(30080), vec![Target::Port(2)]), (Some(30081), vec![Target::Port(4)])]);
        let random: Vec<Vec<Target>> =
            p.ports.iter().filter(|c| !c.given).map(|c| c.targets.clone()).collect();
        assert_eq!(random, [vec![Target::Port(0), Target::Port(1)]]);
        assert_eq!(spec(&s).ports[3].node_port, 30081, "port 81/TCP shares 81/UDP's node port");

        // LoadBalancer without node port allocation: only given ones; Local traffic: a health check port.
        let mut s = svc(
            "{type: LoadBalancer, allocateLoadBalancerNodePorts: false, externalTrafficPolicy: Local, ports: [{name: a, port: 80}, {name: b, port: 81, nodePort: 31000}]}",
        );
        let p = planned(&mut s, None).unwrap();
        let claims: Vec<(Option<u16>, bool, Vec<Target>)> =
            p.ports.iter().map(|c| (c.port, c.given, c.targets.clone())).collect();
        assert_eq!(
            claims,
            [(Some(31000), true, vec![Target::Port(1)]), (None, false, vec![Target::HealthCheck])]
        );

        let mut s = svc("{type: NodePort, ports: [{port: 80, nodePort: 8080}]}");
        assert_eq!(
            planned(&mut s, None).unwrap_err(),
            [
                "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"
            ]
        );
        let mut s = svc(
            "{type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 30080, ports: [{port: 80, nodePort: 30080}]}",
        );
        assert_eq!(
            planned(&mut s, None).unwrap_err(),
            ["spec.healthCheckNodePort: Invalid value: 30080: provided port is already allocated"]
        );
        let mut s = svc("{ipFamilyPolicy: RequireDualStack, ports: [{port: 80}]}");
        assert!(planned(&mut s, None).unwrap_err()[0].contains("not configured for dual-stack"));
    }

    #[test]
    fn picks_are_applied() {
        let mut s = svc(
            "{type: NodePort, ports: [{name: a, port: 53, protocol: UDP}, {name: b, port: 53}, {name: c, port: 80}]}",
        );
        let mut p = planned(&mut s, None).unwrap();
        p.ip = Some(IpClaim::Random(Some("10.96.3.4".parse().unwrap())));
        p.ports[0].port = Some(30001);
        p.ports[1].port = Some(30002);
        p.apply(&mut s);
        let sp = spec(&s);
        assert_eq!(
            (sp.cluster_ip.as_str(), sp.cluster_i_ps.as_slice()),
            ("10.96.3.4", &["10.96.3.4".to_string()][..])
        );
        let nps: Vec<i32> = sp.ports.iter().map(|p| p.node_port).collect();
        assert_eq!(nps, [30001, 30001, 30002]);
        assert_eq!(holdings(&s).node_ports, BTreeSet::from([30001, 30002]));
        assert_eq!(owner(&s), "default/s/u1");
    }

    #[test]
    fn plans_for_updates() {
        let old = svc(
            "{type: NodePort, clusterIP: 10.96.0.20, ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30081}]}",
        );

        // Unchanged (allocated values left out by the client are kept): nothing to do.
        let mut new = svc("{type: NodePort, ports: [{name: a, port: 80}, {name: b, port: 81}]}");
        prepare_update(&mut new, &old);
        assert_eq!(spec(&new).cluster_ip, "10.96.0.20");
        assert_eq!(spec(&new).ports[0].node_port, 30080);
        assert!(planned(&mut new, Some(&old)).unwrap().is_empty());

        // A changed node port: the new one claimed, the old one released.
        let mut new = old.clone();
        new.spec.as_mut().unwrap().ports[1].node_port = 30090;
        let p = planned(&mut new, Some(&old)).unwrap();
        assert_eq!(p.ports.iter().map(|c| c.port).collect::<Vec<_>>(), [Some(30090)]);
        assert_eq!(p.release, Holdings { ip: None, node_ports: BTreeSet::from([30081]) });

        // Swapping node ports between ports claims and releases nothing.
        let mut new = old.clone();
        let ports = &mut new.spec.as_mut().unwrap().ports;
        (ports[0].node_port, ports[1].node_port) = (30081, 30080);
        assert!(planned(&mut new, Some(&old)).unwrap().is_empty());

        // NodePort -> ClusterIP with the node ports sent back unchanged: cleared and released.
        let mut new = old.clone();
        new.spec.as_mut().unwrap().r#type = "ClusterIP".into();
        prepare_update(&mut new, &old);
        assert!(spec(&new).ports.iter().all(|p| p.node_port == 0));
        assert_eq!(spec(&new).external_traffic_policy, "", "only for externally accessible services");
        assert!(
            crate::validation::validate(&Object::Service(new.clone()), Some(&Object::Service(old.clone())))
                .is_empty()
        );
        let p = planned(&mut new, Some(&old)).unwrap();
        assert!(p.ip.is_none() && p.ports.is_empty());
        assert_eq!(p.release.node_ports, BTreeSet::from([30080, 30081]));

        // ClusterIP -> NodePort: node ports allocated.
        let cip = svc("{clusterIP: 10.96.0.20, ports: [{name: a, port: 80}]}");
        let mut new = cip.clone();
        new.spec.as_mut().unwrap().r#type = "NodePort".into();
        let mut o = Object::Service(new);
        crate::validation::apply_defaults(&mut o);
        let Object::Service(mut new) = o else { unreachable!() };
        prepare_update(&mut new, &cip);
        let p = planned(&mut new, Some(&cip)).unwrap();
        assert!(p.ip.is_none() && p.release.is_empty());
        assert_eq!(p.ports.len(), 1);
        assert!(!p.ports[0].given);

        // -> ExternalName: the IP is dropped and released; back: allocated again.
        let mut ext = cip.clone();
        {
            let s = ext.spec.as_mut().unwrap();
            s.r#type = "ExternalName".into();
            s.external_name = "example.com".into();
        }
        prepare_update(&mut ext, &cip);
        assert_eq!(spec(&ext).cluster_ip, "");
        assert!(spec(&ext).cluster_i_ps.is_empty() && spec(&ext).ip_families.is_empty());
        assert_eq!(spec(&ext).ip_family_policy, None);
        assert!(
            crate::validation::validate(&Object::Service(ext.clone()), Some(&Object::Service(cip.clone())))
                .is_empty()
        );
        let p = planned(&mut ext, Some(&cip)).unwrap();
        assert_eq!(p.release.ip, Some("10.96.0.20".parse().unwrap()));
        let mut back = svc("{ports: [{name: a, port: 80}]}");
        prepare_update(&mut back, &ext);
        let p = planned(&mut back, Some(&ext)).unwrap();
        assert_eq!(p.ip, Some(IpClaim::Random(None)));

        // A held IP outside a changed range stays valid.
        let narrow = Ranges { ips: IpRange::parse("10.100.0.0/24").unwrap(), ..ranges() };
        let mut same = cip.clone();
        assert!(narrow.plan(&mut same, Some(&cip)).unwrap().is_empty());
    }
}
