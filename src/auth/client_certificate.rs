//! FTPS client certificates (mutual TLS): which user a certificate logs in as. The TLS layer
//! has already checked that the certificate chains to `[ftps] client_ca` and is valid now;
//! here it is only mapped, by its SHA-256 fingerprint or its subject, to the users whose
//! config lists it (`ftps_client_certificates`, `ftps_client_subjects`).

use std::fmt::Write;

/// What a presented certificate says of itself, for the mapping and the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub sha256: [u8; 32],
    /// The subject's attributes in certificate order; `None` if the DER could not be read.
    pub subject: Option<Subject>,
}

/// A distinguished name as attribute/value pairs, attribute names upper-case (`CN`, `O`...,
/// or a dotted OID for names without a short form).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject(pub Vec<(String, String)>);

/// One user's accepted certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientCertificateMap {
    pub fingerprints: Vec<[u8; 32]>,
    pub subjects: Vec<Subject>,
}

/// Why a certificate logged nobody in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientCertificateRefusal {
    /// No user lists it: the login goes on with a password.
    #[error("the client certificate is not mapped to any user")]
    NotMapped,
    /// Another user lists it, not the one asked for: refused, no password fallback.
    #[error("the client certificate is mapped to another user")]
    OtherUser,
}

impl ClientCertificateMap {
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty() && self.subjects.is_empty()
    }

    pub fn accepts(&self, cert: &ClientCertificate) -> bool {
        self.fingerprints.contains(&cert.sha256)
            || cert
                .subject
                .as_ref()
                .is_some_and(|s| self.subjects.iter().any(|m| m.same_as(s)))
    }
}

impl ClientCertificate {
    pub fn from_der(der: &[u8]) -> ClientCertificate {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(digest.as_ref());
        ClientCertificate {
            sha256,
            subject: subject_of(der),
        }
    }

    /// `sha256:AB:CD:…`, the form `ftps_client_certificates` takes (and openssl prints).
    pub fn fingerprint(&self) -> String {
        let mut out = String::from("sha256:");
        for (i, b) in self.sha256.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            let _ = write!(out, "{b:02X}");
        }
        out
    }

    pub fn subject_text(&self) -> String {
        self.subject
            .as_ref()
            .map(Subject::to_string)
            .unwrap_or_default()
    }
}

impl Subject {
    /// The same attributes with the same values, in any order.
    fn same_as(&self, other: &Subject) -> bool {
        let mut a = self.0.clone();
        let mut b = other.0.clone();
        a.sort();
        b.sort();
        a == b
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={}", v.replace(',', "\\,"))?;
        }
        Ok(())
    }
}

/// `sha256:AB:CD:…` (colons and case optional) into the digest.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let hint = "write `sha256:` and the 64 hex digits `openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints";
    let t = text.trim();
    let Some(hexpart) = t
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("sha256:"))
        .map(|_| &t[7..])
    else {
        return Err(format!("`{t}` does not start with `sha256:`; {hint}"));
    };
    let digits: String = hexpart.chars().filter(|c| *c != ':').collect();
    let mut out = [0u8; 32];
    match hex::decode(&digits) {
        Ok(b) if b.len() == 32 => {
            out.copy_from_slice(&b);
            Ok(out)
        }
        _ => Err(format!("`{t}` is not a SHA-256 fingerprint; {hint}")),
    }
}

/// `CN=alice,O=Partner` (order free; `\,` for a comma inside a value) into a [`Subject`].
pub fn parse_subject(text: &str) -> Result<Subject, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => cur.extend(chars.next()),
            ',' => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    parts.push(cur);
    let mut out = Vec::new();
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            return Err(format!(
                "`{}` is not ATTRIBUTE=value; write e.g. \"CN=alice,O=Partner\"",
                p.trim()
            ));
        };
        let v = v.trim();
        if v.is_empty() {
            return Err(format!("`{}` has an empty value", p.trim()));
        }
        out.push((attribute(k.trim())?, v.to_string()));
    }
    Ok(Subject(out))
}

const NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("1.2.840.113549.1.9.1", "EMAILADDRESS"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("0.9.2342.19200300.100.1.25", "DC"),
];

