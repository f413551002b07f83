//! Calendar days for dated facts: a decision or attestation counts on some days and not on
//! others, and every decision is taken as of one day, read from an injected [`Clock`].

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

/// A UTC calendar day, written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(time::Date);

/// Why a text is not a day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a date: write YYYY-MM-DD (e.g. 2031-12-27)")]
pub struct DayError(pub String);

impl Day {
    /// The day `days` after this one (saturating at the calendar's end).
    pub fn plus_days(self, days: i64) -> Day {
        Day(self
            .0
            .checked_add(time::Duration::days(days))
            .unwrap_or(time::Date::MAX))
    }

    /// Days from this day to `later` (negative when `later` lies before it).
    pub fn days_until(self, later: Day) -> i64 {
        (later.0 - self.0).whole_days()
    }

    /// Today in UTC, from the system clock.
    pub fn today_utc() -> Day {
        Day(time::OffsetDateTime::now_utc().date())
    }

    /// The UTC day of a Unix time in milliseconds (audit records), if it is one.
    pub fn from_unix_millis(ms: i64) -> Option<Day> {
        time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .ok()
            .map(|t| Day(t.date()))
    }
}

impl FromStr for Day {
    type Err = DayError;
    fn from_str(s: &str) -> Result<Day, DayError> {
        let bad = || DayError(s.to_string());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u16, DayError> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let month =
            time::Month::try_from(u8::try_from(month).map_err(|_| bad())?).map_err(|_| bad())?;
        let day = u8::try_from(day).map_err(|_| bad())?;
        time::Date::from_calendar_date(i32::from(year), month, day)
            .map(Day)
            .map_err(|_| bad())
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }
}

impl serde::Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Day, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where decisions read "today" from. Injected, so that tests can move the day.
pub trait Clock: Send + Sync + fmt::Debug {
    fn today(&self) -> Day;
}

/// The system clock, in UTC.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn today(&self) -> Day {
        Day::today_utc()
    }
}

/// A clock that says what it was last set to.
#[derive(Debug)]
pub struct FixedClock(Mutex<Day>);

impl FixedClock {
    pub fn new(day: Day) -> FixedClock {
        FixedClock(Mutex::new(day))
    }

    pub fn set(&self, day: Day) {
        match self.0.lock() {
            Ok(mut g) => *g = day,
            Err(p) => *p.into_inner() = day,
        }
    }
}

impl Clock for FixedClock {
    fn today(&self) -> Day {
        match self.0.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        s.parse().expect(s)
    }

    #[test]
    fn parses_only_real_calendar_days() {
        assert_eq!(day("2031-12-27").to_string(), "2031-12-27");
        assert_eq!(day("2028-02-29").to_string(), "2028-02-29");
        for bad in [
            "2027-02-29",
            "2031-13-01",
            "2031-12-32",
            "2031-00-10",
            "31-12-2031",
            "2031-1-1",
            "2031/12/27",
            "２０３１-12-27",
            "",
        ] {
            assert_eq!(bad.parse::<Day>(), Err(DayError(bad.into())), "{bad}");
        }
    }

    #[test]
    fn orders_and_adds_days() {
        assert!(day("2031-12-27") < day("2031-12-28"));
        assert_eq!(day("2031-12-27").plus_days(5), day("2032-01-01"));
        assert_eq!(day("2026-12-04").plus_days(60), day("2027-02-02"));
        assert_eq!(day("2026-12-04").days_until(day("2027-02-02")), 60);
        assert_eq!(day("2027-02-02").days_until(day("2026-12-04")), -60);
        assert_eq!(
            Day::from_unix_millis(1_798_761_600_000),
            Some(day("2027-01-01"))
        );
    }

    #[test]
    fn a_fixed_clock_moves_when_set() {
        let c = FixedClock::new(day("2031-12-27"));
        assert_eq!(c.today(), day("2031-12-27"));
        c.set(day("2031-12-28"));
        assert_eq!(c.today(), day("2031-12-28"));
    }
}
