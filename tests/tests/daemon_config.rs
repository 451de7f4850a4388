//! The daemons' configuration seen from outside, through the real binaries:
//!
//! * The defaults are defined once, in Rust (`navarch_api::well_known` and each daemon's config
//!   struct). Everything outside Rust that repeats them is checked against what the binaries print with
//!   `--print-config`: `scripts/cluster.sh` (make up), `ansible/group_vars/all.yml`, the config
//!   templates in `deploy/config/` (their keys, and their literal values where they restate a default),
//!   and the key lists of `ansible/check-config.yml`.
//! * A binary layers flag > process environment > file > default, refuses an unknown file key, and logs
//!   JSON when asked (the loader's own tests inject the environment; these use the real one).

use std::collections::BTreeMap;
use std::process::Command;

use navarch_tests::{binary, workspace_root};
use serde_yaml::{Mapping, Value};

/// (package, binary) of every daemon, the binary name being its config file's name in deploy/config.
const DAEMONS: [(&str, &str); 6] = [
    ("api-server", "api-server"),
    ("scheduler", "scheduler"),
    ("controller-manager", "controller-manager"),
    ("kubelet", "kubelet"),
    ("kube-proxy", "kube-proxy"),
    ("cluster-dns", "cluster-dns"),
];

/// Flags a daemon refuses to run without, even to print its configuration: the api-server's TLS files
/// (placeholders, `--print-config` reads none of them).
fn required(bin: &str) -> &'static [&'static str] {
    match bin {
        "api-server" => &[
            "--tls-cert-file=/etc/navarch/pki/apiserver.crt",
            "--tls-private-key-file=/etc/navarch/pki/apiserver.key",
            "--client-ca-file=/etc/navarch/pki/ca.crt",
            "--kubelet-certificate-authority=/etc/navarch/pki/ca.crt",
        ],
        _ => &[],
    }
}

/// `<bin> --print-config`, as a mapping.
fn printed(package: &str, bin: &str) -> Mapping {
    let out = Command::new(binary(package, bin))
        .arg("--print-config")
        .args(required(bin))
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("running {bin}: {e}"));
    assert!(out.status.success(), "{bin} --print-config: {}", String::from_utf8_lossy(&out.stderr));
    match serde_yaml::from_slice(&out.stdout).expect("--print-config prints YAML") {
        Value::Mapping(m) => m,
        other => panic!("{bin} printed {other:?}"),
    }
}

fn all_printed() -> BTreeMap<&'static str, Mapping> {
    DAEMONS.iter().map(|(p, b)| (*b, printed(p, b))).collect()
}

fn get<'a>(m: &'a Mapping, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("no string {key} in {m:?}"))
}

