//! `navctl cordon`, `uncordon` and `drain`, with kubectl's messages and refusals: drain cordons
//! the node, then evicts its pods through the eviction subresource, all at once (unmanaged pods only
//! with `--force`, DaemonSet pods skipped with `--ignore-daemonsets`, emptyDir pods only with
//! `--delete-emptydir-data`; mirror pods are never touched; `--disable-eviction` deletes instead),
//! asking again every 5 s for a pod whose PodDisruptionBudget refuses (429), and waits until they are
//! gone (`--timeout` bounds it all).

use std::time::{Duration, Instant};

use anyhow::bail;
use navarch_api::Resource;
use navarch_api::v1::{Node, Pod};
use navarch_client::{Api, DeleteParams, ListParams};

use crate::cli::{DrainArgs, NodeArgs};
use crate::context::{Context, Outcome, say};
use crate::errors::{Target, Verb};
use crate::kinds;

const MIRROR: &str = "kubernetes.io/config.mirror";

fn node_name(arg: &str) -> anyhow::Result<String> {
    let name = match arg.split_once('/') {
        Some(("node" | "nodes" | "no", name)) => name,
        Some((kind, _)) => bail!("{kind:?} is not a node; cordon, uncordon and drain take nodes"),
        None => arg,
    };
    Ok(name.to_string())
}

/// Sets `spec.unschedulable`; prints kubectl's `node/NAME cordoned` (or `already cordoned`).
async fn set_unschedulable(ctx: &Context, name: &str, unschedulable: bool) -> anyhow::Result<()> {
    let kind = kinds::resolve("node")?;
    let api: Api<Node> = ctx.client().await?.api("");
    let mut node =
        api.get(name).await.map_err(|e| ctx.describe(e, Verb::Get, Target { kind, name, source: None }))?;
    let verb = if unschedulable { "cordoned" } else { "uncordoned" };
    let spec = node.spec.get_or_insert_with(Default::default);
    if spec.unschedulable == unschedulable {
        say(format!("node/{name} already {verb}"));
        return Ok(());
    }
    spec.unschedulable = unschedulable;
    api.update(&node)
        .await
        .map_err(|e| ctx.describe(e, Verb::Update, Target { kind, name, source: None }))?;
    say(format!("node/{name} {verb}"));
    Ok(())
}

pub async fn cordon(ctx: &Context, a: &NodeArgs, unschedulable: bool) -> anyhow::Result<Outcome> {
    set_unschedulable(ctx, &node_name(&a.node)?, unschedulable).await?;
    Ok(Outcome::Success)
}

/// Why drain may not delete a pod without an override flag, or None.
fn refusal(p: &Pod, a: &DrainArgs) -> Option<&'static str> {
    let finished = p.status.as_ref().is_some_and(|s| s.phase == "Succeeded" || s.phase == "Failed");
    let controller = p.meta().owner_references.iter().find(|r| r.controller == Some(true));
    if controller.is_some_and(|c| c.kind == "DaemonSet") && !a.ignore_daemonsets {
        return Some("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)");
    }
    if controller.is_none() && !finished && !a.force {
        return Some("cannot delete Pods that declare no controller (use --force to override)");
    }
    let empty_dir = p.spec.as_ref().is_some_and(|s| s.volumes.iter().any(|v| v.empty_dir.is_some()));
    if empty_dir && !finished && !a.delete_emptydir_data {
        return Some("cannot delete Pods with local storage (use --delete-emptydir-data to override)");
    }
    None
}

/// How long kubectl waits before asking again for an eviction a PodDisruptionBudget refused.
const EVICTION_RETRY: Duration = Duration::from_secs(5);

/// Whether `e` is the api-server's refusal of an eviction for now (Kubernetes' 429 TooManyRequests).
fn too_many_requests(e: &navarch_client::Error) -> bool {
    matches!(e, navarch_client::Error::Api { code: tonic::Code::ResourceExhausted, .. })
}

