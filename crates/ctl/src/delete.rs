//! `navctl delete`: by manifest, by kind and name, or by label selector / `--all`; waits until the
//! objects are gone unless `--wait=false`.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use navarch_api::KindInfo;
use navarch_client::{DeleteParams, Error as ClientError, ListParams};

use crate::cli::DeleteArgs;
use crate::context::{Context, Outcome, say};
use crate::errors::{Target, Unreachable, Verb};
use crate::kinds::{self, singular_ref};
use crate::manifests;

/// One object to delete.
#[derive(Debug, Clone)]
pub struct Victim {
    pub kind: &'static KindInfo,
    pub namespace: String,
    pub name: String,
    pub source: Option<String>,
}

const WAIT_POLL: Duration = Duration::from_millis(250);

pub async fn run(ctx: &Context, args: &DeleteArgs) -> anyhow::Result<Outcome> {
    let victims = targets(ctx, args).await?;
    let params = DeleteParams {
        grace_period_seconds: if args.now {
            Some(1)
        } else {
            (args.grace_period >= 0).then_some(args.grace_period)
        },
        propagation_policy: args.cascade.policy().to_string(),
        ..Default::default()
    };
    let client = ctx.client().await?;
    let mut failed = false;
    let mut pending = Vec::new();
    for v in &victims {
        let ns = ctx.namespace_for(v.kind, &v.namespace);
        match client.delete(v.kind.kind, &ns, &v.name, &params).await {
            Ok(d) => {
                say(format!("{} {:?} deleted", singular_ref(v.kind), v.name));
                if d.pending {
                    pending.push((v, d.object.meta().uid.clone()));
                }
            }
            Err(ClientError::NotFound(_)) if args.ignore_not_found => {}
            Err(e) => {
                let err = ctx.describe(
                    e,
                    Verb::Delete,
                    Target { kind: v.kind, name: &v.name, source: v.source.as_deref() },
                );
                if err.downcast_ref::<Unreachable>().is_some() {
                    return Err(err);
                }
                crate::report(&err);
                failed = true;
            }
        }
    }
    if args.wait {
        let deadline = (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout);
        for (v, uid) in pending {
            if !wait_gone(ctx, v, &uid, deadline).await? {
                eprintln!(
                    "error: timed out waiting for the deletion of {}",
                    kinds::object_ref(v.kind, &v.name)
                );
                failed = true;
            }
        }
    }
    Ok(Outcome::from_failed(failed))
}

/// Waits until the object with `uid` no longer exists. False on timeout.
async fn wait_gone(ctx: &Context, v: &Victim, uid: &str, deadline: Option<Instant>) -> anyhow::Result<bool> {
    loop {
        match ctx.get_opt(v.kind, &v.namespace, &v.name).await? {
            None => return Ok(true),
            Some(o) if o.meta().uid != uid => return Ok(true),
            Some(_) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

async fn targets(ctx: &Context, args: &DeleteArgs) -> anyhow::Result<Vec<Victim>> {
    if !args.files.is_empty() {
        ensure!(args.resources.is_empty(), "cannot specify resources together with -f");
        let mut ms = manifests::read(&args.files, args.recursive)?;
        manifests::set_namespaces(&mut ms, ctx.namespace(), ctx.config.namespace_is_explicit())?;
        return Ok(ms
            .into_iter()
            .map(|m| Victim {
                kind: m.object.info(),
                namespace: m.object.meta().namespace.clone(),
                name: m.object.meta().name.clone(),
                source: Some(m.source),
            })
            .collect());
    }
    if args.resources.is_empty() {
        bail!(
            "You must provide one or more resources by argument or filename (e.g. `navctl delete pod web`, `navctl delete -f web.yaml`)"
        );
    }
    let selections = kinds::parse_args(&args.resources)?;
    let by_selector = args.all || args.selector.is_some();
    let mut victims = Vec::new();
    for sel in selections {
        if !sel.names.is_empty() {
            ensure!(!by_selector, "name cannot be provided when a selector or --all is specified");
            victims.extend(sel.names.iter().map(|name| Victim {
                kind: sel.kind,
                namespace: ctx.namespace().to_string(),
                name: name.clone(),
                source: None,
            }));
            continue;
        }
        ensure!(
            by_selector,
            "resource(s) were provided, but no name was specified (give names, -l SELECTOR or --all)"
        );
        let namespace = if args.all_namespaces { String::new() } else { ctx.namespace().to_string() };
        let params = ListParams {
            namespace: namespace.clone(),
            label_selector: args.selector.clone().unwrap_or_default(),
            ..Default::default()
        };
        let (objects, _) = ctx.list(sel.kind, &params, 500).await?;
        if objects.is_empty() {
            let ns = (!args.all_namespaces).then_some(namespace.as_str());
            eprintln!("{}", crate::printers::no_resources_message(sel.kind, ns));
        }
        victims.extend(objects.iter().map(|o| Victim {
            kind: sel.kind,
            namespace: o.meta().namespace.clone(),
            name: o.meta().name.clone(),
            source: None,
        }));
    }
    Ok(victims)
}
