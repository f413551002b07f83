//! `eugate demo` over FTPS: the printed `curl` and `lftp` commands and Python's ftplib.FTP_TLS
//! put, get, list, rename and delete through the demo's FTPS port, each client verifying the
//! server certificate against the demo CA; the stored objects decrypt with the printed
//! `eugate decrypt` command; a plaintext login is refused; the password file is 0600 and appears
//! in no output; a second run reuses the CA, and unsafe file modes are refused. The printed admin
//! `curl` commands get `/readyz` 200 and `/metrics` over HTTPS verified against the same demo CA;
//! a demo folder from before `[admin]` still starts, says how to turn it on, and that works.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_no_plaintext, bin, data, free_port, run_with_stdin};

const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

struct Demo {
    child: Child,
    cwd: PathBuf,
    ftps_port: u16,
    admin_port: u16,
    curl: String,
    readyz: String,
    metrics: String,
    lftp: String,
    decrypt: String,
    stdout: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo_command(cwd: &Path, ftps_port: u16, admin_port: u16) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(["demo", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--ftps-listen", &format!("127.0.0.1:{ftps_port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .current_dir(cwd)
        .env("NO_COLOR", "1");
    cmd
}

/// Starts the demo and reads what it prints up to "Stop with"; its log goes to `demo.log`.
fn start(cwd: &Path) -> Demo {
    let (ftps_port, admin_port) = (free_port(), free_port());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cwd.join("demo.log"))
        .unwrap();
    let child = demo_command(cwd, ftps_port, admin_port)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    // Built first, so that a failed assertion below still kills the demo.
    let mut demo = Demo {
        child,
        cwd: cwd.to_path_buf(),
        ftps_port,
        admin_port,
        curl: String::new(),
        readyz: String::new(),
        metrics: String::new(),
        lftp: String::new(),
        decrypt: String::new(),
        stdout: String::new(),
    };
    let lines = BufReader::new(demo.child.stdout.take().unwrap()).lines();
    for line in lines {
        let line = line.unwrap();
        demo.stdout.push_str(&line);
        demo.stdout.push('\n');
        let t = line.trim();
        if t.starts_with("curl ") && t.ends_with("/readyz") {
            demo.readyz = t.to_string();
        } else if t.starts_with("curl ") && t.ends_with("/metrics") {
            demo.metrics = t.to_string();
        } else if t.starts_with("curl ") {
            demo.curl = t.to_string();
        } else if t.contains(" lftp ") {
            demo.lftp = t.to_string();
        } else if t.starts_with("eugate decrypt ") {
            demo.decrypt = t.to_string();
        } else if t.starts_with("Stop with") {
            break;
        }
    }
    assert!(
        !demo.curl.is_empty() && !demo.lftp.is_empty(),
        "the demo printed no FTPS commands:\n{}\n--- log ---\n{}",
        demo.stdout,
        demo.log()
    );
    demo
}

impl Demo {
    fn log(&self) -> String {
        std::fs::read_to_string(self.cwd.join("demo.log")).unwrap_or_default()
    }

    fn password(&self) -> String {
        let text =
            std::fs::read_to_string(self.cwd.join("eugate-demo/demo_user_password")).unwrap();
        text.trim_end().to_string()
    }

    fn stored(&self, name: &str) -> PathBuf {
        self.cwd.join("eugate-demo/store/demo").join(name)
    }

    /// A shell line run in the demo's working directory, bounded in time.
    fn sh(&self, line: &str, stdin: &[u8]) -> Output {
        run_with_stdin(
            Command::new("timeout")
                .args(["60", "bash", "-c", line])
                .current_dir(&self.cwd),
            stdin,
        )
    }

    /// The printed curl command up to `-T FILE`, and its URL (ending in `/`).
    fn curl_parts(&self) -> (String, String) {
        let (prefix, url) = self
            .curl
            .split_once(" -T FILE ")
            .expect("curl ... -T FILE URL");
        (format!("{prefix} -sS --max-time 30"), url.to_string())
    }

    /// The printed `eugate decrypt` command with FILE filled in; returns the plaintext.
    fn decrypt(&self, name: &str) -> Vec<u8> {
        let out_name = format!("{name}.decrypted");
        let cmd = self
            .decrypt
            .replace("FILE.plain", &out_name)
            .replace("FILE", name);
        let mut words: Vec<&str> = cmd.split_whitespace().collect();
        assert_eq!(words.remove(0), "eugate");
        let out = Command::new(bin())
            .args(&words)
            .current_dir(&self.cwd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(self.cwd.join(out_name)).unwrap()
    }

    /// tests/scripts/ftps_client.py, trusting `cafile`.
    fn ftplib(&self, cafile: &str, args: &[&str]) -> (serde_json::Value, Output) {
        let out = Command::new("timeout")
            .args(["60", "python3"])
            .arg(common::scripts().join("ftps_client.py"))
            .arg(args[0])
            .args(["--port", &self.ftps_port.to_string(), "--user", "demo"])
            // `--password=…`: a password may begin with `-`, which argparse takes for an option.
            .arg(format!("--password={}", self.password()))
            .args(["--cafile", cafile])
            .args(&args[1..])
            .current_dir(&self.cwd)
            .output()
            .unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ftps_client output not JSON ({e}): {}\n{}\n--- demo log ---\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            )
        });
        (v, out)
    }
}

