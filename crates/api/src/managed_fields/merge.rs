//! Merging an applied configuration into the live object, and removing paths from an object: the two
//! structural operations of server-side apply (structured-merge-diff's `Merge` and `RemoveItems`).
//!
//! Structs and maps merge key by key; list maps merge item by item on their keys and sets by value; leaves
//! (scalars, atomic values) are replaced by the configuration's. The order of a merged list follows the
//! configuration for the items it names, keeping the live object's other items where they were.

use serde_json::Value;

use super::ManagedFieldsError;
use super::fieldset::{FieldSet, PathElement};
use super::typed::{self, Ty};

/// `config` merged into `live` (`None` when the object does not exist yet).
pub fn merge(live: Option<&Value>, config: &Value, ty: Ty) -> Result<Value, ManagedFieldsError> {
    let mut path = Vec::new();
    merge_at(live, config, ty, &mut path)
}

fn merge_at(
    live: Option<&Value>,
    config: &Value,
    ty: Ty,
    path: &mut Vec<PathElement>,
) -> Result<Value, ManagedFieldsError> {
    match ty {
        Ty::Leaf => Ok(config.clone()),
        Ty::Struct(_) | Ty::Map(_) => {
            let Value::Object(c) = config else { return Ok(config.clone()) };
            let mut out = live.and_then(Value::as_object).cloned().unwrap_or_default();
            for (k, cv) in c {
                let cty = match ty {
                    Ty::Struct(msg) => typed::field_of(msg, k),
                    Ty::Map(elem) => Some(elem.ty()),
                    _ => unreachable!("matched above"),
                };
                let merged = match cty {
                    Some(cty) if !cv.is_null() => {
                        path.push(PathElement::field(k.as_str()));
                        let m = merge_at(out.get(k), cv, cty, path)?;
                        path.pop();
                        m
                    }
                    _ => cv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        Ty::List(kind, elem) => {
            let Value::Array(c) = config else { return Ok(config.clone()) };
            let l = live.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            let lhs = typed::index_items(kind, elem, l, path, true)?;
            let rhs = typed::index_items(kind, elem, c, path, false)?;
            let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
            for (pe, lv, rv) in merge_order(&lhs, &rhs) {
                let item = match rv {
                    Some(rv) => {
                        path.push(pe.clone());
                        let m = merge_at(lv, rv, elem.ty(), path)?;
                        path.pop();
                        m
                    }
                    None => lv.cloned().unwrap_or(Value::Null),
                };
                out.push(item);
            }
            Ok(Value::Array(out))
        }
    }
}

/// The order of a merged list, as structured-merge-diff gives it: the live items the configuration does not
/// name stay where they were; the items it names come in its order, each where the live list had the next
/// one of them; new items come when the walk reaches them in the configuration.
fn merge_order<'a>(
    lhs: &'a [(PathElement, &'a Value)],
    rhs: &'a [(PathElement, &'a Value)],
) -> Vec<(&'a PathElement, Option<&'a Value>, Option<&'a Value>)> {
    let find = |side: &'a [(PathElement, &'a Value)], pe: &PathElement| {
        side.iter().find(|(p, _)| p == pe).map(|(_, v)| *v)
    };
    // The configuration's items the live list also has, in the configuration's order.
    let mut shared = rhs.iter().map(|(pe, _)| pe).filter(|pe| find(lhs, pe).is_some());
    let mut next_shared = shared.next();
    let mut merged: Vec<&PathElement> = Vec::new();
    let mut out = Vec::with_capacity(lhs.len() + rhs.len());
    let (mut li, mut ri) = (0, 0);
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let pe = &lhs[li].0;
            if *pe == rhs[ri].0 {
                out.push((pe, Some(lhs[li].1), Some(rhs[ri].1)));
                merged.push(pe);
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if find(rhs, pe).is_some() && next_shared.is_some_and(|n| n != pe) {
                li += 1; // named by the configuration, but not next: it comes at its turn
                continue;
            }
        }
        if li < lhs.len() {
            let pe = &lhs[li].0;
            if find(rhs, pe).is_none() {
                out.push((pe, Some(lhs[li].1), None));
                li += 1;
                continue;
            }
            if merged.contains(&pe) {
                li += 1;
                continue;
            }
        }
        if ri < rhs.len() {
            let pe = &rhs[ri].0;
            out.push((pe, find(lhs, pe), Some(rhs[ri].1)));
            merged.push(pe);
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        } else {
            li += 1; // only named live items that were merged already are left
        }
    }
    out
}

/// Removes from `v` (of type `ty`) every member of `set`: a field, a map key, a list item, with all that is
/// below it.
pub fn remove(v: &mut Value, set: &FieldSet, ty: Ty) -> Result<(), ManagedFieldsError> {
    let mut path = Vec::new();
    remove_at(v, set, ty, &mut path)
}

