//! LimitRanger with hand-computed cases: defaults and the annotation, each bound per Container and per
//! Pod (sums, init containers and sidecars), the ratio, claims, and the plugin's lookup and scope.

use std::sync::atomic::{AtomicUsize, Ordering};

use navarch_api::Object;
use navarch_api::v1::{LimitRange, Pod};

use super::constraints::{self, ANNOTATION};
use super::*;

fn object(yaml: &str) -> Object {
    navarch_api::manifest::parse(yaml, "t.yaml").unwrap().remove(0)
}

/// A LimitRange of `items` (YAML list items), defaulted as the api-server stores it.
fn limit_range(items: &str) -> LimitRange {
    let yaml = format!(
        "apiVersion: v1\nkind: LimitRange\nmetadata: {{name: lr, namespace: ns}}\nspec:\n  limits:\n{items}"
    );
    let mut obj = object(&yaml);
    crate::validation::apply_defaults(&mut obj);
    match obj {
        Object::LimitRange(lr) => lr,
        _ => unreachable!(),
    }
}

/// A pod of `containers` (YAML list items) and `init` ones.
fn pod(containers: &str, init: &str) -> Pod {
    let init = if init.is_empty() { String::new() } else { format!("  initContainers:\n{init}") };
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: ns}}\nspec:\n  containers:\n{containers}{init}"
    );
    match object(&yaml) {
        Object::Pod(p) => p,
        _ => unreachable!(),
    }
}

fn resources(p: &Pod, i: usize) -> (String, String) {
    let c = &p.spec.as_ref().unwrap().containers[i];
    let r = c.resources.clone().unwrap_or_default();
    let show = |m: &std::collections::BTreeMap<String, navarch_api::v1::Quantity>| {
        m.iter().map(|(k, v)| format!("{k}={}", v.string)).collect::<Vec<_>>().join(",")
    };
    (show(&r.requests), show(&r.limits))
}

const DEFAULTS: &str = "  - type: Container\n    default: {cpu: 500m, memory: 512Mi}\n    defaultRequest: {cpu: 250m, memory: 256Mi}\n";

#[test]
fn defaults_fill_what_containers_lack_and_annotate() {
    let lr = limit_range(DEFAULTS);
    let mut p = pod(
        "  - {name: bare, image: x}\n  - {name: some, image: x, resources: {limits: {cpu: '1'}, requests: {cpu: '1'}}}\n",
        "  - {name: setup, image: x}\n",
    );
    constraints::default_pod(&lr, &mut p);
    assert_eq!(resources(&p, 0), ("cpu=250m,memory=256Mi".into(), "cpu=500m,memory=512Mi".into()));
    assert_eq!(resources(&p, 1), ("cpu=1,memory=256Mi".into(), "cpu=1,memory=512Mi".into()));
    let init = p.spec.as_ref().unwrap().init_containers[0].resources.clone().unwrap();
    assert_eq!(init.limits["memory"].string, "512Mi");
    assert_eq!(
        p.metadata.as_ref().unwrap().annotations[ANNOTATION],
        "LimitRanger plugin set: cpu, memory request for container bare; cpu, memory limit for container bare; \
         memory request for container some; memory limit for container some; \
         cpu, memory request for init container setup; cpu, memory limit for init container setup"
    );
}

#[test]
fn nothing_to_set_leaves_no_annotation_and_defaults_are_canonical() {
    let lr =
        limit_range("  - type: Container\n    default: {cpu: 1000m}\n    defaultRequest: {cpu: '0.5'}\n");
    let mut p = pod("  - {name: a, image: x, resources: {limits: {cpu: '2'}, requests: {cpu: '1'}}}\n", "");
    constraints::default_pod(&lr, &mut p);
    assert!(p.metadata.as_ref().unwrap().annotations.is_empty());
    let mut p = pod("  - {name: a, image: x}\n", "");
    constraints::default_pod(&lr, &mut p);
    assert_eq!(resources(&p, 0), ("cpu=500m".into(), "cpu=1".into()));
}