/// Runs a printed admin `curl` command (bounded); returns (HTTP status, body).
fn admin_get(demo: &Demo, printed: &str) -> (String, String) {
    let out = demo.sh(
        &format!("{printed} -sS --max-time 30 -w '\n%{{http_code}}'"),
        b"",
    );
    assert_ok(printed, &out, demo);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    (status.to_string(), body.to_string())
}

fn assert_ok(what: &str, out: &Output, demo: &Demo) {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}\n--- demo log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        demo.log()
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn printed_curl_and_lftp_and_ftplib_put_get_list_rename_delete() {
    let cwd = tempfile::tempdir().unwrap();
    let demo = start(cwd.path());
    let port = demo.ftps_port;
    let (ca, pw) = (
        "./eugate-demo/ftps-ca.pem",
        "./eugate-demo/demo_user_password",
    );
    // The commands name the CA to trust, the port, the user and the password file; none turns
    // certificate checks off.
    for cmd in [&demo.curl, &demo.lftp] {
        assert!(cmd.contains(ca) && cmd.contains(pw), "{cmd}");
        assert!(cmd.contains(&format!("ftp://127.0.0.1:{port}")), "{cmd}");
        assert!(cmd.contains("demo"), "{cmd}");
        for off in [" -k ", "--insecure", "verify-certificate"] {
            assert!(!cmd.contains(off), "{cmd}");
        }
    }
    assert!(demo.curl.contains("--ssl-reqd"), "{}", demo.curl);
    assert!(
        demo.lftp.contains("set ftp:ssl-force true"),
        "{}",
        demo.lftp
    );
    let password_file = cwd.path().join("eugate-demo/demo_user_password");
    assert_eq!(mode(&password_file), 0o600);
    for key in ["ftps-ca.key", "ftps-server.key"] {
        assert_eq!(
            mode(&cwd.path().join("eugate-demo").join(key)),
            0o600,
            "{key}"
        );
    }
    let password = demo.password();
    assert!(
        password.len() >= 20,
        "a short password: {} chars",
        password.len()
    );

    // curl: the printed upload, then download, list, rename, delete.
    let plain_c = data(1 << 20, 21);
    std::fs::write(cwd.path().join("c.bin"), &plain_c).unwrap();
    let up = demo.sh(
        &demo
            .curl
            .replace(" -T FILE ", " -sS --max-time 30 -T c.bin "),
        b"",
    );
    assert_ok("printed curl upload", &up, &demo);
    let (curl, url) = demo.curl_parts();
    let down = demo.sh(&format!("{curl} {url}c.bin -o c.back"), b"");
    assert_ok("curl download", &down, &demo);
    assert_eq!(std::fs::read(cwd.path().join("c.back")).unwrap(), plain_c);
    let list = demo.sh(&format!("{curl} {url}"), b"");
    assert_ok("curl list", &list, &demo);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(" c.bin"),
        "{list:?}"
    );
    let mv = demo.sh(
        &format!("{curl} -Q 'RNFR c.bin' -Q 'RNTO c2.bin' {url}"),
        b"",
    );
    assert_ok("curl rename", &mv, &demo);
    assert!(!demo.stored("c.bin").exists());
    assert_eq!(demo.decrypt("c2.bin"), plain_c);
    assert_no_plaintext(&std::fs::read(demo.stored("c2.bin")).unwrap(), &plain_c);
    std::fs::write(cwd.path().join("gone.bin"), b"to be deleted").unwrap();
    let up = demo.sh(&format!("{curl} -T gone.bin {url}"), b"");
    assert_ok("curl upload 2", &up, &demo);
    assert!(demo.stored("gone.bin").exists());
    let rm = demo.sh(&format!("{curl} -Q 'DELE gone.bin' {url}"), b"");
    assert_ok("curl delete", &rm, &demo);
    assert!(!demo.stored("gone.bin").exists());

    // lftp: the printed command, with a script on stdin.
    let plain_l = data((2 << 20) + 17, 22);
    std::fs::write(cwd.path().join("l.bin"), &plain_l).unwrap();
    std::fs::write(cwd.path().join("tmp.bin"), b"lftp deletes this").unwrap();
    let script = "set net:max-retries 1; set net:timeout 20\n\
                  put l.bin\nput tmp.bin\nls\nget l.bin -o l.back\nmv l.bin l2.bin\nrm tmp.bin\n\
                  echo after:\ncls -1\nbye\n";
    let out = demo.sh(&demo.lftp, script.as_bytes());
    assert_ok("printed lftp", &out, &demo);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (before, after) = stdout.split_once("after:").unwrap_or(("", ""));
    assert!(
        before.contains(" l.bin") && before.contains(" tmp.bin"),
        "{stdout}"
    );
    let after: Vec<&str> = after.split_whitespace().collect();
    assert_eq!(after, ["c2.bin", "l2.bin"], "{stdout}");
    assert_eq!(std::fs::read(cwd.path().join("l.back")).unwrap(), plain_l);
    assert_eq!(demo.decrypt("l2.bin"), plain_l);
    assert!(!demo.stored("tmp.bin").exists());

    // Python ftplib.FTP_TLS: every call returns without an exception.
    let plain_p = data(3 << 20, 23);
    std::fs::write(cwd.path().join("p.bin"), &plain_p).unwrap();
    let (v, out) = demo.ftplib(
        "eugate-demo/ftps-ca.pem",
        &[
            "roundtrip",
            "--local",
            "p.bin",
            "--name",
            "p.bin",
            "--rename",
            "p2.bin",
            "--delete",
        ],
    );
    assert_ok(&format!("ftplib roundtrip {v}"), &out, &demo);
    assert!(v.get("exception").is_none(), "{v}");
    for (k, code) in [
        ("stor", "226"),
        ("retr", "226"),
        ("rename", "250"),
        ("delete", "250"),
    ] {
        assert!(
            v[k].as_str().unwrap_or_default().starts_with(code),
            "{k}: {v}"
        );
    }
    assert_eq!(v["same"], true, "{v}");
    assert_eq!(
        v["mlsd"],
        serde_json::json!(["c2.bin", "l2.bin", "p2.bin"]),
        "{v}"
    );
    assert_eq!(
        v["after_delete"],
        serde_json::json!(["c2.bin", "l2.bin"]),
        "{v}"
    );
    let (v, out) = demo.ftplib(
        "eugate-demo/ftps-ca.pem",
        &["put", "--local", "p.bin", "--name", "kept.bin"],
    );
    assert_ok(&format!("ftplib put {v}"), &out, &demo);
    assert_eq!(demo.decrypt("kept.bin"), plain_p);

    // The logins are audited as FTPS; the password reached no output, log or audit record.
    let audit = std::fs::read_to_string(cwd.path().join("eugate-demo/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"ftps password\""),
        "no FTPS login audited:\n{audit}"
    );
    assert!(
        !audit.contains(&password),
        "the audit log holds the password"
    );
    assert!(
        !demo.stdout.contains(&password),
        "the demo printed the password"
    );
    assert!(
        !demo.log().contains(&password),
        "the demo logged the password"
    );
}

