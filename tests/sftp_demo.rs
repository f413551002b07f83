//! `eugate demo` on a fresh directory: the printed `sftp` command works, the store holds
//! ciphertext that the printed `eugate decrypt` command turns back, and a second run reuses it all.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

use common::{assert_no_plaintext, bin, data, free_port, run_with_stdin};

struct Demo {
    child: Child,
    sftp: String,
    decrypt: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(cwd: &std::path::Path, port: u16) -> Demo {
    let mut child = Command::new(bin())
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        // Not the default 2121: tests run side by side (tests/demo_ftps.rs covers FTPS).
        .args(["--ftps-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut sftp, mut decrypt) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        let t = line.trim();
        if t.starts_with("sftp ") {
            sftp = t.to_string();
        }
        if t.starts_with("eugate decrypt ") {
            decrypt = t.to_string();
        }
        if t.starts_with("Stop with") {
            break;
        }
    }
    assert!(!sftp.is_empty(), "demo printed no sftp command");
    Demo {
        child,
        sftp,
        decrypt,
    }
}

/// Runs the printed command, made non-interactive (`-b -`, BatchMode).
fn run_printed_sftp(cwd: &std::path::Path, printed: &str, batch: &str) {
    let mut words: Vec<&str> = printed.split_whitespace().collect();
    assert_eq!(words.remove(0), "sftp");
    let target = words.pop().unwrap();
    let out = run_with_stdin(
        Command::new("sftp")
            .args(&words)
            .args(["-o", "BatchMode=yes", "-b", "-"])
            .arg(target)
            .current_dir(cwd),
        batch.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn demo_from_scratch_then_reuse() {
    let cwd = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let plain = data(2 * 1024 * 1024 + 3, 42);
    std::fs::write(cwd.path().join("report.pdf"), &plain).unwrap();

    let demo = start(cwd.path(), port);
    assert!(
        demo.sftp.contains("-i ./eugate-demo/demo_user_key"),
        "{}",
        demo.sftp
    );
    assert!(demo.sftp.contains(&format!("-P {port}")), "{}", demo.sftp);
    let key = cwd.path().join("eugate-demo/demo_user_key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let host_key = std::fs::read(cwd.path().join("eugate-demo/host_ed25519")).unwrap();

    run_printed_sftp(
        cwd.path(),
        &demo.sftp,
        "put report.pdf\nget report.pdf back.pdf\n",
    );
    assert_eq!(std::fs::read(cwd.path().join("back.pdf")).unwrap(), plain);
    let stored = cwd.path().join("eugate-demo/store/demo/report.pdf");
    assert_no_plaintext(&std::fs::read(&stored).unwrap(), &plain);

    // The printed decrypt command, with FILE filled in.
    let cmd = demo
        .decrypt
        .replace("FILE.plain", "decrypted.pdf")
        .replace("FILE", "report.pdf");
    let mut words: Vec<&str> = cmd.split_whitespace().collect();
    assert_eq!(words.remove(0), "eugate");
    let out = Command::new(bin())
        .args(&words)
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(cwd.path().join("decrypted.pdf")).unwrap(),
        plain
    );
    drop(demo);

    // Second run: same keys, same store.
    let demo = start(cwd.path(), port);
    assert_eq!(
        std::fs::read(cwd.path().join("eugate-demo/host_ed25519")).unwrap(),
        host_key
    );
    run_printed_sftp(cwd.path(), &demo.sftp, "get report.pdf again.pdf\n");
    assert_eq!(std::fs::read(cwd.path().join("again.pdf")).unwrap(), plain);
}
