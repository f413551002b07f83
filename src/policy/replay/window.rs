//! The replay window: `--since 30d` or `--from`/`--to` in RFC 3339, as Unix milliseconds (UTC).
//! Hand-written rather than a date crate: the audit log has one fixed format, and the bounds
//! need only offsets and whole units.

use super::ReplayError;

/// Which audited decisions to replay: `from` inclusive, `to` exclusive (milliseconds since
/// the Unix epoch, UTC); `None` leaves that side open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl Window {
    /// The last `since` (e.g. `30d`, `12h`, `90m`, `2w`) before `now_ms`.
    pub fn since(since: &str, now_ms: i64) -> Result<Window, ReplayError> {
        let ms = parse_duration_ms(since)?;
        Ok(Window {
            from_ms: Some(now_ms.saturating_sub(ms)),
            to_ms: None,
        })
    }

    /// Between two RFC 3339 times; either may be absent.
    pub fn between(from: Option<&str>, to: Option<&str>) -> Result<Window, ReplayError> {
        let from_ms = from.map(parse_rfc3339_ms).transpose()?;
        let to_ms = to.map(parse_rfc3339_ms).transpose()?;
        if let (Some(f), Some(t)) = (from_ms, to_ms)
            && f >= t
        {
            return Err(ReplayError::Window(
                "--from must be before --to".to_string(),
            ));
        }
        Ok(Window { from_ms, to_ms })
    }

    pub fn contains(&self, t_ms: i64) -> bool {
        self.from_ms.is_none_or(|f| t_ms >= f) && self.to_ms.is_none_or(|t| t_ms < t)
    }
}

/// `30d`, `12h`, `90m`, `45s`, `2w` → milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, ReplayError> {
    let bad = || {
        ReplayError::Window(format!(
            "'{s}' is not a duration: give a whole number and a unit, e.g. 30d, 12h, 90m, 2w"
        ))
    };
    let s = s.trim();
    let unit = s.chars().last().ok_or_else(bad)?;
    let secs: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    let n: i64 = s[..s.len() - 1].parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    n.checked_mul(secs * 1000).ok_or_else(bad)
}

/// RFC 3339 (`2026-12-01T00:00:00Z`, optional fraction, `Z` or `±hh:mm`) → Unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, ReplayError> {
    let bad = || {
        ReplayError::Window(format!(
            "'{s}' is not an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"
        ))
    };
    let b = s.trim().as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, ReplayError> {
        let part = &b[r];
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        std::str::from_utf8(part)
            .ok()
            .and_then(|p| p.parse().ok())
            .ok_or_else(bad)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad());
    }
    if hour > 23 || min > 59 || sec > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        // Milliseconds: the first three digits, padded.
        let digits = &b[start..i.min(start + 3)];
        let mut m = 0i64;
        for (k, d) in digits.iter().enumerate() {
            m += i64::from(d - b'0') * [100, 10, 1][k];
        }
        millis = m;
    }
    let offset_secs = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            let h = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let m = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let o = h * 3600 + m * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec.min(59) - offset_secs;
    Ok(secs * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days-from-civil (the inverse of the audit log's formatter).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
