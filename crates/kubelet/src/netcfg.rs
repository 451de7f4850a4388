//! The host side of pod networking, set once at start: `unreachable` routes over the whole pod and
//! Service ranges (the bridge's own, more specific route overrides them, so a packet for a missing
//! pod or an unprogrammed Service IP is refused instead of going to the default gateway), and the
//! pods' guard, an nftables table `inet navarch-kubelet` (replaced whole, in one transaction).
//!
//! The guard is defence in depth until NetworkPolicy exists. It looks only at packets that come in
//! from the pods' bridge (`iifname <bridge>`), in the filter hooks, so after kube-proxy's DNAT: a
//! pod's DNS query to the kube-dns ClusterIP is seen going to the cluster DNS server's address and
//! port 53, a request to the `kubernetes` Service going to the api-server's address and port.
//!
//! * `input` (to this node's own addresses: the bridge's gateway address, the node IP, ...): replies
//!   (`ct state established,related`) pass; new connections only to DNS (UDP and TCP 53) and the
//!   api-server's port (TCP). Anything else (the kubelet API, its HTTP port, kube-proxy's, sshd, any
//!   IPv6) is rejected: a pod cannot reach its own node's daemons through the bridge.
//! * `forward` (to other hosts): replies pass; the cluster's pod and Service ranges pass (pod to pod,
//!   pod to Service, NodePorts and hostPorts of this node, DNATed to a pod); the **node network**
//!   only for DNS and the api-server's port; everything else is rejected, unless egress is allowed
//!   (`--allow-pod-egress`), in which case it passes.
//!
//! The **node network** is where the cluster DNS and the api-server live and the nodes' daemons
//! listen (kubelet API, etcd, registry, ...):
//!
//! * egress off (the default): the `--pod-egress-allowed` ranges. Pods reach nothing outside the
//!   cluster's ranges but these ranges, and those only for DNS and the api-server's port;
//! * egress on: the same ranges plus the subnets of this host's own IPv4 addresses (read from its
//!   interfaces once, at start; loopback and addresses inside the cluster's ranges left out). Pods
//!   reach the rest of the world, but their own node network still only for DNS and the api-server.
//!   A node network that no interface of this host lies in (e.g. nodes with /32 addresses on a
//!   cloud network) must be named in `--pod-egress-allowed`.
//!
//! Rejections are TCP resets for TCP and ICMP admin-prohibited for the rest (see [`REJECT`]). The
//! api-server's port is the one of the kubelet's own api-server address (kubeconfig or `--server`);
//! Services whose endpoints are on the node network on other ports (and other nodes' NodePorts,
//! which only their own node translates) are out of the pods' reach. What starts from the node
//! (probes, port-forward, the api-server → kubelet relay, NodePorts from the host) is untouched, and
//! its replies from pods pass as `established`.

use std::net::Ipv4Addr;

use navarch_api::Ipv4Cidr;

pub const TABLE: &str = "navarch-kubelet";

/// Rejection, as kube-proxy's: a TCP reset for TCP (`connect` fails at once with "Connection
/// refused"), ICMP admin-prohibited for the rest ("No route to host"). (The kernel rate-limits the
/// ICMP errors it sends a host, about one a second: TCP rejected with them alone would wait a
/// second per refused connection for the SYN's retransmission.)
const REJECT: [&str; 2] =
    ["meta l4proto tcp reject with tcp reset", "reject with icmpx type admin-prohibited"];

#[derive(Debug, thiserror::Error)]
pub enum HostNetError {
    #[error("{cmd}: {message}")]
    Command { cmd: String, message: String },
    #[error("api-server address {0:?}: no port in it and no https:// or http:// scheme to imply one")]
    ServerPort(String),
    #[error("reading this host's addresses (ip -j addr): {0}")]
    Addresses(String),
}

