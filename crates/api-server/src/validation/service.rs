//! Services: Kubernetes' defaults (`SetDefaults_Service`) and validation (`ValidateService`,
//! `ValidateServiceUpdate`). Allocation of cluster IPs and node ports, and the checks of given ones
//! against the configured ranges, live in [`crate::allocation`].

use std::collections::BTreeSet;

use navarch_api::names;
use navarch_api::v1::{IntOrString, Service, ServiceSpec};

use super::field::{Errors, PROTOCOLS, Path, is_ip, parse_cidr, q, set_if_empty};
use super::meta::{self, Unique};
use super::pod::validate_port_num_or_name;

const SERVICE_TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
const DEFAULT_AFFINITY_TIMEOUT: i32 = 10800;
const MAX_AFFINITY_TIMEOUT: i32 = 86400;

pub(super) fn default_service(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(Default::default);
    set_if_empty(&mut spec.r#type, "ClusterIP");
    set_if_empty(&mut spec.session_affinity, "None");
    if spec.session_affinity == "ClientIP" {
        let cfg = spec.session_affinity_config.get_or_insert_with(Default::default);
        cfg.client_ip
            .get_or_insert_with(Default::default)
            .timeout_seconds
            .get_or_insert(DEFAULT_AFFINITY_TIMEOUT);
    }
    for p in &mut spec.ports {
        set_if_empty(&mut p.protocol, "TCP");
        let unset = match &p.target_port {
            None => true,
            Some(t) => t.as_int() == Some(0) || t.as_str() == Some(""),
        };
        if unset {
            p.target_port = Some(IntOrString::int(p.port));
        }
    }
    let external = matches!(spec.r#type.as_str(), "NodePort" | "LoadBalancer");
    if external {
        set_if_empty(&mut spec.external_traffic_policy, "Cluster");
    }
    if spec.r#type == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
    }
    if spec.r#type != "ExternalName" {
        spec.internal_traffic_policy.get_or_insert_with(|| "Cluster".to_string());
        spec.ip_family_policy.get_or_insert_with(|| "SingleStack".to_string());
        if spec.cluster_i_ps.is_empty() && !spec.cluster_ip.is_empty() {
            spec.cluster_i_ps = vec![spec.cluster_ip.clone()];
        }
        // Kubernetes' normalizeClusterIPs: `clusterIPs` alone asks for its first entry.
        if spec.cluster_ip.is_empty()
            && let Some(first) = spec.cluster_i_ps.first()
        {
            spec.cluster_ip = first.clone();
        }
    }
}