#[test]
fn every_client_checks_the_certificate_and_plaintext_login_is_refused() {
    let cwd = tempfile::tempdir().unwrap();
    let demo = start(cwd.path());
    std::fs::write(cwd.path().join("x.bin"), b"x").unwrap();

    // Trusting the system roots instead of the demo CA, each client refuses the server: the
    // commands above verify for real.
    let curl = demo
        .curl
        .replace("./eugate-demo/ftps-ca.pem", SYSTEM_ROOTS)
        .replace(" -T FILE ", " -sS --max-time 30 -T x.bin ");
    let out = demo.sh(&curl, b"");
    assert_eq!(out.status.code(), Some(60), "curl: {out:?}");
    let lftp = demo.lftp.replace("./eugate-demo/ftps-ca.pem", SYSTEM_ROOTS);
    let out = demo.sh(
        &lftp,
        b"set net:max-retries 1; set net:timeout 10\nput x.bin\nbye\n",
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("certificate"),
        "lftp: {out:?}"
    );
    let (v, _) = demo.ftplib(
        SYSTEM_ROOTS,
        &["put", "--local", "x.bin", "--name", "x.bin"],
    );
    assert!(
        v["exception"]
            .as_str()
            .unwrap_or_default()
            .contains("CERTIFICATE_VERIFY_FAILED"),
        "{v}"
    );
    assert!(!demo.stored("x.bin").exists());

    // No TLS at all: curl's plain FTP login and ftplib.FTP's are refused with 530 before any
    // password is checked, and nothing is stored.
    let (curl, url) = demo.curl_parts();
    let plain_curl = curl.replace(" --ssl-reqd", "");
    assert!(!plain_curl.contains("ssl"), "{plain_curl}");
    let out = demo.sh(&format!("{plain_curl} -T x.bin {url}"), b"");
    assert_eq!(out.status.code(), Some(67), "curl without TLS: {out:?}");
    let py = format!(
        "import ftplib,sys\nf=ftplib.FTP()\nf.connect('127.0.0.1',{},timeout=20)\n\
         try:\n  f.login('demo',sys.stdin.read().strip())\n  print('logged in')\n\
         except ftplib.error_perm as e:\n  print('refused', e)\n",
        demo.ftps_port
    );
    let out = run_with_stdin(
        Command::new("timeout").args(["30", "python3", "-c", &py]),
        demo.password().as_bytes(),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("refused 530") && said.contains("AUTH TLS"),
        "{out:?}"
    );
    assert!(!demo.stored("x.bin").exists());
    let audit = std::fs::read_to_string(cwd.path().join("eugate-demo/audit.jsonl")).unwrap();
    assert!(
        !audit.contains("ftps password"),
        "a login was attempted: {audit}"
    );
}

