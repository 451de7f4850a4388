//! Commands on workloads: `navctl scale`, `navctl autoscale`, `navctl set image` and `navctl expose`, with kubectl's
//! messages.

use anyhow::{bail, ensure};
use navarch_api::Object;
use navarch_api::v1::PodSpec;

use crate::cli::{AutoscaleArgs, ExposeArgs, ScaleArgs, SetImageArgs};
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

fn pod_spec_of(o: &mut Object) -> Option<&mut PodSpec> {
    let template = match o {
        Object::Pod(p) => return p.spec.as_mut(),
        Object::Deployment(d) => d.spec.as_mut()?.template.as_mut(),
        Object::ReplicaSet(r) => r.spec.as_mut()?.template.as_mut(),
        Object::ReplicationController(r) => r.spec.as_mut()?.template.as_mut(),
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
    ctx.modify(sel.kind, &name, |o| {
        let Some(r) = navarch_api::autoscaling::replicas_mut(o) else {
            bail!("{} cannot be scaled", kinds::plural_ref(sel.kind))
        };
        *r = Some(a.replicas);
        Ok(())
    })
    .await?;
    say(format!("{} scaled", kinds::object_ref(sel.kind, &name)));
    Ok(Outcome::Success)
}

pub async fn set_image(ctx: &Context, a: &SetImageArgs) -> anyhow::Result<Outcome> {
    let (resources, changes): (Vec<String>, Vec<String>) =
        a.args.iter().cloned().partition(|x| !x.contains('='));
    ensure!(!changes.is_empty(), "at least one image update is required: CONTAINER=IMAGE");
    let (sel, name) = one(&resources)?;
    ctx.modify(sel.kind, &name, |o| {
        let Some(spec) = pod_spec_of(o) else { bail!("{} has no pod template", kinds::plural_ref(sel.kind)) };
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
        Ok(())
    })
    .await?;
    say(format!("{} image updated", kinds::object_ref(sel.kind, &name)));
    Ok(Outcome::Success)
}

/// The selector and first container port behind `o`, for `expose`.
fn exposable(o: &mut Object) -> Option<(std::collections::BTreeMap<String, String>, Option<i32>)> {
    let selector = match &*o {
        Object::Pod(p) => p.metadata.as_ref().map(|m| m.labels.clone()),
        Object::Service(s) => s.spec.as_ref().map(|s| s.selector.clone()),
        Object::Deployment(d) => {
            d.spec.as_ref().and_then(|s| s.selector.as_ref()).map(|s| s.match_labels.clone())
        }
        Object::ReplicaSet(r) => {
            r.spec.as_ref().and_then(|s| s.selector.as_ref()).map(|s| s.match_labels.clone())
        }
        Object::ReplicationController(r) => r.spec.as_ref().map(|s| s.selector.clone()),
        Object::StatefulSet(s) => {
            s.spec.as_ref().and_then(|s| s.selector.as_ref()).map(|s| s.match_labels.clone())
        }
        Object::DaemonSet(d) => {
            d.spec.as_ref().and_then(|s| s.selector.as_ref()).map(|s| s.match_labels.clone())
        }
        _ => return None,
    }
    .unwrap_or_default();
    let port = match &*o {
        Object::Service(s) => s.spec.as_ref().and_then(|s| s.ports.first()).map(|p| p.port),
        _ => pod_spec_of(o)
            .and_then(|s| s.containers.iter().flat_map(|c| c.ports.iter()).next())
            .map(|p| p.container_port),
    };
    Some((selector, port))
}

pub async fn expose(ctx: &Context, a: &ExposeArgs) -> anyhow::Result<Outcome> {
    use navarch_api::v1::{IntOrString, ObjectMeta, Service, ServicePort, ServiceSpec};
    let (sel, name) = one(&a.resource)?;
    let mut o = ctx.get(sel.kind, ctx.namespace(), &name).await?;
    let Some((mut selector, default_port)) = exposable(&mut o) else {
        bail!("cannot expose a {}", sel.kind.kind)
    };
    if let Some(s) = &a.selector {
        selector = s
            .split(',')
            .map(|kv| kv.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow::anyhow!("--selector: {s:?}: must be k=v pairs separated by commas"))?;
    }
    ensure!(
        !selector.is_empty(),
        "couldn't retrieve selectors via --selector flag or introspection: the {} has none",
        sel.kind.kind
    );
    let Some(port) = a.port.or(default_port) else {
        bail!("couldn't find port via --port flag or introspection")
    };
    let target_port = match &a.target_port {
        Some(t) => match t.parse::<i32>() {
            Ok(n) => IntOrString::int(n),
            Err(_) => IntOrString::string(t.clone()),
        },
        None => IntOrString::int(port),
    };
    let svc_name = a.name.clone().unwrap_or_else(|| name.clone());
    let mut svc = Service {
        metadata: Some(ObjectMeta {
            name: svc_name.clone(),
            namespace: ctx.namespace().to_string(),
            labels: o.meta().labels.clone(),
            ..Default::default()
        }),
        spec: Some(ServiceSpec {
            r#type: a.service_type.clone(),
            selector,
            ports: vec![ServicePort {
                name: a.port_name.clone().unwrap_or_default(),
                protocol: a.protocol.clone(),
                port,
                target_port: Some(target_port),
                ..Default::default()
            }],
            session_affinity: a.session_affinity.clone().unwrap_or_default(),
            ..Default::default()
        }),
        ..Default::default()
    };
    navarch_api::Resource::set_type_meta(&mut svc);
    let kind = kinds::resolve("service")?;
    let client = ctx.client().await?;
    client
        .create(&Object::Service(svc))
        .await
        .map_err(|e| ctx.describe(e, Verb::Create, Target { kind, name: &svc_name, source: None }))?;
    say(format!("service/{svc_name} exposed"));
    Ok(Outcome::Success)
}

/// `kubectl autoscale`: an autoscaling/v2 HorizontalPodAutoscaler named after the target (or `--name`)
/// keeping its pods' CPU at `--cpu-percent` (the server's default, 80%, when not given) between `--min`
/// and `--max` replicas.
pub async fn autoscale(ctx: &Context, a: &AutoscaleArgs) -> anyhow::Result<Outcome> {
    use navarch_api::v1::{
        CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, ObjectMeta,
    };
    let (sel, target) = one(&a.resource)?;
    let kind = sel.kind;
    ensure!(navarch_api::autoscaling::SCALABLE.contains(&kind.kind), "cannot autoscale a {}", kind.kind);
    ensure!(a.max >= 1, "--max=MAXPODS is required and must be at least 1, max: {}", a.max);
    ensure!(
        a.max >= a.min,
        "--max=MAXPODS must be larger or equal to --min=MINPODS, max: {}, min: {}",
        a.max,
        a.min
    );
    let name = a.name.clone().unwrap_or_else(|| target.clone());
    let mut hpa = HorizontalPodAutoscaler {
        metadata: Some(ObjectMeta {
            name: name.clone(),
            namespace: ctx.namespace().to_string(),
            ..Default::default()
        }),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: Some(CrossVersionObjectReference {
                kind: kind.kind.into(),
                name: target,
                api_version: kind.api_version.into(),
            }),
            min_replicas: (a.min > 0).then_some(a.min),
            max_replicas: a.max,
            metrics: a
                .cpu_percent
                .filter(|p| *p >= 0)
                .map(|p| vec![navarch_api::autoscaling::resource_utilization_metric("cpu", p)])
                .unwrap_or_default(),
            behavior: None,
        }),
        ..Default::default()
    };
    navarch_api::Resource::set_type_meta(&mut hpa);
    let hpa_kind = navarch_api::kind_info("HorizontalPodAutoscaler").expect("a kind");
    ctx.client()
        .await?
        .create(&Object::HorizontalPodAutoscaler(hpa))
        .await
        .map_err(|e| ctx.describe(e, Verb::Create, Target { kind: hpa_kind, name: &name, source: None }))?;
    say(format!("horizontalpodautoscaler.autoscaling/{name} autoscaled"));
    Ok(Outcome::Success)
}
