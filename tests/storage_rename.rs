//! Rename never overwrites, on a real Garage S3 server: the S3 destination is driven directly
//! (storage level), with renames racing onto one new name.

mod common;
#[path = "garage/mod.rs"]
mod garage;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use eugate::config::{S3Credentials, S3DestinationConfig, SELF_HOSTED, StorageConfig};
use eugate::storage::s3::{Hooks, MemoryBudget, S3Destination};
use eugate::storage::{Destination, StorageError, Verification};
use garage::Garage;

const BUCKET: &str = "eugate-rename";
const ROUNDS: usize = 100;

async fn destination(g: &Garage) -> S3Destination {
    let creds = g.dir.path().join("creds.toml");
    std::fs::write(
        &creds,
        format!(
            "access_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
            garage::ACCESS_KEY,
            garage::SECRET_KEY
        ),
    )
    .unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = S3DestinationConfig {
        provider: SELF_HOSTED.into(),
        endpoint: Some(g.endpoint()),
        bucket: BUCKET.into(),
        region: g.region.clone(),
        country: Some("DE".into()),
        operator_country: None,
        path_style: true,
        credentials: S3Credentials::File(creds),
        ca_bundle: None,
        verify_interval: Duration::from_secs(300),
    };
    let hooks = Hooks {
        catalogued: Arc::new(|_| true),
        on_change: Arc::new(|_| {}),
    };
    let d = S3Destination::open(
        "garage",
        &cfg,
        &StorageConfig::default(),
        MemoryBudget::new(64 << 20),
        hooks,
        None,
    )
    .await
    .unwrap();
    assert!(
        matches!(d.verification(), Verification::Verified { .. }),
        "{:?}",
        d.verification()
    );
    d
}

/// What only a residency allow yields: every rename needs one.
fn grant(d: &S3Destination) -> eugate::policy::Grant {
    let (location, evidence) = d.location();
    let req = eugate::policy::Request {
        tenant: "acme".into(),
        user: "alice".into(),
        classification: Some(eugate::policy::Classification::Personal),
        destination: d.name().to_string(),
        location,
        evidence,
        key_held_by_tenant: false,
        operator_country: d.operator_country(),
    };
    let (decision, grant) = eugate::policy::PolicyBundle::embedded().decide(&req);
    grant.unwrap_or_else(|| panic!("embedded policy denied DE: {decision:?}"))
}

/// The fact docs/s3-notes.md rests on: Garage 2.5 ignores `If-None-Match: *` on CopyObject and
/// overwrites. If this fails, Garage has learnt conditional copies: update the notes.
#[test]
fn garage_ignores_if_none_match_on_copy() {
    let g = Garage::start("eu-central-1", &[BUCKET]);
    let s = g.store();
    s.put(BUCKET, "a", b"a");
    s.put(BUCKET, "b", b"b");
    let status = s.copy_if_none_match(BUCKET, "a", "b");
    assert_eq!(
        (status, s.get(BUCKET, "b")),
        (200, b"a".to_vec()),
        "Garage now refuses a conditional copy onto an existing key"
    );
}

#[test]
fn concurrent_renames_onto_one_name_have_one_winner() {
    let g = Garage::start("eu-central-1", &[BUCKET]);
    let s = g.store();
    for round in 0..ROUNDS {
        for i in 0..2 {
            s.put(
                BUCKET,
                &format!("s{round}-{i}"),
                format!("{round}-{i}").as_bytes(),
            );
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results: Vec<[Result<(), String>; 2]> = rt.block_on(async {
        let d = Arc::new(destination(&g).await);
        let mut all = Vec::new();
        for round in 0..ROUNDS {
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let tasks: Vec<_> = (0..2)
                .map(|i| {
                    let (d, barrier) = (d.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        d.rename(&grant(&d), &format!("s{round}-{i}"), &format!("t{round}"))
                            .await
                            .map_err(|e| match e {
                                StorageError::AlreadyExists => "AlreadyExists".to_string(),
                                other => format!("{other}"),
                            })
                    })
                })
                .collect();
            let mut r = Vec::new();
            for t in tasks {
                r.push(t.await.unwrap());
            }
            all.push(r.try_into().unwrap());
        }
        all
    });
    let objects: std::collections::HashMap<String, u64> = s.objects(BUCKET).into_iter().collect();
    for (round, r) in results.iter().enumerate() {
        let wins: Vec<usize> = (0..2).filter(|&i| r[i].is_ok()).collect();
        assert_eq!(wins.len(), 1, "round {round}: {r:?}");
        let (w, l) = (wins[0], 1 - wins[0]);
        assert_eq!(r[l], Err("AlreadyExists".to_string()), "round {round}");
        assert_eq!(
            s.get(BUCKET, &format!("t{round}")),
            format!("{round}-{w}").as_bytes(),
            "round {round}: the winner's content under the new name"
        );
        assert_eq!(
            s.get(BUCKET, &format!("s{round}-{l}")),
            format!("{round}-{l}").as_bytes(),
            "round {round}: the loser's source is still there, unchanged"
        );
        assert!(
            !objects.contains_key(&format!("s{round}-{w}")),
            "round {round}: the winner's source is gone"
        );
    }
}

#[test]
fn rename_onto_an_existing_object_or_directory_is_refused() {
    let g = Garage::start("eu-central-1", &[BUCKET]);
    let s = g.store();
    s.put(BUCKET, "a", b"a");
    s.put(BUCKET, "b", b"b");
    s.put(BUCKET, "dir/x", b"x");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let d = destination(&g).await;
        for to in ["b", "dir"] {
            assert!(
                matches!(
                    d.rename(&grant(&d), "a", to).await,
                    Err(StorageError::AlreadyExists)
                ),
                "a -> {to}"
            );
        }
        assert!(matches!(
            d.rename(&grant(&d), "missing", "c").await,
            Err(StorageError::NotFound)
        ));
        d.rename(&grant(&d), "a", "c").await.unwrap();
    });
    assert_eq!(s.get(BUCKET, "b"), b"b");
    assert_eq!(s.get(BUCKET, "c"), b"a");
    let mut keys: Vec<String> = s.objects(BUCKET).into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, ["b", "c", "dir/x"]);
}