/// What the host networking is made of (the kubelet's settings).
#[derive(Debug, Clone, PartialEq)]
pub struct HostNet<'a> {
    /// The pods' bridge.
    pub bridge: &'a str,
    /// The whole cluster's pod range.
    pub cluster_cidr: Ipv4Cidr,
    /// The Service range.
    pub service_cidr: Ipv4Cidr,
    /// `--allow-pod-egress`.
    pub allow_egress: bool,
    /// `--pod-egress-allowed`: the node network's ranges named explicitly.
    pub pod_egress_allowed: &'a [Ipv4Cidr],
    /// The api-server's port, which pods may reach on the node network.
    pub api_server_port: u16,
}

/// The pods' guard: what the nftables table is written from.
#[derive(Debug, Clone, PartialEq)]
pub struct PodGuard {
    pub bridge: String,
    /// Pods reach these freely (the pod and Service ranges).
    pub cluster_ranges: Vec<Ipv4Cidr>,
    /// Pods reach these only for DNS and the api-server's port.
    pub node_network: Vec<Ipv4Cidr>,
    pub api_server_port: u16,
    /// Whether pods reach what is neither of the above.
    pub allow_egress: bool,
}

impl PodGuard {
    /// The guard for `net`, given the subnets of this host's own addresses (used when egress is on).
    pub fn new(net: &HostNet, host_subnets: &[Ipv4Cidr]) -> PodGuard {
        let cluster_ranges = vec![net.cluster_cidr.trunc(), net.service_cidr.trunc()];
        let in_cluster = |c: &Ipv4Cidr| cluster_ranges.iter().any(|r| r.contains(c.network()));
        let mut node_network: Vec<Ipv4Cidr> = net.pod_egress_allowed.to_vec();
        if net.allow_egress {
            node_network.extend(host_subnets.iter().filter(|c| !in_cluster(c)));
        }
        PodGuard {
            bridge: net.bridge.to_string(),
            cluster_ranges,
            node_network: minimal_cover(&node_network),
            api_server_port: net.api_server_port,
            allow_egress: net.allow_egress,
        }
    }

    /// The nftables table (without the statements that replace an existing one).
    pub fn ruleset(&self) -> String {
        let from_pods = format!("iifname \"{}\"", self.bridge);
        let mut forward = vec![
            format!("{from_pods} ct state established,related accept"),
            format!("{from_pods} ip daddr {} accept", set(&self.cluster_ranges)),
        ];
        if !self.node_network.is_empty() {
            forward.push(format!("{from_pods} ip daddr {} goto node-services", set(&self.node_network)));
        }
        if !self.allow_egress {
            forward.extend(REJECT.map(|r| format!("{from_pods} {r}")));
        }
        let input = [
            format!("{from_pods} ct state established,related accept"),
            format!("{from_pods} goto node-services"),
        ];
        let chain = |name: &str, hook: &str, rules: &[String]| {
            let mut out = format!("  chain {name} {{\n");
            if !hook.is_empty() {
                out.push_str(&format!("    type filter hook {hook} priority filter; policy accept;\n"));
            }
            for r in rules {
                out.push_str(&format!("    {r}\n"));
            }
            out + "  }\n"
        };
        let mut services = vec![
            "meta l4proto { tcp, udp } th dport 53 accept".to_string(),
            format!("tcp dport {} accept", self.api_server_port),
        ];
        services.extend(REJECT.map(str::to_string));
        format!(
            "table inet {TABLE} {{\n{}{}{}}}\n",
            chain("node-services", "", &services),
            chain("input", "input", &input),
            chain("forward", "forward", &forward)
        )
    }
}

/// `{ a, b }`, each range written with its network address.
fn set(ranges: &[Ipv4Cidr]) -> String {
    let items: Vec<String> = ranges.iter().map(|c| c.trunc().to_string()).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The ranges without those inside another (nftables refuses overlapping intervals in a set),
/// each with its network address, in address order.
fn minimal_cover(ranges: &[Ipv4Cidr]) -> Vec<Ipv4Cidr> {
    let mut by_size: Vec<Ipv4Cidr> = ranges.iter().map(Ipv4Cidr::trunc).collect();
    by_size.sort_by_key(|c| (c.prefix_len(), c.network()));
    let mut kept: Vec<Ipv4Cidr> = Vec::new();
    for c in by_size {
        if !kept.iter().any(|k| k.contains(c.network())) {
            kept.push(c);
        }
    }
    kept.sort_by_key(|c| c.network());
    kept
}

/// The port of an api-server address (`https://host:port[/...]`, `host:port`, `[v6]:port`; no port:
/// 443 for https, 80 for http).
pub fn server_port(server: &str) -> Result<u16, HostNetError> {
    let (scheme, rest) = server.split_once("://").map_or(("", server), |(s, r)| (s, r));
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let port = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => Some(port),
        _ => None,
    };
    match (port, scheme) {
        (Some(p), _) => p.parse().map_err(|_| HostNetError::ServerPort(server.to_string())),
        (None, "https") => Ok(443),
        (None, "http") => Ok(80),
        (None, _) => Err(HostNetError::ServerPort(server.to_string())),
    }
}

