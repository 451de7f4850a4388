//! `navctl create -f` (fails for objects that exist) and `navctl replace -f` (full replacement, with
//! optimistic concurrency on the manifest's resourceVersion when it has one).

use navarch_api::Object;

use crate::cli::FileArgs;
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
