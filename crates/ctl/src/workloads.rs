//! Commands on workloads: `navctl scale`, `navctl set image` and `navctl rollout status`, with
//! kubectl's messages.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use futures::StreamExt;
use navarch_api::Object;
use navarch_api::v1::{Deployment, PodSpec};
use navarch_client::{Api, WatchEvent, WatchParams};

use crate::cli::{RolloutCommand, ScaleArgs, SetImageArgs};
use crate::context::{Context, Outcome, say};
use crate::errors::{Target, Verb};
use crate::kinds::{self, Selection};

fn one(args: &[String]) -> anyhow::Result<(Selection, String)> {
    let sel = kinds::parse_args(args)?;
    ensure!(
        sel.len() == 1 && sel[0].names.len() == 1,
        "exactly one resource is required, e.g. deployment/web"
    );
    let name = sel[0].names[0].clone();
    Ok((sel.into_iter().next().expect("one selection"), name))
}

fn replicas_of(o: &mut Object) -> Option<&mut Option<i32>> {
    match o {
        Object::Deployment(d) => d.spec.as_mut().map(|s| &mut s.replicas),
        Object::ReplicaSet(r) => r.spec.as_mut().map(|s| &mut s.replicas),
        Object::StatefulSet(s) => s.spec.as_mut().map(|s| &mut s.replicas),
        _ => None,
    }
}

fn pod_spec_of(o: &mut Object) -> Option<&mut PodSpec> {
    let template = match o {
        Object::Pod(p) => return p.spec.as_mut(),
        Object::Deployment(d) => d.spec.as_mut()?.template.as_mut(),
        Object::ReplicaSet(r) => r.spec.as_mut()?.template.as_mut(),
        Object::DaemonSet(d) => d.spec.as_mut()?.template.as_mut(),
        Object::StatefulSet(s) => s.spec.as_mut()?.template.as_mut(),
        Object::Job(j) => j.spec.as_mut()?.template.as_mut(),
        _ => None,
    };
    template?.spec.as_mut()
}

pub async fn scale(ctx: &Context, a: &ScaleArgs) -> anyhow::Result<Outcome> {
    ensure!(a.replicas >= 0, "--replicas: must be >= 0");
    let (sel, name) = one(&a.resource)?;
    let mut o = ctx.get(sel.kind, ctx.namespace(), &name).await?;
    let Some(r) = replicas_of(&mut o) else { bail!("{} cannot be scaled", kinds::plural_ref(sel.kind)) };
    *r = Some(a.replicas);
    let client = ctx.client().await?;
    client
        .update(&o)
        .await
        .map_err(|e| ctx.describe(e, Verb::Update, Target { kind: sel.kind, name: &name, source: None }))?;
    say(format!("{} scaled", kinds::object_ref(sel.kind, &name)));
    Ok(Outcome::Success)
}

pub async fn set_image(ctx: &Context, a: &SetImageArgs) -> anyhow::Result<Outcome> {
    let (resources, changes): (Vec<String>, Vec<String>) =
        a.args.iter().cloned().partition(|x| !x.contains('='));
    ensure!(!changes.is_empty(), "at least one image update is required: CONTAINER=IMAGE");
    let (sel, name) = one(&resources)?;
    let mut o = ctx.get(sel.kind, ctx.namespace(), &name).await?;
    let Some(spec) = pod_spec_of(&mut o) else {
        bail!("{} has no pod template", kinds::plural_ref(sel.kind))
    };
    for c in &changes {
        let (container, image) = c.split_once('=').expect("partitioned on '='");
        ensure!(!image.is_empty(), "{c}: the image must not be empty");
        let mut found = false;
        for k in spec.containers.iter_mut().chain(spec.init_containers.iter_mut()) {
            if container == "*" || k.name == container {
                k.image = image.to_string();
                found = true;
            }
        }
        ensure!(found, "unable to find container named {container:?}");
    }
    let client = ctx.client().await?;
    client
        .update(&o)
        .await
        .map_err(|e| ctx.describe(e, Verb::Update, Target { kind: sel.kind, name: &name, source: None }))?;
    say(format!("{} image updated", kinds::object_ref(sel.kind, &name)));
    Ok(Outcome::Success)
}

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

pub async fn rollout(ctx: &Context, cmd: &RolloutCommand) -> anyhow::Result<Outcome> {
    let RolloutCommand::Status { resource, timeout } = cmd;
    let (sel, name) = one(resource)?;
    ensure!(
        sel.kind.kind == "Deployment",
        "rollout status supports deployments (got {})",
        kinds::plural_ref(sel.kind)
    );
    let client = ctx.client().await?;
    let api: Api<Deployment> = client.api(ctx.namespace());
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut last = String::new();
    loop {
        let d = api
            .get(&name)
            .await
            .map_err(|e| ctx.describe(e, Verb::Get, Target { kind: sel.kind, name: &name, source: None }))?;
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
        // Wake on the next change of this Deployment (or after a second).
        let params = WatchParams {
            field_selector: format!("metadata.name={name}"),
            resource_version: d.metadata.as_ref().map(|m| m.resource_version.clone()).unwrap_or_default(),
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
