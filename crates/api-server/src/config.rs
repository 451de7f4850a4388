//! The api-server's configuration: one struct that is its flags and its config file, resolved by the
//! daemon shell (flag > `NAVARCH_APISERVER_*` > `--config` YAML > default; see
//! `navarch_daemon::config`).
//!
//! Services draw their addresses from two ranges, as in Kubernetes: `service_cluster_ip_range`
//! (IPv4, default `10.96.0.0/12`) for `spec.clusterIP`, and `service_node_port_range` (default
//! `30000-32767`) for `spec.ports[*].nodePort` and `spec.healthCheckNodePort`. See
//! [`crate::allocation`].

use std::net::SocketAddr;
use std::time::Duration;

use navarch_api::well_known;
use navarch_daemon::DaemonConfig;
use navarch_daemon::config::duration;
use serde::{Deserialize, Serialize};

use crate::allocation::{IpRange, PortRange};

#[derive(Debug, Clone, PartialEq, clap::Parser, Serialize, Deserialize)]
#[command(name = "api-server", version, about = "navarch api-server: the API in front of etcd")]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// gRPC listen address.
    #[arg(long, default_value = well_known::API_SERVER)]
    pub listen: SocketAddr,
    /// HTTP listen address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = well_known::API_SERVER_ADMIN)]
    pub http_listen: SocketAddr,
    /// etcd client URLs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = well_known::ETCD_ENDPOINT)]
    pub etcd_endpoints: Vec<String>,
    /// Key prefix of every object in etcd.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,
    /// How often watchers that asked for bookmarks get one (e.g. 10s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    #[serde(with = "duration")]
    pub bookmark_interval: Duration,
    /// Events kept per kind so watches can resume from a recent resourceVersion.
    #[arg(long, default_value_t = 5000)]
    pub watch_history: usize,
    /// Events queued per watcher before a slow watcher is dropped (it relists).
    #[arg(long, default_value_t = 1000)]
    pub watcher_buffer: usize,
    /// Time allowed for in-flight requests to finish on shutdown (e.g. 10s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// IPv4 CIDR that Service cluster IPs are allocated from (as kubeadm's; the kubelet and kube-proxy
    /// use the same).
    #[arg(long, default_value = well_known::SERVICE_CLUSTER_IP_RANGE)]
    pub service_cluster_ip_range: IpRange,
    /// Ports that Service node ports are allocated from, inclusive.
    #[arg(long, default_value = well_known::SERVICE_NODE_PORT_RANGE)]
    pub service_node_port_range: PortRange,
}

impl DaemonConfig for Config {
    const ENV_PREFIX: &'static str = "NAVARCH_APISERVER";

    fn finish(&mut self) -> Result<(), String> {
        if self.etcd_endpoints.is_empty() {
            return Err("etcd_endpoints: at least one endpoint is required".into());
        }
        if !self.etcd_prefix.starts_with('/') {
            return Err(format!("etcd_prefix: must start with '/', got {:?}", self.etcd_prefix));
        }
        if self.watcher_buffer == 0 || self.watch_history == 0 {
            return Err("watch_history and watcher_buffer: must be at least 1".into());
        }
        Ok(())
    }
}

/// How the ranges are written in flags and files: `10.96.0.0/12`, `30000-32767`.
mod range_text {
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::allocation::{IpRange, PortRange};

    macro_rules! written_as_text {
        ($t:ty) => {
            impl FromStr for $t {
                type Err = String;
                fn from_str(s: &str) -> Result<$t, String> {
                    <$t>::parse(s)
                }
            }
            impl Serialize for $t {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.collect_str(self)
                }
            }
            impl<'de> Deserialize<'de> for $t {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                    <$t>::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
                }
            }
        };
    }
    written_as_text!(IpRange);
    written_as_text!(PortRange);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let config = navarch_daemon::resolve_args::<Config>;
        let c = config(&[], &[]).unwrap();
        assert_eq!((c.listen.port(), c.http_listen.port()), (6443, 6444));
        assert_eq!(c.etcd_endpoints, ["http://127.0.0.1:2379"]);
        assert_eq!(
            (c.watch_history, c.watcher_buffer, c.bookmark_interval),
            (5000, 1000, Duration::from_secs(10))
        );
        assert_eq!(
            config(&["--etcd-prefix", "registry"], &[]).unwrap_err(),
            "etcd_prefix: must start with '/', got \"registry\""
        );
        assert!(config(&["--watcher-buffer", "0"], &[]).is_err());
        let c = config(
            &["--etcd-endpoints", "http://a:2379,http://b:2379"],
            &[("NAVARCH_APISERVER_WATCHER_BUFFER", "77")],
        )
        .unwrap();
        assert_eq!((c.etcd_endpoints.len(), c.watcher_buffer), (2, 77));
    }

    #[test]
    fn service_ranges() {
        let config = navarch_daemon::resolve_args::<Config>;
        let c = config(&[], &[]).unwrap();
        assert_eq!(c.service_cluster_ip_range.to_string(), "10.96.0.0/12");
        assert_eq!(c.service_node_port_range.to_string(), "30000-32767");
        let ranges = "service_cluster_ip_range: 10.100.0.0/24\nservice_node_port_range: 31000-31999\n";
        let env = [("NAVARCH_APISERVER_SERVICE_NODE_PORT_RANGE", "32000-32099")];
        let c = navarch_daemon::resolve_yaml::<Config>(ranges, &[], &env).unwrap();
        assert_eq!(c.service_cluster_ip_range.to_string(), "10.100.0.0/24", "file beats default");
        assert_eq!(c.service_node_port_range.to_string(), "32000-32099", "env beats file");
        for (range, reason) in [
            ("10.96.0.0", "invalid CIDR \"10.96.0.0\""),
            ("10.96.0.0/33", "invalid CIDR"),
            ("10.96.0.5/16", "10.96.0.5/16 is not a network address"),
            ("fd00::/112", "only IPv4 ranges are supported"),
            ("10.96.0.0/31", "10.96.0.0/31 is too small"),
        ] {
            let e = config(&["--service-cluster-ip-range", range], &[]).unwrap_err();
            assert!(e.contains(reason), "{range}: {e}");
        }
        for range in ["30000", "32767-30000", "0-10", "30000-70000", "a-b", ""] {
            let e = config(&[], &[("NAVARCH_APISERVER_SERVICE_NODE_PORT_RANGE", range)]).unwrap_err();
            assert!(e.starts_with("NAVARCH_APISERVER_SERVICE_NODE_PORT_RANGE: "), "{range}: {e}");
        }
        let e = navarch_daemon::resolve_yaml::<Config>("service_cluster_ip_range: 10.96.0.5/16\n", &[], &[])
            .unwrap_err();
        assert!(e.contains("service_cluster_ip_range: 10.96.0.5/16 is not a network address"), "{e}");
    }
}
