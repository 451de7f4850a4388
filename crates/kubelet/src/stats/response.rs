//! The `Stats` answer from the sampler's last two samples: CPU in nanocores as the rate between
//! them (0 for what the previous sample did not have yet), memory, network and filesystem figures
//! from the newer one.

use std::collections::BTreeMap;

use navarch_api::kubelet_proto::{
    ContainerUsage, FsUsage, InterfaceUsage, NetworkUsage, PodUsage, StatsResponse, VolumeUsage,
};

use super::collector::Samples;
use super::du::Measured;
use super::fs::FsStats;
use super::net::{InterfaceStats, sum};

fn interface(i: &InterfaceStats) -> InterfaceUsage {
    InterfaceUsage {
        name: i.name.clone(),
        rx_bytes: i.rx_bytes,
        rx_packets: i.rx_packets,
        rx_errors: i.rx_errors,
        rx_dropped: i.rx_dropped,
        tx_bytes: i.tx_bytes,
        tx_packets: i.tx_packets,
        tx_errors: i.tx_errors,
        tx_dropped: i.tx_dropped,
    }
}

/// `totals` summed into the top-level counters, every interface listed.
fn network(totals: &InterfaceStats, all: &[InterfaceStats]) -> NetworkUsage {
    NetworkUsage {
        rx_bytes: totals.rx_bytes,
        tx_bytes: totals.tx_bytes,
        rx_errors: totals.rx_errors,
        tx_errors: totals.tx_errors,
        interfaces: all.iter().map(interface).collect(),
    }
}

fn fs(f: &FsStats) -> FsUsage {
    FsUsage {
        capacity_bytes: f.capacity_bytes,
        available_bytes: f.available_bytes,
        used_bytes: f.used_bytes,
        inodes: f.inodes,
        inodes_free: f.inodes_free,
        inodes_used: f.inodes_used,
    }
}

fn dir(m: &Measured) -> FsUsage {
    FsUsage { used_bytes: m.usage.bytes, inodes_used: m.usage.inodes, ..Default::default() }
}