#[test]
fn container_bounds_with_kubernetes_messages() {
    let lr = limit_range(
        "  - type: Container\n    max: {cpu: '1', memory: 1Gi}\n    min: {cpu: 100m, memory: 64Mi}\n",
    );
    let check = |c: &str| constraints::check_pod(&lr, &pod(c, ""));
    let ok = "  - {name: a, image: x, resources: {limits: {cpu: '1', memory: 1Gi}, requests: {cpu: 100m, memory: 64Mi}}}\n";
    assert_eq!(check(ok), Ok(()));
    assert_eq!(
        check(
            "  - {name: a, image: x, resources: {limits: {cpu: '2', memory: 1Gi}, requests: {cpu: 500m, memory: 64Mi}}}\n"
        ),
        Err("maximum cpu usage per Container is 1, but limit is 2".into())
    );
    assert_eq!(
        check(
            "  - {name: a, image: x, resources: {limits: {cpu: '1', memory: 1Gi}, requests: {cpu: 50m, memory: 64Mi}}}\n"
        ),
        Err("minimum cpu usage per Container is 100m, but request is 50m".into())
    );
    // Requests and limits of memory both below min: the request is reported (checked first).
    assert_eq!(
        check(
            "  - {name: a, image: x, resources: {limits: {cpu: '1', memory: 32Mi}, requests: {cpu: 100m, memory: 16Mi}}}\n"
        ),
        Err("minimum memory usage per Container is 64Mi, but request is 16Mi".into())
    );
    // Nothing given: every bound complains, in one bracketed list.
    assert_eq!(
        check("  - {name: a, image: x}\n"),
        Err("[minimum cpu usage per Container is 100m.  No request is specified, \
             minimum memory usage per Container is 64Mi.  No request is specified, \
             maximum cpu usage per Container is 1.  No limit is specified, \
             maximum memory usage per Container is 1Gi.  No limit is specified]"
            .into())
    );
}

#[test]
fn ratio_per_container() {
    let lr = limit_range("  - type: Container\n    maxLimitRequestRatio: {cpu: '2'}\n");
    let check = |c: &str| constraints::check_pod(&lr, &pod(c, ""));
    assert_eq!(
        check("  - {name: a, image: x, resources: {limits: {cpu: '1'}, requests: {cpu: 500m}}}\n"),
        Ok(())
    );
    assert_eq!(
        check("  - {name: a, image: x, resources: {limits: {cpu: '1'}, requests: {cpu: 250m}}}\n"),
        Err("cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000".into())
    );
    assert_eq!(
        check("  - {name: a, image: x, resources: {limits: {cpu: '1'}}}\n"),
        Err("cpu max limit to request ratio per Container is 2, but no request is specified or request is 0"
            .into())
    );
    assert_eq!(
        check("  - {name: a, image: x, resources: {requests: {cpu: '1'}}}\n"),
        Err("cpu max limit to request ratio per Container is 2, but no limit is specified or limit is 0"
            .into())
    );
    // 1500m over 1 is 1.5: allowed by a ratio of 1.5, refused by 1.4 (thousandths compared).
    let lr = limit_range("  - type: Container\n    maxLimitRequestRatio: {cpu: 1400m}\n");
    assert_eq!(
        constraints::check_pod(
            &lr,
            &pod("  - {name: a, image: x, resources: {limits: {cpu: 1500m}, requests: {cpu: '1'}}}\n", "")
        ),
        Err("cpu max limit to request ratio per Container is 1400m, but provided ratio is 1.500000".into())
    );
}

#[test]
fn pod_bounds_use_sums_and_init_containers() {
    let lr = limit_range("  - type: Pod\n    max: {memory: 1Gi}\n    min: {cpu: 300m}\n");
    let c = |name: &str, cpu: &str, mem: &str| {
        format!(
            "  - {{name: {name}, image: x, resources: {{limits: {{cpu: '{cpu}', memory: {mem}}}, requests: {{cpu: '{cpu}', memory: {mem}}}}}}}\n"
        )
    };
    // 512Mi + 512Mi = 1Gi fits; 200m + 200m = 400m >= 300m.
    let two = format!("{}{}", c("a", "200m", "512Mi"), c("b", "200m", "512Mi"));
    assert_eq!(constraints::check_pod(&lr, &pod(&two, "")), Ok(()));
    // 768Mi + 512Mi = 1280Mi > 1Gi.
    let big = format!("{}{}", c("a", "200m", "768Mi"), c("b", "200m", "512Mi"));
    assert_eq!(
        constraints::check_pod(&lr, &pod(&big, "")),
        Err("maximum memory usage per Pod is 1Gi, but limit is 1280Mi".into())
    );
    // An init container larger than the sum sets the pod's value: 2Gi > 1Gi.
    assert_eq!(
        constraints::check_pod(&lr, &pod(&two, &c("init", "100m", "2Gi"))),
        Err("maximum memory usage per Pod is 1Gi, but limit is 2Gi".into())
    );
    // A sidecar (restartPolicy Always) adds to the sum: 1Gi + 256Mi.
    let sidecar = "  - {name: side, image: x, restartPolicy: Always, resources: {limits: {cpu: 100m, memory: 256Mi}, requests: {cpu: 100m, memory: 256Mi}}}\n";
    assert_eq!(
        constraints::check_pod(&lr, &pod(&two, sidecar)),
        Err("maximum memory usage per Pod is 1Gi, but limit is 1280Mi".into())
    );
    // A single small container: the pod's cpu request 100m < 300m.
    assert_eq!(
        constraints::check_pod(&lr, &pod(&c("a", "100m", "64Mi"), "")),
        Err("minimum cpu usage per Pod is 300m, but request is 100m".into())
    );
}

