//! RFC 3339 times as Kubernetes reads and writes them: parsing with any UTC offset (`Z` or
//! `±hh:mm`, any fraction of a second, as Go's `time.Parse(time.RFC3339, ..)`), and the two
//! nanosecond formats of container logs — Go's `RFC3339Nano` (trailing zeros of the fraction
//! trimmed, what the CRI log files hold) and the kubelet's `RFC3339NanoFixed` (always nine digits,
//! what `kubectl logs --timestamps` prints). Times are written in UTC (`Z`).

use std::time::{Duration, SystemTime};

/// Go's layout name in errors, as Kubernetes' messages show it.
const GO_LAYOUT: &str = "2006-01-02T15:04:05Z07:00";

/// A string that is not an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parsing time {value:?} as \"{GO_LAYOUT}\": cannot parse {value:?} as an RFC 3339 time")]
pub struct Rfc3339Error {
    pub value: String,
}

/// Parses `2024-05-01T10:00:00Z`, `2024-05-01T10:00:00.5Z` or `2024-05-01T12:00:00+02:00`.
pub fn parse(s: &str) -> Result<SystemTime, Rfc3339Error> {
    let err = || Rfc3339Error { value: s.to_string() };
    if s.len() < "2006-01-02T15:04:05Z".len() || !s.is_ascii() {
        return Err(err());
    }
    if s.ends_with(['Z', 'z']) {
        return humantime::parse_rfc3339(&format!("{}Z", &s[..s.len() - 1])).map_err(|_| err());
    }
    // `±hh:mm`: the local time, then moved to UTC.
    let (base, offset) = s.split_at(s.len() - 6);
    let o = offset.as_bytes();
    if !matches!(o[0], b'+' | b'-') || o[3] != b':' {
        return Err(err());
    }
    let num = |b: &[u8]| -> Option<u64> { std::str::from_utf8(b).ok()?.parse().ok() };
    let (Some(hh), Some(mm)) = (num(&o[1..3]), num(&o[4..6])) else { return Err(err()) };
    if hh > 23 || mm > 59 {
        return Err(err());
    }
    let local = humantime::parse_rfc3339(&format!("{base}Z")).map_err(|_| err())?;
    let shift = Duration::from_secs(hh * 3600 + mm * 60);
    if o[0] == b'+' { local.checked_sub(shift) } else { local.checked_add(shift) }.ok_or_else(err)
}

/// Go's `RFC3339Nano` in UTC: `2006-01-02T15:04:05.999999999Z`, the fraction without trailing
/// zeros (none at all on a whole second).
pub fn format_nano(t: SystemTime) -> String {
    let fixed = format_nano_fixed(t);
    // "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"
    let (head, frac) = fixed.split_at(19);
    let digits = frac[1..frac.len() - 1].trim_end_matches('0');
    if digits.is_empty() { format!("{head}Z") } else { format!("{head}.{digits}Z") }
}

/// Kubernetes' `RFC3339NanoFixed` in UTC: always nine digits of fraction.
pub fn format_nano_fixed(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn formats_like_go() {
        // 2024-05-01T10:00:00Z
        let t = 1_714_557_600;
        assert_eq!(format_nano(at(t, 0)), "2024-05-01T10:00:00Z");
        assert_eq!(format_nano(at(t, 500_000_000)), "2024-05-01T10:00:00.5Z");
        assert_eq!(format_nano(at(t, 123_456_789)), "2024-05-01T10:00:00.123456789Z");
        assert_eq!(format_nano(at(t, 1_000)), "2024-05-01T10:00:00.000001Z");
        assert_eq!(format_nano_fixed(at(t, 500_000_000)), "2024-05-01T10:00:00.500000000Z");
        assert_eq!(format_nano_fixed(at(t, 0)), "2024-05-01T10:00:00.000000000Z");
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let t = at(1_714_557_600, 0);
        assert_eq!(parse("2024-05-01T10:00:00Z").unwrap(), t);
        assert_eq!(parse("2024-05-01T10:00:00z").unwrap(), t);
        assert_eq!(parse("2024-05-01T12:00:00+02:00").unwrap(), t);
        assert_eq!(parse("2024-05-01T07:30:00-02:30").unwrap(), t);
        assert_eq!(parse("2024-05-01T10:00:00.25Z").unwrap(), at(1_714_557_600, 250_000_000));
        assert_eq!(parse("2024-05-01T10:00:00.123456789Z").unwrap(), at(1_714_557_600, 123_456_789));
        for round in [at(1_714_557_600, 7), at(1_714_557_600, 120_000_000)] {
            assert_eq!(parse(&format_nano(round)).unwrap(), round);
            assert_eq!(parse(&format_nano_fixed(round)).unwrap(), round);
        }
        for bad in [
            "",
            "yesterday",
            "2024-05-01",
            "2024-05-01T10:00:00",
            "2024-05-01T10:00:00+2:00",
            "2024-13-01T10:00:00Z",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.value, bad);
        }
        assert_eq!(
            parse("yesterday").unwrap_err().to_string(),
            "parsing time \"yesterday\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"yesterday\" as an RFC 3339 time"
        );
    }
}
