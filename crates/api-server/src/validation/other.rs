//! The remaining core and coordination kinds — Namespace, Node, ConfigMap, Secret, ServiceAccount,
//! Endpoints, Event, Lease: their Kubernetes defaults and validation.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use navarch_api::names;
use navarch_api::v1::*;

use super::field::{Errors, PROTOCOLS, Path, parse_cidr, q, set_if_empty};
use super::meta::Unique;
use super::pod::config_key;

/// ConfigMaps and Secrets hold at most 1 MiB of data.
const MAX_DATA_SIZE: usize = 1024 * 1024;
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

// ---------------------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------------------

/// A new namespace is `Active` and carries the `kubernetes` finalizer (removed by the namespace
/// controller once its contents are gone). A namespace being deleted is left alone.
pub(super) fn default_namespace(ns: &mut Namespace) {
    let deleting = ns.metadata.as_ref().is_some_and(|m| !m.deletion_timestamp.is_empty());
    if deleting {
        return;
    }
    let status = ns.status.get_or_insert_with(Default::default);
    set_if_empty(&mut status.phase, "Active");
    let spec = ns.spec.get_or_insert_with(Default::default);
    if spec.finalizers.is_empty() {
        spec.finalizers.push("kubernetes".to_string());
    }
}

/// Allocatable defaults to capacity.
pub(super) fn default_node(node: &mut Node) {
    if let Some(status) = node.status.as_mut().filter(|s| s.allocatable.is_empty()) {
        status.allocatable = status.capacity.clone();
    }
}

pub(super) fn default_endpoints(ep: &mut Endpoints) {
    for s in &mut ep.subsets {
        for p in &mut s.ports {
            set_if_empty(&mut p.protocol, "TCP");
        }
    }
}

