//! The replay window: `--since 30d` or `--from`/`--to` in RFC 3339, as Unix milliseconds (UTC).

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
        let named = |flag: &str, v: &str| {
            parse_rfc3339_ms(v).map_err(|e| ReplayError::Window(format!("{flag}: {e}")))
        };
        let from_ms = from.map(|v| named("--from", v)).transpose()?;
        let to_ms = to.map(|v| named("--to", v)).transpose()?;
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

/// An RFC 3339 date (midnight UTC) or date-time → Unix milliseconds (`audit::time`, the
/// parser `audit register` uses too).
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, ReplayError> {
    crate::audit::time::parse_time(s).map_err(|e| ReplayError::Window(e.to_string()))
}
