//! Clients other than OpenSSH, through the real binary: rclone's sftp backend (Go, pkg/sftp),
//! curl's `sftp://` (libssh2 1.10, which has no AEAD cipher and no ETM MAC), and raw SFTP
//! requests with bytes after their last field (what pkg/sftp sends). Also the `[server]
//! algorithms` switch and the log line for a client whose offer does not meet ours.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Gateway, Options, bin, data};

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// rclone with an on-the-fly `:sftp:` remote for `user` (key auth), no config file.
///
/// `--sftp-shell-type none`: rclone otherwise opens exec sessions to find a shell and run
/// `md5sum`/`df` on the server; the gateway refuses every command, so rclone is told there is
/// none (which also leaves it without server-side hashes, hence `--sftp-disable-hashcheck` and
/// `check --download`). One try and one low-level try: a failure must show, not be retried away.
fn rclone(g: &Gateway, user: &str, args: &[&str]) -> Output {
    Command::new("rclone")
        .args(args)
        .args(["--sftp-host", "127.0.0.1", "--sftp-port"])
        .arg(g.port.to_string())
        .args(["--sftp-user", user, "--sftp-key-file"])
        .arg(g.key(user))
        .args([
            "--sftp-shell-type",
            "none",
            "--sftp-disable-hashcheck",
            "--retries",
            "1",
            "--low-level-retries",
            "1",
        ])
        .env("RCLONE_CONFIG", g.path("rclone.conf"))
        .current_dir(g.dir.path())
        .output()
        .expect("rclone (Debian package `rclone`; scripts/test installs it)")
}

fn rclone_ok(g: &Gateway, user: &str, args: &[&str]) -> String {
    let out = rclone(g, user, args);
    assert!(
        out.status.success(),
        "rclone {args:?} failed:\n{}\n--- gateway log ---\n{}",
        text(&out),
        g.log()
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn rclone_copies_up_and_down_and_checks() {
    let g = Gateway::start();
    // Several MiB, so pkg/sftp's concurrent writes (its ReadFrom, 64 requests in flight) run,
    // plus an odd size and an empty file.
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("big.bin", data(9 << 20, 71)),
        ("sub/odd.bin", data((1 << 20) + 12_345, 72)),
        ("sub/empty.txt", Vec::new()),
    ];
    let up = g.path("up");
    for (name, bytes) in &files {
        write(&up.join(name), bytes);
    }
    rclone_ok(&g, "alice", &["copy", "up", ":sftp:/rc"]);
    for (name, bytes) in &files {
        let stored = g.store.join("acme/rc").join(name);
        assert_eq!(
            &g.decrypt(&stored),
            bytes,
            "{name} decrypts to what was sent"
        );
    }

    rclone_ok(&g, "alice", &["copy", ":sftp:/rc", "down"]);
    for (name, bytes) in &files {
        let back = std::fs::read(g.path("down").join(name)).unwrap();
        assert_eq!(&back, bytes, "{name} came back whole");
    }

    // Without server-side hashes rclone would compare sizes only; --download compares bytes.
    let log = rclone_ok(&g, "alice", &["check", "--download", "up", ":sftp:/rc"]);
    assert!(log.contains("0 differences found"), "{log}");
    // And check can fail: one changed byte in the local copy is found.
    let mut changed = files[1].1.clone();
    changed[777] ^= 1;
    write(&up.join("sub/odd.bin"), &changed);
    let out = rclone(&g, "alice", &["check", "--download", "up", ":sftp:/rc"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 differences found"),
        "{}",
        text(&out)
    );
}

#[test]
fn requests_with_bytes_after_their_last_field_are_read_as_openssh_reads_them() {
    let g = Gateway::start();
    let plain = data((1 << 20) + 999, 73);
    std::fs::write(g.path("t.bin"), &plain).unwrap();
    let r = g.script(
        "alice",
        &["trailing-bytes", "--local", "t.bin", "--path", "/trail.bin"],
    );
    assert_eq!(r["ok"], true, "{r}\n{}", g.log());
    assert_eq!(r["init"]["version"], 3, "{r}");
    assert!(r["open"]["handle"].is_string(), "{r}");
    assert_eq!(r["writes_ok"], r["writes"], "{r}");
    assert_eq!(r["close"]["status"], 0, "{r}");
    assert_eq!(r["stat"]["size"], plain.len(), "{r}");
    // A data length beyond the packet is still refused, precisely.
    assert_eq!(r["overlong_write"]["id"], 4, "{r}");
    assert_eq!(r["overlong_write"]["status"], 5, "SSH_FX_BAD_MESSAGE: {r}");
    assert!(
        r["overlong_write"]["message"]
            .as_str()
            .unwrap()
            .contains("it runs past the end of the packet"),
        "{r}"
    );
    assert_eq!(g.decrypt(&g.store.join("acme/trail.bin")), plain);
}

/// curl's `sftp://` with alice's key; `-k` skips the host key check (a fresh key per test).
fn curl(g: &Gateway, args: &[&str], url_path: &str) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "-k", "--key"])
        .arg(g.key("alice"))
        .arg("--pubkey")
        .arg(g.path("alice.pub"))
        .args(args)
        .arg(format!("sftp://alice@127.0.0.1:{}{url_path}", g.port))
        .current_dir(g.dir.path())
        .output()
        .expect("curl")
}

