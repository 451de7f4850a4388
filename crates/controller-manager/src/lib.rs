//! The navarch controller-manager: small level-triggered controllers on the shared client runtime
//! (watch → store → per-key work queue → reconcile), one process, one leader at a time (Lease
//! `kube-system/kube-controller-manager`).
//!
//! * [`replicaset`]: keeps `replicas` pods per ReplicaSet (and per ReplicationController).
//! * [`deployment`]: one ReplicaSet per template, rolled out by strategy.
//! * [`daemonset`]: one pod per eligible node, rolled out by strategy, with ControllerRevision history.
//! * [`statefulset`]: pods with stable names, hostnames and claims (`<set>-<ordinal>`), created,
//!   deleted and updated in order, with ControllerRevision history.
//! * [`controller_history`]: the ControllerRevision history DaemonSets and StatefulSets share.
//! * [`disruption`]: PodDisruptionBudgets' status: how many pods may be evicted now.
//! * [`job`]: Jobs run their pods to completion, counting each ended pod exactly once; failed Jobs
//!   (backoffLimit, deadline, pod failure policy), suspension, Indexed Jobs, TTL after finished.
//! * [`cronjob`]: CronJobs create a Job at each time of their schedule (time zones, missed runs,
//!   concurrency policy, suspension, history limits).
//! * [`pod_control`]: what pod-owning controllers share: controller ownerReferences, expectations,
//!   slow-start pod creation.
//! * [`endpoints`]: Endpoints of Services with selectors.
//! * [`service_lb`]: LoadBalancer Services get the nodes' addresses (no cloud needed).
//! * [`node_ipam`]: a pod CIDR for every Node.
//! * [`node_lifecycle`]: silent nodes become Unknown, get tainted, and lose their pods.
//! * [`namespaces`]: namespace deletion, the `default` ServiceAccount.
//! * [`garbage_collector`]: ownerReferences: background, foreground and orphan deletion.
//! * [`pod_gc`]: pods of vanished Nodes, unscheduled terminating pods, finished pods beyond 12,500.
//! * [`clusterrole_aggregation`]: aggregated ClusterRoles get the rules of the ClusterRoles they select.
//! * [`root_ca_publisher`]: the ConfigMap `kube-root-ca.crt` (the cluster's CA bundle) in every namespace.
//! * [`certificates`]: CertificateSigningRequests approved (node client and serving certificates,
//!   kube-proxy's), signed from the cluster CA, and cleaned up: how a node joins with a bootstrap token.
//! * [`volume`]: PersistentVolumeClaims bound to PersistentVolumes (phases, reclaim policies,
//!   WaitForFirstConsumer, hand-off to the provisioner), the pvc-/pv-protection finalizers, the default
//!   StorageClass `local-path`.
//! * [`config`]: the daemon's settings (resolved by the daemon shell); [`run`]: one shared reflector per
//!   kind, each controller's `spawn`, leader election.

#![forbid(unsafe_code)]

pub mod certificates;
pub mod clusterrole_aggregation;
pub mod config;
pub mod controller_history;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod garbage_collector;
pub mod hpa;
pub mod job;
pub mod namespaces;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod pod_control;
pub mod pod_gc;
pub mod replicaset;
pub mod resource_quota;
pub mod root_ca_publisher;
pub mod run;
pub mod service_lb;
pub mod statefulset;
pub mod volume;
