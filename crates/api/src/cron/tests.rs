use super::civil::days_from_civil;
use super::*;

/// Unix seconds of a UTC wall time.
fn utc(y: i64, mo: u32, d: i64, h: i64, mi: i64) -> i64 {
    days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
}

fn zone(name: &str) -> Zone {
    Zone::load(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The next `n` activations after `from`, as RFC 3339 in `z`.
fn runs(spec: &str, z: &Zone, from: i64, n: usize) -> Vec<String> {
    let s = Schedule::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let mut out = Vec::new();
    let mut t = from;
    for _ in 0..n {
        match s.next(z, t) {
            Some(next) => {
                out.push(z.civil(next).rfc3339());
                t = next;
            }
            None => break,
        }
    }
    out
}

#[test]
fn parses_what_kubernetes_accepts() {
    for ok in [
        "* * * * *",
        "*/1 * * * *",
        "0 0 * * 0",
        "0 9-17/2 * * mon-fri",
        "15,45 3 1,15 JAN,jul ?",
        "0 0 29 2 *",
        "5 4 * * SUN",
        "0 0 31 * *",
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@every 1h30m",
        "@every 90s",
        " 0 * * * * ",
        "TZ=Europe/Paris 0 9 * * *",
        "CRON_TZ=UTC @daily",
    ] {
        assert!(Schedule::parse(ok).is_ok(), "{ok}: {:?}", Schedule::parse(ok));
    }
    assert_eq!(Schedule::parse("TZ=Europe/Paris 0 9 * * *").unwrap().zone(), Some("Europe/Paris"));
}

#[test]
fn refuses_with_robfig_cron_messages() {
    for (bad, message) in [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * 13 *", "end of range (13) above maximum (12): 13"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("a * * * *", "failed to parse int from a: strconv.Atoi: parsing \"a\": invalid syntax"),
        ("-1 * * * *", "failed to parse int from : strconv.Atoi: parsing \"\": invalid syntax"),
        ("1/2/3 * * * *", "too many slashes: 1/2/3"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("* * * foo *", "failed to parse int from foo: strconv.Atoi: parsing \"foo\": invalid syntax"),
        ("@every", "unrecognized descriptor: @every"),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ("@every 5", "failed to parse duration @every 5: time: missing unit in duration \"5\""),
        ("@every 5y", "failed to parse duration @every 5y: time: unknown unit \"y\" in duration \"5y\""),
        ("TZ=Mars/Olympus 0 * * * *", "provided bad location Mars/Olympus: unknown time zone Mars/Olympus"),
        ("TZ=UTC", "invalid timezone specification: TZ=UTC"),
    ] {
        assert_eq!(Schedule::parse(bad).unwrap_err().to_string(), message, "{bad}");
    }
}

#[test]
fn every_minute_and_steps() {
    let z = Zone::utc();
    let from = utc(2026, 1, 1, 10, 0) + 30;
    assert_eq!(runs("*/1 * * * *", &z, from, 2), ["2026-01-01T10:01:00Z", "2026-01-01T10:02:00Z"]);
    // Exactly on an activation: the next one.
    assert_eq!(runs("* * * * *", &z, utc(2026, 1, 1, 10, 0), 1), ["2026-01-01T10:01:00Z"]);
    assert_eq!(
        runs("*/20 9-10 * * *", &z, from, 4),
        ["2026-01-01T10:20:00Z", "2026-01-01T10:40:00Z", "2026-01-02T09:00:00Z", "2026-01-02T09:20:00Z"]
    );
    assert_eq!(runs("5/30 * * * *", &z, from, 2), ["2026-01-01T10:05:00Z", "2026-01-01T10:35:00Z"]);
    assert_eq!(runs("0 12 * JAN,jul *", &z, utc(2026, 1, 31, 13, 0), 1), ["2026-07-01T12:00:00Z"]);
}

#[test]
fn month_ends_and_leap_days() {
    let z = Zone::utc();
    assert_eq!(
        runs("0 0 31 * *", &z, utc(2026, 1, 1, 0, 0), 4),
        ["2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"]
    );
    assert_eq!(
        runs("0 0 29 2 *", &z, utc(2025, 1, 1, 0, 0), 2),
        ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
    );
    // Never: nothing within five years.
    assert!(runs("0 0 30 2 *", &z, utc(2026, 1, 1, 0, 0), 1).is_empty());
    assert!(runs("59 23 31 2 *", &z, utc(2026, 1, 1, 0, 0), 1).is_empty());
    // 2100 is not a leap year.
    assert!(runs("0 0 29 2 *", &z, utc(2097, 1, 1, 0, 0), 1).is_empty());
    assert_eq!(runs("0 0 29 2 *", &z, utc(2099, 1, 1, 0, 0), 1), ["2104-02-29T00:00:00Z"]);
}

#[test]
fn day_of_month_or_day_of_week() {
    let z = Zone::utc();
    // 2026-02-13 is a Friday. Both restricted: the 13th OR any Friday.
    assert_eq!(
        runs("0 0 13 * 5", &z, utc(2026, 2, 1, 0, 0), 4),
        ["2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z", "2026-02-27T00:00:00Z"]
    );
    assert_eq!(
        runs("0 0 13 * 5", &z, utc(2026, 3, 12, 0, 0), 2),
        ["2026-03-13T00:00:00Z", "2026-03-20T00:00:00Z"]
    );
    // One of them `*` or `?`: AND, so only the restricted one counts.
    assert_eq!(
        runs("0 0 13 * *", &z, utc(2026, 2, 1, 0, 0), 2),
        ["2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z"]
    );
    assert_eq!(
        runs("0 0 ? * FRI", &z, utc(2026, 2, 1, 0, 0), 2),
        ["2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z"]
    );
    // A step above 1 makes `*` a restriction: OR again (the 1st, or Sunday, Wednesday, Saturday).
    assert_eq!(
        runs("0 0 1 * */3", &z, utc(2026, 2, 26, 0, 0), 4),
        ["2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-04T00:00:00Z", "2026-03-07T00:00:00Z"]
    );
    assert_eq!(runs("0 0 * * sun", &z, utc(2026, 2, 1, 0, 0), 1), ["2026-02-08T00:00:00Z"]);
}

#[test]
fn descriptors() {
    let z = Zone::utc();
    let from = utc(2026, 2, 10, 10, 30);
    assert_eq!(runs("@hourly", &z, from, 1), ["2026-02-10T11:00:00Z"]);
    assert_eq!(runs("@daily", &z, from, 1), ["2026-02-11T00:00:00Z"]);
    assert_eq!(runs("@midnight", &z, from, 1), ["2026-02-11T00:00:00Z"]);
    assert_eq!(runs("@weekly", &z, from, 2), ["2026-02-15T00:00:00Z", "2026-02-22T00:00:00Z"]);
    assert_eq!(runs("@monthly", &z, from, 1), ["2026-03-01T00:00:00Z"]);
    assert_eq!(runs("@yearly", &z, from, 1), ["2027-01-01T00:00:00Z"]);
    assert_eq!(runs("@annually", &z, from, 1), ["2027-01-01T00:00:00Z"]);
    assert_eq!(runs("@every 90s", &z, from, 2), ["2026-02-10T10:31:30Z", "2026-02-10T10:33:00Z"]);
    assert_eq!(runs("@every 100ms", &z, from, 1), ["2026-02-10T10:30:01Z"], "at least a second");
}

#[test]
fn time_zones_from_the_system() {
    let paris = zone("Europe/Paris");
    assert_eq!(paris.offset_at(utc(2026, 1, 15, 12, 0)), 3600);
    assert_eq!(paris.offset_at(utc(2026, 7, 15, 12, 0)), 7200);
    // Far beyond the table (fat files stop in 2037): the footer's rule.
    assert_eq!(paris.offset_at(utc(2080, 7, 15, 12, 0)), 7200);
    assert_eq!(paris.offset_at(utc(2080, 12, 15, 12, 0)), 3600);
    let kolkata = zone("Asia/Kolkata");
    assert_eq!(kolkata.civil(utc(2026, 1, 1, 0, 0)).rfc3339(), "2026-01-01T05:30:00+05:30");
    assert_eq!(Zone::load("Mars/Olympus").unwrap_err().to_string(), "unknown time zone Mars/Olympus");
    assert_eq!(Zone::load("../etc/passwd").unwrap_err(), ZoneError::InvalidName);
    assert_eq!(Zone::load("UTC").unwrap(), Zone::utc());
    // 09:00 in Paris is 08:00Z in winter and 07:00Z in summer.
    let s = Schedule::parse("0 9 * * *").unwrap();
    assert_eq!(s.next(&paris, utc(2026, 1, 15, 12, 0)), Some(utc(2026, 1, 16, 8, 0)));
    assert_eq!(s.next(&paris, utc(2026, 7, 15, 12, 0)), Some(utc(2026, 7, 16, 7, 0)));
}

#[test]
fn dst_spring_forward_skips_the_missing_hour() {
    let ny = zone("America/New_York");
    // 2024-03-10: 02:00 EST becomes 03:00 EDT. 02:30 does not exist that day: no run.
    let from = utc(2024, 3, 9, 12, 0);
    assert_eq!(runs("30 2 * * *", &ny, from, 2), ["2024-03-11T02:30:00-04:00", "2024-03-12T02:30:00-04:00"]);
    assert_eq!(
        runs("0 * * * *", &ny, utc(2024, 3, 10, 5, 30), 3),
        ["2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"]
    );
    // Daily at 03:00 still runs that day, an hour of elapsed time sooner.
    assert_eq!(runs("0 3 * * *", &ny, from, 1), ["2024-03-10T03:00:00-04:00"]);
    // A zone whose midnight is skipped (America/Santiago, 2024-09-08: 00:00 becomes 01:00): like
    // robfig/cron, @daily does not run that day.
    let santiago = zone("America/Santiago");
    assert_eq!(
        runs("@daily", &santiago, utc(2024, 9, 7, 12, 0), 2),
        ["2024-09-09T00:00:00-03:00", "2024-09-10T00:00:00-03:00"]
    );
}

#[test]
fn dst_fall_back_repeats_the_hour() {
    let ny = zone("America/New_York");
    // 2024-11-03: 02:00 EDT becomes 01:00 EST; 01:30 happens twice, and runs twice (as in Kubernetes).
    let from = utc(2024, 11, 2, 12, 0);
    assert_eq!(
        runs("30 1 * * *", &ny, from, 3),
        ["2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00", "2024-11-04T01:30:00-05:00"]
    );
    assert_eq!(runs("0 2 * * *", &ny, from, 2), ["2024-11-03T02:00:00-05:00", "2024-11-04T02:00:00-05:00"]);
}

#[test]
fn go_dates_in_gaps_and_overlaps() {
    let paris = zone("Europe/Paris");
    // 2024-03-31 02:30 does not exist: 03:30 CEST (01:30Z). 2024-10-27 02:30 exists twice: the CET one.
    assert_eq!(paris.date(2024, 3, 31, 2, 30, 0), utc(2024, 3, 31, 1, 30));
    assert_eq!(paris.date(2024, 10, 27, 2, 30, 0), utc(2024, 10, 27, 1, 30));
    // Normalization: month 13, day 0.
    assert_eq!(paris.date(2025, 13, 1, 0, 0, 0), utc(2025, 12, 31, 23, 0));
    assert_eq!(paris.date(2026, 3, 0, 0, 0, 0), utc(2026, 2, 27, 23, 0));
}
