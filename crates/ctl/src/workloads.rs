//! Commands on workloads: `navctl scale` and `navctl set image`, with kubectl's messages.

use anyhow::{bail, ensure};
use navarch_api::Object;
use navarch_api::v1::PodSpec;

use crate::cli::{ScaleArgs, SetImageArgs};
use crate::context::{Context, Outcome, say};
use crate::errors::{Target, Verb};
use crate::kinds::{self, Selection};

pub fn one(args: &[String]) -> anyhow::Result<(Selection, String)> {
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
