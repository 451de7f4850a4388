//! The nftables program: one table of kube-proxy's own (`ip navarch-proxy`). Fixed chains hook into
//! NAT and filter; Services live in verdict maps and one chain per service port, so a change
//! touches only the chain and map elements of the Services that changed.
//!
//! ```text
//! nat-prerouting / nat-output ─► services: ip daddr . l4proto . dport  vmap @service-ips
//!                                          fib daddr local: l4proto . dport vmap @service-nodeports
//! service-ips      clusterIP . tcp . 80   : goto svc-<id>     (external/LB IP: goto ext-<id>)
//! service-nodeports          tcp . 30080  : goto ext-<id>
//! svc-<id>   off-cluster source → mark for masquerade; affinity hits → dnat to their endpoint;
//!            numgen random mod n == 0 → dnat to endpoint 1, mod n-1 → endpoint 2, …, last → endpoint n
//! ext-<id>   Cluster: mark for masquerade, goto svc-<id>;  Local: dnat to this node's endpoints, or drop
//! nat-postrouting: marked → masquerade; DNATed back to its own source (hairpin, @hairpin) → masquerade
//! filter-forward / filter-output (ct new): daddr still a ClusterIP (no endpoints, unknown port) → reject
//! filter-input (ct new): a node port without endpoints → reject
//! ```
//!
//! The shape is set by what the kernel's commit costs: a transaction that adds a jump checks for
//! loops by walking every verdict map in the table, and validates every chain reachable from the
//! hooks. So there are no per-endpoint chains and no per-Service maps: at 10,000 Services the
//! graph is 10,000 small chains and a change commits in tens of milliseconds (`make bench-proxy`).
//!
//! [`Desired`] is the whole dynamic part; [`full_script`] writes everything in one transaction
//! (replacing the table atomically: no moment without rules, e.g. across a restart) and
//! [`diff_script`] only what changed between two states.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::model::{Endpoint, ServicePort};

pub const TABLE: &str = "navarch-proxy";
const MASQ_MARK: &str = "0x4000";
/// Marks a connection for masquerading in postrouting (inline: no jump, so no chain to walk).
const MARK_FOR_MASQUERADE: &str = "meta mark set meta mark | 0x4000";

/// The dynamic part of the ruleset.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Desired {
    /// chain name → its rules
    pub chains: BTreeMap<String, Vec<String>>,
    /// dynamic set name → its definition (for affinity)
    pub sets: BTreeMap<String, String>,
    /// (map or set, key) → verdict (empty for a set element)
    pub elements: BTreeMap<(String, String), String>,
    /// Endpoint IPs on this node (or on no known node) that may reach themselves through a Service
    /// (hairpin): elements `ip . ip` of `@hairpin`. One pod can back several Services, so these are
    /// shared: the proxier keeps them by count ([`hairpin_script`]) and [`diff_script`] leaves them.
    pub hairpin: BTreeSet<Ipv4Addr>,
}

impl Desired {
    /// Rules plus map/set elements: what a full sync programs.
    pub fn size(&self) -> usize {
        self.chains.values().map(Vec::len).sum::<usize>() + self.elements.len() + self.hairpin.len()
    }
}

/// Settings the rules depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    /// The pod range: traffic from outside it to a ClusterIP is masqueraded (Kubernetes'
    /// `--cluster-cidr` behaviour), so replies come back through this node.
    pub cluster_cidr: Option<String>,
    /// This node's name (for externalTrafficPolicy: Local).
    pub node_name: String,
}

fn affinity_set(sp: &ServicePort, e: &Endpoint) -> String {
    format!("affinity-{}__{}/{}", sp.id, e.ip, e.port)
}

