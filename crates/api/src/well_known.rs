//! The cluster's default addresses, ports and ranges, defined once: every daemon's flag defaults use
//! these, `scripts/cluster.sh` reads them back from the binaries (`--print-config`), and a test checks
//! `deploy/` and `ansible/` against them. They are Kubernetes' (kubeadm's) where Kubernetes has one.

/// The api-server's gRPC (and later REST) address, and where every client dials by default.
pub const API_SERVER: &str = "127.0.0.1:6443";
/// The api-server's admin HTTP address (`/healthz`, `/readyz`, `/metrics`).
pub const API_SERVER_ADMIN: &str = "127.0.0.1:6444";
/// etcd's client URL.
pub const ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";
/// Admin HTTP addresses of the other daemons (Kubernetes' ports).
pub const SCHEDULER_ADMIN: &str = "127.0.0.1:10259";
pub const CONTROLLER_MANAGER_ADMIN: &str = "127.0.0.1:10257";
pub const KUBELET_ADMIN: &str = "127.0.0.1:10248";
pub const KUBE_PROXY_ADMIN: &str = "127.0.0.1:10256";
pub const CLUSTER_DNS_ADMIN: &str = "127.0.0.1:9153";
/// The kubelet's API port (logs, exec, stats), on the node's address.
pub const KUBELET_API_PORT: u16 = 10250;

/// Service ClusterIPs (`--service-cluster-ip-range`).
pub const SERVICE_CLUSTER_IP_RANGE: &str = "10.96.0.0/12";
/// Service node ports (`--service-node-port-range`).
pub const SERVICE_NODE_PORT_RANGE: &str = "30000-32767";
/// Pod addresses (`--cluster-cidr`), cut into one subnet per node.
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// The prefix length of each node's pod subnet.
pub const NODE_CIDR_MASK_SIZE: u8 = 24;
/// The kube-dns Service's ClusterIP (the 10th address of the Service range).
pub const CLUSTER_DNS_IP: &str = "10.96.0.10";
/// The cluster's DNS domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";
