//! `navctl rollout status|history|undo` for DaemonSets, as kubectl's DaemonSet status viewer, history
//! viewer and rollbacker do them: history is the DaemonSet's ControllerRevisions (their `revision`),
//! undo puts a revision's pod template (its data, `{"spec":{"template":{...}}}`) back on the
//! DaemonSet, and the DaemonSet controller rolls it out.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use navarch_api::v1::{ControllerRevision, DaemonSet, PodTemplateSpec};
use navarch_api::{KindInfo, Resource};
use navarch_client::{Api, ListParams};
use serde_json::Value;

use super::{CHANGE_CAUSE, next_change, store_with};
use crate::context::{Context, Outcome, emit, say};
use crate::errors::{Target, Verb};
use crate::kinds;
use crate::workloads::one;

/// Whether the command names a DaemonSet.
pub fn named(resource: &[String]) -> bool {
    one(resource).is_ok_and(|(sel, _)| sel.kind.kind == DaemonSet::KIND)
}

/// kubectl's progress line for a DaemonSet, or None when the rollout is complete.
pub fn rollout_progress(ds: &DaemonSet) -> Result<Option<String>, String> {
    let name = &ds.meta().name;
    let strategy = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).map(|s| s.r#type.as_str());
    if strategy.is_some_and(|t| t != "RollingUpdate") {
        return Err("rollout status is only available for RollingUpdate strategy type".into());
    }
    let st = ds.status.clone().unwrap_or_default();
    if ds.meta().generation > st.observed_generation {
        return Ok(Some("Waiting for daemon set spec update to be observed...".into()));
    }
    if st.updated_number_scheduled < st.desired_number_scheduled {
        return Ok(Some(format!(
            "Waiting for daemon set {name:?} rollout to finish: {} out of {} new pods have been updated...",
            st.updated_number_scheduled, st.desired_number_scheduled
        )));
    }
    if st.number_available < st.desired_number_scheduled {
        return Ok(Some(format!(
            "Waiting for daemon set {name:?} rollout to finish: {} of {} updated pods are available...",
            st.number_available, st.desired_number_scheduled
        )));
    }
    Ok(None)
}

async fn fetch(
    ctx: &Context,
    resource: &[String],
) -> anyhow::Result<(&'static KindInfo, Api<DaemonSet>, DaemonSet)> {
    let (sel, name) = one(resource)?;
    let api: Api<DaemonSet> = ctx.client().await?.api(ctx.namespace());
    let ds = api
        .get(&name)
        .await
        .map_err(|e| ctx.describe(e, Verb::Get, Target { kind: sel.kind, name: &name, source: None }))?;
    Ok((sel.kind, api, ds))
}

pub async fn status(
    ctx: &Context,
    resource: &[String],
    timeout: Option<Duration>,
) -> anyhow::Result<Outcome> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut last = String::new();
    loop {
        let (_, api, ds) = fetch(ctx, resource).await?;
        match rollout_progress(&ds) {
            Err(e) => bail!("{e}"),
            Ok(None) => {
                say(format!("daemon set {:?} successfully rolled out", ds.meta().name));
                return Ok(Outcome::Success);
            }
            Ok(Some(line)) if line != last => {
                say(&line);
                last = line;
            }
            Ok(Some(_)) => {}
        }
        if deadline.is_some_and(|t| Instant::now() >= t) {
            bail!("timed out waiting for the condition");
        }
        next_change(&api, &ds).await;
    }
}

/// The DaemonSet's ControllerRevisions (controlled by it), by revision, oldest first.
async fn revisions(ctx: &Context, ds: &DaemonSet) -> anyhow::Result<Vec<ControllerRevision>> {
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

pub async fn history(ctx: &Context, resource: &[String], revision: Option<i64>) -> anyhow::Result<Outcome> {
    let (kind, _, ds) = fetch(ctx, resource).await?;
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

pub async fn undo(ctx: &Context, resource: &[String], to_revision: i64) -> anyhow::Result<Outcome> {
    let (kind, api, mut ds) = fetch(ctx, resource).await?;
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
    let spec = ds.spec.get_or_insert_with(Default::default);
    if spec.template.as_ref() == Some(&template) {
        say(format!(
            "{obj} skipped rollback (current template already matches revision {})",
            target.revision
        ));
        return Ok(Outcome::Success);
    }
    spec.template = Some(template);
    store_with(ctx, &api, kind, &ds, |latest, ds| {
        latest.spec.get_or_insert_with(Default::default).template =
            ds.spec.as_ref().and_then(|s| s.template.clone());
    })
    .await?;
    say(format!("{obj} rolled back"));
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

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
