//! The real binary driven by OpenSSH `sftp -b` and `scp`.

mod common;

use common::{Gateway, assert_no_plaintext, data};

#[test]
fn put_get_ls_mkdir_rename_rm_and_ciphertext_at_rest() {
    let g = Gateway::start();
    let plain = data(3 * 1024 * 1024 + 12345, 1);
    std::fs::write(g.path("upload.bin"), &plain).unwrap();
    let out = g.sftp_ok(
        "alice",
        "mkdir reports\nput upload.bin reports/q1.bin\nls -l reports\nrename reports/q1.bin reports/q2.bin\nget reports/q2.bin back.bin\nls -l reports\n",
    );
    // ls shows the plaintext size, not the sealed size.
    assert!(out.contains(&plain.len().to_string()), "{out}");
    assert!(out.contains("q2.bin"), "{out}");
    assert_eq!(std::fs::read(g.path("back.bin")).unwrap(), plain);

    // At rest: only the tenant's directory, only ciphertext, decrypting to the upload.
    let stored = g.store.join("acme/reports/q2.bin");
    let sealed = std::fs::read(&stored).unwrap();
    assert_no_plaintext(&sealed, &plain);
    assert_eq!(g.decrypt(&stored), plain);
    assert_eq!(g.decrypt_lib(&stored), plain);
    assert_eq!(g.stored_files(), vec!["acme/reports/q2.bin".to_string()]);

    g.sftp_ok("alice", "rm reports/q2.bin\nrmdir reports\n");
    assert!(g.stored_files().is_empty());
    let out = g.sftp_ok("alice", "ls -la\n");
    assert!(!out.contains("reports"), "{out}");
}

/// `serve` re-executes itself with glibc's mmap and trim thresholds pinned, so the memory a burst
/// of uploads took goes back to the kernel (src/main.rs); it still serves afterwards, same PID.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn serve_runs_with_the_malloc_mmap_threshold_pinned() {
    let g = Gateway::start();
    let env = g.environ();
    assert!(
        env.iter().any(|v| v == "MALLOC_MMAP_THRESHOLD_=262144"),
        "{env:?}"
    );
    assert!(
        env.iter().any(|v| v == "MALLOC_TRIM_THRESHOLD_=8388608"),
        "{env:?}"
    );
    std::fs::write(g.path("m.txt"), b"after exec").unwrap();
    g.sftp_ok("alice", "put m.txt\n");
    assert_eq!(g.decrypt(&g.store.join("acme/m.txt")), b"after exec");
}

#[test]
fn empty_and_segment_boundary_files_round_trip() {
    let g = Gateway::start();
    let sizes = [0usize, 1, 65535, 65536, 65537, 2 * 65536];
    let mut batch = String::new();
    for (i, n) in sizes.iter().enumerate() {
        std::fs::write(g.path(&format!("f{i}")), data(*n, i as u64)).unwrap();
        batch.push_str(&format!("put f{i}\nget f{i} r{i}\n"));
    }
    g.sftp_ok("alice", &batch);
    for (i, n) in sizes.iter().enumerate() {
        let back = std::fs::read(g.path(&format!("r{i}"))).unwrap();
        assert_eq!(back.len(), *n);
        assert_eq!(back, data(*n, i as u64));
        assert_eq!(g.decrypt(&g.store.join(format!("acme/f{i}"))), back);
    }
}

#[test]
fn reput_and_symlink_refused_with_a_reason() {
    let g = Gateway::start();
    std::fs::write(g.path("a.txt"), b"hello").unwrap();
    g.sftp_ok("alice", "put a.txt\n");
    // The local file grew: reput would append the new bytes at offset 5.
    std::fs::write(g.path("a.txt"), b"hello, world").unwrap();
    let out = g.sftp("alice", "reput a.txt\n");
    assert!(!out.status.success());
    // OpenSSH prints only the status code; paramiko tests check the message text.
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("unsupported"), "{err}");
    let out = g.sftp("alice", "symlink a.txt b.txt\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("unsupported"), "{err}");
    // The original is untouched.
    g.sftp_ok("alice", "get a.txt a.back\n");
    assert_eq!(std::fs::read(g.path("a.back")).unwrap(), b"hello");
    assert_eq!(
        g.stored_files(),
        vec!["acme/a.txt".to_string()],
        "no temp file left"
    );
}

#[test]
fn put_preserving_times_works() {
    let g = Gateway::start();
    std::fs::write(g.path("p.txt"), b"keep my times").unwrap();
    g.sftp_ok("alice", "put -p p.txt\nget p.txt p.back\n");
    assert_eq!(std::fs::read(g.path("p.back")).unwrap(), b"keep my times");
}

