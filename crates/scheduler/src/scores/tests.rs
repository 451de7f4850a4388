//! The score plugins against hand-computed cases, most of them Kubernetes' own test cases
//! (pkg/scheduler/framework/plugins/noderesources, imagelocality) with their arithmetic written out.

use std::sync::Arc;

use navarch_api::v1::{Node, Pod};
use navarch_api::{Object, manifest};

use super::fit::{FitScoring, PodRequests, ResourceSpec, Strategy, broken_linear};
use super::*;
use crate::cache::Cache;

fn pod_with(containers: &[(&str, &str)], extra: &str) -> Pod {
    let cs: Vec<String> = containers
        .iter()
        .enumerate()
        .map(|(i, (image, req))| {
            format!("  - {{name: c{i}, image: '{image}', resources: {{requests: {{{req}}}}}}}\n")
        })
        .collect();
    let y = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: default}}\nspec:\n  containers:\n{}{extra}",
        cs.concat()
    );
    match manifest::parse(&y, "pod").unwrap().remove(0) {
        Object::Pod(p) => p,
        _ => unreachable!(),
    }
}

/// A pod of containers with these requests (`cpu: 1, memory: '2000'`), image `x`.
fn pod(reqs: &[&str]) -> Pod {
    pod_with(&reqs.iter().map(|r| ("x", *r)).collect::<Vec<_>>(), "")
}

fn node(name: &str, allocatable: &str, status: &str) -> NodeInfo {
    let y = format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\nstatus:\n  allocatable: {{{allocatable}, pods: '110'}}\n  conditions: [{{type: Ready, status: 'True'}}]\n{status}"
    );
    match manifest::parse(&y, "node").unwrap().remove(0) {
        Object::Node(n) => NodeInfo::new(Arc::new(n)),
        _ => unreachable!(),
    }
}

fn with_pods(mut n: NodeInfo, reqs: &[&str]) -> NodeInfo {
    for (i, r) in reqs.iter().enumerate() {
        let mut p = pod(&[r]);
        p.metadata.as_mut().unwrap().name = format!("existing-{i}");
        n.add_pod(Arc::new(p));
    }
    n
}

fn fit(strategy: Strategy, resources: &[(&str, i64)], p: &Pod, nodes: &[&NodeInfo]) -> Vec<i64> {
    let f =
        FitScoring { strategy, resources: resources.iter().map(|(n, w)| ResourceSpec::new(n, *w)).collect() };
    let req = PodRequests::of(p);
    nodes.iter().map(|n| f.score(&req, n)).collect()
}

const CPU_MEM: [(&str, i64); 2] = [("cpu", 1), ("memory", 1)];

/// The requested pod of Kubernetes' cases: containers {cpu 1, memory 2000} and {cpu 2, memory 3000}.
fn requested() -> Pod {
    pod(&["cpu: '1', memory: '2000'", "cpu: '2', memory: '3000'"])
}

#[test]
fn least_allocated() {
    // node1: cpu (4-3)*100/4 = 25, memory (10000-5000)*100/10000 = 50 → (25+50)/2 = 37.
    // node2: cpu (6-3)*100/6 = 50, memory 50 → 50.
    let (n1, n2) = (node("n1", "cpu: '4', memory: '10000'", ""), node("n2", "cpu: '6', memory: '10000'", ""));
    assert_eq!(fit(Strategy::LeastAllocated, &CPU_MEM, &requested(), &[&n1, &n2]), vec![37, 50]);
    // memory weight 2: (25*1 + 50*2)/3 = 41; (50 + 100)/3 = 50.
    let weighted = [("memory", 2), ("cpu", 1)];
    assert_eq!(fit(Strategy::LeastAllocated, &weighted, &requested(), &[&n1, &n2]), vec![41, 50]);
    // Existing pods {cpu 3, memory 0} on node1 and {cpu 3, memory 5000} on node2 (an explicit 0 stays 0):
    // node1 cpu (10-6)*100/10 = 40, memory (20000-5000)*100/20000 = 75 → 57;
    // node2 cpu 40, memory (20000-10000)*100/20000 = 50 → 45.
    let n1 = with_pods(node("n1", "cpu: '10', memory: '20000'", ""), &["cpu: '3', memory: '0'"]);
    let n2 = with_pods(node("n2", "cpu: '10', memory: '20000'", ""), &["cpu: '3', memory: '5000'"]);
    assert_eq!(fit(Strategy::LeastAllocated, &CPU_MEM, &requested(), &[&n1, &n2]), vec![57, 45]);
    // Requests beyond capacity score 0 on that resource: cpu 6 of 4 → 0; memory 100 and 50 → 50, 25.
    let p = pod(&["cpu: '3', memory: '0'"]);
    let n1 = with_pods(node("n1", "cpu: '4', memory: '10000'", ""), &["cpu: '3', memory: '0'"]);
    let n2 = with_pods(node("n2", "cpu: '4', memory: '10000'", ""), &["cpu: '3', memory: '5000'"]);
    assert_eq!(fit(Strategy::LeastAllocated, &CPU_MEM, &p, &[&n1, &n2]), vec![50, 25]);
    // A node offering nothing scores 0.
    let empty = node("n0", "cpu: '0', memory: '0'", "");
    assert_eq!(fit(Strategy::LeastAllocated, &CPU_MEM, &p, &[&empty]), vec![0]);
}

