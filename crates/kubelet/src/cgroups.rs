//! The node's control groups as the kubelet uses them: every container of a pod lives in
//! `navarch/pod<uid>/<container id>` (runc creates it from the OCI spec's cgroupsPath), in each
//! cgroup v1 hierarchy or in the unified v2 tree. Read here: CPU time and memory (working set,
//! usage, RSS) per container and per pod, the CPU quota and memory limit runc set, OOM kills;
//! removed here: a deleted pod's directories. The root is a parameter so the parsing is tested on
//! files of our own.

use std::path::{Path, PathBuf};

use nix::unistd::{SysconfVar, sysconf};

/// Cumulative usage of one cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// CPU time used, in nanoseconds, since the cgroup was made.
    pub cpu_ns: u64,
    /// Memory in use minus inactive file cache (Kubernetes' working set).
    pub memory_working_set: u64,
    /// All memory charged to the cgroup, file cache included.
    pub memory_usage: u64,
    /// Anonymous memory (cAdvisor's `rss`).
    pub memory_rss: u64,
    /// Page cache.
    pub memory_cache: u64,
    /// CFS bandwidth: elapsed enforcement periods, those throttled, and the time throttled (ns).
    pub cfs_periods: u64,
    pub cfs_throttled_periods: u64,
    pub cfs_throttled_ns: u64,
}

/// What the runtime limited a cgroup to (cAdvisor's `container_spec_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// CFS quota and period in microseconds; no quota when unlimited.
    pub cpu_quota_us: Option<u64>,
    pub cpu_period_us: u64,
    /// Memory limit in bytes; none when unlimited.
    pub memory_limit: Option<u64>,
}

/// Values above this are "unlimited" in cgroup v1 (cAdvisor's maxMemorySize).
const UNLIMITED: u64 = 1 << 62;

#[derive(Debug, Clone)]
pub struct Cgroups {
    pub root: PathBuf,
}

