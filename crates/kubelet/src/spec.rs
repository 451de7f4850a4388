//! The OCI runtime spec (runc's config.json) for one container of a pod: process (command and args
//! by Kubernetes' rules against the image's Entrypoint/Cmd, env, user, capabilities), the pod's
//! shared network namespace (and, for an ephemeral container with a target, the target's PID
//! namespace), bind mounts of volumes and of the pod's hosts/resolv.conf/hostname, and cgroup limits
//! from `resources`. Pure: everything it needs is passed in.

use navarch_api::v1::{Container, Pod};
use serde_json::{Value, json};

/// containerd's default capability set.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability (for privileged containers and `add: [ALL]`).
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const PATH_DEFAULT: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CPU_PERIOD_US: i64 = 100_000;

/// A bind mount into the container.
#[derive(Debug, Clone, PartialEq)]
pub struct BindMount {
    pub host_path: String,
    pub container_path: String,
    pub read_only: bool,
}

/// Everything besides the pod and the container that goes into the spec.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    /// The image's OCI config (`Env`, `Entrypoint`, `Cmd`, `WorkingDir`, `User`).
    pub image_config: &'a Value,
    /// The container's environment, resolved (valueFrom, envFrom), in order.
    pub env: Vec<(String, String)>,
    pub mounts: Vec<BindMount>,
    /// The pod's network namespace (a bind-mounted nsfs file).
    pub netns_path: String,
    /// A PID namespace to join instead of a new one: an ephemeral container's target's
    /// (`/proc/<pid>/ns/pid`, [`pid_namespace_of`]).
    pub pid_namespace: Option<String>,
    /// cgroup path, e.g. `/navarch/pod<uid>/<container id>`.
    pub cgroups_path: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("no command: neither the container nor the image specifies one")]
    NoCommand,
    #[error("image user {0:?} is not numeric (uid[:gid]); set securityContext.runAsUser")]
    NonNumericUser(String),
    #[error("container has runAsNonRoot and would run as root (uid 0)")]
    RunAsRoot,
    #[error("{field}: invalid quantity {value:?}")]
    Quantity { field: String, value: String },
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Kubernetes' rule: `command` replaces the image's Entrypoint (and drops its Cmd); `args` replace Cmd.
pub fn process_args(container: &Container, image_config: &Value) -> Result<Vec<String>, SpecError> {
    let entrypoint = strings(image_config.get("Entrypoint"));
    let cmd = strings(image_config.get("Cmd"));
    let mut out = if !container.command.is_empty() { container.command.clone() } else { entrypoint };
    if !container.args.is_empty() {
        out.extend(container.args.iter().cloned());
    } else if container.command.is_empty() {
        out.extend(cmd);
    }
    if out.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(out)
}

