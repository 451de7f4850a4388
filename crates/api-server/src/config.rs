//! api-server configuration. Precedence: command-line flag > environment variable
//! (`NAVARCH_APISERVER_*`) > config file (`--config`, YAML) > default.
//!
//! Services draw their addresses from two ranges, as in Kubernetes:
//! `--service-cluster-ip-range` (`NAVARCH_APISERVER_SERVICE_CLUSTER_IP_RANGE`, file key
//! `service_cluster_ip_range`; default `10.96.0.0/12`, IPv4) for `spec.clusterIP`, and
//! `--service-node-port-range` (`NAVARCH_APISERVER_SERVICE_NODE_PORT_RANGE`, `service_node_port_range`;
//! default `30000-32767`) for `spec.ports[*].nodePort` and `spec.healthCheckNodePort`. See
//! [`crate::allocation`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::allocation::{IpRange, PortRange};

/// Command line and environment. Every setting is optional here so that an unset flag falls through to
/// the config file and then to the default.
#[derive(Debug, Default, Parser)]
#[command(name = "api-server", version, about = "navarch api-server: the API in front of etcd")]
pub struct Args {
    /// YAML config file (keys as the long flags, with '_' for '-').
    #[arg(long, env = "NAVARCH_APISERVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long, env = "NAVARCH_APISERVER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// HTTP listen address for /healthz, /readyz and /metrics.
    #[arg(long, env = "NAVARCH_APISERVER_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// etcd client URLs, comma-separated.
    #[arg(long, env = "NAVARCH_APISERVER_ETCD_ENDPOINTS", value_delimiter = ',')]
    pub etcd_endpoints: Option<Vec<String>>,
    /// Key prefix of every object in etcd.
    #[arg(long, env = "NAVARCH_APISERVER_ETCD_PREFIX")]
    pub etcd_prefix: Option<String>,
    /// How often watchers that asked for bookmarks get one (e.g. 10s).
    #[arg(long, env = "NAVARCH_APISERVER_BOOKMARK_INTERVAL", value_parser = humantime::parse_duration)]
    pub bookmark_interval: Option<Duration>,
    /// Events kept per kind so watches can resume from a recent resourceVersion.
    #[arg(long, env = "NAVARCH_APISERVER_WATCH_HISTORY")]
    pub watch_history: Option<usize>,
    /// Events queued per watcher before a slow watcher is dropped (it relists).
    #[arg(long, env = "NAVARCH_APISERVER_WATCHER_BUFFER")]
    pub watcher_buffer: Option<usize>,
    /// Time allowed for in-flight requests to finish on shutdown (e.g. 10s).
    #[arg(long, env = "NAVARCH_APISERVER_SHUTDOWN_TIMEOUT", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Option<Duration>,
    /// IPv4 CIDR that Service cluster IPs are allocated from [default: 10.96.0.0/12, as kubeadm; the kubelet and kube-proxy use the same].
    #[arg(long, env = "NAVARCH_APISERVER_SERVICE_CLUSTER_IP_RANGE")]
    pub service_cluster_ip_range: Option<String>,
    /// Ports that Service node ports are allocated from, inclusive [default: 30000-32767].
    #[arg(long, env = "NAVARCH_APISERVER_SERVICE_NODE_PORT_RANGE")]
    pub service_node_port_range: Option<String>,
}

/// The config file: the same settings, all optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub etcd_endpoints: Option<Vec<String>>,
    pub etcd_prefix: Option<String>,
    #[serde(default, with = "humantime_serde_opt")]
    pub bookmark_interval: Option<Duration>,
    pub watch_history: Option<usize>,
    pub watcher_buffer: Option<usize>,
    #[serde(default, with = "humantime_serde_opt")]
    pub shutdown_timeout: Option<Duration>,
    pub service_cluster_ip_range: Option<String>,
    pub service_node_port_range: Option<String>,
}