impl Default for Cgroups {
    fn default() -> Self {
        Cgroups { root: PathBuf::from("/sys/fs/cgroup") }
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`key value` per line).
fn keyed(p: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(p).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

impl Cgroups {
    pub fn pod_relative(uid: &str) -> String {
        format!("navarch/pod{uid}")
    }

    /// The cgroupsPath given to runc for one container.
    pub fn container_path(uid: &str, id: &str) -> String {
        format!("/{}/{id}", Cgroups::pod_relative(uid))
    }

    fn v2(&self) -> bool {
        self.root.join("cgroup.controllers").exists()
    }

    /// Usage of one container (None when its cgroup is gone).
    pub fn container_usage(&self, uid: &str, id: &str) -> Option<Usage> {
        self.usage(&format!("{}/{id}", Cgroups::pod_relative(uid)))
    }

    /// Usage of a whole pod (its cgroup holds every container's).
    pub fn pod_usage(&self, uid: &str) -> Option<Usage> {
        self.usage(&Cgroups::pod_relative(uid))
    }

    fn usage(&self, rel: &str) -> Option<Usage> {
        if self.v2() {
            let d = self.root.join(rel);
            let cpu = d.join("cpu.stat");
            let cpu_us = keyed(&cpu, "usage_usec")?;
            let current = read_u64(&d.join("memory.current")).unwrap_or(0);
            let stat = d.join("memory.stat");
            let inactive = keyed(&stat, "inactive_file").unwrap_or(0);
            return Some(Usage {
                cpu_ns: cpu_us * 1000,
                memory_working_set: current.saturating_sub(inactive),
                memory_usage: current,
                memory_rss: keyed(&stat, "anon").unwrap_or(0),
                memory_cache: keyed(&stat, "file").unwrap_or(0),
                cfs_periods: keyed(&cpu, "nr_periods").unwrap_or(0),
                cfs_throttled_periods: keyed(&cpu, "nr_throttled").unwrap_or(0),
                cfs_throttled_ns: keyed(&cpu, "throttled_usec").unwrap_or(0) * 1000,
            });
        }
        let cpu = ["cpu,cpuacct", "cpuacct", "cpu"]
            .iter()
            .find_map(|h| read_u64(&self.root.join(h).join(rel).join("cpuacct.usage")))?;
        let cfs = ["cpu,cpuacct", "cpu"]
            .iter()
            .map(|h| self.root.join(h).join(rel).join("cpu.stat"))
            .find(|p| p.exists());
        let cfs = |key| cfs.as_deref().and_then(|p| keyed(p, key)).unwrap_or(0);
        let mem = self.root.join("memory").join(rel);
        let usage = read_u64(&mem.join("memory.usage_in_bytes")).unwrap_or(0);
        let stat = mem.join("memory.stat");
        let inactive = keyed(&stat, "total_inactive_file").unwrap_or(0);
        Some(Usage {
            cpu_ns: cpu,
            memory_working_set: usage.saturating_sub(inactive),
            memory_usage: usage,
            memory_rss: keyed(&stat, "total_rss").unwrap_or(0),
            memory_cache: keyed(&stat, "total_cache").unwrap_or(0),
            cfs_periods: cfs("nr_periods"),
            cfs_throttled_periods: cfs("nr_throttled"),
            cfs_throttled_ns: cfs("throttled_time"),
        })
    }

    /// The CPU quota and memory limit of one container (None when its cgroup is gone).
    pub fn container_limits(&self, uid: &str, id: &str) -> Option<Limits> {
        let rel = format!("{}/{id}", Cgroups::pod_relative(uid));
        if self.v2() {
            let d = self.root.join(&rel);
            // cpu.max: "<quota|max> <period>"; memory.max: "<bytes|max>".
            let cpu = std::fs::read_to_string(d.join("cpu.max")).ok()?;
            let mut parts = cpu.split_whitespace();
            let quota = parts.next().and_then(|q| q.parse().ok());
            let period = parts.next().and_then(|p| p.parse().ok()).unwrap_or(100_000);
            let memory = std::fs::read_to_string(d.join("memory.max")).ok();
            let memory_limit = memory.and_then(|m| m.trim().parse().ok());
            return Some(Limits { cpu_quota_us: quota, cpu_period_us: period, memory_limit });
        }
        let cpu_dir =
            ["cpu,cpuacct", "cpu"].iter().map(|h| self.root.join(h).join(&rel)).find(|d| d.is_dir())?;
        let quota = std::fs::read_to_string(cpu_dir.join("cpu.cfs_quota_us")).ok();
        let quota = quota.and_then(|q| q.trim().parse::<i64>().ok()).filter(|q| *q > 0).map(|q| q as u64);
        let period = read_u64(&cpu_dir.join("cpu.cfs_period_us")).unwrap_or(100_000);
        let memory_limit = read_u64(&self.root.join("memory").join(&rel).join("memory.limit_in_bytes"))
            .filter(|m| *m < UNLIMITED);
        Some(Limits { cpu_quota_us: quota, cpu_period_us: period, memory_limit })
    }

    /// Whether the memory cgroup recorded an OOM kill for this container.
    pub fn oom_killed(&self, uid: &str, id: &str) -> bool {
        let rel = format!("{}/{id}", Cgroups::pod_relative(uid));
        let v1 = self.root.join("memory").join(&rel).join("memory.oom_control");
        let v2 = self.root.join(&rel).join("memory.events");
        [v1, v2].iter().any(|f| keyed(f, "oom_kill").is_some_and(|n| n != 0))
    }

    /// Removes the pod's cgroup directories (every v1 hierarchy, and v2). runc removes each
    /// container's own on delete; leftovers go first.
    pub fn remove_pod(&self, uid: &str) {
        let rel = Cgroups::pod_relative(uid);
        let mut dirs = vec![self.root.join(&rel)];
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                dirs.push(e.path().join(&rel));
            }
        }
        for d in dirs {
            if d.is_dir() {
                if let Ok(children) = std::fs::read_dir(&d) {
                    for c in children.flatten() {
                        if c.path().is_dir() {
                            let _ = std::fs::remove_dir(c.path());
                        }
                    }
                }
                let _ = std::fs::remove_dir(&d);
            }
        }
    }
}

/// Clock ticks per second, the unit of /proc/stat's CPU times (at least 1).
fn clock_ticks() -> u64 {
    sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(1).max(1) as u64
}

