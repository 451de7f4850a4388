//! cluster-dns configuration. Precedence: flag > environment (`NAVARCH_CLUSTER_DNS_*`) > config file
//! (`--config`, YAML, unknown keys rejected) > default.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

use crate::forward::{nameservers_from_resolv_conf, parse_upstream};

const RESOLV_CONF: &str = "/etc/resolv.conf";

#[derive(Debug, Default, Parser)]
#[command(
    name = "cluster-dns",
    version,
    about = "navarch cluster DNS: answers for the cluster domain from Services and Endpoints, forwards the rest"
)]
pub struct Args {
    /// YAML config file (keys as the long flags, with '_' for '-').
    #[arg(long, env = "NAVARCH_CLUSTER_DNS_CONFIG")]
    pub config: Option<PathBuf>,
    /// api-server address.
    #[arg(long, env = "NAVARCH_CLUSTER_DNS_SERVER")]
    pub server: Option<String>,
    /// HTTP address for /healthz and /metrics.
    #[arg(long, env = "NAVARCH_CLUSTER_DNS_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Address the DNS server listens on, UDP and TCP.
    #[arg(long, env = "NAVARCH_CLUSTER_DNS_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The cluster domain this server is authoritative for.
    #[arg(long, env = "NAVARCH_CLUSTER_DNS_CLUSTER_DOMAIN")]
    pub cluster_domain: Option<String>,
    /// Resolvers for every other name (`IP` or `IP:port`, comma-separated or repeated); default: the
    /// nameservers of /etc/resolv.conf that are not loopback.
    #[arg(long, env = "NAVARCH_CLUSTER_DNS_UPSTREAM", value_delimiter = ',')]
    pub upstream: Vec<String>,
    /// TTL of the cluster records, in seconds (also the negative-caching TTL of the SOA).
    #[arg(long, env = "NAVARCH_CLUSTER_DNS_TTL")]
    pub ttl: Option<u32>,
    /// Register this address in the Endpoints of `kube-system/kube-dns` (creating that Service).
    #[arg(long, env = "NAVARCH_CLUSTER_DNS_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<IpAddr>,
    /// The ClusterIP asked for `kube-system/kube-dns` when this server creates it.
    #[arg(long, env = "NAVARCH_CLUSTER_DNS_SERVICE_IP")]
    pub service_ip: Option<IpAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: Option<String>,
    pub http_listen: Option<SocketAddr>,
    pub listen: Option<SocketAddr>,
    pub cluster_domain: Option<String>,
    pub upstream: Option<Vec<String>>,
    pub ttl: Option<u32>,
    pub advertise_address: Option<IpAddr>,
    pub service_ip: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: String,
    pub http_listen: SocketAddr,
    pub listen: SocketAddr,
    /// Lower case, without the trailing dot.
    pub cluster_domain: String,
    pub upstreams: Vec<SocketAddr>,
    pub ttl: u32,
    pub advertise_address: Option<IpAddr>,
    pub service_ip: IpAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: serde_yaml::Error },
    #[error("{0}")]
    Invalid(String),
}

/// A domain name of one or more DNS-1123 labels.
fn check_domain(d: &str) -> Result<(), ConfigError> {
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!("cluster_domain: {d:?} is not a domain name like cluster.local")))
    }
}

impl Config {
    pub fn resolve(args: Args) -> Result<Config, ConfigError> {
        Config::resolve_with(args, Path::new(RESOLV_CONF))
    }

