//! How a headless Chromium presents an officer's client certificate without a dialog.
//!
//! Chromium on Linux takes client certificates (and locally trusted CAs) only from the user's
//! NSS database, `$HOME/.pki/nssdb`. Each browser here gets its own HOME (passed to chromedriver,
//! which passes its environment to Chromium) whose database holds the officers' CA, trusted for
//! TLS servers (`C,,`, so no `--ignore-certificate-errors`), and at most one client certificate:
//! the officer's, imported from a PKCS#12 file.
//!
//! When a server asks for a client certificate, Chromium would open a selection dialog, which
//! never answers in headless mode (the page load hangs). The managed policy
//! `AutoSelectCertificateForUrls` makes it pick, for `https://127.0.0.1:<any port>`, a
//! certificate issued by `O=eugate test` (the test CAs of tests/console_support): with one
//! certificate in the store, that is the officer's. Chromium reads managed policies only from
//! /etc/chromium/policies/managed/, so the harness writes the file there (root in CI).

use std::path::{Path, PathBuf};
use std::process::Command;

const POLICY_DIR: &str = "/etc/chromium/policies/managed";
const POLICY_FILE: &str = "eugate-console-tests.json";
const POLICY: &str = r#"{"AutoSelectCertificateForUrls":["{\"pattern\":\"https://127.0.0.1:*\",\"filter\":{\"ISSUER\":{\"O\":\"eugate test\"}}}"]}
"#;

/// Writes the auto-select policy unless it is there already (tests in parallel write the same
/// bytes, each through its own temporary file and a rename).
pub fn ensure_policy() {
    let dir = Path::new(POLICY_DIR);
    let file = dir.join(POLICY_FILE);
    if std::fs::read_to_string(&file).is_ok_and(|s| s == POLICY) {
        return;
    }
    let tmp = dir.join(format!(".{POLICY_FILE}.{}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, POLICY))
        .and_then(|()| std::fs::rename(&tmp, &file));
    if let Err(e) = written {
        panic!(
            "cannot write the Chromium policy {}: {e}\nThe browser tests need it so that \
             headless Chromium presents the officer's certificate without a dialog; run them as \
             root (scripts/test does in CI) or create that file once with:\n{POLICY}",
            file.display()
        );
    }
}

/// A HOME for one browser: `.pki/nssdb` trusting `ca`, with `officer`'s certificate and key
/// (PEM files) if given.
pub fn make_home(home: &Path, ca: &Path, officer: Option<(&str, &Path, &Path)>) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).expect("create the NSS database directory");
    let sql = format!("sql:{}", db.display());
    run(Command::new("certutil").args(["-N", "-d", &sql, "--empty-password"]));
    run(Command::new("certutil")
        .args([
            "-A",
            "-d",
            &sql,
            "-n",
            "eugate test officers CA",
            "-t",
            "C,,",
        ])
        .arg("-i")
        .arg(ca));
    if let Some((name, cert, key)) = officer {
        let p12 = pkcs12(home, name, cert, key);
        run(Command::new("pk12util")
            .arg("-i")
            .arg(&p12)
            .args(["-d", &sql, "-W", ""]));
    }
}

/// The officer's certificate and key as a PKCS#12 file (empty password), as an officer would
/// import it into a browser.
fn pkcs12(home: &Path, name: &str, cert: &Path, key: &Path) -> PathBuf {
    let p12 = home.join(format!("{name}.p12"));
    run(Command::new("openssl")
        .args(["pkcs12", "-export", "-name", name, "-passout", "pass:"])
        .arg("-in")
        .arg(cert)
        .arg("-inkey")
        .arg(key)
        .arg("-out")
        .arg(&p12));
    p12
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {cmd:?}: {e} (certutil and pk12util are in Debian's libnss3-tools, \
             which scripts/test installs)"
        )
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
