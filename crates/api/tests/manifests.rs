//! Real-shaped Kubernetes manifests load, and survive YAML → typed → protobuf → YAML with every field kept.

use navarch_api::{Object, manifest};
use serde_json::Value;

/// Drops what Kubernetes itself drops on output (nulls, empty maps and lists) and compares scalars by
/// their text (a quantity written `cpu: 1` comes back as `"1"`).
fn normalize(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let m: serde_json::Map<String, Value> =
                m.iter().filter_map(|(k, v)| normalize(v).map(|v| (k.clone(), v))).collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(a) => {
            let a: Vec<Value> = a.iter().map(|v| normalize(v).unwrap_or(Value::Null)).collect();
            (!a.is_empty()).then_some(Value::Array(a))
        }
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::Bool(false) => None,
        Value::String(s) if s.is_empty() => None,
        other => Some(other.clone()),
    }
}

fn round_trip(file: &str) -> usize {
    let text =
        std::fs::read_to_string(format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let objects = manifest::parse(&text, file).unwrap_or_else(|errs| {
        panic!("{}", errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))
    });
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(objects.len(), docs.len());
    for (obj, doc) in objects.iter().zip(&docs) {
        let decoded = Object::decode(obj.kind(), &obj.encode()).unwrap();
        let out = serde_json::to_value(&decoded).unwrap();
        let input = serde_json::to_value(doc).unwrap();
        assert_eq!(
            normalize(&out),
            normalize(&input),
            "{} {} did not round-trip",
            obj.kind(),
            obj.meta().name
        );
    }
    objects.len()
}

#[test]
fn deployment_service_cronjob_round_trip() {
    assert_eq!(round_trip("app.yaml"), 3);
}

#[test]
fn every_other_kind_round_trips() {
    assert_eq!(round_trip("misc.yaml"), 13);
}

#[test]
fn int_or_string_and_quantities_keep_their_form() {
    let objs = manifest::parse(
        &std::fs::read_to_string(format!("{}/tests/fixtures/app.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap(),
        "app.yaml",
    )
    .unwrap();
    let yaml = serde_yaml::to_string(&objs[1]).unwrap();
    assert!(yaml.contains("targetPort: http"), "{yaml}");
    assert!(yaml.contains("nodePort: 30080"), "{yaml}");
    let yaml = serde_yaml::to_string(&objs[0]).unwrap();
    assert!(yaml.contains("maxSurge: 25%"), "{yaml}");
    assert!(yaml.contains("maxUnavailable: 0"), "{yaml}");
    assert!(yaml.contains("memory: 1.5Gi"), "{yaml}");
}

#[test]
fn octal_file_modes_read_as_yaml_1_1_does() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i}]\n  volumes:\n  - name: s\n    secret: {secretName: s, defaultMode: 0644, items: [{key: k, path: p, mode: 0400}]}\n";
    let objs = manifest::parse(text, "t").unwrap();
    let Object::Pod(pod) = &objs[0] else { panic!() };
    let secret = pod.spec.as_ref().unwrap().volumes[0].secret.as_ref().unwrap();
    assert_eq!(secret.default_mode, Some(0o644));
    assert_eq!(secret.items[0].mode, Some(0o400));
    let bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  volumes:\n  - name: s\n    secret: {defaultMode: rw}\n";
    let msg = manifest::parse(bad, "t").unwrap_err()[0].to_string();
    assert!(msg.contains("spec.volumes[0].secret.defaultMode: invalid type: string \"rw\""), "{msg}");
}
