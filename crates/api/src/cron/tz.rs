//! IANA time zones read from the system's TZif files (`/usr/share/zoneinfo`, RFC 8536), as Go's
//! `time.LoadLocation` reads them: the transitions (64-bit data of version 2+ files), the local time
//! types, and the POSIX TZ rule of the footer for instants after the last transition (slim files
//! stop early and rely on it). [`Zone::date`] turns wall-clock fields into an instant the way Go's
//! `time.Date` does, including its choice in the gap and the overlap of a DST change, so that
//! schedules computed here match Kubernetes'.

use std::path::{Path, PathBuf};

use super::civil::{Civil, SECS_PER_DAY, days_from_civil, days_in_month, is_leap, weekday};

/// Where zone files are looked for, in Go's order.
const ZONE_DIRS: &[&str] =
    &["/usr/share/zoneinfo/", "/usr/share/lib/zoneinfo/", "/usr/lib/locale/TZ/", "/etc/zoneinfo/"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    /// Go's `time.LoadLocation` message.
    #[error("unknown time zone {0}")]
    Unknown(String),
    #[error("time: invalid location name")]
    InvalidName,
    #[error("malformed time zone information for {0}")]
    Malformed(String),
}

/// One local time type: its offset east of UTC and whether it is daylight saving time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LocalType {
    offset: i32,
    dst: bool,
}

/// When a POSIX rule changes the clock in a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleDay {
    /// `Jn`: day 1..=365, February 29 never counted.
    Julian(u32),
    /// `n`: day 0..=365, February 29 counted.
    Zero(u32),
    /// `Mm.w.d`: weekday d (0 Sunday) of week w (5: the last) of month m.
    Month(u32, u32, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    day: RuleDay,
    /// Seconds after local midnight (may be negative or beyond a day).
    time: i64,
}

/// The footer's TZ string: standard time, and daylight time with its start and end.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    std: i32,
    dst: Option<(i32, Change, Change)>,
}

/// A time zone: a name and the rules of its clocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    name: String,
    transitions: Vec<(i64, usize)>,
    types: Vec<LocalType>,
    rule: Option<Rule>,
}