fn attribute(name: &str) -> Result<String, String> {
    let upper = name.to_ascii_uppercase();
    let upper = match upper.as_str() {
        "E" | "EMAIL" => "EMAILADDRESS".to_string(),
        "S" => "ST".to_string(),
        _ => upper,
    };
    if NAMES.iter().any(|(_, n)| *n == upper) {
        return Ok(upper);
    }
    if let Some((_, n)) = NAMES.iter().find(|(o, _)| *o == upper) {
        return Ok(n.to_string());
    }
    if !upper.is_empty() && upper.split('.').all(|p| p.parse::<u64>().is_ok()) {
        return Ok(upper);
    }
    Err(format!(
        "unknown attribute `{name}`; use CN, O, OU, C, L, ST, STREET, SERIALNUMBER, EMAILADDRESS, UID, DC or a dotted OID"
    ))
}

/// One DER element: (tag, contents, what follows). `None` on anything malformed.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The subject of an X.509 certificate (RFC 5280 4.1): the sixth field of tbsCertificate
/// when the explicit version is present, the fifth otherwise.
fn subject_of(der: &[u8]) -> Option<Subject> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, mut tbs, _) = tlv(cert)? else {
        return None;
    };
    let (tag, _, _) = tlv(tbs)?;
    let skip = if tag == 0xa0 { 5 } else { 4 };
    for _ in 0..skip {
        tbs = tlv(tbs)?.2;
    }
    let (0x30, mut name, _) = tlv(tbs)? else {
        return None;
    };
    let mut out = Vec::new();
    while !name.is_empty() {
        let (0x31, mut set, rest) = tlv(name)? else {
            return None;
        };
        name = rest;
        while !set.is_empty() {
            let (0x30, atv, rest) = tlv(set)? else {
                return None;
            };
            set = rest;
            let (0x06, oid, value) = tlv(atv)? else {
                return None;
            };
            let (vtag, value, _) = tlv(value)?;
            let oid = dotted(oid)?;
            let key = NAMES
                .iter()
                .find(|(o, _)| *o == oid)
                .map(|(_, n)| n.to_string())
                .unwrap_or(oid);
            out.push((key, string_value(vtag, value)));
        }
    }
    Some(Subject(out))
}

fn dotted(oid: &[u8]) -> Option<String> {
    let (&first, rest) = oid.split_first()?;
    let mut out = format!(
        "{}.{}",
        (first / 40).min(2),
        first - 40 * (first / 40).min(2)
    );
    let mut acc: u64 = 0;
    for b in rest {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            let _ = write!(out, ".{acc}");
            acc = 0;
        }
    }
    Some(out)
}

