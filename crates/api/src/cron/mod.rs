//! Cron schedules as Kubernetes reads a CronJob's `spec.schedule` (robfig/cron v3's
//! `ParseStandard`): five fields (minute, hour, day of month, month, day of week) of `*`, `?`,
//! numbers, names (`JAN`, `mon`), ranges `a-b`, steps `/n` and lists `a,b`; the descriptors
//! `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`), `@hourly` and
//! `@every <duration>`; and a `TZ=`/`CRON_TZ=` prefix (which Kubernetes' validation refuses, so it is
//! only honoured for what was stored before). Errors read like that parser's.
//!
//! [`Schedule::next`] is the first activation after an instant, computed field by field in a
//! [`tz::Zone`] exactly as robfig/cron does it (so DST gaps and overlaps behave as in Kubernetes:
//! a time skipped by a spring-forward does not run that day; one repeated by a fall-back runs twice),
//! giving up after five years (a schedule such as `0 0 30 2 *` never comes).
//! [`civil`] holds the calendar arithmetic, [`tz`] the zone files.

pub mod civil;
mod next;
#[cfg(test)]
mod tests;
pub mod tz;

pub use tz::{Zone, ZoneError};

/// Set in a field's bits when it was `*` or `?` (with no step above 1): the day-of-month and
/// day-of-week fields then combine with AND instead of OR.
const STAR: u64 = 1 << 63;

/// A schedule that does not parse; the message is robfig/cron's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

/// A parsed cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    kind: Kind,
    /// The zone of a `TZ=`/`CRON_TZ=` prefix.
    zone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Bit sets of the values each field allows.
    Fields { minute: u64, hour: u64, dom: u64, month: u64, dow: u64 },
    /// `@every`: a fixed delay in whole seconds (at least one).
    Every(i64),
}

/// One of the five fields: its bounds and names.
struct Bounds {
    min: u64,
    max: u64,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds { min: 0, max: 59, names: &[] };
const HOURS: Bounds = Bounds { min: 0, max: 23, names: &[] };
const DAYS_OF_MONTH: Bounds = Bounds { min: 1, max: 31, names: &[] };
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
};
const DAYS_OF_WEEK: Bounds =
    Bounds { min: 0, max: 6, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] };

fn bits(min: u64, max: u64, step: u64) -> u64 {
    (min..=max).step_by(step as usize).fold(0, |b, i| b | 1 << i)
}

fn all(b: &Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR
}

impl Schedule {
    /// Parses `spec` as Kubernetes does. A `TZ=` prefix must name a zone the system has.
    pub fn parse(spec: &str) -> Result<Schedule, ScheduleError> {
        let err = |m: String| Err(ScheduleError(m));
        if spec.is_empty() {
            return err("empty spec string".into());
        }
        let mut spec = spec;
        let mut zone = None;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            let Some(space) = spec.find(' ') else {
                return err(format!("invalid timezone specification: {spec}"));
            };
            let name = &spec[spec.find('=').unwrap_or(0) + 1..space];
            if let Err(e) = Zone::load(name) {
                return err(format!("provided bad location {name}: {e}"));
            }
            zone = Some(name.to_string());
            spec = spec[space..].trim();
        }
        let kind = if spec.starts_with('@') { descriptor(spec)? } else { fields(spec)? };
        Ok(Schedule { kind, zone })
    }

    /// The zone named by a `TZ=`/`CRON_TZ=` prefix, if any.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }

    /// The first activation strictly after `after` (Unix seconds; activations fall on whole
    /// seconds), in `zone`; `None` if there is none within five years.
    pub fn next(&self, zone: &Zone, after: i64) -> Option<i64> {
        match self.kind {
            Kind::Every(delay) => Some(after + delay),
            Kind::Fields { minute, hour, dom, month, dow } => {
                next::next(&next::Spec { minute, hour, dom, month, dow }, zone, after)
            }
        }
    }
}

