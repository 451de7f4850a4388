//! The subresources served by kubelets: pods/log, pods/exec, pods/portforward, and the stats the
//! resource metrics pipeline scrapes. The api-server checks the pod (bound, the container exists, not
//! finished for exec), fills in the pod's uid, and relays the stream to the kubelet of the pod's node, dialled at the
//! node's InternalIP and its `status.daemonEndpoints.kubeletEndpoint.Port`, as Kubernetes'
//! api-server does.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use navarch_api::kubelet_proto::kubelet_client::KubeletClient;
use navarch_api::kubelet_proto::{
    ExecInput, ExecOutput, ExecStart, LogChunk, LogsRequest, PortForwardInput, PortForwardOutput,
    PortForwardStart, StatsRequest, StatsResponse,
};
use navarch_api::v1::{Node, Pod};
use navarch_api::{Object, Resource};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::error::ApiError;
use crate::registry::Registry;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_KUBELET_PORT: i32 = navarch_api::well_known::KUBELET_API_PORT as i32;

pub struct KubeletRelay {
    pub registry: Arc<Registry>,
    /// TLS to kubelets: their serving certificates are verified against `--kubelet-certificate-authority`,
    /// and the api-server presents `--kubelet-client-certificate`.
    pub tls: ClientTlsConfig,
}

/// The container a request means: the named one (app, init or ephemeral), or the pod's only one.
pub fn container_of(pod: &Pod, requested: &str) -> Result<String, ApiError> {
    let name = &pod.meta().name;
    let spec = pod.spec.clone().unwrap_or_default();
    let apps: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
    let inits: Vec<String> = spec.init_containers.iter().map(|c| c.name.clone()).collect();
    if requested.is_empty() {
        if apps.len() == 1 {
            return Ok(apps[0].clone());
        }
        let mut msg =
            format!("a container name must be specified for pod {name}, choose one of: [{}]", apps.join(" "));
        if !inits.is_empty() {
            msg.push_str(&format!(" or one of the init containers: [{}]", inits.join(" ")));
        }
        return Err(ApiError::BadRequest(msg));
    }
    let ephemeral = spec.ephemeral_containers.iter().any(|c| c.name == requested);
    if apps.iter().chain(inits.iter()).any(|c| c == requested) || ephemeral {
        Ok(requested.to_string())
    } else {
        Err(ApiError::BadRequest(format!("container {requested} is not valid for pod {name}")))
    }
}