/// A directory string as text; types without a text form are `#` and hex (RFC 4514 2.4).
fn string_value(tag: u8, value: &[u8]) -> String {
    match tag {
        // UTF8String, PrintableString, IA5String, TeletexString
        0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8_lossy(value).into_owned(),
        // BMPString: UTF-16BE
        0x1e => {
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => format!("#{}", hex::encode(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons_and_bad_ones_are_named() {
        let colons = format!("sha256:{}", ["AB"; 32].join(":"));
        assert_eq!(parse_fingerprint(&colons).unwrap(), [0xab; 32]);
        assert_eq!(
            parse_fingerprint(&format!("SHA256:{}", "ab".repeat(32))).unwrap(),
            [0xab; 32]
        );
        let e = parse_fingerprint(&"ab".repeat(32)).unwrap_err();
        assert!(e.contains("sha256:"), "{e}");
        assert!(parse_fingerprint("sha256:ABCD").is_err());
        assert!(parse_fingerprint("sha256:").is_err());
        assert!(parse_fingerprint("sha").is_err());
        let c = ClientCertificate {
            sha256: [0xab; 32],
            subject: None,
        };
        assert_eq!(c.fingerprint(), colons);
    }

    #[test]
    fn subjects_match_in_any_order_and_exactly() {
        let want = parse_subject("cn=alice, O=Partner\\, Inc").unwrap();
        assert_eq!(
            want.0,
            [
                ("CN".to_string(), "alice".to_string()),
                ("O".to_string(), "Partner, Inc".to_string())
            ]
        );
        let cert = Subject(vec![
            ("O".into(), "Partner, Inc".into()),
            ("CN".into(), "alice".into()),
        ]);
        assert!(want.same_as(&cert));
        let more = Subject(vec![
            ("O".into(), "Partner, Inc".into()),
            ("CN".into(), "alice".into()),
            ("OU".into(), "x".into()),
        ]);
        assert!(!want.same_as(&more));
        assert!(!want.same_as(&Subject(vec![("CN".into(), "Alice".into())])));
        assert!(parse_subject("CN").is_err());
        assert!(parse_subject("CN=").is_err());
        assert!(
            parse_subject("XX=1")
                .unwrap_err()
                .contains("unknown attribute")
        );
        assert_eq!(parse_subject("2.5.4.3=a").unwrap().0[0].0, "CN");
    }

    /// `openssl req -x509 -utf8 -subj "/C=DE/O=Partner, Inc/OU=Ops/CN=alice bot/emailAddress=a@example.org"`
    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIICHDCCAcOgAwIBAgIUSrsfmnCMQCkKM03pea0YIE9NM4MwCgYIKoZIzj0EAwIw\nZDELMAkGA1UEBhMCREUxFTATBgNVBAoMDFBhcnRuZXIsIEluYzEMMAoGA1UECwwD\nT3BzMRIwEAYDVQQDDAlhbGljZSBib3QxHDAaBgkqhkiG9w0BCQEWDWFAZXhhbXBs\nZS5vcmcwHhcNMjYxMjAzMTEwNTEzWhcNMzYxMTMwMTEwNTEzWjBkMQswCQYDVQQG\nEwJERTEVMBMGA1UECgwMUGFydG5lciwgSW5jMQwwCgYDVQQLDANPcHMxEjAQBgNV\nBAMMCWFsaWNlIGJvdDEcMBoGCSqGSIb3DQEJARYNYUBleGFtcGxlLm9yZzBZMBMG\nByqGSM49AgEGCCqGSM49AwEHA0IABBQBxRzER0fdy5Pf183KVn/C0PdXWiM7iHFJ\nmY5k58Cnq4XxyH+28jGLSJu314l8mvdx4wJ0gVkma5TzJcD00rWjUzBRMB0GA1Ud\nDgQWBBRRHY/trwiMVmYScYaiKSyQXVxz8TAfBgNVHSMEGDAWgBRRHY/trwiMVmYS\ncYaiKSyQXVxz8TAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIFr6\n7Q3GVIqSown3AGkEuLdVjjjFcsODavBS1KgarNp1AiAIyTQUN8p3fJJ4nRUxPEm+\nUgZAbiDVt/vTvJDzUO/SQw==\n-----END CERTIFICATE-----";

    #[test]
    fn a_real_certificate_gives_its_subject_in_order_and_its_fingerprint() {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let der = CertificateDer::from_pem_slice(PEM.as_bytes()).unwrap();
        let c = ClientCertificate::from_der(&der);
        assert_eq!(
            c.subject_text(),
            "C=DE,O=Partner\\, Inc,OU=Ops,CN=alice bot,EMAILADDRESS=a@example.org"
        );
        assert_eq!(
            c.fingerprint(),
            "sha256:3B:C5:35:FD:A6:50:4A:92:74:57:40:58:11:02:87:06:41:C6:4E:06:81:F1:F3:D6:38:02:73:4A:BA:E3:BB:B6"
        );
        let mut map = ClientCertificateMap::default();
        map.subjects.push(
            parse_subject("E=a@example.org, CN=alice bot, OU=Ops, O=Partner\\, Inc, C=DE").unwrap(),
        );
        assert!(map.accepts(&c));
        map.subjects[0].0.pop();
        assert!(
            !map.accepts(&c),
            "a subset of the attributes is not the subject"
        );
    }

    #[test]
    fn malformed_der_has_no_subject_and_never_panics() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x02, 0x30, 0x00],
        ] {
            assert_eq!(subject_of(bad), None);
            let _ = ClientCertificate::from_der(bad).fingerprint();
        }
        // Every truncation and every single-byte change of a real certificate.
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let der = CertificateDer::from_pem_slice(PEM.as_bytes())
            .unwrap()
            .to_vec();
        for n in 0..der.len() {
            let _ = subject_of(&der[..n]);
            let mut bent = der.clone();
            bent[n] ^= 0xff;
            let _ = subject_of(&bent);
        }
    }
}
