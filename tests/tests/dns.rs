//! The cluster-dns binary against a real api-server and etcd, queried with hickory's DNS client over
//! UDP and TCP. Nothing leaves loopback: the upstream resolver is a fake one started here on
//! 127.0.0.1, and the Endpoints addresses registered (10.0.0.x) are only data.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_net::client::{Client, ClientHandle};
use hickory_net::proto::op::{Message, MessageType, ResponseCode};
use hickory_net::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use navarch_api::Resource;
use navarch_api::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectMeta, Service, ServicePort, ServiceSpec,
};
use navarch_client::{Api, DeleteParams};
use navarch_tests::{ChildProcess, Daemon, TestEnv, binary, eventually, free_port, http_get};

/// A fake upstream resolver on 127.0.0.1 (UDP): `*.upstream.test.` A 192.0.2.1, `target.example.` A
/// 192.0.2.2, NXDOMAIN for the rest. Remembers every name it was asked.
struct FakeUpstream {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
}

impl FakeUpstream {
    async fn start() -> FakeUpstream {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else { return };
                let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
                let mut m = Message::response(q.metadata.id, q.metadata.op_code);
                m.metadata.recursion_desired = q.metadata.recursion_desired;
                m.metadata.recursion_available = true;
                m.add_queries(q.queries.clone());
                let query = &q.queries[0];
                let name = query.name().to_ascii().to_ascii_lowercase();
                log.lock().unwrap().push(name.clone());
                let ip = if name.ends_with(".upstream.test.") {
                    Some(Ipv4Addr::new(192, 0, 2, 1))
                } else if name == "target.example." {
                    Some(Ipv4Addr::new(192, 0, 2, 2))
                } else {
                    None
                };
                match ip {
                    Some(ip) if query.query_type() == RecordType::A => {
                        m.add_answer(Record::from_rdata(query.name().clone(), 300, RData::A(ip.into())));
                    }
                    Some(_) => {}
                    None => m.metadata.response_code = ResponseCode::NXDomain,
                }
                let _ = socket.send_to(&m.to_vec().unwrap(), from).await;
            }
        });
        FakeUpstream { addr, asked }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Udp,
    Tcp,
}

/// One query with hickory's client; the whole response message.
async fn query(server: SocketAddr, transport: Transport, name: &str, t: RecordType) -> Message {
    let name = Name::from_ascii(name).unwrap();
    let provider = TokioRuntimeProvider::default();
    let response = match transport {
        Transport::Udp => {
            let stream =
                UdpClientStream::builder(server, provider).with_timeout(Some(Duration::from_secs(5))).build();
            let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
            let bg = tokio::spawn(bg);
            let r = client.query(name.clone(), DNSClass::IN, t).await;
            bg.abort();
            r
        }
        Transport::Tcp => {
            let (stream, sender) = TcpClientStream::new(server, None, Some(Duration::from_secs(5)), provider);
            let stream = stream.await.unwrap_or_else(|e| panic!("TCP connection to {server}: {e}"));
            let (mut client, bg) = Client::<TokioRuntimeProvider>::new(stream, sender);
            let bg = tokio::spawn(bg);
            let r = client.query(name.clone(), DNSClass::IN, t).await;
            bg.abort();
            r
        }
    };
    let m = response.unwrap_or_else(|e| panic!("{name} {t} over {transport:?}: {e}")).into_message();
    assert_eq!(m.metadata.message_type, MessageType::Response);
    m
}

/// Records as `name TYPE data` (lower case names).
fn show(rs: &[Record]) -> Vec<String> {
    rs.iter()
        .map(|r| format!("{} {} {}", r.name.to_ascii().to_ascii_lowercase(), r.record_type(), r.data))
        .collect()
}

fn a_records(m: &Message) -> BTreeSet<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

/// Asserts an authoritative negative answer with the zone's SOA in the authority section.
fn assert_negative(m: &Message, rcode: ResponseCode, what: &str) {
    assert_eq!(m.metadata.response_code, rcode, "{what}: {m:?}");
    assert!(m.metadata.authoritative, "{what}: not authoritative");
    assert!(m.answers.is_empty(), "{what}: answers {:?}", show(&m.answers));
    assert_eq!(m.authorities.len(), 1, "{what}: authority {:?}", show(&m.authorities));
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA, "{what}");
    assert_eq!(m.authorities[0].name.to_ascii(), "cluster.local.", "{what}");
}

