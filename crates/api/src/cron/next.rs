//! The next activation of a five-field schedule: robfig/cron v3's `SpecSchedule.Next`, field by
//! field from the month down, in wall-clock time of a zone. Days and months advance by calendar
//! (`time.Date` normalization), hours and minutes by elapsed time, so a DST gap skips the hour it
//! removes and an overlap repeats the hour it adds, as in Kubernetes.

use super::civil::Civil;
use super::{STAR, Zone};

/// The bit sets of the five fields.
pub(super) struct Spec {
    pub minute: u64,
    pub hour: u64,
    pub dom: u64,
    pub month: u64,
    pub dow: u64,
}

fn has(bits: u64, v: u32) -> bool {
    bits & (1 << v) != 0
}

/// Day of month and day of week both restricted: either may match (cron's OR rule); if either is
/// `*`, both must.
fn day_matches(s: &Spec, c: &Civil) -> bool {
    let (dom, dow) = (has(s.dom, c.day), has(s.dow, c.weekday));
    if s.dom & STAR != 0 || s.dow & STAR != 0 { dom && dow } else { dom || dow }
}

/// The same wall-clock time `months` months and `days` days later (Go's `AddDate`).
fn add_date(zone: &Zone, t: i64, months: i64, days: i64) -> i64 {
    let c = zone.civil(t);
    zone.date(
        c.year,
        i64::from(c.month) + months,
        i64::from(c.day) + days,
        i64::from(c.hour),
        i64::from(c.minute),
        i64::from(c.second),
    )
}

/// The first activation after `after`, or `None` if none comes within five years.
pub(super) fn next(s: &Spec, zone: &Zone, after: i64) -> Option<i64> {
    let mut t = after + 1;
    let mut added = false;
    let year_limit = zone.civil(t).year + 5;
    'wrap: loop {
        let mut c = zone.civil(t);
        if c.year > year_limit {
            return None;
        }
        while !has(s.month, c.month) {
            if !added {
                added = true;
                t = zone.date(c.year, i64::from(c.month), 1, 0, 0, 0);
            }
            t = add_date(zone, t, 1, 0);
            c = zone.civil(t);
            if c.month == 1 {
                continue 'wrap;
            }
        }
        while !day_matches(s, &c) {
            if !added {
                added = true;
                t = zone.date(c.year, i64::from(c.month), i64::from(c.day), 0, 0, 0);
            }
            t = add_date(zone, t, 0, 1);
            c = zone.civil(t);
            // Where midnight does not exist (a DST change at 00:00) the day starts at another hour.
            if c.hour != 0 {
                t += if c.hour > 12 { i64::from(24 - c.hour) * 3600 } else { -i64::from(c.hour) * 3600 };
                c = zone.civil(t);
            }
            if c.day == 1 {
                continue 'wrap;
            }
        }
        while !has(s.hour, c.hour) {
            if !added {
                added = true;
                t = zone.date(c.year, i64::from(c.month), i64::from(c.day), i64::from(c.hour), 0, 0);
            }
            t += 3600;
            c = zone.civil(t);
            if c.hour == 0 {
                continue 'wrap;
            }
        }
        while !has(s.minute, c.minute) {
            if !added {
                added = true;
                t -= t.rem_euclid(60);
            }
            t += 60;
            c = zone.civil(t);
            if c.minute == 0 {
                continue 'wrap;
            }
        }
        // Standard schedules fire at second 0.
        if c.second != 0 {
            added = true;
            t += 60 - i64::from(c.second);
            continue 'wrap;
        }
        return Some(t);
    }
}
