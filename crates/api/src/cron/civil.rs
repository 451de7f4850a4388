//! Calendar arithmetic on Unix seconds (proleptic Gregorian, no leap seconds): days from a civil
//! date and back, weekdays, month lengths, and [`Civil`], the wall-clock fields of an instant in a
//! time zone.

pub const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of `y-m-d` (`m` 1..=12; `d` may run past the month, it just counts on).
pub fn days_from_civil(y: i64, m: u32, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + (d - 1)
}

/// The civil date (year, month 1..=12, day 1..=31) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Day of the week of a day number: 0 is Sunday (1970-01-01 was a Thursday).
pub fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The wall-clock reading of an instant in some time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 (Sunday) ..= 6
    pub weekday: u32,
    /// Seconds east of UTC.
    pub offset: i32,
}

impl Civil {
    /// The fields of `wall`, seconds since 1970-01-01T00:00:00 read as local time, at `offset`.
    pub fn from_wall(wall: i64, offset: i32) -> Civil {
        let days = wall.div_euclid(SECS_PER_DAY);
        let secs = wall.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs % 3600 / 60) as u32,
            second: (secs % 60) as u32,
            weekday: weekday(days),
            offset,
        }
    }

    /// RFC 3339 with the offset (`Z` when it is zero), as Go's `time.RFC3339` formats.
    pub fn rfc3339(&self) -> String {
        let zone = if self.offset == 0 {
            "Z".to_string()
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let o = self.offset.unsigned_abs();
            format!("{sign}{:02}:{:02}", o / 3600, o % 3600 / 60)
        };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl Civil {
    /// Go's `time.RFC1123Z`: `Mon, 02 Jan 2006 15:04:05 -0700`.
    pub fn rfc1123z(&self) -> String {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] =
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let sign = if self.offset < 0 { '-' } else { '+' };
        let o = self.offset.unsigned_abs();
        format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
            DAYS[self.weekday as usize],
            self.day,
            MONTHS[self.month as usize - 1],
            self.year,
            self.hour,
            self.minute,
            self.second,
            o / 3600,
            o % 3600 / 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_weekdays() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_civil(2024, 1, 32), days_from_civil(2024, 2, 1), "days run on");
        for d in [-800_000, -1, 0, 59, 10_000, 20_000, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, i64::from(dd)), d);
        }
        assert_eq!(weekday(0), 4, "a Thursday");
        assert_eq!(weekday(days_from_civil(2024, 2, 29)), 4);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        let c = Civil::from_wall(1_709_164_800 + 3600, 3600);
        assert_eq!(c.rfc3339(), "2024-02-29T01:00:00+01:00");
        assert_eq!(Civil::from_wall(0, 0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Civil::from_wall(0, 0).rfc1123z(), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(c.rfc1123z(), "Thu, 29 Feb 2024 01:00:00 +0100");
        assert_eq!(Civil::from_wall(0, -(5 * 3600 + 1800)).rfc3339(), "1970-01-01T00:00:00-05:30");
    }
}
