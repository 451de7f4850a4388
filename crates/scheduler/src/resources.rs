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

/// The pod's effective request (with `pods: 1`).
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else { return Resources { pods: 1, ..Default::default() } };
    let mut sum = Resources::default();
    for c in &spec.containers {
        if let Some(r) = c.resources.as_ref() {
            sum.add(&from_list(&r.requests));
        }
    }
    // Restartable init containers (sidecars) run alongside the app containers.
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in &spec.init_containers {
        let r = c.resources.as_ref().map(|r| from_list(&r.requests)).unwrap_or_default();
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
