//! `navctl rollout status|history|undo|pause|resume|restart` for Deployments, with kubectl's
//! messages. History is the Deployment's ReplicaSets (their `deployment.kubernetes.io/revision`
//! annotation); undo copies an old revision's pod template back into the Deployment, and the
//! Deployment controller rolls it out as the newest revision. `status`, `history` and `undo` of
//! DaemonSets and StatefulSets (ControllerRevision history) are in [`revisions`].

mod revisions;

use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, ensure};
use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Deployment, PodTemplateSpec, ReplicaSet};
use navarch_client::{Api, ListParams, WatchEvent, WatchParams};

use crate::cli::RolloutCommand;
use crate::context::{Context, Outcome, emit, say};
use crate::errors::{Target, Verb};
use crate::kinds;
use crate::workloads::one;
use navarch_api::KindInfo;

const REVISION: &str = "deployment.kubernetes.io/revision";
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
const HASH_LABEL: &str = "pod-template-hash";
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// kubectl's progress line for a Deployment, or None when the rollout is complete.
pub fn rollout_progress(d: &Deployment) -> Result<Option<String>, String> {
    let name = d.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
    let generation = d.metadata.as_ref().map(|m| m.generation).unwrap_or(0);
    let st = d.status.clone().unwrap_or_default();
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if st.observed_generation < generation {
        return Ok(Some("Waiting for deployment spec update to be observed...".into()));
    }
    if let Some(c) = st.conditions.iter().find(|c| c.r#type == "Progressing")
        && c.reason == "ProgressDeadlineExceeded"
    {
        return Err(format!("deployment {name:?} exceeded its progress deadline"));
    }
    if st.updated_replicas < want {
        return Ok(Some(format!(
            "Waiting for deployment {name:?} rollout to finish: {} out of {want} new replicas have been updated...",
            st.updated_replicas
        )));
    }
    if st.replicas > st.updated_replicas {
        return Ok(Some(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            st.replicas - st.updated_replicas
        )));
    }
    if st.available_replicas < st.updated_replicas {
        return Ok(Some(format!(
            "Waiting for deployment {name:?} rollout to finish: {} of {} updated replicas are available...",
            st.available_replicas, st.updated_replicas
        )));
    }
    Ok(None)
}

pub async fn run(ctx: &Context, cmd: &RolloutCommand) -> anyhow::Result<Outcome> {
    if let Some(done) = revisions::run(ctx, cmd).await {
        return done;
    }
    match cmd {
        RolloutCommand::Status { resource, timeout } => status(ctx, resource, *timeout).await,
        RolloutCommand::History { resource, revision } => history(ctx, resource, *revision).await,
        RolloutCommand::Undo { resource, to_revision } => undo(ctx, resource, *to_revision).await,
        RolloutCommand::Pause { resource } => set_paused(ctx, resource, true).await,
        RolloutCommand::Resume { resource } => set_paused(ctx, resource, false).await,
        RolloutCommand::Restart { resource } => restart(ctx, resource).await,
    }
}

/// The one Deployment named by `resource`.
fn deployment(resource: &[String], verb: &str) -> anyhow::Result<(&'static KindInfo, String)> {
    let (sel, name) = one(resource)?;
    ensure!(
        sel.kind.kind == "Deployment",
        "rollout {verb} supports deployments (got {})",
        kinds::plural_ref(sel.kind)
    );
    Ok((sel.kind, name))
}

async fn fetch(
    ctx: &Context,
    kind: &'static KindInfo,
    name: &str,
) -> anyhow::Result<(Api<Deployment>, Deployment)> {
    let api: Api<Deployment> = ctx.client().await?.api(ctx.namespace());
    let d =
        api.get(name).await.map_err(|e| ctx.describe(e, Verb::Get, Target { kind, name, source: None }))?;
    Ok((api, d))
}

/// Writes the Deployment's spec (and change-cause annotation) as `d` has them.
async fn store(
    ctx: &Context,
    api: &Api<Deployment>,
    kind: &'static KindInfo,
    d: &Deployment,
) -> anyhow::Result<()> {
    store_with(ctx, api, kind, d, |latest, d| {
        latest.spec = d.spec.clone();
        let annotations = &mut latest.meta_mut().annotations;
        match d.meta().annotations.get(CHANGE_CAUSE) {
            Some(c) => annotations.insert(CHANGE_CAUSE.into(), c.clone()),
            None => annotations.remove(CHANGE_CAUSE),
        };
    })
    .await
}