/// The DNAT rules choosing one of `endpoints`: with ClientIP affinity, a client seen recently goes
/// back to its endpoint first; otherwise a random pick, iptables-style (the k-th of n rules takes
/// 1/(n-k) of what reaches it, so each endpoint gets 1/n). Plain rules rather than a `numgen` vmap:
/// an anonymous map per Service makes every later jump check in the kernel walk all of them.
fn dnat_rules(d: &mut Desired, sp: &ServicePort, endpoints: &[&Endpoint]) -> Vec<String> {
    let proto = sp.protocol;
    let mut rules = Vec::new();
    let mut remember = Vec::new();
    if let Some(timeout) = sp.affinity_seconds {
        for e in endpoints {
            let set = affinity_set(sp, e);
            d.sets.insert(set.clone(), format!("type ipv4_addr; flags dynamic,timeout; timeout {timeout}s;"));
            let update = format!("update @{set} {{ ip saddr }} ");
            rules.push(format!("ip saddr @{set} {update}meta l4proto {proto} dnat to {}:{}", e.ip, e.port));
            remember.push(update);
        }
    }
    let n = endpoints.len();
    for (k, e) in endpoints.iter().enumerate() {
        let pick = if k + 1 < n { format!("numgen random mod {} == 0 ", n - k) } else { String::new() };
        let update = remember.get(k).map_or("", String::as_str);
        rules.push(format!("{pick}{update}meta l4proto {proto} dnat to {}:{}", e.ip, e.port));
    }
    rules
}

/// The chains, sets and map elements of one service port.
fn add_service_port(d: &mut Desired, sp: &ServicePort, cfg: &RuleConfig) {
    let svc_chain = format!("svc-{}", sp.id);
    let ext_chain = format!("ext-{}", sp.id);
    let proto = sp.protocol;
    d.elements.insert(("cluster-ips".into(), sp.cluster_ip.to_string()), String::new());
    let has_external = sp.node_port.is_some() || !sp.external_ips.is_empty();
    if sp.endpoints.is_empty() {
        // No endpoints: no DNAT; the ClusterIP stays in @cluster-ips and is rejected; so is the node port.
        if let Some(np) = sp.node_port {
            d.elements.insert(("no-endpoint-nodeports".into(), format!("{proto} . {np}")), String::new());
        }
        return;
    }
    let all: Vec<&Endpoint> = sp.endpoints.iter().collect();
    let svc_rules = dnat_rules(d, sp, &all);
    d.chains.insert(svc_chain.clone(), svc_rules);
    // A pod reaching itself through the Service (hairpin) is masqueraded in postrouting; only pods
    // on this node can send such a packet here.
    d.hairpin
        .extend(sp.endpoints.iter().filter(|e| e.node.is_empty() || e.node == cfg.node_name).map(|e| e.ip));
    d.elements.insert(
        ("service-ips".into(), format!("{} . {proto} . {}", sp.cluster_ip, sp.port)),
        format!("goto {svc_chain}"),
    );
    if !has_external {
        return;
    }
    let ext_rules = if sp.external_local {
        let local: Vec<&Endpoint> = sp.endpoints.iter().filter(|e| e.node == cfg.node_name).collect();
        if local.is_empty() { vec!["drop".to_string()] } else { dnat_rules(d, sp, &local) }
    } else {
        vec![MARK_FOR_MASQUERADE.to_string(), format!("goto {svc_chain}")]
    };
    d.chains.insert(ext_chain.clone(), ext_rules);
    for ip in &sp.external_ips {
        d.elements.insert(
            ("service-ips".into(), format!("{ip} . {proto} . {}", sp.port)),
            format!("goto {ext_chain}"),
        );
    }
    if let Some(np) = sp.node_port {
        d.elements
            .insert(("service-nodeports".into(), format!("{proto} . {np}")), format!("goto {ext_chain}"));
    }
}

/// The desired dynamic state for all service ports.
pub fn desired(ports: &[ServicePort], cfg: &RuleConfig) -> Desired {
    let mut d = Desired::default();
    for sp in ports {
        add_service_port(&mut d, sp, cfg);
    }
    d
}

