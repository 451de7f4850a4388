//! `navctl create -f` (fails for objects that exist), `navctl create job` (from a CronJob's job
//! template, or an image) and `navctl replace -f` (full replacement, with optimistic concurrency on
//! the manifest's resourceVersion when it has one).

use anyhow::bail;
use navarch_api::v1::{
    Container, CronJob, Job, JobSpec, ObjectMeta, OwnerReference, PodSpec, PodTemplateSpec,
};
use navarch_api::{Object, Resource};

use crate::cli::{FileArgs, JobArgs};
use crate::context::{Context, Outcome, say};
use crate::errors::{Target, Unreachable, Verb};
use crate::manifests::{self, Manifest};
use crate::printers;

/// Runs `op` on every manifest, printing `<ref> <word>` for each success (`op` returns the object as
/// stored, whose name may have been generated) and kubectl's error for each
/// failure; an unreachable server stops everything.
async fn each<F, Fut>(ctx: &Context, args: &FileArgs, word: &str, op: F) -> anyhow::Result<Outcome>
where
    F: Fn(Manifest) -> Fut,
    Fut: Future<Output = anyhow::Result<Object>>,
{
    let mut manifests = manifests::read(&args.files, args.recursive)?;
    manifests::set_namespaces(&mut manifests, ctx.namespace(), ctx.config.namespace_is_explicit())?;
    ctx.client().await?;
    let mut failed = false;
    for m in manifests {
        match op(m).await {
            Ok(stored) => say(format!("{} {word}", printers::name_of(&stored))),
            Err(e) if e.downcast_ref::<Unreachable>().is_some() => return Err(e),
            Err(e) => {
                crate::report(&e);
                failed = true;
            }
        }
    }
    Ok(Outcome::from_failed(failed))
}

pub async fn create(ctx: &Context, args: &FileArgs) -> anyhow::Result<Outcome> {
    each(ctx, args, "created", |m| async move {
        let client = ctx.client().await?;
        let info = m.object.info();
        let meta = m.object.meta();
        let name = if meta.name.is_empty() { meta.generate_name.clone() } else { meta.name.clone() };
        client.create(&m.object).await.map_err(|e| {
            ctx.describe(e, Verb::Create, Target { kind: info, name: &name, source: Some(&m.source) })
        })
    })
    .await
}

pub async fn replace(ctx: &Context, args: &FileArgs) -> anyhow::Result<Outcome> {
    each(ctx, args, "replaced", |m| async move {
        let client = ctx.client().await?;
        let info = m.object.info();
        let meta = m.object.meta();
        let (name, namespace) = (meta.name.clone(), meta.namespace.clone());
        let target = Target { kind: info, name: &name, source: Some(&m.source) };
        let mut obj = m.object.clone();
        if obj.meta().resource_version.is_empty() {
            // Like kubectl replace: without a resourceVersion in the manifest, replace what is there now.
            let live = client
                .get(info.kind, &namespace, &name)
                .await
                .map_err(|e| ctx.describe(e, Verb::Replace, target))?;
            obj.meta_mut().resource_version = live.meta().resource_version.clone();
        }
        // A stale resourceVersion is refused by the server as a conflict.
        client.update(&obj).await.map_err(|e| ctx.describe(e, Verb::Replace, target))
    })
    .await
}

/// kubectl's `create job NAME --from=cronjob/CRONJOB`: the CronJob's job template, annotated
/// `cronjob.kubernetes.io/instantiate: manual` and owned by the CronJob; or `--image IMAGE [-- CMD]`.
pub async fn create_job(ctx: &Context, args: &JobArgs) -> anyhow::Result<Outcome> {
    let job = match (&args.from, &args.image) {
        (None, None) => bail!("either --image or --from must be specified"),
        (Some(_), Some(_)) => bail!("--image and --from are mutually exclusive"),
        (Some(from), None) => {
            let (kind, name) = from.split_once('/').unwrap_or(("", from));
            let kind = crate::kinds::resolve(kind)
                .ok()
                .filter(|k| k.kind == CronJob::KIND)
                .ok_or_else(|| anyhow::anyhow!("from must be an existing cronjob: {from}"))?;
            let Object::CronJob(cj) = ctx.get(kind, ctx.namespace(), name).await? else {
                bail!("from must be an existing cronjob: {from}")
            };
            job_from_cronjob(&args.name, &cj)
        }
        (None, Some(image)) => Job {
            metadata: Some(ObjectMeta { name: args.name.clone(), ..Default::default() }),
            spec: Some(JobSpec {
                template: Some(PodTemplateSpec {
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: args.name.clone(),
                            image: image.clone(),
                            command: args.command.clone(),
                            ..Default::default()
                        }],
                        restart_policy: "Never".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
    };
    let mut job = job;
    job.metadata.get_or_insert_with(Default::default).namespace = ctx.namespace().to_string();
    job.set_type_meta();
    let client = ctx.client().await?;
    let kind = crate::kinds::resolve("job")?;
    let stored = client
        .create(&Object::Job(job))
        .await
        .map_err(|e| ctx.describe(e, Verb::Create, Target { kind, name: &args.name, source: None }))?;
    say(format!("{} created", printers::name_of(&stored)));
    Ok(Outcome::Success)
}

/// The Job kubectl makes from a CronJob: the template's labels, annotations (plus
/// `cronjob.kubernetes.io/instantiate: manual`) and spec, controlled by the CronJob.
pub fn job_from_cronjob(name: &str, cj: &CronJob) -> Job {
    let template = cj.spec.as_ref().and_then(|s| s.job_template.clone()).unwrap_or_default();
    let tm = template.metadata.unwrap_or_default();
    let mut annotations = tm.annotations;
    annotations.insert("cronjob.kubernetes.io/instantiate".into(), "manual".into());
    let m = cj.meta();
    Job {
        metadata: Some(ObjectMeta {
            name: name.to_string(),
            labels: tm.labels,
            annotations,
            owner_references: vec![OwnerReference {
                api_version: CronJob::API_VERSION.into(),
                kind: CronJob::KIND.into(),
                name: m.name.clone(),
                uid: m.uid.clone(),
                controller: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        }),
        spec: template.spec,
        ..Default::default()
    }
}