/// `type: Opaque`; `stringData` is merged into `data` (base64), as Kubernetes does on write.
pub(super) fn default_secret(secret: &mut Secret) {
    set_if_empty(&mut secret.r#type, "Opaque");
    for (k, v) in std::mem::take(&mut secret.string_data) {
        secret.data.insert(k, BASE64.encode(v));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------

pub(super) fn validate_namespace(ns: &Namespace, errs: &mut Errors) {
    let path = Path::new("spec").child("finalizers");
    for (i, f) in ns.spec.iter().flat_map(|s| &s.finalizers).enumerate() {
        let p = path.index(i);
        let reasons = names::qualified_name(f);
        if !reasons.is_empty() {
            errs.syntax(&p, f, reasons);
        } else if !f.contains('/') && f != "kubernetes" {
            errs.invalid(&p, q(f), "name is neither a standard finalizer name nor is it fully qualified");
        }
    }
    if let Some(phase) = ns.status.as_ref().map(|s| s.phase.as_str()).filter(|p| !p.is_empty()) {
        errs.one_of(&Path::new("status").child("phase"), phase, &["Active", "Terminating"]);
    }
}

fn validate_cidr(v: &str, path: &Path, errs: &mut Errors) -> Option<bool> {
    match parse_cidr(v) {
        Some((ip, _)) => Some(ip.is_ipv4()),
        None => {
            errs.invalid(path, q(v), "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)");
            None
        }
    }
}

pub(super) fn validate_node(node: &Node, old: Option<&Node>, errs: &mut Errors) {
    let path = Path::new("spec");
    let default = NodeSpec::default();
    let spec = node.spec.as_ref().unwrap_or(&default);
    let pod_cidr_ok =
        !spec.pod_cidr.is_empty() && validate_cidr(&spec.pod_cidr, &path.child("podCIDR"), errs).is_some();
    let cp = path.child("podCIDRs");
    let families: Vec<Option<bool>> =
        spec.pod_cid_rs.iter().enumerate().map(|(i, c)| validate_cidr(c, &cp.index(i), errs)).collect();
    if spec.pod_cid_rs.len() > 2 {
        errs.too_many(&cp, spec.pod_cid_rs.len(), 2);
    } else if matches!(families.as_slice(), [Some(a), Some(b)] if a == b) {
        let reason = "may specify no more than one CIDR for each IP family";
        errs.invalid(&cp, q(&spec.pod_cid_rs.join(",")), reason);
    }
    if let Some(first) = spec.pod_cid_rs.first().filter(|f| pod_cidr_ok && **f != spec.pod_cidr) {
        errs.invalid(&cp.index(0), q(first), "must match `podCIDR`");
    }
    let mut seen = Unique::default();
    let keys: Vec<String> = spec.taints.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect();
    for (i, t) in spec.taints.iter().enumerate() {
        let p = path.child("taints").index(i);
        if t.key.is_empty() {
            errs.required(&p.child("key"), "");
        } else {
            errs.syntax(&p.child("key"), &t.key, names::qualified_name(&t.key));
        }
        errs.syntax(&p.child("value"), &t.value, names::label_value(&t.value));
        errs.required_one_of(&p.child("effect"), &t.effect, TAINT_EFFECTS);
        seen.check(&keys[i], &p, errs);
    }

    if let Some(old) = old {
        let old_spec = old.spec.as_ref().unwrap_or(&default);
        let fixed_once_set = [
            ("podCIDR", &old_spec.pod_cidr, &spec.pod_cidr),
            ("providerID", &old_spec.provider_id, &spec.provider_id),
        ];
        for (field, old_v, new_v) in fixed_once_set {
            if !old_v.is_empty() && old_v != new_v {
                errs.forbidden(
                    &path.child(field),
                    format!("node updates may not change {field} except from \"\" to valid"),
                );
            }
        }
        if !old_spec.pod_cid_rs.is_empty() && old_spec.pod_cid_rs != spec.pod_cid_rs {
            errs.forbidden(&cp, "node updates may not change podCIDRs except from \"\" to valid");
        }
    }
}

/// Keys are config keys; `binaryData` values base64; no key in both maps; 1 MiB in total.
pub(super) fn validate_config_map(cm: &ConfigMap, old: Option<&ConfigMap>, errs: &mut Errors) {
    let data = Path::new("data");
    let binary = Path::new("binaryData");
    let mut total = 0;
    for (k, v) in &cm.data {
        config_key(k, &data.key(k), errs);
        total += v.len();
    }
    for (k, v) in &cm.binary_data {
        let p = binary.key(k);
        config_key(k, &p, errs);
        if cm.data.contains_key(k) {
            errs.invalid(&p, q(k), "duplicate of key present in data");
        }
        match BASE64.decode(v) {
            Ok(bytes) => total += bytes.len(),
            Err(e) => errs.invalid(&p, q("<binary>"), format!("must be valid base64: {e}")),
        }
    }
    if total > MAX_DATA_SIZE {
        errs.too_long(&data, MAX_DATA_SIZE);
    }
    if let Some(old) = old.filter(|o| o.immutable == Some(true)) {
        if cm.immutable != Some(true) {
            errs.forbidden(&Path::new("immutable"), IMMUTABLE_SET);
        }
        if cm.data != old.data {
            errs.forbidden(&data, IMMUTABLE_SET);
        }
        if cm.binary_data != old.binary_data {
            errs.forbidden(&binary, IMMUTABLE_SET);
        }
    }
}

/// Keys required by the well-known secret types (`data[<key>]: Required value`).
fn required_secret_keys(ty: &str) -> &'static [&'static str] {
    match ty {
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        _ => &[],
    }
}

pub(super) fn validate_secret(secret: &Secret, old: Option<&Secret>, errs: &mut Errors) {
    let data = Path::new("data");
    let mut total = 0;
    let mut decoded: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for (k, v) in &secret.data {
        let p = data.key(k);
        config_key(k, &p, errs);
        match BASE64.decode(v) {
            Ok(bytes) => {
                total += bytes.len();
                decoded.insert(k, bytes);
            }
            Err(e) => errs.invalid(&p, q("<secret contents redacted>"), format!("must be valid base64: {e}")),
        }
    }
    // stringData is merged into data by `apply_defaults`; anything left is checked the same way.
    for (k, v) in &secret.string_data {
        config_key(k, &Path::new("stringData").key(k), errs);
        total += v.len();
    }
    if total > MAX_DATA_SIZE {
        errs.too_long(&data, MAX_DATA_SIZE);
    }

    let ty = secret.r#type.as_str();
    let tp = Path::new("type");
    if ty.is_empty() {
        errs.required(&tp, "");
    }
    for key in required_secret_keys(ty) {
        if !secret.data.contains_key(*key) {
            errs.required(&data.key(key), "");
        }
    }
    match ty {
        "kubernetes.io/service-account-token" => {
            let annotation = "kubernetes.io/service-account.name";
            let named = secret.metadata.as_ref().is_some_and(|m| m.annotations.contains_key(annotation));
            if !named {
                errs.required(&Path::new("metadata").child("annotations").key(annotation), "");
            }
        }
        "kubernetes.io/basic-auth"
            if !secret.data.contains_key("username") && !secret.data.contains_key("password") =>
        {
            errs.required(&data.key("username"), "");
            errs.required(&data.key("password"), "");
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = required_secret_keys(ty)[0];
            if let Some(bytes) = decoded.get(key) {
                let json = std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(t).ok());
                if !json.is_some_and(|v| v.is_mapping()) {
                    errs.invalid(&data.key(key), q("<secret contents redacted>"), "must be a JSON object");
                }
            }
        }
        _ => {}
    }

    if let Some(old) = old {
        if secret.r#type != old.r#type {
            errs.immutable(&tp);
        }
        if old.immutable == Some(true) {
            if secret.immutable != Some(true) {
                errs.forbidden(&Path::new("immutable"), IMMUTABLE_SET);
            }
            if secret.data != old.data {
                errs.forbidden(&data, IMMUTABLE_SET);
            }
        }
    }
}

