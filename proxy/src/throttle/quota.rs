//! Quota windows: calendar days, weeks (Monday 00:00) and months in UTC. A key's quota is
//! `limit` requests per window; in the window the key was created in, `offset` requests are
//! taken off (API Gateway's `offset`: for a plan that starts in the middle of a period).

use super::{Quota, QuotaPeriod};
use crate::encoding::civil_from_days;

/// Seconds in a day.
const DAY: u64 = 86_400;

/// A window: `[start, end)` in seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Window {
    pub start: u64,
    pub end: u64,
}

impl Window {
    /// The window of `period` that holds `now` (seconds since the epoch).
    pub fn containing(period: QuotaPeriod, now: u64) -> Self {
        let day = now / DAY;
        match period {
            QuotaPeriod::Day => Self {
                start: day * DAY,
                end: (day + 1) * DAY,
            },
            QuotaPeriod::Week => {
                // 1970-01-01 was a Thursday: days since the last Monday.
                let since_monday = (day + 3) % 7;
                let start = (day - since_monday) * DAY;
                Self {
                    start,
                    end: start + 7 * DAY,
                }
            }
            QuotaPeriod::Month => {
                let (y, m, _) = civil_from_days(day);
                let start = days_from_civil(y, m, 1) * DAY;
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                Self {
                    start,
                    end: days_from_civil(ny, nm, 1) * DAY,
                }
            }
        }
    }

    /// Days since the epoch that the window covers, first and last.
    pub fn days(&self) -> (u32, u32) {
        let first = u32::try_from(self.start / DAY).unwrap_or(u32::MAX);
        let last = u32::try_from((self.end - 1) / DAY).unwrap_or(u32::MAX);
        (first, last)
    }
}

/// Requests a key may make in `window`: the quota's limit, less the offset in the window the
/// key was created in (`created`, seconds since the epoch).
pub fn allowance(quota: &Quota, window: &Window, created: u64) -> u64 {
    if (window.start..window.end).contains(&created) {
        quota.limit.saturating_sub(quota.offset)
    } else {
        quota.limit
    }
}

/// Days since 1970-01-01 of a civil date (dates from 1970 on).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).unwrap_or(0)
}

/// `YYYY-MM-DD` of a day number.
pub fn date_text(day: u32) -> String {
    let (y, m, d) = civil_from_days(u64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day number of `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<u32> {
    let mut parts = text.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    // Reject 2026-02-30 and the like: the date must survive the round trip.
    (civil_from_days(day) == (y, m, d)).then(|| u32::try_from(day).ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds since the epoch of a UTC date and time.
    fn at(y: i64, m: u32, d: u32, h: u64, min: u64, s: u64) -> u64 {
        days_from_civil(y, m, d) * DAY + h * 3600 + min * 60 + s
    }

    #[test]
    fn days_turn_at_utc_midnight() {
        let w = Window::containing(QuotaPeriod::Day, at(2026, 11, 21, 23, 59, 59));
        assert_eq!(
            (w.start, w.end),
            (at(2026, 11, 21, 0, 0, 0), at(2026, 11, 22, 0, 0, 0))
        );
        let next = Window::containing(QuotaPeriod::Day, at(2026, 11, 22, 0, 0, 0));
        assert_eq!(next.start, w.end);
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-11-21 is a Saturday; its week began Monday 2026-11-16.
        let w = Window::containing(QuotaPeriod::Week, at(2026, 11, 21, 12, 0, 0));
        assert_eq!(
            (w.start, w.end),
            (at(2026, 11, 16, 0, 0, 0), at(2026, 11, 23, 0, 0, 0))
        );
        // Sunday 23:59:59 is still that week; Monday 00:00 is the next.
        assert_eq!(
            Window::containing(QuotaPeriod::Week, at(2026, 11, 22, 23, 59, 59)),
            w
        );
        assert_eq!(
            Window::containing(QuotaPeriod::Week, at(2026, 11, 23, 0, 0, 0)).start,
            w.end
        );
        // Across a year end: Monday 2026-12-28 to Monday 2027-01-04.
        let w = Window::containing(QuotaPeriod::Week, at(2027, 1, 1, 0, 0, 0));
        assert_eq!(
            (w.start, w.end),
            (at(2026, 12, 28, 0, 0, 0), at(2027, 1, 4, 0, 0, 0))
        );
    }

    #[test]
    fn months_are_calendar_months() {
        let w = Window::containing(QuotaPeriod::Month, at(2026, 11, 30, 23, 59, 59));
        assert_eq!(
            (w.start, w.end),
            (at(2026, 11, 1, 0, 0, 0), at(2026, 12, 1, 0, 0, 0))
        );
        let dec = Window::containing(QuotaPeriod::Month, at(2026, 12, 31, 12, 0, 0));
        assert_eq!(
            (dec.start, dec.end),
            (at(2026, 12, 1, 0, 0, 0), at(2027, 1, 1, 0, 0, 0))
        );
        // February in a leap year has 29 days.
        let feb = Window::containing(QuotaPeriod::Month, at(2028, 2, 29, 0, 0, 0));
        assert_eq!(feb.end - feb.start, 29 * DAY);
        assert_eq!(
            feb.days(),
            (
                days_from_civil(2028, 2, 1) as u32,
                days_from_civil(2028, 2, 29) as u32
            )
        );
    }

    #[test]
    fn the_offset_applies_in_the_window_the_key_began() {
        let quota = Quota {
            limit: 1000,
            period: QuotaPeriod::Month,
            offset: 400,
        };
        let created = at(2026, 11, 15, 9, 0, 0);
        let november = Window::containing(QuotaPeriod::Month, created);
        let december = Window::containing(QuotaPeriod::Month, at(2026, 12, 2, 0, 0, 0));
        assert_eq!(allowance(&quota, &november, created), 600);
        assert_eq!(allowance(&quota, &december, created), 1000);
    }

    #[test]
    fn dates_round_trip() {
        for day in [0u32, 59, 365, 11_016, 20_778, 2_932_896] {
            assert_eq!(parse_date(&date_text(day)), Some(day));
        }
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(
            parse_date("2026-11-21").map(date_text).as_deref(),
            Some("2026-11-21")
        );
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
    }
}