/// The fixed part: maps, sets and hooked chains.
fn base(cfg: &RuleConfig) -> String {
    // Traffic from outside the pod range to a ClusterIP is masqueraded (replies come back here).
    let off_cluster = match &cfg.cluster_cidr {
        Some(cidr) => format!("ip daddr @cluster-ips ip saddr != {cidr} {MARK_FOR_MASQUERADE}\n    "),
        None => String::new(),
    };
    format!(
        "table ip {TABLE} {{
  map service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map service-nodeports {{ type inet_proto . inet_service : verdict; }}
  set cluster-ips {{ type ipv4_addr; }}
  set no-endpoint-nodeports {{ type inet_proto . inet_service; }}
  set hairpin {{ type ipv4_addr . ipv4_addr; }}
  chain masquerading {{
    meta mark & {MASQ_MARK} == 0 return
    meta mark set meta mark ^ {MASQ_MARK}
    masquerade fully-random
  }}
  chain services {{
    {off_cluster}ip daddr . meta l4proto . th dport vmap @service-ips
    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports
  }}
  chain nat-prerouting {{ type nat hook prerouting priority dstnat; policy accept; jump services; }}
  chain nat-output {{ type nat hook output priority -100; policy accept; jump services; }}
  chain nat-postrouting {{ type nat hook postrouting priority srcnat; policy accept; jump masquerading; ct status dnat ip saddr . ip daddr @hairpin masquerade fully-random; }}
  chain reject-cluster-ips {{
    ip daddr @cluster-ips meta l4proto tcp reject with tcp reset
    ip daddr @cluster-ips reject
  }}
  chain filter-forward {{ type filter hook forward priority filter; policy accept; ct state new jump reject-cluster-ips; }}
  chain filter-output {{ type filter hook output priority filter; policy accept; ct state new jump reject-cluster-ips; }}
  chain filter-input {{
    type filter hook input priority filter; policy accept;
    ct state new fib daddr type local meta l4proto . th dport @no-endpoint-nodeports meta l4proto tcp reject with tcp reset
    ct state new fib daddr type local meta l4proto . th dport @no-endpoint-nodeports reject
  }}
}}
"
    )
}

fn element_line(out: &mut String, verb: &str, (map, key): &(String, String), value: &str) {
    if value.is_empty() || verb == "delete" {
        let _ = writeln!(out, "{verb} element ip {TABLE} {map} {{ {key} }}");
    } else {
        let _ = writeln!(out, "{verb} element ip {TABLE} {map} {{ {key} : {value} }}");
    }
}

/// Everything, replacing whatever the table held, in one transaction.
pub fn full_script(d: &Desired, cfg: &RuleConfig) -> String {
    let mut out = format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n");
    out.push_str(&base(cfg));
    for (name, def) in &d.sets {
        let _ = writeln!(out, "add set ip {TABLE} {name} {{ {def} }}");
    }
    for name in d.chains.keys() {
        let _ = writeln!(out, "add chain ip {TABLE} {name}");
    }
    for (name, rules) in &d.chains {
        for r in rules {
            let _ = writeln!(out, "add rule ip {TABLE} {name} {r}");
        }
    }
    // Elements in one statement per map (in chunks): nft parses that far faster than a line each.
    let mut by_map: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((map, key), v) in &d.elements {
        by_map.entry(map).or_default().push(if v.is_empty() { key.clone() } else { format!("{key} : {v}") });
    }
    by_map.insert("hairpin", d.hairpin.iter().map(|ip| format!("{ip} . {ip}")).collect());
    for (map, items) in by_map {
        for chunk in items.chunks(1000) {
            let _ = writeln!(out, "add element ip {TABLE} {map} {{ {} }}", chunk.join(", "));
        }
    }
    out
}

/// Adds and removes `@hairpin` elements (IPs whose count went from zero, or to zero).
pub fn hairpin_script(add: &BTreeSet<Ipv4Addr>, delete: &BTreeSet<Ipv4Addr>) -> String {
    let mut out = String::new();
    for (verb, ips) in [("delete", delete), ("add", add)] {
        if !ips.is_empty() {
            let items: Vec<String> = ips.iter().map(|ip| format!("{ip} . {ip}")).collect();
            let _ = writeln!(out, "{verb} element ip {TABLE} hairpin {{ {} }}", items.join(", "));
        }
    }
    out
}