fn remove_at(
    v: &mut Value,
    set: &FieldSet,
    ty: Ty,
    path: &mut Vec<PathElement>,
) -> Result<(), ManagedFieldsError> {
    match ty {
        Ty::Leaf => {}
        Ty::Struct(_) | Ty::Map(_) => {
            let Value::Object(m) = v else { return Ok(()) };
            for pe in set.members() {
                if let PathElement::Field(name) = pe {
                    m.remove(name);
                }
            }
            for (pe, below) in set.children() {
                let PathElement::Field(name) = pe else { continue };
                let cty = match ty {
                    Ty::Struct(msg) => typed::field_of(msg, name),
                    Ty::Map(elem) => Some(elem.ty()),
                    _ => unreachable!("matched above"),
                };
                if let (Some(cty), Some(child)) = (cty, m.get_mut(name)) {
                    path.push(pe.clone());
                    remove_at(child, below, cty, path)?;
                    path.pop();
                }
            }
        }
        Ty::List(kind, elem) => {
            let Value::Array(items) = v else { return Ok(()) };
            let mut kept = Vec::with_capacity(items.len());
            for (i, mut item) in std::mem::take(items).into_iter().enumerate() {
                let pe = typed::item_element(kind, elem, &item, i, path)?;
                if set.has_member(&pe) {
                    continue;
                }
                if let Some(below) = set.child(&pe) {
                    path.push(pe);
                    remove_at(&mut item, below, elem.ty(), path)?;
                    path.pop();
                }
                kept.push(item);
            }
            *items = kept;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::managed_fields::fieldset::Path;

    fn deployment() -> Ty {
        typed::root("Deployment").unwrap()
    }

    fn containers(v: &Value) -> Vec<String> {
        v["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn containers_merge_by_name_ports_by_port_and_protocol_env_by_name() {
        let live = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
             "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b", "image": "b:1"}
        ]}}}});
        let config = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:2", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
             "env": [{"name": "Y", "value": "3"}]}
        ]}}}});
        let m = merge(Some(&live), &config, deployment()).unwrap();
        assert_eq!(m["spec"]["replicas"], 1, "untouched fields stay");
        assert_eq!(containers(&m), ["a", "b"]);
        let a = &m["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(a["image"], "a:2");
        // The port without a protocol is the TCP one (the key's default): merged, its name kept.
        assert_eq!(
            a["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 53, "protocol": "UDP"}])
        );
        assert_eq!(a["env"], json!([{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}]));
    }

    #[test]
    fn merged_lists_follow_the_configuration_order() {
        let live = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a"}, {"name": "x"}, {"name": "b"}, {"name": "c"}
        ]}}}});
        let config = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c"}, {"name": "new"}, {"name": "a"}
        ]}}}});
        let m = merge(Some(&live), &config, deployment()).unwrap();
        assert_eq!(containers(&m), ["x", "b", "c", "new", "a"]);
        let m = merge(None, &config, deployment()).unwrap();
        assert_eq!(containers(&m), ["c", "new", "a"]);
    }

    #[test]
    fn sets_union_and_atomics_replace() {
        let live = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"selector": {"matchLabels": {"x": "1", "y": "2"}}}});
        let config = json!({"metadata": {"finalizers": ["c", "a"]}, "spec": {"selector": {"matchLabels": {"x": "1"}}}});
        let m = merge(Some(&live), &config, deployment()).unwrap();
        assert_eq!(m["metadata"]["finalizers"], json!(["c", "a", "b"]));
        assert_eq!(m["spec"]["selector"], json!({"matchLabels": {"x": "1"}}));
    }

    #[test]
    fn remove_takes_fields_items_and_what_is_below() {
        let mut v = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}, {"name": "F"}]}, {"name": "b"}
        ]}}}});
        let web = PathElement::Key(vec![("name".into(), super::super::fieldset::Scalar::String("a".into()))]);
        let e = PathElement::Key(vec![("name".into(), super::super::fieldset::Scalar::String("E".into()))]);
        let b = PathElement::Key(vec![("name".into(), super::super::fieldset::Scalar::String("b".into()))]);
        let tmpl = Path::fields(&["spec", "template", "spec", "containers"]).0;
        let mut set = FieldSet::from_paths(&[
            Path::fields(&["spec", "replicas"]),
            Path::fields(&["metadata", "labels", "b"]),
        ]);
        set.insert(&[tmpl.clone(), vec![b]].concat());
        set.insert(&[tmpl.clone(), vec![web.clone(), PathElement::field("env"), e]].concat());
        remove(&mut v, &set, deployment()).unwrap();
        assert_eq!(
            v,
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"template": {"spec": {"containers": [
                {"name": "a", "image": "x", "env": [{"name": "F"}]}
            ]}}}})
        );
    }
}
