//! SigV4 timestamps: UTC in ISO 8601 basic format, `20150830T123600Z`, to the second.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A SigV4 timestamp, as whole seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AmzDate(i64);

impl AmzDate {
    /// Parses `yyyyMMddTHHmmssZ` exactly (no fractions, no offsets, no leap seconds).
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let number = |range: std::ops::Range<usize>| -> Option<i64> {
            b[range].iter().try_fold(0i64, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
            })
        };
        let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
        let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        Some(Self(days * 86_400 + hour * 3_600 + minute * 60 + second))
    }

    /// `time` truncated to the second; times before 1970 count as the epoch.
    pub fn from_system_time(time: SystemTime) -> Self {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Self(secs)
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(self.0).unwrap_or(0))
    }

    /// This time moved by `secs` (negative: earlier).
    pub fn add_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    #[cfg(test)]
    pub fn secs(self) -> i64 {
        self.0
    }
}

impl fmt::Display for AmzDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
            secs / 3_600,
            secs % 3_600 / 60,
            secs % 60
        )
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::AmzDate;
    use proptest::prelude::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn parses_and_formats_known_instants() {
        let date = AmzDate::parse("20150830T123600Z").unwrap();
        assert_eq!(date.secs(), 1_440_938_160);
        assert_eq!(date.to_string(), "20150830T123600Z");
        assert_eq!(AmzDate::parse("19700101T000000Z").unwrap().secs(), 0);
        assert_eq!(
            AmzDate::parse("20240229T235959Z").unwrap().to_string(),
            "20240229T235959Z"
        );
        assert_eq!(
            AmzDate::from_system_time(UNIX_EPOCH + Duration::from_millis(1_440_938_160_999))
                .to_string(),
            "20150830T123600Z"
        );
    }

    #[test]
    fn rejects_other_shapes() {
        for text in [
            "",
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20150830T123600.000Z",
            "20150830t123600Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20230229T000000Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "20150830T123660Z",
            "2015083OT123600Z",
            "+2015830T123600Z",
        ] {
            assert_eq!(AmzDate::parse(text), None, "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn formatting_round_trips(secs in 0i64..253_402_300_800) {
            let date = AmzDate(secs);
            prop_assert_eq!(AmzDate::parse(&date.to_string()), Some(date));
        }
    }
}
