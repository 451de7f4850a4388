//! `navctl rollout status|history|undo` for the workloads whose history is ControllerRevisions —
//! DaemonSets and StatefulSets — as kubectl's status viewers, history viewer and rollbacker do them:
//! history is the object's ControllerRevisions (their `revision`), undo puts a revision's pod template
//! (its data, `{"spec":{"template":{...}}}`) back on the object, and its controller rolls it out.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use navarch_api::v1::{ControllerRevision, DaemonSet, PodTemplateSpec, StatefulSet};
use navarch_api::{KindInfo, Resource};
use navarch_client::{Api, ListParams};
use serde_json::Value;

use super::{CHANGE_CAUSE, next_change, store_with};
use crate::cli::RolloutCommand;
use crate::context::{Context, Outcome, emit, say};
use crate::errors::{Target, Verb};
use crate::kinds;
use crate::workloads::one;

/// Where a rollout stands, as kubectl's status viewer says it.
#[derive(Debug, PartialEq)]
pub enum Progress {
    /// Still rolling: the line to print.
    Waiting(String),
    /// Done: the last line to print.
    Done(String),
}

/// A workload whose pod templates are recorded as ControllerRevisions.
pub trait Revisioned: Resource {
    fn template_mut(&mut self) -> &mut Option<PodTemplateSpec>;
    /// kubectl's status line (an error when rollout status does not apply).
    fn progress(&self) -> Result<Progress, String>;
}

impl Revisioned for DaemonSet {
    fn template_mut(&mut self) -> &mut Option<PodTemplateSpec> {
        &mut self.spec.get_or_insert_with(Default::default).template
    }

    fn progress(&self) -> Result<Progress, String> {
        let name = &self.meta().name;
        let strategy = self.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).map(|s| s.r#type.as_str());
        if strategy.is_some_and(|t| t != "RollingUpdate") {
            return Err("rollout status is only available for RollingUpdate strategy type".into());
        }
        let st = self.status.clone().unwrap_or_default();
        if self.meta().generation > st.observed_generation {
            return Ok(Progress::Waiting("Waiting for daemon set spec update to be observed...".into()));
        }
        if st.updated_number_scheduled < st.desired_number_scheduled {
            return Ok(Progress::Waiting(format!(
                "Waiting for daemon set {name:?} rollout to finish: {} out of {} new pods have been updated...",
                st.updated_number_scheduled, st.desired_number_scheduled
            )));
        }
        if st.number_available < st.desired_number_scheduled {
            return Ok(Progress::Waiting(format!(
                "Waiting for daemon set {name:?} rollout to finish: {} of {} updated pods are available...",
                st.number_available, st.desired_number_scheduled
            )));
        }
        Ok(Progress::Done(format!("daemon set {name:?} successfully rolled out")))
    }
}

impl Revisioned for StatefulSet {
    fn template_mut(&mut self) -> &mut Option<PodTemplateSpec> {
        &mut self.spec.get_or_insert_with(Default::default).template
    }

    /// kubectl's `StatefulSetStatusViewer`.
    fn progress(&self) -> Result<Progress, String> {
        let spec = self.spec.clone().unwrap_or_default();
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        if !strategy.r#type.is_empty() && strategy.r#type != "RollingUpdate" {
            return Err("rollout status is only available for RollingUpdate strategy type".into());
        }
        let st = self.status.clone().unwrap_or_default();
        if st.observed_generation == 0 || self.meta().generation > st.observed_generation {
            return Ok(Progress::Waiting("Waiting for statefulset spec update to be observed...".into()));
        }
        if let Some(want) = spec.replicas
            && st.ready_replicas < want
        {
            return Ok(Progress::Waiting(format!(
                "Waiting for {} pods to be ready...",
                want - st.ready_replicas
            )));
        }
        if let Some(ru) = strategy.rolling_update.as_ref() {
            if let (Some(want), Some(partition)) = (spec.replicas, ru.partition)
                && st.updated_replicas < want - partition
            {
                return Ok(Progress::Waiting(format!(
                    "Waiting for partitioned roll out to finish: {} out of {} new pods have been updated...",
                    st.updated_replicas,
                    want - partition
                )));
            }
            return Ok(Progress::Done(format!(
                "partitioned roll out complete: {} new pods have been updated...",
                st.updated_replicas
            )));
        }
        if st.update_revision != st.current_revision {
            return Ok(Progress::Waiting(format!(
                "waiting for statefulset rolling update to complete {} pods at revision {}...",
                st.updated_replicas, st.update_revision
            )));
        }
        Ok(Progress::Done(format!(
            "statefulset rolling update complete {} pods at revision {}...",
            st.current_replicas, st.current_revision
        )))
    }
}