pub(super) fn validate_service(svc: &Service, old: Option<&Service>, errs: &mut Errors) {
    let path = Path::new("spec");
    let default = ServiceSpec::default();
    let spec = svc.spec.as_ref().unwrap_or(&default);
    let ty = spec.r#type.as_str();
    errs.required_one_of(&path.child("type"), ty, SERVICE_TYPES);
    let headless = spec.cluster_ip == "None";
    let external_name = ty == "ExternalName";
    let load_balancer = ty == "LoadBalancer";

    if external_name {
        validate_external_name(spec, &path, errs);
    } else {
        validate_cluster_i_ps(spec, &path, errs);
    }
    if spec.ports.is_empty() && !headless && !external_name {
        errs.required(&path.child("ports"), "");
    }
    validate_ports(spec, &path, errs);

    meta::validate_labels(&spec.selector, &path.child("selector"), errs);
    let ap = path.child("sessionAffinity");
    errs.required_one_of(&ap, &spec.session_affinity, &["ClientIP", "None"]);
    let cp = path.child("sessionAffinityConfig");
    match (spec.session_affinity.as_str(), &spec.session_affinity_config) {
        ("ClientIP", cfg) => {
            let timeout = cfg.as_ref().and_then(|c| c.client_ip.as_ref()).and_then(|c| c.timeout_seconds);
            let tp = cp.child("clientIP").child("timeoutSeconds");
            match timeout {
                None => errs.required(&tp, ""),
                Some(t) if t <= 0 || t > MAX_AFFINITY_TIMEOUT => errs.invalid(
                    &tp,
                    t,
                    format!("must be greater than 0 and less than {MAX_AFFINITY_TIMEOUT}"),
                ),
                Some(_) => {}
            }
        }
        (_, Some(_)) => {
            errs.invalid(&cp, q(&spec.session_affinity), "must not be set when session affinity is None")
        }
        _ => {}
    }

    for (i, ip) in spec.external_i_ps.iter().enumerate() {
        if !is_ip(ip) {
            errs.invalid(&path.child("externalIPs").index(i), q(ip), "must be a valid IP address");
        }
    }
    let etp = path.child("externalTrafficPolicy");
    if spec.external_traffic_policy.is_empty() {
        if matches!(ty, "NodePort" | "LoadBalancer") {
            errs.required(&etp, "");
        }
    } else {
        errs.one_of(&etp, &spec.external_traffic_policy, &["Cluster", "Local"]);
        if matches!(ty, "ClusterIP" | "ExternalName") && spec.external_i_ps.is_empty() {
            errs.invalid(
                &etp,
                q(&spec.external_traffic_policy),
                "may only be set for externally-accessible services",
            );
        }
    }
    let itp = path.child("internalTrafficPolicy");
    match spec.internal_traffic_policy.as_deref() {
        None if !external_name => errs.required(&itp, ""),
        None => {}
        Some(p) => errs.one_of(&itp, p, &["Cluster", "Local"]),
    }
    if let Some(p) = spec.ip_family_policy.as_deref() {
        errs.one_of(
            &path.child("ipFamilyPolicy"),
            p,
            &["SingleStack", "PreferDualStack", "RequireDualStack"],
        );
    }
    let fp = path.child("ipFamilies");
    let mut families = Unique::default();
    for (i, f) in spec.ip_families.iter().enumerate() {
        errs.one_of(&fp.index(i), f, &["IPv4", "IPv6"]);
        families.check(f, &fp.index(i), errs);
    }
    if spec.ip_families.len() > 2 {
        errs.too_many(&fp, spec.ip_families.len(), 2);
    }

    let only_lb = "may only be used when `type` is 'LoadBalancer'";
    let rp = path.child("loadBalancerSourceRanges");
    if !spec.load_balancer_source_ranges.is_empty() && !load_balancer {
        errs.forbidden(&rp, only_lb);
    }
    for (i, r) in spec.load_balancer_source_ranges.iter().enumerate() {
        if parse_cidr(r.trim()).is_none() {
            errs.invalid(
                &rp.index(i),
                q(r),
                "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24",
            );
        }
    }
    if !spec.load_balancer_ip.is_empty() {
        let lp = path.child("loadBalancerIP");
        if !load_balancer {
            errs.forbidden(&lp, only_lb);
        } else if !is_ip(&spec.load_balancer_ip) {
            errs.invalid(&lp, q(&spec.load_balancer_ip), "must be a valid IP address");
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && !load_balancer {
        errs.forbidden(&path.child("allocateLoadBalancerNodePorts"), only_lb);
    }
    if let Some(class) = spec.load_balancer_class.as_deref() {
        let lp = path.child("loadBalancerClass");
        if !load_balancer {
            errs.forbidden(&lp, only_lb);
        } else {
            errs.syntax(&lp, class, names::qualified_name(class));
        }
    }
    if spec.health_check_node_port != 0 {
        let hp = path.child("healthCheckNodePort");
        if !load_balancer || spec.external_traffic_policy != "Local" {
            errs.forbidden(
                &hp,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            );
        } else {
            errs.in_range(&hp, spec.health_check_node_port.into(), 1, 65535);
        }
    }
    if let Some(td) = spec.traffic_distribution.as_deref() {
        errs.one_of(
            &path.child("trafficDistribution"),
            td,
            &["PreferClose", "PreferSameZone", "PreferSameNode"],
        );
    }

    if let Some(old) = old {
        validate_service_update(spec, old.spec.as_ref().unwrap_or(&default), &path, errs);
    }
}

fn validate_external_name(spec: &ServiceSpec, path: &Path, errs: &mut Errors) {
    let np = path.child("externalName");
    if spec.external_name.is_empty() {
        errs.required(&np, "");
    } else {
        let name = spec.external_name.strip_suffix('.').unwrap_or(&spec.external_name);
        errs.syntax(&np, &spec.external_name, names::dns1123_subdomain(name));
    }
    let forbid = "may not be set for ExternalName services";
    if !spec.cluster_ip.is_empty() {
        errs.forbidden(&path.child("clusterIP"), forbid);
    }
    if !spec.cluster_i_ps.is_empty() {
        errs.forbidden(&path.child("clusterIPs"), forbid);
    }
    if !spec.ip_families.is_empty() {
        errs.forbidden(&path.child("ipFamilies"), forbid);
    }
    if spec.ip_family_policy.is_some() {
        errs.forbidden(&path.child("ipFamilyPolicy"), forbid);
    }
}

fn validate_cluster_i_ps(spec: &ServiceSpec, path: &Path, errs: &mut Errors) {
    let ip_path = path.child("clusterIP");
    let ip = spec.cluster_ip.as_str();
    if !ip.is_empty() && ip != "None" && !is_ip(ip) {
        errs.invalid(&ip_path, q(ip), "must be empty, 'None', or a valid IP address");
    }
    if ip == "None" && spec.r#type != "ClusterIP" {
        errs.invalid(&ip_path, q(ip), format!("may not be set to 'None' for {} services", spec.r#type));
    }
    let ips_path = path.child("clusterIPs");
    if spec.cluster_i_ps.len() > 2 {
        errs.too_many(&ips_path, spec.cluster_i_ps.len(), 2);
    }
    for (i, v) in spec.cluster_i_ps.iter().enumerate() {
        let p = ips_path.index(i);
        if i == 0 && !ip.is_empty() {
            // The first entry mirrors clusterIP, which is checked above.
            if v != ip {
                errs.invalid(&p, q(v), "must match `clusterIP`");
            }
        } else if v == "None" {
            if spec.cluster_i_ps.len() > 1 {
                errs.invalid(&p, q(v), "must not have more than one item if the first item is 'None'");
            }
        } else if !is_ip(v) {
            errs.invalid(&p, q(v), "must be a valid IP address");
        }
    }
    if let [a, b] = spec.cluster_i_ps.as_slice() {
        let family = |v: &str| v.parse::<std::net::IpAddr>().ok().map(|ip| ip.is_ipv4());
        if family(a).is_some() && family(a) == family(b) {
            errs.invalid(&ips_path.index(1), q(b), "may specify no more than one IP for each IP family");
        }
    }
}

fn validate_ports(spec: &ServiceSpec, path: &Path, errs: &mut Errors) {
    let ty = spec.r#type.as_str();
    let node_ports_allowed = matches!(ty, "NodePort" | "LoadBalancer");
    let mut names = Unique::default();
    let mut ports = BTreeSet::new();
    let mut node_ports = BTreeSet::new();
    for (i, sp) in spec.ports.iter().enumerate() {
        let p = path.child("ports").index(i);
        let np = p.child("name");
        if sp.name.is_empty() {
            if spec.ports.len() > 1 {
                errs.required(&np, "");
            }
        } else {
            errs.syntax(&np, &sp.name, names::dns1123_label(&sp.name));
            names.check(&sp.name, &np, errs);
        }
        errs.in_range(&p.child("port"), sp.port.into(), 1, 65535);
        errs.required_one_of(&p.child("protocol"), &sp.protocol, PROTOCOLS);
        // ExternalName services have no endpoints, so their target ports are not used.
        if ty != "ExternalName" {
            validate_port_num_or_name(sp.target_port.as_ref(), &p.child("targetPort"), errs);
        }
        if let Some(ap) = sp.app_protocol.as_deref() {
            errs.syntax(&p.child("appProtocol"), ap, names::qualified_name(ap));
        }
        if sp.node_port != 0 {
            let npp = p.child("nodePort");
            if matches!(ty, "ClusterIP" | "ExternalName") {
                errs.forbidden(&npp, format!("may not be used when `type` is '{ty}'"));
            } else if !node_ports_allowed {
                // An unknown type is reported at `spec.type`.
            } else if !node_ports.insert((sp.node_port, sp.protocol.as_str())) {
                errs.duplicate(&npp, q(&format!("{}/{}", sp.node_port, sp.protocol)));
            }
        }
        if !ports.insert((sp.port, sp.protocol.as_str())) {
            errs.duplicate(&p, q(&format!("{}/{}", sp.port, sp.protocol)));
        }
    }
}

/// The cluster IP stays what it was once allocated (unless the service becomes or stops being an
/// ExternalName service); the load balancer class is fixed.
fn validate_service_update(new: &ServiceSpec, old: &ServiceSpec, path: &Path, errs: &mut Errors) {
    let name_change = new.r#type == "ExternalName" || old.r#type == "ExternalName";
    if !name_change {
        if !old.cluster_ip.is_empty() && !new.cluster_ip.is_empty() && new.cluster_ip != old.cluster_ip {
            errs.immutable(&path.child("clusterIP"));
        }
        let (o, n) = (old.cluster_i_ps.first(), new.cluster_i_ps.first());
        if o.is_some() && n.is_some() && o != n {
            errs.immutable(&path.child("clusterIPs").index(0));
        }
    }
    if old.r#type == "LoadBalancer"
        && new.r#type == "LoadBalancer"
        && old.load_balancer_class.is_some()
        && new.load_balancer_class != old.load_balancer_class
    {
        errs.immutable(&path.child("loadBalancerClass"));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    const NODE_PORT: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  labels: {app.kubernetes.io/name: web}
spec:
  type: NodePort
  selector: {app.kubernetes.io/name: web}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: https, port: 443, targetPort: 8443, protocol: TCP}
";

    #[test]
    fn defaults() {
        let navarch_api::Object::Service(svc) = defaulted(NODE_PORT) else { unreachable!() };
        let spec = svc.spec.unwrap();
        assert_eq!(spec.session_affinity, "None");
        assert_eq!(spec.external_traffic_policy, "Cluster");
        assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
        assert_eq!(spec.ports[0].protocol, "TCP");

        let db = "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: default}\nspec: {sessionAffinity: ClientIP, ports: [{port: 5432}]}\n";
        let navarch_api::Object::Service(svc) = defaulted(db) else { unreachable!() };
        let spec = svc.spec.unwrap();
        assert_eq!(spec.r#type, "ClusterIP");
        assert_eq!(spec.ports[0].target_port.as_ref().unwrap().as_int(), Some(5432));
        assert_eq!(spec.external_traffic_policy, "");
        let cfg = spec.session_affinity_config.unwrap().client_ip.unwrap();
        assert_eq!(cfg.timeout_seconds, Some(10800));
    }

    #[test]
    fn valid_services() {
        assert_valid(NODE_PORT);
        assert_valid(
            "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: default}\nspec: {clusterIP: None, selector: {app: db}}\n",
        );
        assert_valid(
            "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\nspec: {type: ExternalName, externalName: db.example.com.}\n",
        );
        assert_valid(
            "apiVersion: v1\nkind: Service\nmetadata: {name: lb, namespace: default}\nspec: {type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 80}], loadBalancerSourceRanges: [10.0.0.0/8]}\n",
        );
        assert_valid(
            "apiVersion: v1\nkind: Service\nmetadata: {name: fixed, namespace: default}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 53, protocol: UDP, name: dns}, {port: 53, protocol: TCP, name: dns-tcp}]}\n",
        );
    }

    #[test]
    fn invalid_fields() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "  type: NodePort\n",
                "  type: Internal\n",
                "spec.type",
                "Unsupported value: \"Internal\": supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\", \"ExternalName\"",
            ),
            (
                "port: 80,",
                "port: 0,",
                "spec.ports[0].port",
                "Invalid value: 0: must be between 1 and 65535, inclusive",
            ),
            ("port: 80,", "port: 65536,", "spec.ports[0].port", "must be between 1 and 65535"),
            ("{name: https,", "{name: http,", "spec.ports[1].name", "Duplicate value: \"http\""),
            ("{name: https,", "{", "spec.ports[1].name", "Required value"),
            ("{name: https,", "{name: HTTPS,", "spec.ports[1].name", "a lowercase RFC 1123 label"),
            (
                "targetPort: http,",
                "targetPort: 70000,",
                "spec.ports[0].targetPort",
                "must be between 1 and 65535",
            ),
            ("targetPort: http,", "targetPort: not_a-name,", "spec.ports[0].targetPort", "no more than 15"),
            (
                "targetPort: 8443, protocol: TCP",
                "targetPort: 8443, protocol: ICMP",
                "spec.ports[1].protocol",
                "Unsupported value: \"ICMP\"",
            ),
            (
                "  type: NodePort\n",
                "  type: ClusterIP\n",
                "spec.ports[0].nodePort",
                "Forbidden: may not be used when `type` is 'ClusterIP'",
            ),
            (
                "{name: https, port: 443,",
                "{name: https, port: 80,",
                "spec.ports[1]",
                "Duplicate value: \"80/TCP\"",
            ),
            (
                "  type: NodePort\n",
                "  type: NodePort\n  clusterIP: 10.0.0.300\n",
                "spec.clusterIP",
                "must be empty, 'None', or a valid IP address",
            ),
            (
                "  type: NodePort\n",
                "  type: NodePort\n  clusterIP: None\n",
                "spec.clusterIP",
                "may not be set to 'None' for NodePort services",
            ),
            (
                "  type: NodePort\n",
                "  type: NodePort\n  sessionAffinity: Sticky\n",
                "spec.sessionAffinity",
                "Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"",
            ),
            (
                "  type: NodePort\n",
                "  type: NodePort\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n",
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                "must be greater than 0 and less than 86400",
            ),
            (
                "  type: NodePort\n",
                "  type: NodePort\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10}}\n",
                "spec.sessionAffinityConfig",
                "must not be set when session affinity is None",
            ),
            (
                "  selector: {app.kubernetes.io/name: web}\n",
                "  selector: {app.kubernetes.io/name: web!}\n",
                "spec.selector[app.kubernetes.io/name]",
                "a valid label must be",
            ),
            (
                "  type: NodePort\n",
                "  type: NodePort\n  externalTrafficPolicy: Nearby\n",
                "spec.externalTrafficPolicy",
                "Unsupported value: \"Nearby\"",
            ),
            (
                "  type: NodePort\n",
                "  type: NodePort\n  externalIPs: [1.2.3]\n",
                "spec.externalIPs[0]",
                "must be a valid IP address",
            ),
            (
                "  type: NodePort\n",
                "  type: NodePort\n  loadBalancerSourceRanges: [10.0.0.0/8]\n",
                "spec.loadBalancerSourceRanges",
                "may only be used when `type` is 'LoadBalancer'",
            ),
        ];
        assert_edit_errors(NODE_PORT, cases);
    }

    #[test]
    fn ports_required_unless_headless_or_external_name() {
        assert_error(
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: default}\nspec: {selector: {app: x}}\n",
            "spec.ports",
            "Required value",
        );
        assert_error(
            "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\nspec: {type: ExternalName}\n",
            "spec.externalName",
            "Required value",
        );
        assert_error(
            "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\nspec: {type: ExternalName, externalName: a.b, clusterIP: 10.0.0.1}\n",
            "spec.clusterIP",
            "may not be set for ExternalName services",
        );
    }

    #[test]
    fn cluster_ip_is_immutable() {
        let with_ip = edit(NODE_PORT, "  type: NodePort\n", "  type: NodePort\n  clusterIP: 10.96.0.20\n");
        let other_ip = edit(NODE_PORT, "  type: NodePort\n", "  type: NodePort\n  clusterIP: 10.96.0.21\n");
        let errs = update_errors(&with_ip, &other_ip);
        assert_eq!(errs.len(), 2, "{}", render(&errs));
        assert_eq!(errs[0].to_string(), "spec.clusterIP: field is immutable");
        assert_eq!(errs[1].to_string(), "spec.clusterIPs[0]: field is immutable");
        assert!(update_errors(&with_ip, &with_ip).is_empty());
        assert!(update_errors(NODE_PORT, &with_ip).is_empty(), "allocation sets the IP once");
        let ext = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\n  labels: {app.kubernetes.io/name: web}\nspec: {type: ExternalName, externalName: example.com}\n";
        assert!(update_errors(&with_ip, ext).is_empty(), "to ExternalName drops the IP");
    }
}