pub(super) fn validate_service_account(sa: &ServiceAccount, errs: &mut Errors) {
    for (i, s) in sa.image_pull_secrets.iter().enumerate() {
        let p = Path::new("imagePullSecrets").index(i).child("name");
        if s.name.is_empty() {
            errs.required(&p, "");
        } else {
            errs.syntax(&p, &s.name, names::dns1123_subdomain(&s.name));
        }
    }
}

/// An endpoint address: a real unicast IP, not loopback, link-local or unspecified.
fn validate_endpoint_ip(ip: &str, path: &Path, errs: &mut Errors) {
    if ip.is_empty() {
        errs.required(path, "");
        return;
    }
    let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
        errs.invalid(path, q(ip), "must be a valid IP address");
        return;
    };
    let reason = match addr {
        _ if addr.is_unspecified() => Some("may not be unspecified (0.0.0.0, ::)"),
        _ if addr.is_loopback() => Some("may not be in the loopback range (127.0.0.0/8, ::1/128)"),
        std::net::IpAddr::V4(v4) if v4.is_link_local() => {
            Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        }
        std::net::IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => {
            Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        }
        _ if addr.is_multicast() => Some("may not be a multicast address"),
        _ => None,
    };
    if let Some(r) = reason {
        errs.invalid(path, q(ip), r);
    }
}

pub(super) fn validate_endpoints(ep: &Endpoints, errs: &mut Errors) {
    for (i, s) in ep.subsets.iter().enumerate() {
        let sp = Path::new("subsets").index(i);
        for (list, field) in [(&s.addresses, "addresses"), (&s.not_ready_addresses, "notReadyAddresses")] {
            for (j, a) in list.iter().enumerate() {
                let ap = sp.child(field).index(j);
                validate_endpoint_ip(&a.ip, &ap.child("ip"), errs);
                if !a.hostname.is_empty() {
                    errs.syntax(&ap.child("hostname"), &a.hostname, names::dns1123_label(&a.hostname));
                }
                if let Some(n) = a.node_name.as_deref().filter(|n| !n.is_empty()) {
                    errs.syntax(&ap.child("nodeName"), n, names::dns1123_subdomain(n));
                }
            }
        }
        let mut port_names = Unique::default();
        for (j, p) in s.ports.iter().enumerate() {
            let pp = sp.child("ports").index(j);
            let np = pp.child("name");
            if p.name.is_empty() {
                if s.ports.len() > 1 {
                    errs.required(&np, "");
                }
            } else {
                errs.syntax(&np, &p.name, names::dns1123_label(&p.name));
                port_names.check(&p.name, &np, errs);
            }
            errs.in_range(&pp.child("port"), p.port.into(), 1, 65535);
            errs.required_one_of(&pp.child("protocol"), &p.protocol, PROTOCOLS);
            if let Some(ap) = p.app_protocol.as_deref() {
                errs.syntax(&pp.child("appProtocol"), ap, names::qualified_name(ap));
            }
        }
    }
}