/// Runs `status`, `history` or `undo` when the command names a DaemonSet or a StatefulSet.
pub async fn run(ctx: &Context, cmd: &RolloutCommand) -> Option<anyhow::Result<Outcome>> {
    let resource = match cmd {
        RolloutCommand::Status { resource, .. }
        | RolloutCommand::History { resource, .. }
        | RolloutCommand::Undo { resource, .. } => resource,
        _ => return None,
    };
    let (sel, _) = one(resource).ok()?;
    Some(match sel.kind.kind {
        "DaemonSet" => run_for::<DaemonSet>(ctx, cmd).await,
        "StatefulSet" => run_for::<StatefulSet>(ctx, cmd).await,
        _ => return None,
    })
}

async fn run_for<K: Revisioned>(ctx: &Context, cmd: &RolloutCommand) -> anyhow::Result<Outcome> {
    match cmd {
        RolloutCommand::Status { resource, timeout } => status::<K>(ctx, resource, *timeout).await,
        RolloutCommand::History { resource, revision } => history::<K>(ctx, resource, *revision).await,
        RolloutCommand::Undo { resource, to_revision } => undo::<K>(ctx, resource, *to_revision).await,
        _ => unreachable!("run only passes status, history and undo"),
    }
}

async fn fetch<K: Revisioned>(
    ctx: &Context,
    resource: &[String],
) -> anyhow::Result<(&'static KindInfo, Api<K>, K)> {
    let (sel, name) = one(resource)?;
    let api: Api<K> = ctx.client().await?.api(ctx.namespace());
    let ds = api
        .get(&name)
        .await
        .map_err(|e| ctx.describe(e, Verb::Get, Target { kind: sel.kind, name: &name, source: None }))?;
    Ok((sel.kind, api, ds))
}

pub async fn status<K: Revisioned>(
    ctx: &Context,
    resource: &[String],
    timeout: Option<Duration>,
) -> anyhow::Result<Outcome> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut last = String::new();
    loop {
        let (_, api, obj) = fetch::<K>(ctx, resource).await?;
        match obj.progress() {
            Err(e) => bail!("{e}"),
            Ok(Progress::Done(line)) => {
                say(line);
                return Ok(Outcome::Success);
            }
            Ok(Progress::Waiting(line)) if line != last => {
                say(&line);
                last = line;
            }
            Ok(Progress::Waiting(_)) => {}
        }
        if deadline.is_some_and(|t| Instant::now() >= t) {
            bail!("timed out waiting for the condition");
        }
        next_change(&api, &obj).await;
    }
}

/// The object's ControllerRevisions (controlled by it), by revision, oldest first.
async fn revisions<K: Resource>(ctx: &Context, ds: &K) -> anyhow::Result<Vec<ControllerRevision>> {
    let api: Api<ControllerRevision> = ctx.client().await?.api(&ds.meta().namespace);
    let mut out: Vec<ControllerRevision> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|c| {
            c.meta().owner_references.iter().any(|r| r.controller == Some(true) && r.uid == ds.meta().uid)
        })
        .collect();
    out.sort_by_key(|c| c.revision);
    Ok(out)
}

/// The pod template a revision records (its data's `spec.template`, without the `$patch` directive).
pub fn template_of(cr: &ControllerRevision) -> anyhow::Result<PodTemplateSpec> {
    let data = cr.data.as_ref().and_then(|d| d.value()).unwrap_or(Value::Null);
    let mut template = data["spec"]["template"].clone();
    ensure!(template.is_object(), "revision {} holds no pod template", cr.revision);
    if let Value::Object(t) = &mut template {
        t.remove("$patch");
    }
    Ok(serde_json::from_value(template)?)
}

pub async fn history<K: Revisioned>(
    ctx: &Context,
    resource: &[String],
    revision: Option<i64>,
) -> anyhow::Result<Outcome> {
    let (kind, _, ds) = fetch::<K>(ctx, resource).await?;
    let revs = revisions(ctx, &ds).await?;
    let obj = kinds::object_ref(kind, &ds.meta().name);
    if let Some(n) = revision {
        let Some(cr) = revs.iter().find(|c| c.revision == n) else {
            bail!("unable to find the specified revision");
        };
        let mut t = serde_json::to_value(template_of(cr)?)?;
        if let Some(cause) = cr.meta().annotations.get(CHANGE_CAUSE) {
            t["metadata"]["annotations"][CHANGE_CAUSE] = cause.clone().into();
        }
        emit(&format!("{obj} with revision #{n}\n{}", crate::describe::describe_pod_template(&t)));
        return Ok(Outcome::Success);
    }
    let mut text = format!("{obj} \nREVISION  CHANGE-CAUSE\n");
    for cr in &revs {
        let cause = cr.meta().annotations.get(CHANGE_CAUSE).map(String::as_str).unwrap_or("<none>");
        text.push_str(&format!("{:<9} {cause}\n", cr.revision));
    }
    emit(&text);
    Ok(Outcome::Success)
}