fn port(addr: &str) -> &str {
    addr.rsplit_once(':').map(|(_, p)| p).unwrap_or_else(|| panic!("{addr} has no port"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `NAME="${NAME:-value}"` or `NAME="value"` assignments of a shell script.
fn shell_defaults(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once('=')?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                return None;
            }
            let v = value.trim_matches('"');
            let v = v.strip_prefix(&format!("${{{name}:-")).and_then(|v| v.strip_suffix('}')).unwrap_or(v);
            Some((name.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn cluster_script_uses_the_daemons_defaults() {
    let d = all_printed();
    let sh = shell_defaults(&read("scripts/cluster.sh"));
    let v = |k: &str| sh.get(k).unwrap_or_else(|| panic!("cluster.sh sets no {k}")).as_str();
    assert_eq!(v("API_PORT"), port(get(&d["api-server"], "listen")));
    assert_eq!(v("API_HTTP_PORT"), port(get(&d["api-server"], "http_listen")));
    assert_eq!(v("SCHED_HTTP_PORT"), port(get(&d["scheduler"], "http_listen")));
    assert_eq!(v("CM_HTTP_PORT"), port(get(&d["controller-manager"], "http_listen")));
    assert_eq!(v("KUBELET_HTTP_PORT"), port(get(&d["kubelet"], "http_listen")));
    assert_eq!(v("KUBELET_API_PORT"), port(get(&d["kubelet"], "grpc_listen")));
    assert_eq!(v("PROXY_HTTP_PORT"), port(get(&d["kube-proxy"], "http_listen")));
    assert_eq!(v("DNS_HTTP_PORT"), port(get(&d["cluster-dns"], "http_listen")));
    assert_eq!(v("DNS_SERVICE_IP"), get(&d["cluster-dns"], "service_ip"));
    assert_eq!(v("BRIDGE"), get(&d["kubelet"], "bridge"));
    for daemon in ["controller-manager", "kubelet", "kube-proxy"] {
        assert_eq!(v("CLUSTER_CIDR"), get(&d[daemon], "cluster_cidr"), "{daemon}");
    }
    for daemon in ["api-server", "kubelet", "kube-proxy"] {
        assert_eq!(v("SERVICE_CIDR"), get(&d[daemon], "service_cluster_ip_range"), "{daemon}");
    }
}

#[test]
fn ansible_settings_use_the_daemons_defaults() {
    let d = all_printed();
    let vars: Mapping = serde_yaml::from_str(&read("ansible/group_vars/all.yml")).unwrap();
    let v = |k: &str| match vars.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        other => panic!("group_vars: {k} = {other:?}"),
    };
    assert_eq!(v("navarch_cluster_cidr"), get(&d["controller-manager"], "cluster_cidr"));
    assert_eq!(
        v("navarch_node_cidr_mask_size"),
        d["controller-manager"]["node_cidr_mask_size"].as_u64().unwrap().to_string()
    );
    assert_eq!(v("navarch_service_cidr"), get(&d["api-server"], "service_cluster_ip_range"));
    assert_eq!(v("navarch_dns_service_ip"), get(&d["cluster-dns"], "service_ip"));
    assert_eq!(v("navarch_cluster_domain"), get(&d["cluster-dns"], "cluster_domain"));
    assert_eq!(v("navarch_api_port"), port(get(&d["api-server"], "listen")));
}

/// deploy/config/<daemon>.yaml: every key is one the daemon has; a literal (non-templated) value that
/// restates an address default equals it.
#[test]
fn deploy_configs_use_known_keys_and_default_addresses() {
    let d = all_printed();
    for (daemon, defaults) in &d {
        let text = read(&format!("deploy/config/{daemon}.yaml"));
        let file: Mapping = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{daemon}.yaml: {e}"));
        for (k, v) in &file {
            let key = k.as_str().unwrap();
            let default =
                defaults.get(key).unwrap_or_else(|| panic!("deploy/config/{daemon}.yaml: unknown key {key}"));
            if let (Some(v), Some(default)) = (v.as_str(), default.as_str())
                && !v.contains("{{")
                && key.ends_with("listen")
            {
                assert_eq!(v, default, "deploy/config/{daemon}.yaml: {key}");
            }
        }
    }
}

/// ansible/check-config.yml lists each daemon's keys (Ansible cannot ask the binaries): they must be
/// exactly the keys the daemon prints.
#[test]
fn check_config_key_lists_match_the_daemons() {
    let d = all_printed();
    let playbook: Value = serde_yaml::from_str(&read("ansible/check-config.yml")).unwrap();
    let keys = &playbook[0]["vars"]["check_config_keys"];
    for (daemon, defaults) in &d {
        let mut listed: Vec<&str> = keys[*daemon]
            .as_sequence()
            .unwrap_or_else(|| panic!("check-config.yml lists no keys for {daemon}"))
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        let mut known: Vec<&str> = defaults.keys().map(|k| k.as_str().unwrap()).collect();
        listed.sort();
        known.sort();
        assert_eq!(listed, known, "check-config.yml's keys for {daemon}");
    }
}

/// The real binary, through the process environment (`Env::Process`): flag > environment > file >
/// default, and an unknown file key stops it with a message naming the key and the file.
#[test]
fn a_daemon_layers_flag_env_file_and_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scheduler.yaml");
    std::fs::write(&file, "parallelism: 2\npercentage_of_nodes_to_score: 30\nidentity: from-file\n").unwrap();
    let out = Command::new(binary("scheduler", "scheduler"))
        .args(["--print-config", "--config", file.to_str().unwrap(), "--identity", "from-flag"])
        .env_clear()
        .env("NAVARCH_SCHEDULER_PERCENTAGE_OF_NODES_TO_SCORE", "40")
        .env("NAVARCH_SCHEDULER_IDENTITY", "from-env")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c: Mapping = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(get(&c, "identity"), "from-flag", "flag beats env");
    assert_eq!(c["percentage_of_nodes_to_score"].as_u64(), Some(40), "env beats file");
    assert_eq!(c["parallelism"].as_u64(), Some(2), "file beats default");
    assert_eq!(get(&c, "http_listen"), "127.0.0.1:10259", "the default");

    std::fs::write(&file, "paralelism: 2\n").unwrap();
    let out = Command::new(binary("scheduler", "scheduler"))
        .args(["--config", file.to_str().unwrap()])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("config file {}: unknown key `paralelism`", file.display())), "{err}");
}

/// `--log-format json` (or `NAVARCH_<DAEMON>_LOG_FORMAT=json`): one JSON object per log line.
#[test]
fn a_daemon_logs_json_when_asked() {
    use std::io::{BufRead, BufReader};
    let pki = navarch_tests::TestPki::new();
    let kubeconfig = pki.kubeconfig_file("scheduler", "https://127.0.0.1:1");
    let mut child = Command::new(binary("scheduler", "scheduler"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["--http-listen", "127.0.0.1:0", "--leader-elect=false"])
        .env_clear()
        .env("NAVARCH_SCHEDULER_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let line: serde_json::Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{first:?}: {e}"));
    assert_eq!(line["level"], "INFO", "{first}");
    assert!(line["fields"]["message"].is_string(), "{first}");
}
