//! `navctl label` and `navctl annotate`: set (`k=v`) and remove (`k-`) keys, refusing to change an
//! existing value without `--overwrite`, like kubectl.

use std::collections::BTreeMap;

use anyhow::{bail, ensure};
use navarch_api::{Object, names};
use navarch_client::{Error as ClientError, ListParams};

use crate::cli::MetadataArgs;
use crate::context::{Context, Outcome, say};
use crate::errors::{Target, Unreachable, Verb};
use crate::kinds::{self, object_ref};

/// Which metadata map is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Labels,
    Annotations,
}

impl Field {
    fn past(self) -> &'static str {
        match self {
            Field::Labels => "labeled",
            Field::Annotations => "annotated",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Field::Labels => "label",
            Field::Annotations => "annotation",
        }
    }
    fn map(self, o: &mut Object) -> &mut BTreeMap<String, String> {
        let meta = o.meta_mut();
        match self {
            Field::Labels => &mut meta.labels,
            Field::Annotations => &mut meta.annotations,
        }
    }
}

/// One requested change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set(String, String),
    Remove(String),
}

fn is_change(arg: &str) -> bool {
    arg.contains('=') || (arg.ends_with('-') && !arg.contains('/'))
}

/// Splits arguments into resource arguments and changes, validating keys (and label values).
pub fn parse_changes(args: &[String], field: Field) -> anyhow::Result<(Vec<String>, Vec<Change>)> {
    let (changes, resources): (Vec<&String>, Vec<&String>) = args.iter().partition(|a| is_change(a));
    ensure!(!changes.is_empty(), "at least one {} update is required", field.noun());
    let mut out = Vec::new();
    for c in changes {
        let change = match c.split_once('=') {
            Some((k, v)) => Change::Set(k.to_string(), v.to_string()),
            None => Change::Remove(c.trim_end_matches('-').to_string()),
        };
        let key = match &change {
            Change::Set(k, _) | Change::Remove(k) => k,
        };
        let mut problems = names::qualified_name(key);
        if let (Field::Labels, Change::Set(_, v)) = (field, &change) {
            problems.extend(names::label_value(v));
        }
        if !problems.is_empty() {
            bail!("invalid {} spec: {c}, {}", field.noun(), problems.join("; "));
        }
        if out.iter().any(|o: &Change| matches!(o, Change::Set(k, _) | Change::Remove(k) if k == key)) {
            bail!("can not both modify and remove the {} {key:?} in the same command", field.noun());
        }
        out.push(change);
    }
    Ok((resources.into_iter().cloned().collect(), out))
}

/// Applies the changes to `map`. Returns whether anything changed, or the error for an existing key
/// without `--overwrite`.
pub fn apply_changes(
    map: &mut BTreeMap<String, String>,
    changes: &[Change],
    overwrite: bool,
    field: Field,
) -> anyhow::Result<bool> {
    let mut changed = false;
    for c in changes {
        match c {
            Change::Set(k, v) => match map.get(k) {
                Some(old) if old == v => {}
                Some(old) if !overwrite => {
                    bail!("'{k}' already has a value ({old}), and --overwrite is false")
                }
                _ => {
                    map.insert(k.clone(), v.clone());
                    changed = true;
                }
            },
            Change::Remove(k) => {
                if map.remove(k).is_some() {
                    changed = true;
                } else {
                    eprintln!("{} {k:?} not found.", field.noun());
                }
            }
        }
    }
    Ok(changed)
}

const MAX_ATTEMPTS: usize = 5;