/// The local time type in force over `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Period {
    offset: i32,
    start: i64,
    end: i64,
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            transitions: vec![],
            types: vec![LocalType { offset: 0, dst: false }],
            rule: None,
        }
    }

    /// The zone named `name` (`Europe/Paris`, `UTC`), from the system's zone files.
    pub fn load(name: &str) -> Result<Zone, ZoneError> {
        if name.is_empty() || name == "UTC" {
            return Ok(Zone::utc());
        }
        if name.contains("..") || name.starts_with(['/', '\\']) {
            return Err(ZoneError::InvalidName);
        }
        for dir in ZONE_DIRS {
            if let Ok(bytes) = std::fs::read(Path::new(dir).join(name)) {
                return Zone::from_tzif(name, &bytes);
            }
        }
        Err(ZoneError::Unknown(name.to_string()))
    }

    /// The process's local zone, as Go's `time.Local`: `$TZ` (empty: UTC; a name or an absolute
    /// path, `:` prefix allowed), else `/etc/localtime`, else UTC.
    pub fn local() -> Zone {
        let from_file =
            |path: PathBuf, name: &str| std::fs::read(path).ok().and_then(|b| Zone::from_tzif(name, &b).ok());
        let zone = match std::env::var("TZ") {
            Ok(tz) if tz.is_empty() => Some(Zone::utc()),
            Ok(tz) => {
                let tz = tz.strip_prefix(':').unwrap_or(&tz);
                if tz.starts_with('/') { from_file(PathBuf::from(tz), tz) } else { Zone::load(tz).ok() }
            }
            Err(_) => from_file(PathBuf::from("/etc/localtime"), "Local"),
        };
        zone.unwrap_or_else(Zone::utc)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads a TZif file (RFC 8536, versions 1 to 4).
    pub fn from_tzif(name: &str, data: &[u8]) -> Result<Zone, ZoneError> {
        let bad = || ZoneError::Malformed(name.to_string());
        let header = Header::read(data).ok_or_else(bad)?;
        let (header, body, wide) = if header.version >= b'2' {
            let rest = data.get(header.end + header.body_len(4)..).ok_or_else(bad)?;
            let h2 = Header::read(rest).ok_or_else(bad)?;
            (h2, &rest[h2.end..], true)
        } else {
            (header, &data[header.end..], false)
        };
        let size = if wide { 8 } else { 4 };
        let mut r = Reader { data: body, at: 0 };
        let mut times = Vec::with_capacity(header.timecnt);
        for _ in 0..header.timecnt {
            let b = r.take(size).ok_or_else(bad)?;
            times.push(if wide {
                i64::from_be_bytes(b.try_into().map_err(|_| bad())?)
            } else {
                i64::from(i32::from_be_bytes(b.try_into().map_err(|_| bad())?))
            });
        }
        let idx = r.take(header.timecnt).ok_or_else(bad)?.to_vec();
        let mut types = Vec::with_capacity(header.typecnt);
        for _ in 0..header.typecnt {
            let b = r.take(6).ok_or_else(bad)?;
            types.push(LocalType { offset: i32::from_be_bytes([b[0], b[1], b[2], b[3]]), dst: b[4] != 0 });
        }
        if types.is_empty() || idx.iter().any(|&i| usize::from(i) >= types.len()) {
            return Err(bad());
        }
        r.take(header.charcnt + header.leapcnt * (size + 4) + header.isstdcnt + header.isutcnt)
            .ok_or_else(bad)?;
        let rule = if wide {
            let footer = &body[r.at..];
            let text = footer.strip_prefix(b"\n").and_then(|f| f.split(|&c| c == b'\n').next());
            text.and_then(|t| std::str::from_utf8(t).ok()).filter(|t| !t.is_empty()).and_then(parse_rule)
        } else {
            None
        };
        let transitions = times.into_iter().zip(idx.into_iter().map(usize::from)).collect();
        Ok(Zone { name: name.to_string(), transitions, types, rule })
    }

    /// The offset east of UTC at instant `t` (Unix seconds).
    pub fn offset_at(&self, t: i64) -> i32 {
        self.lookup(t).offset
    }

    /// The wall-clock fields of instant `t` in this zone.
    pub fn civil(&self, t: i64) -> Civil {
        let offset = self.offset_at(t);
        Civil::from_wall(t + i64::from(offset), offset)
    }

    /// The instant whose wall clock reads these fields, normalized as Go's `time.Date` does (month
    /// 13 is January of the next year, day 32 runs into the next month, ...). A wall time a DST change
    /// skips or repeats gets the instant Go picks: in Europe/Paris, 02:30 on the spring-forward day is
    /// 03:30 CEST, and 02:30 on the fall-back day is the second one (CET).
    pub fn date(&self, year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> i64 {
        let year = year + (month - 1).div_euclid(12);
        let month = ((month - 1).rem_euclid(12) + 1) as u32;
        let wall = days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 + second;
        // Guess with the offset in force at `wall` read as UTC; if the instant that gives falls outside
        // that offset's period, use the offset in force at that instant instead.
        let p = self.lookup(wall);
        let mut offset = p.offset;
        let utc = wall - i64::from(offset);
        if utc < p.start || utc >= p.end {
            offset = self.lookup(utc).offset;
        }
        wall - i64::from(offset)
    }

    /// The type of times before the first transition: the first standard-time type.
    fn first_type(&self) -> LocalType {
        self.types.iter().find(|t| !t.dst).copied().unwrap_or(self.types[0])
    }

    fn lookup(&self, t: i64) -> Period {
        let Some(&(first, _)) = self.transitions.first() else {
            return match &self.rule {
                Some(rule) => rule.period(t, i64::MIN),
                None => Period { offset: self.types[0].offset, start: i64::MIN, end: i64::MAX },
            };
        };
        if t < first {
            return Period { offset: self.first_type().offset, start: i64::MIN, end: first };
        }
        let i = self.transitions.partition_point(|&(at, _)| at <= t) - 1;
        let (start, ty) = self.transitions[i];
        match self.transitions.get(i + 1) {
            Some(&(end, _)) => Period { offset: self.types[ty].offset, start, end },
            None => match &self.rule {
                Some(rule) => rule.period(t, start),
                None => Period { offset: self.types[ty].offset, start, end: i64::MAX },
            },
        }
    }
}

/// A TZif header: version and counts.
#[derive(Debug, Clone, Copy)]
struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
    /// Where the data block starts.
    end: usize,
}