/// `$(VAR)` references expanded from `env` (earlier variables), `$$(VAR)` escaped; unknown stay as is.
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if b[i + 1] == b'('
                && let Some(end) = s[i + 2..].find(')')
            {
                let name = &s[i + 2..i + 2 + end];
                match env.iter().rev().find(|(k, _)| k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&s[i..i + 3 + end]),
                }
                i += 3 + end;
                continue;
            }
        }
        let ch = s[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// uid and gid: container securityContext, then pod securityContext, then the image's `User`.
pub fn user(input: &SpecInput) -> Result<(i64, i64), SpecError> {
    let csc = input.container.security_context.as_ref();
    let psc = input.pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let image_user = input.image_config.get("User").and_then(|u| u.as_str()).unwrap_or("");
    let (mut uid, mut gid) = (0i64, 0i64);
    if !image_user.is_empty() && image_user != "root" {
        let (u, g) = image_user.split_once(':').unwrap_or((image_user, ""));
        uid = u.parse().map_err(|_| SpecError::NonNumericUser(image_user.into()))?;
        if !g.is_empty() {
            gid = g.parse().map_err(|_| SpecError::NonNumericUser(image_user.into()))?;
        }
    }
    if let Some(u) = csc.and_then(|c| c.run_as_user).or(psc.and_then(|p| p.run_as_user)) {
        uid = u;
    }
    if let Some(g) = csc.and_then(|c| c.run_as_group).or(psc.and_then(|p| p.run_as_group)) {
        gid = g;
    }
    let non_root =
        csc.and_then(|c| c.run_as_non_root).or(psc.and_then(|p| p.run_as_non_root)).unwrap_or(false);
    if non_root && uid == 0 {
        return Err(SpecError::RunAsRoot);
    }
    Ok((uid, gid))
}

fn cap_name(c: &str) -> String {
    let c = c.to_ascii_uppercase();
    if c.starts_with("CAP_") { c } else { format!("CAP_{c}") }
}

/// The capability set after `add` and `drop` (Kubernetes names without `CAP_`, `ALL` allowed).
pub fn capabilities(container: &Container) -> Vec<String> {
    let privileged = container.security_context.as_ref().and_then(|s| s.privileged).unwrap_or(false);
    if privileged {
        return ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect();
    }
    let mut caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect();
    if let Some(c) = container.security_context.as_ref().and_then(|s| s.capabilities.as_ref()) {
        for a in &c.add {
            if a.eq_ignore_ascii_case("ALL") {
                caps = ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect();
            } else if !caps.contains(&cap_name(a)) {
                caps.push(cap_name(a));
            }
        }
        for d in &c.drop {
            if d.eq_ignore_ascii_case("ALL") {
                caps.clear();
            } else {
                let d = cap_name(d);
                caps.retain(|c| *c != d);
            }
        }
        // `add` wins over `drop: [ALL]` (as in containerd's CRI).
        if c.drop.iter().any(|d| d.eq_ignore_ascii_case("ALL")) {
            for a in &c.add {
                if !a.eq_ignore_ascii_case("ALL") && !caps.contains(&cap_name(a)) {
                    caps.push(cap_name(a));
                }
            }
        }
    }
    caps
}

fn quantity(container: &Container, which: &str, name: &str) -> Result<Option<(i64, i64)>, SpecError> {
    let Some(res) = container.resources.as_ref() else { return Ok(None) };
    let list = if which == "limits" { &res.limits } else { &res.requests };
    let Some(q) = list.get(name) else { return Ok(None) };
    let a = q.amount().map_err(|_| SpecError::Quantity {
        field: format!("resources.{which}.{name}"),
        value: format!("{q:?}"),
    })?;
    Ok(Some((a.value(), a.milli_value())))
}

/// cgroup resources: cpu shares from the request, quota from the limit, memory limit.
pub fn resources(container: &Container) -> Result<Value, SpecError> {
    let mut res = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
    let cpu_request = quantity(container, "requests", "cpu")?.map(|(_, m)| m);
    let cpu_limit = quantity(container, "limits", "cpu")?.map(|(_, m)| m);
    // Kubernetes: a limit without a request makes the request equal the limit; none → 2 shares.
    let shares = cpu_request.or(cpu_limit).map(|m| (m * 1024 / 1000).max(2)).unwrap_or(2);
    let mut cpu = json!({ "shares": shares });
    if let Some(m) = cpu_limit {
        cpu["quota"] = json!((m * CPU_PERIOD_US / 1000).max(1000));
        cpu["period"] = json!(CPU_PERIOD_US);
    }
    res["cpu"] = cpu;
    if let Some((bytes, _)) = quantity(container, "limits", "memory")? {
        res["memory"] = json!({ "limit": bytes, "swap": bytes });
    }
    Ok(res)
}

/// The PID namespace of a running process, as a path runc joins (what containerd's CRI plugin gives an
/// ephemeral container targeting another container: its task's).
pub fn pid_namespace_of(pid: u32) -> String {
    format!("/proc/{pid}/ns/pid")
}

/// The whole runtime spec.
pub fn build(input: &SpecInput) -> Result<Value, SpecError> {
    let c = input.container;
    let (uid, gid) = user(input)?;
    let mut env: Vec<String> = Vec::new();
    let image_env = strings(input.image_config.get("Env"));
    let set = |kv: String, env: &mut Vec<String>| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    };
    if !image_env.iter().any(|e| e.starts_with("PATH=")) {
        set(PATH_DEFAULT.to_string(), &mut env);
    }
    for e in image_env {
        set(e, &mut env);
    }
    let pod_name = input.pod.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("");
    let hostname =
        input.pod.spec.as_ref().map(|s| s.hostname.as_str()).filter(|h| !h.is_empty()).unwrap_or(pod_name);
    set(format!("HOSTNAME={hostname}"), &mut env);
    if c.tty {
        // As containerd's CRI plugin (oci.WithTTY); the container's own env may override it.
        set("TERM=xterm".to_string(), &mut env);
    }
    for (k, v) in &input.env {
        set(format!("{k}={v}"), &mut env);
    }
    let args: Vec<String> =
        process_args(c, input.image_config)?.iter().map(|a| expand(a, &input.env)).collect();
    let cwd = if !c.working_dir.is_empty() {
        c.working_dir.clone()
    } else {
        input
            .image_config
            .get("WorkingDir")
            .and_then(|w| w.as_str())
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    };
    let sc = c.security_context.as_ref();
    let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
    let caps = capabilities(c);
    // The pod's supplemental groups and its fsGroup (which owns its volumes), as Kubernetes gives them.
    let pod_security = input.pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let mut supplemental: Vec<i64> = pod_security.map(|p| p.supplemental_groups.clone()).unwrap_or_default();
    if let Some(g) = pod_security.and_then(|p| p.fs_group)
        && !supplemental.contains(&g)
    {
        supplemental.push(g);
    }
    let no_new_privs = sc.and_then(|s| s.allow_privilege_escalation).map(|a| !a).unwrap_or(false);

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if privileged { "rw" } else { "ro" }]}),
    ];
    for m in &input.mounts {
        let mut options = vec!["rbind", "rprivate"];
        options.push(if m.read_only { "ro" } else { "rw" });
        mounts.push(json!({"destination": m.container_path, "type": "bind", "source": m.host_path, "options": options}));
    }
    // hostNetwork pods (no netns path) stay in the host's network (and UTS) namespace.
    let pid = match &input.pid_namespace {
        Some(path) => json!({"type": "pid", "path": path}),
        None => json!({"type": "pid"}),
    };
    let namespaces = if input.netns_path.is_empty() {
        json!([pid, {"type": "ipc"}, {"type": "mount"}])
    } else {
        json!([
            pid, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "network", "path": input.netns_path},
        ])
    };
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroups_path,
        "resources": resources(c)?,
    });
    if !privileged {
        linux["maskedPaths"] = json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
            "/sys/devices/virtual/powercap"
        ]);
        linux["readonlyPaths"] =
            json!(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]);
    } else {
        linux["resources"]["devices"] = json!([{ "allow": true, "access": "rwm" }]);
    }
    Ok(json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": c.tty,
            "user": {"uid": uid, "gid": gid, "additionalGids": supplemental},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": no_new_privs,
            "oomScoreAdj": 0,
        },
        "root": {"path": "rootfs", "readonly": sc.and_then(|s| s.read_only_root_filesystem).unwrap_or(false)},
        "hostname": if input.netns_path.is_empty() { Value::Null } else { json!(hostname) },
        "mounts": mounts,
        "linux": linux,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use navarch_api::v1::{Capabilities, SecurityContext};

    fn container(yaml: &str) -> Container {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn command_and_args_follow_kubernetes() {
        let img = json!({"Entrypoint": ["/ep"], "Cmd": ["c1"]});
        assert_eq!(process_args(&container("name: a"), &img).unwrap(), ["/ep", "c1"]);
        assert_eq!(process_args(&container("{name: a, args: [x]}"), &img).unwrap(), ["/ep", "x"]);
        assert_eq!(process_args(&container("{name: a, command: [sh]}"), &img).unwrap(), ["sh"]);
        assert_eq!(
            process_args(&container("{name: a, command: [sh], args: [-c, x]}"), &img).unwrap(),
            ["sh", "-c", "x"]
        );
        assert_eq!(process_args(&container("name: a"), &json!({})), Err(SpecError::NoCommand));
    }

    #[test]
    fn expands_env_references() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("x$(A)y $(B) $$(A)", &env), "x1y $(B) $(A)");
    }

    #[test]
    fn capabilities_add_drop() {
        let mut c = container("name: a");
        assert_eq!(capabilities(&c).len(), DEFAULT_CAPABILITIES.len());
        c.security_context = Some(SecurityContext {
            capabilities: Some(Capabilities { add: vec!["NET_ADMIN".into()], drop: vec!["ALL".into()] }),
            ..Default::default()
        });
        assert_eq!(capabilities(&c), ["CAP_NET_ADMIN"]);
        c.security_context = Some(SecurityContext {
            capabilities: Some(Capabilities { add: vec![], drop: vec!["kill".into()] }),
            ..Default::default()
        });
        assert!(!capabilities(&c).contains(&"CAP_KILL".to_string()));
    }

    #[test]
    fn resources_to_cgroups() {
        let c = container("{name: a, resources: {limits: {cpu: 500m, memory: 64Mi}, requests: {cpu: 250m}}}");
        let r = resources(&c).unwrap();
        assert_eq!(r["cpu"]["shares"], 256);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["memory"]["limit"], 64 * 1024 * 1024);
        let r = resources(&container("name: a")).unwrap();
        assert_eq!(r["cpu"]["shares"], 2);
        assert!(r.get("memory").is_none());
    }

    #[test]
    fn users() {
        let pod: Pod =
            serde_yaml::from_str("{spec: {securityContext: {runAsUser: 1000}, containers: []}}").unwrap();
        let c = container("name: a");
        let img = json!({"User": "5:6"});
        let input = |img| SpecInput {
            pod: &pod,
            container: &c,
            image_config: img,
            env: vec![],
            mounts: vec![],
            netns_path: String::new(),
            pid_namespace: None,
            cgroups_path: String::new(),
        };
        assert_eq!(user(&input(&img)).unwrap(), (1000, 6));
        let named = json!({"User": "nginx"});
        assert!(matches!(user(&input(&named)), Err(SpecError::NonNumericUser(_))));
    }

    #[test]
    fn full_spec() {
        let pod: Pod = serde_yaml::from_str("{metadata: {name: web}, spec: {containers: []}}").unwrap();
        let c = container(
            "{name: a, image: x, env: [{name: B, value: b}], securityContext: {readOnlyRootFilesystem: true}}",
        );
        let img = json!({"Env": ["PATH=/bin", "B=img"], "Cmd": ["sh"]});
        let spec = build(&SpecInput {
            pod: &pod,
            container: &c,
            image_config: &img,
            env: vec![("B".into(), "b".into())],
            mounts: vec![BindMount { host_path: "/h".into(), container_path: "/c".into(), read_only: true }],
            netns_path: "/run/netns/x".into(),
            pid_namespace: None,
            cgroups_path: "/navarch/p/c".into(),
        })
        .unwrap();
        assert_eq!(spec["hostname"], "web");
        assert_eq!(spec["process"]["env"], json!(["PATH=/bin", "HOSTNAME=web", "B=b"]));
        assert_eq!(spec["root"]["readonly"], true);
        assert_eq!(spec["linux"]["namespaces"][4]["path"], "/run/netns/x");
        assert_eq!(spec["linux"]["namespaces"][0], json!({"type": "pid"}));
        assert_eq!(
            spec["mounts"].as_array().unwrap().last().unwrap()["options"],
            json!(["rbind", "rprivate", "ro"])
        );
        assert_eq!(spec["process"]["terminal"], false);
        // A terminal for tty: true, with TERM as containerd's CRI plugin sets it.
        let tty = container("{name: a, tty: true}");
        let spec = build(&SpecInput {
            pod: &pod,
            container: &tty,
            image_config: &img,
            env: vec![],
            mounts: vec![],
            netns_path: String::new(),
            pid_namespace: Some(pid_namespace_of(42)),
            cgroups_path: String::new(),
        })
        .unwrap();
        assert_eq!(spec["process"]["terminal"], true);
        // An ephemeral container with a target joins the target's PID namespace.
        assert_eq!(spec["linux"]["namespaces"][0], json!({"type": "pid", "path": "/proc/42/ns/pid"}));
        assert_eq!(spec["process"]["env"], json!(["PATH=/bin", "B=img", "HOSTNAME=web", "TERM=xterm"]));
        // The pod's fsGroup is one of the containers' groups, beside its supplemental groups (once).
        let grouped: Pod = serde_yaml::from_str(
            "{metadata: {name: web}, spec: {securityContext: {fsGroup: 2000, supplementalGroups: [5, 2000, 7]}, containers: []}}",
        )
        .unwrap();
        let grouped_only: Pod = serde_yaml::from_str(
            "{metadata: {name: web}, spec: {securityContext: {fsGroup: 2000}, containers: []}}",
        )
        .unwrap();
        for (p, gids) in [(&grouped, json!([5, 2000, 7])), (&grouped_only, json!([2000]))] {
            let spec = build(&SpecInput {
                pod: p,
                container: &tty,
                image_config: &img,
                env: vec![],
                mounts: vec![],
                netns_path: String::new(),
                pid_namespace: None,
                cgroups_path: String::new(),
            })
            .unwrap();
            assert_eq!(spec["process"]["user"]["additionalGids"], gids);
        }
    }
}
