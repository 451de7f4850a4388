//! The navarch kubelet: the node agent. It registers its Node and keeps it alive through a Lease,
//! and makes the containers on its machine match the pods bound to it, through containerd's native
//! gRPC API (runc underneath) and the CNI plugins for networking.
//!
//! * [`containerd`]: typed calls to containerd's services.
//! * [`image`]: references, registry mirrors, pulling and unpacking.
//! * [`network`]: per-pod network namespaces and the CNI plugin chain.
//! * [`spec`]: the OCI runtime spec of a container.
//! * [`local_path`]: the local-path provisioner's node agent (volumes of claims placed on this node).
//! * [`volumes`]: pod volumes on the host, container environments; [`token`]: the ServiceAccount
//!   tokens of projected volumes, renewed before they expire.
//! * [`pod_state`]: the pure decisions (next step, back-off, status); [`pods`]: the per-pod sync.
//! * [`probes`]: startup, liveness and readiness probes; [`exec`]: commands run in containers;
//!   [`port_forward`]: connections into a pod's network namespace.
//! * [`container_io`]: containers' stdio (FIFOs the kubelet reads into the logs, attach sessions);
//!   [`cri_log`]: Kubernetes' CRI log format; [`logs`]: container log files (reading, following,
//!   rotation); [`cgroups`]: usage and cleanup; [`stats`]: the resource usage sampler (CPU,
//!   memory, network, filesystems) behind the stats API and the cAdvisor-style metrics.
//! * [`server`]: the kubelet's gRPC API (logs, exec, attach, stats) that the api-server relays to.
//! * [`node`]: the Node object, its Lease and conditions; [`metrics`]: Prometheus metrics;
//!   [`run`]: wiring it all together.

pub mod api_auth;
pub mod cgroups;
pub mod config;
pub mod container_io;
pub mod containerd;
pub mod credentials;
pub mod cri_log;
pub mod exec;
pub mod image;
pub mod local_path;
pub mod logs;
pub mod metrics;
pub mod netcfg;
pub mod network;
pub mod node;
pub mod pod_state;
pub mod pods;
pub mod port_forward;
pub mod probes;
pub mod run;
pub mod server;
pub mod spec;
pub mod stats;
pub mod token;
// The crate's only `unsafe` (denied everywhere else by the workspace lints): the system calls that
// nix has no safe wrapper for, each block with its `// SAFETY:` argument.
#[allow(unsafe_code)]
mod sys;
pub mod volumes;
