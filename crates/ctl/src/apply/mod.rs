//! `navctl apply`: client-side apply like kubectl's. The manifest is stored in the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation; an update is a three-way merge of that,
//! the manifest and the live object ([`merge`]), sent with the live resourceVersion and retried on
//! conflict.

pub mod merge;

use anyhow::Context as _;
use navarch_api::Object;
use navarch_client::{Client, Error as ClientError};
use serde_json::Value;

use crate::cli::FileArgs;
use crate::context::{Context, Outcome, say};
use crate::errors::{Target, Unreachable, Verb};
use crate::manifests::{self, Manifest};
use crate::printers;

pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Attempts before giving up on an object that keeps changing under us.
const MAX_ATTEMPTS: usize = 5;

/// What apply did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Configured,
    Unchanged,
}

impl Applied {
    fn word(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Configured => "configured",
            Applied::Unchanged => "unchanged",
        }
    }
}

pub async fn run(ctx: &Context, args: &FileArgs) -> anyhow::Result<Outcome> {
    let mut manifests = manifests::read(&args.files, args.recursive)?;
    manifests::set_namespaces(&mut manifests, ctx.namespace(), ctx.config.namespace_is_explicit())?;
    let client = ctx.client().await?;
    let mut failed = false;
    for m in &manifests {
        match apply_one(ctx, client, m).await {
            Ok(applied) => say(format!("{} {}", printers::name_of(&m.object), applied.word())),
            Err(e) if e.downcast_ref::<Unreachable>().is_some() => return Err(e),
            Err(e) => {
                crate::report(&e);
                failed = true;
            }
        }
    }
    Ok(Outcome::from_failed(failed))
}

/// The manifest as sent: with the last-applied annotation holding the manifest itself (without that
/// annotation). Returns the object and its JSON form.
pub fn with_last_applied(manifest: &Object) -> anyhow::Result<(Object, Value)> {
    let mut obj = manifest.clone();
    obj.set_type_meta();
    obj.meta_mut().annotations.remove(LAST_APPLIED);
    let mut annotation = serde_json::to_string(&obj).context("encoding the manifest")?;
    annotation.push('\n');
    obj.meta_mut().annotations.insert(LAST_APPLIED.to_string(), annotation);
    let json = serde_json::to_value(&obj).context("encoding the manifest")?;
    Ok((obj, json))
}

/// Rewrites a manifest's write-only fields the way the api-server stores them, so that comparing it with
/// the live object is meaningful: a Secret's `stringData` is folded into `data` (base64).
fn as_stored(kind: &str, manifest: &mut Value) {
    use base64::Engine as _;
    if kind != "Secret" {
        return;
    }
    let Some(obj) = manifest.as_object_mut() else { return };
    let Some(Value::Object(string_data)) = obj.remove("stringData") else { return };
    let data = obj.entry("data").or_insert_with(|| Value::Object(Default::default()));
    if let Some(data) = data.as_object_mut() {
        for (k, v) in string_data {
            let encoded = base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or_default());
            data.insert(k, Value::String(encoded));
        }
    }
}

/// The live object after applying the manifest, or `None` when the manifest changes nothing.
pub fn merged(live: &Object, modified: &Value) -> anyhow::Result<Option<Object>> {
    let live_json = printers::to_value(live);
    let mut original: Option<Value> =
        live.meta().annotations.get(LAST_APPLIED).and_then(|a| serde_json::from_str(a).ok());
    let mut modified = modified.clone();
    for v in original.iter_mut().chain(std::iter::once(&mut modified)) {
        as_stored(live.kind(), v);
    }
    let Some(patch) = merge::three_way(original.as_ref(), &modified, &live_json) else {
        return Ok(None);
    };
    let mut result = live_json;
    merge::apply_patch(&mut result, &patch);
    let value = serde_yaml::to_value(&result).context("encoding the merged object")?;
    let mut obj = Object::from_value(live.kind(), value)
        .map_err(|e| anyhow::anyhow!("merging the manifest into the live object: {e}"))?;
    obj.meta_mut().resource_version = live.meta().resource_version.clone();
    Ok(Some(obj))
}

