//! Unit tests of the fs destination (`fs.rs`).

use super::*;
use crate::policy::{Classification, PolicyBundle, Request};

fn grant(dest: &FsDestination) -> Grant {
    let (location, evidence) = dest.location();
    let req = Request {
        tenant: "acme".into(),
        user: "alice".into(),
        classification: Some(Classification::Personal),
        destination: dest.name().to_string(),
        location,
        evidence,
        key_held_by_tenant: false,
        operator_country: None,
    };
    let (decision, grant) = PolicyBundle::embedded().decide(&req);
    grant.unwrap_or_else(|| panic!("embedded policy denied DE: {decision:?}"))
}

fn meta() -> ObjectMeta {
    ObjectMeta {
        format_version: 1,
        tenant: "acme".into(),
        key_id: "k".into(),
        key_version: 1,
        object_id: "00".into(),
    }
}

fn files(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn publish_only_on_commit_and_abort_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = FsDestination::open("local", dir.path(), "DE").unwrap();
    let mut up = d
        .begin(grant(&d), "a.bin", Publish::Replace, meta())
        .await
        .unwrap();
    up.write(bytes::Bytes::from_static(b"sealed bytes"))
        .await
        .unwrap();
    let visible = d.list("").await.unwrap();
    assert!(visible.is_empty(), "temp file hidden from listings");
    assert!(matches!(d.stat("a.bin").await, Err(StorageError::NotFound)));
    assert_eq!(up.commit(0).await.unwrap(), 12);
    assert_eq!(files(dir.path()), vec!["a.bin"]);
    assert_eq!(d.stat("a.bin").await.unwrap().sealed_len, 12);

    let mut up = d
        .begin(grant(&d), "b.bin", Publish::Replace, meta())
        .await
        .unwrap();
    up.write(bytes::Bytes::from_static(b"partial"))
        .await
        .unwrap();
    up.abort().await;
    let up = d
        .begin(grant(&d), "c.bin", Publish::Replace, meta())
        .await
        .unwrap();
    drop(up); // a dropped upload aborts too
    assert_eq!(files(dir.path()), vec!["a.bin"]);
}

#[tokio::test]
async fn replace_and_no_clobber() {
    let dir = tempfile::tempdir().unwrap();
    let d = FsDestination::open("local", dir.path(), "DE").unwrap();
    let mut up = d
        .begin(grant(&d), "x", Publish::Replace, meta())
        .await
        .unwrap();
    up.write(bytes::Bytes::from_static(b"one")).await.unwrap();
    up.commit(0).await.unwrap();
    assert!(matches!(
        d.begin(grant(&d), "x", Publish::NoClobber, meta()).await,
        Err(StorageError::AlreadyExists)
    ));
    // A racing writer that published first wins; the no-clobber commit fails, cleanly.
    let mut late = d
        .begin(grant(&d), "y", Publish::NoClobber, meta())
        .await
        .unwrap();
    let mut first = d
        .begin(grant(&d), "y", Publish::Replace, meta())
        .await
        .unwrap();
    first
        .write(bytes::Bytes::from_static(b"first"))
        .await
        .unwrap();
    first.commit(0).await.unwrap();
    late.write(bytes::Bytes::from_static(b"late"))
        .await
        .unwrap();
    assert!(late.commit(0).await.is_err());
    assert_eq!(std::fs::read(dir.path().join("y")).unwrap(), b"first");
    let mut up = d
        .begin(grant(&d), "x", Publish::Replace, meta())
        .await
        .unwrap();
    up.write(bytes::Bytes::from_static(b"two")).await.unwrap();
    up.commit(0).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"two");
    assert_eq!(files(dir.path()), vec!["x", "y"]);
}

#[tokio::test]
async fn keys_cannot_escape_and_rename_does_not_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let d = FsDestination::open("local", dir.path(), "DE").unwrap();
    for bad in ["../x", "/etc/passwd", "a//b", "a/./b", "a\0b"] {
        assert!(
            matches!(d.stat(bad).await, Err(StorageError::InvalidKey(_))),
            "{bad}"
        );
    }
    std::fs::write(dir.path().join("a"), b"a").unwrap();
    std::fs::write(dir.path().join("b"), b"b").unwrap();
    assert!(matches!(
        d.rename(&grant(&d), "a", "b").await,
        Err(StorageError::AlreadyExists)
    ));
    d.rename(&grant(&d), "a", "c").await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("c")).unwrap(), b"a");
}

/// Names of exactly (or nearly) 255 bytes in 1-, 2-, 3- and 4-byte characters.
fn long_names() -> Vec<String> {
    vec![
        "€".repeat(85),                       // 255 bytes, 85 characters
        format!("a{}", "€".repeat(84) + "b"), // 254 bytes, cut lands inside a '€' if by bytes
        "𝄞".repeat(63) + "abc",               // 4-byte characters, 255 bytes
        "é".repeat(127) + "x",                // 2-byte characters, 255 bytes
        "x".repeat(255),
        "日本語".repeat(28) + "€", // 255 bytes
    ]
}

#[test]
fn temp_name_fits_name_max_on_a_char_boundary() {
    for name in long_names() {
        assert!(name.len() <= NAME_MAX, "{} bytes", name.len());
        let t = temp_name(&name, &[0xab; TEMP_RANDOM]);
        assert!(t.len() <= NAME_MAX, "{} bytes for {name}", t.len());
        let kept = t
            .strip_prefix('.')
            .and_then(|t| t.split(TEMP_MARKER).next())
            .unwrap();
        assert!(name.starts_with(kept) && !kept.is_empty());
        // Cut at the last whole character that fits: under 4 bytes of room go unused.
        assert!(t.len() > NAME_MAX - 4, "{} bytes for {name}", t.len());
    }
    assert_eq!(
        temp_name("a.txt", &[0; TEMP_RANDOM]),
        ".a.txt.eugate-tmp-0000000000000000"
    );
}

