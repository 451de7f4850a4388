use std::collections::HashMap;

use super::*;
use crate::stats::du::DirUsage;

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn mount(kind: &str, source: &str, options: &[&str]) -> Mount {
    Mount {
        r#type: kind.into(),
        source: source.into(),
        target: String::new(),
        options: options.iter().map(|o| o.to_string()).collect(),
    }
}

#[test]
fn writable_layer_of_overlay_and_bind_mounts() {
    let overlay = mount(
        "overlay",
        "overlay",
        &[
            "index=off",
            "workdir=/c/snapshots/9/work",
            "upperdir=/c/snapshots/9/fs",
            "lowerdir=/c/snapshots/3/fs",
        ],
    );
    assert_eq!(writable_layer(&[overlay]), Some(PathBuf::from("/c/snapshots/9/fs")));
    assert_eq!(
        writable_layer(&[mount("bind", "/c/snapshots/4/fs", &["rbind", "rw"])]),
        Some("/c/snapshots/4/fs".into())
    );
    assert_eq!(writable_layer(&[]), None);
}

#[test]
fn a_sample_from_files_of_our_own() {
    let d = tempfile::tempdir().unwrap();
    let cg = d.path().join("cgroup");
    write(&cg.join("cgroup.controllers"), "cpu memory\n");
    let c = cg.join("navarch/podU/C1");
    write(&c.join("cpu.stat"), "usage_usec 3000\n");
    write(&c.join("memory.current"), "8192\n");
    write(&c.join("memory.stat"), "anon 4096\ninactive_file 1024\n");
    write(&c.join("cpu.max"), "50000 100000\n");
    write(&c.join("memory.max"), "max\n");
    write(&cg.join("navarch/podU/cpu.stat"), "usage_usec 7000\n");
    let proc_root = d.path().join("proc");
    write(&proc_root.join("stat"), "cpu  100 0 50 1000 10 0 0 0 0 0\n");
    write(&proc_root.join("meminfo"), "MemTotal: 4096 kB\nMemAvailable: 1024 kB\n");
    write(
        &proc_root.join("net/dev"),
        "h1\nh2\n    lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n  eth0: 100 2 0 0 0 0 0 0 50 1 0 0 0 0 0 0\n",
    );
    write(
        &proc_root.join("net/route"),
        "Iface Destination Gateway Flags RefCnt Use Metric Mask\neth0 00000000 0101A8C0 0003 0 0 0 00000000\n",
    );
    let root_dir = d.path().join("root");
    write(&root_dir.join("pods/U/volumes/cache/data"), "x");
    std::fs::create_dir_all(root_dir.join("pods/U/volumes/empty")).unwrap();
    let paths = HostPaths {
        cgroups: Cgroups { root: cg },
        proc_root,
        root_dir: root_dir.clone(),
        run_dir: d.path().join("run"),
    };
    let record = |id: &str| ContainerRecord {
        id: id.into(),
        labels: HashMap::from([
            (LABEL_POD_UID.to_string(), "U".to_string()),
            (LABEL_POD_NAME.to_string(), "web".to_string()),
            (LABEL_POD_NAMESPACE.to_string(), "default".to_string()),
            (LABEL_CONTAINER.to_string(), "app".to_string()),
            (LABEL_STARTED.to_string(), "2026-01-02T03:04:05Z".to_string()),
        ]),
        image: "docker.io/library/nginx:1.27".into(),
        created_at: None,
    };
    let layer = root_dir.join("pods/U/volumes/cache");
    // C2 has no cgroup (exited in between): left out.
    let inputs = Inputs {
        containers: vec![(record("C1"), Some(layer.clone())), (record("C2"), None)],
        image_fs_dir: None,
    };
    let du = DiskUsageCache::with_measure(Arc::new(|_: &Path| Some(DirUsage { bytes: 8192, inodes: 2 })));
    let first = paths.read(&inputs, &du);
    assert_eq!(first.containers.len(), 1);
    let c1 = &first.containers[0];
    assert_eq!((c1.name.as_str(), c1.pod_name.as_str(), c1.namespace.as_str()), ("app", "web", "default"));
    assert_eq!(c1.usage.cpu_ns, 3_000_000);
    assert_eq!((c1.usage.memory_working_set, c1.usage.memory_rss), (7168, 4096));
    assert_eq!(
        c1.limits,
        Some(Limits { cpu_quota_us: Some(50_000), cpu_period_us: 100_000, memory_limit: None })
    );
    assert_eq!(c1.started, Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_323_045)));
    assert_eq!(c1.rootfs, None, "not measured yet");
    assert_eq!(first.pods.len(), 1);
    let pod = &first.pods[0];
    assert_eq!(pod.usage.map(|u| u.cpu_ns), Some(7_000_000));
    assert!(pod.network.is_none(), "no pinned namespace: host network");
    assert!(pod.volumes.is_empty());
    assert_eq!(first.node.interfaces.len(), 1);
    assert_eq!(first.node.primary_interface.as_deref(), Some("eth0"));
    assert!(first.node.root_fs.is_some_and(|f| f.capacity_bytes > 0));
    du.refresh(true, Instant::now() - Duration::from_secs(1));
    let second = paths.read(&inputs, &du);
    assert_eq!(second.containers[0].rootfs.map(|m| m.usage.bytes), Some(8192));
    let names: Vec<&str> = second.pods[0].volumes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["cache", "empty"]);
}

#[test]
fn a_container_seen_first_asks_for_a_quick_second_sample() {
    let snap = |ids: &[&str]| Snapshot {
        at: std::time::Instant::now(),
        time: std::time::SystemTime::UNIX_EPOCH,
        node: NodeSample::default(),
        pods: vec![],
        containers: ids
            .iter()
            .map(|id| ContainerSample { id: id.to_string(), ..Default::default() })
            .collect(),
    };
    assert!(!has_newcomer(None, &snap(&["a"])), "the very first sample: the start-up pace covers it");
    assert!(!has_newcomer(Some(&snap(&["a", "b"])), &snap(&["a"])), "one gone");
    assert!(!has_newcomer(Some(&snap(&["a"])), &snap(&["a"])), "nothing new");
    assert!(has_newcomer(Some(&snap(&["a"])), &snap(&["a", "b"])), "b is new");
}