/// The subnets of the global IPv4 addresses in `ip -j -4 addr show`'s output.
pub fn subnets_of(ip_json: &str) -> Result<Vec<Ipv4Cidr>, HostNetError> {
    let links: serde_json::Value =
        serde_json::from_str(ip_json).map_err(|e| HostNetError::Addresses(e.to_string()))?;
    let mut out = Vec::new();
    for link in links.as_array().into_iter().flatten() {
        for a in link["addr_info"].as_array().into_iter().flatten() {
            if a["family"] != "inet" || a["scope"] == "host" {
                continue;
            }
            let (Some(local), Some(len)) = (a["local"].as_str(), a["prefixlen"].as_u64()) else { continue };
            let addr: Ipv4Addr =
                local.parse().map_err(|_| HostNetError::Addresses(format!("address {local:?}")))?;
            if addr.is_loopback() {
                continue;
            }
            let cidr = Ipv4Cidr::new(addr, len.min(32) as u8).expect("a prefix length of at most 32");
            out.push(cidr.trunc());
        }
    }
    Ok(out)
}

async fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> Result<String, HostNetError> {
    use tokio::io::AsyncWriteExt;
    let full = format!("{cmd} {}", args.join(" "));
    let failed = |message: String| HostNetError::Command { cmd: full.clone(), message };
    let mut child = tokio::process::Command::new(cmd)
        .args(args)
        .stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await.map_err(|e| failed(e.to_string()))?;
    }
    let out = child.wait_with_output().await.map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Replaces the table wholesale: create (if absent), delete and add, in one transaction.
fn replace_table(table: &str) -> String {
    format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\n{table}")
}

/// Installs the unreachable routes and the pods' guard (see the module's docs). Idempotent.
pub async fn setup_host(net: &HostNet<'_>) -> Result<PodGuard, HostNetError> {
    for cidr in [net.cluster_cidr, net.service_cidr] {
        run("ip", &["route", "replace", "unreachable", &cidr.trunc().to_string()], None).await?;
    }
    let host_subnets = if net.allow_egress {
        subnets_of(&run("ip", &["-j", "-4", "addr", "show"], None).await?)?
    } else {
        vec![]
    };
    let guard = PodGuard::new(net, &host_subnets);
    run("nft", &["-f", "-"], Some(&replace_table(&guard.ruleset()))).await?;
    Ok(guard)
}

/// Removes what [`setup_host`] installed (for `make down` and tests).
pub async fn teardown_host(cluster_cidr: &str, service_cidr: &str) -> Result<(), HostNetError> {
    for cidr in [cluster_cidr, service_cidr] {
        let _ = run("ip", &["route", "del", "unreachable", cidr], None).await;
    }
    run("nft", &["-f", "-"], Some(&replace_table(""))).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Ipv4Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn net(allow_egress: bool, allowed: &[Ipv4Cidr]) -> HostNet<'_> {
        HostNet {
            bridge: "nv0",
            cluster_cidr: "10.244.0.0/16".parse().unwrap(),
            service_cidr: "10.96.0.0/12".parse().unwrap(),
            allow_egress,
            pod_egress_allowed: allowed,
            api_server_port: 6443,
        }
    }

    const SERVICES: &str = "  chain node-services {
    meta l4proto { tcp, udp } th dport 53 accept
    tcp dport 6443 accept
    meta l4proto tcp reject with tcp reset
    reject with icmpx type admin-prohibited
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname \"nv0\" ct state established,related accept
    iifname \"nv0\" goto node-services
  }
