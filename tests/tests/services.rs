//! Services get their cluster IP and node ports from the api-server, as in Kubernetes: allocated on
//! create, checked when given, released on type changes and deletion, kept in etcd (in the same
//! transaction as the Service) so that they survive restarts and concurrent creates never share one.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use navarch_api::Object;
use navarch_api::Resource;
use navarch_api::proto::{self, api_server_client::ApiServerClient};
use navarch_api::v1::{ObjectMeta, Service, ServicePort, ServiceSpec};
use navarch_client::{Api, DeleteParams, Error};
use navarch_tests::TestEnv;

const IP_KEYS: &str = "/registry/ranges/serviceips/";
const PORT_KEYS: &str = "/registry/ranges/servicenodeports/";

fn service(name: &str, ty: &str, cluster_ip: &str, node_ports: &[i32]) -> Service {
    let ports = if node_ports.is_empty() {
        vec![ServicePort { name: "p0".into(), port: 80, ..Default::default() }]
    } else {
        node_ports
            .iter()
            .enumerate()
            .map(|(i, np)| ServicePort {
                name: format!("p{i}"),
                port: 80 + i as i32,
                node_port: *np,
                ..Default::default()
            })
            .collect()
    };
    Service {
        metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }),
        spec: Some(ServiceSpec {
            r#type: ty.into(),
            cluster_ip: cluster_ip.into(),
            selector: [("app".to_string(), name.to_string())].into(),
            ports,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn spec(s: &Service) -> &ServiceSpec {
    s.spec.as_ref().expect("spec")
}

fn node_ports(s: &Service) -> Vec<i32> {
    spec(s).ports.iter().map(|p| p.node_port).collect()
}

/// The keys under `prefix` in etcd, without the prefix, with their values; but those of the api-server's
/// own `default/kubernetes` Service.
async fn allocations(env: &TestEnv, prefix: &str) -> Vec<(String, String)> {
    let mut c = env.etcd.client().await;
    let resp = c.get(prefix, Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
    resp.kvs()
        .iter()
        .map(|kv| {
            let k = String::from_utf8_lossy(kv.key());
            (k.trim_start_matches(prefix).to_string(), String::from_utf8_lossy(kv.value()).into_owned())
        })
        .filter(|(_, owner)| !owner.starts_with("default/kubernetes/"))
        .collect()
}

/// The api-server's `default/kubernetes` Service, once it has made it.
async fn kubernetes_service(svcs: &Api<Service>) -> Service {
    navarch_tests::eventually("default/kubernetes", std::time::Duration::from_secs(20), async || {
        svcs.get_opt("kubernetes").await.ok()?
    })
    .await
}

async fn allocated(env: &TestEnv, prefix: &str) -> BTreeSet<String> {
    allocations(env, prefix).await.into_iter().map(|(k, _)| k).collect()
}

fn invalid(err: Error) -> String {
    match err {
        Error::Invalid(m) => m,
        e => panic!("expected an Invalid error, got {e}"),
    }
}

fn ip_of(s: &Service) -> Ipv4Addr {
    spec(s).cluster_ip.parse().unwrap_or_else(|_| panic!("clusterIP {:?}", spec(s).cluster_ip))
}

/// Inside the default 10.96.0.0/12, neither its network nor its broadcast address.
fn in_default_range(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    o[0] == 10
        && (96..112).contains(&o[1])
        && ip != Ipv4Addr::new(10, 96, 0, 0)
        && ip != Ipv4Addr::new(10, 111, 255, 255)
}

#[tokio::test]
async fn cluster_ips_allocated_given_and_refused() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let svcs: Api<Service> = c.api("default");

    let a = svcs.create(&service("a", "", "", &[])).await.unwrap();
    let ip = ip_of(&a);
    assert!(in_default_range(ip) && ip != Ipv4Addr::new(10, 96, 0, 1), "{ip}");
    let sp = spec(&a);
    assert_eq!(sp.r#type, "ClusterIP");
    assert_eq!(sp.cluster_i_ps, [ip.to_string()]);
    assert_eq!(sp.ip_families, ["IPv4"]);
    assert_eq!(sp.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(svcs.get("a").await.unwrap(), a, "stored as returned");
    let uid = &a.meta().uid;
    assert_eq!(allocations(&env, IP_KEYS).await, [(ip.to_string(), format!("default/a/{uid}"))]);

    // Given: honoured. The first address is never picked: the api-server's `kubernetes` Service has it.
    let b = svcs.create(&service("b", "ClusterIP", "10.96.0.20", &[])).await.unwrap();
    assert_eq!(spec(&b).cluster_ip, "10.96.0.20");
    assert_eq!(spec(&b).cluster_i_ps, ["10.96.0.20"]);
    assert_eq!(spec(&kubernetes_service(&svcs).await).cluster_ip, "10.96.0.1");
    let err = invalid(svcs.create(&service("k", "ClusterIP", "10.96.0.1", &[])).await.unwrap_err());
    assert!(err.contains("\"10.96.0.1\": provided IP is already allocated"), "{err}");
    let mut only_ips = service("ips", "ClusterIP", "", &[]);
    only_ips.spec.as_mut().unwrap().cluster_i_ps = vec!["10.96.0.30".into()];
    let only_ips = svcs.create(&only_ips).await.unwrap();
    assert_eq!(spec(&only_ips).cluster_ip, "10.96.0.30", "clusterIPs alone ask for their first entry");
    svcs.delete("ips", &DeleteParams::default()).await.unwrap();

    // Taken, out of range, network and broadcast addresses: refused, nothing stored.
    let err = invalid(svcs.create(&service("dup", "ClusterIP", "10.96.0.20", &[])).await.unwrap_err());
    assert!(
        err.contains("spec.clusterIP: Invalid value: \"10.96.0.20\": provided IP is already allocated"),
        "{err}"
    );
    for bad in ["10.112.0.1", "10.96.0.0", "10.111.255.255", "192.168.1.1"] {
        let err = invalid(svcs.create(&service("out", "ClusterIP", bad, &[])).await.unwrap_err());
        assert!(
            err.contains(&format!(
                "spec.clusterIP: Invalid value: \"{bad}\": provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12"
            )),
            "{err}"
        );
    }
    for name in ["dup", "out"] {
        assert!(matches!(svcs.get(name).await, Err(Error::NotFound(_))));
    }
    let ips = allocated(&env, IP_KEYS).await;
    assert_eq!(ips, BTreeSet::from([ip.to_string(), "10.96.0.20".into()]));

    // Headless and ExternalName: no IP.
    let h = svcs.create(&service("headless", "ClusterIP", "None", &[])).await.unwrap();
    assert_eq!(spec(&h).cluster_ip, "None");
    assert_eq!(spec(&h).cluster_i_ps, ["None"]);
    let mut ext = service("ext", "ExternalName", "", &[]);
    ext.spec.as_mut().unwrap().external_name = "example.com".into();
    let ext = svcs.create(&ext).await.unwrap();
    assert_eq!(spec(&ext).cluster_ip, "");
    assert!(spec(&ext).cluster_i_ps.is_empty());
    assert_eq!(allocated(&env, IP_KEYS).await, ips, "headless and ExternalName allocate nothing");

    // Updates keep the IP (also when the client leaves it out) and cannot change it.
    let mut blind = service("b", "ClusterIP", "", &[]);
    blind.meta_mut().labels.insert("x".into(), "y".into());
    let b2 = svcs.update(&blind).await.unwrap();
    assert_eq!(spec(&b2).cluster_ip, "10.96.0.20");
    let mut moved = b2.clone();
    moved.spec.as_mut().unwrap().cluster_ip = "10.96.0.21".into();
    moved.spec.as_mut().unwrap().cluster_i_ps = vec!["10.96.0.21".into()];
    let err = invalid(svcs.update(&moved).await.unwrap_err());
    assert!(err.contains("spec.clusterIP: field is immutable"), "{err}");

    // Delete releases: the same IP can be given to a new Service.
    svcs.delete("b", &DeleteParams::default()).await.unwrap();
    assert!(!allocated(&env, IP_KEYS).await.contains("10.96.0.20"));
    let b3 = svcs.create(&service("b3", "ClusterIP", "10.96.0.20", &[])).await.unwrap();
    assert_eq!(spec(&b3).cluster_ip, "10.96.0.20");
    svcs.delete("a", &DeleteParams::default()).await.unwrap();
    let again = svcs.create(&service("a2", "ClusterIP", &ip.to_string(), &[])).await.unwrap();
    assert_eq!(ip_of(&again), ip);
}

#[tokio::test]
async fn node_ports_allocated_given_refused_and_released() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let svcs: Api<Service> = c.api("default");

    let a = svcs.create(&service("a", "NodePort", "", &[0, 0])).await.unwrap();
    let nps = node_ports(&a);
    assert!(nps.iter().all(|p| (30000..=32767).contains(p)), "{nps:?}");
    assert_ne!(nps[0], nps[1]);
    assert!(in_default_range(ip_of(&a)), "NodePort Services get a cluster IP too");
    let want: BTreeSet<String> = nps.iter().map(|p| p.to_string()).collect();
    assert_eq!(allocated(&env, PORT_KEYS).await, want);

    // Ports with the same number (different protocols) share one node port.
    let mut dns = service("dns", "NodePort", "", &[0, 0]);
    {
        let ports = &mut dns.spec.as_mut().unwrap().ports;
        ports[1].port = 80;
        ports[1].protocol = "UDP".into();
    }
    let dns = svcs.create(&dns).await.unwrap();
    assert_eq!(node_ports(&dns)[0], node_ports(&dns)[1]);
    assert_ne!(node_ports(&dns)[0], 0);

    let b = svcs.create(&service("b", "NodePort", "", &[30080])).await.unwrap();
    assert_eq!(node_ports(&b), [30080]);
    let err = invalid(svcs.create(&service("dup", "NodePort", "", &[30080])).await.unwrap_err());
    assert!(
        err.contains("spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"),
        "{err}"
    );
    let err = invalid(svcs.create(&service("dup", "NodePort", "", &[0, 30080])).await.unwrap_err());
    assert!(
        err.contains("spec.ports[1].nodePort: Invalid value: 30080: provided port is already allocated"),
        "{err}"
    );
    let err = invalid(svcs.create(&service("out", "NodePort", "", &[8080])).await.unwrap_err());
    assert!(
        err.contains("spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        "{err}"
    );
    let err = invalid(svcs.create(&service("cip", "ClusterIP", "", &[30099])).await.unwrap_err());
    assert!(
        err.contains("spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"),
        "{err}"
    );
    for name in ["dup", "out", "cip"] {
        assert!(matches!(svcs.get(name).await, Err(Error::NotFound(_))));
    }
    let ports_now = allocated(&env, PORT_KEYS).await;
    assert_eq!(ports_now.len(), 4, "a: 2, dns: 1, b: 1; failed creates leak nothing: {ports_now:?}");
    assert_eq!(allocated(&env, IP_KEYS).await.len(), 3, "failed creates leak no IP");

    // LoadBalancer: node ports unless allocateLoadBalancerNodePorts is false.
    let lb = svcs.create(&service("lb", "LoadBalancer", "", &[0])).await.unwrap();
    assert!((30000..=32767).contains(&node_ports(&lb)[0]));
    let mut bare = service("lb-bare", "LoadBalancer", "", &[0]);
    bare.spec.as_mut().unwrap().allocate_load_balancer_node_ports = Some(false);
    let bare = svcs.create(&bare).await.unwrap();
    assert_eq!(node_ports(&bare), [0]);
    let mut local = service("lb-local", "LoadBalancer", "", &[0]);
    local.spec.as_mut().unwrap().external_traffic_policy = "Local".into();
    let local = svcs.create(&local).await.unwrap();
    let hc = spec(&local).health_check_node_port;
    assert!((30000..=32767).contains(&hc) && hc != node_ports(&local)[0], "{hc}");

    // Changing a node port releases the old one and claims the new one.
    let mut moved = svcs.get("b").await.unwrap();
    moved.spec.as_mut().unwrap().ports[0].node_port = 30081;
    let moved = svcs.update(&moved).await.unwrap();
    assert_eq!(node_ports(&moved), [30081]);
    let ports_now = allocated(&env, PORT_KEYS).await;
    assert!(ports_now.contains("30081") && !ports_now.contains("30080"), "{ports_now:?}");
    let c1 = svcs.create(&service("c1", "NodePort", "", &[30080])).await.unwrap();
    assert_eq!(node_ports(&c1), [30080]);

    // An update that leaves node ports out keeps them.
    let blind = service("c1", "NodePort", "", &[0]);
    assert_eq!(node_ports(&svcs.update(&blind).await.unwrap()), [30080]);

    // NodePort -> ClusterIP (node ports sent back unchanged): cleared and released.
    let mut cip = svcs.get("a").await.unwrap();
    cip.spec.as_mut().unwrap().r#type = "ClusterIP".into();
    let cip = svcs.update(&cip).await.unwrap();
    assert_eq!(node_ports(&cip), [0, 0]);
    assert_eq!(spec(&cip).external_traffic_policy, "");
    let ports_now = allocated(&env, PORT_KEYS).await;
    assert!(nps.iter().all(|p| !ports_now.contains(&p.to_string())), "{ports_now:?}");
    let reuse = svcs.create(&service("reuse", "NodePort", "", &[nps[0], nps[1]])).await.unwrap();
    assert_eq!(node_ports(&reuse), nps, "released ports can be given again");

    // ClusterIP -> NodePort: allocated.
    let mut np = svcs.get("a").await.unwrap();
    np.spec.as_mut().unwrap().r#type = "NodePort".into();
    let np = svcs.update(&np).await.unwrap();
    assert!(node_ports(&np).iter().all(|p| (30000..=32767).contains(p) && !nps.contains(p)));
    assert_eq!(ip_of(&np), ip_of(&a), "the cluster IP stays");

    // Delete releases the IP and every node port; the registry holds exactly what live Services hold.
    for name in ["a", "dns", "b", "lb", "lb-bare", "lb-local", "c1", "reuse"] {
        svcs.delete(name, &DeleteParams::default()).await.unwrap();
    }
    assert!(allocated(&env, PORT_KEYS).await.is_empty());
    assert!(allocated(&env, IP_KEYS).await.is_empty());
}

#[tokio::test]
async fn concurrent_creates_get_distinct_values() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let svcs: Api<Service> = c.api("default");
        tasks.push(tokio::spawn(async move {
            svcs.create(&service(&format!("s{i}"), "NodePort", "", &[0, 0])).await.unwrap()
        }));
    }
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for t in tasks {
        let s = t.await.unwrap();
        assert!(ips.insert(ip_of(&s)), "IP {} given twice", ip_of(&s));
        for p in node_ports(&s) {
            assert!(ports.insert(p), "node port {p} given twice");
        }
    }
    assert_eq!((ips.len(), ports.len()), (50, 100));
    let stored_ips: BTreeSet<Ipv4Addr> =
        allocated(&env, IP_KEYS).await.iter().map(|k| k.parse().unwrap()).collect();
    assert_eq!(stored_ips, ips);
    let stored_ports: BTreeSet<i32> =
        allocated(&env, PORT_KEYS).await.iter().map(|k| k.parse().unwrap()).collect();
    assert_eq!(stored_ports, ports);

    // Concurrent creates asking for the same values: exactly one wins each. The port is one the random
    // allocations above left free (31777 was given to one of them about once in 28 runs).
    let port = (31777..).find(|p| !ports.contains(p)).expect("a free node port");
    let mut tasks = Vec::new();
    for i in 0..10 {
        let svcs: Api<Service> = c.api("default");
        tasks.push(tokio::spawn(async move {
            svcs.create(&service(&format!("same{i}"), "NodePort", "10.96.7.7", &[port])).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => {
                let m = invalid(e);
                assert!(m.contains("provided IP is already allocated"), "{m}");
            }
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn allocations_survive_a_crash() {
    let mut env = TestEnv::start().await;
    let c = env.client().await;
    let svcs: Api<Service> = c.api("default");
    let a = svcs.create(&service("a", "NodePort", "10.96.1.1", &[30500])).await.unwrap();
    let b = svcs.create(&service("b", "NodePort", "", &[0])).await.unwrap();

    env.api_server.kill9();
    env.api_server.restart().await;
    let c = env.client().await;
    let svcs: Api<Service> = c.api("default");
    for (ip, port) in
        [("10.96.1.1", 0), (spec(&b).cluster_ip.as_str(), 0), ("", 30500), ("", node_ports(&b)[0])]
    {
        let err = invalid(svcs.create(&service("x", "NodePort", ip, &[port])).await.unwrap_err());
        assert!(err.contains("is already allocated"), "{ip} {port}: {err}");
    }
    assert!(!env.api_server.log().contains("repair:"), "nothing to repair:\n{}", env.api_server.log());
    svcs.delete("a", &DeleteParams::default()).await.unwrap();
    let x = svcs.create(&service("x", "NodePort", "10.96.1.1", &[30500])).await.unwrap();
    assert_eq!((ip_of(&x), node_ports(&x)), (ip_of(&a), node_ports(&a)));
}

#[tokio::test]
async fn repair_at_start_removes_stale_and_records_missing_allocations() {
    let mut env = TestEnv::start().await;
    let c = env.client().await;
    let svcs: Api<Service> = c.api("default");
    let a = svcs.create(&service("a", "NodePort", "", &[0])).await.unwrap();
    let mut etcd = env.etcd.client().await;
    // A key nobody holds, and a Service whose key went missing (as for objects stored before
    // allocation existed).
    etcd.put(format!("{IP_KEYS}10.96.9.9"), "default/ghost/x", None).await.unwrap();
    etcd.put(format!("{PORT_KEYS}31999"), "default/ghost/x", None).await.unwrap();
    etcd.delete(format!("{IP_KEYS}{}", ip_of(&a)), None).await.unwrap();

    env.api_server.restart().await;
    let log = env.api_server.log();
    assert!(log.contains("repair: released an allocation no Service holds"), "{log}");
    assert!(log.contains("repair: recorded an allocation the Service held without a key"), "{log}");
    let ips = allocated(&env, IP_KEYS).await;
    assert_eq!(ips, BTreeSet::from([ip_of(&a).to_string()]));
    let ports = allocated(&env, PORT_KEYS).await;
    assert_eq!(ports, BTreeSet::from([node_ports(&a)[0].to_string()]));
    let c = env.client().await;
    let svcs: Api<Service> = c.api("default");
    svcs.create(&service("ghost", "NodePort", "10.96.9.9", &[31999])).await.unwrap();
}

#[tokio::test]
async fn external_name_and_finalizers() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let svcs: Api<Service> = c.api("default");

    // ClusterIP -> ExternalName releases the IP; back allocates one.
    let a = svcs.create(&service("a", "ClusterIP", "10.96.2.2", &[])).await.unwrap();
    let mut ext = a.clone();
    {
        let s = ext.spec.as_mut().unwrap();
        s.r#type = "ExternalName".into();
        s.external_name = "example.com".into();
    }
    let ext = svcs.update(&ext).await.unwrap();
    assert_eq!(spec(&ext).cluster_ip, "");
    assert!(spec(&ext).ip_families.is_empty() && spec(&ext).ip_family_policy.is_none());
    assert!(allocated(&env, IP_KEYS).await.is_empty());
    let mut back = ext.clone();
    {
        let s = back.spec.as_mut().unwrap();
        s.r#type = "ClusterIP".into();
        s.external_name.clear();
    }
    let back = svcs.update(&back).await.unwrap();
    assert!(in_default_range(ip_of(&back)));
    assert_eq!(allocated(&env, IP_KEYS).await, BTreeSet::from([ip_of(&back).to_string()]));

    // A Service held by a finalizer keeps its allocations until it is really gone.
    let mut f = service("f", "NodePort", "10.96.3.3", &[30303]);
    f.meta_mut().finalizers = vec!["example.com/hold".into()];
    svcs.create(&f).await.unwrap();
    assert!(svcs.delete("f", &DeleteParams::default()).await.unwrap().pending);
    let err = invalid(svcs.create(&service("g", "NodePort", "10.96.3.3", &[0])).await.unwrap_err());
    assert!(err.contains("provided IP is already allocated"), "{err}");
    let mut f = svcs.get("f").await.unwrap();
    f.meta_mut().finalizers.clear();
    svcs.update(&f).await.unwrap();
    assert!(matches!(svcs.get("f").await, Err(Error::NotFound(_))));
    let g = svcs.create(&service("g", "NodePort", "10.96.3.3", &[30303])).await.unwrap();
    assert_eq!(node_ports(&g), [30303]);
}

#[tokio::test]
async fn dry_run_allocates_nothing() {
    let env = TestEnv::start().await;
    let c = env.client().await;
    let svcs: Api<Service> = c.api("default");
    svcs.create(&service("taken", "NodePort", "10.96.4.4", &[30444])).await.unwrap();
    let mut grpc = ApiServerClient::new(env.grpc_channel().await);
    let request = |s: &Service| {
        let mut s = s.clone();
        s.meta_mut().namespace = "default".into();
        proto::CreateRequest { object: Some(Object::Service(s).to_proto()), dry_run: true }
    };

    let resp = grpc.create(request(&service("dry", "NodePort", "", &[0]))).await.unwrap().into_inner();
    let Object::Service(dry) = Object::from_proto(&resp).unwrap() else { panic!("not a Service") };
    assert!(in_default_range(ip_of(&dry)));
    assert!((30000..=32767).contains(&node_ports(&dry)[0]));
    assert!(matches!(svcs.get("dry").await, Err(Error::NotFound(_))));
    assert_eq!(allocated(&env, IP_KEYS).await, BTreeSet::from(["10.96.4.4".to_string()]));
    assert_eq!(allocated(&env, PORT_KEYS).await, BTreeSet::from(["30444".to_string()]));

    // Given values are checked all the same.
    let status = grpc.create(request(&service("dry", "NodePort", "10.96.4.4", &[30444]))).await.unwrap_err();
    assert_eq!(format!("{:?}", status.code()), "InvalidArgument");
    assert!(
        status
            .message()
            .contains("spec.clusterIP: Invalid value: \"10.96.4.4\": provided IP is already allocated")
    );
    assert!(
        status
            .message()
            .contains("spec.ports[0].nodePort: Invalid value: 30444: provided port is already allocated")
    );

    // A dry-run update that would allocate writes nothing either.
    let cip = svcs.create(&service("cip", "ClusterIP", "", &[])).await.unwrap();
    let mut np = cip.clone();
    np.spec.as_mut().unwrap().r#type = "NodePort".into();
    let resp = grpc
        .update(proto::UpdateRequest { object: Some(Object::Service(np).to_proto()), dry_run: true })
        .await
        .unwrap()
        .into_inner();
    let Object::Service(np) = Object::from_proto(&resp).unwrap() else { panic!("not a Service") };
    assert!((30000..=32767).contains(&node_ports(&np)[0]));
    assert_eq!(svcs.get("cip").await.unwrap(), cip);
    assert_eq!(allocated(&env, PORT_KEYS).await, BTreeSet::from(["30444".to_string()]));
}

#[tokio::test]
async fn a_full_range_is_a_clear_error() {
    let env = TestEnv::start_with(&[
        "--service-cluster-ip-range=10.100.0.0/29",
        "--service-node-port-range=30000-30002",
    ])
    .await;
    let c = env.client().await;
    let svcs: Api<Service> = c.api("default");
    // 10.100.0.0/29: .0 is the network, .7 the broadcast address, .1 kept for the `kubernetes` Service.
    let mut ips = BTreeSet::new();
    for i in 0..5 {
        let s = svcs.create(&service(&format!("s{i}"), "", "", &[])).await.unwrap();
        ips.insert(ip_of(&s));
    }
    let want: BTreeSet<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(10, 100, 0, i)).collect();
    assert_eq!(ips, want);
    let full = |e: Error| match e {
        Error::Api { code, message } => {
            assert_eq!(format!("{code:?}"), "ResourceExhausted");
            message
        }
        e => panic!("expected ResourceExhausted, got {e}"),
    };
    let m = full(svcs.create(&service("s5", "", "", &[])).await.unwrap_err());
    assert_eq!(
        m,
        "Service \"s5\": spec.clusterIP: Internal error: failed to allocate a serviceIP: range is full (the range of valid IPs is 10.100.0.0/29)"
    );
    assert!(matches!(svcs.get("s5").await, Err(Error::NotFound(_))), "nothing stored");
    // The reserved first address is the `kubernetes` Service's; headless Services need none.
    assert_eq!(spec(&kubernetes_service(&svcs).await).cluster_ip, "10.100.0.1");
    svcs.create(&service("headless", "ClusterIP", "None", &[])).await.unwrap();
    let err = invalid(svcs.create(&service("x", "ClusterIP", "10.100.0.9", &[])).await.unwrap_err());
    assert!(err.contains("The range of valid IPs is 10.100.0.0/29"), "{err}");

    // Deleting one frees its address for the next.
    svcs.delete("s3", &DeleteParams::default()).await.unwrap();
    svcs.create(&service("s6", "", "", &[])).await.unwrap();

    // Node ports run out the same way; nothing of the failed create is kept.
    svcs.delete("s0", &DeleteParams::default()).await.unwrap();
    let np = svcs.create(&service("np", "NodePort", "", &[0, 0, 0])).await.unwrap();
    assert_eq!(node_ports(&np).into_iter().collect::<BTreeSet<_>>(), BTreeSet::from([30000, 30001, 30002]));
    svcs.delete("s1", &DeleteParams::default()).await.unwrap();
    let m = full(svcs.create(&service("np2", "NodePort", "", &[0])).await.unwrap_err());
    assert!(
        m.contains("spec.ports[0].nodePort: Internal error: failed to allocate a nodePort: range is full"),
        "{m}"
    );
    assert_eq!(allocated(&env, IP_KEYS).await.len(), 4, "no IP kept for the failed create");
}
