//! Measuring for the benchmark binaries (`src/bin/bench-*.rs`): latency percentiles, a process's
//! resident memory, and how much CPU other processes took meanwhile ([`CpuSample`]).

use std::time::Duration;

/// The `p` quantile (0..1) of sorted durations (zero when empty).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Resident memory of a process in bytes (VmRSS), if it is alive.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// CPU time in clock ticks at one moment: the machine's, busy and in all (`/proc/stat`), and what this
/// process and its descendants used so far (`/proc/<pid>/stat`, every thread; a descendant that has
/// exited no longer counts). Two samples tell how much of the CPU other processes took in between,
/// which disturbs a benchmark on a shared machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    machine_busy: u64,
    machine_total: u64,
    tree: u64,
}

impl CpuSample {
    pub fn now() -> CpuSample {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // cpu user nice system idle iowait irq softirq steal ...
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|t| t.parse().unwrap_or(0))
            .collect();
        let field = |i: usize| ticks.get(i).copied().unwrap_or(0);
        let (idle, iowait) = (field(3), field(4));
        let machine_total: u64 = ticks.iter().sum();
        CpuSample { machine_busy: machine_total - idle - iowait, machine_total, tree: tree_ticks() }
    }

    /// The share (0 to 1) of the machine's CPU time since `earlier` that processes outside this
    /// process's tree took.
    pub fn others_since(&self, earlier: &CpuSample) -> f64 {
        let total = self.machine_total.saturating_sub(earlier.machine_total);
        let busy = self.machine_busy.saturating_sub(earlier.machine_busy);
        let ours = self.tree.saturating_sub(earlier.tree);
        if total == 0 { 0.0 } else { busy.saturating_sub(ours) as f64 / total as f64 }
    }
}

/// (pid, parent pid, user + system ticks) of every process.
fn processes() -> Vec<(u32, u32, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After "pid (comm) ": state ppid ... utime (14th field) stime (15th).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some((pid, fields.get(1)?.parse().ok()?, ticks))
    })
    .collect()
}

/// The CPU ticks of this process and its living descendants.
fn tree_ticks() -> u64 {
    let all = processes();
    let mut tree = vec![std::process::id()];
    let mut ticks = 0;
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for (pid, ppid, t) in &all {
            if *pid == parent {
                ticks += t;
            } else if *ppid == parent {
                tree.push(*pid);
            }
        }
        i += 1;
    }
    ticks
}