#[test]
fn pods_without_requests_count_100m_and_200mi() {
    // 2 cpu, 1000Mi: a pod without requests counts 100m and 200Mi:
    // cpu (2000-100)*100/2000 = 95, memory (1000-200)*100/1000 = 80 → 87.
    let n = node("n1", "cpu: '2', memory: 1000Mi", "");
    let bare = pod_with(&[("x", "")], "");
    assert_eq!(fit(Strategy::LeastAllocated, &CPU_MEM, &bare, &[&n]), vec![87]);
    // An existing bare pod as well: cpu 200m → 90, memory 400Mi → 60 → 75.
    let mut m = node("n1", "cpu: '2', memory: 1000Mi", "");
    let mut other = bare.clone();
    other.metadata.as_mut().unwrap().name = "other".into();
    m.add_pod(Arc::new(other));
    assert_eq!(fit(Strategy::LeastAllocated, &CPU_MEM, &bare, &[&m]), vec![75]);
    assert_eq!(m.requested.milli_cpu, 0, "the real requests are unchanged");
}

#[test]
fn most_allocated() {
    // node1: cpu 3*100/4 = 75, memory 5000*100/10000 = 50 → 62; node2: cpu 3*100/6 = 50, 50 → 50.
    let (n1, n2) = (node("n1", "cpu: '4', memory: '10000'", ""), node("n2", "cpu: '6', memory: '10000'", ""));
    assert_eq!(fit(Strategy::MostAllocated, &CPU_MEM, &requested(), &[&n1, &n2]), vec![62, 50]);
    // memory weight 2: (75 + 100)/3 = 58; (50 + 100)/3 = 50.
    let weighted = [("memory", 2), ("cpu", 1)];
    assert_eq!(fit(Strategy::MostAllocated, &weighted, &requested(), &[&n1, &n2]), vec![58, 50]);
    // Beyond capacity counts as full: cpu 6 of 4 → 100, memory 0 → 0 → 50.
    let p = pod(&["cpu: '3', memory: '0'"]);
    let n = with_pods(node("n1", "cpu: '4', memory: '10000'", ""), &["cpu: '3', memory: '0'"]);
    assert_eq!(fit(Strategy::MostAllocated, &CPU_MEM, &p, &[&n]), vec![50]);
}

#[test]
fn broken_linear_function() {
    // Kubernetes' helper test shape {10: 1}, {30: 5}, {70: 7}.
    let shape = [(10, 1), (30, 5), (70, 7)];
    for (p, want) in [(0, 1), (10, 1), (15, 2), (30, 5), (50, 6), (70, 7), (100, 7)] {
        assert_eq!(broken_linear(&shape, p), want, "utilization {p}");
    }
}