#[test]
fn init_containers_are_checked_per_container() {
    let lr = limit_range("  - type: Container\n    max: {cpu: '1'}\n");
    let ok = "  - {name: a, image: x, resources: {limits: {cpu: '1'}}}\n";
    let init = "  - {name: i, image: x, resources: {limits: {cpu: '3'}}}\n";
    assert_eq!(
        constraints::check_pod(&lr, &pod(ok, init)),
        Err("maximum cpu usage per Container is 1, but limit is 3".into())
    );
}

#[test]
fn claims_bounded_by_requested_storage() {
    let lr =
        limit_range("  - type: PersistentVolumeClaim\n    min: {storage: 1Gi}\n    max: {storage: 10Gi}\n");
    let claim = |size: &str| {
        let yaml = format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: c, namespace: ns}}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: {size}}}}}\n"
        );
        match object(&yaml) {
            Object::PersistentVolumeClaim(c) => c,
            _ => unreachable!(),
        }
    };
    assert_eq!(constraints::check_claim(&lr, &claim("5Gi")), Ok(()));
    assert_eq!(
        constraints::check_claim(&lr, &claim("500Mi")),
        Err("minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi".into())
    );
    assert_eq!(
        constraints::check_claim(&lr, &claim("20Gi")),
        Err("maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi".into())
    );
    // Container items do not apply to claims.
    let lr = limit_range("  - type: Container\n    max: {cpu: '1'}\n");
    assert_eq!(constraints::check_claim(&lr, &claim("20Gi")), Ok(()));
}

/// A storage of LimitRanges that counts its reads.
#[derive(Default)]
struct Source {
    ranges: Vec<LimitRange>,
    reads: AtomicUsize,
}

impl LimitRanges for Source {
    async fn limit_ranges(&self, namespace: &str) -> Result<Vec<LimitRange>, ApiError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .ranges
            .iter()
            .filter(|lr| lr.metadata.as_ref().unwrap().namespace == namespace)
            .cloned()
            .collect())
    }
}

#[tokio::test]
async fn plugin_defaults_then_refuses_with_forbidden() {
    let source = Source {
        ranges: vec![limit_range("  - type: Container\n    max: {cpu: '1'}\n")],
        ..Default::default()
    };
    let ranger = LimitRanger::default();
    let mut p = Object::Pod(pod("  - {name: a, image: x}\n", ""));
    ranger.default_pod(&mut p, &source).await.unwrap();
    let Object::Pod(defaulted) = &p else { unreachable!() };
    // The default limit from max, the default request from the default limit.
    assert_eq!(resources(defaulted, 0), ("cpu=1".into(), "cpu=1".into()));
    assert!(ranger.check(WriteOperation::Create, &p, None, &source).await.is_ok());
    let big = Object::Pod(pod(
        "  - {name: a, image: x, resources: {limits: {cpu: '2'}, requests: {cpu: '1'}}}\n",
        "",
    ));
    assert_eq!(
        ranger.check(WriteOperation::Create, &big, None, &source).await.unwrap_err().to_string(),
        "pods \"p\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
    );
    // Pod updates and status writes are not checked.
    let update = WriteOperation::Update { subresource: "" };
    assert!(ranger.check(update, &big, Some(&big), &source).await.is_ok());
}

#[tokio::test]
async fn claims_are_checked_on_update_unless_being_deleted() {
    let source = Source {
        ranges: vec![limit_range("  - type: PersistentVolumeClaim\n    max: {storage: 1Gi}\n")],
        ..Default::default()
    };
    let ranger = LimitRanger::default();
    let claim = object(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c, namespace: ns}\nspec:\n  resources: {requests: {storage: 2Gi}}\n",
    );
    let update = WriteOperation::Update { subresource: "" };
    let err = ranger.check(update, &claim, Some(&claim), &source).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "persistentvolumeclaims \"c\" is forbidden: maximum storage usage per PersistentVolumeClaim is 1Gi, but request is 2Gi"
    );
    let mut deleting = claim.clone();
    deleting.meta_mut().deletion_timestamp = "2024-05-01T10:00:00Z".into();
    assert!(ranger.check(update, &claim, Some(&deleting), &source).await.is_ok());
    assert!(
        ranger
            .check(WriteOperation::Update { subresource: "status" }, &claim, Some(&claim), &source)
            .await
            .is_ok()
    );
    // Another namespace has no LimitRange.
    let mut elsewhere = claim.clone();
    elsewhere.meta_mut().namespace = "other".into();
    assert!(ranger.check(WriteOperation::Create, &elsewhere, None, &source).await.is_ok());
}

#[tokio::test]
async fn without_a_synced_store_every_check_reads_storage() {
    let source = Source::default();
    let ranger = LimitRanger::default();
    let p = Object::Pod(pod("  - {name: a, image: x}\n", ""));
    for _ in 0..3 {
        ranger.check(WriteOperation::Create, &p, None, &source).await.unwrap();
    }
    assert_eq!(source.reads.load(Ordering::SeqCst), 3);
}