pub(super) fn validate_event(ev: &Event, errs: &mut Errors) {
    let path = Path::new("involvedObject");
    let Some(obj) = &ev.involved_object else {
        errs.required(&path, "");
        return;
    };
    if obj.kind.is_empty() {
        errs.required(&path.child("kind"), "");
    }
    if obj.name.is_empty() {
        errs.required(&path.child("name"), "");
    }
    let ns = ev.metadata.as_ref().map(|m| m.namespace.as_str()).unwrap_or_default();
    // Events about cluster-scoped objects live in `default`.
    let matches =
        if obj.namespace.is_empty() { ns.is_empty() || ns == "default" } else { ns == obj.namespace };
    if !matches {
        errs.invalid(&path.child("namespace"), q(&obj.namespace), "does not match event.namespace");
    }
    if !ev.r#type.is_empty() {
        errs.one_of(&Path::new("type"), &ev.r#type, &["Normal", "Warning"]);
    }
    errs.non_negative(&Path::new("count"), ev.count.into());
}

pub(super) fn validate_lease(lease: &Lease, errs: &mut Errors) {
    let Some(spec) = &lease.spec else { return };
    let path = Path::new("spec");
    if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
        errs.invalid(&path.child("leaseDurationSeconds"), d, "must be greater than 0");
    }
    if let Some(t) = spec.lease_transitions {
        errs.non_negative(&path.child("leaseTransitions"), t.into());
    }
    if let Some(s) = spec.strategy.as_deref() {
        errs.one_of(&path.child("strategy"), s, &["OldestEmulationVersion"]);
    }
    if spec.preferred_holder.as_deref().is_some_and(|h| !h.is_empty())
        && spec.strategy.as_deref().is_none_or(str::is_empty)
    {
        errs.forbidden(&path.child("preferredHolder"), "may only be specified if `strategy` is defined");
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn namespace() {
        let yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n";
        let obj = defaulted(yaml);
        let navarch_api::Object::Namespace(ns) = &obj else { unreachable!() };
        assert_eq!(ns.status.as_ref().unwrap().phase, "Active");
        assert_eq!(ns.spec.as_ref().unwrap().finalizers, ["kubernetes"]);
        assert!(super::super::validate(&obj, None).is_empty());
        assert_error(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nspec: {finalizers: [custom]}\n",
            "spec.finalizers[0]",
            "neither a standard finalizer name nor is it fully qualified",
        );
        let deleting = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, deletionTimestamp: '2024-01-01T00:00:00Z'}\nstatus: {phase: Terminating}\n";
        let navarch_api::Object::Namespace(ns) = defaulted(deleting) else { unreachable!() };
        assert!(ns.spec.is_none(), "the kubernetes finalizer is not re-added while deleting");
    }

    const NODE: &str = "\
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {kubernetes.io/hostname: node-1}
spec:
  podCIDR: 10.244.1.0/24
  podCIDRs: [10.244.1.0/24, 'fd00:1::/64']
  taints:
  - {key: node-role.kubernetes.io/control-plane, effect: NoSchedule}
status:
  capacity: {cpu: '4', memory: 8Gi, pods: '110'}
";

    #[test]
    fn node() {
        assert_valid(NODE);
        let navarch_api::Object::Node(n) = defaulted(NODE) else { unreachable!() };
        assert_eq!(n.status.as_ref().unwrap().allocatable["cpu"].string, "4");
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "  podCIDR: 10.244.1.0/24\n",
                "  podCIDR: 10.244.1.0/33\n",
                "spec.podCIDR",
                "must be a valid CIDR value",
            ),
            (
                "[10.244.1.0/24, 'fd00:1::/64']",
                "[10.244.1.0/24, 10.245.1.0/24]",
                "spec.podCIDRs",
                "no more than one CIDR for each IP family",
            ),
            ("[10.244.1.0/24, 'fd00:1::/64']", "[10.244.2.0/24]", "spec.podCIDRs[0]", "must match `podCIDR`"),
            (
                "effect: NoSchedule}",
                "effect: Sometimes}",
                "spec.taints[0].effect",
                "Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            ),
            ("effect: NoSchedule}", "}", "spec.taints[0].effect", "Required value"),
            (
                "  - {key: node-role.kubernetes.io/control-plane,",
                "  - {key: 'bad key',",
                "spec.taints[0].key",
                "name part must consist",
            ),
            (
                "effect: NoSchedule}\n",
                "effect: NoSchedule}\n  - {key: node-role.kubernetes.io/control-plane, value: x, effect: NoSchedule}\n",
                "spec.taints[1]",
                "Duplicate value: \"node-role.kubernetes.io/control-plane:NoSchedule\"",
            ),
        ];
        assert_edit_errors(NODE, cases);
        let moved = edit(
            NODE,
            "  podCIDR: 10.244.1.0/24\n  podCIDRs: [10.244.1.0/24, 'fd00:1::/64']\n",
            "  podCIDR: 10.244.2.0/24\n",
        );
        let errs = update_errors(NODE, &moved);
        assert_eq!(errs.len(), 2, "{}", render(&errs));
        assert_eq!(errs[0].path, "spec.podCIDR");
        assert!(errs[0].reason.contains("node updates may not change podCIDR"));
        let bare = edit(NODE, "  podCIDR: 10.244.1.0/24\n  podCIDRs: [10.244.1.0/24, 'fd00:1::/64']\n", "");
        assert!(update_errors(&bare, NODE).is_empty(), "podCIDR may be set once");
    }

    const CONFIG_MAP: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: game-config, namespace: default}