/// Durations in files are written like flags: `10s`, `1m30s`.
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub etcd_endpoints: Vec<String>,
    pub etcd_prefix: String,
    pub bookmark_interval: Duration,
    pub watch_history: usize,
    pub watcher_buffer: usize,
    pub shutdown_timeout: Duration,
    pub service_cluster_ip_range: IpRange,
    pub service_node_port_range: PortRange,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:6443".parse().expect("valid address"),
            http_listen: "127.0.0.1:6444".parse().expect("valid address"),
            etcd_endpoints: vec!["http://127.0.0.1:2379".to_string()],
            etcd_prefix: "/registry".to_string(),
            bookmark_interval: Duration::from_secs(10),
            watch_history: 5000,
            watcher_buffer: 1000,
            shutdown_timeout: Duration::from_secs(10),
            service_cluster_ip_range: IpRange::parse("10.96.0.0/12").expect("valid range"),
            service_node_port_range: PortRange::parse("30000-32767").expect("valid range"),
        }
    }
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

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        if text.trim().is_empty() {
            return Ok(FileConfig::default());
        }
        serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })
    }
}

impl Config {
    /// Layers flags/environment over the file over the defaults.
    pub fn resolve(args: Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        let d = Config::default();
        let c = Config {
            listen: args.listen.or(file.listen).unwrap_or(d.listen),
            http_listen: args.http_listen.or(file.http_listen).unwrap_or(d.http_listen),
            etcd_endpoints: args.etcd_endpoints.or(file.etcd_endpoints).unwrap_or(d.etcd_endpoints),
            etcd_prefix: args.etcd_prefix.or(file.etcd_prefix).unwrap_or(d.etcd_prefix),
            bookmark_interval: args
                .bookmark_interval
                .or(file.bookmark_interval)
                .unwrap_or(d.bookmark_interval),
            watch_history: args.watch_history.or(file.watch_history).unwrap_or(d.watch_history),
            watcher_buffer: args.watcher_buffer.or(file.watcher_buffer).unwrap_or(d.watcher_buffer),
            shutdown_timeout: args.shutdown_timeout.or(file.shutdown_timeout).unwrap_or(d.shutdown_timeout),
            service_cluster_ip_range: match args.service_cluster_ip_range.or(file.service_cluster_ip_range) {
                Some(v) => IpRange::parse(&v)
                    .map_err(|e| ConfigError::Invalid(format!("service_cluster_ip_range: {e}")))?,
                None => d.service_cluster_ip_range,
            },
            service_node_port_range: match args.service_node_port_range.or(file.service_node_port_range) {
                Some(v) => PortRange::parse(&v)
                    .map_err(|e| ConfigError::Invalid(format!("service_node_port_range: {e}")))?,
                None => d.service_node_port_range,
            },
        };
        if c.etcd_endpoints.is_empty() {
            return Err(ConfigError::Invalid("etcd_endpoints: at least one endpoint is required".into()));
        }
        if !c.etcd_prefix.starts_with('/') {
            return Err(ConfigError::Invalid(format!(
                "etcd_prefix: must start with '/', got {:?}",
                c.etcd_prefix
            )));
        }
        if c.watcher_buffer == 0 || c.watch_history == 0 {
            return Err(ConfigError::Invalid("watch_history and watcher_buffer: must be at least 1".into()));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests that set variables, and those that read them (through `Args::try_parse_from`), take turns:
    /// setting a variable while another thread reads the environment is not safe.
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn env_lock() -> std::sync::MutexGuard<'static, ()> {
        ENV.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults() {
        assert_eq!(Config::resolve(Args::default()).unwrap(), Config::default());
    }

    #[test]
    fn file_over_default_and_flag_over_file() {
        let _env = env_lock();
        let f = file("listen: 127.0.0.1:7000\netcd_prefix: /fromfile\nbookmark_interval: 3s\n");
        let args = Args::try_parse_from([
            "api-server",
            "--config",
            f.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:8000",
        ])
        .unwrap();
        let c = Config::resolve(args).unwrap();
        assert_eq!(c.listen.port(), 8000, "flag beats file");
        assert_eq!(c.etcd_prefix, "/fromfile", "file beats default");
        assert_eq!(c.bookmark_interval, Duration::from_secs(3));
        assert_eq!(c.http_listen, Config::default().http_listen, "default when nobody sets it");
    }

    #[test]
    fn env_over_file_and_flag_over_env() {
        let _env = env_lock();
        // The variable is only read by this test.
        // SAFETY: no other thread of this test binary reads or writes this variable.
        unsafe { std::env::set_var("NAVARCH_APISERVER_WATCHER_BUFFER", "77") };
        let f = file("watcher_buffer: 5\nwatch_history: 9\n");
        let path = f.path().to_str().unwrap().to_string();
        let c = Config::resolve(Args::try_parse_from(["api-server", "--config", &path]).unwrap()).unwrap();
        assert_eq!(c.watcher_buffer, 77, "env beats file");
        assert_eq!(c.watch_history, 9);
        let c = Config::resolve(
            Args::try_parse_from(["api-server", "--config", &path, "--watcher-buffer", "3"]).unwrap(),
        )
        .unwrap();
        assert_eq!(c.watcher_buffer, 3, "flag beats env");
        unsafe { std::env::remove_var("NAVARCH_APISERVER_WATCHER_BUFFER") };
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let f = file("listen: 127.0.0.1:7000\nlisten_port: 3\n");
        let err = Config::resolve(Args { config: Some(f.path().into()), ..Args::default() }).unwrap_err();
        assert!(err.to_string().contains("unknown field `listen_port`"), "{err}");
    }

    #[test]
    fn bad_values_are_errors() {
        let err =
            Config::resolve(Args { etcd_prefix: Some("registry".into()), ..Args::default() }).unwrap_err();
        assert!(err.to_string().starts_with("etcd_prefix:"), "{err}");
        for (range, reason) in [
            ("10.96.0.0", "service_cluster_ip_range: invalid CIDR \"10.96.0.0\""),
            ("10.96.0.0/33", "service_cluster_ip_range: invalid CIDR"),
            ("10.96.0.5/16", "service_cluster_ip_range: 10.96.0.5/16 is not a network address"),
            ("fd00::/112", "service_cluster_ip_range: only IPv4 ranges are supported"),
            ("10.96.0.0/31", "service_cluster_ip_range: 10.96.0.0/31 is too small"),
        ] {
            let err =
                Config::resolve(Args { service_cluster_ip_range: Some(range.into()), ..Args::default() })
                    .unwrap_err();
            assert!(err.to_string().starts_with(reason), "{range}: {err}");
        }
        for range in ["30000", "32767-30000", "0-10", "30000-70000", "a-b", ""] {
            let err =
                Config::resolve(Args { service_node_port_range: Some(range.into()), ..Args::default() })
                    .unwrap_err();
            assert!(err.to_string().starts_with("service_node_port_range: "), "{range}: {err}");
        }
    }

    #[test]
    fn service_ranges_precedence() {
        let _env = env_lock();
        let d = Config::default();
        assert_eq!(d.service_cluster_ip_range.to_string(), "10.96.0.0/12");
        assert_eq!(d.service_node_port_range.to_string(), "30000-32767");
        let f = file("service_cluster_ip_range: 10.100.0.0/24\nservice_node_port_range: 31000-31999\n");
        let path = f.path().to_str().unwrap().to_string();
        let c = Config::resolve(Args::try_parse_from(["api-server", "--config", &path]).unwrap()).unwrap();
        assert_eq!(c.service_cluster_ip_range.to_string(), "10.100.0.0/24", "file beats default");
        assert_eq!(c.service_node_port_range.to_string(), "31000-31999", "file beats default");
        // SAFETY: the environment is only read or written by tests holding the lock.
        unsafe { std::env::set_var("NAVARCH_APISERVER_SERVICE_NODE_PORT_RANGE", "32000-32099") };
        let c = Config::resolve(Args::try_parse_from(["api-server", "--config", &path]).unwrap()).unwrap();
        assert_eq!(c.service_node_port_range.to_string(), "32000-32099", "env beats file");
        let c = Config::resolve(
            Args::try_parse_from([
                "api-server",
                "--config",
                &path,
                "--service-node-port-range=20000-20010",
                "--service-cluster-ip-range",
                "10.200.0.0/29",
            ])
            .unwrap(),
        )
        .unwrap();
        unsafe { std::env::remove_var("NAVARCH_APISERVER_SERVICE_NODE_PORT_RANGE") };
        assert_eq!(c.service_node_port_range.to_string(), "20000-20010", "flag beats env");
        assert_eq!(c.service_cluster_ip_range.to_string(), "10.200.0.0/29", "flag beats file");
    }
}
