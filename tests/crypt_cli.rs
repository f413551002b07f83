//! `eugate encrypt` / `eugate decrypt` through the real binary: round trips, and every failure
//! exits non-zero with a precise message and leaves no output file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::assert_no_plaintext;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(tenants: &[&str]) -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        assert!(env.run(&["keys", "init"]).status.success());
        for t in tenants {
            assert!(env.run(&["keys", "add-tenant", t]).status.success());
        }
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_eugate"))
            .args(args)
            .env("EUGATE_KEYRING", self.path("keyring"))
            .env("EUGATE_MASTER_KEY_FILE", self.path("master.key"))
            .output()
            .expect("run eugate")
    }

    fn encrypt(&self, tenant: &str, input: &Path, output: &Path) -> Output {
        self.run(&[
            "encrypt",
            "--tenant",
            tenant,
            input.to_str().unwrap(),
            output.to_str().unwrap(),
        ])
    }

    fn decrypt(&self, input: &Path, output: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["decrypt"];
        args.extend_from_slice(extra);
        args.push(input.to_str().unwrap());
        args.push(output.to_str().unwrap());
        self.run(&args)
    }

    /// Nothing but the expected files: no partial outputs, no temporaries.
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// Distinctive (seeded pseudo-random) bytes, so that a run found in a sealed object is a leak.
fn data(len: usize) -> Vec<u8> {
    common::data(len, len as u64 + 1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn round_trip_at_interesting_sizes() {
    let env = Env::new(&["acme"]);
    for len in [0usize, 1, 65_535, 65_536, 65_537, 3 * 1024 * 1024 + 17] {
        let plain = data(len);
        let (p, s, o) = (env.path("p"), env.path("s"), env.path("o"));
        std::fs::write(&p, &plain).unwrap();
        let out = env.encrypt("acme", &p, &s);
        assert!(out.status.success(), "{}", stderr(&out));
        let sealed = std::fs::read(&s).unwrap();
        assert_no_plaintext(&sealed, &plain);
        let out = env.decrypt(&s, &o, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(std::fs::read(&o).unwrap(), plain, "len {len}");
        for f in [&p, &s, &o] {
            std::fs::remove_file(f).unwrap();
        }
    }
}

#[test]
fn tampered_truncated_or_foreign_objects_leave_no_output() {
    let env = Env::new(&["acme", "other"]);
    let plain = data(200_000);
    std::fs::write(env.path("p"), &plain).unwrap();
    assert!(
        env.encrypt("acme", &env.path("p"), &env.path("s"))
            .status
            .success()
    );
    let sealed = std::fs::read(env.path("s")).unwrap();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flipped payload byte", {
            let mut b = sealed.clone();
            let i = b.len() - 100;
            b[i] ^= 1;
            b
        }),
        ("flipped header byte", {
            let mut b = sealed.clone();
            b[6] ^= 0x40;
            b
        }),
        ("truncated", sealed[..sealed.len() - 1000].to_vec()),
        ("appended", [&sealed[..], b"extra"].concat()),
        ("empty file", Vec::new()),
        (
            "not an object",
            b"hello world, this is not an eugate object".to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        std::fs::write(env.path("bad"), &bytes).unwrap();
        let out = env.decrypt(&env.path("bad"), &env.path("o"), &[]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains("error:"), "{what}");
        assert!(!env.path("o").exists(), "{what}: output left behind");
        assert_eq!(
            env.entries(),
            ["bad", "keyring", "master.key", "p", "s"],
            "{what}"
        );
    }

    let out = env.decrypt(&env.path("s"), &env.path("o"), &["--tenant", "other"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("belongs to tenant \"acme\""),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("o").exists());

    // Rotation: old objects still open; shred: nothing opens any more.
    assert!(env.run(&["keys", "rotate", "acme"]).status.success());
    assert!(
        env.decrypt(&env.path("s"), &env.path("o"), &[])
            .status
            .success()
    );
    std::fs::remove_file(env.path("o")).unwrap();
    assert!(
        env.run(&["keys", "shred", "acme", "--yes"])
            .status
            .success()
    );
    let out = env.decrypt(&env.path("s"), &env.path("o"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("shredded"), "{}", stderr(&out));
    assert!(!env.path("o").exists());
}

#[test]
fn existing_output_survives_a_failed_decrypt() {
    let env = Env::new(&["acme"]);
    std::fs::write(env.path("o"), b"keep me").unwrap();
    std::fs::write(env.path("bad"), b"garbage").unwrap();
    assert!(
        !env.decrypt(&env.path("bad"), &env.path("o"), &[])
            .status
            .success()
    );
    assert_eq!(std::fs::read(env.path("o")).unwrap(), b"keep me");
}

/// The harness's leak check finds any 32-byte run of the plaintext, at any offset on either side
/// (so the checks above can fail), and does not mistake 31 bytes for a leak.
#[test]
fn assert_no_plaintext_finds_every_32_byte_run() {
    let plain = data(4096);
    let noise = common::data(10_000, 99);
    for (at, from) in [(0usize, 0usize), (7, 1), (5000, 4064), (9968, 2047)] {
        let mut stored = noise.clone();
        stored[at..at + 32].copy_from_slice(&plain[from..from + 32]);
        let leak = std::panic::catch_unwind(|| assert_no_plaintext(&stored, &plain));
        assert!(
            leak.is_err(),
            "32 bytes of plaintext {from}.. at {at} not found"
        );
        let mut stored = noise.clone();
        stored[at..at + 31].copy_from_slice(&plain[from..from + 31]);
        assert_no_plaintext(&stored, &plain);
    }
    // Beyond 1 Mi windows the plaintext is indexed at a stride: a leaked segment is still found.
    let big = data(3 << 20);
    let mut stored = common::data(1 << 20, 98);
    stored[12_345..12_345 + 65_536].copy_from_slice(&big[2_000_001..2_000_001 + 65_536]);
    assert!(std::panic::catch_unwind(|| assert_no_plaintext(&stored, &big)).is_err());
}