async fn apply_one(ctx: &Context, client: &Client, m: &Manifest) -> anyhow::Result<Applied> {
    let info = m.object.info();
    let meta = m.object.meta();
    let (name, namespace) = (meta.name.clone(), meta.namespace.clone());
    if name.is_empty() {
        anyhow::bail!(
            "{}: {} without metadata.name: apply needs a name (use `navctl create` for generateName)",
            m.source,
            info.kind
        );
    }
    let target = |verb| (verb, Target { kind: info, name: &name, source: Some(&m.source) });
    let (modified_obj, modified) = with_last_applied(&m.object)?;
    for _ in 0..MAX_ATTEMPTS {
        let live = match client.get(info.kind, &namespace, &name).await {
            Ok(o) => o,
            Err(ClientError::NotFound(_)) => match client.create(&modified_obj).await {
                Ok(_) => return Ok(Applied::Created),
                // Created by someone else meanwhile: apply onto theirs.
                Err(ClientError::AlreadyExists(_)) => continue,
                Err(e) => {
                    let (verb, t) = target(Verb::Create);
                    return Err(ctx.describe(e, verb, t));
                }
            },
            Err(e) => {
                let (verb, t) = target(Verb::Get);
                return Err(ctx.describe(e, verb, t));
            }
        };
        let Some(update) = merged(&live, &modified)? else { return Ok(Applied::Unchanged) };
        match client.update(&update).await {
            Ok(_) => return Ok(Applied::Configured),
            Err(ClientError::Conflict(_) | ClientError::NotFound(_)) => continue,
            Err(e) => {
                let (verb, t) = target(Verb::Update);
                return Err(ctx.describe(e, verb, t));
            }
        }
    }
    let (verb, t) = target(Verb::Update);
    Err(ctx.describe(
        ClientError::Conflict(format!("the object kept changing; gave up after {MAX_ATTEMPTS} attempts")),
        verb,
        t,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use navarch_api::manifest;

    fn obj(yaml: &str) -> Object {
        manifest::parse(yaml, "t").unwrap().remove(0)
    }

    #[test]
    fn secret_string_data_compares_as_stored_data() {
        let manifest = |string_data: &str| {
            obj(&format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: default}}\ntype: Opaque\ndata: {{a: YQ==}}\nstringData: {{{string_data}}}\n"
            ))
        };
        // What the api-server stores for the first apply: stringData folded into data.
        let (sent, _) = with_last_applied(&manifest("u: guest")).unwrap();
        let Object::Secret(mut live) = sent else { panic!() };
        live.string_data.clear();
        live.data.insert("u".into(), "Z3Vlc3Q=".into());
        let live = Object::Secret(live);

        let (_, same) = with_last_applied(&manifest("u: guest")).unwrap();
        assert!(merged(&live, &same).unwrap().is_none(), "re-applying stringData is unchanged");

        let (_, changed) = with_last_applied(&manifest("u: admin")).unwrap();
        let Object::Secret(up) = merged(&live, &changed).unwrap().expect("changed") else { panic!() };
        assert_eq!(up.data["u"], "YWRtaW4=");

        let (_, removed) = with_last_applied(&manifest("")).unwrap();
        let Object::Secret(up) = merged(&live, &removed).unwrap().expect("changed") else { panic!() };
        assert!(!up.data.contains_key("u"), "a key dropped from stringData is removed: {:?}", up.data);
        assert_eq!(up.data["a"], "YQ==");
    }

    #[test]
    fn annotation_holds_the_manifest_without_itself() {
        let m = obj(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\ndata:\n  k: v\n",
        );
        let (o, json) = with_last_applied(&m).unwrap();
        let ann = &o.meta().annotations[LAST_APPLIED];
        assert_eq!(
            ann,
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\",\"namespace\":\"default\"},\"data\":{\"k\":\"v\"}}\n"
        );
        assert_eq!(json["metadata"]["annotations"][LAST_APPLIED], Value::String(ann.clone()));
        // Re-applying the result gives the same annotation (no nesting).
        let (again, _) = with_last_applied(&o).unwrap();
        assert_eq!(&again.meta().annotations[LAST_APPLIED], ann);
    }

    #[test]
    fn reapply_is_unchanged_then_edits_and_removals_merge() {
        let v1 = obj(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\n  labels: {x: '1', y: '2'}\ndata:\n  k: v\n",
        );
        let (created, _) = with_last_applied(&v1).unwrap();
        // The server adds metadata; a controller adds a label.
        let mut live = created.clone();
        live.meta_mut().uid = "u1".into();
        live.meta_mut().resource_version = "7".into();
        live.meta_mut().labels.insert("added-by-controller".into(), "yes".into());
        let (_, modified) = with_last_applied(&v1).unwrap();
        assert!(merged(&live, &modified).unwrap().is_none(), "unchanged");

        let v2 = obj(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\n  labels: {x: '1'}\ndata:\n  k: v2\n",
        );
        let (_, modified) = with_last_applied(&v2).unwrap();
        let Object::ConfigMap(up) = merged(&live, &modified).unwrap().expect("changed") else { panic!() };
        let meta = up.metadata.as_ref().unwrap();
        assert_eq!(up.data["k"], "v2");
        assert_eq!(meta.uid, "u1");
        assert_eq!(meta.resource_version, "7");
        assert!(!meta.labels.contains_key("y"), "removed from the manifest");
        assert_eq!(meta.labels.get("added-by-controller").map(String::as_str), Some("yes"));
        assert!(meta.annotations[LAST_APPLIED].contains("\"v2\""));
    }
}
