//! Times as the audit log and its readers (`audit register`, `policy replay`) use them:
//! milliseconds since the Unix epoch, parsed from RFC 3339 dates or UTC date-times.
//! Hand-written rather than a date crate: two formats, and the audit log's own timestamps are
//! always `YYYY-MM-DDTHH:MM:SS.mmmZ` (written by `audit::rfc3339`).

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{value:?} is not an RFC 3339 date (2026-10-01) or UTC date-time (2026-10-01T12:00:00Z): {reason}"
)]
pub struct DateError {
    pub value: String,
    pub reason: &'static str,
}

/// `t` as the audit log writes times (`2026-10-01T00:00:00.000Z`); times before 1970 are not
/// in any audit log and print as 1970-01-01.
pub fn format_time(t: Millis) -> String {
    let t = t.max(0);
    crate::audit::rfc3339((t / 1000) as u64, (t % 1000) as u32)
}

/// `2026-10-01` (midnight UTC), or `2026-10-01T12:00:00[.fff](Z|+HH:MM|-HH:MM)`.
pub fn parse_time(value: &str) -> Result<Millis, DateError> {
    let err = |reason| DateError {
        value: value.to_string(),
        reason,
    };
    let b = value.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(err("expected YYYY-MM-DD"));
    }
    let year = digits(&b[0..4]).ok_or_else(|| err("bad year"))?;
    let month = digits(&b[5..7]).ok_or_else(|| err("bad month"))?;
    let day = digits(&b[8..10]).ok_or_else(|| err("bad day"))?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(err("no such day"));
    }
    let date = days_from_civil(year, month, day) * 86_400_000;
    if b.len() == 10 {
        return Ok(date);
    }
    if b.len() < 20 || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return Err(err("expected THH:MM:SS after the date"));
    }
    let h = digits(&b[11..13]).ok_or_else(|| err("bad hour"))?;
    let m = digits(&b[14..16]).ok_or_else(|| err("bad minute"))?;
    let s = digits(&b[17..19]).ok_or_else(|| err("bad second"))?;
    if h > 23 || m > 59 || s > 59 {
        return Err(err("time out of range"));
    }
    let (millis, rest) = fraction(&b[19..]).ok_or_else(|| err("bad fraction of a second"))?;
    let offset = offset_minutes(rest).ok_or_else(|| err("expected Z or an offset like +01:00"))?;
    Ok(date + ((h * 60 + m - offset) * 60 + s) * 1000 + millis)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// `.fff…` (milliseconds kept, finer digits dropped) and what follows it.
fn fraction(b: &[u8]) -> Option<(i64, &[u8])> {
    let Some(rest) = b.strip_prefix(b".") else {
        return Some((0, b));
    };
    let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut ms = digits(&rest[..n.min(3)])?;
    for _ in n..3 {
        ms *= 10;
    }
    Some((ms, &rest[n..]))
}

fn offset_minutes(b: &[u8]) -> Option<i64> {
    match b {
        b"Z" | b"z" => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 60 + m;
            Some(if *sign == b'-' { -total } else { total })
        }
        _ => None,
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days-from-civil (the inverse of `audit::rfc3339`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_parse_to_utc_millis() {
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2000-02-29T00:00:00.005Z"), Ok(951_782_400_005));
        assert_eq!(
            parse_time("2026-11-29T11:00:00.999Z"),
            Ok(1_795_950_000_999)
        );
        assert_eq!(
            parse_time("2026-11-29T12:00:00+01:00"),
            parse_time("2026-11-29T11:00:00Z")
        );
        assert_eq!(
            parse_time("2026-11-29T11:00:00.1234Z"),
            Ok(1_795_950_000_123)
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_value_named() {
        for bad in [
            "",
            "2026-13-01",
            "2026-02-29",
            "2026-10-1",
            "yesterday",
            "2026-10-01T25:00:00Z",
            "2026-10-01T10:00:00",
            "2026-10-01T10:00:00.Z",
            "2026-10-01 10:00:00Z",
        ] {
            let e = parse_time(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
