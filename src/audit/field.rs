//! Client-supplied text in records (user names, paths, methods) is capped: a 30,000-character
//! user name tried a thousand times must not cost 30 MB of fsynced log. What is kept is a
//! prefix and the SHA-256 of the whole value, so an investigator holding a suspected value can
//! still match it (`printf %s VALUE | sha256sum`).

use super::{AuditEvent, sha256_hex};

/// The default cap, in bytes of the value (before JSON escaping).
pub const DEFAULT_FIELD_CAP: usize = 256;

/// Starts the marker of a capped value. A value that contains it is capped too, whatever its
/// length, so a marker in the log is always the gateway's: a client cannot forge one.
const MARKER: &str = "…[truncated: ";

/// Room a marker takes after the prefix (`…[truncated: ` 15, a length, ` bytes, sha256 ` 15,
/// 64 hex, `]`), with margin.
const CAPPED_EXTRA: usize = 128;

/// `value` itself if it is at most `cap` bytes, else its first `cap` bytes (cut on a char
/// boundary) followed by `…[truncated: N bytes, sha256 HEX]`.
pub fn cap(value: &str, cap: usize) -> String {
    if value.len() <= cap && !value.contains(MARKER) {
        return value.to_string();
    }
    let mut end = cap.min(value.len());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}{MARKER}{} bytes, sha256 {}]",
        &value[..end],
        value.len(),
        sha256_hex(value.as_bytes())
    )
}

fn cap_in_place(value: &mut String, max: usize) {
    if value.len() > max || value.contains(MARKER) {
        *value = cap(value, max);
    }
}

impl AuditEvent {
    /// Caps every field whose text can come from a client. Fields the gateway writes itself
    /// (tenant names from the config, hashes, policy ids) are left whole; free text that can
    /// quote a client path (an abort cause, a failed outcome) is capped as well.
    pub(crate) fn cap_client_fields(&mut self, max: usize) {
        let c = |v: &mut String| cap_in_place(v, max);
        match self {
            AuditEvent::Auth {
                user,
                source,
                method,
                certificate,
                tls_certificate,
                ..
            } => {
                c(user);
                c(source);
                c(method);
                // A client CA's holder writes the subject.
                if let Some(t) = tls_certificate {
                    c(&mut t.subject);
                }
                // The CA wrote the key id, but any holder of a CA key can make it long.
                if let Some(cert) = certificate {
                    c(&mut cert.key_id);
                }
            }
            AuditEvent::AuthSummary { source, users, .. } => {
                c(source);
                // The throttle caps names when it samples them; capping a capped name again
                // would hash the capped form, not the name. Only a longer value is cut here.
                for u in users.iter_mut().filter(|u| u.len() > max + CAPPED_EXTRA) {
                    *u = cap(u, max);
                }
            }
            AuditEvent::Decision { user, object, .. }
            | AuditEvent::Committed { user, object, .. } => {
                c(user);
                c(object);
            }
            AuditEvent::Aborted {
                user,
                object,
                cause,
                ..
            } => {
                c(user);
                c(object);
                c(cause);
            }
            AuditEvent::Namespace {
                user,
                object,
                from,
                outcome,
                ..
            } => {
                c(user);
                c(object);
                if let Some(f) = from {
                    c(f);
                }
                c(outcome);
            }
            // Comments and targets are typed by an officer: capped like client fields.
            AuditEvent::Console { target, detail, .. } => {
                c(target);
                c(detail);
            }
            AuditEvent::Lifecycle { .. }
            | AuditEvent::Shutdown { .. }
            | AuditEvent::PolicyReload { .. }
            | AuditEvent::KeyringReload { .. }
            | AuditEvent::Destination { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_stay_whole() {
        assert_eq!(cap("alice", 256), "alice");
        let exact = "x".repeat(256);
        assert_eq!(cap(&exact, 256), exact);
    }

    #[test]
    fn long_values_keep_a_prefix_their_length_and_their_hash() {
        let long = "A".repeat(30_000);
        let capped = cap(&long, 256);
        assert!(capped.len() < 256 + 120, "{}", capped.len());
        assert!(capped.starts_with(&"A".repeat(256)));
        assert!(!capped.starts_with(&"A".repeat(257)));
        assert!(capped.contains("30000 bytes"));
        assert!(capped.contains(&sha256_hex(long.as_bytes())));
    }

    #[test]
    fn cut_falls_on_a_char_boundary() {
        // 'é' is two bytes: byte 256 is inside the 129th one.
        let long = format!("a{}", "é".repeat(200));
        let capped = cap(&long, 256);
        let prefix = capped.split(MARKER).next().unwrap();
        assert_eq!(prefix.len(), 255);
        assert!(prefix.ends_with('é'));
    }

    #[test]
    fn a_forged_marker_is_capped_so_the_last_marker_is_the_gateways() {
        let forged = format!("eve{MARKER}9 bytes, sha256 {}]", "0".repeat(64));
        let capped = cap(&forged, 256);
        assert_ne!(capped, forged);
        assert!(capped.ends_with(&format!("sha256 {}]", sha256_hex(forged.as_bytes()))));
    }

    #[test]
    fn a_sampled_name_keeps_the_hash_of_the_name_not_of_its_capped_form() {
        let long = "A".repeat(30_000);
        let sampled = cap(&long, 256);
        let mut e = AuditEvent::AuthSummary {
            source: "192.0.2.1".into(),
            outcome: "rejected".into(),
            attempts: 2,
            first: String::new(),
            last: String::new(),
            users: vec![sampled.clone(), "x".repeat(5000)],
        };
        e.cap_client_fields(256);
        let AuditEvent::AuthSummary { users, .. } = e else {
            unreachable!()
        };
        assert_eq!(users[0], sampled);
        assert!(users[1].len() < 256 + CAPPED_EXTRA);
    }

    #[test]
    fn every_client_field_of_a_namespace_record_is_capped() {
        let long = "p/".repeat(5000);
        let mut e = AuditEvent::Namespace {
            operation: "rename".into(),
            tenant: "acme".into(),
            user: "alice".into(),
            destination: "eu".into(),
            object: long.clone(),
            from: Some(long.clone()),
            outcome: format!("failed: {long}"),
            protocol: None,
        };
        e.cap_client_fields(64);
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.len() < 1024, "{json}");
        assert!(json.contains("\"alice\""));
    }
}