/// Where a node's kubelet API answers.
pub fn kubelet_address(node: &Node) -> Result<String, ApiError> {
    let name = &node.meta().name;
    let st = node.status.clone().unwrap_or_default();
    let ip = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|t| st.addresses.iter().find(|a| a.r#type == *t && !a.address.is_empty()))
        .map(|a| a.address.clone())
        .ok_or_else(|| ApiError::Precondition(format!("node {name:?} has no address for its kubelet")))?;
    let port = st
        .daemon_endpoints
        .and_then(|d| d.kubelet_endpoint)
        .map(|e| e.port)
        .filter(|p| *p > 0 && *p < 65536)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    let host = if ip.contains(':') { format!("[{ip}]") } else { ip };
    Ok(format!("https://{host}:{port}"))
}

/// Kubernetes' checks of PodLogOptions (`ValidatePodLogOptions`, a 422 naming PodLogOptions),
/// after the one its query decoding makes: a `sinceTime` that is not RFC 3339 is a 400.
fn validate_log_options(req: &LogsRequest) -> Result<(), ApiError> {
    if !req.since_time.is_empty() {
        navarch_api::rfc3339::parse(&req.since_time).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    let mut errors = Vec::new();
    if let Some(n) = req.tail_lines.filter(|n| *n < 0) {
        errors.push(format!("tailLines: Invalid value: {n}: must be greater than or equal to 0"));
    }
    if let Some(n) = req.limit_bytes.filter(|n| *n < 1) {
        errors.push(format!("limitBytes: Invalid value: {n}: must be greater than 0"));
    }
    match req.since_seconds {
        // Kubernetes' field path for this one is the empty root.
        Some(_) if !req.since_time.is_empty() => {
            errors.push(": Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".into())
        }
        Some(n) if n < 1 => errors.push(format!("sinceSeconds: Invalid value: {n}: must be greater than 0")),
        _ => {}
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid { kind: "PodLogOptions".into(), name: req.name.clone(), errors })
    }
}

/// What a container that has not run yet waits for, from the pod's status, worded as Kubernetes'
/// kubelet words it; None once it has run (or its status does not say it waits).
fn waiting_to_start(pod: &Pod, container: &str) -> Option<String> {
    let st = pod.status.as_ref()?;
    let cs = st
        .container_statuses
        .iter()
        .chain(&st.init_container_statuses)
        .chain(&st.ephemeral_container_statuses)
        .find(|s| s.name == container)?;
    let state = cs.state.clone().unwrap_or_default();
    let ran_before = cs.last_state.as_ref().is_some_and(|l| l.terminated.is_some());
    if state.running.is_some() || state.terminated.is_some() || ran_before {
        return None;
    }
    Some(match state.waiting?.reason.as_str() {
        "ErrImagePull" => "image can't be pulled".into(),
        "ImagePullBackOff" => "trying and failing to pull image".into(),
        reason => reason.to_string(),
    })
}

impl KubeletRelay {
    async fn pod(&self, namespace: &str, name: &str) -> Result<Pod, ApiError> {
        match self.registry.get("Pod", namespace, name).await? {
            Object::Pod(p) => Ok(p),
            other => Err(ApiError::Internal(format!("stored pod {namespace}/{name} is a {}", other.kind()))),
        }
    }

    async fn node(&self, name: &str) -> Result<Node, ApiError> {
        match self.registry.get("Node", "", name).await? {
            Object::Node(n) => Ok(n),
            other => Err(ApiError::Internal(format!("stored node {name} is a {}", other.kind()))),
        }
    }

    async fn client(&self, node: &Node) -> Result<KubeletClient<Channel>, ApiError> {
        let addr = kubelet_address(node)?;
        let endpoint = Endpoint::from_shared(addr.clone())
            .map_err(|e| ApiError::Internal(format!("kubelet address {addr}: {e}")))?
            .tls_config(self.tls.clone())
            .map_err(|e| ApiError::Internal(format!("kubelet TLS for {addr}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|e| {
            ApiError::Backend(format!(
                "error dialing backend: kubelet of node {:?} at {addr}: {e}",
                node.meta().name
            ))
        })?;
        Ok(KubeletClient::new(channel))
    }

    /// The pod (checked) and a client for its node's kubelet.
    async fn target(&self, namespace: &str, name: &str) -> Result<(Pod, KubeletClient<Channel>), ApiError> {
        let pod = self.pod(namespace, name).await?;
        let node_name = pod.spec.as_ref().map(|s| s.node_name.clone()).unwrap_or_default();
        if node_name.is_empty() {
            return Err(ApiError::BadRequest(format!("pod {name} does not have a host assigned")));
        }
        let node = self.node(&node_name).await?;
        let client = self.client(&node).await?;
        Ok((pod, client))
    }

    pub async fn logs(&self, mut req: LogsRequest) -> Result<tonic::Streaming<LogChunk>, ApiError> {
        validate_log_options(&req)?;
        let (pod, mut client) = self.target(&req.namespace, &req.name).await?;
        req.container = container_of(&pod, &req.container)?;
        if !req.previous
            && let Some(reason) = waiting_to_start(&pod, &req.container)
        {
            return Err(ApiError::BadRequest(format!(
                "container {:?} in pod {:?} is waiting to start: {reason}",
                req.container, req.name
            )));
        }
        req.uid = pod.meta().uid.clone();
        client.container_logs(req).await.map(|r| r.into_inner()).map_err(ApiError::from_backend)
    }

    /// Checks an exec or attach request against the pod before anything runs: the pod exists and is
    /// bound, it has not finished, the container is one of its own (or its only one). Returns the
    /// request with the container and the pod's uid filled in, and a client for the pod's kubelet.
    pub async fn remote_command_target(
        &self,
        mut start: ExecStart,
        attach: bool,
    ) -> Result<(ExecStart, KubeletClient<Channel>), ApiError> {
        if !attach && start.command.is_empty() {
            return Err(ApiError::BadRequest(
                "command: Required value: you must specify at least 1 command".into(),
            ));
        }
        let (pod, client) = self.target(&start.namespace, &start.name).await?;
        let phase = pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            let verb = if attach { "attach to" } else { "exec into" };
            return Err(ApiError::BadRequest(format!(
                "cannot {verb} a container in a completed pod; current phase is {phase}"
            )));
        }
        start.container = container_of(&pod, &start.container)?;
        start.uid = pod.meta().uid.clone();
        Ok((start, client))
    }

    /// Starts an exec (or attach) on the kubelet checked by [`Self::remote_command_target`]; `input`
    /// is the client's stdin, resizes and end of stdin, after the start message.
    pub async fn remote_command(
        mut client: KubeletClient<Channel>,
        start: ExecStart,
        attach: bool,
        input: impl Stream<Item = ExecInput> + Send + 'static,
    ) -> Result<tonic::Streaming<ExecOutput>, ApiError> {
        let first = ExecInput { start: Some(start), ..Default::default() };
        let input = futures::stream::once(async move { first }).chain(input);
        let r = if attach { client.attach(input).await } else { client.exec(input).await };
        r.map(|r| r.into_inner()).map_err(ApiError::from_backend)
    }

    /// Relays an exec session of the gRPC door: `first` is the client's first message (with
    /// `start`), `rest` the remaining input.
    pub async fn exec(
        &self,
        first: ExecInput,
        rest: tonic::Streaming<ExecInput>,
    ) -> Result<tonic::Streaming<ExecOutput>, ApiError> {
        let start = first
            .start
            .ok_or_else(|| ApiError::BadRequest("start: Required value (the first message)".into()))?;
        let (start, client) = self.remote_command_target(start, false).await?;
        let first_input = ExecInput { start: None, ..first };
        // The client's input, ended at its first error (the client went away).
        let rest =
            rest.take_while(|m| futures::future::ready(m.is_ok())).filter_map(|m| async move { m.ok() });
        let input = futures::stream::once(async move { first_input }).chain(rest);
        Self::remote_command(client, start, false, input).await
    }

    /// A node's usage and its pods' from its kubelet (the resource metrics pipeline's scrape), within
    /// `timeout`; the error says why not, for the log.
    pub async fn stats(&self, node: &Node, timeout: Duration) -> Result<StatsResponse, String> {
        let r = tokio::time::timeout(timeout, async {
            let mut c = self.client(node).await?;
            c.stats(StatsRequest {}).await.map(|r| r.into_inner()).map_err(ApiError::from_backend)
        })
        .await;
        match r {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("the kubelet did not answer within {timeout:?}")),
        }
    }
}

