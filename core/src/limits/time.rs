//! Wall-clock arithmetic for limits, all in UTC milliseconds since the Unix epoch: RFC 3339
//! expiry times and the calendar periods budgets reset on (day, ISO week from Monday, month).
//! A hand parser, because the filter needs only this one format and no time zone database.

use crate::config::access::Period;

pub const SECOND_MS: u64 = 1_000;
pub const MINUTE_MS: u64 = 60 * SECOND_MS;
pub const DAY_MS: u64 = 24 * 60 * MINUTE_MS;

impl Period {
    /// Start of the period holding `now` (0 for `Total`).
    pub fn start(self, now_ms: u64) -> u64 {
        let day = now_ms / DAY_MS;
        match self {
            Period::Day => day * DAY_MS,
            // 1970-01-01 was a Thursday: Monday is 3 days earlier in the cycle.
            Period::Week => day.saturating_sub((day + 3) % 7) * DAY_MS,
            Period::Month => {
                let (y, m, _) = civil_from_days(day as i64);
                days_from_civil(y, m, 1).max(0) as u64 * DAY_MS
            }
            Period::Total => 0,
        }
    }

    /// When the period holding `now` ends (`None` for `Total`).
    pub fn end(self, now_ms: u64) -> Option<u64> {
        let start = self.start(now_ms);
        match self {
            Period::Day => Some(start + DAY_MS),
            Period::Week => Some(start + 7 * DAY_MS),
            Period::Month => {
                let (y, m, _) = civil_from_days((start / DAY_MS) as i64);
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                Some(days_from_civil(y, m, 1).max(0) as u64 * DAY_MS)
            }
            Period::Total => None,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let m = i64::from(month);
    let month_from_march = if m > 2 { m - 3 } else { m + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01: (year, month 1-12, day 1-31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `2026-04-01T00:00:00Z`: a moment in RFC 3339, UTC, whole seconds.
pub fn format_utc(ms: u64) -> String {
    let (y, m, d) = civil_from_days((ms / DAY_MS) as i64);
    let secs = (ms % DAY_MS) / SECOND_MS;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses an RFC 3339 date-time (`2026-03-01T12:00:00Z`, `…+02:00`, fractions allowed) or a
/// full date (`2026-03-01`, meaning 00:00 UTC that day) into milliseconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("invalid date-time `{text}`: use RFC 3339, e.g. 2026-12-31T23:59:59Z or 2026-12-31")
    };
    let mut p = Cursor::new(text.trim());
    let year = p.digits(4).ok_or_else(bad)?;
    p.eat(b'-').ok_or_else(bad)?;
    let month = p.digits(2).ok_or_else(bad)? as u32;
    p.eat(b'-').ok_or_else(bad)?;
    let day = p.digits(2).ok_or_else(bad)? as u32;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year as i64, month) {
        return Err(format!("invalid date `{text}`: no such day"));
    }
    let days = days_from_civil(year as i64, month, day);
    if days < 0 {
        return Err(format!("invalid date `{text}`: before 1970"));
    }
    let mut ms = days as u64 * DAY_MS;
    if p.done() {
        return Ok(ms);
    }
    if !matches!(p.next(), Some(b'T' | b't' | b' ')) {
        return Err(bad());
    }
    let hour = p.digits(2).ok_or_else(bad)?;
    p.eat(b':').ok_or_else(bad)?;
    let minute = p.digits(2).ok_or_else(bad)?;
    p.eat(b':').ok_or_else(bad)?;
    // 60 is a leap second; it counts as the last second of the minute.
    let second = p.digits(2).ok_or_else(bad)?.min(59);
    if hour > 23 || minute > 59 {
        return Err(format!("invalid time in `{text}`"));
    }
    let mut fraction_ms = 0;
    if p.peek() == Some(b'.') {
        p.next();
        let mut scale = 100;
        let mut any = false;
        while let Some(d) = p.peek().filter(u8::is_ascii_digit) {
            p.next();
            fraction_ms += u64::from(d - b'0') * scale;
            scale /= 10;
            any = true;
        }
        if !any {
            return Err(bad());
        }
    }
    ms += (hour * 3600 + minute * 60 + second) * SECOND_MS + fraction_ms;
    let offset_ms = match p.next() {
        Some(b'Z' | b'z') => 0i64,
        Some(sign @ (b'+' | b'-')) => {
            let oh = p.digits(2).ok_or_else(bad)?;
            p.eat(b':').ok_or_else(bad)?;
            let om = p.digits(2).ok_or_else(bad)?;
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let offset = ((oh * 60 + om) * MINUTE_MS) as i64;
            if sign == b'+' {
                offset
            } else {
                -offset
            }
        }
        _ => return Err(bad()),
    };
    if !p.done() {
        return Err(bad());
    }
    // Local time minus its offset is UTC.
    let utc = ms as i64 - offset_ms;
    u64::try_from(utc).map_err(|_| format!("invalid date `{text}`: before 1970"))
}

/// A byte cursor for the parser above.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// Consumes the next byte, which must be `byte`.
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u64> {
        let mut value = 0u64;
        for _ in 0..n {
            let d = self.next().filter(u8::is_ascii_digit)?;
            value = value * 10 + u64::from(d - b'0');
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    const fn at(days: u64, ms_into_day: u64) -> u64 {
        days * DAY_MS + ms_into_day
    }

    #[test]
    fn civil_dates_round_trip() {
        for (days, date) in [
            (0, (1970, 1, 1)),
            (59, (1970, 3, 1)),
            (11_016, (2000, 2, 29)),
            (19_782, (2024, 2, 29)),
            (20_454, (2026, 1, 1)),
            (-1, (1969, 12, 31)),
        ] {
            assert_eq!(civil_from_days(days), date, "{days}");
            assert_eq!(days_from_civil(date.0, date.1, date.2), days, "{date:?}");
        }
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn parses_rfc3339() {
        let jan1_2026 = 20_454 * DAY_MS;
        for (text, ms) in [
            ("2026-01-01", jan1_2026),
            ("2026-01-01T00:00:00Z", jan1_2026),
            ("2026-01-01t00:00:00z", jan1_2026),
            ("2026-01-01 10:30:15Z", jan1_2026 + 37_815_000),
            ("2026-01-01T10:30:15.25Z", jan1_2026 + 37_815_250),
            ("2026-01-01T02:00:00+02:00", jan1_2026),
            ("2025-12-31T22:00:00-02:00", jan1_2026),
            ("2016-12-31T23:59:60Z", 17_166 * DAY_MS + DAY_MS - 1000),
            ("1970-01-01T00:00:00Z", 0),
        ] {
            assert_eq!(parse_rfc3339(text), Ok(ms), "{text}");
        }
        for text in [
            "2026-13-01",
            "2026-02-29",
            "2026-1-01",
            "2026-01-01T24:00:00Z",
            "2026-01-01T10:00Z",
            "2026-01-01T10:00:00",
            "2026-01-01T10:00:00.Z",
            "2026-01-01T10:00:00+0200",
            "2026-01-01T10:00:00Zjunk",
            "1969-12-31",
            "1970-01-01T00:00:00+01:00",
            "tomorrow",
            "",
        ] {
            assert!(parse_rfc3339(text).is_err(), "{text} should not parse");
        }
        assert_eq!(parse_rfc3339("2024-02-29"), Ok(19_782 * DAY_MS));
        for text in [
            "2026-01-01T10:30:15Z",
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
        ] {
            assert_eq!(format_utc(parse_rfc3339(text).unwrap()), text);
        }
    }

    #[test]
    fn periods_start_and_end_on_calendar_boundaries() {
        // 2026-03-18 (a Wednesday) 13:45 UTC.
        let days = days_from_civil(2026, 3, 18) as u64;
        let now = at(days, 49_500_000);
        let monday = days_from_civil(2026, 3, 16) as u64;
        let march1 = days_from_civil(2026, 3, 1) as u64;
        let april1 = days_from_civil(2026, 4, 1) as u64;
        struct Case {
            name: &'static str,
            period: Period,
            start: u64,
            end: Option<u64>,
        }
        let table = [
            Case {
                name: "the day",
                period: Period::Day,
                start: at(days, 0),
                end: Some(at(days + 1, 0)),
            },
            Case {
                name: "the week from Monday",
                period: Period::Week,
                start: at(monday, 0),
                end: Some(at(monday + 7, 0)),
            },
            Case {
                name: "the month",
                period: Period::Month,
                start: at(march1, 0),
                end: Some(at(april1, 0)),
            },
            Case {
                name: "all time: from the epoch, no end",
                period: Period::Total,
                start: 0,
                end: None,
            },
        ];
        for case in table {
            let (name, period, start) = (case.name, case.period, case.start);
            assert_eq!(period.start(now), start, "{name}: {period:?}");
            assert_eq!(period.end(now), case.end, "{name}: {period:?}");
            // The boundary itself belongs to the new period.
            if let Some(end) = case.end {
                assert_eq!(period.start(end), end, "{name}: {period:?}");
                assert_eq!(period.start(end - 1), start, "{name}: {period:?}");
            }
        }
        // A Monday starts its own week; December rolls into January.
        assert_eq!(Period::Week.start(at(monday, 5)), at(monday, 0));
        let dec = days_from_civil(2025, 12, 31) as u64;
        let jan = days_from_civil(2026, 1, 1) as u64;
        assert_eq!(Period::Month.end(at(dec, 1)), Some(at(jan, 0)));
        // The epoch was a Thursday: its week began on Monday 1969-12-29, clamped to 0.
        assert_eq!(Period::Week.start(at(2, 0)), 0);
        assert_eq!(Period::Week.start(at(4, 0)), at(4, 0));
        assert_eq!(Period::Week.start(at(10, 0)), at(4, 0));
    }
}