/// The whole machine's usage from /proc: CPU time of all cores (nanoseconds, from /proc/stat's
/// jiffies), memory in use (MemTotal − MemAvailable), anonymous (AnonPages) and cached (Cached).
pub fn node_usage(proc_root: &Path) -> Option<Usage> {
    let stat = std::fs::read_to_string(proc_root.join("stat")).ok()?;
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = cpu.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    let busy: u64 =
        fields.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    let hz = clock_ticks();
    let meminfo = std::fs::read_to_string(proc_root.join("meminfo")).ok()?;
    let kb = |key: &str| -> Option<u64> {
        meminfo.lines().find_map(|l| l.strip_prefix(key)?.trim().trim_end_matches("kB").trim().parse().ok())
    };
    let used = kb("MemTotal:")?.saturating_sub(kb("MemAvailable:")?) * 1024;
    Some(Usage {
        cpu_ns: busy * (1_000_000_000 / hz),
        memory_working_set: used,
        memory_usage: used,
        memory_rss: kb("AnonPages:").unwrap_or(0) * 1024,
        memory_cache: kb("Cached:").unwrap_or(0) * 1024,
        ..Usage::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn v1_usage_and_oom() {
        let d = tempfile::tempdir().unwrap();
        let rel = "navarch/podU/C";
        write(&d.path().join("cpu,cpuacct").join(rel).join("cpuacct.usage"), "1500000000\n");
        write(&d.path().join("memory").join(rel).join("memory.usage_in_bytes"), "10485760\n");
        write(
            &d.path().join("memory").join(rel).join("memory.stat"),
            "cache 5\ntotal_cache 2048\ntotal_rss 4096\ntotal_inactive_file 1048576\n",
        );
        write(
            &d.path().join("memory").join(rel).join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        );
        let cg = Cgroups { root: d.path().to_path_buf() };
        write(&d.path().join("cpu,cpuacct").join(rel).join("cpu.cfs_quota_us"), "50000\n");
        write(
            &d.path().join("cpu,cpuacct").join(rel).join("cpu.stat"),
            "nr_periods 10\nnr_throttled 4\nthrottled_time 2000000\n",
        );
        write(&d.path().join("cpu,cpuacct").join(rel).join("cpu.cfs_period_us"), "100000\n");
        write(&d.path().join("memory").join(rel).join("memory.limit_in_bytes"), "9223372036854771712\n");
        assert_eq!(
            cg.container_usage("U", "C"),
            Some(Usage {
                cpu_ns: 1_500_000_000,
                memory_working_set: 9 * 1048576,
                memory_usage: 10 * 1048576,
                memory_rss: 4096,
                memory_cache: 2048,
                cfs_periods: 10,
                cfs_throttled_periods: 4,
                cfs_throttled_ns: 2_000_000,
            })
        );
        assert_eq!(
            cg.container_limits("U", "C"),
            Some(Limits { cpu_quota_us: Some(50_000), cpu_period_us: 100_000, memory_limit: None })
        );
        assert!(cg.oom_killed("U", "C"));
        assert_eq!(cg.container_usage("U", "other"), None);
        // cgroupfs lets empty-of-children directories go despite their files; plain ones must be empty.
        std::fs::create_dir_all(d.path().join("pids/navarch/podV/C")).unwrap();
        cg.remove_pod("V");
        assert!(!d.path().join("pids/navarch/podV").exists());
    }

    #[test]
    fn v2_usage() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("cgroup.controllers"), "cpu memory\n");
        let c = d.path().join("navarch/podU/C");
        write(
            &c.join("cpu.stat"),
            "usage_usec 2000\nuser_usec 1000\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n",
        );
        write(&c.join("memory.current"), "4096\n");
        write(&c.join("memory.stat"), "anon 10\nfile 2000\ninactive_file 1024\n");
        write(&c.join("memory.events"), "low 0\noom 0\noom_kill 0\n");
        write(&c.join("cpu.max"), "max 100000\n");
        write(&c.join("memory.max"), "268435456\n");
        write(&d.path().join("navarch/podU/cpu.stat"), "usage_usec 5000\n");
        let cg = Cgroups { root: d.path().to_path_buf() };
        assert_eq!(
            cg.container_usage("U", "C"),
            Some(Usage {
                cpu_ns: 2_000_000,
                memory_working_set: 3072,
                memory_usage: 4096,
                memory_rss: 10,
                memory_cache: 2000,
                cfs_periods: 7,
                cfs_throttled_periods: 2,
                cfs_throttled_ns: 30_000,
            })
        );
        assert_eq!(
            cg.container_limits("U", "C"),
            Some(Limits { cpu_quota_us: None, cpu_period_us: 100_000, memory_limit: Some(268_435_456) })
        );
        assert_eq!(cg.pod_usage("U").map(|u| (u.cpu_ns, u.memory_usage)), Some((5_000_000, 0)));
        assert!(!cg.oom_killed("U", "C"));
    }

    #[test]
    fn node_usage_from_proc() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("stat"), "cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 1 1 1 1\n");
        write(
            &d.path().join("meminfo"),
            "MemTotal:       2048 kB\nMemFree: 1 kB\nMemAvailable:   1024 kB\nCached: 300 kB\nAnonPages: 200 kB\n",
        );
        let u = node_usage(d.path()).unwrap();
        assert_eq!(u.memory_working_set, 1024 * 1024);
        assert_eq!((u.memory_rss, u.memory_cache), (200 * 1024, 300 * 1024));
        assert_eq!(u.cpu_ns, 150 * (1_000_000_000 / clock_ticks()));
    }
}