#[test]
fn requested_to_capacity_ratio() {
    // Shape {0: 0}, {100: 10} (scores ×10): node1 cpu util 75 → 75, memory 50 → 50 → round(62.5) = 63
    // (MostAllocated truncates to 62); node2 50, 50 → 50.
    let most = Strategy::RequestedToCapacityRatio(vec![(0, 0), (100, 100)]);
    let (n1, n2) = (node("n1", "cpu: '4', memory: '10000'", ""), node("n2", "cpu: '6', memory: '10000'", ""));
    assert_eq!(fit(most, &CPU_MEM, &requested(), &[&n1, &n2]), vec![63, 50]);
    // The default shape {0: 10}, {100: 0}: a full cpu scores 0 and is left out of the average, so only
    // memory (50% used → 50) counts: 50, not 25.
    let least = Strategy::RequestedToCapacityRatio(vec![(0, 100), (100, 0)]);
    let p = pod(&["cpu: '4', memory: '5000'"]);
    let n = node("n1", "cpu: '4', memory: '10000'", "");
    assert_eq!(fit(least, &CPU_MEM, &p, &[&n]), vec![50]);
    // Bin packing on cpu only, weight 3: util 3/4 = 75 on {0: 0}, {50: 2}, {100: 10}: 20 + 80*25/50 = 60.
    let packing = Strategy::RequestedToCapacityRatio(vec![(0, 0), (50, 20), (100, 100)]);
    assert_eq!(fit(packing, &[("cpu", 3)], &requested(), &[&n1]), vec![60]);
}

fn balanced(resources: &[&str], p: &Pod, n: &NodeInfo) -> i64 {
    let names: Vec<String> = resources.iter().map(|s| s.to_string()).collect();
    fit::balanced(&names, &PodRequests::of(p), n)
}

#[test]
fn balanced_allocation() {
    let p = pod(&["cpu: '3', memory: '5000'"]);
    // node1: fractions 0.75 and 0.5, std |0.75-0.5|/2 = 0.125 → (1-0.125)*100 = 87; node2: 0.5, 0.5 → 100.
    assert_eq!(balanced(&["cpu", "memory"], &p, &node("n1", "cpu: '4', memory: '10000'", "")), 87);
    assert_eq!(balanced(&["cpu", "memory"], &p, &node("n2", "cpu: '6', memory: '10000'", "")), 100);
    // Three resources: 0.5, 0.5, 0.8 → mean 0.6, std sqrt(0.06/3) = 0.1414 → 85.
    let p3 = pod(&["cpu: '2', memory: '5000', ephemeral-storage: '8000'"]);
    let n3 = node("n3", "cpu: '4', memory: '10000', ephemeral-storage: '10000'", "");
    assert_eq!(balanced(&["cpu", "memory", "ephemeral-storage"], &p3, &n3), 85);
    // Fractions are capped at 1: cpu 8 of 4 → 1, memory 0 → std 0.5 → 50.
    assert_eq!(balanced(&["cpu", "memory"], &pod(&["cpu: '8', memory: '0'"]), &n3), 50);
    // A pod requesting nothing is not scored by it at all (Kubernetes skips best-effort pods).
    let profile =
        Profile { plugins: vec![(Plugin::NodeResourcesBalancedAllocation, 1)], ..Profile::default() };
    let cache = Cache::default();
    let bare = pod_with(&[("x", "")], "");
    let n = node("n1", "cpu: '4', memory: '10000'", "");
    let cycle = Cycle::with_nodes(&bare, vec![&n], &cache, None);
    assert_eq!(profile.score(&cycle, &[&n]), vec![0]);
}

#[test]
fn default_normalization() {
    // NodeAffinity: matched weights 0, 50, 80 → 0, 50*100/80 = 62, 100.
    assert_eq!(normalize(&[0, 50, 80], true), vec![0, 62, 100]);
    // TaintToleration: untolerated PreferNoSchedule taints 0, 1, 2 → 100, 50, 0; none anywhere → all 100.
    assert_eq!(normalize(&[0, 1, 2], false), vec![100, 50, 0]);
    assert_eq!(normalize(&[0, 0], false), vec![100, 100]);
    assert_eq!(normalize(&[0, 0], true), vec![0, 0]);
}

fn images(list: &[(&[&str], i64)]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|(names, size)| {
            let names: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
            format!("  - {{names: [{}], sizeBytes: {size}}}\n", names.join(", "))
        })
        .collect();
    format!("  images:\n{}", items.concat())
}

const MB: i64 = 1024 * 1024;