/// The commands taking the kernel from `old` to `new`, and how many rules and elements they touch
/// (0 and an empty script when nothing changed).
pub fn diff_script(old: &Desired, new: &Desired) -> (String, usize) {
    let mut out = String::new();
    let mut touched = 0;
    // New sets and chains first, so rules and elements can refer to them.
    for (name, def) in &new.sets {
        match old.sets.get(name) {
            Some(o) if o == def => {}
            Some(_) => {
                // A changed timeout: the set is recreated below (after its users are rewritten).
            }
            None => {
                let _ = writeln!(out, "add set ip {TABLE} {name} {{ {def} }}");
            }
        }
    }
    for name in new.chains.keys().filter(|n| !old.chains.contains_key(*n)) {
        let _ = writeln!(out, "add chain ip {TABLE} {name}");
    }
    // Elements that go or change: delete before chains they point at go.
    for (k, v) in &old.elements {
        if new.elements.get(k) != Some(v) {
            element_line(&mut out, "delete", k, v);
            touched += 1;
        }
    }
    // Chains whose rules changed are rewritten; chains that go are emptied (then deleted below). A
    // chain using a set that is recreated is rewritten too.
    let changed_sets: BTreeSet<&String> =
        new.sets.iter().filter(|(n, d)| old.sets.get(*n).is_some_and(|o| o != *d)).map(|(n, _)| n).collect();
    let kept = |name: &String, rules: &Vec<String>| {
        old.chains.get(name) == Some(rules)
            && new.chains.get(name) == Some(rules)
            && !changed_sets.iter().any(|s| rules.iter().any(|r| r.contains(s.as_str())))
    };
    for (name, rules) in &old.chains {
        if !kept(name, rules) {
            let _ = writeln!(out, "flush chain ip {TABLE} {name}");
            touched += rules.len();
        }
    }
    for name in &changed_sets {
        let _ = writeln!(out, "delete set ip {TABLE} {name}");
        let _ = writeln!(out, "add set ip {TABLE} {name} {{ {} }}", new.sets[*name]);
    }
    for (name, rules) in &new.chains {
        if !kept(name, rules) {
            for r in rules {
                let _ = writeln!(out, "add rule ip {TABLE} {name} {r}");
            }
            touched += rules.len();
        }
    }
    for (k, v) in &new.elements {
        if old.elements.get(k) != Some(v) {
            element_line(&mut out, "add", k, v);
            touched += 1;
        }
    }
    for name in old.chains.keys().filter(|n| !new.chains.contains_key(*n)) {
        let _ = writeln!(out, "delete chain ip {TABLE} {name}");
    }
    for name in old.sets.keys().filter(|n| !new.sets.contains_key(*n)) {
        let _ = writeln!(out, "delete set ip {TABLE} {name}");
    }
    (out, touched)
}

