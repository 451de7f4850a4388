//! Containers (regular, init and ephemeral): names, images, policies, ports, probes and lifecycle hooks.
//! What containers take from elsewhere is checked in its own file: [`super::env`],
//! [`super::resources`], [`super::security`], and volume mounts in [`super::volumes`].

use std::collections::BTreeSet;

use navarch_api::names;
use navarch_api::v1::*;

use super::env::validate_env;
use super::ephemeral::validate_ephemeral_container;
use super::resources::{ResourceScope, validate_resources};
use super::security::validate_security_context;
use super::volumes::validate_volume_mounts;
use super::{PULL_POLICIES, SpecContext};
use crate::validation::field::{Errors, PROTOCOLS, Path, is_ip, q};
use crate::validation::meta::Unique;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContainerKind {
    Regular,
    Init,
    Ephemeral,
}

pub(super) fn validate_container(
    c: &Container,
    path: &Path,
    kind: ContainerKind,
    ctx: &SpecContext,
    errs: &mut Errors,
) {
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.required(&name_path, "");
    } else {
        errs.syntax(&name_path, &c.name, names::dns1123_label(&c.name));
    }
    if c.image.is_empty() {
        errs.required(&path.child("image"), "");
    } else if ctx.rules.is_pod && c.image.trim() != c.image {
        errs.invalid(&path.child("image"), q(&c.image), "must not have leading or trailing whitespace");
    }
    errs.required_one_of(
        &path.child("terminationMessagePolicy"),
        &c.termination_message_policy,
        &["File", "FallbackToLogsOnError"],
    );
    errs.required_one_of(&path.child("imagePullPolicy"), &c.image_pull_policy, PULL_POLICIES);

    let sidecar = kind == ContainerKind::Init && c.restart_policy.as_deref() == Some("Always");
    match (kind, c.restart_policy.as_deref()) {
        (_, None) => {}
        (ContainerKind::Init, Some(p)) => errs.one_of(&path.child("restartPolicy"), p, &["Always"]),
        (ContainerKind::Regular, Some(_)) => {
            errs.forbidden(&path.child("restartPolicy"), "may not be set for non-init containers")
        }
        // Outside the fields an ephemeral container may set, like its ports.
        (ContainerKind::Ephemeral, Some(_)) => {}
    }

    if kind == ContainerKind::Ephemeral {
        validate_ephemeral_container(c, path, ctx, errs);
    } else {
        validate_container_ports(c, path, ctx, errs);
    }

    let probes_allowed = kind == ContainerKind::Regular || sidecar;
    for (probe, field, kind_of) in [
        (&c.liveness_probe, "livenessProbe", ProbeKind::Liveness),
        (&c.readiness_probe, "readinessProbe", ProbeKind::Readiness),
        (&c.startup_probe, "startupProbe", ProbeKind::Startup),
    ] {
        let Some(probe) = probe else { continue };
        let p = path.child(field);
        if probes_allowed {
            validate_probe(probe, &p, kind_of, errs);
        } else if kind == ContainerKind::Init {
            errs.forbidden(&p, "may not be set for init containers without restartPolicy=Always");
        }
    }
    if let Some(l) = &c.lifecycle {
        let p = path.child("lifecycle");
        if kind == ContainerKind::Init && !sidecar {
            errs.forbidden(&p, "may not be set for init containers without restartPolicy=Always");
        } else if kind != ContainerKind::Ephemeral {
            validate_lifecycle(l, &p, ctx.spec, errs);
        }
    }

    validate_env(c, path, ctx, errs);
    validate_volume_mounts(c, path, ctx, errs);
    if let Some(r) = &c.resources {
        validate_resources(r, &path.child("resources"), ResourceScope::Container, errs);
    }
    for (i, rp) in c.resize_policy.iter().enumerate() {
        let p = path.child("resizePolicy").index(i);
        errs.required_one_of(&p.child("resourceName"), &rp.resource_name, &["cpu", "memory"]);
        errs.required_one_of(
            &p.child("restartPolicy"),
            &rp.restart_policy,
            &["NotRequired", "RestartContainer"],
        );
    }
    if let Some(sc) = &c.security_context {
        validate_security_context(sc, &path.child("securityContext"), errs);
    }
}