/// Writes `obj`. These commands change only what `carry` copies, so when a controller wrote in
/// between (a conflict) the change is carried onto the latest version and written again, as kubectl's
/// patches would apply.
async fn store_with<K: Resource>(
    ctx: &Context,
    api: &Api<K>,
    kind: &'static KindInfo,
    obj: &K,
    carry: impl Fn(&mut K, &K),
) -> anyhow::Result<()> {
    let name = &obj.meta().name;
    let describe = |e| ctx.describe(e, Verb::Update, Target { kind, name, source: None });
    let mut next = obj.clone();
    for attempt in 1.. {
        match api.update(&next).await {
            Ok(_) => return Ok(()),
            Err(navarch_client::Error::Conflict(_)) if attempt < Context::CONFLICT_ATTEMPTS => {
                let mut latest = api.get(name).await.map_err(describe)?;
                carry(&mut latest, obj);
                next = latest;
            }
            Err(e) => return Err(describe(e)),
        }
    }
    unreachable!("the loop returns")
}

/// The Deployment's ReplicaSets by revision, oldest first.
async fn revisions(ctx: &Context, d: &Deployment) -> anyhow::Result<Vec<(i64, ReplicaSet)>> {
    let api: Api<ReplicaSet> = ctx.client().await?.api(&d.meta().namespace);
    let sets = api.list(&ListParams::default()).await?;
    let mut out: Vec<(i64, ReplicaSet)> = sets
        .items
        .into_iter()
        .filter(|rs| {
            rs.meta().owner_references.iter().any(|r| r.controller == Some(true) && r.uid == d.meta().uid)
        })
        .map(|rs| (rs.meta().annotations.get(REVISION).and_then(|r| r.parse().ok()).unwrap_or(0), rs))
        .collect();
    out.sort_by_key(|(r, _)| *r);
    Ok(out)
}

fn template_of(rs: &ReplicaSet) -> PodTemplateSpec {
    let mut t = rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
    if let Some(m) = t.metadata.as_mut() {
        m.labels.remove(HASH_LABEL);
    }
    t
}

async fn history(ctx: &Context, resource: &[String], revision: Option<i64>) -> anyhow::Result<Outcome> {
    let (kind, name) = deployment(resource, "history")?;
    let (_, d) = fetch(ctx, kind, &name).await?;
    let revs = revisions(ctx, &d).await?;
    let obj = kinds::object_ref(kind, &name);
    if let Some(n) = revision {
        let Some((_, rs)) = revs.iter().find(|(r, _)| *r == n) else {
            bail!("unable to find the specified revision");
        };
        let mut t =
            serde_json::to_value(rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default())?;
        if let Some(cause) = rs.meta().annotations.get(CHANGE_CAUSE) {
            t["metadata"]["annotations"][CHANGE_CAUSE] = cause.clone().into();
        }
        emit(&format!("{obj} with revision #{n}\n{}", crate::describe::describe_pod_template(&t)));
        return Ok(Outcome::Success);
    }
    let mut text = format!("{obj} \nREVISION  CHANGE-CAUSE\n");
    for (r, rs) in &revs {
        let cause = rs.meta().annotations.get(CHANGE_CAUSE).map(String::as_str).unwrap_or("<none>");
        text.push_str(&format!("{r:<9} {cause}\n"));
    }
    emit(&text);
    Ok(Outcome::Success)
}

async fn undo(ctx: &Context, resource: &[String], to_revision: i64) -> anyhow::Result<Outcome> {
    let (kind, name) = deployment(resource, "undo")?;
    let (api, mut d) = fetch(ctx, kind, &name).await?;
    ensure!(
        !d.spec.as_ref().is_some_and(|s| s.paused),
        "you cannot rollback a paused deployment; resume it first with 'navctl rollout resume' and try again"
    );
    let revs = revisions(ctx, &d).await?;
    let target = if to_revision == 0 {
        // The previous revision: the newest but one.
        match revs.len() {
            0 | 1 => bail!("no rollout history found for {}", kinds::object_ref(kind, &name)),
            n => &revs[n - 2],
        }
    } else {
        match revs.iter().find(|(r, _)| *r == to_revision) {
            Some(r) => r,
            None => bail!("unable to find specified revision {to_revision} in history"),
        }
    };
    let template = template_of(&target.1);
    let spec = d.spec.get_or_insert_with(Default::default);
    if spec.template.as_ref() == Some(&template) {
        say(format!(
            "{} skipped rollback (current template already matches revision {})",
            kinds::object_ref(kind, &name),
            target.0
        ));
        return Ok(Outcome::Success);
    }
    spec.template = Some(template);
    // The change-cause of the revision goes back with it.
    let annotations = &mut d.metadata.get_or_insert_with(Default::default).annotations;
    match target.1.meta().annotations.get(CHANGE_CAUSE) {
        Some(c) => annotations.insert(CHANGE_CAUSE.into(), c.clone()),
        None => annotations.remove(CHANGE_CAUSE),
    };
    store(ctx, &api, kind, &d).await?;
    say(format!("{} rolled back", kinds::object_ref(kind, &name)));
    Ok(Outcome::Success)
}