#[tokio::test]
async fn names_of_255_bytes_upload_and_commit() {
    let dir = tempfile::tempdir().unwrap();
    let d = FsDestination::open("local", dir.path(), "DE").unwrap();
    let mut expect = Vec::new();
    for name in long_names() {
        let mut up = d
            .begin(grant(&d), &name, Publish::Replace, meta())
            .await
            .unwrap_or_else(|e| panic!("begin {} bytes: {e}", name.len()));
        up.write(bytes::Bytes::from(name.clone().into_bytes()))
            .await
            .unwrap();
        assert_eq!(up.commit(0).await.unwrap(), name.len() as u64);
        assert_eq!(
            std::fs::read(dir.path().join(&name)).unwrap(),
            name.as_bytes()
        );
        expect.push(name);
    }
    expect.sort();
    assert_eq!(files(dir.path()), expect, "no temp file left behind");
}

#[test]
fn root_is_created_0700_with_its_parents() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b/store");
    FsDestination::open("local", &root, "DE").unwrap();
    for p in [dir.path().join("a"), dir.path().join("a/b"), root] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", p.display());
    }
}

/// Two renames of different files onto one new name, started together, many rounds: each
/// round exactly one wins and the loser's file is still there, unchanged.
fn assert_one_winner(
    root: &Path,
    round: usize,
    results: [Result<(), String>; 2],
    already_exists: impl Fn(&str) -> bool,
) {
    let wins: Vec<usize> = (0..2).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(wins.len(), 1, "round {round}: {results:?}");
    let (w, l) = (wins[0], 1 - wins[0]);
    let loss = results[l].as_ref().unwrap_err();
    assert!(already_exists(loss), "round {round}: loser got {loss}");
    let target = root.join(format!("t{round}"));
    assert_eq!(
        std::fs::read(&target).unwrap(),
        format!("{round}-{w}").as_bytes()
    );
    let loser = root.join(format!("s{round}-{l}"));
    assert_eq!(
        std::fs::read(&loser).unwrap(),
        format!("{round}-{l}").as_bytes()
    );
    assert!(!root.join(format!("s{round}-{w}")).exists());
}

const ROUNDS: usize = 300;

fn sources(root: &Path, round: usize) {
    for i in 0..2 {
        std::fs::write(root.join(format!("s{round}-{i}")), format!("{round}-{i}")).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_renames_onto_one_name_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let d = std::sync::Arc::new(FsDestination::open("local", dir.path(), "DE").unwrap());
    for round in 0..ROUNDS {
        sources(dir.path(), round);
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let (d, barrier) = (d.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    d.rename(&grant(&d), &format!("s{round}-{i}"), &format!("t{round}"))
                        .await
                        .map_err(|e| format!("{e:?}"))
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        let results: [Result<(), String>; 2] = results.try_into().unwrap();
        assert_one_winner(dir.path(), round, results, |e| e == "AlreadyExists");
    }
}

#[test]
fn link_fallback_has_one_winner_and_refuses_directories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for round in 0..ROUNDS {
        sources(root, round);
        let barrier = std::sync::Barrier::new(2);
        let results = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|i| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        rename_by_link(
                            &root.join(format!("s{round}-{i}")),
                            &root.join(format!("t{round}")),
                        )
                        .map_err(|e| format!("{:?}", e.kind()))
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        let results: [Result<(), String>; 2] = results.try_into().unwrap();
        assert_one_winner(root, round, results, |e| e == "AlreadyExists");
    }
    std::fs::create_dir(root.join("d")).unwrap();
    assert!(rename_by_link(&root.join("d"), &root.join("e")).is_err());
    assert!(root.join("d").is_dir() && !root.join("e").exists());
}

#[tokio::test]
async fn directories_rename_but_never_onto_an_existing_entry() {
    let dir = tempfile::tempdir().unwrap();
    let d = FsDestination::open("local", dir.path(), "DE").unwrap();
    for n in ["d1", "d2"] {
        std::fs::create_dir(dir.path().join(n)).unwrap();
        std::fs::write(dir.path().join(n).join("f"), n).unwrap();
    }
    std::fs::write(dir.path().join("f"), b"f").unwrap();
    for (from, to) in [("d1", "d2"), ("d1", "f"), ("f", "d1")] {
        assert!(
            matches!(
                d.rename(&grant(&d), from, to).await,
                Err(StorageError::AlreadyExists)
            ),
            "{from} -> {to}"
        );
    }
    d.rename(&grant(&d), "d1", "d3").await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("d3/f")).unwrap(), b"d1");
    assert_eq!(std::fs::read(dir.path().join("d2/f")).unwrap(), b"d2");
    assert!(matches!(
        d.rename(&grant(&d), "missing", "x").await,
        Err(StorageError::NotFound)
    ));
}

#[tokio::test]
async fn temp_files_swept_at_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("t")).unwrap();
    std::fs::write(dir.path().join("t/.f.eugate-tmp-00"), b"x").unwrap();
    std::fs::write(dir.path().join("t/keep"), b"x").unwrap();
    FsDestination::open("local", dir.path(), "DE").unwrap();
    assert_eq!(files(&dir.path().join("t")), vec!["keep"]);
}

#[tokio::test]
async fn grant_for_another_destination_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = FsDestination::open("a", &dir.path().join("a"), "DE").unwrap();
    let b = FsDestination::open("b", &dir.path().join("b"), "DE").unwrap();
    assert!(matches!(
        b.begin(grant(&a), "x", Publish::Replace, meta()).await,
        Err(StorageError::WrongGrant { .. })
    ));
}
