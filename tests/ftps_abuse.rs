//! FTPS bad input and interruptions beyond tests/ftps.rs: ABOR in the middle of a large LIST or
//! MLSD, and PORT/EPRT naming a third party (refused; the gateway never connects out).

mod common;
#[path = "ftps_support/mod.rs"]
mod ftps_support;

use ftps_support::start;

#[test]
fn abor_stops_a_large_listing_and_the_session_goes_on() {
    let f = start();
    // Thousands of long names (half a MB of listing), planted straight in the store as
    // directories (files would need sealed headers to be listed).
    let big = f.stored("big");
    const ENTRIES: u64 = 3000;
    const NAME: usize = 150;
    for i in 0..ENTRIES {
        std::fs::create_dir_all(big.join(format!("{i:06}-{}", "n".repeat(NAME)))).unwrap();
    }
    for command in ["MLSD", "LIST"] {
        let v = f.py_ok(
            "bob",
            &["abort_listing", "--command", command, "--name", "big"],
        );
        assert!(
            v["start"].as_str().unwrap().starts_with("150"),
            "{command}: {v}"
        );
        // Cut short: less than the names alone would take.
        assert!(
            v["received"].as_u64().unwrap() < ENTRIES * NAME as u64,
            "{command}: {v}"
        );
        let abort = v["abort"].as_str().unwrap();
        assert!(
            abort.starts_with("426") && abort.contains("ABOR"),
            "{command}: {v}"
        );
        assert!(
            v["after"].as_str().unwrap().starts_with("226"),
            "{command}: {v}\n{}",
            f.g.log()
        );
        assert!(
            v["noop"].as_str().unwrap().starts_with("200"),
            "{command}: {v}"
        );
        assert_eq!(v["pwd"], "/", "{command}: {v}");
        assert_eq!(v["nlst"], serde_json::json!(["big"]), "{command}: {v}");
    }
}

#[test]
fn port_and_eprt_to_a_third_party_are_refused_and_nothing_connects_out() {
    let f = start();
    // The "third party": a listener on another loopback address that must never see a connection.
    let third = std::net::TcpListener::bind("127.0.0.3:0").unwrap();
    third.set_nonblocking(true).unwrap();
    let port = third.local_addr().unwrap().port().to_string();
    let v = f.py_ok(
        "bob",
        &[
            "active_mode",
            "--host",
            "127.0.0.3",
            "--third-port",
            &port,
            "--name",
            "a.bin",
        ],
    );
    assert!(v["greeting"].as_str().unwrap().starts_with("220"), "{v}");
    for cmd in ["PORT", "EPRT"] {
        for key in [format!("plain {cmd}"), format!("tls {cmd} {cmd}")] {
            let r = v[&key].as_str().unwrap();
            assert!(
                r.starts_with("502") && r.contains("never connects to an address a client names"),
                "{key}: {v}"
            );
        }
        // The transfers that follow have no data connection to use: no PASV was sent.
        for t in ["STOR", "LIST"] {
            let r = v[&format!("tls {cmd} {t}")].as_str().unwrap();
            assert!(r.starts_with("425") && r.contains("PASV"), "{cmd} {t}: {v}");
        }
    }
    assert!(v["noop"].as_str().unwrap().starts_with("200"), "{v}");
    // Every reply has arrived, so any connection the gateway made would be queued by now.
    match third.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the gateway connected to the third party: {other:?}"),
    }
    assert!(f.g.stored_files().is_empty(), "{:?}", f.g.stored_files());
}
