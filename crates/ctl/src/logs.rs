//! `navctl logs`: a container's log through the api-server (which relays to the pod's kubelet),
//! and the pod/container choice shared with `navctl exec`.

use std::io::Write;

use futures::StreamExt;
use navarch_api::kubelet_proto::LogsRequest;
use navarch_api::v1::Pod;
use navarch_api::{Object, kind_info};

use crate::cli::LogsArgs;
use crate::context::{Context, Outcome};

const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// The pod's name from `NAME` or `pod/NAME` (`pods/NAME`, `po/NAME`).
pub fn pod_name(arg: &str) -> anyhow::Result<&str> {
    match arg.split_once('/') {
        None => Ok(arg),
        Some((kind, name)) if matches!(kind, "pod" | "pods" | "po") && !name.is_empty() => Ok(name),
        Some((kind, _)) => anyhow::bail!("{kind:?} is not a pod: only pods have logs and can exec"),
    }
}

/// The container a command means: the one asked for, else the pod's default-container
/// annotation, else its first container (saying so on stderr when there was a choice, like
/// kubectl).
pub fn choose_container(pod: &Pod, asked: Option<&str>) -> String {
    if let Some(c) = asked {
        return c.to_string();
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let annotated = pod
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.get(DEFAULT_CONTAINER_ANNOTATION))
        .filter(|n| spec.containers.iter().any(|c| &c.name == *n))
        .cloned();
    if let Some(name) = annotated {
        return name;
    }
    let first = spec.containers.first().map(|c| c.name.clone()).unwrap_or_default();
    let all = spec.containers.len() + spec.init_containers.len();
    if all > 1 {
        let mut names: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
        names.extend(spec.init_containers.iter().map(|c| format!("{} (init)", c.name)));
        eprintln!("Defaulted container {first:?} out of: {}", names.join(", "));
    }
    first
}

/// The pod, read first so a missing pod gets kubectl's `pods "x" not found`.
pub async fn get_pod(ctx: &Context, name: &str) -> anyhow::Result<Pod> {
    let info = kind_info("Pod").expect("Pod is a known kind");
    match ctx.get(info, ctx.namespace(), name).await? {
        Object::Pod(p) => Ok(p),
        other => anyhow::bail!("{name} is a {}, not a pod", other.kind()),
    }
}

/// `--since` and `--since-time` as kubectl checks and sends them: seconds rounded to the nearest,
/// a time as RFC 3339.
fn since_options(a: &LogsArgs) -> anyhow::Result<(Option<i64>, String)> {
    let since_time = a.since_time.clone().unwrap_or_default();
    if !since_time.is_empty() && !a.since.is_zero() {
        anyhow::bail!("at most one of `sinceTime` or `sinceSeconds` may be specified");
    }
    if !since_time.is_empty() {
        navarch_api::rfc3339::parse(&since_time)?;
    }
    let seconds = (!a.since.is_zero()).then(|| ((a.since.as_millis() + 500) / 1000) as i64);
    Ok((seconds, since_time))
}

pub async fn run(ctx: &Context, a: &LogsArgs) -> anyhow::Result<Outcome> {
    let (since_seconds, since_time) = since_options(a)?;
    let name = pod_name(&a.pod)?;
    let pod = get_pod(ctx, name).await?;
    let container = choose_container(&pod, a.container.as_deref());
    let req = LogsRequest {
        namespace: ctx.namespace().to_string(),
        name: name.to_string(),
        container,
        follow: a.follow,
        previous: a.previous,
        tail_lines: (a.tail >= 0).then_some(a.tail),
        limit_bytes: a.limit_bytes,
        timestamps: a.timestamps,
        since_seconds,
        since_time,
        ..Default::default()
    };
    let client = ctx.client().await?;
    let mut stream = client.pod_logs(req).await.map_err(|e| crate::errors::general(e, ctx.server()))?;
    let mut out = std::io::stdout().lock();
    loop {
        let chunk = tokio::select! {
            c = stream.next() => c,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(chunk) = chunk else { break };
        let data = chunk.map_err(|e| crate::errors::general(e, ctx.server()))?;
        if let Err(e) = out.write_all(&data).and_then(|_| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(Outcome::Success);
            }
            anyhow::bail!("writing to standard output: {e}");
        }
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names() {
        assert_eq!(pod_name("web").unwrap(), "web");
        assert_eq!(pod_name("pod/web").unwrap(), "web");
        assert_eq!(pod_name("po/web").unwrap(), "web");
        assert!(pod_name("deployment/web").is_err());
    }

    #[test]
    fn since_flags_as_kubectl_sends_them() {
        use clap::Parser;
        let args = |extra: &[&str]| {
            let mut argv = vec!["navctl", "logs", "web"];
            argv.extend_from_slice(extra);
            match crate::cli::Cli::try_parse_from(argv).unwrap().command {
                crate::cli::Command::Logs(a) => a,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(since_options(&args(&[])).unwrap(), (None, String::new()));
        assert_eq!(since_options(&args(&["--since=2m"])).unwrap(), (Some(120), String::new()));
        assert_eq!(since_options(&args(&["--since", "1500ms"])).unwrap(), (Some(2), String::new()));
        let t = "2024-05-01T10:00:00Z";
        assert_eq!(since_options(&args(&["--since-time", t])).unwrap(), (None, t.to_string()));
        let both = since_options(&args(&["--since=5s", "--since-time", t])).unwrap_err().to_string();
        assert_eq!(both, "at most one of `sinceTime` or `sinceSeconds` may be specified");
        assert!(since_options(&args(&["--since-time=yesterday"])).is_err());
        assert!(args(&["--timestamps"]).timestamps);
    }

    #[test]
    fn default_container() {
        let p: Pod =
            serde_yaml::from_str("{metadata: {name: p}, spec: {containers: [{name: a}, {name: b}]}}")
                .unwrap();
        assert_eq!(choose_container(&p, None), "a");
        assert_eq!(choose_container(&p, Some("b")), "b");
        let p: Pod = serde_yaml::from_str(
            "{metadata: {name: p, annotations: {kubectl.kubernetes.io/default-container: b}}, spec: {containers: [{name: a}, {name: b}]}}",
        )
        .unwrap();
        assert_eq!(choose_container(&p, None), "b");
    }
}