/// A pod's kubelet, dialled once for a port-forward session: each forwarded connection is one
/// `PortForward` call on the same HTTP/2 connection.
#[derive(Clone)]
pub struct PodPortForwarder {
    client: KubeletClient<Channel>,
    namespace: String,
    name: String,
    uid: String,
}

impl PodPortForwarder {
    /// Forwards one connection to `port` inside the pod's network namespace; `input` is what the
    /// client sends after the start message (data, then `closed` at its half close).
    pub async fn forward(
        &self,
        port: u16,
        input: impl Stream<Item = PortForwardInput> + Send + 'static,
    ) -> Result<tonic::Streaming<PortForwardOutput>, ApiError> {
        let start = PortForwardStart {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            port: port.into(),
        };
        let first = PortForwardInput { start: Some(start), ..Default::default() };
        let input = futures::stream::once(async move { first }).chain(input);
        let mut client = self.client.clone();
        client.port_forward(input).await.map(|r| r.into_inner()).map_err(ApiError::from_backend)
    }
}

impl KubeletRelay {
    /// The node of a pod about to be port-forwarded, checked as Kubernetes' `PortForwardLocation`
    /// does: the pod is bound, its Node exists and names an address for its kubelet.
    pub async fn port_forward_node(&self, pod: &Pod) -> Result<Node, ApiError> {
        let name = &pod.meta().name;
        let node_name = pod.spec.as_ref().map(|s| s.node_name.as_str()).unwrap_or_default();
        if node_name.is_empty() {
            return Err(ApiError::BadRequest(format!("pod {name} does not have a host assigned")));
        }
        let node = self.node(node_name).await?;
        kubelet_address(&node)?;
        Ok(node)
    }