/// Runs the demo expecting it to refuse to start; returns what it wrote to stderr.
fn refused(cwd: &Path) -> String {
    let mut child = demo_command(cwd, free_port(), free_port())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the demo started although it should have refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    err
}

#[test]
fn a_second_run_reuses_the_ca_and_refuses_unsafe_modes() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("eugate-demo");
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let demo = start(cwd.path());
    let first: Vec<Vec<u8>> = [
        "ftps-ca.pem",
        "ftps-ca.key",
        "ftps-server.pem",
        "demo_user_password",
    ]
    .iter()
    .map(|n| read(n))
    .collect();
    drop(demo);

    // Same CA, certificate and password: a client that trusted the first run still logs in.
    let demo = start(cwd.path());
    let again: Vec<Vec<u8>> = [
        "ftps-ca.pem",
        "ftps-ca.key",
        "ftps-server.pem",
        "demo_user_password",
    ]
    .iter()
    .map(|n| read(n))
    .collect();
    assert!(
        first == again,
        "the second run changed the CA, certificate or password"
    );
    let (curl, url) = demo.curl_parts();
    let out = demo.sh(&format!("{curl} {url}"), b"");
    assert_ok("curl list on the second run", &out, &demo);
    drop(demo);

    // Secrets others can read, or a CA file others can replace: refused, naming file and fix.
    for (file, bad, fix) in [
        ("demo_user_password", 0o644, "chmod 600"),
        ("ftps-ca.key", 0o640, "chmod 600"),
        ("ftps-server.key", 0o604, "chmod 600"),
        ("ftps-ca.pem", 0o666, "chmod 644"),
    ] {
        let path = dir.join(file);
        let good = mode(&path);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).unwrap();
        let err = refused(cwd.path());
        assert!(
            err.contains(file) && err.contains(&format!("{bad:04o}")) && err.contains(fix),
            "{file}: {err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(good)).unwrap();
    }
    assert_eq!(
        first[0],
        read("ftps-ca.pem"),
        "a refused run must not touch the CA"
    );

    // A password file that no longer matches the config's hash is refused too.
    std::fs::write(dir.join("demo_user_password"), "not-the-password\n").unwrap();
    let err = refused(cwd.path());
    assert!(err.contains("no longer matches password_hash"), "{err}");
    // Missing altogether: a new one is made, and the demo says the config's hash must follow it.
    std::fs::remove_file(dir.join("demo_user_password")).unwrap();
    let err = refused(cwd.path());
    assert!(err.contains("was missing"), "{err}");
    assert_eq!(mode(&dir.join("demo_user_password")), 0o600);
    // The fix it names works: hash the file into gateway.toml, and the demo serves again.
    let hash = run_with_stdin(
        Command::new(bin()).arg("passwd"),
        &std::fs::read(dir.join("demo_user_password")).unwrap(),
    );
    let hash = String::from_utf8(hash.stdout).unwrap();
    let toml = std::fs::read_to_string(dir.join("gateway.toml")).unwrap();
    let old = toml
        .lines()
        .find(|l| l.starts_with("password_hash = "))
        .unwrap();
    let toml = toml.replace(old, &format!("password_hash = \"{}\"", hash.trim()));
    std::fs::write(dir.join("gateway.toml"), toml).unwrap();
    let demo = start(cwd.path());
    let (curl, url) = demo.curl_parts();
    let out = demo.sh(&format!("{curl} {url}"), b"");
    assert_ok("curl list with the new password", &out, &demo);
}