data:
  player_initial_lives: \"3\"
  game.properties: |
    enemy.types=aliens,monsters
binaryData:
  logo.png: iVBORw0KGgo=
";

    #[test]
    fn config_map() {
        assert_valid(CONFIG_MAP);
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "  player_initial_lives:",
                "  player/lives:",
                "data[player/lives]",
                "a valid config key must consist of alphanumeric characters",
            ),
            ("  player_initial_lives:", "  ..lives:", "data[..lives]", "must not start with '..'"),
            (
                "  logo.png: iVBORw0KGgo=\n",
                "  game.properties: aGk=\n",
                "binaryData[game.properties]",
                "duplicate of key present in data",
            ),
            (
                "  logo.png: iVBORw0KGgo=\n",
                "  logo.png: not*base64\n",
                "binaryData[logo.png]",
                "must be valid base64",
            ),
        ];
        assert_edit_errors(CONFIG_MAP, cases);
        let big = edit(
            CONFIG_MAP,
            "  player_initial_lives: \"3\"\n",
            &format!("  big: {}\n", "x".repeat(1024 * 1024)),
        );
        assert_error(&big, "data", "Too long: must have at most 1048576 bytes");

        let frozen = edit(CONFIG_MAP, "data:\n", "immutable: true\ndata:\n");
        let changed = edit(&frozen, "\"3\"", "\"4\"");
        assert_update_error(
            &frozen,
            &changed,
            "data",
            "Forbidden: field is immutable when `immutable` is set",
        );
        let thawed = edit(CONFIG_MAP, "data:\n", "immutable: false\ndata:\n");
        assert_update_error(&frozen, &thawed, "immutable", "Forbidden");
        assert!(update_errors(CONFIG_MAP, &edit(CONFIG_MAP, "\"3\"", "\"4\"")).is_empty());
    }

    const SECRET: &str = "\
apiVersion: v1
kind: Secret
metadata: {name: db-credentials, namespace: default}
data:
  username: YWRtaW4=
stringData:
  password: s3cr3t
";

    #[test]
    fn secret() {
        assert_valid(SECRET);
        let navarch_api::Object::Secret(s) = defaulted(SECRET) else { unreachable!() };
        assert_eq!(s.r#type, "Opaque");
        assert!(s.string_data.is_empty());
        assert_eq!(s.data["password"], "czNjcjN0");

        let cases: &[(&str, &str, &str, &str)] = &[
            ("  username: YWRtaW4=\n", "  username: '%%%'\n", "data[username]", "must be valid base64"),
            ("  username: YWRtaW4=\n", "  user name: YWRtaW4=\n", "data[user name]", "a valid config key"),
            ("data:\n", "type: kubernetes.io/tls\ndata:\n", "data[tls.crt]", "Required value"),
            (
                "data:\n",
                "type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: WzFd\n",
                "data[.dockerconfigjson]",
                "must be a JSON object",
            ),
            (
                "data:\n",
                "type: kubernetes.io/service-account-token\ndata:\n",
                "metadata.annotations[kubernetes.io/service-account.name]",
                "Required value",
            ),
        ];
        for (from, to, path, reason) in cases {
            let errs = defaulted_errors(&edit(SECRET, from, to));
            assert!(
                errs.first().is_some_and(|e| e.path == *path && e.reason.contains(reason)),
                "expected `{path}: ...{reason}...`, got:\n{}",
                render(&errs)
            );
        }
        assert_valid(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: reg, namespace: default}\ntype: kubernetes.io/dockerconfigjson\ndata: {.dockerconfigjson: eyJhdXRocyI6e319}\n",
        );
        let retyped = edit(SECRET, "data:\n", "type: example.com/custom\ndata:\n");
        assert_update_error(SECRET, &retyped, "type", "field is immutable");
    }

    #[test]
    fn service_account() {
        assert_valid(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: build-bot, namespace: default}\nimagePullSecrets: [{name: regcred}]\nautomountServiceAccountToken: false\n",
        );
        assert_error(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: default}\nimagePullSecrets: [{name: Reg_Cred}]\n",
            "imagePullSecrets[0].name",
            "a lowercase RFC 1123 subdomain",
        );
    }

    const ENDPOINTS: &str = "\
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: default}
subsets:
- addresses:
  - {ip: 10.244.1.5, nodeName: node-1, targetRef: {kind: Pod, name: web-1, namespace: default}}
  notReadyAddresses:
  - {ip: 'fd00::5'}
  ports:
  - {name: http, port: 8080}
  - {name: https, port: 8443, protocol: TCP}
