//! Tests of the operations: update recording, apply (merge, prune, conflicts, force), the managedFields
//! wire form, the cap on update managers and the client-side-apply allowances.

use serde_json::{Value, json};

use super::*;
use crate::Object;

const NOW: &str = "2026-01-02T03:04:05Z";
const LATER: &str = "2026-01-02T03:05:00Z";

fn root() -> typed::Ty {
    typed::root("Deployment").unwrap()
}

fn main_scope() -> Scope<'static> {
    Scope { subresource: "", has_status: true }
}

fn paths(s: &FieldSet) -> Vec<String> {
    s.paths().iter().map(ToString::to_string).collect()
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "web", "image": image, "ports": [{"containerPort": 80}],
                 "env": [{"name": "MODE", "value": "prod"}]}]}}}
    })
}

fn apply_as(
    managed: &mut Managed,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ManagedFieldsError> {
    apply(
        managed,
        &ApplyRequest {
            live,
            config,
            root: root(),
            scope: main_scope(),
            manager,
            api_version: "apps/v1",
            force,
            allowed: None,
            now: NOW,
        },
    )
}

fn owned(managed: &Managed, id: &ManagerId) -> Vec<String> {
    managed.get(id).map(|e| paths(&e.set)).unwrap_or_default()
}

#[test]
fn apply_creates_and_owns_exactly_the_configuration() {
    let mut m = Managed::default();
    let config = deployment(2, "nginx:1");
    let merged = apply_as(&mut m, None, &config, "kubectl", false).unwrap();
    assert_eq!(merged, config);
    let id = ManagerId::apply("kubectl", "");
    let own = owned(&m, &id);
    assert!(own.contains(&".spec.replicas".into()), "{own:#?}");
    assert!(own.contains(&".metadata.labels.app".into()));
    assert!(own.contains(&r#".spec.template.spec.containers[name="web"].env[name="MODE"].value"#.into()));
    assert!(!own.iter().any(|p| p.starts_with(".metadata.name") || p == ".apiVersion" || p == ".kind"));
    let wire = m.encode();
    assert_eq!(wire.len(), 1);
    assert_eq!((wire[0].manager.as_str(), wire[0].operation.as_str()), ("kubectl", "Apply"));
    assert_eq!(wire[0].api_version, "apps/v1");
    assert_eq!(wire[0].fields_type, "FieldsV1");
    let fields: Value = serde_json::from_slice(&wire[0].fields_v1.as_ref().unwrap().raw).unwrap();
    assert_eq!(fields["f:spec"]["f:selector"], json!({}), "an atomic selector is one field");
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:ports"]
            ["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]
            .get(".")
            .is_some(),
        "{fields}"
    );
    assert_eq!(Managed::decode(&wire).unwrap(), m, "encode and decode agree");
}

#[test]
fn reapplying_the_same_configuration_changes_nothing() {
    let mut m = Managed::default();
    let config = deployment(2, "nginx:1");
    let live = apply_as(&mut m, None, &config, "kubectl", false).unwrap();
    let before = m.clone();
    let again = apply_as(&mut m, Some(&live), &config, "kubectl", false).unwrap();
    assert_eq!(again, live);
    assert_eq!(m, before);
}

#[test]
fn fields_the_applier_drops_are_removed_unless_someone_else_owns_them() {
    let mut m = Managed::default();
    let live = apply_as(&mut m, None, &deployment(2, "nginx:1"), "kubectl", false).unwrap();
    // Another manager takes the app label (it changed it).
    let mut edited = live.clone();
    edited["metadata"]["labels"]["app"] = json!("web2");
    let editor = ManagerId::update("editor", "apps/v1", "");
    update(&mut m, Some(&live), &edited, root(), &main_scope(), &editor, NOW).unwrap();
    assert_eq!(owned(&m, &editor), [".metadata.labels.app"]);
    // The new configuration drops replicas, the labels and the env list.
    let mut config = deployment(2, "nginx:1");
    config["spec"].as_object_mut().unwrap().remove("replicas");
    config["metadata"].as_object_mut().unwrap().remove("labels");
    config["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("env");
    let merged = apply_as(&mut m, Some(&edited), &config, "kubectl", false).unwrap();
    assert!(merged["spec"].get("replicas").is_none(), "replicas was only the applier's: {merged}");
    assert_eq!(merged["metadata"]["labels"], json!({"app": "web2"}), "the editor's label stays");
    let c = &merged["spec"]["template"]["spec"]["containers"][0];
    assert!(c.get("env").is_none(), "{c}");
    assert_eq!(c["image"], "nginx:1");
    assert_eq!(c["ports"], json!([{"containerPort": 80}]));
    let own = owned(&m, &ManagerId::apply("kubectl", ""));
    assert!(!own.contains(&".spec.replicas".into()));
    assert!(!own.iter().any(|p| p.contains("env")));
    assert_eq!(owned(&m, &editor), [".metadata.labels.app"]);
}

#[test]
fn conflicts_name_the_manager_and_field_and_force_takes_them() {
    let mut m = Managed::default();
    let live = apply_as(&mut m, None, &deployment(2, "nginx:1"), "kubectl", false).unwrap();
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    let navctl = ManagerId::update("navctl", "apps/v1", "");
    update(&mut m, Some(&live), &scaled, root(), &main_scope(), &navctl, NOW).unwrap();
    assert_eq!(owned(&m, &navctl), [".spec.replicas"]);
    assert!(!owned(&m, &ManagerId::apply("kubectl", "")).contains(&".spec.replicas".into()));

    let config = deployment(3, "nginx:2");
    let before = m.clone();
    let err = apply_as(&mut m, Some(&scaled), &config, "kubectl", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "navctl" using apps/v1: .spec.replicas"#
    );
    let ManagedFieldsError::Conflicts(c) = &err else { panic!("{err:?}") };
    assert_eq!(c.0[0].manager.to_string(), r#""navctl" using apps/v1"#);
    assert_eq!(m, before, "a failed apply changes nothing");

    // Applying the value the other manager set is no conflict: both own it.
    let shared = apply_as(&mut m, Some(&scaled), &deployment(5, "nginx:1"), "kubectl", false).unwrap();
    assert_eq!(shared["spec"]["replicas"], 5);
    assert_eq!(owned(&m, &navctl), [".spec.replicas"]);

    let mut m = before;
    let forced = apply_as(&mut m, Some(&scaled), &config, "kubectl", true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    assert!(m.get(&navctl).is_none(), "navctl owned nothing else: its entry is gone");
    assert!(owned(&m, &ManagerId::apply("kubectl", "")).contains(&".spec.replicas".into()));
}

#[test]
fn several_conflicts_are_listed_by_manager() {
    let mut m = Managed::default();
    let live = apply_as(&mut m, None, &deployment(2, "nginx:1"), "a", false).unwrap();
    let err = apply_as(&mut m, Some(&live), &deployment(3, "nginx:2"), "b", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
}

#[test]
fn status_is_not_owned_through_the_object_and_only_status_through_status() {
    let mut m = Managed::default();
    let mut config = deployment(1, "x");
    config["status"] = json!({"replicas": 1});
    apply_as(&mut m, None, &config, "kubectl", false).unwrap();
    assert!(!owned(&m, &ManagerId::apply("kubectl", "")).iter().any(|p| p.starts_with(".status")));

    let old = deployment(1, "x");
    let mut new = old.clone();
    new["status"] = json!({"replicas": 1, "readyReplicas": 1});
    new["metadata"]["labels"]["extra"] = json!("y");
    let scope = Scope { subresource: "status", has_status: true };
    let id = ManagerId::update("controller", "apps/v1", "status");
    update(&mut m, Some(&old), &new, root(), &scope, &id, NOW).unwrap();
    assert_eq!(owned(&m, &id), [".status.readyReplicas", ".status.replicas"]);
    assert_eq!(id.to_string(), r#""controller" with subresource "status" using apps/v1"#);
}

#[test]
fn an_approval_owns_the_conditions_it_wrote() {
    let root = typed::root("CertificateSigningRequest").unwrap();
    let old = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "c"}, "spec": {"signerName": "example.com/a"}});
    let mut new = old.clone();
    new["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
    let mut m = Managed::default();
    let scope = Scope { subresource: "approval", has_status: true };
    let id = ManagerId::update("kubectl-certificate", "certificates.k8s.io/v1", "approval");
    update(&mut m, Some(&old), &new, root, &scope, &id, NOW).unwrap();
    let own = owned(&m, &id);
    assert!(own.iter().any(|p| p.starts_with(".status.conditions")), "{own:?}");
    assert_eq!(
        id.to_string(),
        r#""kubectl-certificate" with subresource "approval" using certificates.k8s.io/v1"#
    );
}

#[test]
fn updates_move_changed_fields_and_keep_their_time_when_nothing_changed() {
    let mut m = Managed::default();
    let created = deployment(1, "a");
    let creator = ManagerId::update("kubectl-create", "apps/v1", "");
    update(&mut m, None, &created, root(), &main_scope(), &creator, NOW).unwrap();
    let own = owned(&m, &creator);
    // Creating owns labels and the new list items as wholes, as Kubernetes' comparison with an empty object.
    assert!(own.contains(&".metadata.labels".into()), "{own:#?}");
    assert!(own.contains(&r#".spec.template.spec.containers[name="web"]"#.into()));
    assert!(!own.contains(&".spec.template.spec.containers".into()), "containers is always there in Go");

    let before = m.clone();
    update(
        &mut m,
        Some(&created),
        &created,
        root(),
        &main_scope(),
        &ManagerId::update("x", "apps/v1", ""),
        LATER,
    )
    .unwrap();
    assert_eq!(m, before, "no change, no entry, no new time");

    let mut changed = created.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("b");
    let setter = ManagerId::update("kubectl-set", "apps/v1", "");
    update(&mut m, Some(&created), &changed, root(), &main_scope(), &setter, LATER).unwrap();
    assert_eq!(owned(&m, &setter), [r#".spec.template.spec.containers[name="web"].image"#]);
    assert_eq!(m.get(&setter).unwrap().time, LATER);
    assert_eq!(m.get(&creator).unwrap().time, NOW);
    assert!(!owned(&m, &creator).contains(&r#".spec.template.spec.containers[name="web"].image"#.into()));
    // Encoded: appliers first, then updaters by time.
    let wire = m.encode();
    assert_eq!(
        wire.iter().map(|e| e.manager.as_str()).collect::<Vec<_>>(),
        ["kubectl-create", "kubectl-set"]
    );
}

#[test]
fn an_object_nobody_tracked_gets_a_before_first_apply_owner() {
    let mut m = Managed::default();
    let live = deployment(2, "a");
    let err = apply_as(&mut m, Some(&live), &deployment(4, "a"), "kubectl", false).unwrap_err();
    assert!(
        err.to_string().contains(r#"conflict with "before-first-apply" using apps/v1: .spec.replicas"#),
        "{err}"
    );
    let merged = apply_as(&mut m, Some(&live), &deployment(2, "a"), "kubectl", false).unwrap();
    assert_eq!(merged, live);
    assert!(m.get(&ManagerId::update(BEFORE_FIRST_APPLY, "apps/v1", "")).is_some());
}

#[test]
fn client_side_apply_fields_can_be_taken_over_by_kubectl() {
    let mut live = deployment(2, "a");
    let annotation = serde_json::to_string(&deployment(2, "a")).unwrap();
    live["metadata"]["annotations"] = json!({ LAST_APPLIED_ANNOTATION: annotation });
    let mut m = Managed::default();
    update(
        &mut m,
        None,
        &live,
        root(),
        &main_scope(),
        &ManagerId::update("kubectl-client-side-apply", "apps/v1", ""),
        NOW,
    )
    .unwrap();
    let allowed = last_applied_allowed(&live, root(), "apps/v1").unwrap();
    assert!(allowed.has(&Path::fields(&["spec", "replicas"]).0));
    let config = deployment(3, "a");
    let req = ApplyRequest {
        live: Some(&live),
        config: &config,
        root: root(),
        scope: main_scope(),
        manager: "kubectl",
        api_version: "apps/v1",
        force: false,
        allowed: Some(&allowed),
        now: NOW,
    };
    let merged = apply(&mut m, &req).unwrap();
    assert_eq!(merged["spec"]["replicas"], 3);
    let merged = with_last_applied(merged, &config);
    let text = merged["metadata"]["annotations"][LAST_APPLIED_ANNOTATION].as_str().unwrap();
    let written: Value = serde_json::from_str(text).unwrap();
    assert_eq!(written, config);
    // Without the allowance the same apply conflicts.
    let mut m2 = Managed::default();
    update(
        &mut m2,
        None,
        &live,
        root(),
        &main_scope(),
        &ManagerId::update("kubectl-client-side-apply", "apps/v1", ""),
        NOW,
    )
    .unwrap();
    assert!(apply_as(&mut m2, Some(&live), &config, "kubectl", false).is_err());
}

#[test]
fn decode_checks_entries_and_reset_is_one_empty_entry() {
    use crate::v1::ManagedFieldsEntry;
    let good = ManagedFieldsEntry {
        manager: "m".into(),
        operation: "Update".into(),
        api_version: "v1".into(),
        fields_type: "FieldsV1".into(),
        fields_v1: Some(crate::v1::FieldsV1::from_json(r#"{"f:data":{"f:a":{}}}"#)),
        ..Default::default()
    };
    assert_eq!(Managed::decode(std::slice::from_ref(&good)).unwrap().entries().len(), 1);
    let bad = ManagedFieldsEntry { operation: "Replace".into(), ..good.clone() };
    assert_eq!(
        Managed::decode(&[good.clone(), bad]).unwrap_err().to_string(),
        "metadata.managedFields[1].operation: must be `Apply` or `Update`"
    );
    let bad_time = ManagedFieldsEntry { time: "yesterday".into(), ..good.clone() };
    assert_eq!(
        Managed::decode(&[bad_time]).unwrap_err().to_string(),
        "metadata.managedFields[0].time: must be an RFC 3339 time"
    );
    let no_version = ManagedFieldsEntry { api_version: String::new(), ..good.clone() };
    assert!(Managed::decode(&[no_version]).is_err());
    assert!(is_reset(&[ManagedFieldsEntry::default()]));
    assert!(!is_reset(&[good]));
    assert!(!is_reset(&[]));
}

#[test]
fn update_managers_are_capped_into_ancient_changes() {
    let mut m = Managed::default();
    for i in 0..12 {
        let e = m.entry(&ManagerId::update(&format!("m{i:02}"), "v1", ""), "v1");
        e.set_mut().insert(&Path::fields(&["data", &format!("k{i}")]).0);
        e.time = format!("2026-01-01T00:00:{i:02}Z");
    }
    m.cap_update_managers(MAX_UPDATE_MANAGERS);
    assert_eq!(m.entries().len(), 10);
    let ancient = m.get(&ManagerId::update("ancient-changes", "v1", "")).unwrap();
    assert_eq!(paths(&ancient.set), [".data.k0", ".data.k1", ".data.k2"]);
    assert_eq!(ancient.time, "2026-01-01T00:00:02Z");
}

#[test]
fn record_update_on_objects() {
    let v = deployment(1, "a");
    let mut created = Object::from_value("Deployment", serde_yaml::to_value(&v).unwrap()).unwrap();
    let w = UpdateWriter { manager: "kubectl-create", subresource: "", reset: false };
    record_update(None, &mut created, &w, NOW);
    assert_eq!(created.meta().managed_fields.len(), 1);
    assert_eq!(created.meta().managed_fields[0].time, NOW);

    // Same object, sent back with or without the list: unchanged, no work.
    let mut same = created.clone();
    same.meta_mut().managed_fields.clear();
    record_update(Some(&created), &mut same, &UpdateWriter { manager: "other", ..w }, LATER);
    assert_eq!(same, created);

    // A reset empties them; an untracked object stays untracked.
    let mut reset = created.clone();
    record_update(Some(&created), &mut reset, &UpdateWriter { reset: true, ..w }, LATER);
    assert!(reset.meta().managed_fields.is_empty());
    let mut changed = reset.clone();
    if let Object::Deployment(d) = &mut changed {
        d.spec.as_mut().unwrap().replicas = Some(7);
    }
    record_update(Some(&reset), &mut changed, &w, LATER);
    assert!(changed.meta().managed_fields.is_empty());

    // A different valid list replaces; a status write ignores the request's list.
    let mut replaced = created.clone();
    replaced.meta_mut().managed_fields[0].manager = "renamed".into();
    record_update(Some(&created), &mut replaced, &w, LATER);
    assert_eq!(replaced.meta().managed_fields[0].manager, "renamed");
    let mut status = replaced.clone();
    record_update(Some(&created), &mut status, &UpdateWriter { subresource: "status", ..w }, LATER);
    assert_eq!(status.meta().managed_fields, created.meta().managed_fields);
}

#[test]
fn managers_from_user_agents_and_their_checks() {
    assert_eq!(manager_from_user_agent("kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07"), "kubectl");
    assert_eq!(manager_from_user_agent("OpenAPI-Generator/32.0.1/python"), "OpenAPI-Generator");
    assert_eq!(manager_from_user_agent("navctl/0.1.0 tonic/0.14"), "navctl");
    assert_eq!(manager_from_user_agent(""), "");
    assert_eq!(manager_from_user_agent(&"x".repeat(200)).len(), MAX_MANAGER_LENGTH);
    assert!(check_manager("kubectl").is_ok());
    assert_eq!(check_manager(&"x".repeat(129)).unwrap_err(), "Too long: may not be more than 128 bytes");
    assert_eq!(
        check_manager("a\u{7}b").unwrap_err(),
        r#"Invalid value: "a\u{7}b": invalid character U+0007 (at position 1)"#
    );
}