fn validate_container_ports(c: &Container, path: &Path, ctx: &SpecContext, errs: &mut Errors) {
    let mut names = Unique::default();
    for (i, port) in c.ports.iter().enumerate() {
        let p = path.child("ports").index(i);
        if !port.name.is_empty() {
            errs.syntax(&p.child("name"), &port.name, names::port_name(&port.name));
            names.check(&port.name, &p.child("name"), errs);
        }
        if port.container_port == 0 {
            errs.required(&p.child("containerPort"), "");
        } else {
            errs.in_range(&p.child("containerPort"), port.container_port.into(), 1, 65535);
        }
        if port.host_port != 0 {
            errs.in_range(&p.child("hostPort"), port.host_port.into(), 1, 65535);
            if ctx.spec.host_network && port.host_port != port.container_port {
                errs.invalid(
                    &p.child("hostPort"),
                    port.host_port,
                    "must match `containerPort` when `hostNetwork` is true",
                );
            }
        }
        errs.required_one_of(&p.child("protocol"), &port.protocol, PROTOCOLS);
        if !port.host_ip.is_empty() && !is_ip(&port.host_ip) {
            errs.invalid(&p.child("hostIP"), q(&port.host_ip), "must be a valid IP address");
        }
    }
}

/// Two containers of a pod may not claim the same host port.
pub(super) fn validate_host_ports(spec: &PodSpec, path: &Path, errs: &mut Errors) {
    let mut seen = BTreeSet::new();
    for (list, field) in [(&spec.containers, "containers"), (&spec.init_containers, "initContainers")] {
        for (i, c) in list.iter().enumerate() {
            for (j, port) in c.ports.iter().enumerate() {
                if port.host_port == 0 {
                    continue;
                }
                let key = format!("{}{}/{}", port.host_ip, port.host_port, port.protocol);
                let key = key.trim_start_matches('/').to_string();
                if !seen.insert(key.clone()) {
                    errs.duplicate(
                        &path.child(field).index(i).child("ports").index(j).child("hostPort"),
                        q(&key),
                    );
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

fn validate_probe(p: &Probe, path: &Path, kind: ProbeKind, errs: &mut Errors) {
    let handlers: Vec<&str> = [
        (p.exec.is_some(), "exec"),
        (p.http_get.is_some(), "httpGet"),
        (p.tcp_socket.is_some(), "tcpSocket"),
        (p.grpc.is_some(), "grpc"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    check_one_handler(&handlers, path, errs);
    if let Some(e) = &p.exec {
        validate_exec(e, &path.child("exec"), errs);
    }
    if let Some(g) = &p.http_get {
        validate_http_get(g, &path.child("httpGet"), errs);
    }
    if let Some(t) = &p.tcp_socket {
        validate_port_num_or_name(t.port.as_ref(), &path.child("tcpSocket").child("port"), errs);
    }
    if let Some(g) = &p.grpc {
        errs.in_range(&path.child("grpc").child("port"), g.port.into(), 1, 65535);
    }
    errs.non_negative(&path.child("initialDelaySeconds"), p.initial_delay_seconds.into());
    for (field, value) in [
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        if value < 1 {
            errs.invalid(&path.child(field), value, "must be greater than or equal to 1");
        }
    }
    if kind != ProbeKind::Readiness && p.success_threshold > 1 {
        errs.invalid(&path.child("successThreshold"), p.success_threshold, "must be 1");
    }
    if let Some(t) = p.termination_grace_period_seconds {
        let tp = path.child("terminationGracePeriodSeconds");
        if kind == ProbeKind::Readiness {
            errs.invalid(&tp, t, "must not be set for readinessProbes");
        } else {
            errs.positive(&tp, t);
        }
    }
}

fn check_one_handler(handlers: &[&str], path: &Path, errs: &mut Errors) {
    if handlers.is_empty() {
        errs.required(path, "must specify a handler type");
    }
    for extra in handlers.iter().skip(1) {
        errs.forbidden(&path.child(extra), "may not specify more than 1 handler type");
    }
}

fn validate_exec(e: &ExecAction, path: &Path, errs: &mut Errors) {
    if e.command.is_empty() {
        errs.required(&path.child("command"), "");
    }
}

fn validate_http_get(g: &HttpGetAction, path: &Path, errs: &mut Errors) {
    if g.path.is_empty() {
        errs.required(&path.child("path"), "");
    }
    validate_port_num_or_name(g.port.as_ref(), &path.child("port"), errs);
    errs.required_one_of(&path.child("scheme"), &g.scheme, &["HTTP", "HTTPS"]);
    for (i, h) in g.http_headers.iter().enumerate() {
        let ok = !h.name.is_empty() && h.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            errs.invalid(
                &path.child("httpHeaders").index(i).child("name"),
                q(&h.name),
                "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', \
                 regex used for validation is '[-A-Za-z0-9]+')",
            );
        }
    }
}

/// A port given as a number (1–65535) or as the name of a container port (IANA service name).
pub(in crate::validation) fn validate_port_num_or_name(
    port: Option<&IntOrString>,
    path: &Path,
    errs: &mut Errors,
) {
    let Some(port) = port else {
        errs.required(path, "");
        return;
    };
    match (port.as_int(), port.as_str()) {
        (Some(n), _) => errs.in_range(path, n.into(), 1, 65535),
        (None, Some("")) => errs.required(path, ""),
        (None, Some(s)) => errs.syntax(path, s, names::port_name(s)),
        (None, None) => errs.invalid(path, q(&port.to_string()), "must be an integer or a port name"),
    }
}

fn validate_lifecycle(l: &Lifecycle, path: &Path, spec: &PodSpec, errs: &mut Errors) {
    for (h, field) in [(&l.post_start, "postStart"), (&l.pre_stop, "preStop")] {
        let Some(h) = h else { continue };
        let p = path.child(field);
        let handlers: Vec<&str> = [
            (h.exec.is_some(), "exec"),
            (h.http_get.is_some(), "httpGet"),
            (h.tcp_socket.is_some(), "tcpSocket"),
            (h.sleep.is_some(), "sleep"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        check_one_handler(&handlers, &p, errs);
        if let Some(e) = &h.exec {
            validate_exec(e, &p.child("exec"), errs);
        }
        if let Some(g) = &h.http_get {
            validate_http_get(g, &p.child("httpGet"), errs);
        }
        if let Some(t) = &h.tcp_socket {
            validate_port_num_or_name(t.port.as_ref(), &p.child("tcpSocket").child("port"), errs);
        }
        if let Some(s) = &h.sleep {
            let grace = spec.termination_grace_period_seconds.unwrap_or(30);
            if s.seconds < 0 || (grace >= 0 && s.seconds > grace) {
                errs.invalid(
                    &p.child("sleep").child("seconds"),
                    s.seconds,
                    format!("must be non-negative and less than terminationGracePeriodSeconds ({grace})"),
                );
            }
        }
    }
    if let Some(sig) = l.stop_signal.as_deref() {
        let name = sig.strip_prefix("SIG").unwrap_or_default();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-') {
            errs.invalid(&path.child("stopSignal"), q(sig), "must be a signal name such as \"SIGTERM\"");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{POD, assert_edit_errors};
    use crate::validation::testing::*;

    #[test]
    fn invalid_container_fields() {
        let c = "spec.containers[0]";
        assert_edit_errors(&[
            ("  - name: app\n", "  - name: App\n", format!("{c}.name"), "a lowercase RFC 1123 label"),
            ("    image: nginx:1.25\n", "", format!("{c}.image"), "Required value"),
            (
                "    image: nginx:1.25\n",
                "    image: ' nginx'\n",
                format!("{c}.image"),
                "leading or trailing whitespace",
            ),
            (
                "containerPort: 80}",
                "containerPort: 0}",
                format!("{c}.ports[0].containerPort"),
                "Required value",
            ),
            (
                "containerPort: 80}",
                "containerPort: 70000}",
                format!("{c}.ports[0].containerPort"),
                "Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                "containerPort: 80}",
                "containerPort: 80, hostPort: -1}",
                format!("{c}.ports[0].hostPort"),
                "must be between 1 and 65535",
            ),
            ("{name: metrics,", "{name: http,", format!("{c}.ports[1].name"), "Duplicate value: \"http\""),
            (
                "{name: metrics,",
                "{name: metrics-endpoint-x,",
                format!("{c}.ports[1].name"),
                "no more than 15",
            ),
            (
                "protocol: TCP}",
                "protocol: HTTP}",
                format!("{c}.ports[1].protocol"),
                "Unsupported value: \"HTTP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
            ),
            (
                "      httpGet: {path: /healthz, port: http}\n",
                "      httpGet: {path: /healthz, port: http}\n      tcpSocket: {port: 80}\n",
                format!("{c}.livenessProbe.tcpSocket"),
                "Forbidden: may not specify more than 1 handler type",
            ),
            (
                "      httpGet: {path: /healthz, port: http}\n",
                "",
                format!("{c}.livenessProbe"),
                "Required value: must specify a handler type",
            ),
            (
                "      periodSeconds: 3\n",
                "      periodSeconds: -1\n",
                format!("{c}.livenessProbe.periodSeconds"),
                "must be greater than or equal to 1",
            ),
            (
                "      periodSeconds: 3\n",
                "      periodSeconds: 3\n      successThreshold: 2\n",
                format!("{c}.livenessProbe.successThreshold"),
                "Invalid value: 2: must be 1",
            ),
            (
                "      failureThreshold: 30\n",
                "      failureThreshold: -2\n",
                format!("{c}.startupProbe.failureThreshold"),
                "must be greater than or equal to 1",
            ),
            (
                "httpGet: {path: /healthz, port: http}",
                "httpGet: {path: /healthz, port: 0}",
                format!("{c}.livenessProbe.httpGet.port"),
                "must be between 1 and 65535",
            ),
            (
                "httpGet: {path: /healthz, port: http}",
                "httpGet: {path: /healthz, port: http, scheme: FTP}",
                format!("{c}.livenessProbe.httpGet.scheme"),
                "Unsupported value: \"FTP\"",
            ),
            (
                "tcpSocket: {port: 80}",
                "tcpSocket: {port: 80}\n      terminationGracePeriodSeconds: 10",
                format!("{c}.readinessProbe.terminationGracePeriodSeconds"),
                "must not be set for readinessProbes",
            ),
            (
                "exec: {command: [cat, /tmp/healthy]}",
                "exec: {command: []}",
                format!("{c}.startupProbe.exec.command"),
                "Required value",
            ),
            (
                "preStop: {sleep: {seconds: 5}}",
                "preStop: {}",
                format!("{c}.lifecycle.preStop"),
                "must specify a handler type",
            ),
            (
                "preStop: {sleep: {seconds: 5}}",
                "preStop: {sleep: {seconds: 50}}",
                format!("{c}.lifecycle.preStop.sleep.seconds"),
                "less than terminationGracePeriodSeconds (30)",
            ),
            (
                "    command: [sh, -c, 'true']\n",
                "    command: [sh, -c, 'true']\n    readinessProbe: {exec: {command: ['true']}}\n",
                "spec.initContainers[0].readinessProbe".into(),
                "may not be set for init containers without restartPolicy=Always",
            ),
            (
                "    command: [sh, -c, 'true']\n",
                "    command: [sh, -c, 'true']\n    restartPolicy: Never\n",
                "spec.initContainers[0].restartPolicy".into(),
                "Unsupported value: \"Never\": supported values: \"Always\"",
            ),
        ]);
    }

    #[test]
    fn sidecar_init_container_may_have_probes() {
        let yaml = edit(
            POD,
            "    command: [sh, -c, 'true']\n",
            "    restartPolicy: Always\n    readinessProbe: {exec: {command: ['true']}}\n",
        );
        assert_valid(&yaml);
    }

    #[test]
    fn host_ports() {
        let yaml = edit(
            POD,
            "    command: [sh, -c, 'true']\n",
            "    command: [sh, -c, 'true']\n    restartPolicy: Always\n    ports: [{containerPort: 8080, hostPort: 80}]\n",
        );
        let yaml = edit(
            &yaml,
            "- {name: http, containerPort: 80}",
            "- {name: http, containerPort: 80, hostPort: 80}",
        );
        assert_error(&yaml, "spec.initContainers[0].ports[0].hostPort", "Duplicate value: \"80/TCP\"");
        let host_net = edit(POD, "  nodeSelector:", "  hostNetwork: true\n  nodeSelector:");
        assert_valid(&host_net);
        let mismatch = edit(
            &host_net,
            "- {name: http, containerPort: 80}",
            "- {name: http, containerPort: 80, hostPort: 81}",
        );
        assert_error(&mismatch, "spec.containers[0].ports[0].hostPort", "must match `containerPort`");
    }
}