";

    #[test]
    fn endpoints() {
        assert_valid(ENDPOINTS);
        let cases: &[(&str, &str, &str, &str)] = &[
            ("ip: 10.244.1.5,", "ip: 10.244.1,", "subsets[0].addresses[0].ip", "must be a valid IP address"),
            ("ip: 10.244.1.5,", "ip: 127.0.0.1,", "subsets[0].addresses[0].ip", "loopback"),
            ("ip: 'fd00::5'", "ip: '::'", "subsets[0].notReadyAddresses[0].ip", "unspecified"),
            ("ip: 10.244.1.5,", "ip: 169.254.169.254,", "subsets[0].addresses[0].ip", "link-local"),
            (
                "{name: http, port: 8080}",
                "{name: http, port: 0}",
                "subsets[0].ports[0].port",
                "must be between 1 and 65535",
            ),
            ("{name: https,", "{name: http,", "subsets[0].ports[1].name", "Duplicate value: \"http\""),
            ("{name: https,", "{", "subsets[0].ports[1].name", "Required value"),
            (
                "protocol: TCP}",
                "protocol: QUIC}",
                "subsets[0].ports[1].protocol",
                "Unsupported value: \"QUIC\"",
            ),
        ];
        assert_edit_errors(ENDPOINTS, cases);
    }

    const EVENT: &str = "\
apiVersion: v1
kind: Event
metadata: {name: web-1.17a3b4c5d6e7f809, namespace: default}
involvedObject: {kind: Pod, name: web-1, namespace: default, apiVersion: v1}
reason: Scheduled
message: Successfully assigned default/web-1 to node-1
type: Normal
count: 1
source: {component: default-scheduler}
";

    #[test]
    fn event() {
        assert_valid(EVENT);
        assert_valid(&edit(
            EVENT,
            "involvedObject: {kind: Pod, name: web-1, namespace: default,",
            "involvedObject: {kind: Node, name: node-1,",
        ));
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "involvedObject: {kind: Pod, name: web-1, namespace: default, apiVersion: v1}\n",
                "",
                "involvedObject",
                "Required value",
            ),
            (
                "namespace: default, apiVersion",
                "namespace: other, apiVersion",
                "involvedObject.namespace",
                "does not match event.namespace",
            ),
            (
                "type: Normal",
                "type: Info",
                "type",
                "Unsupported value: \"Info\": supported values: \"Normal\", \"Warning\"",
            ),
            ("{kind: Pod, name: web-1,", "{kind: Pod,", "involvedObject.name", "Required value"),
        ];
        assert_edit_errors(EVENT, cases);
    }

    #[test]
    fn lease() {
        let lease = "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: controller-manager, namespace: kube-system}\nspec: {holderIdentity: node-1_abc, leaseDurationSeconds: 15, acquireTime: '2024-01-01T00:00:00.000000Z', renewTime: '2024-01-01T00:00:10.000000Z', leaseTransitions: 2}\n";
        assert_valid(lease);
        assert_valid(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: l, namespace: default}\n",
        );
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "leaseDurationSeconds: 15",
                "leaseDurationSeconds: 0",
                "spec.leaseDurationSeconds",
                "Invalid value: 0: must be greater than 0",
            ),
            (
                "leaseTransitions: 2",
                "leaseTransitions: -1",
                "spec.leaseTransitions",
                "must be greater than or equal to 0",
            ),
            (
                "holderIdentity: node-1_abc,",
                "preferredHolder: node-2,",
                "spec.preferredHolder",
                "may only be specified if `strategy` is defined",
            ),
        ];
        assert_edit_errors(lease, cases);
    }
}