pub async fn run(ctx: &Context, args: &MetadataArgs, field: Field) -> anyhow::Result<Outcome> {
    let (resources, changes) = parse_changes(&args.args, field)?;
    let selections = kinds::parse_args(&resources)?;
    let client = ctx.client().await?;
    let mut targets = Vec::new();
    for sel in selections {
        if sel.names.is_empty() {
            ensure!(
                args.all || args.selector.is_some(),
                "resource(s) were provided, but no name was specified (give names, -l SELECTOR or --all)"
            );
            let params = ListParams {
                namespace: ctx.namespace().to_string(),
                label_selector: args.selector.clone().unwrap_or_default(),
                ..Default::default()
            };
            let (objects, _) = ctx.list(sel.kind, &params, 500).await?;
            targets.extend(objects.iter().map(|o| (sel.kind, o.meta().name.clone())));
        } else {
            targets.extend(sel.names.iter().map(|n| (sel.kind, n.clone())));
        }
    }
    let mut failed = false;
    'objects: for (kind, name) in targets {
        let target = Target { kind, name: &name, source: None };
        for _ in 0..MAX_ATTEMPTS {
            let result = async {
                let mut obj = ctx.get(kind, ctx.namespace(), &name).await?;
                if !apply_changes(field.map(&mut obj), &changes, args.overwrite, field)? {
                    return Ok(Some(false));
                }
                match client.update(&obj).await {
                    Ok(_) => Ok(Some(true)),
                    Err(ClientError::Conflict(_)) => Ok(None),
                    Err(e) => Err(ctx.describe(e, Verb::Update, target)),
                }
            }
            .await;
            match result {
                Ok(Some(changed)) => {
                    let word =
                        if changed { field.past().to_string() } else { format!("not {}", field.past()) };
                    say(format!("{} {word}", object_ref(kind, &name)));
                    continue 'objects;
                }
                Ok(None) => continue,
                Err(e) if e.downcast_ref::<Unreachable>().is_some() => return Err(e),
                Err(e) => {
                    crate::report(&e);
                    failed = true;
                    continue 'objects;
                }
            }
        }
        crate::report(&ctx.describe(
            ClientError::Conflict("the object kept changing".into()),
            Verb::Update,
            target,
        ));
        failed = true;
    }
    Ok(Outcome::from_failed(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_resources_and_changes() {
        let (res, ch) =
            parse_changes(&strings(&["cm", "a", "x=1", "y-", "example.com/z="]), Field::Labels).unwrap();
        assert_eq!(res, ["cm", "a"]);
        assert_eq!(
            ch,
            [
                Change::Set("x".into(), "1".into()),
                Change::Remove("y".into()),
                Change::Set("example.com/z".into(), String::new())
            ]
        );
        let (res, _) = parse_changes(&strings(&["deploy/web", "a=b"]), Field::Labels).unwrap();
        assert_eq!(res, ["deploy/web"]);
    }

    #[test]
    fn rejects_bad_changes() {
        assert!(parse_changes(&strings(&["cm", "a"]), Field::Labels).is_err(), "no change");
        assert!(parse_changes(&strings(&["cm", "a", "bad key=1"]), Field::Labels).is_err());
        assert!(parse_changes(&strings(&["cm", "a", "k=has space"]), Field::Labels).is_err());
        assert!(parse_changes(&strings(&["cm", "a", "k=has space"]), Field::Annotations).is_ok());
        assert!(parse_changes(&strings(&["cm", "a", "k=1", "k-"]), Field::Labels).is_err());
    }

    #[test]
    fn overwrite_rules() {
        let mut m = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let set = |v: &str| vec![Change::Set("app".into(), v.into())];
        assert!(!apply_changes(&mut m, &set("web"), false, Field::Labels).unwrap(), "same value");
        let err = apply_changes(&mut m, &set("db"), false, Field::Labels).unwrap_err();
        assert_eq!(err.to_string(), "'app' already has a value (web), and --overwrite is false");
        assert!(apply_changes(&mut m, &set("db"), true, Field::Labels).unwrap());
        assert_eq!(m["app"], "db");
        assert!(apply_changes(&mut m, &[Change::Remove("app".into())], false, Field::Labels).unwrap());
        assert!(m.is_empty());
    }
}
