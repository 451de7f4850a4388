//! Ages and durations in Kubernetes' short human form (`5s`, `3m2s`, `2h3m`, `4d`, `2y`): apimachinery's
//! `duration.HumanDuration`, as the printers use it for every AGE-like cell.

use std::time::{Duration, SystemTime};

/// Parses an RFC 3339 timestamp as the api-server writes them (`2024-05-01T10:00:00Z`).
pub fn parse_timestamp(ts: &str) -> Option<SystemTime> {
    if ts.is_empty() {
        return None;
    }
    humantime::parse_rfc3339_weak(ts).ok()
}

/// `HumanDuration` of a span that is not negative: precise for short spans, coarser as they grow.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = hours / 24 % 365;
        let years = hours / 24 / 365;
        return if days == 0 { format!("{years}y") } else { format!("{years}y{days}d") };
    }
    format!("{}y", hours / 24 / 365)
}

/// `HumanDuration(to - from)`: a span less than two whole seconds negative (clock skew) reads as `0s`, a
/// more negative one as `<invalid>`.
pub fn span(from: SystemTime, to: SystemTime) -> String {
    match to.duration_since(from) {
        Ok(d) => human_duration(d),
        Err(e) if e.duration().as_secs() < 2 => "0s".to_string(),
        Err(_) => "<invalid>".to_string(),
    }
}

/// The time since `ts` (the printers' `translateTimestampSince`); `<unknown>` without a timestamp.
pub fn since(ts: &str, now: SystemTime) -> String {
    match parse_timestamp(ts) {
        Some(t) => span(t, now),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn kubectl_human_durations() {
        let cases = [
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (182, "3m2s"),
            (9 * 60 + 59, "9m59s"),
            (10 * 60 + 30, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (2 * 3600 + 3 * 60 + 10 * 60 * 6, "3h3m"),
            (7 * 3600 + 59 * 60, "7h59m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (4 * 86400 + 5 * 3600, "4d5h"),
            (8 * 86400, "8d"),
            (400 * 86400, "400d"),
            (2 * 365 * 86400, "2y"),
            (3 * 365 * 86400 + 10 * 86400, "3y10d"),
            (9 * 365 * 86400 + 10 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(d(secs)), want, "{secs}s");
        }
    }

    #[test]
    fn since_timestamps() {
        let now = parse_timestamp("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(since("2024-05-01T09:55:00Z", now), "5m");
        assert_eq!(since("2024-05-01T07:57:00Z", now), "123m");
        assert_eq!(since("2024-05-01T05:57:00Z", now), "4h3m");
        assert_eq!(since("2024-05-01T09:59:59.5Z", now), "0s");
        assert_eq!(since("2024-05-01T10:00:01Z", now), "0s", "clock skew");
        assert_eq!(since("2024-05-01T10:00:01.9Z", now), "0s", "clock skew");
        assert_eq!(since("2024-05-01T10:00:02Z", now), "<invalid>");
        assert_eq!(since("2024-05-01T11:00:00Z", now), "<invalid>");
        assert_eq!(since("", now), "<unknown>");
        assert_eq!(since("garbage", now), "<unknown>");
        let start = parse_timestamp("2024-05-01T09:00:00Z").unwrap();
        assert_eq!(span(start, parse_timestamp("2024-05-01T09:00:42Z").unwrap()), "42s");
    }
}