#[test]
fn image_locality() {
    // Kubernetes' case: the pod runs gcr.io/40 and gcr.io/250 (2 containers) on 2 nodes, each image on
    // one of them (spread 1/2).
    // node1: 40MB / 2 = 20MB < 23MB → 0; node2: 250MB / 2 = 125MB → 100*(125-23)/(2000-23) = 5.
    let p = pod_with(&[("gcr.io/40", ""), ("gcr.io/250", "")], "");
    let n1 = node(
        "n1",
        "cpu: '4', memory: 4Gi",
        &images(&[(&["gcr.io/40:latest", "gcr.io/40:v1"], 40 * MB), (&["gcr.io/300:latest"], 300 * MB)]),
    );
    let n2 = node(
        "n2",
        "cpu: '4', memory: 4Gi",
        &images(&[(&["gcr.io/250:latest"], 250 * MB), (&["gcr.io/10:v1"], 10 * MB)]),
    );
    let cache = Cache::default();
    let cycle = Cycle::with_nodes(&p, vec![&n1, &n2], &cache, None);
    assert_eq!(image::score(&cycle, &[&n1, &n2]), vec![0, 5]);
    // One container of a 2000MB image on both nodes (spread 1): clamped at 1000MB → 100.
    let big = pod_with(&[("registry.local:5000/big@sha256:abc", "")], "");
    let imgs = images(&[(&["registry.local:5000/big@sha256:abc", "registry.local:5000/big:1"], 2000 * MB)]);
    let (b1, b2) = (node("b1", "cpu: '4', memory: 4Gi", &imgs), node("b2", "cpu: '4', memory: 4Gi", &imgs));
    let cycle = Cycle::with_nodes(&big, vec![&b1, &b2], &cache, None);
    assert_eq!(image::score(&cycle, &[&b1, &b2]), vec![100, 100]);
}

#[test]
fn image_names_are_canonical() {
    assert_eq!(image::canonical("busybox"), "docker.io/library/busybox:latest");
    assert_eq!(image::canonical("busybox:1.36"), "docker.io/library/busybox:1.36");
    assert_eq!(image::canonical("me/app"), "docker.io/me/app:latest");
    assert_eq!(image::canonical("localhost:5000/app"), "localhost:5000/app:latest");
    assert_eq!(image::canonical("busybox:1.36@sha256:ab"), "docker.io/library/busybox@sha256:ab");
    // A short name in the pod finds the image the kubelet reports by its canonical name.
    let p = pod_with(&[("busybox", "")], "");
    let n =
        node("n1", "cpu: '4', memory: 4Gi", &images(&[(&["docker.io/library/busybox:latest"], 500 * MB)]));
    let cache = Cache::default();
    let cycle = Cycle::with_nodes(&p, vec![&n], &cache, None);
    // 500MB, spread 1, one container: 100*(500-23)/(1000-23) = 48.
    assert_eq!(image::score(&cycle, &[&n]), vec![48]);
}

#[test]
fn weights_sum_the_plugins() {
    // Only NodeResourcesFit (LeastAllocated) weight 5 and TaintToleration weight 3.
    let profile = Profile {
        plugins: vec![(Plugin::NodeResourcesFit, 5), (Plugin::TaintToleration, 3)],
        ..Profile::default()
    };
    let p = requested();
    let n1 = node("n1", "cpu: '4', memory: '10000'", "");
    let n2: NodeInfo = {
        let mut n = node("n2", "cpu: '6', memory: '10000'", "");
        let mut raw: Node = (*n.node).clone();
        raw.spec = Some(navarch_api::v1::NodeSpec {
            taints: vec![navarch_api::v1::Taint {
                key: "k".into(),
                effect: "PreferNoSchedule".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        n.set_node(Arc::new(raw));
        n
    };
    let cache = Cache::default();
    let cycle = Cycle::with_nodes(&p, vec![&n1, &n2], &cache, None);
    // n1: 5*37 + 3*100 = 485; n2: 5*50 + 3*0 = 250.
    assert_eq!(profile.score(&cycle, &[&n1, &n2]), vec![485, 250]);
}

#[test]
fn default_profile_prefers_emptier_balanced_nodes() {
    let p = pod(&["cpu: 500m, memory: 1Gi"]);
    let empty = node("n1", "cpu: '2', memory: 4Gi", "");
    let busy = with_pods(node("n2", "cpu: '2', memory: 4Gi", ""), &["cpu: 500m, memory: 1Gi"]);
    let cache = Cache::default();
    let cycle = Cycle::with_nodes(&p, vec![&empty, &busy], &cache, None);
    let s = score(&cycle, &[&empty, &busy]);
    assert!(s[0] > s[1], "{s:?}");
    // 500m of 2 cpu = 25%, 1Gi of 4Gi = 25%: perfectly balanced.
    let names = ["cpu".to_string(), "memory".to_string()];
    assert_eq!(fit::balanced(&names, &PodRequests::of(&p), &empty), 100);
}