async fn set_paused(ctx: &Context, resource: &[String], paused: bool) -> anyhow::Result<Outcome> {
    let verb = if paused { "pause" } else { "resume" };
    let (kind, name) = deployment(resource, verb)?;
    let (api, mut d) = fetch(ctx, kind, &name).await?;
    let spec = d.spec.get_or_insert_with(Default::default);
    if spec.paused == paused {
        bail!(
            "{} is {}",
            kinds::object_ref(kind, &name),
            if paused { "already paused" } else { "not paused" }
        );
    }
    spec.paused = paused;
    store(ctx, &api, kind, &d).await?;
    say(format!("{} {}", kinds::object_ref(kind, &name), if paused { "paused" } else { "resumed" }));
    Ok(Outcome::Success)
}

async fn restart(ctx: &Context, resource: &[String]) -> anyhow::Result<Outcome> {
    let (kind, name) = deployment(resource, "restart")?;
    let (api, mut d) = fetch(ctx, kind, &name).await?;
    let spec = d.spec.get_or_insert_with(Default::default);
    ensure!(!spec.paused, "can't restart paused deployment (run rollout resume first)");
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    spec.template
        .get_or_insert_with(Default::default)
        .metadata
        .get_or_insert_with(Default::default)
        .annotations
        .insert(RESTARTED_AT.into(), now);
    store(ctx, &api, kind, &d).await?;
    say(format!("{} restarted", kinds::object_ref(kind, &name)));
    Ok(Outcome::Success)
}

async fn status(ctx: &Context, resource: &[String], timeout: Option<Duration>) -> anyhow::Result<Outcome> {
    let (kind, name) = deployment(resource, "status")?;
    let sel_kind = kind;
    let client = ctx.client().await?;
    let api: Api<Deployment> = client.api(ctx.namespace());
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut last = String::new();
    loop {
        let d = api
            .get(&name)
            .await
            .map_err(|e| ctx.describe(e, Verb::Get, Target { kind: sel_kind, name: &name, source: None }))?;
        match rollout_progress(&d) {
            Err(e) => bail!("{e}"),
            Ok(None) => {
                say(format!("deployment {name:?} successfully rolled out"));
                return Ok(Outcome::Success);
            }
            Ok(Some(line)) => {
                if line != last {
                    say(&line);
                    last = line;
                }
            }
        }
        if let Some(t) = deadline
            && Instant::now() >= t
        {
            bail!("timed out waiting for the condition");
        }
        next_change(&api, &d).await;
    }
}

/// Waits for the next change of `obj` (or a second).
async fn next_change<K: Resource>(api: &Api<K>, obj: &K) {
    let params = WatchParams {
        field_selector: format!("metadata.name={}", obj.meta().name),
        resource_version: obj.meta().resource_version.clone(),
        ..Default::default()
    };
    if let Ok(mut w) = api.watch(&params).await {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(ev) = w.next().await {
                if matches!(ev, Ok(WatchEvent::Modified(_)) | Ok(WatchEvent::Deleted(_)) | Err(_)) {
                    return;
                }
            }
        })
        .await;
    } else {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_like_kubectl() {
        let d = |status: &str| -> Deployment {
            serde_yaml::from_str(&format!(
                "{{metadata: {{name: web, generation: 2}}, spec: {{replicas: 3}}, status: {status}}}"
            ))
            .unwrap()
        };
        assert_eq!(
            rollout_progress(&d("{observedGeneration: 1}")).unwrap().unwrap(),
            "Waiting for deployment spec update to be observed..."
        );
        assert!(
            rollout_progress(&d("{observedGeneration: 2, updatedReplicas: 1, replicas: 4}"))
                .unwrap()
                .unwrap()
                .contains("1 out of 3 new replicas")
        );
        assert!(
            rollout_progress(&d("{observedGeneration: 2, updatedReplicas: 3, replicas: 4}"))
                .unwrap()
                .unwrap()
                .contains("1 old replicas are pending termination")
        );
        assert!(
            rollout_progress(&d(
                "{observedGeneration: 2, updatedReplicas: 3, replicas: 3, availableReplicas: 2}"
            ))
            .unwrap()
            .unwrap()
            .contains("2 of 3 updated replicas are available")
        );
        assert_eq!(
            rollout_progress(&d(
                "{observedGeneration: 2, updatedReplicas: 3, replicas: 3, availableReplicas: 3}"
            ))
            .unwrap(),
            None
        );
    }
}
