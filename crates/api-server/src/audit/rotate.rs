//! The audit log file with size-based rotation, as Kubernetes' log backend rotates it (lumberjack):
//! when a line would take the file past its maximum size, the file is renamed to a backup named
//! `<name>-<UTC time as 2006-01-02T15-04-05.000><ext>` (`audit.log` → `audit-2024-05-01T10-00-00.123.log`)
//! and a new file is started; then backups beyond the newest `max_backups` and backups older than
//! `max_age` are deleted (0 keeps them). Lines are never split across files. New files are created
//! `0600`: audit logs name users and objects.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// lumberjack's size when none is given: 100 MB.
pub const DEFAULT_MAX_SIZE_MB: u64 = 100;
const MEGABYTE: u64 = 1024 * 1024;
const BACKUP_TIME_LEN: usize = "2006-01-02T15-04-05.000".len();

/// When a log file is rotated and how many backups are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_size_bytes: u64,
    /// 0: keep every backup (subject to `max_age`).
    pub max_backups: usize,
    /// `None`: keep backups whatever their age.
    pub max_age: Option<Duration>,
}

impl Rotation {
    /// From Kubernetes' flags: `--audit-log-maxsize` (MB, 0 = 100), `--audit-log-maxbackup`,
    /// `--audit-log-maxage` (days, 0 = forever).
    pub fn from_flags(max_size_mb: u64, max_backups: usize, max_age_days: u64) -> Rotation {
        let mb = if max_size_mb == 0 { DEFAULT_MAX_SIZE_MB } else { max_size_mb };
        Rotation {
            max_size_bytes: mb.saturating_mul(MEGABYTE),
            max_backups,
            max_age: (max_age_days > 0).then(|| Duration::from_secs(max_age_days.saturating_mul(86_400))),
        }
    }
}

/// An append-only, rotated log file. Opened at the first write.
pub struct RotatingFile {
    path: PathBuf,
    rotation: Rotation,
    file: Option<BufWriter<File>>,
    /// Bytes in the current file, buffered ones included.
    size: u64,
    /// The time in the last backup's name: the next one is later, so names sort in rotation order.
    last_backup: Option<SystemTime>,
}

impl RotatingFile {
    pub fn new(path: PathBuf, rotation: Rotation) -> RotatingFile {
        RotatingFile { path, rotation, file: None, size: 0, last_backup: None }
    }

    /// Appends one line (rotating first if it would not fit). A line longer than the maximum size is
    /// an error, as in lumberjack.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        if len > self.rotation.max_size_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("write length {len} exceeds maximum file size {}", self.rotation.max_size_bytes),
            ));
        }
        if self.file.is_none() {
            self.open_existing_or_new(len)?;
        } else if self.size + len > self.rotation.max_size_bytes {
            self.rotate()?;
        }
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("the audit log is not open"))?;
        file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }

    fn open_existing_or_new(&mut self, write_len: u64) -> io::Result<()> {
        self.remove_old_backups();
        match fs::metadata(&self.path) {
            Ok(meta) if meta.len() + write_len < self.rotation.max_size_bytes => {
                let file = OpenOptions::new().append(true).open(&self.path)?;
                self.file = Some(BufWriter::new(file));
                self.size = meta.len();
                Ok(())
            }
            Ok(_) => self.rotate(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.open_new(),
            Err(e) => Err(e),
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush()?;
        }
        self.open_new()?;
        self.remove_old_backups();
        Ok(())
    }

    /// Moves the current file (if any) to a backup and creates an empty one.
    fn open_new(&mut self) -> io::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut mode = 0o600;
        if let Ok(meta) = fs::metadata(&self.path) {
            mode = meta.permissions().mode() & 0o777;
            let backup = self.free_backup_name(SystemTime::now());
            fs::rename(&self.path, backup)?;
        }
        let file = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&self.path)?;
        self.file = Some(BufWriter::new(file));
        self.size = 0;
        Ok(())
    }

    /// The backup name for `now`; a later millisecond if that name is taken or not after the last
    /// backup's (two rotations within one millisecond must neither overwrite each other nor sort out
    /// of order).
    fn free_backup_name(&mut self, now: SystemTime) -> PathBuf {
        let next_after_last = self.last_backup.map(|last| last + Duration::from_millis(1));
        let mut t = next_after_last.filter(|next| *next > now).unwrap_or(now);
        loop {
            let candidate = backup_name(&self.path, t);
            if !candidate.exists() {
                self.last_backup = Some(t);
                return candidate;
            }
            t += Duration::from_millis(1);
        }
    }

    /// Deletes backups beyond `max_backups` (oldest first) and older than `max_age`. Failures are logged:
    /// they must not stop the log.
    fn remove_old_backups(&self) {
        if self.rotation.max_backups == 0 && self.rotation.max_age.is_none() {
            return;
        }
        let mut backups = match self.backups() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "listing audit log backups");
                return;
            }
        };
        // Newest first.
        backups.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        let mut remove = Vec::new();
        if self.rotation.max_backups > 0 && backups.len() > self.rotation.max_backups {
            remove = backups.split_off(self.rotation.max_backups);
        }
        if let Some(cutoff) = self.rotation.max_age.and_then(|age| SystemTime::now().checked_sub(age)) {
            remove.extend(backups.into_iter().filter(|(t, _)| *t < cutoff));
        }
        for (_, path) in remove {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "removing an old audit log backup");
            }
        }
    }

    /// The backups in the log's directory, with the times in their names.
    fn backups(&self) -> io::Result<Vec<(SystemTime, PathBuf)>> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (prefix, ext) = name_parts(&self.path);
        let mut found = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let stamp = name.strip_prefix(prefix.as_str()).and_then(|rest| rest.strip_suffix(ext.as_str()));
            if let Some(t) = stamp.and_then(parse_backup_time) {
                found.push((t, dir.join(name)));
            }
        }
        Ok(found)
    }
}