";

    #[test]
    fn egress_off_node_network_is_the_allowed_ranges() {
        let allowed = cidrs(&["10.250.0.1/24"]);
        // Host subnets are not read when egress is off: the allowed ranges are all there is.
        let guard = PodGuard::new(&net(false, &allowed), &cidrs(&["192.168.1.0/24"]));
        assert_eq!(
            guard.ruleset(),
            format!(
                "table inet navarch-kubelet {{\n{SERVICES}  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname \"nv0\" ct state established,related accept
    iifname \"nv0\" ip daddr {{ 10.244.0.0/16, 10.96.0.0/12 }} accept
    iifname \"nv0\" ip daddr {{ 10.250.0.0/24 }} goto node-services
    iifname \"nv0\" meta l4proto tcp reject with tcp reset
    iifname \"nv0\" reject with icmpx type admin-prohibited
  }}
}}
"
            )
        );
    }

    #[test]
    fn egress_on_still_guards_the_node_network() {
        let allowed = cidrs(&["10.250.0.0/16"]);
        // The host's subnets join the node network, minus those inside the cluster's ranges (the
        // pods' bridge) and those inside another range.
        let host = cidrs(&["10.250.3.0/24", "192.168.1.0/24", "10.244.1.0/24", "172.16.0.0/12"]);
        let guard = PodGuard::new(&net(true, &allowed), &host);
        assert_eq!(guard.node_network, cidrs(&["10.250.0.0/16", "172.16.0.0/12", "192.168.1.0/24"]));
        let rules = guard.ruleset();
        assert!(rules.contains(
            "    iifname \"nv0\" ip daddr { 10.250.0.0/16, 172.16.0.0/12, 192.168.1.0/24 } goto node-services\n  }\n}\n"
        ), "{rules}");
        assert!(rules.contains(SERVICES), "{rules}");
        assert!(!rules.contains("iifname \"nv0\" reject"), "egress allowed: {rules}");
    }

    #[test]
    fn no_node_network_no_rule() {
        let rules = PodGuard::new(&net(false, &[]), &[]).ruleset();
        assert!(!rules.contains("goto node-services\n  }\n}"), "{rules}");
        assert!(rules.contains("iifname \"nv0\" goto node-services\n"), "input still guarded: {rules}");
        assert!(
            rules.ends_with("    iifname \"nv0\" reject with icmpx type admin-prohibited\n  }\n}\n"),
            "{rules}"
        );
    }

    #[test]
    fn replacing_and_removing_the_table() {
        assert_eq!(replace_table(""), "table inet navarch-kubelet {}\ndelete table inet navarch-kubelet\n");
        let table = PodGuard::new(&net(false, &[]), &[]).ruleset();
        assert!(replace_table(&table).ends_with(&table));
    }

    #[test]
    fn api_server_ports() {
        for (server, port) in [
            ("https://10.250.0.1:6443", 6443),
            ("https://master:8443/", 8443),
            ("10.0.0.1:6443", 6443),
            ("https://[fd00::1]:6444/x", 6444),
            ("https://[fd00::1]", 443),
            ("https://api.example.com", 443),
            ("http://127.0.0.1", 80),
        ] {
            assert_eq!(server_port(server).unwrap(), port, "{server}");
        }
        for bad in ["master", "https://h:port", "https://h:70000"] {
            assert!(server_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_subnets_from_ip_json() {
        let json = r#"[
          {"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
          {"ifname":"eth0","addr_info":[{"family":"inet","local":"10.250.0.11","prefixlen":24,"scope":"global"},
                                        {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]},
          {"ifname":"wg0","addr_info":[{"family":"inet","local":"10.9.0.5","prefixlen":32,"scope":"global"}]},
          {"ifname":"down0"}
        ]"#;
        assert_eq!(subnets_of(json).unwrap(), cidrs(&["10.250.0.0/24", "10.9.0.5/32"]));
        assert!(subnets_of("not json").is_err());
    }
}
