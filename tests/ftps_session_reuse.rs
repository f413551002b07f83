//! `[ftps] require_ssl_reuse` (vsftpd's option): a data connection must resume the control
//! connection's own TLS session. lftp, curl and a resuming ftplib subclass pass; plain Python
//! ftplib (which cannot resume) and a data connection resuming another client's session are
//! refused with 522. With the switch off (the default) plain ftplib works (tests/ftps.rs).

mod common;
#[path = "ftps_support/mod.rs"]
mod ftps_support;

use std::process::Command;

use common::{BOB_PASSWORD, data};
use ftps_support::{Ftps, FtpsOptions, make_certs, start_with};

fn start(require: bool) -> Ftps {
    start_with(
        make_certs("demo-client"),
        FtpsOptions {
            ftps_toml: format!("require_ssl_reuse = {require}\n"),
            ..FtpsOptions::default()
        },
    )
}

const REFUSED: &str = "522 TLS session reuse required";

#[test]
fn lftp_curl_and_a_resuming_client_work_with_reuse_required() {
    let f = start(true);
    let plain = data(1 << 20, 31);
    std::fs::write(f.g.path("l.bin"), &plain).unwrap();
    // lftp: four data connections (put, ls, get, cls) on one control connection.
    let script = format!(
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:ca-file {ca}; \
         set net:max-retries 1; set net:timeout 20; \
         open -u bob,'{BOB_PASSWORD}' ftp://127.0.0.1:{port}; \
         put l.bin -o l.bin; ls; get l.bin -o back.bin; cls -1; bye",
        ca = f.ca.display(),
        port = f.port,
    );
    let out = Command::new("lftp")
        .args(["-c", &script])
        .current_dir(f.g.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}\n{}", f.g.log());
    assert_eq!(std::fs::read(f.g.path("back.bin")).unwrap(), plain);
    assert_eq!(f.g.decrypt(&f.stored("l.bin")), plain);
    // curl: upload, then download and list.
    let up = f.curl(&["-T", "l.bin", &f.url("c.bin")]);
    assert!(up.status.success(), "{up:?}\n{}", f.g.log());
    let down = f.curl(&[&f.url("c.bin"), "-o", "c-back.bin"]);
    assert!(down.status.success(), "{down:?}\n{}", f.g.log());
    assert_eq!(std::fs::read(f.g.path("c-back.bin")).unwrap(), plain);
    // ftplib taught to resume: every transfer of a roundtrip works.
    let local = f.g.path("l.bin");
    let v = f.py_ok(
        "frank",
        &[
            "roundtrip",
            "--resume",
            "--local",
            local.to_str().unwrap(),
            "--name",
            "r.bin",
        ],
    );
    assert_eq!(v["same"], true, "{v}");
    assert!(
        !f.g.log().contains("TLS session reuse required"),
        "{}",
        f.g.log()
    );
}

#[test]
fn plain_ftplib_and_another_clients_session_are_refused_with_522() {
    let f = start(true);
    let v = f.py_ok("bob", &["data_refused", "--name", "never.bin"]);
    for key in ["nlst", "stor"] {
        let reply = v[key].as_str().unwrap_or_default();
        assert!(
            reply.starts_with(REFUSED)
                && reply.contains("did not resume")
                && reply.contains("require_ssl_reuse"),
            "{key}: {v}\n{}",
            f.g.log()
        );
    }
    assert!(v["noop"].as_str().unwrap().starts_with("200"), "{v}");
    assert!(f.g.stored_files().is_empty(), "{:?}", f.g.stored_files());
    // A data connection resuming another control connection's session.
    let v = f.py_ok("bob", &["foreign_session"]);
    assert_eq!(v["stolen_session"], true, "{v}");
    let reply = v["reply"].as_str().unwrap();
    assert!(
        reply.starts_with(REFUSED) && reply.contains("other than"),
        "{v}"
    );
    assert!(v["noop"].as_str().unwrap().starts_with("200"), "{v}");
}

#[test]
fn with_reuse_off_plain_ftplib_and_any_session_are_served() {
    let f = start(false);
    let v = f.py_ok("bob", &["data_refused", "--name", "ok.bin"]);
    assert!(v["stor"].as_str().unwrap().starts_with("226"), "{v}");
    assert!(v["nlst"].as_str().unwrap().starts_with("226"), "{v}");
    assert!(
        v.get("stor_error").is_none() && v.get("nlst_error").is_none(),
        "{v}"
    );
    let v = f.py_ok("bob", &["foreign_session"]);
    assert!(v["reply"].as_str().unwrap().starts_with("226"), "{v}");
}
