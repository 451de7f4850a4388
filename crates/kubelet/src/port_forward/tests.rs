use std::io::{Read, Write};

use serde_json::json;
use tokio::net::TcpListener;

use super::*;
use crate::network::{KernelNamespaces, Namespaces};

#[test]
fn network_namespace_from_the_spec() {
    let pod =
        json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/run/x/netns/u1"}]}});
    assert_eq!(network_of_spec(&pod), Some(PodNetwork::Namespace("/run/x/netns/u1".into())));
    let host = json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}});
    assert_eq!(network_of_spec(&host), Some(PodNetwork::Host));
    let private = json!({"linux": {"namespaces": [{"type": "network"}]}});
    assert_eq!(network_of_spec(&private), None);
}

fn closed_port() -> u16 {
    // Bound then released: nothing listens on it (for a moment, which is all the test needs).
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn a_refused_connect_is_described_as_containerd_does() {
    let port = closed_port();
    let e = connect(PodNetwork::Host, port, "uid-1").await.unwrap_err().to_string();
    let expected = format!(
        "failed to execute portforward in network namespace \"host\": failed to connect to localhost:{port} inside namespace \"uid-1\", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused IPv6 dial tcp6 [::1]:{port}: connect: "
    );
    assert!(e.starts_with(&expected), "{e}");
    assert!(e.ends_with(' '), "{e:?}");

    let missing = PodNetwork::Namespace("/nonexistent/netns".into());
    let e = connect(missing, 80, "uid-1").await.unwrap_err().to_string();
    assert_eq!(
        e,
        "failed to execute portforward in network namespace \"/nonexistent/netns\": No such file or directory (os error 2)"
    );
}

type Input = futures::channel::mpsc::UnboundedSender<Result<PortForwardInput, Status>>;

fn data(b: &[u8]) -> Result<PortForwardInput, Status> {
    Ok(PortForwardInput { data: b.to_vec(), ..Default::default() })
}

/// Runs `serve` against localhost:`port` of `network`; returns the input and the answer.
fn start(
    network: PodNetwork,
    port: u16,
) -> (Input, mpsc::Receiver<Result<PortForwardOutput, Status>>, tokio::task::JoinHandle<()>) {
    let (input, input_rx) = futures::channel::mpsc::unbounded();
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(serve(network, port, "uid-1".into(), input_rx, tx, CancellationToken::new()));
    (input, rx, task)
}

async fn answer(rx: &mut mpsc::Receiver<Result<PortForwardOutput, Status>>) -> (Vec<u8>, String) {
    let (mut data, mut error) = (Vec::new(), String::new());
    while let Some(m) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("an answer") {
        let m = m.unwrap();
        data.extend_from_slice(&m.data);
        error.push_str(&m.error);
    }
    (data, error)
}

#[tokio::test]
async fn data_flows_both_ways_and_the_client_half_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // An upper-casing server that answers after reading everything (it needs the half close).
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        s.write_all(&all.to_ascii_uppercase()).await.unwrap();
    });
    let (input, mut rx, task) = start(PodNetwork::Host, port);
    input.unbounded_send(data(b"hello ")).unwrap();
    input.unbounded_send(data(b"world")).unwrap();
    input.unbounded_send(Ok(PortForwardInput { closed: true, ..Default::default() })).unwrap();
    let (got, error) = answer(&mut rx).await;
    assert_eq!((got.as_slice(), error.as_str()), (&b"HELLO WORLD"[..], ""));
    server.await.unwrap();
    task.await.unwrap();
    drop(input);
}

#[tokio::test]
async fn the_pod_closing_ends_the_answer_and_a_refused_port_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"bye").await.unwrap();
    });
    let (input, mut rx, task) = start(PodNetwork::Host, port);
    assert_eq!(answer(&mut rx).await, (b"bye".to_vec(), String::new()));
    server.await.unwrap();
    task.await.unwrap();
    drop(input);

    let (_input, mut rx, _task) = start(PodNetwork::Host, closed_port());
    let (got, error) = answer(&mut rx).await;
    assert!(got.is_empty());
    assert!(error.contains("connect: connection refused"), "{error}");
}

#[tokio::test]
async fn the_client_going_away_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (input, mut rx, task) = start(PodNetwork::Host, port);
    let (mut s, _) = listener.accept().await.unwrap();
    input.unbounded_send(Err(Status::cancelled("gone"))).unwrap();
    let mut rest = Vec::new();
    // The kubelet's side closes: the server reads EOF.
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await.unwrap().unwrap();
    task.await.unwrap();
    assert!(rx.recv().await.is_none());
}

/// Needs root (a network namespace); the machine the tests run on is root.
#[tokio::test]
async fn connects_inside_the_pods_network_namespace() {
    let before = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let netns = dir.path().join("netns").join("uid-1");
    if let Err(e) = KernelNamespaces.create(&netns) {
        panic!("creating a network namespace (root is needed): {e}");
    }
    // A server bound to 127.0.0.1 inside the namespace only.
    let path = netns.clone();
    let listener = std::thread::spawn(move || {
        setns(File::open(&path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
        std::net::TcpListener::bind("127.0.0.1:0").unwrap()
    })
    .join()
    .unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"pong").unwrap();
    });
    let network = PodNetwork::Namespace(netns.clone());
    let (input, mut rx, task) = start(network, port);
    input.unbounded_send(data(b"ping")).unwrap();
    assert_eq!(answer(&mut rx).await, (b"pong".to_vec(), String::new()));
    server.join().unwrap();
    task.await.unwrap();
    // The test's own thread never left its namespace.
    assert_eq!(std::fs::read_link("/proc/thread-self/ns/net").unwrap(), before);
    KernelNamespaces.remove(&netns).unwrap();
}
