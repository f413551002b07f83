//! The FTPS front end with real clients: Python's ftplib.FTP_TLS, curl, and raw sockets for bad
//! input, against the release binary with a throwaway CA made by certs/make-demo-ca.sh.

mod common;
#[path = "ftps_support/mod.rs"]
mod ftps_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BOB_PASSWORD, data, eventually};
use ftps_support::start;

#[test]
fn python_ftplib_put_ls_get_rename_delete_finish_without_exception() {
    let f = start();
    let plain = data(3 << 20, 7);
    let local = f.g.path("up.bin");
    std::fs::write(&local, &plain).unwrap();
    let v = f.py_ok(
        "frank",
        &[
            "roundtrip",
            "--local",
            local.to_str().unwrap(),
            "--name",
            "up.bin",
            "--rename",
            "moved.bin",
        ],
    );
    assert!(v["stor"].as_str().unwrap().starts_with("226"), "{v}");
    assert!(v["retr"].as_str().unwrap().starts_with("226"), "{v}");
    assert_eq!(v["same"], true, "{v}");
    assert_eq!(v["size"], 3 << 20, "{v}");
    assert_eq!(v["nlst"], serde_json::json!(["up.bin"]), "{v}");
    assert!(v["list"][0].as_str().unwrap().ends_with(" up.bin"), "{v}");
    assert_eq!(v["mlsd"], serde_json::json!(["moved.bin"]), "{v}");
    // Stored sealed, under the new name, and it decrypts to what was sent.
    assert!(!f.stored("up.bin").exists());
    assert_eq!(f.g.decrypt(&f.stored("moved.bin")), plain);
    common::assert_no_plaintext(&std::fs::read(f.stored("moved.bin")).unwrap(), &plain);

    let v = f.py_ok(
        "frank",
        &[
            "roundtrip",
            "--local",
            local.to_str().unwrap(),
            "--name",
            "b.bin",
            "--rename",
            "c.bin",
            "--delete",
        ],
    );
    assert!(v["delete"].as_str().unwrap().starts_with("250"), "{v}");
    assert_eq!(v["after_delete"], serde_json::json!(["moved.bin"]), "{v}");
    assert!(!f.stored("c.bin").exists());
    // The logins and the upload are in the audit trail, named as FTPS.
    let auth = f.g.events("auth");
    assert!(
        auth.iter()
            .any(|a| a["user"] == "frank" && a["method"] == "ftps password"),
        "{auth:?}"
    );
    f.g.assert_audit_verifies();
}

#[test]
fn curl_uploads_and_downloads_over_explicit_tls() {
    let f = start();
    let plain = data(1 << 20, 3);
    std::fs::write(f.g.path("c.bin"), &plain).unwrap();
    let up = f.curl(&["-T", "c.bin", &f.url("c.bin")]);
    assert!(up.status.success(), "curl upload: {up:?}\n{}", f.g.log());
    assert_eq!(f.g.decrypt(&f.stored("c.bin")), plain);
    let down = f.curl(&[&f.url("c.bin"), "-o", "back.bin"]);
    assert!(
        down.status.success(),
        "curl download: {down:?}\n{}",
        f.g.log()
    );
    assert_eq!(std::fs::read(f.g.path("back.bin")).unwrap(), plain);
    let list = f.curl(&[&f.url("")]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(" c.bin"),
        "{list:?}"
    );
    // Without --ssl-reqd, curl still logs in only after AUTH TLS; plain ftp:// with TLS off fails.
    let plain_login = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-u",
            &format!("bob:{BOB_PASSWORD}"),
        ])
        .arg(f.url("c.bin"))
        .output()
        .unwrap();
    assert!(!plain_login.status.success(), "{plain_login:?}");
}

#[test]
fn plaintext_commands_are_refused_and_long_lines_close() {
    let f = start();
    let (v, _) = f.py("bob", &["plaintext"]);
    assert!(v["greeting"].as_str().unwrap().starts_with("220"), "{v}");
    for cmd in ["USER", "PASS", "PASV", "LIST", "STOR"] {
        let r = v[cmd].as_str().unwrap();
        assert!(r.starts_with("530") && r.contains("AUTH TLS"), "{cmd}: {r}");
    }
    assert!(v["long"].as_str().unwrap().starts_with("500"), "{v}");
    assert!(v["long_last"].as_str().unwrap().starts_with("421"), "{v}");
    assert_eq!(v["closed"], true, "{v}");
    assert!(f.g.events("auth").iter().all(|a| a["user"] != "bob"));
}

#[test]
fn upload_cut_without_close_notify_publishes_nothing() {
    let f = start();
    let (v, _) = f.py("bob", &["truncate", "--name", "cut.bin"]);
    let reply = v["reply"].as_str().unwrap_or_default();
    assert!(
        reply.starts_with("426") && reply.contains("close_notify"),
        "{v}\n{}",
        f.g.log()
    );
    assert_eq!(v["nlst"], serde_json::json!([]), "{v}");
    assert!(
        eventually(10, || f.g.stored_files().is_empty()),
        "left behind: {:?}",
        f.g.stored_files()
    );
    // The gateway carries on: a normal upload after the cut one works.
    let local = f.g.path("ok.bin");
    std::fs::write(&local, b"whole").unwrap();
    f.py_ok(
        "bob",
        &[
            "put",
            "--local",
            local.to_str().unwrap(),
            "--name",
            "ok.bin",
        ],
    );
    assert_eq!(f.g.decrypt(&f.stored("ok.bin")), b"whole");
}