    /// Dials the kubelet of `pod`'s node for a port-forward session.
    pub async fn port_forward(&self, pod: &Pod) -> Result<PodPortForwarder, ApiError> {
        let node = self.port_forward_node(pod).await?;
        let client = self.client(&node).await?;
        let m = pod.meta();
        Ok(PodPortForwarder {
            client,
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            uid: m.uid.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(y: &str) -> Pod {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn container_defaults_and_errors() {
        let one = pod("{metadata: {name: p}, spec: {containers: [{name: web}]}}");
        assert_eq!(container_of(&one, "").unwrap(), "web");
        assert_eq!(container_of(&one, "web").unwrap(), "web");
        assert_eq!(container_of(&one, "db").unwrap_err().to_string(), "container db is not valid for pod p");
        let two = pod(
            "{metadata: {name: p}, spec: {initContainers: [{name: setup}], containers: [{name: a}, {name: b}]}}",
        );
        assert_eq!(
            container_of(&two, "").unwrap_err().to_string(),
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [setup]"
        );
        assert_eq!(container_of(&two, "setup").unwrap(), "setup");
    }

    #[test]
    fn log_options_as_kubernetes_validates_them() {
        let req = |f: &dyn Fn(&mut LogsRequest)| {
            let mut r = LogsRequest { name: "web-1".into(), ..Default::default() };
            f(&mut r);
            validate_log_options(&r).map_err(|e| e.to_string())
        };
        assert!(req(&|_| {}).is_ok());
        assert!(req(&|r| r.since_seconds = Some(10)).is_ok());
        assert!(req(&|r| r.since_time = "2024-05-01T10:00:00Z".into()).is_ok());
        assert_eq!(
            req(&|r| r.since_seconds = Some(0)).unwrap_err(),
            "PodLogOptions \"web-1\" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0"
        );
        assert_eq!(
            req(&|r| {
                r.since_seconds = Some(5);
                r.since_time = "2024-05-01T10:00:00Z".into();
            })
            .unwrap_err(),
            "PodLogOptions \"web-1\" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
        );
        assert_eq!(
            req(&|r| r.tail_lines = Some(-1)).unwrap_err(),
            "PodLogOptions \"web-1\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        assert!(
            req(&|r| r.since_time = "yesterday".into())
                .unwrap_err()
                .starts_with("parsing time \"yesterday\"")
        );
    }

    #[test]
    fn waiting_containers_say_what_they_wait_for() {
        let p = pod(
            "{metadata: {name: web-1}, spec: {containers: [{name: web}, {name: side}, {name: pull}]}, status: {containerStatuses: [\
             {name: web, state: {waiting: {reason: ContainerCreating}}},\
             {name: side, state: {waiting: {reason: CrashLoopBackOff}}, lastState: {terminated: {exitCode: 1}}},\
             {name: pull, state: {waiting: {reason: ImagePullBackOff}}}]}}",
        );
        assert_eq!(waiting_to_start(&p, "web").as_deref(), Some("ContainerCreating"));
        // It ran before: its log is there to read.
        assert_eq!(waiting_to_start(&p, "side"), None);
        assert_eq!(waiting_to_start(&p, "pull").as_deref(), Some("trying and failing to pull image"));
        assert_eq!(waiting_to_start(&p, "other"), None);
    }

    #[test]
    fn kubelet_address_from_node_status() {
        let n: Node = serde_yaml::from_str(
            "{metadata: {name: n1}, status: {addresses: [{type: Hostname, address: n1}, {type: InternalIP, address: 10.0.0.5}], daemonEndpoints: {kubeletEndpoint: {Port: 10333}}}}",
        )
        .unwrap();
        assert_eq!(kubelet_address(&n).unwrap(), "https://10.0.0.5:10333");
        let bare: Node = serde_yaml::from_str(
            "{metadata: {name: n2}, status: {addresses: [{type: InternalIP, address: '::1'}]}}",
        )
        .unwrap();
        assert_eq!(kubelet_address(&bare).unwrap(), "https://[::1]:10250");
        let none: Node = serde_yaml::from_str("{metadata: {name: n3}}").unwrap();
        assert!(kubelet_address(&none).is_err());
    }
}
