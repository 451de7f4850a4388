//! Bytes and inodes used under directories (containers' writable layers, pods' volumes), measured
//! as `du -x` does (allocated blocks, each inode once, without following symlinks or crossing into
//! other filesystems) and cached: walking a tree is blocking and can be slow, so it never happens on
//! a request. Collectors ask [`DiskUsageCache::get`] for what they want (the last measurement, or
//! none yet); [`DiskUsageCache::run`] measures on a blocking thread, new directories promptly and
//! all of them again every period (Kubernetes and cAdvisor refresh disk usage every minute), and
//! forgets directories nobody asked for during a few periods.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Usage of one directory tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirUsage {
    /// Allocated bytes (512-byte blocks), the directories included.
    pub bytes: u64,
    /// Files, directories and links.
    pub inodes: u64,
}

/// A measured directory and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub usage: DirUsage,
    pub at: SystemTime,
}

/// Walks `dir` (None when it does not exist).
pub fn measure(dir: &Path) -> Option<DirUsage> {
    let root = std::fs::symlink_metadata(dir).ok()?;
    let mut usage = DirUsage::default();
    let mut seen = HashSet::new();
    let mut stack = vec![(dir.to_path_buf(), root)];
    while let Some((path, meta)) = stack.pop() {
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        usage.bytes += meta.blocks() * 512;
        usage.inodes += 1;
        if !meta.is_dir() {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&path) else { continue };
        for e in entries.flatten() {
            // Entries vanish while we walk (containers write): skip those.
            if let Ok(m) = e.metadata()
                && m.dev() == meta.dev()
            {
                stack.push((e.path(), m));
            }
        }
    }
    Some(usage)
}

type Measure = Arc<dyn Fn(&Path) -> Option<DirUsage> + Send + Sync>;

struct Entry {
    measured: Option<Measured>,
    asked: Instant,
}

/// The cache; clones share it.
#[derive(Clone)]
pub struct DiskUsageCache {
    entries: Arc<Mutex<HashMap<PathBuf, Entry>>>,
    new_path: Arc<Notify>,
    measure: Measure,
}

impl Default for DiskUsageCache {
    fn default() -> Self {
        DiskUsageCache::with_measure(Arc::new(measure))
    }
}

impl DiskUsageCache {
    /// A cache measuring with `measure` (tests count their calls).
    pub fn with_measure(measure: Measure) -> DiskUsageCache {
        DiskUsageCache { entries: Arc::default(), new_path: Arc::new(Notify::new()), measure }
    }

    /// The last measurement of `dir`, none before the first; asks for it to be kept measured.
    pub fn get(&self, dir: &Path) -> Option<Measured> {
        let mut entries = self.entries.lock().expect("du cache lock");
        let now = Instant::now();
        match entries.get_mut(dir) {
            Some(e) => {
                e.asked = now;
                e.measured
            }
            None => {
                entries.insert(dir.to_path_buf(), Entry { measured: None, asked: now });
                self.new_path.notify_one();
                None
            }
        }
    }

    /// One blocking pass: forgets directories not asked for since `forget_before`, measures the
    /// others (all of them, or with `only_new` those never measured). The lock is not held while
    /// walking.
    pub fn refresh(&self, only_new: bool, forget_before: Instant) {
        let todo: Vec<PathBuf> = {
            let mut entries = self.entries.lock().expect("du cache lock");
            entries.retain(|_, e| e.asked >= forget_before);
            entries
                .iter()
                .filter(|(_, e)| !only_new || e.measured.is_none())
                .map(|(p, _)| p.clone())
                .collect()
        };
        for dir in todo {
            let usage = (self.measure)(&dir);
            let mut entries = self.entries.lock().expect("du cache lock");
            if let Some(e) = entries.get_mut(&dir) {
                e.measured = usage.map(|usage| Measured { usage, at: SystemTime::now() });
            }
        }
    }

    /// Measures until `shutdown`: new directories as they are asked for, all every `period`;
    /// directories not asked for during three periods are forgotten.
    pub async fn run(self, period: Duration, shutdown: CancellationToken) {
        let mut last_full = Instant::now();
        loop {
            let full = last_full.elapsed() >= period;
            if full {
                last_full = Instant::now();
            }
            let forget_before = Instant::now().checked_sub(period * 3).unwrap_or_else(Instant::now);
            let cache = self.clone();
            let _ = tokio::task::spawn_blocking(move || cache.refresh(!full, forget_before)).await;
            let next_full = period.saturating_sub(last_full.elapsed());
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.new_path.notified() => {}
                _ = tokio::time::sleep(next_full) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn measures_blocks_and_inodes_once_per_inode() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("vol");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a"), vec![1u8; 10_000]).unwrap();
        std::fs::write(root.join("sub/b"), vec![2u8; 100]).unwrap();
        std::fs::hard_link(root.join("a"), root.join("sub/a-again")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let blocks = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().blocks() * 512;
        let expected = blocks("") + blocks("sub") + blocks("a") + blocks("sub/b") + blocks("etc");
        // root, sub, a (once for both links), b, the symlink (not followed).
        assert_eq!(measure(&root), Some(DirUsage { bytes: expected, inodes: 5 }));
        assert!(blocks("a") >= 10_000);
        assert_eq!(measure(&d.path().join("missing")), None);
    }

    #[test]
    fn cache_answers_from_the_last_walk_and_forgets_the_unasked() {
        let walks = Arc::new(AtomicUsize::new(0));
        let w = walks.clone();
        let cache = DiskUsageCache::with_measure(Arc::new(move |p: &Path| {
            w.fetch_add(1, Ordering::SeqCst);
            (p != Path::new("/gone")).then_some(DirUsage { bytes: 4096, inodes: 1 })
        }));
        let (a, gone) = (Path::new("/a"), Path::new("/gone"));
        assert_eq!(cache.get(a), None, "nothing measured before the first walk");
        assert_eq!(cache.get(gone), None);
        let start = Instant::now();
        cache.refresh(true, start - Duration::from_secs(1));
        assert_eq!(walks.load(Ordering::SeqCst), 2);
        assert_eq!(cache.get(a).map(|m| m.usage), Some(DirUsage { bytes: 4096, inodes: 1 }));
        assert_eq!(cache.get(gone), None);
        // Only new ones: nothing measured again ("/gone" measured to nothing stays unmeasured).
        cache.refresh(true, start - Duration::from_secs(1));
        assert_eq!(walks.load(Ordering::SeqCst), 3);
        // A full pass measures both; one after "/a" was last asked for forgets it.
        cache.refresh(false, start - Duration::from_secs(1));
        assert_eq!(walks.load(Ordering::SeqCst), 5);
        cache.refresh(false, Instant::now() + Duration::from_secs(1));
        assert_eq!(walks.load(Ordering::SeqCst), 5);
        assert_eq!(cache.get(a), None, "forgotten, asked for again");
    }

    #[tokio::test]
    async fn new_directories_are_measured_without_waiting_for_the_period() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), b"x").unwrap();
        let cache = DiskUsageCache::default();
        let stop = CancellationToken::new();
        let task = tokio::spawn(cache.clone().run(Duration::from_secs(3600), stop.clone()));
        assert_eq!(cache.get(d.path()), None);
        let mut measured = None;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            measured = cache.get(d.path());
            if measured.is_some() {
                break;
            }
        }
        assert_eq!(measured.map(|m| m.usage.inodes), Some(2), "the directory and its file");
        stop.cancel();
        task.await.unwrap();
    }
}