#[test]
fn scp_upload_and_download() {
    let g = Gateway::start();
    let plain = data(1024 * 1024 + 7, 9);
    std::fs::write(g.path("s.bin"), &plain).unwrap();
    let port = g.port;
    let up = g.scp("alice", "s.bin", "alice@127.0.0.1:/s.bin");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let down = g.scp("alice", "alice@127.0.0.1:/s.bin", "s.back");
    assert!(
        down.status.success(),
        "{port} {}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(std::fs::read(g.path("s.back")).unwrap(), plain);
    assert_eq!(g.decrypt(&g.store.join("acme/s.bin")), plain);
    // scp over an existing file replaces it (scp writes in place from offset 0).
    let smaller = data(1000, 10);
    std::fs::write(g.path("s.bin"), &smaller).unwrap();
    let up = g.scp("alice", "s.bin", "alice@127.0.0.1:/s.bin");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert_eq!(g.decrypt(&g.store.join("acme/s.bin")), smaller);
}

#[test]
fn twenty_concurrent_sessions_round_trip() {
    let g = Gateway::start();
    for i in 0..20 {
        std::fs::write(
            g.path(&format!("c{i}.bin")),
            data(512 * 1024 + i * 1000, 100 + i as u64),
        )
        .unwrap();
    }
    std::thread::scope(|s| {
        for i in 0..20 {
            let g = &g;
            s.spawn(move || {
                g.sftp_ok("alice", &format!("put c{i}.bin\nget c{i}.bin c{i}.back\n"));
            });
        }
    });
    for i in 0..20 {
        let plain = std::fs::read(g.path(&format!("c{i}.bin"))).unwrap();
        assert_eq!(std::fs::read(g.path(&format!("c{i}.back"))).unwrap(), plain);
        assert_eq!(g.decrypt(&g.store.join(format!("acme/c{i}.bin"))), plain);
    }
}

#[test]
fn wrong_key_rejected() {
    let g = Gateway::start();
    // mallory's key is nobody's; alice's key does not open carol's account.
    let out = g.sftp("mallory", "ls\n");
    assert!(!out.status.success());
    let out = sftp_as(&g, "alice", "carol", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
}

#[test]
fn tenants_are_isolated() {
    let g = Gateway::start();
    std::fs::write(g.path("secret.txt"), b"acme only").unwrap();
    g.sftp_ok("alice", "put secret.txt\n");
    // carol (tenant beta) sees her own empty root, not acme's files.
    let out = g.sftp_ok("carol", "ls -la\n");
    assert!(!out.contains("secret.txt"), "{out}");
    for attempt in [
        "get /secret.txt x\n",
        "get ../acme/secret.txt x\n",
        "get /../acme/secret.txt x\n",
        "ls ../acme\n",
        "ls /..\n",
        "cd ..\n",
    ] {
        let out = g.sftp("carol", attempt);
        assert!(!out.status.success(), "{attempt} succeeded");
    }
    assert!(!g.path("x").exists());
    // A planted copy of acme's object in beta's tree is refused (sealed for another tenant).
    std::fs::copy(
        g.store.join("acme/secret.txt"),
        g.store.join("beta/planted"),
    )
    .unwrap();
    let out = g.sftp("carol", "get planted y\n");
    assert!(!out.status.success());
    assert!(!g.path("y").exists());
}

#[test]
fn path_traversal_and_bad_names_rejected() {
    let g = Gateway::start();
    std::fs::write(g.path("t.txt"), b"t").unwrap();
    for attempt in [
        "put t.txt ../escape.txt\n",
        "put t.txt /../../escape.txt\n",
        "mkdir ../up\n",
        "put t.txt .x.eugate-tmp-1\n",
    ] {
        let out = g.sftp("alice", attempt);
        assert!(!out.status.success(), "{attempt} succeeded");
    }
    let long = "n".repeat(300);
    let out = g.sftp("alice", &format!("put t.txt {long}\n"));
    assert!(!out.status.success());
    assert!(!g.store.join("escape.txt").exists());
    assert!(!g.dir.path().join("escape.txt").exists());
    assert!(g.stored_files().is_empty(), "{:?}", g.stored_files());
}

/// One large file: OpenSSH pipelines 64 reads; before the channel buffer fix the download
/// stalled after ~16 MiB (russh could not process window adjusts while the buffer was full).
#[test]
fn large_file_round_trips_with_pipelined_reads() {
    let g = Gateway::start();
    let plain = data(64 * 1024 * 1024, 64);
    std::fs::write(g.path("big.bin"), &plain).unwrap();
    g.sftp_ok("alice", "put big.bin\nget big.bin big.back\n");
    assert!(std::fs::read(g.path("big.back")).unwrap() == plain);
    assert!(g.decrypt(&g.store.join("acme/big.bin")) == plain);
}

/// Only modern algorithms: a client restricted to SHA-1 kex, CTR ciphers or SHA-1 MACs fails.
#[test]
fn legacy_algorithms_refused() {
    let g = Gateway::start();
    for opt in [
        "KexAlgorithms=diffie-hellman-group14-sha1",
        "KexAlgorithms=diffie-hellman-group14-sha256",
        "Ciphers=aes128-ctr",
        "Ciphers=aes256-cbc",
        "HostKeyAlgorithms=ssh-rsa",
    ] {
        let out = sftp_as(&g, "alice", "alice", &["-o", opt]);
        assert!(!out.status.success(), "{opt} was accepted");
    }
    // The defaults of a current OpenSSH client negotiate fine.
    g.sftp_ok("alice", "ls\n");
}

/// An `sftp` connection with `key`'s identity as `user`, extra client options, an empty batch.
fn sftp_as(g: &Gateway, key: &str, user: &str, extra: &[&str]) -> std::process::Output {
    // The harness's options end with `-i KEY`; the extra ones go before it.
    let mut opts = g.ssh_opts(&g.key(key));
    let identity = opts.split_off(opts.len() - 2);
    std::process::Command::new("sftp")
        .args(opts)
        .args(extra)
        .args(identity)
        .arg("-P")
        .arg(g.port.to_string())
        .args(["-b", "/dev/null"])
        .arg(format!("{user}@127.0.0.1"))
        .output()
        .unwrap()
}
