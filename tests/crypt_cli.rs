//! `eugate encrypt` / `eugate decrypt` through the real binary: round trips, and every failure
//! exits non-zero with a precise message and leaves no output file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

fn data(len: usize) -> Vec<u8> {
    // Not all zeros and not periodic at the segment size.
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
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
        assert!(sealed.len() > len);
        if len > 64 {
            assert!(
                !sealed.windows(64).any(|w| w == &plain[..64]),
                "plaintext visible"
            );
        }
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
