//! What the console test binaries (tests/console_*.rs) share: a gateway with `[admin]` and
//! `[console]` on, a policy directory copied from `policies/` and watched, and officers'
//! client certificates from a CA made here with rcgen:
//! - `viewer` (mapped by fingerprint), `editor` (fingerprint), `editor2` (fingerprint, editor),
//!   `approver` (mapped by subject `CN=approver,O=eugate test`),
//! - `unmapped`: signed by the officers' CA, listed for nobody,
//! - `stranger`: a certificate of the same name as `viewer` from another CA.
//!
//! Requests go through curl with the officer's certificate, so TLS and client authentication
//! are real. `post_form` first fetches a console page to read the CSRF token from its
//! `<meta name="csrf-token">`, as a browser form would carry it.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::common::{Gateway, Options, copy_policies, free_port};

/// The officers of every console test, by the name their certificate files carry.
pub const OFFICERS: [&str; 6] = [
    "viewer", "editor", "editor2", "approver", "unmapped", "stranger",
];

pub struct Console {
    pub g: Gateway,
    pub port: u16,
    /// ca.pem (officers' CA, also the server's issuer), server.pem/key, `<officer>.pem/.key`.
    pub certs: tempfile::TempDir,
    /// The watched policy directory (a copy of `policies/`).
    pub policies: tempfile::TempDir,
}

/// A curl answer.
#[derive(Debug)]
pub struct Answer {
    /// curl exited 0 (a TLS refusal is not 0).
    pub ok: bool,
    pub code: u16,
    pub headers: String,
    pub body: String,
    pub stderr: String,
}

impl Console {
    pub fn start() -> Console {
        Console::start_with(Options::default(), "")
    }

    /// `options.extra_toml` gets the `[policy]`, `[admin]` and `[console]` sections appended;
    /// `console_toml` adds lines to `[console]` (e.g. `replay_days = 7`).
    pub fn start_with(mut options: Options, console_toml: &str) -> Console {
        let certs = tempfile::tempdir().unwrap();
        make_certificates(certs.path());
        let policies = copy_policies();
        let port = free_port();
        let c = certs.path();
        let fp = |n: &str| fingerprint(&c.join(format!("{n}.pem")));
        options.extra_toml.push_str(&format!(
            r#"
[policy]
dir = "{policies}"
watch = true

[admin]
listen = ["127.0.0.1:{port}"]
certificate = "{c}/server.pem"
private_key = "{c}/server.key"

[console]
client_ca = "{c}/ca.pem"
proposals_dir = "{c}/proposals"
{console_toml}

[console.officers.viewer]
roles = ["viewer"]
certificates = ["{viewer}"]

[console.officers.editor]
roles = ["editor"]
certificates = ["{editor}"]

[console.officers.editor2]
roles = ["editor"]
certificates = ["{editor2}"]

[console.officers.approver]
roles = ["approver"]
subjects = ["CN=approver,O=eugate test"]
"#,
            policies = policies.path().display(),
            c = c.display(),
            viewer = fp("viewer"),
            editor = fp("editor"),
            editor2 = fp("editor2"),
        ));
        Console {
            g: Gateway::start_with(options),
            port,
            certs,
            policies,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn cert(&self, officer: &str) -> (PathBuf, PathBuf) {
        let c = self.certs.path();
        (
            c.join(format!("{officer}.pem")),
            c.join(format!("{officer}.key")),
        )
    }

    /// curl against the console; `officer` `None` presents no certificate.
    pub fn curl(&self, officer: Option<&str>, path: &str, extra: &[&str]) -> Answer {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "60", "-D", "-", "--cacert"])
            .arg(self.certs.path().join("ca.pem"));
        if let Some(o) = officer {
            let (cert, key) = self.cert(o);
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        cmd.args(extra).arg(self.url(path));
        let out = cmd.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // With -D -, the headers come first, then a blank line (after any 100-continue).
        let (headers, body) = split_response(&text);
        let code = headers
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Answer {
            ok: out.status.success(),
            code,
            headers,
            body,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn get(&self, officer: &str, path: &str) -> Answer {
        self.curl(Some(officer), path, &[])
    }

    /// The officer's CSRF token, as the console's pages carry it.
    pub fn csrf_token(&self, officer: &str) -> String {
        let page = self.get(officer, "/console/whoami");
        assert_eq!(page.code, 200, "{page:?}");
        meta(&page.body, "csrf-token").expect("a csrf-token meta tag")
    }

    /// POSTs `fields` urlencoded with the officer's CSRF token added, as a browser would.
    pub fn post_form(&self, officer: &str, path: &str, fields: &[(&str, &str)]) -> Answer {
        let token = self.csrf_token(officer);
        let mut with_token: Vec<(&str, &str)> = fields.to_vec();
        with_token.push(("csrf", &token));
        self.post_raw(officer, path, &with_token, &[])
    }

    /// POSTs exactly `fields` (no token added) with more curl arguments (e.g. `-H Origin: …`).
    pub fn post_raw(
        &self,
        officer: &str,
        path: &str,
        fields: &[(&str, &str)],
        extra: &[&str],
    ) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut args: Vec<&str> = vec!["--data-binary", &body];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-H", "Content-Type: application/x-www-form-urlencoded"]);
        self.curl(Some(officer), path, &args)
    }

    /// The gateway's audit records of type `console`.
    pub fn console_records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.g.dir.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["event"]["type"] == "console" || r["type"] == "console")
            .collect()
    }
}

