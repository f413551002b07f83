//! How entries look on the wire: `LIST` in the `ls -l` form every client parses, `NLST` names,
//! `MLSD`/`MLST` facts (RFC 3659) and `MDTM` times (UTC).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::transfer::FileInfo;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// UTC civil time: (year, month 1-12, day, hour, minute, second).
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let rem = rem as u32;
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `YYYYMMDDHHMMSS` (MDTM and the MLSD `modify` fact).
pub fn timeval(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// One `LIST` line: `-rw------- 1 owner group size Mon DD  YYYY name`.
pub fn list_line(e: &FileInfo) -> String {
    let (y, mo, d, _, _, _) = civil(e.modified);
    let month = MONTHS[(mo as usize).saturating_sub(1).min(11)];
    let mode = if e.is_dir { "drwx------" } else { "-rw-------" };
    format!(
        "{mode} 1 eugate eugate {:>12} {month} {d:>2} {y:>5} {}\r\n",
        e.size,
        clean(&e.name)
    )
}

pub fn name_line(e: &FileInfo) -> String {
    format!("{}\r\n", clean(&e.name))
}

/// The RFC 3659 facts of an entry, then a space and `name`.
pub fn facts(e: &FileInfo, name: &str) -> String {
    let (kind, perm) = if e.is_dir {
        ("dir", "elcdmp")
    } else {
        ("file", "rdfw")
    };
    format!(
        "type={kind};size={};modify={};perm={perm}; {}",
        e.size,
        timeval(e.modified),
        clean(name)
    )
}

/// Names cannot hold CR or LF in eugate, but a listing line must never split whatever a store holds.
fn clean(name: &str) -> String {
    name.replace(['\r', '\n'], "?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn info(name: &str, is_dir: bool, secs: u64) -> FileInfo {
        FileInfo {
            name: name.into(),
            is_dir,
            size: 42,
            modified: UNIX_EPOCH + Duration::from_secs(secs),
        }
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(timeval(UNIX_EPOCH), "19700101000000");
        // 2024-02-29 12:34:56 UTC
        assert_eq!(
            timeval(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "20240229123456"
        );
    }

    #[test]
    fn lines() {
        let f = info("a b.txt", false, 1_709_210_096);
        assert_eq!(
            list_line(&f),
            "-rw------- 1 eugate eugate           42 Feb 29  2024 a b.txt\r\n"
        );
        assert_eq!(name_line(&info("x\ny", false, 0)), "x?y\r\n");
        assert_eq!(
            facts(&info("d", true, 0), "d"),
            "type=dir;size=42;modify=19700101000000;perm=elcdmp; d"
        );
    }
}
