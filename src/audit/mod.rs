//! Tamper-evident audit trail: append-only JSON lines, each hash-chained to the one before.
//!
//! Line format (one record per line):
//! `{"seq":N,"ts":"2026-11-29T11:00:00.123Z","prev":"<hex sha256>","event":{...},"hash":"<hex sha256>"}`
//! `hash` is SHA-256 over the exact bytes of the line without its `,"hash":"…"` suffix (i.e. the
//! body closed with `}`), so verification needs no canonical JSON. `prev` is the previous line's
//! `hash`; the first record has `seq` 1 and `prev` = 64 zeros. Editing, removing, reordering or
//! inserting a line breaks the chain at that line. Cutting lines off the *end* cannot be seen from
//! the file alone: `eugate audit verify` prints the head hash so that it can be anchored elsewhere.
//!
//! What goes in: authentication results, policy decisions, transfer outcomes — never file
//! contents, passwords or key material; personal data limited to user names and source addresses.
//!
//! What a client can make it write is bounded: client-supplied fields are capped (a prefix and
//! the SHA-256 of the whole value, `field`), and refused logins are counted per source rather
//! than written one by one beyond a rate (`throttle`). A failed append is rolled back, so a
//! full disk never leaves a torn line for later records to follow (`log`).

mod event;
mod field;
mod log;
pub mod records;
pub mod register;
mod throttle;
pub mod time;
mod verify;

pub use event::{AuditEvent, CertificateRecord, TlsCertificateRecord};
pub use field::DEFAULT_FIELD_CAP;
pub use log::{AuditError, AuditLog};
pub use throttle::{Admission, AttemptKind, AuthThrottle, ThrottleConfig};
pub use verify::{VerifyError, VerifyReport, verify_file, verify_reader};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The suffix every line ends with: `,"hash":"` + 64 hex + `"}`.
const HASH_FIELD: &str = ",\"hash\":\"";
const HASH_SUFFIX_LEN: usize = HASH_FIELD.len() + 64 + 2;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// RFC 3339 UTC with milliseconds, without pulling in a date crate for one format.
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_millis())
}

/// `t` in the audit log's time format (RFC 3339 UTC, milliseconds), for other reports.
pub fn rfc3339_at(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_millis())
}

fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(super::rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(
            super::rfc3339(1_795_950_000, 999),
            "2026-11-29T11:00:00.999Z"
        );
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests_log;