/// The answer for `node_name`.
pub fn stats_response(node_name: &str, s: &Samples) -> StatsResponse {
    let window = s.window.as_secs_f64().max(0.001);
    let rate = |now: u64, before: Option<u64>| {
        before.map(|b| (now.saturating_sub(b) as f64 / window) as u64).unwrap_or(0)
    };
    let (cur, prev) = (&s.current, &s.previous);
    let mut pods: BTreeMap<&str, PodUsage> = BTreeMap::new();
    for p in &cur.pods {
        let before = prev.pods.iter().find(|q| q.uid == p.uid).and_then(|q| q.usage);
        let usage = p.usage.unwrap_or_default();
        pods.insert(
            &p.uid,
            PodUsage {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                uid: p.uid.clone(),
                containers: vec![],
                network: p.network.as_ref().map(|ifs| network(&sum("", ifs), ifs)),
                volumes: p
                    .volumes
                    .iter()
                    .map(|(name, m)| VolumeUsage { name: name.clone(), fs: Some(dir(m)) })
                    .collect(),
                cpu_nano_cores: rate(usage.cpu_ns, before.map(|b| b.cpu_ns)),
                memory_working_set_bytes: usage.memory_working_set,
                cpu_usage_core_nano_seconds: usage.cpu_ns,
            },
        );
    }
    let image_fs = cur.node.image_fs.as_ref().map(fs);
    for c in &cur.containers {
        let Some(pod) = pods.get_mut(c.pod_uid.as_str()) else { continue };
        let before = prev.containers.iter().find(|b| b.id == c.id).map(|b| b.usage.cpu_ns);
        let rootfs = c.rootfs.as_ref().map(|m| FsUsage {
            capacity_bytes: image_fs.as_ref().map(|f| f.capacity_bytes).unwrap_or(0),
            available_bytes: image_fs.as_ref().map(|f| f.available_bytes).unwrap_or(0),
            ..dir(m)
        });
        pod.containers.push(ContainerUsage {
            name: c.name.clone(),
            cpu_nano_cores: rate(c.usage.cpu_ns, before),
            memory_working_set_bytes: c.usage.memory_working_set,
            cpu_usage_core_nano_seconds: c.usage.cpu_ns,
            memory_usage_bytes: c.usage.memory_usage,
            memory_rss_bytes: c.usage.memory_rss,
            rootfs,
        });
    }
    let node = &cur.node;
    let primary = node
        .primary_interface
        .as_ref()
        .and_then(|name| node.interfaces.iter().find(|i| &i.name == name))
        .cloned()
        .unwrap_or_default();
    StatsResponse {
        node_name: node_name.to_string(),
        node_cpu_nano_cores: rate(node.usage.cpu_ns, Some(prev.node.usage.cpu_ns)),
        node_memory_working_set_bytes: node.usage.memory_working_set,
        pods: pods.into_values().filter(|p| !p.containers.is_empty()).collect(),
        timestamp: humantime::format_rfc3339_seconds(cur.time).to_string(),
        window_seconds: window,
        node_network: Some(network(&primary, &node.interfaces)),
        node_fs: node.root_fs.as_ref().map(fs),
        image_fs,
        node_cpu_usage_core_nano_seconds: node.usage.cpu_ns,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::cgroups::Usage;
    use crate::stats::collector::{ContainerSample, NodeSample, PodSample, Snapshot};
    use crate::stats::du::DirUsage;

    fn usage(cpu_ns: u64, ws: u64) -> Usage {
        Usage { cpu_ns, memory_working_set: ws, memory_usage: ws, ..Usage::default() }
    }

    fn container(id: &str, cpu_ns: u64) -> ContainerSample {
        ContainerSample {
            id: id.into(),
            pod_uid: "U".into(),
            pod_name: "web".into(),
            namespace: "ns".into(),
            name: format!("c-{id}"),
            usage: usage(cpu_ns, 1000),
            ..Default::default()
        }
    }

    fn snapshot(node_cpu: u64, pod_cpu: u64, containers: Vec<ContainerSample>) -> Snapshot {
        let i = |name: &str, rx| InterfaceStats {
            name: name.into(),
            rx_bytes: rx,
            tx_bytes: 2 * rx,
            ..Default::default()
        };
        Snapshot {
            at: std::time::Instant::now(),
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            node: NodeSample {
                usage: usage(node_cpu, 5000),
                interfaces: vec![i("navarch0", 50), i("ens3", 900)],
                primary_interface: Some("ens3".into()),
                root_fs: Some(FsStats {
                    capacity_bytes: 100,
                    available_bytes: 40,
                    used_bytes: 50,
                    ..Default::default()
                }),
                image_fs: Some(FsStats { capacity_bytes: 200, available_bytes: 80, ..Default::default() }),
                image_fs_device: String::new(),
            },
            pods: vec![PodSample {
                uid: "U".into(),
                name: "web".into(),
                namespace: "ns".into(),
                usage: Some(usage(pod_cpu, 3000)),
                network: Some(vec![i("eth0", 10), i("net1", 5)]),
                volumes: vec![(
                    "cache".into(),
                    Measured { usage: DirUsage { bytes: 4096, inodes: 2 }, at: SystemTime::UNIX_EPOCH },
                )],
            }],
            containers,
        }
    }

    #[test]
    fn rates_between_the_two_samples_and_the_newer_figures() {
        let mut with_layer = container("b", 9_000_000_000);
        with_layer.rootfs =
            Some(Measured { usage: DirUsage { bytes: 8192, inodes: 3 }, at: SystemTime::UNIX_EPOCH });
        let s = Samples {
            previous: Arc::new(snapshot(10_000_000_000, 1_000_000_000, vec![container("a", 1_000_000_000)])),
            current: Arc::new(snapshot(
                30_000_000_000,
                3_500_000_000,
                vec![container("a", 2_000_000_000), with_layer],
            )),
            window: Duration::from_secs(10),
        };
        let r = stats_response("n1", &s);
        assert_eq!(r.node_name, "n1");
        assert_eq!(r.window_seconds, 10.0);
        // (30 - 10) s of CPU over 10 s: 2 cores.
        assert_eq!(r.node_cpu_nano_cores, 2_000_000_000);
        assert_eq!(r.node_cpu_usage_core_nano_seconds, 30_000_000_000);
        let net = r.node_network.unwrap();
        assert_eq!((net.rx_bytes, net.tx_bytes, net.interfaces.len()), (900, 1800, 2));
        assert_eq!(r.node_fs.unwrap().used_bytes, 50);
        assert_eq!(r.timestamp, "2023-11-14T22:13:20Z");
        let pod = &r.pods[0];
        assert_eq!(pod.cpu_nano_cores, 250_000_000);
        assert_eq!(pod.cpu_usage_core_nano_seconds, 3_500_000_000);
        let pod_net = pod.network.as_ref().unwrap();
        assert_eq!((pod_net.rx_bytes, pod_net.tx_bytes), (15, 30));
        assert_eq!(pod.volumes[0].fs.as_ref().map(|f| (f.used_bytes, f.inodes_used)), Some((4096, 2)));
        assert_eq!(pod.containers.len(), 2);
        assert_eq!(pod.containers[0].cpu_nano_cores, 100_000_000);
        assert_eq!(pod.containers[0].rootfs, None);
        // New since the previous sample: no rate yet.
        assert_eq!(pod.containers[1].cpu_nano_cores, 0);
        let rootfs = pod.containers[1].rootfs.as_ref().unwrap();
        assert_eq!((rootfs.used_bytes, rootfs.capacity_bytes, rootfs.available_bytes), (8192, 200, 80));
    }
}
