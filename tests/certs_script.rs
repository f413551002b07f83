//! `certs/make-demo-ca.sh`: the throwaway CA, server and client certificates it makes chain to
//! that CA (and not to another one), carry the names asked for, keep their keys 0600, and work
//! in a real TLS handshake with client authentication; bad arguments and existing files are
//! refused without writing anything.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FILES: [&str; 6] = [
    "ca.pem",
    "ca.key",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
];

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/make-demo-ca.sh")
}

fn make(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("run bash")
}

fn make_ok(args: &[&str]) -> String {
    let out = make(args);
    assert!(
        out.status.success(),
        "make-demo-ca.sh {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl")
}

fn verify(ca: &Path, purpose: &str, cert: &Path) -> Output {
    openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        "-purpose",
        purpose,
        cert.to_str().unwrap(),
    ])
}

fn text(cert: &Path) -> String {
    let out = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"]);
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn certificates_chain_to_the_demo_ca_with_the_names_asked_for_and_private_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let d = dir.to_str().unwrap();
    let printed = make_ok(&["--client", "alice", d, "gw.example.org", "10.1.2.3"]);
    for f in FILES {
        assert!(printed.contains(f), "the script names {f}:\n{printed}");
    }
    let p = |f: &str| dir.join(f);
    assert_eq!(mode(&dir), 0o700);
    for key in ["ca.key", "server.key", "client.key"] {
        assert_eq!(mode(&p(key)), 0o600, "{key}");
    }
    // Only the six files: no serial file, CSR or scratch directory left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected);

    for (purpose, cert) in [("sslserver", "server.pem"), ("sslclient", "client.pem")] {
        let out = verify(&p("ca.pem"), purpose, &p(cert));
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(": OK"),
            "{cert}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Each certificate is good for its own role only.
    assert!(
        !verify(&p("ca.pem"), "sslserver", &p("client.pem"))
            .status
            .success()
    );
    assert!(
        !verify(&p("ca.pem"), "sslclient", &p("server.pem"))
            .status
            .success()
    );

    let server = text(&p("server.pem"));
    for san in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "DNS:gw.example.org",
        "IP Address:10.1.2.3",
    ] {
        assert!(server.contains(san), "server SAN {san} missing:\n{server}");
    }
    assert!(text(&p("client.pem")).contains("CN = alice"));
    assert!(text(&p("ca.pem")).contains("CA:TRUE, pathlen:0"));

    // Another run makes another CA, which the first one's certificates do not chain to.
    let other = tmp.path().join("other");
    make_ok(&[other.to_str().unwrap()]);
    assert!(
        !verify(&other.join("ca.pem"), "sslserver", &p("server.pem"))
            .status
            .success()
    );
    assert!(
        !verify(&other.join("ca.pem"), "sslclient", &p("client.pem"))
            .status
            .success()
    );
}

/// A TLS server with `server.pem` that requires a client certificate from the CA; a client that
/// trusts only `ca.pem` connects by name (localhost) and by address (127.0.0.1). Prints the
/// client subject CN the server saw, once per connection.
const HANDSHAKE: &str = r#"
import socket, ssl, sys, threading
d = sys.argv[1]
srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
srv.load_cert_chain(d + "/server.pem", d + "/server.key")
srv.load_verify_locations(d + "/ca.pem")
srv.verify_mode = ssl.CERT_REQUIRED
cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
cli.load_verify_locations(d + "/ca.pem")
cli.load_cert_chain(d + "/client.pem", d + "/client.key")
lsock = socket.socket()
lsock.settimeout(10)
lsock.bind(("127.0.0.1", 0))
lsock.listen(2)
port = lsock.getsockname()[1]
seen = []
def serve():
    for _ in range(2):
        conn, _ = lsock.accept()
        conn.settimeout(10)
        with srv.wrap_socket(conn, server_side=True) as s:
            cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
            s.sendall(cn.encode())
            s.recv(1)
t = threading.Thread(target=serve, daemon=True)
t.start()
for name in ["localhost", "127.0.0.1"]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with cli.wrap_socket(raw, server_hostname=name) as s:
            print(s.recv(100).decode())
            s.sendall(b".")
t.join(10)
"#;

#[test]
fn a_tls_handshake_with_client_certificates_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    make_ok(&["--client", "partner-a", d]);
    let out = Command::new("python3")
        .args(["-c", HANDSHAKE, d])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "partner-a\npartner-a\n"
    );
}

#[test]
fn bad_arguments_and_existing_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let d = dir.to_str().unwrap();

    // A comma would add a SAN entry of its own choosing; a slash a subject field.
    for args in [
        vec![d, "a,DNS:evil.example"],
        vec![d, "bad name"],
        vec!["--client", "x/CN=admin", d],
        vec!["--days", "0", d],
        vec![],
    ] {
        let out = make(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty(), "{args:?}");
        assert!(!dir.exists(), "{args:?} wrote nothing");
    }

    // A name openssl itself rejects leaves no file behind either.
    let out = make(&[d, "999.1.1.1"]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);

    make_ok(&[d]);
    let before: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let out = make(&[d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));
    let after: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    assert_eq!(
        before, after,
        "existing keys and certificates are untouched"
    );
}