fn split_response(text: &str) -> (String, String) {
    let mut rest = text;
    loop {
        let Some(end) = rest.find("\r\n\r\n") else {
            return (rest.to_string(), String::new());
        };
        let (head, body) = (&rest[..end], &rest[end + 4..]);
        if head.starts_with("HTTP/") && head.split_whitespace().nth(1) == Some("100") {
            rest = body;
            continue;
        }
        return (head.to_string(), body.to_string());
    }
}

/// The `content` of `<meta name="NAME" content="…">` in `html`.
pub fn meta(html: &str, name: &str) -> Option<String> {
    let tag = format!("<meta name=\"{name}\" content=\"");
    let start = html.find(&tag)? + tag.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// `sha256:AB:CD:…` as the console config takes it.
pub fn fingerprint(pem_file: &Path) -> String {
    let pem = std::fs::read_to_string(pem_file).unwrap();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|d: rustls::pki_types::CertificateDer<'static>| d.to_vec())
        .unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    let hexes: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    format!("sha256:{}", hexes.join(":"))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "eugate test");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn write(dir: &Path, name: &str, cert_pem: &str, key: &KeyPair) {
    std::fs::write(dir.join(format!("{name}.pem")), cert_pem).unwrap();
    let key_file = dir.join(format!("{name}.key"));
    std::fs::write(&key_file, pem("PRIVATE KEY", key.serialized_der())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn client(name: &str, issuer: &Issuer<'_, KeyPair>) -> (String, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "eugate test");
    dn.push(DnType::CommonName, name);
    p.distinguished_name = dn;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (pem("CERTIFICATE", cert.der()), key)
}

/// The officers' CA, the server certificate (127.0.0.1, localhost) and every officer's.
pub fn make_certificates(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params("eugate test officers CA")
        .self_signed(&ca_key)
        .unwrap();
    write(dir, "ca", &pem("CERTIFICATE", ca.der()), &ca_key);
    let issuer = Issuer::new(ca_params("eugate test officers CA"), ca_key);

    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let server = p.signed_by(&key, &issuer).unwrap();
    write(dir, "server", &pem("CERTIFICATE", server.der()), &key);

    for name in ["viewer", "editor", "editor2", "approver", "unmapped"] {
        let (pem, key) = client(name, &issuer);
        write(dir, name, &pem, &key);
    }
    let other_key = KeyPair::generate().unwrap();
    let other = Issuer::new(ca_params("someone else's CA"), other_key);
    let (pem, key) = client("viewer", &other);
    write(dir, "stranger", &pem, &key);
}
