//! Implicit FTPS (`[ftps] implicit_listen`): TLS from the first byte on its own port, then the
//! same session as explicit FTPS. Clients: curl `ftps://`, Python ftplib wrapping the socket at
//! connect, and raw plaintext bytes that must fail the handshake without harm.

mod common;
#[path = "ftps_support/mod.rs"]
mod ftps_support;

use common::data;
use ftps_support::{FtpsOptions, make_certs, start_with};

fn start() -> ftps_support::Ftps {
    start_with(
        make_certs("demo-client"),
        FtpsOptions {
            implicit: true,
            ..FtpsOptions::default()
        },
    )
}

#[test]
fn curl_ftps_url_uploads_lists_and_downloads() {
    let f = start();
    let plain = data(1 << 20, 21);
    std::fs::write(f.g.path("i.bin"), &plain).unwrap();
    let up = f.curl(&["-T", "i.bin", &f.implicit_url("i.bin")]);
    assert!(up.status.success(), "{up:?}\n{}", f.g.log());
    assert_eq!(f.g.decrypt(&f.stored("i.bin")), plain);
    let down = f.curl(&[&f.implicit_url("i.bin"), "-o", "back.bin"]);
    assert!(down.status.success(), "{down:?}\n{}", f.g.log());
    assert_eq!(std::fs::read(f.g.path("back.bin")).unwrap(), plain);
    let list = f.curl(&[&f.implicit_url("")]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(" i.bin"),
        "{list:?}"
    );
    // The explicit port still wants AUTH TLS first: curl's ftps:// there fails.
    let wrong = f.curl(&[
        "--max-time",
        "10",
        &format!("ftps://127.0.0.1:{}/i.bin", f.port),
    ]);
    assert!(!wrong.status.success(), "{wrong:?}");
}

#[test]
fn python_ftplib_implicit_roundtrip_and_auth_tls_again_is_refused() {
    let f = start();
    let plain = data(600 << 10, 22);
    let local = f.g.path("p.bin");
    std::fs::write(&local, &plain).unwrap();
    let port = f.implicit_port.to_string();
    let v = f.py_ok(
        "frank",
        &[
            "roundtrip",
            "--implicit",
            "--port",
            &port,
            "--local",
            local.to_str().unwrap(),
            "--name",
            "p.bin",
            "--rename",
            "q.bin",
        ],
    );
    assert!(v["stor"].as_str().unwrap().starts_with("226"), "{v}");
    assert_eq!(v["same"], true, "{v}");
    assert_eq!(f.g.decrypt(&f.stored("q.bin")), plain);
    // AUTH TLS on a connection that is TLS already: 503 (as proftpd), the session goes on.
    let v = f.py_ok("bob", &["auth_on_implicit", "--implicit", "--port", &port]);
    assert!(v["welcome"].as_str().unwrap().starts_with("220"), "{v}");
    let auth = v["auth"].as_str().unwrap();
    assert!(auth.starts_with("503") && auth.contains("already"), "{v}");
    assert!(v["login"].as_str().unwrap().starts_with("230"), "{v}");
    assert_eq!(v["nlst"], serde_json::json!(["q.bin"]), "{v}");
    let auth = f.g.events("auth");
    assert!(
        auth.iter()
            .any(|a| a["user"] == "frank" && a["method"] == "ftps password"),
        "{auth:?}"
    );
}

#[test]
fn plaintext_to_the_implicit_port_fails_the_handshake_and_the_server_goes_on() {
    let f = start();
    let port = f.implicit_port.to_string();
    for _ in 0..3 {
        let v = f.py_ok("bob", &["plain_to_implicit", "--port", &port]);
        assert_eq!(v["closed"], true, "{v}");
        assert_eq!(v["got_greeting"], false, "{v}");
        // Nothing but, at most, a TLS alert record (content type 21) comes back.
        assert!(v["first"] == "" || v["first"] == "15", "{v}");
    }
    assert!(
        f.g.log()
            .contains("TLS handshake on the control connection failed")
    );
    assert!(!f.g.log().contains("panicked"), "{}", f.g.log());
    // Both ports still serve.
    let local = f.g.path("after.bin");
    std::fs::write(&local, b"still here").unwrap();
    f.py_ok(
        "bob",
        &[
            "put",
            "--implicit",
            "--port",
            &port,
            "--local",
            local.to_str().unwrap(),
            "--name",
            "after.bin",
        ],
    );
    f.py_ok(
        "bob",
        &[
            "get",
            "--local",
            f.g.path("a2.bin").to_str().unwrap(),
            "--name",
            "after.bin",
        ],
    );
    assert_eq!(std::fs::read(f.g.path("a2.bin")).unwrap(), b"still here");
    assert!(
        f.g.events("auth")
            .iter()
            .all(|a| a["outcome"] == "accepted")
    );
}
