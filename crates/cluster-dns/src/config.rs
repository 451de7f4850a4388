//! cluster-dns's configuration: one struct that is its flags and its config file, resolved by the
//! daemon shell (flag > `NAVARCH_CLUSTER_DNS_*` > `--config` YAML > default; see
//! `navarch_daemon::config`). `upstreams` is derived: the `upstream` setting, or the non-loopback
//! nameservers of `resolv_conf`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use navarch_api::well_known;
use navarch_daemon::DaemonConfig;
use serde::{Deserialize, Serialize};

use crate::forward::{nameservers_from_resolv_conf, parse_upstream};

#[derive(Debug, Clone, PartialEq, clap::Parser, Serialize, Deserialize)]
#[command(
    name = "cluster-dns",
    version,
    about = "navarch cluster DNS: answers for the cluster domain from Services and Endpoints, forwards the rest"
)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// kubeconfig with the api-server's address, its CA and this component's credentials (client
    /// certificate or token). Required: the api-server only accepts authenticated TLS clients.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// api-server address (`host:port` or `https://host:port`), overriding the kubeconfig's.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub server: String,
    /// HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = well_known::CLUSTER_DNS_ADMIN)]
    pub http_listen: SocketAddr,
    /// Address the DNS server listens on, UDP and TCP.
    #[arg(long, default_value = "0.0.0.0:53")]
    pub listen: SocketAddr,
    /// The cluster domain this server is authoritative for (lower-cased, without the trailing dot).
    #[arg(long, default_value = well_known::CLUSTER_DOMAIN)]
    pub cluster_domain: String,
    /// Resolvers for every other name (`IP` or `IP:port`, comma-separated or repeated); default: the
    /// nameservers of `--resolv-conf` that are not loopback.
    #[arg(long, value_delimiter = ',')]
    pub upstream: Vec<String>,
    /// Where the default upstreams are read from.
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// TTL of the cluster records, in seconds (also the negative-caching TTL of the SOA).
    #[arg(long, default_value_t = 5)]
    pub ttl: u32,
    /// Register this address in the Endpoints of `kube-system/kube-dns` (creating that Service).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// The ClusterIP asked for `kube-system/kube-dns` when this server creates it.
    #[arg(long, default_value = well_known::CLUSTER_DNS_IP)]
    pub service_ip: IpAddr,
    /// Derived: the upstream resolvers' addresses.
    #[arg(skip)]
    #[serde(skip)]
    pub upstreams: Vec<SocketAddr>,
}

/// A domain name of one or more DNS-1123 labels.
fn check_domain(d: &str) -> Result<(), String> {
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok { Ok(()) } else { Err(format!("cluster_domain: {d:?} is not a domain name like cluster.local")) }
}

impl DaemonConfig for Config {
    const ENV_PREFIX: &'static str = "NAVARCH_CLUSTER_DNS";
    // hickory-server logs every request at info; ours are at debug, in a span per query.
    const LOG_DIRECTIVES: &'static [&'static str] = &["hickory_server=warn"];

    fn finish(&mut self) -> Result<(), String> {
        self.cluster_domain = self.cluster_domain.trim_end_matches('.').to_ascii_lowercase();
        check_domain(&self.cluster_domain)?;
        self.upstream =
            self.upstream.iter().map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect();
        if self.upstream.is_empty() {
            let text = std::fs::read_to_string(&self.resolv_conf).unwrap_or_default();
            self.upstream = nameservers_from_resolv_conf(&text).iter().map(|a| a.to_string()).collect();
        }
        self.upstreams = self
            .upstream
            .iter()
            .map(|u| parse_upstream(u).map_err(|e| format!("upstream: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        // Forwarding to ourselves would loop (a wildcard listen address covers loopback).
        let listen = self.listen;
        let is_self = |u: &SocketAddr| {
            *u == listen
                || (listen.ip().is_unspecified() && u.ip().is_loopback() && u.port() == listen.port())
        };
        if self.upstreams.iter().any(is_self) {
            return Err(format!(
                "upstream: {:?} includes this server's own address {listen}",
                self.upstreams
            ));
        }
        if self.ttl == 0 || self.ttl > 3600 {
            return Err(format!("ttl: {}: must be 1..=3600 seconds", self.ttl));
        }
        if let Some(a) = self.advertise_address
            && (a.is_loopback() || a.is_unspecified() || a.is_multicast())
        {
            return Err(format!(
                "advertise_address: {a}: must be an address pods can reach (not loopback, unspecified or multicast)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_upstreams_and_checks() {
        let config = navarch_daemon::resolve_args::<Config>;
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(&resolv, "search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.7\n").unwrap();
        let resolv = resolv.to_str().unwrap();

        // Defaults; upstreams from resolv.conf without the loopback stub resolver.
        let c = config(&["--resolv-conf", resolv], &[]).unwrap();
        assert_eq!((c.server.as_str(), c.cluster_domain.as_str()), ("", "cluster.local"));
        assert_eq!(
            (c.listen, c.http_listen),
            ("0.0.0.0:53".parse().unwrap(), "127.0.0.1:9153".parse().unwrap())
        );
        assert_eq!(c.upstreams, vec!["192.0.2.7:53".parse().unwrap()]);
        assert_eq!((c.ttl, c.advertise_address), (5, None));
        assert_eq!(c.service_ip, "10.96.0.10".parse::<IpAddr>().unwrap());

        let c = config(
            &["--cluster-domain", "Corp.Example."],
            &[("NAVARCH_CLUSTER_DNS_UPSTREAM", "192.0.2.3,192.0.2.4:5353")],
        )
        .unwrap();
        assert_eq!(c.cluster_domain, "corp.example");
        assert_eq!(c.upstreams, vec!["192.0.2.3:53".parse().unwrap(), "192.0.2.4:5353".parse().unwrap()]);
        let c = config(&["--upstream", "192.0.2.9", "--upstream", "[2001:db8::1]:53"], &[]).unwrap();
        assert_eq!(c.upstreams, vec!["192.0.2.9:53".parse().unwrap(), "[2001:db8::1]:53".parse().unwrap()]);

        // Rejections.
        assert!(config(&["--cluster-domain", "bad_domain"], &[]).unwrap_err().starts_with("cluster_domain:"));
        assert!(
            config(&["--advertise-address", "127.0.0.1"], &[])
                .unwrap_err()
                .starts_with("advertise_address: 127.0.0.1")
        );
        assert!(config(&["--upstream", "dns.google"], &[]).unwrap_err().starts_with("upstream:"));
        let e = config(&["--listen", "127.0.0.1:5300", "--upstream", "127.0.0.1:5300"], &[]).unwrap_err();
        assert!(e.contains("own address"), "{e}");
        assert_eq!(config(&["--ttl", "0"], &[]).unwrap_err(), "ttl: 0: must be 1..=3600 seconds");
    }
}