#[test]
fn curl_sftp_works_with_the_compatible_set() {
    let g = Gateway::start_with(Options {
        algorithms: Some("compatible"),
        ..Options::default()
    });
    let plain = data(3 << 20, 74);
    std::fs::write(g.path("c.bin"), &plain).unwrap();
    let out = curl(&g, &["-T", "c.bin"], "/c.bin");
    assert!(out.status.success(), "{}\n{}", text(&out), g.log());
    assert_eq!(g.decrypt(&g.store.join("acme/c.bin")), plain);

    let out = curl(&g, &["-o", "back.bin"], "/c.bin");
    assert!(out.status.success(), "{}\n{}", text(&out), g.log());
    assert_eq!(std::fs::read(g.path("back.bin")).unwrap(), plain);
}

#[test]
fn curl_sftp_is_refused_by_the_default_set_and_the_log_says_what_it_offered() {
    let g = Gateway::start();
    std::fs::write(g.path("c.bin"), b"never stored").unwrap();
    let out = curl(&g, &["-T", "c.bin"], "/c.bin");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(g.stored_files().is_empty(), "{:?}", g.stored_files());
    // The failure is logged once the connection ends; poll for it.
    let mut log = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        log = g.log();
        if log.contains("SSH negotiation failed") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let line = log
        .lines()
        .find(|l| l.contains("SSH negotiation failed"))
        .unwrap_or_else(|| panic!("no negotiation failure logged:\n{log}"));
    for want in [
        "WARN",
        "no common Cipher algorithm",
        "libssh2",
        "client_kex=",
        "curve25519-sha256",
        "client_ciphers=",
        "aes128-ctr",
        "client_macs=",
        "hmac-sha2-256",
        "aes256-gcm@openssh.com",
        "algorithms = \\\"compatible\\\"",
    ] {
        assert!(line.contains(want), "{want:?} missing from: {line}");
    }
}

/// `eugate config check` on the generated config with `algorithms` set to `value`.
fn config_check(g: &Gateway, value: &str) -> Output {
    let conf = std::fs::read_to_string(&g.config).unwrap().replacen(
        "[server]\n",
        &format!("[server]\nalgorithms = \"{value}\"\n"),
        1,
    );
    let path = g.path("check.toml");
    std::fs::write(&path, conf).unwrap();
    Command::new(bin())
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap()
}

#[test]
fn algorithms_key_accepts_the_two_sets_and_names_them_when_wrong() {
    let g = Gateway::start();
    for ok in ["modern", "compatible"] {
        let out = config_check(&g, ok);
        assert!(out.status.success(), "{ok}: {}", text(&out));
    }
    let out = config_check(&g, "legacy");
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.algorithms")
            && err.contains("`legacy` is not an algorithm set")
            && err.contains("\"modern\"")
            && err.contains("\"compatible\""),
        "{err}"
    );
}