/// Evicts `p` (or deletes it with `--disable-eviction`), asking again every [`EVICTION_RETRY`] while its
/// PodDisruptionBudget refuses, then waits until it is gone; prints kubectl's lines. The error is
/// kubectl's `error when evicting pods/"x" -n "ns": ...`.
async fn evict_and_wait(
    client: &navarch_client::Client,
    p: &Pod,
    a: &DrainArgs,
    deadline: Option<Instant>,
) -> Result<(), String> {
    let m = p.meta();
    let what = format!("pods/{:?} -n {:?}", m.name, m.namespace);
    let timed_out = || {
        format!(
            "error when evicting {what}: global timeout reached: {}",
            humantime::format_duration(a.timeout)
        )
    };
    let params = DeleteParams {
        grace_period_seconds: (a.grace_period >= 0).then_some(a.grace_period),
        precondition_uid: m.uid.clone(),
        ..Default::default()
    };
    say(format!("evicting pod {}/{}", m.namespace, m.name));
    loop {
        let result = if a.disable_eviction {
            client.delete("Pod", &m.namespace, &m.name, &params).await
        } else {
            client.evict(&m.namespace, &m.name, &params).await
        };
        match result {
            Ok(_) | Err(navarch_client::Error::NotFound(_)) | Err(navarch_client::Error::Conflict(_)) => {
                break;
            }
            Err(e) if too_many_requests(&e) => {
                let message = match &e {
                    navarch_client::Error::Api { message, .. } => message.clone(),
                    e => e.to_string(),
                };
                eprintln!(
                    "error when evicting {what} (will retry after {}): {message}",
                    humantime::format_duration(EVICTION_RETRY)
                );
                if deadline.is_some_and(|d| Instant::now() + EVICTION_RETRY > d) {
                    return Err(timed_out());
                }
                tokio::time::sleep(EVICTION_RETRY).await;
            }
            Err(e) => return Err(format!("error when evicting {what}: {e}")),
        }
    }
    let api: Api<Pod> = client.api(&m.namespace);
    loop {
        match api.get_opt(&m.name).await {
            Ok(Some(now)) if now.meta().uid == m.uid => {}
            Ok(_) => break,
            Err(e) => return Err(format!("error when waiting for pod {:?} to terminate: {e}", m.name)),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(timed_out());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    say(format!("pod/{} evicted", m.name));
    Ok(())
}

pub async fn drain(ctx: &Context, a: &DrainArgs) -> anyhow::Result<Outcome> {
    let name = node_name(&a.node)?;
    set_unschedulable(ctx, &name, true).await?;
    let client = ctx.client().await?;
    let pods: Api<Pod> = client.api("");
    let on_node = pods
        .list(&ListParams { field_selector: format!("spec.nodeName={name}"), ..Default::default() })
        .await?
        .items;
    let mut refused: Vec<(&'static str, String)> = Vec::new();
    let mut daemon_pods = Vec::new();
    let mut to_evict = Vec::new();
    for p in &on_node {
        let m = p.meta();
        let key = format!("{}/{}", m.namespace, m.name);
        if m.annotations.contains_key(MIRROR) || !m.deletion_timestamp.is_empty() {
            continue;
        }
        if let Some(why) = refusal(p, a) {
            refused.push((why, key));
        } else if m.owner_references.iter().any(|r| r.controller == Some(true) && r.kind == "DaemonSet") {
            daemon_pods.push(key);
        } else {
            to_evict.push(p.clone());
        }
    }
    if !refused.is_empty() {
        let mut reasons: Vec<&str> = refused.iter().map(|(w, _)| *w).collect();
        reasons.dedup();
        let detail: Vec<String> = reasons
            .iter()
            .map(|w| {
                let keys: Vec<&str> =
                    refused.iter().filter(|(x, _)| x == w).map(|(_, k)| k.as_str()).collect();
                format!("{w}: {}", keys.join(", "))
            })
            .collect();
        bail!(
            "unable to drain node {name:?} due to error: {}, continuing command...\nThere are pending nodes to be drained:\n {name}",
            detail.join("; ")
        );
    }
    if !daemon_pods.is_empty() {
        eprintln!("Warning: ignoring DaemonSet-managed Pods: {}", daemon_pods.join(", "));
    }
    let deadline = (!a.timeout.is_zero()).then(|| Instant::now() + a.timeout);
    let results =
        futures::future::join_all(to_evict.iter().map(|p| evict_and_wait(client, p, a, deadline))).await;
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if !errors.is_empty() {
        bail!(
            "unable to drain node {name:?} due to error: [{}], continuing command...\nThere are pending nodes to be drained:\n {name}",
            errors.join(", ")
        );
    }
    say(format!("node/{name} drained"));
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_refusals_like_kubectl() {
        let pod = |y: &str| -> Pod { serde_yaml::from_str(y).unwrap() };
        let args = |f: &[&str]| {
            use clap::Parser;
            let mut argv = vec!["navctl", "drain", "n1"];
            argv.extend_from_slice(f);
            match crate::cli::Cli::try_parse_from(argv).unwrap().command {
                crate::cli::Command::Drain(a) => a,
                _ => unreachable!(),
            }
        };
        let bare = pod("{metadata: {name: b}}");
        assert!(refusal(&bare, &args(&[])).unwrap().contains("--force"));
        assert_eq!(refusal(&bare, &args(&["--force"])), None);
        let done = pod("{metadata: {name: b}, status: {phase: Succeeded}}");
        assert_eq!(refusal(&done, &args(&[])), None);
        let ds = pod(
            "{metadata: {name: d, ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: x, uid: u, controller: true}]}}",
        );
        assert!(refusal(&ds, &args(&[])).unwrap().contains("--ignore-daemonsets"));
        assert_eq!(refusal(&ds, &args(&["--ignore-daemonsets"])), None);
        let scratch = pod(
            "{metadata: {name: s, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: x, uid: u, controller: true}]}, spec: {containers: [{name: c, image: i}], volumes: [{name: v, emptyDir: {}}]}}",
        );
        assert!(refusal(&scratch, &args(&[])).unwrap().contains("--delete-emptydir-data"));
        assert_eq!(refusal(&scratch, &args(&["--delete-emptydir-data"])), None);
        assert_eq!(node_name("node/n1").unwrap(), "n1");
        assert!(node_name("pod/n1").is_err());
    }
}