impl Header {
    fn read(data: &[u8]) -> Option<Header> {
        if data.len() < 44 || &data[..4] != b"TZif" {
            return None;
        }
        let count = |i: usize| -> usize {
            u32::from_be_bytes([data[20 + 4 * i], data[21 + 4 * i], data[22 + 4 * i], data[23 + 4 * i]])
                as usize
        };
        let version = if data[4] == 0 { b'1' } else { data[4] };
        Some(Header {
            version,
            isutcnt: count(0),
            isstdcnt: count(1),
            leapcnt: count(2),
            timecnt: count(3),
            typecnt: count(4),
            charcnt: count(5),
            end: 44,
        })
    }

    /// Bytes of the data block with `size`-byte times.
    fn body_len(&self, size: usize) -> usize {
        self.timecnt * (size + 1)
            + self.typecnt * 6
            + self.charcnt
            + self.leapcnt * (size + 4)
            + self.isstdcnt
            + self.isutcnt
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }
}

// --- POSIX TZ rules (the TZif footer) ---

/// Parses `CET-1CEST,M3.5.0,M10.5.0/3`, `<+03>-3`, `EST5EDT,M3.2.0,M11.1.0`.
fn parse_rule(s: &str) -> Option<Rule> {
    let mut p = RuleParser { s: s.as_bytes(), at: 0 };
    p.name()?;
    let std = -p.offset()?;
    if p.done() {
        return Some(Rule { std, dst: None });
    }
    p.name()?;
    let dst = if p.done() || p.peek() == Some(b',') { std + 3600 } else { -p.offset()? };
    let (start, end) = if p.done() {
        // Go's default: the US rules.
        let at_two = |day| Change { day, time: 7200 };
        (at_two(RuleDay::Month(3, 2, 0)), at_two(RuleDay::Month(11, 1, 0)))
    } else {
        p.expect(b',')?;
        let start = p.change()?;
        p.expect(b',')?;
        (start, p.change()?)
    };
    p.done().then_some(Rule { std, dst: Some((dst, start, end)) })
}

struct RuleParser<'a> {
    s: &'a [u8],
    at: usize,
}

impl RuleParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }
    fn done(&self) -> bool {
        self.at >= self.s.len()
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.at += 1)
    }
    /// `EST` or `<+03>`.
    fn name(&mut self) -> Option<()> {
        let start = self.at;
        if self.peek() == Some(b'<') {
            while self.peek()? != b'>' {
                self.at += 1;
            }
            self.at += 1;
        } else {
            while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                self.at += 1;
            }
        }
        (self.at > start).then_some(())
    }
    fn number(&mut self) -> Option<i64> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at]).ok()?.parse().ok()
    }
    /// `[+-]hh[:mm[:ss]]` in seconds.
    fn offset(&mut self) -> Option<i32> {
        let sign = match self.peek()? {
            b'-' => {
                self.at += 1;
                -1
            }
            b'+' => {
                self.at += 1;
                1
            }
            _ => 1,
        };
        let mut secs = self.number()? * 3600;
        for unit in [60, 1] {
            if self.peek() != Some(b':') {
                break;
            }
            self.at += 1;
            secs += self.number()? * unit;
        }
        i32::try_from(sign * secs).ok()
    }
    /// `Jn`, `n` or `Mm.w.d`, then an optional `/time` (default 02:00).
    fn change(&mut self) -> Option<Change> {
        let day = match self.peek()? {
            b'J' => {
                self.at += 1;
                RuleDay::Julian(u32::try_from(self.number()?).ok().filter(|n| (1..=365).contains(n))?)
            }
            b'M' => {
                self.at += 1;
                let m = self.number()?;
                self.expect(b'.')?;
                let w = self.number()?;
                self.expect(b'.')?;
                let d = self.number()?;
                if !(1..=12).contains(&m) || !(1..=5).contains(&w) || !(0..=6).contains(&d) {
                    return None;
                }
                RuleDay::Month(m as u32, w as u32, d as u32)
            }
            _ => RuleDay::Zero(u32::try_from(self.number()?).ok().filter(|n| *n <= 365)?),
        };
        let time = if self.peek() == Some(b'/') {
            self.at += 1;
            i64::from(self.offset()?)
        } else {
            7200
        };
        Some(Change { day, time })
    }
}