    /// [`Config::resolve`], reading the default upstreams from `resolv_conf`.
    pub fn resolve_with(args: Args, resolv_conf: &Path) -> Result<Config, ConfigError> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
                if text.trim().is_empty() {
                    FileConfig::default()
                } else {
                    serde_yaml::from_str(&text)
                        .map_err(|source| ConfigError::Parse { path: path.clone(), source })?
                }
            }
            None => FileConfig::default(),
        };
        let cluster_domain = args
            .cluster_domain
            .or(file.cluster_domain)
            .unwrap_or_else(|| "cluster.local".into())
            .trim_end_matches('.')
            .to_ascii_lowercase();
        check_domain(&cluster_domain)?;
        let listen = args.listen.or(file.listen).unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 53)));
        let upstream = if !args.upstream.is_empty() { Some(args.upstream) } else { file.upstream };
        let upstreams = match upstream {
            Some(list) => list
                .iter()
                .map(|u| u.trim())
                .filter(|u| !u.is_empty())
                .map(|u| parse_upstream(u).map_err(|e| ConfigError::Invalid(format!("upstream: {e}"))))
                .collect::<Result<Vec<_>, _>>()?,
            None => std::fs::read_to_string(resolv_conf)
                .map(|text| nameservers_from_resolv_conf(&text))
                .unwrap_or_default(),
        };
        // Forwarding to ourselves would loop (a wildcard listen address covers loopback).
        let is_self = |u: &SocketAddr| {
            *u == listen
                || (listen.ip().is_unspecified() && u.ip().is_loopback() && u.port() == listen.port())
        };
        if upstreams.iter().any(is_self) {
            return Err(ConfigError::Invalid(format!(
                "upstream: {upstreams:?} includes this server's own address {listen}"
            )));
        }
        let ttl = args.ttl.or(file.ttl).unwrap_or(5);
        if ttl == 0 || ttl > 3600 {
            return Err(ConfigError::Invalid(format!("ttl: {ttl}: must be 1..=3600 seconds")));
        }
        let advertise_address = args.advertise_address.or(file.advertise_address);
        if let Some(a) = advertise_address
            && (a.is_loopback() || a.is_unspecified() || a.is_multicast())
        {
            return Err(ConfigError::Invalid(format!(
                "advertise_address: {a}: must be an address pods can reach (not loopback, unspecified or multicast)"
            )));
        }
        Ok(Config {
            server: args.server.or(file.server).unwrap_or_else(|| "127.0.0.1:6443".into()),
            http_listen: args
                .http_listen
                .or(file.http_listen)
                .unwrap_or_else(|| "127.0.0.1:9153".parse().expect("valid address")),
            listen,
            cluster_domain,
            upstreams,
            ttl,
            advertise_address,
            service_ip: args
                .service_ip
                .or(file.service_ip)
                .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("cluster-dns").chain(argv.iter().copied())).unwrap()
    }

    /// The only test that parses `Args` (which reads the environment), so that setting variables here
    /// races with nothing.
    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(&resolv, "search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.7\n").unwrap();
        let file = dir.path().join("dns.yaml");
        std::fs::write(
            &file,
            "server: 10.0.0.1:6443\ncluster_domain: Corp.Example.\nupstream: [192.0.2.1, '192.0.2.2:5353']\nttl: 30\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();

        // Defaults; upstreams from resolv.conf without the loopback stub resolver.
        let c = Config::resolve_with(parse(&[]), &resolv).unwrap();
        assert_eq!(c.server, "127.0.0.1:6443");
        assert_eq!(c.listen, "0.0.0.0:53".parse().unwrap());
        assert_eq!(c.http_listen, "127.0.0.1:9153".parse().unwrap());
        assert_eq!(c.cluster_domain, "cluster.local");
        assert_eq!(c.upstreams, vec!["192.0.2.7:53".parse().unwrap()]);
        assert_eq!((c.ttl, c.advertise_address), (5, None));
        assert_eq!(c.service_ip, "10.96.0.10".parse::<IpAddr>().unwrap());

        // The file over the defaults.
        let c = Config::resolve_with(parse(&["--config", path]), &resolv).unwrap();
        assert_eq!(
            (c.server.as_str(), c.cluster_domain.as_str(), c.ttl),
            ("10.0.0.1:6443", "corp.example", 30)
        );
        assert_eq!(c.upstreams, vec!["192.0.2.1:53".parse().unwrap(), "192.0.2.2:5353".parse().unwrap()]);

        // The environment over the file, flags over the environment.
        // SAFETY: no other test of this crate reads or writes the environment.
        unsafe {
            std::env::set_var("NAVARCH_CLUSTER_DNS_TTL", "60");
            std::env::set_var("NAVARCH_CLUSTER_DNS_UPSTREAM", "192.0.2.3,192.0.2.4");
            std::env::set_var("NAVARCH_CLUSTER_DNS_CLUSTER_DOMAIN", "env.local");
        }
        let c = Config::resolve_with(parse(&["--config", path, "--ttl", "7"]), &resolv).unwrap();
        unsafe {
            std::env::remove_var("NAVARCH_CLUSTER_DNS_TTL");
            std::env::remove_var("NAVARCH_CLUSTER_DNS_UPSTREAM");
            std::env::remove_var("NAVARCH_CLUSTER_DNS_CLUSTER_DOMAIN");
        }
        assert_eq!((c.ttl, c.cluster_domain.as_str(), c.server.as_str()), (7, "env.local", "10.0.0.1:6443"));
        assert_eq!(c.upstreams, vec!["192.0.2.3:53".parse().unwrap(), "192.0.2.4:53".parse().unwrap()]);
        let c = Config::resolve_with(
            parse(&["--config", path, "--upstream", "192.0.2.9", "--upstream", "[2001:db8::1]:53"]),
            &resolv,
        )
        .unwrap();
        assert_eq!(c.upstreams, vec!["192.0.2.9:53".parse().unwrap(), "[2001:db8::1]:53".parse().unwrap()]);

        // Rejections.
        std::fs::write(&file, "upstreams: [192.0.2.1]\n").unwrap();
        let e = Config::resolve_with(parse(&["--config", path]), &resolv).unwrap_err();
        assert!(e.to_string().contains("unknown field `upstreams`"), "{e}");
        let e = Config::resolve_with(parse(&["--cluster-domain", "bad_domain"]), &resolv).unwrap_err();
        assert!(e.to_string().starts_with("cluster_domain:"), "{e}");
        let e = Config::resolve_with(parse(&["--advertise-address", "127.0.0.1"]), &resolv).unwrap_err();
        assert!(e.to_string().starts_with("advertise_address: 127.0.0.1"), "{e}");
        let e = Config::resolve_with(parse(&["--upstream", "dns.google"]), &resolv).unwrap_err();
        assert!(e.to_string().starts_with("upstream:"), "{e}");
        let e = Config::resolve_with(
            parse(&["--listen", "127.0.0.1:5300", "--upstream", "127.0.0.1:5300"]),
            &resolv,
        )
        .unwrap_err();
        assert!(e.to_string().contains("own address"), "{e}");
    }
}