/// Removes the table (`--cleanup`).
pub fn cleanup_script() -> String {
    format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DEFAULT_AFFINITY_SECONDS;

    fn sp(id: &str, ip: &str, eps: &[(&str, &str)]) -> ServicePort {
        let endpoints = eps.iter().map(|(ip, node)| Endpoint {
            ip: ip.parse().unwrap(),
            port: 9376,
            node: node.to_string(),
        });
        ServicePort::tcp80(id, ip, endpoints.collect())
    }

    fn cfg() -> RuleConfig {
        RuleConfig { cluster_cidr: Some("10.244.0.0/16".into()), node_name: "n1".into() }
    }

    #[test]
    fn service_with_two_endpoints() {
        let d = desired(
            &[sp("default/web/tcp/80", "10.96.0.10", &[("10.244.0.4", "n1"), ("10.244.0.5", "n2")])],
            &cfg(),
        );
        assert_eq!(
            d.chains["svc-default/web/tcp/80"],
            vec![
                "numgen random mod 2 == 0 meta l4proto tcp dnat to 10.244.0.4:9376".to_string(),
                "meta l4proto tcp dnat to 10.244.0.5:9376".into(),
            ]
        );
        assert_eq!(d.chains.len(), 1, "one chain per service port, none per endpoint");
        // Only the endpoint on this node (n1) can hairpin here.
        assert_eq!(d.hairpin, BTreeSet::from(["10.244.0.4".parse().unwrap()]));
        assert_eq!(
            d.elements[&("service-ips".into(), "10.96.0.10 . tcp . 80".into())],
            "goto svc-default/web/tcp/80"
        );
        assert!(d.elements.contains_key(&("cluster-ips".into(), "10.96.0.10".into())));
    }

    #[test]
    fn no_endpoints_means_reject_and_node_ports_and_affinity() {
        let mut empty = sp("a/b/tcp/80", "10.96.0.11", &[]);
        empty.node_port = Some(30001);
        let d = desired(&[empty], &cfg());
        assert!(d.chains.is_empty());
        assert!(d.elements.contains_key(&("no-endpoint-nodeports".into(), "tcp . 30001".into())));
        assert!(!d.elements.keys().any(|(m, _)| m == "service-ips"));

        let mut sticky = sp("a/s/tcp/80", "10.96.0.12", &[("10.244.0.4", "n2")]);
        sticky.affinity_seconds = Some(DEFAULT_AFFINITY_SECONDS);
        sticky.node_port = Some(30002);
        sticky.external_local = true;
        let d = desired(&[sticky], &cfg());
        assert_eq!(
            d.sets["affinity-a/s/tcp/80__10.244.0.4/9376"],
            "type ipv4_addr; flags dynamic,timeout; timeout 10800s;"
        );
        let set = "@affinity-a/s/tcp/80__10.244.0.4/9376";
        assert_eq!(
            d.chains["svc-a/s/tcp/80"],
            [
                format!(
                    "ip saddr {set} update {set} {{ ip saddr }} meta l4proto tcp dnat to 10.244.0.4:9376"
                ),
                format!("update {set} {{ ip saddr }} meta l4proto tcp dnat to 10.244.0.4:9376"),
            ]
        );
        // Local policy, endpoint on another node: external traffic is dropped, not sent away.
        assert_eq!(d.chains["ext-a/s/tcp/80"], vec!["drop".to_string()]);
        assert_eq!(d.elements[&("service-nodeports".into(), "tcp . 30002".into())], "goto ext-a/s/tcp/80");
    }

    #[test]
    fn diff_touches_only_what_changed() {
        let a = sp("default/a/tcp/80", "10.96.0.10", &[("10.244.0.4", "n1")]);
        let b = sp("default/b/tcp/80", "10.96.0.20", &[("10.244.0.6", "n1")]);
        let old = desired(&[a.clone(), b.clone()], &cfg());
        assert_eq!(diff_script(&old, &old), (String::new(), 0));
        let b2 = sp("default/b/tcp/80", "10.96.0.20", &[("10.244.0.6", "n1"), ("10.244.0.7", "n1")]);
        let new = desired(&[a.clone(), b2], &cfg());
        let (script, touched) = diff_script(&old, &new);
        assert!(!script.contains("default/a/"), "service a untouched:\n{script}");
        assert!(
            script.contains(
                "add rule ip navarch-proxy svc-default/b/tcp/80 meta l4proto tcp dnat to 10.244.0.7:9376"
            ),
            "{script}"
        );
        assert!(script.contains("flush chain ip navarch-proxy svc-default/b/tcp/80"), "{script}");
        assert!(touched > 0 && touched < 10, "{touched}");
        // Removing b: elements go before its chains are deleted.
        let (script, _) = diff_script(&new, &desired(&[a], &cfg()));
        let del_elem =
            script.find("delete element ip navarch-proxy service-ips { 10.96.0.20 . tcp . 80 }").unwrap();
        let del_chain = script.find("delete chain ip navarch-proxy svc-default/b/tcp/80").unwrap();
        assert!(del_elem < del_chain, "{script}");
    }
}