#[test]
fn printed_admin_curl_commands_verify_against_the_demo_ca() {
    let cwd = tempfile::tempdir().unwrap();
    let demo = start(cwd.path());
    let url = format!("https://127.0.0.1:{}", demo.admin_port);
    assert_eq!(
        demo.readyz,
        format!("curl --cacert ./eugate-demo/ftps-ca.pem {url}/readyz"),
        "{}",
        demo.stdout
    );
    assert_eq!(
        demo.metrics,
        format!("curl --cacert ./eugate-demo/ftps-ca.pem {url}/metrics")
    );

    let (status, body) = admin_get(&demo, &demo.readyz);
    assert_eq!(status, "200", "{body}\n--- demo log ---\n{}", demo.log());
    assert!(body.contains("keyring: ok"), "{body}");
    let (status, body) = admin_get(&demo, &demo.metrics);
    assert_eq!(status, "200", "{body}");
    assert!(
        body.lines().any(|l| l.starts_with("eugate_build_info{")),
        "{body}"
    );

    // The check is real: trusting the system roots instead of the demo CA, curl refuses the
    // server (60: peer certificate cannot be authenticated) and gets nothing.
    for printed in [&demo.readyz, &demo.metrics] {
        let other = printed.replace("./eugate-demo/ftps-ca.pem", SYSTEM_ROOTS);
        let out = demo.sh(&format!("{other} -sS --max-time 30"), b"");
        assert_eq!(out.status.code(), Some(60), "{other}: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }
}

/// The console's two demo officers log in with nothing but their PKCS#12 file and its password,
/// as a browser would import them; the files are private and the password is never printed.
#[test]
fn the_demo_console_logs_in_its_editor_and_approver_with_their_pkcs12_files() {
    let cwd = tempfile::tempdir().unwrap();
    let demo = start(cwd.path());
    let url = format!("https://127.0.0.1:{}/console/", demo.admin_port);
    assert!(
        demo.stdout.contains(&format!("Compliance console: {url}")),
        "{}",
        demo.stdout
    );
    let officers = cwd.path().join("eugate-demo/officers");
    let password = std::fs::read_to_string(officers.join("p12-password")).unwrap();
    let password = password.trim();
    assert!(password.len() >= 16, "a weak demo password: {password:?}");
    assert!(!demo.stdout.contains(password));
    for (name, role) in [("editor", "editor"), ("approver", "approver")] {
        assert!(
            demo.stdout
                .contains(&format!("./eugate-demo/officers/{name}.p12"))
        );
        for secret in [
            format!("{name}.p12"),
            format!("{name}.key"),
            "p12-password".into(),
        ] {
            assert_eq!(mode(&officers.join(&secret)), 0o600, "{secret}");
        }
        let whoami = format!(
            "curl -sS --max-time 30 --cacert ./eugate-demo/ftps-ca.pem --cert-type P12 \
             --cert ./eugate-demo/officers/{name}.p12:\"$(cat ./eugate-demo/officers/p12-password)\" \
             -w '\n%{{http_code}}' {url}whoami"
        );
        let out = demo.sh(&whoami, b"");
        assert_ok(&whoami, &out, &demo);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.ends_with("\n200"), "{text}");
        assert!(
            text.contains(&format!("Logged in as demo-{name}"))
                && text.contains(&format!("<td id=\"roles\">{role}</td>")),
            "{text}"
        );
    }
    // Without a certificate: refused.
    let out = demo.sh(
        &format!("curl -sS --max-time 30 --cacert ./eugate-demo/ftps-ca.pem -w '\n%{{http_code}}' {url}whoami"),
        b"",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("\n403"),
        "{out:?}"
    );
    // The shipped policy was written out for approved changes to go to, and is in force.
    assert!(
        cwd.path()
            .join("eugate-demo/policies/default.cedar")
            .is_file()
    );
}

#[test]
fn a_demo_folder_without_admin_starts_and_says_how_to_turn_it_on() {
    let cwd = tempfile::tempdir().unwrap();
    let config = cwd.path().join("eugate-demo/gateway.toml");
    drop(start(cwd.path()));
    // gateway.toml as a demo made before [admin] (and so [console]) existed wrote it.
    let toml = std::fs::read_to_string(&config).unwrap();
    let (head, rest) = toml
        .split_once("# Admin endpoints")
        .expect("an [admin] section");
    let (_, tail) = rest
        .split_once("\n[tenants.demo]")
        .expect("the demo tenant after [admin] and [console]");
    assert!(
        !tail.contains("[admin]") && !tail.contains("[console"),
        "{tail}"
    );
    std::fs::write(&config, format!("{head}[tenants.demo]{tail}")).unwrap();

    let demo = start(cwd.path());
    assert!(
        demo.readyz.is_empty() && demo.metrics.is_empty(),
        "{}",
        demo.stdout
    );
    let (_, said) = demo
        .stdout
        .split_once("Admin endpoints (/livez, /readyz, /metrics) are off")
        .unwrap_or_else(|| panic!("the demo did not say admin is off:\n{}", demo.stdout));
    assert!(said.contains("has no [admin] section"), "{said}");
    // The lines to append, as printed (indented, up to the next blank line).
    let section: Vec<String> = said
        .lines()
        .skip_while(|l| l.trim() != "[admin]")
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(
        section.get(1),
        Some(&format!("listen = [\"127.0.0.1:{}\"]", demo.admin_port)),
        "{said}"
    );
    // Nothing listens on the admin port; SFTP and FTPS serve as before.
    let out = demo.sh(
        &format!(
            "curl --cacert ./eugate-demo/ftps-ca.pem -sS --max-time 30 https://127.0.0.1:{}/readyz",
            demo.admin_port
        ),
        b"",
    );
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let (curl, url) = demo.curl_parts();
    let out = demo.sh(&format!("{curl} {url}"), b"");
    assert_ok("curl list without [admin]", &out, &demo);
    drop(demo);

    // Following the advice turns the admin endpoints on.
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push('\n');
    toml.push_str(&section.join("\n"));
    toml.push('\n');
    std::fs::write(&config, toml).unwrap();
    let demo = start(cwd.path());
    assert!(!demo.readyz.is_empty(), "{}", demo.stdout);
    let (status, body) = admin_get(&demo, &demo.readyz);
    assert_eq!(status, "200", "{body}\n--- demo log ---\n{}", demo.log());
}