/// Waits up to `secs` seconds until an A query for `name` answers `rcode`; returns how long that took.
async fn wait_rcode(
    server: SocketAddr,
    transport: Transport,
    name: &str,
    rcode: ResponseCode,
    secs: u64,
) -> Duration {
    let start = Instant::now();
    eventually(format!("{name} A to answer {rcode}"), Duration::from_secs(secs), async || {
        query(server, transport, name, RecordType::A).await.metadata.response_code == rcode
    })
    .await;
    start.elapsed()
}

async fn wait_healthy(http: SocketAddr) {
    eventually("cluster-dns /healthz to answer 200", Duration::from_secs(60), async || {
        http_get(http, "/healthz").is_some_and(|(code, _)| code == 200)
    })
    .await;
}

fn meta(ns: &str, name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta { name: name.into(), namespace: ns.into(), ..Default::default() })
}

fn port(name: &str, proto: &str, port: i32) -> ServicePort {
    ServicePort { name: name.into(), protocol: proto.into(), port, ..Default::default() }
}

fn service(ns: &str, name: &str, spec: ServiceSpec) -> Service {
    Service { metadata: meta(ns, name), spec: Some(spec), ..Default::default() }
}

fn address(ip: &str, hostname: &str) -> EndpointAddress {
    EndpointAddress { ip: ip.into(), hostname: hostname.into(), ..Default::default() }
}

