//! Kubernetes' Priority admission cases (`admission_test.go`'s shapes), by hand.

use navarch_api::v1::{ObjectMeta, PodSpec, PriorityClass};

use super::*;

fn class(name: &str, value: i32, global_default: bool, policy: &str) -> PriorityClass {
    PriorityClass {
        metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }),
        value,
        global_default,
        preemption_policy: Some(policy.into()),
        ..Default::default()
    }
}

fn spec(class: &str, priority: Option<i32>, policy: Option<&str>) -> PodSpec {
    PodSpec {
        priority_class_name: class.into(),
        priority,
        preemption_policy: policy.map(str::to_string),
        ..Default::default()
    }
}

#[test]
fn named_class_gives_value_and_policy() {
    let high = class("high", 1000, false, "Never");
    let mut s = spec("high", None, None);
    admit_pod_spec(&mut s, Some(&high)).unwrap();
    assert_eq!((s.priority, s.preemption_policy.as_deref()), (Some(1000), Some("Never")));
    assert_eq!(s.priority_class_name, "high");
    // The same values given by the pod are accepted.
    let mut same = spec("high", Some(1000), Some("Never"));
    assert_eq!(admit_pod_spec(&mut same, Some(&high)), Ok(()));
}

#[test]
fn no_class_gets_the_global_default_or_zero() {
    let default = class("normal", 500, true, "PreemptLowerPriority");
    let mut s = spec("", None, None);
    admit_pod_spec(&mut s, Some(&default)).unwrap();
    assert_eq!((s.priority_class_name.as_str(), s.priority), ("normal", Some(500)));
    let mut none = spec("", None, None);
    admit_pod_spec(&mut none, None).unwrap();
    assert_eq!(
        (none.priority_class_name.as_str(), none.priority, none.preemption_policy.as_deref()),
        ("", Some(0), Some("PreemptLowerPriority"))
    );
}

#[test]
fn refusals_in_kubernetes_words() {
    assert_eq!(
        admit_pod_spec(&mut spec("nope", None, None), None).unwrap_err(),
        "no PriorityClass with name nope was found"
    );
    let high = class("high", 1000, false, "PreemptLowerPriority");
    assert_eq!(
        admit_pod_spec(&mut spec("high", Some(7), None), Some(&high)).unwrap_err(),
        "the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"
    );
    assert_eq!(
        admit_pod_spec(&mut spec("high", None, Some("Never")), Some(&high)).unwrap_err(),
        "the string value of PreemptionPolicy (Never) must not be provided in pod spec; priority admission controller computed PreemptLowerPriority from the given PriorityClass name"
    );
    // No class and no default: a priority other than 0 is refused too.
    assert!(admit_pod_spec(&mut spec("", Some(3), None), None).unwrap_err().contains("computed 0"));
}

#[test]
fn system_classes_resolve_in_any_namespace_and_cannot_be_deleted() {
    let critical = &navarch_api::priority::system_priority_classes()[0];
    let mut s = spec("system-node-critical", None, None);
    admit_pod_spec(&mut s, Some(critical)).unwrap();
    assert_eq!(s.priority, Some(2_000_001_000));
    let err = refuse_system_class_delete("PriorityClass", "system-node-critical").unwrap_err();
    assert_eq!(
        err.to_string(),
        ApiError::Forbidden(
            "priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is a system priority class and cannot be deleted"
                .into()
        )
        .to_string()
    );
    assert!(refuse_system_class_delete("PriorityClass", "high").is_ok());
    assert!(refuse_system_class_delete("StorageClass", "system-node-critical").is_ok());
}

/// Classes held in a list, standing in for etcd.
struct Classes(Vec<PriorityClass>);

impl PriorityClasses for Classes {
    async fn priority_class(&self, name: &str) -> Result<Option<PriorityClass>, ApiError> {
        Ok(self.0.iter().find(|c| class_name(c) == name).cloned())
    }
    async fn priority_classes(&self) -> Result<Vec<PriorityClass>, ApiError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn only_one_global_default() {
    let plugin = Priority::default();
    let existing =
        Classes(vec![class("normal", 500, true, "PreemptLowerPriority"), class("low", 1, false, "Never")]);
    let second = Object::PriorityClass(class("other", 10, true, "PreemptLowerPriority"));
    let err = plugin.check_class(WriteOperation::Create, &second, &existing).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        ApiError::Forbidden(
            "priorityclasses.scheduling.k8s.io \"other\" is forbidden: PriorityClass normal is already marked as default. Only one default can exist"
                .into()
        )
        .to_string()
    );
    // Marking another class default on update is refused; updating the default itself is not.
    let low = Object::PriorityClass(class("low", 1, true, "Never"));
    let update = WriteOperation::Update { subresource: "" };
    assert!(plugin.check_class(update, &low, &existing).await.is_err());
    let normal = Object::PriorityClass(class("normal", 500, true, "PreemptLowerPriority"));
    assert!(plugin.check_class(update, &normal, &existing).await.is_ok());
    // A class that is not the default, or no default yet: fine.
    let plain = Object::PriorityClass(class("x", 1, false, "Never"));
    assert!(plugin.check_class(WriteOperation::Create, &plain, &existing).await.is_ok());
    assert!(plugin.check_class(WriteOperation::Create, &second, &Classes(vec![])).await.is_ok());
}

#[test]
fn updates_keep_the_stored_priority() {
    let plugin = Priority::default();
    let pod = |s: PodSpec| Object::Pod(navarch_api::v1::Pod { spec: Some(s), ..Default::default() });
    let old = pod(spec("high", Some(1000), Some("Never")));
    let mut new = pod(spec("high", None, None));
    plugin.keep_on_update(&mut new, &old);
    assert_eq!(new, old);
}