pub async fn undo<K: Revisioned>(
    ctx: &Context,
    resource: &[String],
    to_revision: i64,
) -> anyhow::Result<Outcome> {
    let (kind, api, mut ds) = fetch::<K>(ctx, resource).await?;
    let obj = kinds::object_ref(kind, &ds.meta().name);
    ensure!(to_revision >= 0, "unable to find specified revision {to_revision} in history");
    let revs = revisions(ctx, &ds).await?;
    let target = if to_revision == 0 {
        // The previous revision: the newest but one.
        match revs.len() {
            0 | 1 => bail!("no last revision to roll back to"),
            n => &revs[n - 2],
        }
    } else {
        match revs.iter().find(|c| c.revision == to_revision) {
            Some(c) => c,
            None => bail!("unable to find specified revision {to_revision} in history"),
        }
    };
    let template = template_of(target)?;
    let current = ds.template_mut();
    if current.as_ref() == Some(&template) {
        say(format!(
            "{obj} skipped rollback (current template already matches revision {})",
            target.revision
        ));
        return Ok(Outcome::Success);
    }
    *current = Some(template);
    store_with(ctx, &api, kind, &ds, |latest, ds| {
        *latest.template_mut() = ds.clone().template_mut().clone();
    })
    .await?;
    say(format!("{obj} rolled back"));
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout_progress(ds: &DaemonSet) -> Result<Option<String>, String> {
        ds.progress().map(|p| match p {
            Progress::Waiting(l) => Some(l),
            Progress::Done(_) => None,
        })
    }

    #[test]
    fn statefulset_lines_like_kubectl() {
        let sts = |spec: &str, status: &str| -> StatefulSet {
            serde_yaml::from_str(&format!(
                "{{metadata: {{name: web, generation: 2}}, spec: {spec}, status: {status}}}"
            ))
            .unwrap()
        };
        let partitioned =
            "{replicas: 3, updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}}";
        let p = |spec, status| sts(spec, status).progress().unwrap();
        assert_eq!(
            p(partitioned, "{observedGeneration: 1}"),
            Progress::Waiting("Waiting for statefulset spec update to be observed...".into())
        );
        assert_eq!(
            p(partitioned, "{observedGeneration: 2, readyReplicas: 2}"),
            Progress::Waiting("Waiting for 1 pods to be ready...".into())
        );
        assert_eq!(
            p(partitioned, "{observedGeneration: 2, readyReplicas: 3}"),
            Progress::Waiting(
                "Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated...".into()
            )
        );
        assert_eq!(
            p(partitioned, "{observedGeneration: 2, readyReplicas: 3, updatedReplicas: 1}"),
            Progress::Done("partitioned roll out complete: 1 new pods have been updated...".into())
        );
        let plain = "{replicas: 3, updateStrategy: {type: RollingUpdate}}";
        assert_eq!(
            p(
                plain,
                "{observedGeneration: 2, readyReplicas: 3, updatedReplicas: 1, currentRevision: web-a, updateRevision: web-b}"
            ),
            Progress::Waiting(
                "waiting for statefulset rolling update to complete 1 pods at revision web-b...".into()
            )
        );
        assert_eq!(
            p(
                plain,
                "{observedGeneration: 2, readyReplicas: 3, currentReplicas: 3, currentRevision: web-b, updateRevision: web-b}"
            ),
            Progress::Done("statefulset rolling update complete 3 pods at revision web-b...".into())
        );
        assert!(sts("{updateStrategy: {type: OnDelete}}", "{}").progress().is_err());
    }

    #[test]
    fn progress_lines_like_kubectl() {
        let ds = |status: &str| -> DaemonSet {
            serde_yaml::from_str(&format!(
                "{{metadata: {{name: agent, generation: 2}}, spec: {{updateStrategy: {{type: RollingUpdate}}}}, status: {status}}}"
            ))
            .unwrap()
        };
        assert_eq!(
            rollout_progress(&ds("{observedGeneration: 1}")).unwrap().unwrap(),
            "Waiting for daemon set spec update to be observed..."
        );
        assert_eq!(
            rollout_progress(&ds(
                "{observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 1}"
            ))
            .unwrap()
            .unwrap(),
            "Waiting for daemon set \"agent\" rollout to finish: 1 out of 3 new pods have been updated..."
        );
        assert!(
            rollout_progress(&ds(
                "{observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2}"
            ))
            .unwrap()
            .unwrap()
            .contains("2 of 3 updated pods are available")
        );
        assert_eq!(
            rollout_progress(&ds(
                "{observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3}"
            ))
            .unwrap(),
            None
        );
        let on_delete: DaemonSet =
            serde_yaml::from_str("{metadata: {name: a}, spec: {updateStrategy: {type: OnDelete}}}").unwrap();
        assert!(rollout_progress(&on_delete).is_err());
    }

    #[test]
    fn a_revision_gives_back_its_template() {
        let cr: ControllerRevision = serde_yaml::from_str(
            "{metadata: {name: a-1}, revision: 1, data: {spec: {template: {$patch: replace, metadata: {labels: {app: a}}, spec: {containers: [{name: c, image: 'busybox:1.36'}]}}}}}",
        )
        .unwrap();
        let t = template_of(&cr).unwrap();
        assert_eq!(t.spec.unwrap().containers[0].image, "busybox:1.36");
    }
}