#[test]
fn resume_append_active_mode_and_clear_data_are_refused() {
    let f = start();
    let (v, _) = f.py("bob", &["rest_stor", "--name", "r.bin"]);
    assert!(v["rest"].as_str().unwrap().starts_with("350"), "{v}");
    let stor = v["stor"].as_str().unwrap();
    assert!(
        stor.starts_with("550") && stor.contains("sealed once"),
        "{v}"
    );
    let appe = v["appe"].as_str().unwrap();
    assert!(appe.starts_with("550") && appe.contains("APPE"), "{v}");
    let port = v["port"].as_str().unwrap();
    assert!(port.starts_with("502") && port.contains("PASV"), "{v}");
    let (v, _) = f.py("bob", &["no_prot", "--name", "n.bin"]);
    let stor = v["stor"].as_str().unwrap();
    assert!(stor.starts_with("521") && stor.contains("PROT P"), "{v}");
    assert!(f.g.stored_files().is_empty(), "{:?}", f.g.stored_files());
}

#[test]
fn ftps_upload_sftp_download_and_back() {
    let f = start();
    let plain = data(700 << 10, 11);
    let local = f.g.path("x.bin");
    std::fs::write(&local, &plain).unwrap();
    f.py_ok(
        "bob",
        &["put", "--local", local.to_str().unwrap(), "--name", "x.bin"],
    );
    // alice is in bob's tenant and logs in over SFTP with her key.
    f.g.sftp_ok("alice", "get /x.bin via-sftp.bin\nput x.bin /y.bin\n");
    assert_eq!(std::fs::read(f.g.path("via-sftp.bin")).unwrap(), plain);
    let back = f.g.path("via-ftps.bin");
    f.py_ok(
        "bob",
        &["get", "--local", back.to_str().unwrap(), "--name", "y.bin"],
    );
    assert_eq!(std::fs::read(&back).unwrap(), plain);
}

#[test]
fn data_connections_from_another_ip_or_without_tls_are_refused() {
    let f = start();
    let v = f.py_ok("bob", &["other_ip", "--name", "right.bin"]);
    assert!(v["stor"].as_str().unwrap().starts_with("150"), "{v}");
    assert!(v["done"].as_str().unwrap().starts_with("226"), "{v}");
    assert_eq!(v["content"], "from the right address", "{v}");
    assert!(
        f.g.log()
            .contains("data connection from another IP refused")
    );
    let v = f.py_ok("bob", &["garbage", "--name", "g.bin"]);
    let reply = v["reply"].as_str().unwrap();
    assert!(
        reply.starts_with("425") && reply.contains("TLS handshake"),
        "{v}"
    );
    assert!(v["noop"].as_str().unwrap().starts_with("200"), "{v}");
    assert_eq!(v["nlst"], serde_json::json!(["right.bin"]), "{v}");
}

#[test]
fn lftp_put_ls_get_rename_rm_with_ssl_forced() {
    let f = start();
    let plain = data(2 << 20, 5);
    std::fs::write(f.g.path("l.bin"), &plain).unwrap();
    let script = format!(
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:ca-file {ca}; \
         set net:max-retries 1; set net:timeout 20; \
         open -u bob,'{BOB_PASSWORD}' ftp://127.0.0.1:{port}; \
         put l.bin -o l.bin; ls; get l.bin -o back.bin; mv l.bin m.bin; cls -1; rm m.bin; bye",
        ca = f.ca.display(),
        port = f.port,
    );
    let out = Command::new("lftp")
        .args(["-c", &script])
        .current_dir(f.g.dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // bob may not delete: everything before the rm works, the rm is refused with the reason.
    assert!(stdout.contains(" l.bin"), "{out:?}\n{}", f.g.log());
    assert!(stdout.contains("m.bin"), "{out:?}\n{}", f.g.log());
    assert_eq!(std::fs::read(f.g.path("back.bin")).unwrap(), plain);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("may not delete"),
        "{out:?}"
    );
    assert_eq!(f.g.decrypt(&f.stored("m.bin")), plain);
}

#[test]
fn denied_destination_sends_nothing_to_the_store() {
    let f = start();
    let local = f.g.path("p.bin");
    std::fs::write(&local, data(64 << 10, 9)).unwrap();
    // gina's tenant routes to a US store: the policy refuses before any byte is read.
    let (v, out) = f.py(
        "gina",
        &["put", "--local", local.to_str().unwrap(), "--name", "p.bin"],
    );
    let e = v["exception"].as_str().unwrap_or_default();
    assert!(
        !out.status.success() && e.contains("550"),
        "{v}\n{}",
        f.g.log()
    );
    let us = f.g.dir.path().join("store-us");
    let files: Vec<_> = walk(&us);
    assert!(files.is_empty(), "{files:?}");
    let decisions = f.g.events("decision");
    assert!(
        decisions
            .iter()
            .any(|d| d["user"] == "gina" && d["allowed"] == false),
        "{decisions:?}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn abor_during_an_upload_stores_nothing() {
    let f = start();
    let v = f.py_ok("bob", &["abort", "--name", "a.bin"]);
    assert!(v["abort"].as_str().unwrap().starts_with("426"), "{v}");
    assert!(v["after"].as_str().unwrap().starts_with("226"), "{v}");
    assert!(v["noop"].as_str().unwrap().starts_with("200"), "{v}");
    assert_eq!(v["nlst"], serde_json::json!([]), "{v}");
    assert!(
        eventually(10, || f.g.stored_files().is_empty()),
        "{:?}",
        f.g.stored_files()
    );
}
