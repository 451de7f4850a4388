//! [`NodeEnv`]: a one-node cluster without controllers — etcd, an api-server, the registry with the
//! test images, containerd and a kubelet whose Node is Ready. Pods name the node (`spec.nodeName`)
//! since no scheduler runs.

use std::time::Duration;

use navarch_api::kubelet_proto::kubelet_client::KubeletClient;
use navarch_api::v1::{Node, Pod};
use navarch_client::{Api, Client};
use tonic::transport::Channel;

use crate::{Containerd, Kubelet, Registry, TestEnv, eventually};

pub struct NodeEnv {
    pub env: TestEnv,
    pub registry: Registry,
    pub ctd: Containerd,
    pub kubelet: Kubelet,
    pub c: Client,
    /// Pods of the `default` namespace.
    pub pods: Api<Pod>,
    /// The kubelet's node name.
    pub node: String,
}

impl NodeEnv {
    pub async fn start() -> NodeEnv {
        let env = TestEnv::start().await;
        let registry = Registry::with_test_images();
        let ctd = Containerd::start().await;
        let kubelet = Kubelet::start(&env.api_server, &ctd, &registry).await;
        let c = env.client().await;
        ready_node(&c, &kubelet).await;
        let pods = c.api("default");
        let node = kubelet.node_name.clone();
        NodeEnv { env, registry, ctd, kubelet, c, pods, node }
    }

    /// Where the node's kubelet API answers, as the api-server finds it (the Node's InternalIP and
    /// `status.daemonEndpoints.kubeletEndpoint.Port`), for tests that call the kubelet directly.
    pub async fn kubelet_url(&self) -> String {
        let nodes: Api<Node> = self.c.api("");
        let st = nodes.get(&self.node).await.unwrap().status.unwrap();
        let ip = st.addresses.iter().find(|a| a.r#type == "InternalIP").unwrap().address.clone();
        let port = st.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port;
        format!("https://{ip}:{port}")
    }

    /// A client of the node's kubelet API as the api-server calls it (TLS, its certificate checked
    /// against the cluster CA, presenting the api-server's kubelet client certificate).
    pub async fn kubelet_client(&self) -> KubeletClient<Channel> {
        let url = self.kubelet_url().await;
        KubeletClient::new(self.env.pki().grpc_channel("apiserver-kubelet-client", &url).await)
    }
}

/// Waits until `k`'s Node reports Ready.
pub async fn ready_node(c: &Client, k: &Kubelet) {
    let nodes: Api<Node> = c.api("");
    eventually(k.with_log("node Ready"), Duration::from_secs(60), async || {
        let n = nodes.get_opt(&k.node_name).await.ok()??;
        let ready = n.status?.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True");
        ready.then_some(())
    })
    .await;
}