fn descriptor(spec: &str) -> Result<Kind, ScheduleError> {
    let (m0, h0) = (1, 1);
    let fixed = |dom: u64, month: u64, dow: u64| Kind::Fields { minute: m0, hour: h0, dom, month, dow };
    Ok(match spec {
        "@yearly" | "@annually" => fixed(1 << 1, 1 << 1, all(&DAYS_OF_WEEK)),
        "@monthly" => fixed(1 << 1, all(&MONTHS), all(&DAYS_OF_WEEK)),
        "@weekly" => fixed(all(&DAYS_OF_MONTH), all(&MONTHS), 1),
        "@daily" | "@midnight" => fixed(all(&DAYS_OF_MONTH), all(&MONTHS), all(&DAYS_OF_WEEK)),
        "@hourly" => Kind::Fields {
            minute: m0,
            hour: all(&HOURS),
            dom: all(&DAYS_OF_MONTH),
            month: all(&MONTHS),
            dow: all(&DAYS_OF_WEEK),
        },
        _ => match spec.strip_prefix("@every ") {
            Some(d) => {
                let nanos = parse_go_duration(d)
                    .map_err(|e| ScheduleError(format!("failed to parse duration {spec}: {e}")))?;
                // robfig/cron: at least a second, truncated to whole seconds.
                Kind::Every((nanos / 1_000_000_000).max(1) as i64)
            }
            None => return Err(ScheduleError(format!("unrecognized descriptor: {spec}"))),
        },
    })
}

fn fields(spec: &str) -> Result<Kind, ScheduleError> {
    let f: Vec<&str> = spec.split_whitespace().collect();
    if f.len() != 5 {
        // Go prints the fields as a slice: `[* * *]`.
        return Err(ScheduleError(format!(
            "expected exactly 5 fields, found {}: [{}]",
            f.len(),
            f.join(" ")
        )));
    }
    Ok(Kind::Fields {
        minute: field(f[0], &MINUTES)?,
        hour: field(f[1], &HOURS)?,
        dom: field(f[2], &DAYS_OF_MONTH)?,
        month: field(f[3], &MONTHS)?,
        dow: field(f[4], &DAYS_OF_WEEK)?,
    })
}

/// A comma-separated list of ranges.
fn field(f: &str, b: &Bounds) -> Result<u64, ScheduleError> {
    f.split(',').filter(|r| !r.is_empty()).try_fold(0, |acc, r| Ok(acc | range(r, b)?))
}

/// `*`, `?`, `n`, `a-b`, each with an optional `/step` (`n/step` runs to the maximum).
fn range(expr: &str, b: &Bounds) -> Result<u64, ScheduleError> {
    let err = |m: String| Err(ScheduleError(m));
    let range_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_step[0].split('-').collect();
    let (start, mut end, mut extra) = if low_high[0] == "*" || low_high[0] == "?" {
        (b.min, b.max, STAR)
    } else {
        let start = int_or_name(low_high[0], b)?;
        let end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], b)?,
            _ => return err(format!("too many hyphens: {expr}")),
        };
        (start, end, 0)
    };
    let step = match range_step.len() {
        1 => 1,
        2 => {
            let step = int(range_step[1])?;
            if low_high.len() == 1 {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return err(format!("beginning of range ({start}) below minimum ({}): {expr}", b.min));
    }
    if end > b.max {
        return err(format!("end of range ({end}) above maximum ({}): {expr}", b.max));
    }
    if start > end {
        return err(format!("beginning of range ({start}) beyond end of range ({end}): {expr}"));
    }
    if step == 0 {
        return err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn int_or_name(expr: &str, b: &Bounds) -> Result<u64, ScheduleError> {
    let lower = expr.to_ascii_lowercase();
    match b.names.iter().position(|n| *n == lower) {
        Some(i) => Ok(b.min + i as u64),
        None => int(expr),
    }
}

/// Go's `strconv.Atoi`, refusing negatives.
fn int(expr: &str) -> Result<u64, ScheduleError> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ScheduleError(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": invalid syntax"
        )));
    }
    let Ok(n) = expr.parse::<i64>() else {
        return Err(ScheduleError(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": value out of range"
        )));
    };
    if n < 0 {
        return Err(ScheduleError(format!("negative number ({n}) not allowed: {expr}")));
    }
    Ok(n as u64)
}

/// Go's `time.ParseDuration` (`1h30m`, `90s`, `1.5h`, `300ms`), in nanoseconds (negative: zero).
pub fn parse_go_duration(s: &str) -> Result<u128, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    let negative = s.starts_with('-');
    let mut rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            u => return Err(format!("time: unknown unit \"{u}\" in duration \"{s}\"")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(if negative { 0 } else { total as u128 })
}