/// `dir/audit.log` → (`audit-`, `.log`); the extension is what follows the base name's last dot.
fn name_parts(path: &Path) -> (String, String) {
    let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    let stem = base.strip_suffix(ext.as_str()).unwrap_or(&base);
    (format!("{stem}-"), ext)
}

/// `dir/audit.log` at 2024-05-01 10:00:00.123 UTC → `dir/audit-2024-05-01T10-00-00.123.log`.
pub fn backup_name(path: &Path, t: SystemTime) -> PathBuf {
    let (prefix, ext) = name_parts(path);
    // `2024-05-01T10:00:00.123Z` → `2024-05-01T10-00-00.123`
    let stamp = humantime::format_rfc3339_millis(t).to_string().replace(':', "-");
    let stamp = stamp.trim_end_matches('Z');
    let mut name = OsString::from(prefix);
    name.push(stamp);
    name.push(ext);
    path.with_file_name(name)
}

fn parse_backup_time(stamp: &str) -> Option<SystemTime> {
    if stamp.len() != BACKUP_TIME_LEN {
        return None;
    }
    let (date, time) = stamp.split_once('T')?;
    humantime::parse_rfc3339(&format!("{date}T{}Z", time.replacen('-', ":", 2))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize, len: usize) -> Vec<u8> {
        let mut l = format!("{n:04}").into_bytes();
        l.resize(len - 1, b'.');
        l.push(b'\n');
        l
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn names() {
        let t = humantime::parse_rfc3339("2024-05-01T10:00:00.123Z").unwrap();
        assert_eq!(
            backup_name(Path::new("/var/log/audit.log"), t),
            Path::new("/var/log/audit-2024-05-01T10-00-00.123.log")
        );
        assert_eq!(backup_name(Path::new("audit"), t), Path::new("audit-2024-05-01T10-00-00.123"));
        assert_eq!(
            backup_name(Path::new("/x/a.b.json"), t),
            Path::new("/x/a.b-2024-05-01T10-00-00.123.json")
        );
        assert_eq!(parse_backup_time("2024-05-01T10-00-00.123"), Some(t));
        assert_eq!(parse_backup_time("2024-05-01T10-00-00"), None);
        assert_eq!(parse_backup_time("2024-05-01X10-00-00.123"), None);
        assert_eq!(parse_backup_time("garbage-garbage-garbage"), None);
        let r = Rotation::from_flags(0, 0, 0);
        assert_eq!((r.max_size_bytes, r.max_backups, r.max_age), (100 * MEGABYTE, 0, None));
        let r = Rotation::from_flags(5, 3, 2);
        assert_eq!(
            (r.max_size_bytes, r.max_backups, r.max_age),
            (5 * MEGABYTE, 3, Some(Duration::from_secs(172_800)))
        );
    }

    #[test]
    fn rotates_by_size_and_keeps_max_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let rotation = Rotation { max_size_bytes: 100, max_backups: 2, max_age: None };
        let mut f = RotatingFile::new(path.clone(), rotation);
        // 40-byte lines: two fit in 100 bytes, the third rotates.
        for n in 0..7 {
            f.write_line(&line(n, 40)).unwrap();
        }
        f.flush().unwrap();
        let names = files(dir.path());
        assert_eq!(names.len(), 3, "the log and two backups: {names:?}");
        assert!(names.contains(&"audit.log".to_string()));
        for name in names.iter().filter(|n| *n != "audit.log") {
            assert!(name.starts_with("audit-") && name.ends_with(".log"), "{name}");
            assert!(parse_backup_time(&name["audit-".len()..name.len() - ".log".len()]).is_some(), "{name}");
        }
        // Lines 0-1, 2-3 and 4-5 went to backups; the newest two are kept.
        assert_eq!(fs::read(&path).unwrap(), line(6, 40));
        let mut kept: Vec<String> = names
            .iter()
            .filter(|n| *n != "audit.log")
            .map(|n| fs::read_to_string(dir.path().join(n)).unwrap())
            .collect();
        kept.sort();
        let pair = |a: usize, b: usize| String::from_utf8([line(a, 40), line(b, 40)].concat()).unwrap();
        assert_eq!(kept, [pair(2, 3), pair(4, 5)]);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn appends_to_an_existing_file_and_rotates_it_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        fs::write(&path, line(0, 40)).unwrap();
        let rotation = Rotation { max_size_bytes: 100, max_backups: 0, max_age: None };
        let mut f = RotatingFile::new(path.clone(), rotation);
        f.write_line(&line(1, 40)).unwrap();
        f.flush().unwrap();
        assert_eq!(fs::read(&path).unwrap(), [line(0, 40), line(1, 40)].concat(), "appended");
        drop(f);
        // 80 bytes + 40 does not fit: the existing file becomes a backup at open.
        let mut f = RotatingFile::new(path.clone(), rotation);
        f.write_line(&line(2, 40)).unwrap();
        f.flush().unwrap();
        assert_eq!(fs::read(&path).unwrap(), line(2, 40));
        assert_eq!(files(dir.path()).len(), 2);
    }

    #[test]
    fn removes_backups_older_than_max_age() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let day = Duration::from_secs(86_400);
        let old = backup_name(&path, SystemTime::now() - 10 * day);
        let recent = backup_name(&path, SystemTime::now() - day / 2);
        let unrelated = dir.path().join("audit-notatime.log");
        for p in [&old, &recent, &unrelated] {
            fs::write(p, "x\n").unwrap();
        }
        let rotation = Rotation { max_size_bytes: 100, max_backups: 0, max_age: Some(2 * day) };
        let mut f = RotatingFile::new(path.clone(), rotation);
        f.write_line(b"first\n").unwrap();
        assert!(!old.exists(), "older than two days");
        assert!(recent.exists() && unrelated.exists());
    }

    #[test]
    fn rotations_within_a_millisecond_keep_every_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let rotation = Rotation { max_size_bytes: 10, max_backups: 0, max_age: None };
        let mut f = RotatingFile::new(path.clone(), rotation);
        for n in 0..20 {
            f.write_line(&line(n, 10)).unwrap();
        }
        f.flush().unwrap();
        assert_eq!(files(dir.path()).len(), 20, "one line per file, none overwritten");
    }

    #[test]
    fn a_line_longer_than_the_maximum_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = Rotation { max_size_bytes: 10, max_backups: 0, max_age: None };
        let mut f = RotatingFile::new(dir.path().join("a.log"), rotation);
        let e = f.write_line(&[b'x'; 11]).unwrap_err();
        assert_eq!(e.to_string(), "write length 11 exceeds maximum file size 10");
        f.write_line(b"ok\n").unwrap();
    }
}