impl Change {
    /// The instant of this change in `year`, while `before` (seconds east of UTC) is in force.
    fn instant(&self, year: i64, before: i32) -> i64 {
        let jan1 = days_from_civil(year, 1, 1);
        let day = match self.day {
            RuleDay::Julian(n) => jan1 + i64::from(n) - 1 + i64::from(is_leap(year) && n >= 60),
            RuleDay::Zero(n) => jan1 + i64::from(n),
            RuleDay::Month(m, w, d) => {
                let first = days_from_civil(year, m, 1);
                let mut dom = 1 + i64::from((d + 7 - weekday(first)) % 7) + 7 * (i64::from(w) - 1);
                while dom > i64::from(days_in_month(year, m)) {
                    dom -= 7;
                }
                first + dom - 1
            }
        };
        day * SECS_PER_DAY + self.time - i64::from(before)
    }
}

impl Rule {
    /// The period containing `t`, starting no earlier than `floor` (the last transition of the table).
    fn period(&self, t: i64, floor: i64) -> Period {
        let Some((dst, start, end)) = &self.dst else {
            return Period { offset: self.std, start: floor, end: i64::MAX };
        };
        let year = super::civil::civil_from_days(t.div_euclid(SECS_PER_DAY)).0;
        // Every change from the year before to the year after, in time order: (instant, offset after).
        let mut changes: Vec<(i64, i32)> = (year - 1..=year + 1)
            .flat_map(|y| [(start.instant(y, self.std), *dst), (end.instant(y, *dst), self.std)])
            .collect();
        changes.sort();
        let i = changes.partition_point(|&(at, _)| at <= t);
        // Changes are at least a day apart, so the year before always has one before `t`.
        let (from, offset) = if i == 0 { (i64::MIN, self.std) } else { changes[i - 1] };
        let to = changes.get(i).map_or(i64::MAX, |c| c.0);
        Period { offset, start: from.max(floor), end: to }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_rules() {
        let paris = parse_rule("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(paris.std, 3600);
        let (dst, start, end) = paris.dst.unwrap();
        assert_eq!(dst, 7200);
        // 2024-03-31T01:00:00Z and 2024-10-27T01:00:00Z.
        assert_eq!(start.instant(2024, 3600), 1_711_846_800);
        assert_eq!(end.instant(2024, 7200), 1_729_990_800);
        assert_eq!(parse_rule("<+03>-3"), Some(Rule { std: 3 * 3600, dst: None }));
        let ny = parse_rule("EST5EDT,M3.2.0,M11.1.0").unwrap();
        assert_eq!(ny.std, -5 * 3600);
        assert_eq!(ny.dst.unwrap().0, -4 * 3600);
        let julian = parse_rule("XXX3YYY,J60/0,300").unwrap();
        let (_, j, z) = julian.dst.unwrap();
        // J60 is March 1 even in a leap year; day 300 counts February 29.
        assert_eq!(j.instant(2024, 0), days_from_civil(2024, 3, 1) * SECS_PER_DAY);
        assert_eq!(z.instant(2024, 0), (days_from_civil(2024, 1, 1) + 300) * SECS_PER_DAY + 7200);
        for bad in ["", "1", "CET-1CEST,M13.1.0,M10.5.0", "CET-1CEST,M3.5.0"] {
            assert_eq!(parse_rule(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_rule_alone_is_a_zone() {
        let zone = Zone {
            name: "test".into(),
            transitions: vec![],
            types: vec![LocalType { offset: 3600, dst: false }],
            rule: parse_rule("CET-1CEST,M3.5.0,M10.5.0/3"),
        };
        assert_eq!(zone.offset_at(1_711_846_799), 3600);
        assert_eq!(zone.offset_at(1_711_846_800), 7200);
        assert_eq!(zone.offset_at(1_729_990_799), 7200);
        assert_eq!(zone.offset_at(1_729_990_800), 3600);
    }
}