#[tokio::test]
async fn answers_for_services_and_forwards_the_rest() {
    let env = TestEnv::start().await;
    let client = env.client().await;
    let upstream = FakeUpstream::start().await;
    let dns_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let listen = format!("--listen={dns_addr}");
    let up = format!("--upstream={}", upstream.addr);
    let daemon = Daemon::start(&env, "cluster-dns", "cluster-dns", &[&listen, &up]);
    wait_healthy(daemon.http).await;
    let (udp, tcp) = (Transport::Udp, Transport::Tcp);

    let services: Api<Service> = client.api("default");
    let web = services
        .create(&service(
            "default",
            "web",
            ServiceSpec {
                selector: [("app".to_string(), "web".to_string())].into(),
                ports: vec![port("http", "TCP", 80), port("dns", "UDP", 53)],
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let web_ip: IpAddr = web.spec.as_ref().unwrap().cluster_ip.parse().unwrap();
    services
        .create(&service(
            "default",
            "db",
            ServiceSpec {
                cluster_ip: "None".into(),
                ports: vec![port("pg", "TCP", 5432)],
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let endpoints: Api<Endpoints> = client.api("default");
    endpoints
        .create(&Endpoints {
            metadata: meta("default", "db"),
            subsets: vec![EndpointSubset {
                addresses: vec![address("10.244.1.5", "db-0"), address("10.244.1.6", "db-1")],
                not_ready_addresses: vec![address("10.244.1.7", "db-2")],
                ports: vec![EndpointPort {
                    name: "pg".into(),
                    port: 15432,
                    protocol: "TCP".into(),
                    ..Default::default()
                }],
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    services
        .create(&service(
            "default",
            "ext",
            ServiceSpec {
                r#type: "ExternalName".into(),
                external_name: "target.example".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();

    // A Service created after the start answers within a couple of seconds.
    let took = wait_rcode(dns_addr, udp, "web.default.svc.cluster.local.", ResponseCode::NoError, 5).await;
    assert!(took < Duration::from_secs(3), "a new Service took {took:?} to answer");
    eventually("the headless and ExternalName Services", Duration::from_secs(5), async || {
        let db = query(dns_addr, udp, "db.default.svc.cluster.local.", RecordType::A).await;
        let ext = query(dns_addr, udp, "ext.default.svc.cluster.local.", RecordType::CNAME).await;
        !db.answers.is_empty() && !ext.answers.is_empty()
    })
    .await;

    for transport in [udp, tcp] {
        // ClusterIP.
        let m = query(dns_addr, transport, "web.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        assert_eq!(a_records(&m), [web_ip].into(), "{transport:?}");
        assert_eq!(m.answers[0].ttl, 5);
        // Named ports: SRV to the Service name, its address in the additional section.
        let m =
            query(dns_addr, transport, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV).await;
        assert_eq!(
            show(&m.answers),
            ["_http._tcp.web.default.svc.cluster.local. SRV 0 100 80 web.default.svc.cluster.local."]
        );
        assert_eq!(show(&m.additionals), [format!("web.default.svc.cluster.local. A {web_ip}")]);
        let m = query(dns_addr, transport, "_dns._udp.web.default.svc.cluster.local.", RecordType::SRV).await;
        assert_eq!(
            show(&m.answers),
            ["_dns._udp.web.default.svc.cluster.local. SRV 0 100 53 web.default.svc.cluster.local."]
        );
        // Headless: the ready endpoints, by name too; SRV per endpoint with the endpoint's port.
        let m = query(dns_addr, transport, "db.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(a_records(&m), ["10.244.1.5".parse().unwrap(), "10.244.1.6".parse().unwrap()].into());
        let m = query(dns_addr, transport, "db-1.db.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(show(&m.answers), ["db-1.db.default.svc.cluster.local. A 10.244.1.6"]);
        let m = query(dns_addr, transport, "_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV).await;
        assert_eq!(
            show(&m.answers),
            [
                "_pg._tcp.db.default.svc.cluster.local. SRV 0 50 15432 db-0.db.default.svc.cluster.local.",
                "_pg._tcp.db.default.svc.cluster.local. SRV 0 50 15432 db-1.db.default.svc.cluster.local."
            ]
        );
        assert_eq!(
            show(&m.additionals),
            [
                "db-0.db.default.svc.cluster.local. A 10.244.1.5",
                "db-1.db.default.svc.cluster.local. A 10.244.1.6"
            ]
        );
        let m = query(dns_addr, transport, "db-2.db.default.svc.cluster.local.", RecordType::A).await;
        assert_negative(&m, ResponseCode::NXDomain, "a not-ready endpoint");
        // ExternalName: the CNAME, and its target resolved upstream.
        let m = query(dns_addr, transport, "ext.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            show(&m.answers),
            ["ext.default.svc.cluster.local. CNAME target.example.", "target.example. A 192.0.2.2"]
        );
        // NXDOMAIN and NODATA, with the SOA.
        let m = query(dns_addr, transport, "nope.default.svc.cluster.local.", RecordType::A).await;
        assert_negative(&m, ResponseCode::NXDomain, "an unknown Service");
        let m = query(dns_addr, transport, "example.com.default.svc.cluster.local.", RecordType::A).await;
        assert_negative(&m, ResponseCode::NXDomain, "a search-path miss");
        let m = query(dns_addr, transport, "web.default.svc.cluster.local.", RecordType::AAAA).await;
        assert_negative(&m, ResponseCode::NoError, "AAAA of an IPv4 Service");
        let m = query(dns_addr, transport, "_http._tcp.web.default.svc.cluster.local.", RecordType::A).await;
        assert_negative(&m, ResponseCode::NoError, "A of an SRV name");
        let m = query(dns_addr, transport, "dns-version.cluster.local.", RecordType::TXT).await;
        assert_eq!(show(&m.answers), ["dns-version.cluster.local. TXT 1.1.0"]);
        // Everything else goes upstream, answers and errors alike.
        let m = query(dns_addr, transport, "www.upstream.test.", RecordType::A).await;
        assert_eq!((m.metadata.response_code, m.metadata.authoritative), (ResponseCode::NoError, false));
        assert_eq!(show(&m.answers), ["www.upstream.test. A 192.0.2.1"]);
        assert!(m.metadata.recursion_available);
        let m = query(dns_addr, transport, "missing.example.", RecordType::A).await;
        assert_eq!((m.metadata.response_code, m.metadata.authoritative), (ResponseCode::NXDomain, false));
    }
    let m = query(dns_addr, udp, &format!("{}.in-addr.arpa.", reverse(web_ip)), RecordType::PTR).await;
    assert_eq!(show(&m.answers)[0].split_once(" PTR ").unwrap().1, "web.default.svc.cluster.local.");
    // The cluster domain never went upstream; the ExternalName target did.
    let asked = upstream.asked();
    assert!(!asked.iter().any(|n| n.ends_with("cluster.local.")), "forwarded cluster names: {asked:?}");
    assert!(asked.contains(&"target.example.".to_string()), "{asked:?}");

    // A deleted Service is NXDOMAIN within a couple of seconds; so are its endpoint names.
    services.delete("db", &DeleteParams::default()).await.unwrap();
    services.delete("web", &DeleteParams::default()).await.unwrap();
    let took = wait_rcode(dns_addr, udp, "web.default.svc.cluster.local.", ResponseCode::NXDomain, 5).await;
    assert!(took < Duration::from_secs(3), "a deleted Service took {took:?} to disappear");
    wait_rcode(dns_addr, tcp, "db-0.db.default.svc.cluster.local.", ResponseCode::NXDomain, 3).await;

    // Metrics: responses by rcode, the latency histogram, the stores.
    let (code, body) = http_get(daemon.http, "/metrics").unwrap();
    assert_eq!(code, 200);
    for needle in [
        "dns_responses_total{rcode=\"NXDOMAIN\"}",
        "dns_responses_total{rcode=\"NOERROR\"}",
        "dns_requests_total{proto=\"tcp\",zone=\"cluster\"}",
        "dns_requests_total{proto=\"udp\",zone=\"forward\"}",
        "dns_request_duration_seconds_bucket{le=",
        "dns_services ",
    ] {
        assert!(body.contains(needle), "/metrics lacks {needle}:\n{body}");
    }

    // Restart-safe: a new process (after a kill -9) lists everything again.
    drop(daemon);
    let daemon = Daemon::start(&env, "cluster-dns", "cluster-dns", &[&listen, &up]);
    wait_healthy(daemon.http).await;
    let m = query(dns_addr, udp, "ext.default.svc.cluster.local.", RecordType::CNAME).await;
    assert_eq!(show(&m.answers), ["ext.default.svc.cluster.local. CNAME target.example."]);
    let m = query(dns_addr, tcp, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_negative(&m, ResponseCode::NXDomain, "web after the restart");
}

fn reverse(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else { panic!("IPv4 expected") };
    let o = v4.octets();
    format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0])
}

#[tokio::test]
async fn servfail_for_cluster_names_until_the_stores_are_synced() {
    // No api-server at all: the stores never sync.
    let upstream = FakeUpstream::start().await;
    let dns_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let pki = navarch_tests::TestPki::new();
    let kubeconfig = pki.kubeconfig_file("cluster-dns", &format!("https://127.0.0.1:{}", free_port()));
    let mut dns = spawn_dns(&kubeconfig, dns_addr, http, upstream.addr, None);
    eventually("cluster-dns to start", Duration::from_secs(30), async || {
        http_get(http, "/healthz").is_some()
    })
    .await;
    assert_eq!(http_get(http, "/healthz").unwrap().0, 503);
    let m = query(dns_addr, Transport::Udp, "kubernetes.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let m = query(dns_addr, Transport::Tcp, "x.upstream.test.", RecordType::A).await;
    assert_eq!(show(&m.answers), ["x.upstream.test. A 192.0.2.1"]);
    dns.kill9();
}

/// A cluster-dns process of our own (so that it can get a SIGTERM).
fn spawn_dns(
    kubeconfig: &std::path::Path,
    listen: SocketAddr,
    http: SocketAddr,
    upstream: SocketAddr,
    advertise: Option<&str>,
) -> ChildProcess {
    let mut cmd = Command::new(binary("cluster-dns", "cluster-dns"));
    cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--listen={listen}"))
        .arg(format!("--http-listen={http}"))
        .arg(format!("--upstream={upstream}"))
        .env("RUST_LOG", std::env::var("NAVARCH_TEST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null());
    if let Some(a) = advertise {
        cmd.arg(format!("--advertise-address={a}"));
    }
    ChildProcess::new(cmd.spawn().expect("starting cluster-dns"))
}

/// The IPs in `kube-system/kube-dns`'s Endpoints, with their ports.
async fn kube_dns_endpoints(api: &Api<Endpoints>) -> Vec<(String, Vec<(String, i32, String)>)> {
    let Some(e) = api.get_opt("kube-dns").await.unwrap() else { return Vec::new() };
    let mut out = Vec::new();
    for s in &e.subsets {
        let ports: Vec<(String, i32, String)> =
            s.ports.iter().map(|p| (p.name.clone(), p.port, p.protocol.clone())).collect();
        for a in &s.addresses {
            out.push((a.ip.clone(), ports.clone()));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn registers_as_kube_dns_and_leaves_on_sigterm() {
    let env = TestEnv::start().await;
    let client = env.client().await;
    let upstream = FakeUpstream::start().await;
    let kubeconfig = env.api_server.kubeconfig_file("cluster-dns");
    // Two instances, as on two nodes: same port, different loopback addresses.
    let dns_port = free_port();
    let addr1 = SocketAddr::from(([127, 0, 0, 2], dns_port));
    let addr2 = SocketAddr::from(([127, 0, 0, 3], dns_port));
    let (http1, http2) =
        (SocketAddr::from(([127, 0, 0, 1], free_port())), SocketAddr::from(([127, 0, 0, 1], free_port())));
    let mut one = spawn_dns(&kubeconfig, addr1, http1, upstream.addr, Some("10.0.0.53"));
    let _two = spawn_dns(&kubeconfig, addr2, http2, upstream.addr, Some("10.0.0.54"));
    wait_healthy(http1).await;
    wait_healthy(http2).await;

    let ports = vec![
        ("dns".to_string(), i32::from(dns_port), "UDP".to_string()),
        ("dns-tcp".to_string(), i32::from(dns_port), "TCP".to_string()),
    ];
    let eps: Api<Endpoints> = client.api("kube-system");
    eventually("both addresses in kube-dns's Endpoints", Duration::from_secs(10), async || {
        kube_dns_endpoints(&eps).await
            == [("10.0.0.53".to_string(), ports.clone()), ("10.0.0.54".to_string(), ports.clone())]
    })
    .await;
    let svcs: Api<Service> = client.api("kube-system");
    let svc = svcs.get("kube-dns").await.unwrap();
    let spec = svc.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip, "10.96.0.10");
    assert!(spec.selector.is_empty());
    assert_eq!(svc.meta().labels.get("k8s-app").map(String::as_str), Some("kube-dns"));
    let mut sp: Vec<(String, i32, String)> =
        spec.ports.iter().map(|p| (p.name.clone(), p.port, p.protocol.clone())).collect();
    sp.sort();
    assert_eq!(
        sp,
        [("dns".to_string(), 53, "UDP".to_string()), ("dns-tcp".to_string(), 53, "TCP".to_string())]
    );

    // The cluster's DNS answers for itself.
    eventually("kube-dns's A record", Duration::from_secs(5), async || {
        let m = query(addr2, Transport::Udp, "kube-dns.kube-system.svc.cluster.local.", RecordType::A).await;
        a_records(&m) == ["10.96.0.10".parse().unwrap()].into()
    })
    .await;
    let m = query(
        addr1,
        Transport::Tcp,
        "_dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(
        show(&m.answers),
        [
            "_dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local. SRV 0 100 53 kube-dns.kube-system.svc.cluster.local."
        ]
    );

    // Someone deletes the Endpoints: the instances put themselves back.
    eps.delete("kube-dns", &DeleteParams::default()).await.unwrap();
    eventually("the Endpoints to be restored", Duration::from_secs(10), async || {
        kube_dns_endpoints(&eps).await.len() == 2
    })
    .await;

    // SIGTERM: a clean exit, and only that instance's address leaves; the Service stays.
    assert!(one.terminate(), "cluster-dns did not exit cleanly on SIGTERM");
    assert_eq!(kube_dns_endpoints(&eps).await, [("10.0.0.54".to_string(), ports.clone())]);
    assert!(svcs.get_opt("kube-dns").await.unwrap().is_some());
}
