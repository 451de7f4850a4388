use std::time::Duration;

use prometheus_client::registry::Registry;

use super::*;
use crate::cgroups::Limits;
use crate::stats::collector::{NodeSample, Snapshot};
use crate::stats::du::{DirUsage, Measured};
use crate::stats::fs::FsStats;

#[derive(Debug)]
struct Fixed(Vec<Family>);

impl Collector for Fixed {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        encode(&mut encoder, &self.0)
    }
}

fn text(families: Vec<Family>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Fixed(families)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    out
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn usage(cpu_s: u64, ws: u64) -> Usage {
    Usage {
        cpu_ns: cpu_s * 1_000_000_000,
        memory_working_set: ws,
        memory_usage: ws + 100,
        memory_rss: ws / 2,
        memory_cache: 64,
        cfs_periods: 20,
        cfs_throttled_periods: 5,
        cfs_throttled_ns: 1_500_000_000,
    }
}

fn samples() -> Samples {
    let eth0 = InterfaceStats {
        name: "eth0".into(),
        rx_bytes: 1000,
        tx_bytes: 2000,
        rx_packets: 10,
        ..Default::default()
    };
    let snap = Snapshot {
        at: std::time::Instant::now(),
        time: at(1_700_000_000),
        node: NodeSample {
            usage: usage(500, 4000),
            interfaces: vec![InterfaceStats { name: "ens3".into(), rx_bytes: 7, ..Default::default() }],
            primary_interface: Some("ens3".into()),
            root_fs: None,
            image_fs: Some(FsStats { capacity_bytes: 1 << 30, ..Default::default() }),
            image_fs_device: "/dev/vdb".into(),
        },
        pods: vec![PodSample {
            uid: "U1".into(),
            name: "web".into(),
            namespace: "default".into(),
            usage: Some(usage(3, 2048)),
            network: Some(vec![eth0]),
            volumes: vec![],
        }],
        containers: vec![ContainerSample {
            id: "abc".into(),
            pod_uid: "U1".into(),
            pod_name: "web".into(),
            namespace: "default".into(),
            name: "app".into(),
            image: "nginx:1.27".into(),
            started: Some(at(1_699_999_000)),
            usage: usage(2, 1024),
            limits: Some(Limits { cpu_quota_us: Some(50_000), cpu_period_us: 100_000, memory_limit: None }),
            rootfs: Some(Measured { usage: DirUsage { bytes: 8192, inodes: 3 }, at: at(1_700_000_000) }),
        }],
    };
    let snap = Arc::new(snap);
    Samples { previous: snap.clone(), current: snap, window: Duration::from_secs(10) }
}

fn machine() -> MachineInfo {
    MachineInfo {
        cores: 4,
        memory_bytes: 8 << 30,
        machine_id: "m".into(),
        system_uuid: "s".into(),
        boot_id: "b".into(),
    }
}

#[test]
fn cadvisor_series_names_labels_and_types() {
    let out = text(cadvisor_families(Some(&samples()), &machine()));
    let app = r#"container="app",id="/navarch/podU1/abc",image="nginx:1.27",name="abc",namespace="default",pod="web""#;
    let pod = r#"container="",id="/navarch/podU1",image="",name="",namespace="default",pod="web""#;
    let sandbox = r#"container="POD",id="/navarch/podU1",image="",interface="eth0",name="",namespace="default",pod="web""#;
    for line in [
        "# HELP container_cpu_usage_seconds Cumulative cpu time consumed in seconds.".to_string(),
        "# TYPE container_cpu_usage_seconds counter".to_string(),
        r#"container_cpu_usage_seconds_total{container="app",cpu="total",id="/navarch/podU1/abc",image="nginx:1.27",name="abc",namespace="default",pod="web"} 2.0"#.to_string(),
        r#"container_cpu_usage_seconds_total{container="",cpu="total",id="/",image="",name="",namespace="",pod=""} 500.0"#.to_string(),
        format!("container_memory_working_set_bytes{{{app}}} 1024.0"),
        format!("container_memory_usage_bytes{{{app}}} 1124.0"),
        format!("container_memory_rss{{{app}}} 512.0"),
        format!("container_memory_working_set_bytes{{{pod}}} 2048.0"),
        "# TYPE container_network_receive_bytes counter".to_string(),
        format!("container_network_receive_bytes_total{{{sandbox}}} 1000.0"),
        format!("container_network_transmit_bytes_total{{{sandbox}}} 2000.0"),
        format!("container_network_receive_packets_total{{{sandbox}}} 10.0"),
        r#"container_network_receive_bytes_total{container="",id="/",image="",interface="ens3",name="",namespace="",pod=""} 7.0"#.to_string(),
        r#"container_fs_usage_bytes{container="app",device="/dev/vdb",id="/navarch/podU1/abc",image="nginx:1.27",name="abc",namespace="default",pod="web"} 8192.0"#.to_string(),
        r#"container_fs_limit_bytes{container="app",device="/dev/vdb",id="/navarch/podU1/abc",image="nginx:1.27",name="abc",namespace="default",pod="web"} 1073741824.0"#.to_string(),
        format!("container_last_seen{{{app}}} 1700000000.0"),
        format!("container_start_time_seconds{{{app}}} 1699999000.0"),
        format!("container_spec_cpu_quota{{{app}}} 50000.0"),
        format!("container_memory_cache{{{app}}} 64.0"),
        "# TYPE container_cpu_cfs_throttled_periods counter".to_string(),
        format!("container_cpu_cfs_periods_total{{{app}}} 20.0"),
        format!("container_cpu_cfs_throttled_periods_total{{{app}}} 5.0"),
        format!("container_cpu_cfs_throttled_seconds_total{{{app}}} 1.5"),
        format!("container_spec_cpu_period{{{app}}} 100000.0"),
        format!("container_spec_memory_limit_bytes{{{app}}} 0.0"),
        "container_scrape_error 0.0".to_string(),
        r#"machine_cpu_cores{boot_id="b",machine_id="m",system_uuid="s"} 4.0"#.to_string(),
        "# HELP machine_memory_bytes Amount of memory installed on the machine.".to_string(),
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    // The pod cgroup has no network of its own; the sandbox has no CPU series.
    assert!(!out.contains(&format!("container_network_receive_bytes_total{{{}", &pod[..pod.len() - 1])));
    assert!(!out.contains(r#"container_cpu_usage_seconds_total{container="POD""#));
}

#[test]
fn before_the_first_samples_only_machine_series_and_the_error() {
    let out = text(cadvisor_families(None, &machine()));
    assert!(out.contains("container_scrape_error 1.0"), "{out}");
    assert!(!out.contains("container_cpu_usage_seconds_total{"), "{out}");
    let out = text(resource_families(None));
    assert!(out.contains("scrape_error 1.0") && out.contains("resource_scrape_error 1.0"), "{out}");
}

#[test]
fn resource_series() {
    let out = text(resource_families(Some(&samples())));
    for line in [
        "# HELP node_cpu_usage_seconds Cumulative cpu time consumed by the node in core-seconds",
        "node_cpu_usage_seconds_total 500.0",
        "node_memory_working_set_bytes 4000.0",
        r#"container_cpu_usage_seconds_total{container="app",namespace="default",pod="web"} 2.0"#,
        r#"container_memory_working_set_bytes{container="app",namespace="default",pod="web"} 1024.0"#,
        r#"container_start_time_seconds{container="app",namespace="default",pod="web"} 1699999000.0"#,
        r#"pod_cpu_usage_seconds_total{namespace="default",pod="web"} 3.0"#,
        r#"pod_memory_working_set_bytes{namespace="default",pod="web"} 2048.0"#,
        "scrape_error 0.0",
        "resource_scrape_error 0.0",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
}

#[test]
fn paths_of_the_series() {
    assert_eq!(Series::at("/metrics/cadvisor"), Some(Series::Cadvisor));
    assert_eq!(Series::at("/metrics/resource"), Some(Series::Resource));
    assert_eq!(Series::at("/metrics"), None);
}
