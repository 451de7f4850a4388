//! Resource accounting as Kubernetes does it: a pod's effective request is the larger of the sum of its
//! app containers' requests and the largest init container request (init containers run one at a time),
//! plus the pod overhead; a node offers `status.allocatable`.

use navarch_api::v1::{Node, Pod, Quantity};
use std::collections::BTreeMap;

/// Amounts the scheduler accounts: millicores, bytes, bytes, pod count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
}

impl Resources {
    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.pods += o.pods;
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.pods -= o.pods;
    }

    fn max(&self, o: &Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.max(o.milli_cpu),
            memory: self.memory.max(o.memory),
            ephemeral_storage: self.ephemeral_storage.max(o.ephemeral_storage),
            pods: self.pods.max(o.pods),
        }
    }
}

/// Reads cpu, memory and ephemeral-storage from a resource list; malformed amounts count as zero
/// (the api-server rejects them on write).
pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resources {
    let get = |k: &str| list.get(k).and_then(|q| q.amount().ok());
    Resources {
        milli_cpu: get("cpu").map(|a| a.milli_value()).unwrap_or(0),
        memory: get("memory").map(|a| a.value()).unwrap_or(0),
        ephemeral_storage: get("ephemeral-storage").map(|a| a.value()).unwrap_or(0),
        pods: get("pods").map(|a| a.value()).unwrap_or(0),
    }
}

/// What the scoring plugins count for a container that requests no cpu (Kubernetes'
/// `DefaultMilliCPURequest`): 100 millicores.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// What they count for a container that requests no memory (`DefaultMemoryRequest`): 200 MiB.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// The pod's effective request (with `pods: 1`).
pub fn pod_requests(pod: &Pod) -> Resources {
    requests(pod, false)
}

/// The pod's request as the resource scores count it (Kubernetes' `NonZeroRequested`): a container
/// without a cpu or memory request counts [`DEFAULT_MILLI_CPU_REQUEST`] / [`DEFAULT_MEMORY_REQUEST`],
/// so pods without requests still spread.
pub fn pod_non_zero_requests(pod: &Pod) -> Resources {
    requests(pod, true)
}

fn container_requests(c: &navarch_api::v1::Container, non_zero: bool) -> Resources {
    let empty = BTreeMap::new();
    let list = c.resources.as_ref().map(|r| &r.requests).unwrap_or(&empty);
    let mut r = from_list(list);
    if non_zero {
        if !list.contains_key("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !list.contains_key("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

fn requests(pod: &Pod, non_zero: bool) -> Resources {
    let Some(spec) = pod.spec.as_ref() else { return Resources { pods: 1, ..Default::default() } };
    let mut sum = Resources::default();
    for c in &spec.containers {
        sum.add(&container_requests(c, non_zero));
    }
    // Restartable init containers (sidecars) run alongside the app containers.
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in &spec.init_containers {
        let r = container_requests(c, non_zero);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            init_max = init_max.max(&sidecars);
        } else {
            let mut during = sidecars;
            during.add(&r);
            init_max = init_max.max(&during);
        }
    }
    sum.add(&sidecars);
    let mut total = sum.max(&init_max);
    total.add(&from_list(&spec.overhead));
    total.pods = 1;
    total
}

/// What the node offers to pods.
pub fn node_allocatable(node: &Node) -> Resources {
    node.status
        .as_ref()
        .map(|s| from_list(if s.allocatable.is_empty() { &s.capacity } else { &s.allocatable }))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use navarch_api::manifest;

    fn pod(yaml: &str) -> Pod {
        match manifest::parse(yaml, "t").unwrap().remove(0) {
            navarch_api::Object::Pod(p) => p,
            _ => panic!(),
        }
    }

    #[test]
    fn sums_app_containers_and_takes_init_max() {
        let p = pod(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers:\n  - {name: i, image: x, resources: {requests: {cpu: '2', memory: 1Gi}}}\n  containers:\n  - {name: a, image: x, resources: {requests: {cpu: 500m, memory: 100Mi}}}\n  - {name: b, image: x, resources: {requests: {cpu: 250m, memory: 100Mi}}}\n",
        );
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 2000, "init container's 2 cpu beats 750m");
        assert_eq!(r.memory, 1 << 30);
        assert_eq!(r.pods, 1);
    }

    #[test]
    fn sidecars_add_to_app_containers_and_overhead_counts() {
        let p = pod(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  overhead: {cpu: 100m}\n  initContainers:\n  - {name: s, image: x, restartPolicy: Always, resources: {requests: {cpu: 200m}}}\n  containers:\n  - {name: a, image: x, resources: {requests: {cpu: 500m}}}\n",
        );
        assert_eq!(pod_requests(&p).milli_cpu, 800);
    }

    #[test]
    fn no_requests_is_zero_but_one_pod() {
        let p = pod(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: x}]\n",
        );
        assert_eq!(pod_requests(&p), Resources { pods: 1, ..Default::default() });
    }
}
